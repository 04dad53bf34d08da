package kiotvietfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The fake's replies have the shape of real KiotViet replies: every key it sends, at every depth, is
// one some sample of the same endpoint has (testdata/kiotviet-samples), with the same JSON type, and
// every key a real list sends for every item is sent for every item by the fake too.

// shapeExceptions are keys the fake sends that no sample shows, each with where the shape comes from.
var shapeExceptions = map[string]string{
	"products data[].productFormulas": "no sample has a combo; the fields follow KiotViet's product docs (materialId, materialCode, …)",
	"branches data[].wardName":        "kiotviet-api.md §6: a real branch item also had wardName",
	"productonhands timestamp":        "every captured list envelope has one; the productOnHands doc transcription leaves it out",
}

// shapes walks a JSON value and records, for every path (array elements as []), the JSON types seen.
// Keys are lower-cased: KiotViet's own docs and replies disagree on case (onhand, onHand), and its server
// reads either.
func shapes(v any, path string, out map[string]map[string]bool) {
	add := func(t string) {
		if out[path] == nil {
			out[path] = map[string]bool{}
		}
		out[path][t] = true
	}
	switch x := v.(type) {
	case map[string]any:
		add("object")
		for k, e := range x {
			p := strings.ToLower(k)
			if path != "" {
				p = path + "." + p
			}
			shapes(e, p, out)
		}
	case []any:
		add("array")
		for _, e := range x {
			shapes(e, path+"[]", out)
		}
	case string:
		add("string")
	case float64:
		add("number")
	case bool:
		add("bool")
	case nil:
		add("null")
	}
}

// sampleShapes reads the samples whose names contain one of the words, wrapping a bare product array
// or a single product as a list's data so that paths line up.
func sampleShapes(t *testing.T, words ...string) map[string]map[string]bool {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "kiotviet-samples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Skipf("no KiotViet samples in %s", dir)
	}
	out := map[string]map[string]bool{}
	for _, f := range files {
		name := strings.ToLower(filepath.Base(f))
		if strings.Contains(name, "webhook") {
			continue
		}
		match := false
		for _, w := range words {
			match = match || strings.Contains(name, w)
		}
		if !match {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch x := v.(type) {
		case []any:
			if strings.Contains(name, "product") {
				v = map[string]any{"data": x}
			}
		case map[string]any:
			if _, ok := x["data"]; !ok && strings.Contains(name, "product") {
				v = map[string]any{"data": []any{x}}
			}
		}
		shapes(v, "", out)
	}
	return out
}

