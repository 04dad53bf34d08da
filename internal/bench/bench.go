// Package bench measures kvsync against the quality bars of DESIGN.md §8 (`make bench`) and shakes it
// with faults and killed workers (`make chaos`). Both drive the real code against the fake KiotViet
// (internal/kiotvietfake) and a real PostgreSQL. The earlier system's algorithm lives here as a baseline
// only (baseline.go); it is never part of what kvsync ships.
//
// Each benchmark case runs in a child process (the same binary, `kvsync bench --child`) so that its peak
// RSS is the work's alone; the fake, with its catalogue in memory, stays in the parent. Every figure is
// measured on the run at hand: nothing in the table is computed from a model.
package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/synctest"
)

// Config is one benchmark run. Zero values mean the defaults in parentheses.
type Config struct {
	DatabaseURL string   // a database of its own: every kiotviet_* table is emptied
	Child       []string // the command that starts a child, e.g. {"/path/kvsync", "bench", "--child"}

	Sizes           []int         // catalogues at zero latency (10,000 and 100,000 products)
	Branches        int           // (5)
	LatencyProducts int           // catalogue of the latency cases (5,000)
	Latency         time.Duration // per request in the latency cases (100 ms)
	ChangeShare     float64       // products changed before the incremental run (0.01)
	DeleteShare     float64       // products deleted before the incremental run (0.005)
	Schedules       int           // due schedules in the dispatcher case (10,000)
	Credentials     int           // credentials they belong to (2,000)
	Dispatchers     int           // concurrent dispatchers (4)
	ClaimLimit      int           // schedules one claim may take (20)
	Seed            int64         // catalogue seed (11)
	NoFreshness     bool          // skip the webhook freshness case

	Commit   string    // the commit measured (default: the binary's build info)
	Out      io.Writer // the table and the checks
	Log      io.Writer // progress and the children's stderr
	JSONPath string    // when set, the report as JSON
}

