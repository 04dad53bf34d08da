package kiotviet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

// clock is a fake time source: Sleep records the wait and moves time on,
// so backoff and limiter tests run instantly.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 23, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return nil
}

func (c *clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// env bundles what a test needs.
type env struct {
	fake   *kiotvietfake.Server
	client *kiotviet.Client
	ts     kiotviet.TokenSource
	cfg    kiotviet.Config
	clock  *clock
	url    string
}

// setup starts a fake shop with opts and a client sharing one fake clock.
func setup(t *testing.T, opts kiotvietfake.Options, tweak func(*kiotviet.Config)) *env {
	t.Helper()
	clk := newClock()
	opts.Now = clk.Now
	if opts.Products == 0 {
		opts.Products = 45
	}
	fake := kiotvietfake.New(opts)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	cfg := kiotviet.Config{
		TokenURL: srv.URL + kiotvietfake.TokenPath, APIURL: srv.URL, HTTPClient: srv.Client(),
		Now: clk.Now, Sleep: clk.Sleep, Jitter: func(d time.Duration) time.Duration { return d },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ts := kiotviet.NewTokenSource(cfg, fake.Credentials())
	return &env{fake: fake, client: kiotviet.New(cfg, fake.Retailer(), ts), ts: ts, cfg: cfg, clock: clk, url: srv.URL}
}

func collect[T any](t *testing.T, p *kiotviet.Pager[T]) ([]T, []kiotviet.Page[T], error) {
	t.Helper()
	var items []T
	var pages []kiotviet.Page[T]
	for p.Next(context.Background()) {
		pg := p.Page()
		pages = append(pages, pg)
		items = append(items, pg.Items...)
	}
	return items, pages, p.Err()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eq[T any](t *testing.T, want, got T, what string) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s: want %v, got %v", what, want, got)
	}
}

func TestEveryEndpointMatchesTheCatalogue(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 230, Branches: 3, Categories: 25, Seed: 7}, nil)
	snap := e.fake.Snapshot()

	products, pages, err := collect(t, e.client.Products(kiotviet.ListOptions{IncludeInventory: true, IncludeQuantity: true, OrderBy: "id"}))
	must(t, err)
	eq(t, len(snap.Products), len(products), "product count")
	eq(t, 3, len(pages), "pages of 100")
	eq(t, len(snap.Products), pages[0].Total, "total")
	for i, got := range products {
		want := snap.Products[i]
		if got.ID != want.ID || got.Code != want.Code || got.Name != want.Name || got.CategoryName != want.CategoryName ||
			got.BasePrice != want.BasePrice || got.Barcode != want.Barcode || got.IsActive != want.IsActive ||
			got.MasterProductID != want.MasterProductID || got.MasterUnitID != want.MasterUnitID ||
			!got.ModifiedDate.Equal(want.ModifiedDate) || !got.CreatedDate.Equal(want.CreatedDate) ||
			!slices.Equal(got.Images, want.Images) || len(got.Inventories) != 3 || len(got.Attributes) != len(want.Attributes) {
			t.Fatalf("product %d differs:\n got %+v\nwant %+v", i, got, want)
		}
		for j, inv := range got.Inventories {
			w := want.Inventories[j]
			if inv.BranchID != w.BranchID || inv.BranchName != w.BranchName || inv.OnHand != w.OnHand || inv.MinQuantity != w.MinQuantity {
				t.Fatalf("inventory %d of product %d differs: %+v vs %+v", j, got.ID, inv, w)
			}
		}
	}

	cats, _, err := collect(t, e.client.Categories(kiotviet.ListOptions{OrderBy: "categoryId"}))
	must(t, err)
	eq(t, len(snap.Categories), len(cats), "categories")
	for i, c := range cats {
		eq(t, snap.Categories[i].ID, c.ID, "category id")
		eq(t, snap.Categories[i].ParentID, c.ParentID, "parent id")
	}
	tree, _, err := collect(t, e.client.Categories(kiotviet.ListOptions{HierachicalData: true}))
	must(t, err)
	var count func([]kiotviet.Category) int
	count = func(cs []kiotviet.Category) int {
		n := len(cs)
		for _, c := range cs {
			n += count(c.Children)
		}
		return n
	}
	eq(t, len(snap.Categories), count(tree), "categories in the tree")

	branches, _, err := collect(t, e.client.Branches(kiotviet.ListOptions{}))
	must(t, err)
	eq(t, 3, len(branches), "branches")
	eq(t, snap.Branches[0].Name, branches[0].BranchName, "branch name")

	onHands, _, err := collect(t, e.client.ProductOnHands(kiotviet.ListOptions{}))
	must(t, err)
	eq(t, len(snap.Products), len(onHands), "onhand rows")
	eq(t, snap.Products[0].Inventories[1].OnHand, onHands[0].Inventories[1].OnHand, "onhand")

	attrs, err := e.client.Attributes(context.Background())
	must(t, err)
	eq(t, len(snap.Attributes), len(attrs), "attributes")
	for i, a := range attrs {
		eq(t, snap.Attributes[i].Name, a.Name, "attribute name")
		eq(t, len(snap.Attributes[i].Values), len(a.Values), "attribute values")
	}

	api := int64(0)
	for path, n := range e.fake.Counts() {
		if path != kiotvietfake.TokenPath {
			api += n
		}
	}
	eq(t, api, e.client.Calls(), "client calls = fake's API requests")
	eq(t, int64(1), e.fake.Counts()[kiotvietfake.TokenPath], "one token fetch")
}

