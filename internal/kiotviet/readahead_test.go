package kiotviet_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

// inFlight wraps a handler and records the most API requests it had in flight at once.
type inFlight struct {
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == kiotvietfake.TokenPath {
			h.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.now++
		f.max = max(f.max, f.now)
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.now--; f.mu.Unlock() }()
		h.ServeHTTP(w, r)
	})
}

func (f *inFlight) most() int { f.mu.Lock(); defer f.mu.Unlock(); return f.max }

// readAheadEnv serves a fake shop with latency (so requests overlap) and counts requests in flight.
// A nil clk means the real clock: a Retry-After is then really waited.
func readAheadEnv(t *testing.T, opts kiotvietfake.Options, concurrency int, clk *clock) (*kiotvietfake.Server, *kiotviet.Client, *inFlight) {
	t.Helper()
	now, sleep := time.Now, kiotviet.SleepContext
	if clk != nil {
		now, sleep = clk.Now, clk.Sleep
	}
	opts.Now = now
	opts.RateLimitPerHour = -1
	opts.Faults.Latency = 15 * time.Millisecond
	fake := kiotvietfake.New(opts)
	fl := &inFlight{}
	srv := httptest.NewServer(fl.wrap(fake.Handler()))
	t.Cleanup(srv.Close)
	cfg := kiotviet.Config{TokenURL: srv.URL + kiotvietfake.TokenPath, APIURL: srv.URL, HTTPClient: srv.Client(),
		Now: now, Sleep: sleep, Jitter: func(d time.Duration) time.Duration { return d }, ReadConcurrency: concurrency}
	return fake, kiotviet.New(cfg, fake.Retailer(), kiotviet.NewTokenSource(cfg, fake.Credentials())), fl
}

func ids(items []kiotviet.Product) []int64 {
	out := make([]int64, len(items))
	for i, p := range items {
		out[i] = p.ID
	}
	return out
}

// With ReadAhead a listing has several pages requested at once and hands them out in order: the same
// products in the same order, for the same calls, as reading one page after another.
func TestReadAheadReadsTheSamePagesAtOnce(t *testing.T) {
	opts := kiotvietfake.Options{Products: 1050}
	o := kiotviet.ListOptions{OrderBy: "modifiedDate", OrderDirection: "Asc", IncludeInventory: true}

	_, seq, seqFlight := readAheadEnv(t, opts, 4, newClock())
	want, _, err := collect(t, seq.Products(o))
	must(t, err)
	eq(t, 1, seqFlight.most(), "without ReadAhead one page at a time")

	o.ReadAhead = true
	_, par, parFlight := readAheadEnv(t, opts, 4, newClock())
	got, pages, err := collect(t, par.Products(o))
	must(t, err)
	eq(t, ids(want), ids(got), "products in order")
	eq(t, seq.Calls(), par.Calls(), "calls")
	eq(t, 11, len(pages), "pages")
	for i, pg := range pages {
		eq(t, i*100, pg.Offset, "offset of page "+strconv.Itoa(i))
	}
	if m := parFlight.most(); m < 2 || m > 4 {
		t.Fatalf("at most %d requests were in flight; want 2 to 4", m)
	}
}

// A busy server answers 429 to a client with too many requests in flight: the client waits it out
// (Retry-After, on the real clock), lowers its read concurrency, and the listing still ends complete.
func TestReadAheadBacksOffABusyServer(t *testing.T) {
	fake, c, _ := readAheadEnv(t, kiotvietfake.Options{Products: 1500, MaxConcurrentPerClient: 2}, 4, nil)
	got, _, err := collect(t, c.Products(kiotviet.ListOptions{OrderBy: "modifiedDate", OrderDirection: "Asc", ReadAhead: true}))
	must(t, err)
	seen := map[int64]bool{}
	for _, id := range ids(got) {
		if seen[id] {
			t.Fatalf("product %d read twice", id)
		}
		seen[id] = true
	}
	eq(t, 1500, len(seen), "products")
	if fake.TooManyRequests() == 0 {
		t.Fatal("the fake's cap never answered 429: the test did not exercise the back-off")
	}
	if c.ReadConcurrency() >= 4 {
		t.Fatalf("read concurrency still %d after 429s", c.ReadConcurrency())
	}
}