func (c Config) withDefaults() Config {
	if len(c.Sizes) == 0 {
		c.Sizes = []int{10_000, 100_000}
	}
	c.Branches = cmp.Or(c.Branches, 5)
	c.LatencyProducts = cmp.Or(c.LatencyProducts, 5_000)
	c.Latency = cmp.Or(c.Latency, 100*time.Millisecond)
	c.ChangeShare = cmp.Or(c.ChangeShare, 0.01)
	c.DeleteShare = cmp.Or(c.DeleteShare, 0.005)
	c.Schedules = cmp.Or(c.Schedules, 10_000)
	c.Credentials = cmp.Or(c.Credentials, 2_000)
	c.Dispatchers = cmp.Or(c.Dispatchers, 4)
	c.ClaimLimit = cmp.Or(c.ClaimLimit, 20)
	c.Seed = cmp.Or(c.Seed, 11)
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Report is everything one run measured; --json writes it so runs can be compared across commits.
type Report struct {
	Machine    Machine          `json:"machine"`
	Cases      []Case           `json:"cases"`
	Dispatcher *DispatchResult  `json:"dispatcher,omitempty"`
	Freshness  *FreshnessResult `json:"freshness,omitempty"`
	Checks     []Check          `json:"checks"`
	TotalS     float64          `json:"totalSeconds"`
}

// Case is one row of the table.
type Case struct {
	Group        string   `json:"group"`    // e.g. "10,000 products × 5 branches"
	System       string   `json:"system"`   // kvsync | baseline | floor
	Scenario     string   `json:"scenario"` // full | incremental | unchanged | read
	Name         string   `json:"name"`
	Products     int      `json:"products"` // in the catalogue at the run
	Changed      int      `json:"changed,omitempty"`
	Deleted      int      `json:"deleted,omitempty"`
	LatencyMS    float64  `json:"latencyMs"`
	WallMS       float64  `json:"wallMs"`
	APICalls     int64    `json:"apiCalls"` // requests the fake served, token requests included
	RowsWritten  int      `json:"rowsWritten"`
	ItemsRead    int      `json:"itemsRead"`
	PeakRSSMB    float64  `json:"peakRssMb"`
	ProductsPerS float64  `json:"productsPerSecond"` // catalogue products / wall time
	VsBaseline   *float64 `json:"vsBaseline,omitempty"`
	VsFloor      *float64 `json:"vsFloor,omitempty"`
	Mode         string   `json:"mode,omitempty"`
}

// Check is one quality bar and whether this run met it.
type Check struct {
	Bar    string `json:"bar"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// ErrBarsMissed is returned by Run when a quality bar was not met (the report is complete anyway).
var ErrBarsMissed = errors.New("bench: some quality bars were not met")

// Run measures every case, prints the table and the checks, and writes the JSON report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.DatabaseURL == "" || len(cfg.Child) == 0 {
		return nil, errors.New("bench: DatabaseURL and Child are required")
	}
	began := time.Now()
	pool, err := connect(ctx, cfg.DatabaseURL, 8)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to the database: %w", err)
	}
	defer pool.Close()
	rep := &Report{Machine: describeMachine(ctx, pool)}
	rep.Machine.Commit = cmp.Or(cfg.Commit, rep.Machine.Commit)
	rep.Machine.print(cfg.Out)

	for _, n := range cfg.Sizes {
		cases, err := runGroup(ctx, cfg, pool, n, 0, true)
		if err != nil {
			return rep, err
		}
		rep.Cases = append(rep.Cases, cases...)
	}
	if cfg.LatencyProducts > 0 {
		cases, err := runGroup(ctx, cfg, pool, cfg.LatencyProducts, cfg.Latency, false)
		if err != nil {
			return rep, err
		}
		rep.Cases = append(rep.Cases, cases...)
	}
	if cfg.Schedules > 0 {
		fmt.Fprintf(cfg.Log, "bench: dispatcher, %d schedules over %d credentials, %d dispatchers\n", cfg.Schedules, cfg.Credentials, cfg.Dispatchers)
		d, err := runDispatch(ctx, pool, cfg)
		if err != nil {
			return rep, fmt.Errorf("bench: dispatcher case: %w", err)
		}
		rep.Dispatcher = &d
	}
	if !cfg.NoFreshness {
		fmt.Fprintf(cfg.Log, "bench: webhooks, change → row\n")
		f, err := runFreshness(ctx, pool, cfg)
		if err != nil {
			return rep, fmt.Errorf("bench: webhook freshness case: %w", err)
		}
		rep.Freshness = &f
	}
	rep.Checks = checks(cfg, rep)
	rep.TotalS = time.Since(began).Seconds()
	printTable(cfg.Out, rep)
	if cfg.JSONPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return rep, err
		}
		if err := os.WriteFile(cfg.JSONPath, append(b, '\n'), 0o644); err != nil {
			return rep, err
		}
	}
	for _, c := range rep.Checks {
		if !c.OK {
			return rep, ErrBarsMissed
		}
	}
	return rep, nil
}

// runGroup measures one catalogue: the API floor, the baseline and kvsync on the same pages, then
// 1% changed and 0.5% deleted, kvsync's incremental run, its re-sync with nothing changed, and the
// baseline's scheduled run on the same data (and its unchanged re-sync when withUnchangedBaseline).
func runGroup(ctx context.Context, cfg Config, pool *pgxpool.Pool, n int, latency time.Duration, withUnchangedBaseline bool) ([]Case, error) {
	group := fmt.Sprintf("%s products × %d branches", thousands(n), cfg.Branches)
	if latency > 0 {
		group += fmt.Sprintf(", %s per request", latency)
	}
	fmt.Fprintf(cfg.Log, "bench: %s: building the fake shop\n", group)
	fake := kiotvietfake.New(kiotvietfake.Options{Products: n, Branches: cfg.Branches, Categories: 40, Seed: cfg.Seed,
		RateLimitPerHour: -1, Faults: kiotvietfake.Faults{Latency: latency}})
	url, stop, err := serveFake(fake)
	if err != nil {
		return nil, err
	}
	defer stop()

	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		return nil, err
	}
	keys, keySpec, err := newKeys()
	if err != nil {
		return nil, err
	}
	credID, err := synctest.SaveCredential(ctx, store.New(store.PG{Pool: pool}), keys, fake.Credentials())
	if err != nil {
		return nil, err
	}
	creds := fake.Credentials()
	spec := Spec{DatabaseURL: cfg.DatabaseURL, APIURL: url, TokenURL: url + kiotvietfake.TokenPath, Keys: keySpec,
		CredentialID: credID, Retailer: creds.Retailer, ClientID: creds.ClientID, ClientSecret: creds.ClientSecret}

	var cases []Case
	products := len(fake.Snapshot().Products) // then kept up to date without copying the catalogue again
	measure := func(system, scenario, name string, changed, deleted int) (*Case, error) {
		s := spec
		s.Kind = system
		fake.ResetCounts()
		fmt.Fprintf(cfg.Log, "bench: %s: %s\n", group, name)
		f, err := child(ctx, cfg.Child, s, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("bench: %s, %s: %w", group, name, err)
		}
		var calls int64
		for _, v := range fake.Counts() {
			calls += v
		}
		c := Case{Group: group, System: system, Scenario: scenario, Name: name, Products: products,
			Changed: changed, Deleted: deleted, LatencyMS: float64(latency) / float64(time.Millisecond),
			WallMS: ms(f.Wall()), APICalls: calls, RowsWritten: f.Rows, ItemsRead: f.Items,
			PeakRSSMB: float64(f.PeakRSSKB) / 1024, Mode: f.Mode}
		if f.WallNS > 0 {
			c.ProductsPerS = float64(products) / f.Wall().Seconds()
		}
		cases = append(cases, c)
		fmt.Fprintf(cfg.Log, "bench:   %s, %d API calls, %d rows written, %.0f MB peak RSS\n", seconds(c.WallMS), c.APICalls, c.RowsWritten, c.PeakRSSMB)
		if _, err := pool.Exec(ctx, "analyze public.kiotviet_products_full, public.kiotviet_products, public.kiotviet_inventory"); err != nil {
			return nil, err
		}
		return &cases[len(cases)-1], nil
	}
	steps := []func() error{
		func() error {
			_, err := measure(KindFloor, "read", "API floor (read the pages only)", 0, 0)
			return err
		},
		func() error { _, err := measure(KindBaseline, "full", "earlier system: full sync", 0, 0); return err },
		func() error {
			if _, err := pool.Exec(ctx, truncateData); err != nil {
				return err
			}
			_, err := measure(KindKvsync, "full", "kvsync: full sync", 0, 0)
			return err
		},
		func() error {
			changed := len(fake.ChangeProducts(int(math.Round(float64(n) * cfg.ChangeShare))))
			deleted := len(fake.DeleteProducts(int(math.Round(float64(n) * cfg.DeleteShare))))
			products -= deleted
			if _, err := measure(KindKvsync, "incremental", fmt.Sprintf("kvsync: incremental (%s changed, %s deleted)", thousands(changed), thousands(deleted)), changed, deleted); err != nil {
				return err
			}
			if _, err := measure(KindKvsync, "unchanged", "kvsync: re-sync, nothing changed", 0, 0); err != nil {
				return err
			}
			if _, err := measure(KindBaseline, "incremental", "earlier system: scheduled run (same changes)", changed, deleted); err != nil {
				return err
			}
			if withUnchangedBaseline {
				_, err := measure(KindBaseline, "unchanged", "earlier system: re-sync, nothing changed", 0, 0)
				return err
			}
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return cases, err
		}
	}
	ratios(cases)
	return cases, nil
}

// ratios fills vs baseline (same scenario) and vs floor (the group's read-only pass).
func ratios(cases []Case) {
	var floor float64
	base := map[string]float64{}
	for _, c := range cases {
		switch c.System {
		case KindFloor:
			floor = c.WallMS
		case KindBaseline:
			base[c.Scenario] = c.WallMS
		}
	}
	for i := range cases {
		c := &cases[i]
		if floor > 0 && c.System != KindFloor {
			r := c.WallMS / floor
			c.VsFloor = &r
		}
		b, ok := base[c.Scenario]
		if !ok && c.Scenario == "unchanged" {
			b, ok = base["incremental"], base["incremental"] > 0 // the baseline's work is the same either way
		}
		if ok && b > 0 && c.System == KindKvsync {
			r := c.WallMS / b
			c.VsBaseline = &r
		}
	}
}

// serveFake serves the fake shop on a free port of 127.0.0.1.
func serveFake(fake *kiotvietfake.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// newKeys makes a throwaway encryption key for the run's credential.
func newKeys() (*secret.Keyring, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	spec := "bench:" + base64.StdEncoding.EncodeToString(b[:])
	k, err := secret.ParseKeys(spec, "")
	return k, spec, err
}

// truncateAll empties every kiotviet_* table; truncateData the data tables and cursors only.
const (
	truncateAll = `do $$
declare names text;
begin
  select string_agg(format('public.%I', tablename), ', ') into names
    from pg_tables where schemaname = 'public' and tablename like 'kiotviet\_%';
  if names is not null then
    execute 'truncate ' || names || ' cascade';
  end if;
end $$`
	truncateData = `truncate public.kiotviet_products_full, public.kiotviet_products, public.kiotviet_inventory,
  public.kiotviet_categories, public.kiotviet_attributes, public.kiotviet_branches, public.kiotviet_sync_state,
  public.kiotviet_sync_seen`
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