func TestImagesAsObjects(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 60, ImagesAsObjects: true}, nil)
	products, _, err := collect(t, e.client.Products(kiotviet.ListOptions{OrderBy: "id"}))
	must(t, err)
	for i, p := range products {
		eq(t, e.fake.Snapshot().Products[i].Images, p.Images, "images")
	}
}

func TestTokenRequestIsKiotVietsForm(t *testing.T) {
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		eq(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"), "content type")
		fmt.Fprint(w, `{"access_token":"abc","expires_in":3600,"token_type":"Bearer"}`)
	}))
	defer srv.Close()
	clk := newClock()
	tok, err := kiotviet.FetchToken(context.Background(), kiotviet.Config{TokenURL: srv.URL, Now: clk.Now},
		kiotviet.Credentials{ClientID: "id1", ClientSecret: "s3cret"})
	must(t, err)
	eq(t, url.Values{"scopes": {"PublicApi.Access"}, "grant_type": {"client_credentials"},
		"client_id": {"id1"}, "client_secret": {"s3cret"}}, form, "form")
	eq(t, clk.Now().Add(time.Hour), tok.ExpiresAt, "expires_in honoured")
	if strings.Contains(fmt.Sprint(tok), "abc") {
		t.Error("Token's String leaks the access token")
	}
}

func TestFetchTokenRefusedCredentialsDoNotLeak(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	creds := e.fake.Credentials()
	creds.ClientSecret = "wrong-secret-value"
	_, err := kiotviet.FetchToken(context.Background(), e.cfg, creds)
	if !errors.Is(err, kiotviet.ErrUnauthorized) {
		t.Fatalf("want ErrUnauthorized, got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), creds.ClientID) {
		t.Fatalf("error leaks a credential: %v", err)
	}
	eq(t, int64(1), e.fake.Counts()[kiotvietfake.TokenPath], "refused credentials are not retried")
}

func TestTokenSourceSingleFlightAndRefreshAhead(t *testing.T) {
	e := setup(t, kiotvietfake.Options{TokenTTL: time.Hour}, nil)
	var wg sync.WaitGroup
	toks := make([]kiotviet.Token, 20)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := e.ts.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	eq(t, int64(1), e.fake.Counts()[kiotvietfake.TokenPath], "one fetch for 20 callers")
	for _, tok := range toks {
		eq(t, toks[0].AccessToken, tok.AccessToken, "same token")
	}
	e.clock.Advance(50 * time.Minute) // 10 min left: still used
	tok, err := e.ts.Token(context.Background())
	must(t, err)
	eq(t, toks[0].AccessToken, tok.AccessToken, "cached until the margin")
	e.clock.Advance(6 * time.Minute) // 4 min left: inside the 5 min margin
	tok, err = e.ts.Token(context.Background())
	must(t, err)
	if tok.AccessToken == toks[0].AccessToken {
		t.Fatal("token not refreshed ahead of expiry")
	}
	eq(t, int64(2), e.fake.Counts()[kiotvietfake.TokenPath], "token fetches")
}

func TestRevokedTokenIsRefreshedOnce(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	ctx := context.Background()
	_, err := e.client.Attributes(ctx)
	must(t, err)
	e.fake.RevokeTokens()
	_, err = e.client.Attributes(ctx)
	must(t, err)
	eq(t, int64(2), e.fake.Counts()[kiotvietfake.TokenPath], "token fetches")
	eq(t, int64(3), e.client.Calls(), "calls: ok, 401, retried ok")
	eq(t, 0, len(e.clock.Sleeps()), "re-authentication does not back off")
}

func TestWrongRetailerFailsAfterOneReauth(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	c := kiotviet.New(e.cfg, "not-the-shop", e.ts)
	_, err := c.Attributes(context.Background())
	if !errors.Is(err, kiotviet.ErrUnauthorized) {
		t.Fatalf("want ErrUnauthorized, got %v", err)
	}
	var apiErr *kiotviet.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Endpoint != "/attributes/allwithdistinctvalue" {
		t.Fatalf("want a 401 APIError naming the endpoint, got %#v", err)
	}
	eq(t, int64(2), c.Calls(), "one retry with a fresh token, then give up")
}

func Test429HonoursRetryAfter(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	e.fake.SetFaults(kiotvietfake.Faults{Fail429Next: 2, RetryAfter: 7 * time.Second})
	_, err := e.client.Attributes(context.Background())
	must(t, err)
	eq(t, []time.Duration{7 * time.Second, 7 * time.Second}, e.clock.Sleeps(), "sleeps")
	eq(t, int64(3), e.client.Calls(), "calls")
}

func Test429WithoutRetryAfterBacksOff(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	e.fake.SetFaults(kiotvietfake.Faults{Fail429Next: 1, OmitRetryAfter: true})
	_, err := e.client.Attributes(context.Background())
	must(t, err)
	eq(t, []time.Duration{time.Second}, e.clock.Sleeps(), "sleeps")
}

func TestFakeHourlyLimitGivesRateLimitError(t *testing.T) {
	e := setup(t, kiotvietfake.Options{RateLimitPerHour: 2}, func(c *kiotviet.Config) { c.RateLimitPerHour = -1 })
	ctx := context.Background()
	for range 2 {
		_, err := e.client.Attributes(ctx)
		must(t, err)
	}
	_, err := e.client.Attributes(ctx)
	var rl *kiotviet.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, kiotviet.ErrRateLimited) {
		t.Fatalf("want a RateLimitError, got %v", err)
	}
	eq(t, time.Hour, rl.RetryAfter, "retry after")
	e.clock.Advance(time.Hour)
	_, err = e.client.Attributes(ctx)
	must(t, err)
}