// The fake's cap: one client's requests beyond it are refused with 429 and a Retry-After, another
// client (Retailer) is not affected.
func TestFakeCapsRequestsInFlightPerClient(t *testing.T) {
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 10, MaxConcurrentPerClient: 1, RateLimitPerHour: -1,
		Faults: kiotvietfake.Faults{Latency: 2 * time.Second}})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	get := func(retailer string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+kiotvietfake.ProductsPath, nil)
		req.Header.Set("Retailer", retailer)
		resp, err := srv.Client().Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	// Four requests of one client at once, each held 2 s by the latency: one is admitted, the others
	// are refused at once; a request of another client meanwhile is admitted.
	var wg sync.WaitGroup
	codes := make(chan *http.Response, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 4 {
				codes <- get("another-shop")
				return
			}
			codes <- get(fake.Retailer())
		}()
	}
	wg.Wait()
	close(codes)
	refused, admitted := 0, 0
	for resp := range codes {
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
			eq(t, "1", resp.Header.Get("Retry-After"), "Retry-After")
		} else {
			admitted++
		}
	}
	if refused == 0 || admitted < 2 {
		t.Fatalf("%d refused, %d admitted; want some refused and both clients admitted", refused, admitted)
	}
	if fake.TooManyRequests() == 0 {
		t.Fatal("TooManyRequests did not count the refusal")
	}
}

// Read ahead keeps the pager's stop rules: a short page in the middle ends the listing there (the pages
// read beyond it are dropped), and a server that ignores currentItem is still caught.
func TestReadAheadKeepsTheStopRules(t *testing.T) {
	c := misbehaving(t, func(off int) string {
		if off == 300 {
			return fullPage(off+1, 50, `"total":1000,`)
		}
		return fullPage(off+1, 100, `"total":1000,`)
	})
	items, _, err := collect(t, c.Products(kiotviet.ListOptions{ReadAhead: true}))
	must(t, err)
	eq(t, 350, len(items), "items up to the short page")
	for i, p := range items {
		if p.ID != int64(i+1) {
			t.Fatalf("item %d has id %d", i, p.ID)
		}
	}

	c = misbehaving(t, func(int) string { return fullPage(1, 100, `"total":100000,`) })
	_, _, err = collect(t, c.Products(kiotviet.ListOptions{ReadAhead: true}))
	if !errors.Is(err, kiotviet.ErrRunawayPaging) {
		t.Fatalf("want ErrRunawayPaging, got %v", err)
	}
	if n := c.Calls(); n > 1+kiotviet.DefaultReadConcurrency {
		t.Fatalf("%d calls before stopping; want at most %d", n, 1+kiotviet.DefaultReadConcurrency)
	}
}

// memBudget is a shared budget of n calls (in memory here; kvsync keeps it in Postgres).
type memBudget struct {
	mu   sync.Mutex
	left int
}

func (b *memBudget) Take(_ context.Context, want int) (int64, int, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(want, b.left)
	b.left -= n
	return 1, n, time.Now().Add(time.Hour), nil
}

func (b *memBudget) Return(_ context.Context, _ int64, unused int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left += unused
	return nil
}

// Pages read ahead each take their call from the shared budget: a listing longer than the budget stops
// with ErrBudget and never sends more requests than the budget granted.
func TestReadAheadStaysWithinTheSharedBudget(t *testing.T) {
	budget := &memBudget{left: 6}
	clk := newClock()
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 1500, Now: clk.Now, RateLimitPerHour: -1,
		Faults: kiotvietfake.Faults{Latency: 5 * time.Millisecond}})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	cfg := kiotviet.Config{TokenURL: srv.URL + kiotvietfake.TokenPath, APIURL: srv.URL, HTTPClient: srv.Client(),
		Now: clk.Now, Sleep: clk.Sleep, Budget: budget, RateLimitPerHour: 5000}
	c := kiotviet.New(cfg, fake.Retailer(), kiotviet.NewTokenSource(cfg, fake.Credentials()))
	_, _, err := collect(t, c.Products(kiotviet.ListOptions{ReadAhead: true}))
	if !errors.Is(err, kiotviet.ErrBudget) {
		t.Fatalf("want ErrBudget, got %v", err)
	}
	if n := fake.Counts()[kiotvietfake.ProductsPath]; n > 6 {
		t.Fatalf("%d product requests for a budget of 6", n)
	}
}
