package kiotviet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The samples in testdata/kiotviet-samples at the repository root are real KiotViet replies and
// shapes from KiotViet's docs (testdata/kiotviet-samples/SOURCES.md says where each came from). Every
// file there is decoded by the decoder of its endpoint, chosen by its name, so a sample added later is
// picked up without code changes; a name that says no endpoint fails the test.

// samplesDir returns the repository's copy of the samples.
func samplesDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	noErr(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "kiotviet-samples")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// sampleFiles lists the .json samples, or skips the test when the folder is absent.
func sampleFiles(t *testing.T) (string, []string) {
	t.Helper()
	dir := samplesDir(t)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	noErr(t, err)
	if len(names) == 0 {
		t.Skipf("no KiotViet samples in %s: copy them there (see SOURCES.md)", dir)
	}
	sort.Strings(names)
	return dir, names
}

// TestSamplesCopyIsCurrent checks the repository's copy against the shared reference folder beside the
// checkout, when there is one: a sample added there must be copied here too.
func TestSamplesCopyIsCurrent(t *testing.T) {
	dir, _ := sampleFiles(t)
	shared := filepath.Join(filepath.Dir(filepath.Dir(dir)), "..", "shared", "reference", "kiotviet-samples")
	names, _ := filepath.Glob(filepath.Join(shared, "*"))
	if len(names) == 0 {
		t.Skipf("no shared samples folder beside the checkout (%s); the repository's copy is used as it is", shared)
	}
	for _, n := range names {
		want, err := os.ReadFile(n)
		noErr(t, err)
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(n)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/kiotviet-samples/%s is missing or differs from the shared copy: copy it", filepath.Base(n))
		}
	}
}

// webhookBody is a webhook delivery: notifications, or the documented bare {"RemoveId": [...]}.
type webhookBody struct {
	ID            string `json:"Id"`
	Attempt       int    `json:"Attempt"`
	Notifications []struct {
		Action string          `json:"Action"`
		Data   json.RawMessage `json:"Data"`
	} `json:"Notifications"`
	RemoveID flexIDs `json:"RemoveId"`
}

func TestSamplesDecode(t *testing.T) {
	_, files := sampleFiles(t)
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			noErr(t, err)
			n := decodeSample(t, name, body)
			truth(t, n > 0, "decoded nothing from", name)
		})
	}
}

// decodeSample decodes one sample with the decoder its name points at and returns how many items
// (or ids) it held; it also checks what every item of that kind must have.
func decodeSample(t *testing.T, name string, body []byte) int {
	t.Helper()
	kind := strings.ToLower(name)
	switch {
	case strings.Contains(kind, "webhook"):
		var wb webhookBody
		noErr(t, json.Unmarshal(body, &wb))
		n := len(wb.RemoveID)
		for _, nt := range wb.Notifications {
			entity, _, _ := strings.Cut(nt.Action, ".")
			truth(t, entity != "", "action %q", nt.Action)
			switch {
			case strings.HasSuffix(nt.Action, ".delete") || strings.Contains(nt.Action, ".delete."):
				var ids flexIDs
				noErr(t, json.Unmarshal(nt.Data, &ids), nt.Action)
				n += len(ids)
			case entity == "product":
				var ps []Product
				noErr(t, json.Unmarshal(nt.Data, &ps))
				for _, p := range ps {
					checkProduct(t, p)
				}
				n += len(ps)
			case entity == "stock":
				var inv []ProductInventory
				noErr(t, json.Unmarshal(nt.Data, &inv))
				for _, v := range inv {
					truth(t, v.ProductID != 0 && v.BranchID != 0, "stock entry without product or branch: %+v", v)
				}
				n += len(inv)
			case entity == "category":
				var cs []Category
				noErr(t, json.Unmarshal(nt.Data, &cs))
				for _, c := range cs {
					truth(t, c.ID != 0 && c.Name != "", "category: %+v", c)
				}
				n += len(cs)
			case entity == "branch":
				var bs []Branch
				noErr(t, json.Unmarshal(nt.Data, &bs))
				for _, b := range bs {
					truth(t, b.ID != 0 && b.BranchName != "", "branch: %+v", b)
				}
				n += len(bs)
			case entity == "pricebookdetail" || entity == "pricebook":
				// kvsync keeps no price book table; price books reach the ERP inside products
				var items []map[string]any
				noErr(t, json.Unmarshal(nt.Data, &items))
				n += len(items)
			default:
				t.Fatalf("webhook action %q: no decoder for %q", nt.Action, entity)
			}
		}
		return n
	case strings.Contains(kind, "error"):
		err := sampleError(t, body)
		var apiErr *APIError
		truth(t, errors.As(err, &apiErr), "not an API error: %v", err)
		truth(t, apiErr.Code != "", "no error code in %v", err)
		return 1
	case strings.Contains(kind, "token"):
		tok := sampleToken(t, body)
		truth(t, tok.AccessToken != "" && tok.ExpiresAt.After(time.Now()), "token %v", tok)
		return 1
	case strings.Contains(kind, "productonhands"):
		pg, _, _, err := decodePage[ProductOnHand](body)
		noErr(t, err)
		for _, p := range pg.Items {
			truth(t, p.ID != 0, "stock row without id")
		}
		return len(pg.Items)
	case strings.Contains(kind, "attributes"):
		attrs, err := decodeAttributes(body)
		noErr(t, err)
		for _, a := range attrs {
			truth(t, a.ID != 0 && a.Name != "" && len(a.Values) > 0, "attribute: %+v", a)
		}
		return len(attrs)
	case strings.Contains(kind, "categories"):
		pg, _, _, err := decodePage[Category](body)
		noErr(t, err)
		for _, c := range pg.Items {
			truth(t, c.ID != 0 && c.Name != "", "category: %+v", c)
		}
		return len(pg.Items) + len(pg.RemovedIDs)
	case strings.Contains(kind, "branches"):
		pg, _, _, err := decodePage[Branch](body)
		noErr(t, err)
		for _, b := range pg.Items {
			truth(t, b.ID != 0 && b.BranchName != "" && b.IsActive, "branch: %+v", b)
		}
		return len(pg.Items) + len(pg.RemovedIDs)
	case strings.Contains(kind, "product"):
		ps, removed := sampleProducts(t, body)
		for _, p := range ps {
			checkProduct(t, p)
		}
		return len(ps) + removed
	}
	t.Fatalf("sample %s: its name says no endpoint; name it after one (products, categories, branches, "+
		"productonhands, attributes, token, error, webhook)", name)
	return 0
}