// alwaysSent lists the item keys present in every item of a sample's data.
func alwaysSent(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kiotviet-samples", file))
	if err != nil {
		t.Skipf("sample %s: %v", file, err)
	}
	var items []map[string]any
	if err := json.Unmarshal(b, &items); err != nil {
		var env struct {
			Data []map[string]any `json:"data"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		items = env.Data
	}
	count := map[string]int{}
	for _, it := range items {
		for k := range it {
			count[k]++
		}
	}
	var out []string
	for k, n := range count {
		if n == len(items) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestRepliesHaveTheShapeOfRealOnes(t *testing.T) {
	s := New(Options{Products: 400, Branches: 3, Categories: 30, Seed: 11, Now: fixedNow, RateLimitPerHour: -1})
	// a deleted category and a deactivated branch, so removedIds and isDeleted items are sent too
	if id, ok := s.UnusedCategory(); ok {
		if err := s.DeleteCategory(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeactivateBranch(s.Snapshot().Branches[2].ID); err != nil {
		t.Fatal(err)
	}
	s.DeleteProducts(3)
	get := fakeGetter(t, s)

	cases := []struct {
		endpoint string
		paths    []string
		samples  []string
	}{
		{"products", []string{"/products?pageSize=100", "/products?pageSize=100&includeInventory=true&includeQuantity=true" +
			"&includePricebook=true&IncludeSerials=true&IncludeBatchExpires=true&IncludeProductShelves=true&includeMaterial=true" +
			"&lastModifiedFrom=2000-01-01&includeRemoveIds=true", "/products/" + fmt.Sprint(s.Snapshot().Products[0].ID)},
			[]string{"product"}},
		{"branches", []string{"/branches", "/branches?includeRemoveIds=true&lastModifiedFrom=2000-01-01"}, []string{"branches"}},
		{"categories", []string{"/categories?pageSize=100", "/categories?lastModifiedFrom=2000-01-01&includeRemoveIds=true",
			"/categories?hierachicalData=true"}, []string{"categories"}},
		{"productonhands", []string{"/productOnHands?pageSize=100"}, []string{"productonhands"}},
		{"attributes", []string{"/attributes/allwithdistinctvalue"}, []string{"attributes"}},
	}
	for _, c := range cases {
		want := sampleShapes(t, c.samples...)
		got := map[string]map[string]bool{}
		for _, p := range c.paths {
			v := get(p)
			if m, ok := v.(map[string]any); ok && strings.HasPrefix(p, "/products/") {
				v = map[string]any{"data": []any{m}}
			}
			shapes(v, "", got)
		}
		for path, types := range got {
			if reason := exception(c.endpoint, path); reason != "" {
				continue
			}
			w, ok := want[path]
			if !ok {
				t.Errorf("%s: the fake sends %s, which no sample has", c.endpoint, path)
				continue
			}
			for ty := range types {
				if !w[ty] && !w["null"] {
					t.Errorf("%s: %s is %s in the fake, %v in the samples", c.endpoint, path, ty, keysOf(w))
				}
			}
		}
	}

	// every key a real list sends for every product, the fake sends for every product
	var items struct {
		Data []map[string]any `json:"data"`
	}
	b, _ := json.Marshal(get("/products?pageSize=100"))
	_ = json.Unmarshal(b, &items)
	for _, k := range alwaysSent(t, "real_products_data_naq219.json") {
		for _, it := range items.Data {
			if _, ok := it[k]; !ok {
				t.Errorf("products: a real list sends %s for every item; the fake left it out of product %v", k, it["id"])
				break
			}
		}
	}
	// and what real lists leave out unless asked for, the fake leaves out too
	for _, it := range items.Data {
		for _, k := range []string{"inventories", "priceBooks", "productSerials", "productBatchExpires", "productShelves", "productFormulas"} {
			if _, ok := it[k]; ok {
				t.Fatalf("products: %s sent without its include", k)
			}
		}
	}
}

func exception(endpoint, path string) string {
	for k, reason := range shapeExceptions {
		ep, prefix, _ := strings.Cut(k, " ")
		if ep == endpoint && (path == strings.ToLower(prefix) || strings.HasPrefix(path, strings.ToLower(prefix)+"[]")) {
			return reason
		}
	}
	return ""
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fakeGetter returns a function that GETs a path from the fake with a valid token and decodes the JSON.
func fakeGetter(t *testing.T, s *Server) func(path string) any {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.PostForm(srv.URL+TokenPath, url.Values{"scopes": {"PublicApi.Access"}, "grant_type": {"client_credentials"},
		"client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	return func(path string) any {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Retailer", s.Retailer())
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// The seeded shop is as varied as a real one: every kind of item the ERP shows appears.
func TestCatalogueIsVariedLikeARealShop(t *testing.T) {
	cat := New(Options{Products: 500, Branches: 3, Categories: 40, Seed: 3, Now: fixedNow}).Snapshot()
	count := map[string]int{}
	masters := map[string]int{}
	for _, p := range cat.Products {
		has := map[string]bool{
			"inactive": !p.IsActive, "not for sale": !p.AllowsSale, "for sale": p.AllowsSale, "combo": p.Type == 1,
			"service": p.Type == 3, "serial-controlled": p.IsLotSerialControl && len(p.Serials) > 0,
			"batch-controlled": p.IsBatchExpireControl && len(p.Batches) > 0, "variant": p.MasterProductID != 0,
			"unit": p.MasterUnitID != 0, "price books": len(p.PriceBooks) > 0, "shelves": len(p.Shelves) > 0,
			"combo parts": len(p.Components) > 0, "no reward points": !p.IsRewardPoint, "no brand": p.TradeMarkID == 0,
			"khau_tru tax": p.TaxType == "khau_tru", "truc_tiep tax": p.TaxType == "truc_tiep", "no tax": p.TaxType == "",
			"no barcode": p.Barcode == "",
		}
		for k, ok := range has {
			if ok {
				count[k]++
			}
		}
		if p.MasterCode == "" {
			t.Fatalf("product %d has no masterCode", p.ID)
		}
		masters[p.MasterCode]++
		if p.IsLotSerialControl {
			n := map[int64]float64{}
			for _, s := range p.Serials {
				n[s.BranchID]++
			}
			for _, v := range p.Inventories {
				if n[v.BranchID] != v.OnHand {
					t.Fatalf("product %d: %v serials at branch %d, %v on hand", p.ID, n[v.BranchID], v.BranchID, v.OnHand)
				}
			}
		}
	}
	for _, k := range []string{"inactive", "not for sale", "for sale", "combo", "service", "serial-controlled", "batch-controlled",
		"variant", "unit", "price books", "shelves", "combo parts", "no reward points", "no brand", "khau_tru tax",
		"truc_tiep tax", "no tax", "no barcode"} {
		if count[k] == 0 {
			t.Errorf("no %s product among %d", k, len(cat.Products))
		}
	}
	shared := 0
	for _, n := range masters {
		if n > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no masterCode is shared by the rows of a group")
	}
}

// Deletion renames the code "…{DEL}": the detail endpoint still finds the product so, and with
// ListDeleted so do the lists.
func TestDeletedProductsAreRenamed(t *testing.T) {
	s := New(Options{Products: 50, Seed: 5, Now: fixedNow, ListDeleted: true})
	ids := s.DeleteProducts(2)
	get := fakeGetter(t, s)
	p := get(fmt.Sprintf("/products/%d", ids[0])).(map[string]any)
	if code, _ := p["code"].(string); !strings.HasSuffix(code, "{DEL}") || p["isActive"] != false {
		t.Fatalf("deleted product's detail: code %v, isActive %v", p["code"], p["isActive"])
	}
	list := get("/products?pageSize=100&lastModifiedFrom=2000-01-01&includeRemoveIds=true").(map[string]any)
	renamed := 0
	for _, it := range list["data"].([]any) {
		if code, _ := it.(map[string]any)["code"].(string); strings.HasSuffix(code, "{DEL}") {
			renamed++
		}
	}
	if renamed != 2 || len(list["removeId"].([]any)) != 2 {
		t.Fatalf("list: %d renamed rows, removeId %v", renamed, list["removeId"])
	}
}