func TestClientLimiterWaitsOutTheHour(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, func(c *kiotviet.Config) { c.RateLimitPerHour = 3 })
	for range 5 {
		_, err := e.client.Attributes(context.Background())
		must(t, err)
	}
	eq(t, []time.Duration{time.Hour}, e.clock.Sleeps(), "the 4th call waits an hour; the 5th fits in the same window")
}

func Test5xxBackoffIsExponentialAndBounded(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	e.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 3})
	_, err := e.client.Attributes(context.Background())
	must(t, err)
	eq(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, e.clock.Sleeps(), "backoff")

	e.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 100, Status5xxCode: 502})
	tok, _ := e.ts.Token(context.Background())
	_, err = e.client.Attributes(context.Background())
	var apiErr *kiotviet.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || apiErr.Code != "ServiceUnavailable" {
		t.Fatalf("want a 502 APIError with the errorCode, got %v", err)
	}
	if strings.Contains(err.Error(), tok.AccessToken) {
		t.Fatal("error contains the token")
	}
	eq(t, int64(4+kiotviet.DefaultMaxAttempts), e.client.Calls(), "bounded tries")
}

func TestJitterStaysWithinHalfToFull(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, func(c *kiotviet.Config) { c.Jitter = nil })
	e.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 4})
	_, err := e.client.Attributes(context.Background())
	must(t, err)
	for i, d := range e.clock.Sleeps() {
		full := time.Second << i
		if d < full/2 || d > full {
			t.Errorf("retry %d waited %s, want within [%s, %s]", i+1, d, full/2, full)
		}
	}
}

func TestTimeoutAndMalformedReplyAreRetried(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, func(c *kiotviet.Config) { c.RequestTimeout = 200 * time.Millisecond })
	e.fake.SetFaults(kiotvietfake.Faults{TimeoutNext: 1, MalformedNext: 1})
	products, _, err := collect(t, e.client.Products(kiotviet.ListOptions{PageSize: 50}))
	must(t, err)
	eq(t, 45, len(products), "products")
	eq(t, int64(3), e.client.Calls(), "timeout, malformed, then the page")
}

func TestCancellation(t *testing.T) {
	e := setup(t, kiotvietfake.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := e.client.Products(kiotviet.ListOptions{})
	if p.Next(ctx) || !errors.Is(p.Err(), context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", p.Err())
	}

	// Cancelled while backing off: the sleep reports it and no retry follows.
	ctx, cancel = context.WithCancel(context.Background())
	e2 := setup(t, kiotvietfake.Options{}, func(c *kiotviet.Config) {
		c.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	})
	e2.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 5})
	_, err := e2.client.Attributes(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	eq(t, int64(1), e2.client.Calls(), "no call after cancellation")
}

