package kiotvietfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fixedNow() time.Time { return time.Date(2025, 3, 23, 9, 0, 0, 0, time.UTC) }

func TestCatalogueIsDeterministicAndShaped(t *testing.T) {
	a := New(Options{Products: 500, Branches: 3, Categories: 40, Seed: 42, Now: fixedNow}).Snapshot()
	b := New(Options{Products: 500, Branches: 3, Categories: 40, Seed: 42, Now: fixedNow}).Snapshot()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different catalogues")
	}
	if len(a.Products) != 500 || len(a.Branches) != 3 || len(a.Categories) != 40 {
		t.Fatalf("sizes: %d products, %d branches, %d categories", len(a.Products), len(a.Branches), len(a.Categories))
	}
	codes := map[string]bool{}
	var variants, units int
	for _, p := range a.Products {
		if codes[p.Code] {
			t.Fatalf("duplicate code %s", p.Code)
		}
		codes[p.Code] = true
		if p.CategoryPath == "" || !strings.HasSuffix(p.CategoryPath, p.CategoryName) {
			t.Fatalf("bad category path %q for %q", p.CategoryPath, p.CategoryName)
		}
		if len(p.Inventories) != 3 || p.Inventories[0].BranchName == "" {
			t.Fatalf("bad inventories %+v", p.Inventories)
		}
		if p.MasterProductID != 0 {
			variants++
		}
		if p.MasterUnitID != 0 {
			units++
		}
	}
	if variants == 0 || units == 0 {
		t.Fatalf("want variants and units, got %d and %d", variants, units)
	}
	for _, c := range a.Categories {
		if n := strings.Count(c.Path, " > ") + 1; n > 3 {
			t.Fatalf("category %q is %d levels deep", c.Path, n)
		}
	}
	if len(a.Attributes) == 0 {
		t.Fatal("no attributes")
	}
}

func TestTokenEndpointChecksTheForm(t *testing.T) {
	s := New(Options{Now: fixedNow, TokenTTL: time.Hour})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	good := url.Values{"scopes": {"PublicApi.Access"}, "grant_type": {"client_credentials"},
		"client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}}
	cases := map[string]func(url.Values){
		"":                       func(url.Values) {},
		"invalid_client":         func(v url.Values) { v.Set("client_secret", "x") },
		"invalid_scope":          func(v url.Values) { v.Del("scopes"); v.Set("scope", "PublicApi.Access") },
		"unsupported_grant_type": func(v url.Values) { v.Set("grant_type", "password") },
	}
	for want, edit := range cases {
		form := url.Values{}
		for k, v := range good {
			form[k] = v
		}
		edit(form)
		resp, err := http.PostForm(srv.URL+TokenPath, form)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if want == "" {
			if resp.StatusCode != 200 || body["expires_in"] != float64(3600) || body["access_token"] == "" {
				t.Fatalf("good form: %d %v", resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != 400 || body["error"] != want {
			t.Fatalf("%s: got %d %v", want, resp.StatusCode, body)
		}
	}
}

func TestWireShape(t *testing.T) {
	s := New(Options{Products: 30, Now: fixedNow})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
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

	get := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Retailer", s.Retailer())
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := get("/products?includeInventory=true&pageSize=500")
	if status != 200 || body["pageSize"] != float64(100) || body["total"] != float64(30) {
		t.Fatalf("products: %d pageSize=%v total=%v", status, body["pageSize"], body["total"])
	}
	status, body = get("/products")
	if data := body["data"].([]any); status != 200 || len(data) != 20 {
		t.Fatalf("default page size: %d, %d items", status, len(data))
	}
	p := body["data"].([]any)[0].(map[string]any)
	if md, _ := p["modifiedDate"].(string); len(md) != len("2025-02-19T08:41:34.0530000") {
		t.Fatalf("modifiedDate %q is not KiotViet's offset-less 7-digit form", md)
	}
	if _, ok := p["inventories"]; ok {
		t.Fatal("inventories sent without includeInventory")
	}
	if ts, _ := body["timestamp"].(string); !strings.HasSuffix(ts, "+07:00") {
		t.Fatalf("timestamp %q lacks +07:00", ts)
	}
	_, body = get("/products?lastModifiedFrom=2000-01-01&includeRemoveIds=true")
	if _, ok := body["removeId"]; !ok {
		t.Fatalf("products reply lacks removeId: %v", keys(body))
	}
	_, body = get("/categories?lastModifiedFrom=2000-01-01&includeRemoveIds=true")
	if _, ok := body["removedIds"]; !ok {
		t.Fatalf("categories reply lacks removedIds: %v", keys(body))
	}
	for _, c := range body["data"].([]any) {
		if v, ok := c.(map[string]any)["parentId"]; ok && v == nil {
			t.Fatal("null parentId sent instead of leaving it out")
		}
	}
	if status, _ := get("/products?pageSize=abc"); status != 400 {
		t.Fatalf("bad pageSize: %d", status)
	}
	s.RevokeTokens()
	if status, body := get("/branches"); status != 401 || fmt.Sprint(body["responseStatus"].(map[string]any)["errorCode"]) != "TokenException" {
		t.Fatalf("revoked: %d %v", status, body)
	}
	if n := s.Counts()[ProductsPath]; n != 4 {
		t.Fatalf("products count %d", n)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// BenchmarkPageThrough100k pages through a 100k catalogue with
// lastModifiedFrom, as a full incremental pass does, without HTTP.
func BenchmarkPageThrough100k(b *testing.B) {
	s := New(Options{Products: 100_000, Branches: 3, Categories: 120, Now: fixedNow, RateLimitPerHour: -1})
	h := s.Handler()
	form := url.Values{"scopes": {"PublicApi.Access"}, "grant_type": {"client_credentials"},
		"client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &tok)
	b.ResetTimer()
	for b.Loop() {
		for off := 0; off < 100_000; off += 100 {
			req := httptest.NewRequest("GET", fmt.Sprintf("/products?pageSize=100&currentItem=%d&includeInventory=true&lastModifiedFrom=2020-01-01T00:00:00", off), nil)
			req.Header.Set("Retailer", s.Retailer())
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	}
}

// ChangeProductsOver spreads an hour's changes over the hour: each changed product's date lies in the
// hour before the clock, after every earlier date, and only a twelfth of them in its last 5 minutes.
func TestChangeProductsOverSpreadsTheDates(t *testing.T) {
	now := fixedNow()
	s := New(Options{Products: 600, Seed: 3, Now: func() time.Time { return now }})
	newest := func(c Catalogue) time.Time {
		var m time.Time
		for _, p := range c.Products {
			if p.ModifiedDate.After(m) {
				m = p.ModifiedDate
			}
		}
		return m
	}
	before := newest(s.Snapshot())
	now = now.Add(time.Hour)
	ids := s.ChangeProductsOver(120, time.Hour)
	if len(ids) != 120 {
		t.Fatalf("changed %d products, want 120", len(ids))
	}
	changed := map[int64]bool{}
	for _, id := range ids {
		changed[id] = true
	}
	lastMinutes := 0
	for _, p := range s.Snapshot().Products {
		if !changed[p.ID] {
			continue
		}
		if !p.ModifiedDate.After(before) || p.ModifiedDate.After(now) {
			t.Errorf("product %d modified %s, want in (%s, %s]", p.ID, p.ModifiedDate, before, now)
		}
		if p.ModifiedDate.After(now.Add(-5 * time.Minute)) {
			lastMinutes++
		}
	}
	if lastMinutes < 8 || lastMinutes > 12 {
		t.Errorf("%d of 120 changes in the last 5 minutes, want about 10", lastMinutes)
	}
}
