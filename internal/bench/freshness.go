package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/functions/kiotvietwebhook"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/webhook"
)

// FreshnessResult is the webhook case: changes made one at a time in the fake shop, each timed from the
// change to its row in kiotviet_products_full, with what it cost in KiotViet calls; and the calls one
// hour of a 100,000-product shop needs with and without webhooks.
type FreshnessResult struct {
	Profile   string  `json:"profile"` // the database profile it ran under (the last one)
	Products  int     `json:"products"`
	Changes   int     `json:"changes"`
	P50MS     float64 `json:"p50Ms"`
	P95MS     float64 `json:"p95Ms"`
	MaxMS     float64 `json:"maxMs"`
	APICalls  int64   `json:"apiCalls"`  // KiotViet calls the changes cost (re-fetches of variant payloads)
	Refetched int     `json:"refetched"` // events whose product was re-read by id

	// Per hour, 100,000 products, products_full hourly and stock fresh within 10 minutes. Measured on
	// this shop: one full stock scan's calls and one hourly incremental products run's calls, scaled by
	// the catalogue's size (both are page counts: the scan reads every product, the incremental run the
	// 1% changed in an hour); then: without webhooks 6 scans + 1 incremental run; with webhooks (stock
	// events keep stock fresh, KVSYNC_STOCK_SCAN_HOURS = 6) 1/6 scan + 1 incremental run + the
	// re-fetches of that hour's changes at the measured rate.
	ScanCalls        int64   `json:"scanCalls"`
	IncrementalCalls int64   `json:"incrementalCalls"`
	HourlyWithout    float64 `json:"hourlyCallsWithoutWebhooks"`
	HourlyWith       float64 `json:"hourlyCallsWithWebhooks"`
}

func runFreshness(ctx context.Context, pool *pgxpool.Pool, cfg Config) (FreshnessResult, error) {
	const products, changes = 10_000, 100
	res := FreshnessResult{Products: products, Changes: changes}
	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		return res, err
	}
	fake := kiotvietfake.New(kiotvietfake.Options{Products: products, Branches: cfg.Branches, Categories: 40, Seed: cfg.Seed, RateLimitPerHour: -1})
	url, stop, err := serveFake(fake)
	if err != nil {
		return res, err
	}
	defer stop()
	keys, _, err := newKeys()
	if err != nil {
		return res, err
	}
	st := store.New(store.PG{Pool: pool})
	cred, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	if err != nil {
		return res, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "bench", Logger: log,
		KiotViet: kiotviet.Config{TokenURL: url + kiotvietfake.TokenPath, APIURL: url}})
	if err != nil {
		return res, err
	}
	calls := func() int64 {
		var n int64
		for path, c := range fake.Counts() {
			if path != kiotvietfake.TokenPath && path != kiotvietfake.WebhooksPath {
				n += c
			}
		}
		return n
	}
	if _, err := engine.Run(ctx, syncer.Request{CredentialID: cred, SyncType: "products_full", Full: true}); err != nil {
		return res, err
	}
	fake.ResetCounts()
	if _, err := engine.Run(ctx, syncer.Request{CredentialID: cred, SyncType: "inventory"}); err != nil {
		return res, err
	}
	res.ScanCalls = calls()

	// kvsync's receiver and one applier, as one kvsync serve replica runs them
	applier := webhook.NewApplier(webhook.Config{Store: st, Fetch: engine, Worker: "bench", Logger: log})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { applier.Run(actx); close(done) }()
	defer func() { cancel(); <-done }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: kiotvietwebhook.Handler(kiotvietwebhook.Deps{Store: st, Keys: keys, Logger: log, Stored: applier.Wake}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client, err := engine.Client(ctx, cred)
	if err != nil {
		return res, err
	}
	if _, err := webhook.Register(ctx, st, keys, client, cred, "http://"+ln.Addr().String()+"/functions/v1/kiotviet-webhook",
		[]string{"product.update"}); err != nil {
		return res, err
	}

	fake.ResetCounts()
	var took []float64
	for range changes {
		// the row's date before the change: a changed product moves to a newer one
		before := map[int64]time.Time{}
		rows, err := pool.Query(ctx, `select id, modified_date from public.kiotviet_products_full`)
		if err != nil {
			return res, err
		}
		for rows.Next() {
			var id int64
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				return res, err
			}
			before[id] = at
		}
		if err := rows.Err(); err != nil {
			return res, err
		}
		ids := fake.ChangeProducts(1)
		began := time.Now()
		deadline := began.Add(10 * time.Second)
		for {
			var got time.Time
			if err := pool.QueryRow(ctx, `select modified_date from public.kiotviet_products_full where id = $1`, ids[0]).Scan(&got); err != nil {
				return res, err
			}
			if got.After(before[ids[0]]) {
				break
			}
			if time.Now().After(deadline) {
				return res, fmt.Errorf("product %d did not reach the table within 10 s of its change", ids[0])
			}
			time.Sleep(2 * time.Millisecond)
		}
		took = append(took, ms(time.Since(began)))
	}
	res.APICalls = calls()
	slices.Sort(took)
	res.P50MS, res.P95MS, res.MaxMS = took[len(took)/2], took[len(took)*95/100], took[len(took)-1]
	if err := pool.QueryRow(ctx, `select coalesce(sum((result ->> 'refetched')::int), 0) from public.kiotviet_webhook_events`).Scan(&res.Refetched); err != nil {
		return res, err
	}

	// one hour of changes (1% of the catalogue) read by the hourly incremental run
	fake.ChangeProducts(products / 100)
	fake.ResetCounts()
	if _, err := engine.Run(ctx, syncer.Request{CredentialID: cred, SyncType: "products_full"}); err != nil {
		return res, err
	}
	res.IncrementalCalls = calls()
	scale := 100_000.0 / products
	scan, inc := float64(res.ScanCalls)*scale, float64(res.IncrementalCalls)*scale
	refetchPerChange := float64(res.APICalls) / changes
	res.HourlyWithout = 6*scan + inc
	res.HourlyWith = scan/6 + inc + refetchPerChange*1000
	return res, nil
}

func printFreshness(w io.Writer, f *FreshnessResult) {
	fmt.Fprintf(w, "\nWebhooks: %d changes one at a time in a %s-product shop, change → row in kiotviet_products_full: p50 %.0f ms, p95 %.0f ms, max %.0f ms; %d KiotViet calls (%d events re-read by id: variant payloads)\n",
		f.Changes, thousands(f.Products), f.P50MS, f.P95MS, f.MaxMS, f.APICalls, f.Refetched)
	fmt.Fprintf(w, "Calls per hour, 100,000 products, products hourly and stock within 10 min (from this shop's scan of %d calls and hourly incremental run of %d, ×10): without webhooks %s (over KiotViet's 5,000), with webhooks %s\n",
		f.ScanCalls, f.IncrementalCalls, thousands(int(math.Round(f.HourlyWithout))), thousands(int(math.Round(f.HourlyWith))))
}