func TestPagingStopsOnTotalShortAndEmptyPages(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 40}, nil)
	n := len(e.fake.Snapshot().Products)
	for _, size := range []int{n, n / 2, 7, n + 1} {
		e.fake.ResetCounts()
		items, _, err := collect(t, e.client.Products(kiotviet.ListOptions{PageSize: size}))
		must(t, err)
		eq(t, n, len(items), "items")
		eq(t, int64((n+size-1)/size), e.fake.Counts()[kiotvietfake.ProductsPath], fmt.Sprintf("requests at size %d", size))
	}
	// Nothing modified since: one request, no page.
	e.fake.ResetCounts()
	items, pages, err := collect(t, e.client.Products(kiotviet.ListOptions{LastModifiedFrom: e.clock.Now().Add(time.Hour)}))
	must(t, err)
	eq(t, 0, len(items)+len(pages), "empty listing")
	eq(t, int64(1), e.fake.Counts()[kiotvietfake.ProductsPath], "requests")
}

func TestPageSizeIsClampedTo100(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprint(w, `{"access_token":"t","expires_in":3600}`)
			return
		}
		got = append(got, r.URL.Query().Get("pageSize"))
		fmt.Fprint(w, `{"total":0,"data":[]}`)
	}))
	defer srv.Close()
	clk := newClock()
	cfg := kiotviet.Config{TokenURL: srv.URL + "/token", APIURL: srv.URL, Now: clk.Now, Sleep: clk.Sleep}
	c := kiotviet.New(cfg, "shop", kiotviet.NewTokenSource(cfg, kiotviet.Credentials{}))
	_, _, err := collect(t, c.Products(kiotviet.ListOptions{PageSize: 500}))
	must(t, err)
	eq(t, []string{"100"}, got, "pageSize sent")
}

// misbehaving serves pages built by page(currentItem).
func misbehaving(t *testing.T, page func(offset int) string) *kiotviet.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprint(w, `{"access_token":"t","expires_in":3600}`)
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("currentItem"))
		fmt.Fprint(w, page(off))
	}))
	t.Cleanup(srv.Close)
	clk := newClock()
	cfg := kiotviet.Config{TokenURL: srv.URL + "/token", APIURL: srv.URL, Now: clk.Now, Sleep: clk.Sleep}
	return kiotviet.New(cfg, "shop", kiotviet.NewTokenSource(cfg, kiotviet.Credentials{}))
}