// sampleProducts decodes a products sample: a list page, a bare data array or one product.
func sampleProducts(t *testing.T, body []byte) ([]Product, int) {
	t.Helper()
	body = bytes.TrimSpace(body)
	switch {
	case len(body) > 0 && body[0] == '[':
		var ps []Product
		noErr(t, json.Unmarshal(body, &ps))
		return ps, 0
	case bytes.Contains(body, []byte(`"data"`)):
		pg, _, _, err := decodePage[Product](body)
		noErr(t, err)
		return pg.Items, len(pg.RemovedIDs)
	}
	var p Product
	noErr(t, json.Unmarshal(body, &p))
	return []Product{p}, 0
}

// checkProduct asserts what every product must decode to: an id, a code, a name, a type KiotViet
// defines, and stock entries with a branch.
func checkProduct(t *testing.T, p Product) {
	t.Helper()
	truth(t, p.ID != 0 && p.Code != "" && p.Name != "", "product: id %d code %q name %q", p.ID, p.Code, p.Name)
	truth(t, p.Type >= 1 && p.Type <= 4, "product %d type %d", p.ID, p.Type)
	for _, v := range p.Inventories {
		truth(t, v.BranchID != 0, "product %d: stock entry without branch", p.ID)
	}
	for _, u := range p.Images {
		truth(t, strings.HasPrefix(u, "http"), "product %d: image %q", p.ID, u)
	}
}

// sampleToken runs the token sample through the client's token request, served by a local server that
// replays it.
func sampleToken(t *testing.T, body []byte) Token {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	tok, err := FetchToken(context.Background(), Config{TokenURL: srv.URL, APIURL: srv.URL, MaxAttempts: 1},
		Credentials{Retailer: "r", ClientID: "c", ClientSecret: "s"})
	noErr(t, err)
	return tok
}

// sampleError runs the error sample through a list request answered 401 with it.
func sampleError(t *testing.T, body []byte) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := New(Config{TokenURL: srv.URL, APIURL: srv.URL, MaxAttempts: 1}, "r", staticTokens{})
	p := c.Branches(ListOptions{})
	truth(t, !p.Next(context.Background()), "a 401 gave a page")
	return p.Err()
}

// staticTokens hands out one token and ignores invalidation.
type staticTokens struct{}

func (staticTokens) Token(context.Context) (Token, error) {
	return Token{AccessToken: "t", ExpiresAt: time.Now().Add(time.Hour)}, nil
}
func (staticTokens) Invalidate(context.Context, Token) {}

// A products page decodes its products through their wire form (decodePage), a product on its own (a
// webhook, a detail reply) through Product.UnmarshalJSON: both must give the same products, for every
// products page sample and for the fake-like page below.
func TestProductsPageDecodesAsEachProduct(t *testing.T) {
	_, files := sampleFiles(t)
	var bodies = map[string][]byte{"inline": []byte(`{"total":2,"pageSize":100,"data":[
		{"id":"17000001","code":"SP1","name":"Cà phê","basePrice":"35000","isActive":"true","modifiedDate":"2026-12-02T10:15:30.123",
		 "units":[{"id":17000002,"unit":"hộp","conversionValue":"6"}],"attributes":[{"attributeName":"SIZE","attributeValue":"L"}],
		 "inventories":[{"branchId":1,"branchName":"Chi nh\u00e1nh","onHand":"3.5","reserved":1,"maxQuality":9}],
		 "productShelves":[{"branchId":1,"ProductShelves":"A-1"}]},
		{"ID":17000003,"CODE":"SP2","Name":"Trà","Inventories":[{"ONHAND":2,"branchId":2,"isActive":false}],"images":null,"units":null}]}`)}
	for _, path := range files {
		body, err := os.ReadFile(path)
		noErr(t, err)
		if strings.Contains(strings.ToLower(filepath.Base(path)), "products") && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			bodies[filepath.Base(path)] = body // a list reply, not a bare array
		}
	}
	truth(t, len(bodies) > 1, "no products page sample")
	for name, body := range bodies {
		pg, _, _, err := decodePage[Product](body)
		noErr(t, err, name)
		var each struct {
			Data []Product `json:"data"`
		}
		noErr(t, json.Unmarshal(body, &each), name)
		truth(t, len(each.Data) > 0, "%s: no products", name)
		eq(t, each.Data, pg.Items, name)
	}
}