func fullPage(first, n int, extra string) string {
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"id":%d}`, first+i))
	}
	return `{` + extra + `"data":[` + strings.Join(items, ",") + `]}`
}

func TestPagingNeverLoopsForever(t *testing.T) {
	// Ignores currentItem: the same page again and again.
	c := misbehaving(t, func(int) string { return fullPage(1, 100, `"total":100000,`) })
	_, _, err := collect(t, c.Products(kiotviet.ListOptions{}))
	if !errors.Is(err, kiotviet.ErrRunawayPaging) {
		t.Fatalf("want ErrRunawayPaging, got %v", err)
	}
	eq(t, int64(2), c.Calls(), "stops at the repeated page")

	// No total and endless full pages: stopped by MaxPages.
	c = misbehaving(t, func(off int) string { return fullPage(off+1, 100, "") })
	_, _, err = collect(t, c.Products(kiotviet.ListOptions{MaxPages: 5}))
	if !errors.Is(err, kiotviet.ErrRunawayPaging) {
		t.Fatalf("want ErrRunawayPaging, got %v", err)
	}
	eq(t, int64(5), c.Calls(), "calls")

	// A total that keeps growing is bounded by twice the largest total.
	c = misbehaving(t, func(off int) string { return fullPage(off+1, 100, fmt.Sprintf(`"total":%d,`, off+200)) })
	_, _, err = collect(t, c.Products(kiotviet.ListOptions{}))
	if !errors.Is(err, kiotviet.ErrRunawayPaging) {
		t.Fatalf("want ErrRunawayPaging, got %v", err)
	}

	// total 0 with data is not trusted; the short page ends it.
	c = misbehaving(t, func(off int) string {
		if off >= 200 {
			return fullPage(off+1, 3, `"total":0,`)
		}
		return fullPage(off+1, 100, `"total":0,`)
	})
	items, _, err := collect(t, c.Products(kiotviet.ListOptions{}))
	must(t, err)
	eq(t, 203, len(items), "items")
}

func TestIncrementalChangesAndRemovedIDs(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 300}, nil)
	e.clock.Advance(time.Minute)
	since := e.clock.Now()
	changed := e.fake.ChangeProducts(7)
	deleted := e.fake.DeleteProducts(3)
	items, pages, err := collect(t, e.client.Products(kiotviet.ListOptions{LastModifiedFrom: since, IncludeRemoveIDs: true}))
	must(t, err)
	var ids []int64
	for _, p := range items {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	var stillThere []int64
	for _, id := range changed {
		if !slices.Contains(deleted, id) {
			stillThere = append(stillThere, id)
		}
	}
	eq(t, stillThere, ids, "changed ids")
	eq(t, 1, len(pages), "one page")
	got := slices.Clone(pages[0].RemovedIDs)
	slices.Sort(got)
	eq(t, deleted, got, "removed ids")

	// Only deletions since: a page with no items still carries them.
	e.clock.Advance(time.Minute)
	since = e.clock.Now()
	deleted = e.fake.DeleteProducts(2)
	items, pages, err = collect(t, e.client.Products(kiotviet.ListOptions{LastModifiedFrom: since, IncludeRemoveIDs: true}))
	must(t, err)
	eq(t, 0, len(items), "items")
	eq(t, 1, len(pages), "pages")
	got = slices.Clone(pages[0].RemovedIDs)
	slices.Sort(got)
	eq(t, deleted, got, "removed ids")
}

func TestStockMovesShowOnlyInProductOnHands(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 120}, nil)
	e.clock.Advance(time.Minute)
	since := e.clock.Now()
	moved := e.fake.MoveStock(4)
	products, _, err := collect(t, e.client.Products(kiotviet.ListOptions{LastModifiedFrom: since}))
	must(t, err)
	eq(t, 0, len(products), "a stock move does not touch the product's modifiedDate")
	rows, _, err := collect(t, e.client.ProductOnHands(kiotviet.ListOptions{LastModifiedFrom: since}))
	must(t, err)
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	eq(t, moved, ids, "moved ids")
}

func TestDriftDuplicatesButNeverLoses(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 250}, nil)
	before := e.fake.Snapshot().Products
	e.fake.SetFaults(kiotvietfake.Faults{DriftInsertNext: 3})
	items, _, err := collect(t, e.client.Products(kiotviet.ListOptions{OrderBy: "createdDate", OrderDirection: "Desc"}))
	must(t, err)
	seen := map[int64]bool{}
	for _, p := range items {
		seen[p.ID] = true
	}
	for _, p := range before {
		if !seen[p.ID] {
			t.Fatalf("product %d lost while paging", p.ID)
		}
	}
	if len(items) <= len(before) {
		t.Fatalf("expected duplicates from inserts at the front, got %d items for %d products", len(items), len(before))
	}
}

func TestReusedCodeAndNewCategory(t *testing.T) {
	e := setup(t, kiotvietfake.Options{Products: 50}, nil)
	e.clock.Advance(time.Minute)
	since := e.clock.Now()
	deleted := e.fake.DeleteProducts(1)
	id, code, ok := e.fake.ReuseDeletedCode()
	if !ok || id == deleted[0] {
		t.Fatalf("reuse: %d %q %v", id, code, ok)
	}
	items, _, err := collect(t, e.client.Products(kiotviet.ListOptions{LastModifiedFrom: since}))
	must(t, err)
	eq(t, 1, len(items), "items")
	eq(t, code, items[0].Code, "reused code")

	root := e.fake.Snapshot().Categories[0]
	catID, err := e.fake.AddCategory("Hàng mới về", root.ID)
	must(t, err)
	cats, _, err := collect(t, e.client.Categories(kiotviet.ListOptions{LastModifiedFrom: since}))
	must(t, err)
	eq(t, 1, len(cats), "new categories")
	eq(t, catID, cats[0].ID, "category id")
	eq(t, root.ID, cats[0].ParentID, "parent")
}

func TestPagerErrorNamesEndpointAndCode(t *testing.T) {
	c := misbehaving(t, func(int) string { return `{"data": 5}` })
	_, _, err := collect(t, c.Categories(kiotviet.ListOptions{}))
	if err == nil || !strings.Contains(err.Error(), "/categories") {
		t.Fatalf("want a decode error naming /categories, got %v", err)
	}
	raw, _ := json.Marshal(err.Error())
	if strings.Contains(string(raw), "Bearer") {
		t.Fatal("error mentions the bearer token")
	}
}
