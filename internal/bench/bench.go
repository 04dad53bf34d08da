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
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/synctest"
)

// Config is one benchmark run. Zero values mean the defaults in parentheses.
type Config struct {
	DatabaseURL string   // a database of its own: every kiotviet_* table is emptied, its settings changed
	Child       []string // the command that starts a child, e.g. {"/path/kvsync", "bench", "--child"}

	Sizes           []int         // catalogues at zero latency (nil: 10,000 and 100,000 products; empty: none)
	Branches        int           // (5)
	LatencyProducts int           // catalogue of the latency cases (5,000)
	Latency         time.Duration // per request in the latency cases (100 ms)
	ChangeShare     float64       // products changed before each incremental run (0.01)
	DeleteShare     float64       // products deleted before each incremental run (0.005)
	Schedules       int           // due schedules in the dispatcher case (10,000)
	Credentials     int           // credentials they belong to (2,000)
	Dispatchers     int           // concurrent dispatchers (4)
	ClaimLimit      int           // schedules one claim may take (20)
	TickShops       int           // shops in the tick case, one due schedule each (10,000; -1: none)
	TickClaimLimit  int           // schedules one claim of the tick case may take (100)
	Seed            int64         // catalogue seed (11)
	Runs            int           // runs of each timed case; the table shows their median (3)
	LargeRuns       int           // runs of each full sync above 10,000 products, at most Runs (2)
	Profiles        []string      // database profiles, each case run under every one (dev, durable)
	ReadConcurrency int           // kvsync's pages read at once (0: its default), to compare settings
	WriteBatchPages int           // kvsync's pages written in one call at most (0: its default)
	NoFreshness     bool          // skip the webhook freshness case

	Commit   string    // the commit measured (default: the binary's build info)
	Out      io.Writer // the table and the checks
	Log      io.Writer // progress and the children's stderr
	JSONPath string    // when set, the report as JSON
}

func (c Config) withDefaults() Config {
	if c.Sizes == nil {
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
	c.TickShops = cmp.Or(c.TickShops, 10_000)
	c.TickClaimLimit = cmp.Or(c.TickClaimLimit, 100)
	c.Seed = cmp.Or(c.Seed, 11)
	c.Runs = max(cmp.Or(c.Runs, 3), 1)
	c.LargeRuns = max(cmp.Or(c.LargeRuns, 2), 1)
	if len(c.Profiles) == 0 {
		c.Profiles = []string{ProfileDev, ProfileDurable}
	}
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
	Machine     Machine          `json:"machine"`
	Profiles    []string         `json:"profiles"`
	Runs        int              `json:"runs"`
	Cases       []Case           `json:"cases"`
	Dispatchers []DispatchResult `json:"dispatchers,omitempty"` // one per profile
	Freshness   *FreshnessResult `json:"freshness,omitempty"`
	Checks      []Check          `json:"checks"`
	TotalS      float64          `json:"totalSeconds"`
}

// Case is one row of the table under one database profile. Its figures are those of the median run.
type Case struct {
	Group        string    `json:"group"`   // e.g. "10,000 products × 5 branches"
	Profile      string    `json:"profile"` // dev | durable; the floor, which reads no database, is measured once and listed under each
	System       string    `json:"system"`  // kvsync | baseline | floor
	Scenario     string    `json:"scenario"`
	Name         string    `json:"name"`
	Products     int       `json:"products"` // in the catalogue at the run
	Changed      int       `json:"changed,omitempty"`
	Deleted      int       `json:"deleted,omitempty"`
	LatencyMS    float64   `json:"latencyMs"`
	Runs         int       `json:"runs"`
	RunsMS       []float64 `json:"runsMs"` // every run's wall time, in the order they ran
	WallMS       float64   `json:"wallMs"` // their median
	APICalls     int64     `json:"apiCalls"`
	TooMany      int64     `json:"tooManyRequests"` // 429s the fake answered in the median run
	RowsWritten  int       `json:"rowsWritten"`
	ItemsRead    int       `json:"itemsRead"`
	PeakRSSMB    float64   `json:"peakRssMb"`
	ProductsPerS float64   `json:"productsPerSecond"` // catalogue products / median wall time
	VsBaseline   *float64  `json:"vsBaseline,omitempty"`
	VsFloor      *float64  `json:"vsFloor,omitempty"`
	Mode         string    `json:"mode,omitempty"`
}

// Check is one quality bar and whether this run met it. A target (the goal, not a bar) is
// reported the same way but never fails the run.
type Check struct {
	Bar    string `json:"bar"`
	OK     bool   `json:"ok"`
	Target bool   `json:"target,omitempty"`
	Detail string `json:"detail"`
}

// ErrBarsMissed is returned by Run when a quality bar was not met (the report is complete anyway).
var ErrBarsMissed = errors.New("bench: some quality bars were not met")

// Run measures every case under every database profile, prints the table and the checks, and writes
// the JSON report. The database's settings are put back as they were at the end.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.DatabaseURL == "" || len(cfg.Child) == 0 {
		return nil, errors.New("bench: DatabaseURL and Child are required")
	}
	for _, p := range cfg.Profiles {
		if _, ok := profiles[p]; !ok {
			return nil, fmt.Errorf("bench: unknown database profile %q (%s or %s)", p, ProfileDev, ProfileDurable)
		}
	}
	began := time.Now()
	pool, err := connect(ctx, cfg.DatabaseURL, 8)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to the database: %w", err)
	}
	defer pool.Close()
	defer resetProfile(context.WithoutCancel(ctx), pool, cfg.Log)
	rep := &Report{Machine: describeMachine(ctx, pool), Profiles: cfg.Profiles, Runs: cfg.Runs}
	rep.Machine.Commit = cmp.Or(cfg.Commit, rep.Machine.Commit)
	rep.Machine.print(cfg.Out)

	groups := []groupSpec{}
	for _, n := range cfg.Sizes {
		groups = append(groups, groupSpec{products: n, unchangedBaseline: n == cfg.Sizes[0]})
	}
	if cfg.LatencyProducts > 0 {
		groups = append(groups, groupSpec{products: cfg.LatencyProducts, latency: cfg.Latency})
	}
	for _, g := range groups {
		var floor *Case
		for _, prof := range cfg.Profiles {
			if err := applyProfile(ctx, pool, prof); err != nil {
				return rep, err
			}
			cases, err := runGroup(ctx, cfg, pool, g, prof, &floor)
			if err != nil {
				return rep, err
			}
			rep.Cases = append(rep.Cases, cases...)
		}
	}
	if cfg.Schedules > 0 {
		for _, prof := range cfg.Profiles {
			if err := applyProfile(ctx, pool, prof); err != nil {
				return rep, err
			}
			fmt.Fprintf(cfg.Log, "bench: [%s] dispatcher, %d schedules over %d credentials, %d dispatchers\n", prof, cfg.Schedules, cfg.Credentials, cfg.Dispatchers)
			d, err := runDispatch(ctx, pool, cfg)
			if err != nil {
				return rep, fmt.Errorf("bench: dispatcher case (%s): %w", prof, err)
			}
			d.Profile = prof
			if cfg.TickShops > 0 {
				fmt.Fprintf(cfg.Log, "bench: [%s] dispatcher tick, %d shops, %d dispatchers\n", prof, cfg.TickShops, cfg.Dispatchers)
				t, err := runTick(ctx, pool, cfg, cfg.TickShops, cfg.TickClaimLimit)
				if err != nil {
					return rep, fmt.Errorf("bench: dispatcher tick case (%s): %w", prof, err)
				}
				d.Tick = &t
			}
			rep.Dispatchers = append(rep.Dispatchers, d)
		}
	}
	if !cfg.NoFreshness { // once, under the last profile (durable by default)
		fmt.Fprintf(cfg.Log, "bench: webhooks, change → row\n")
		f, err := runFreshness(ctx, pool, cfg)
		if err != nil {
			return rep, fmt.Errorf("bench: webhook freshness case: %w", err)
		}
		f.Profile = cfg.Profiles[len(cfg.Profiles)-1]
		rep.Freshness = &f
	}
	rep.Machine.LoadAfter = loadAverage()
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
	if barsMissed(rep.Checks) {
		return rep, ErrBarsMissed
	}
	return rep, nil
}

// barsMissed reports whether a bar (not a target) failed.
func barsMissed(checks []Check) bool {
	for _, c := range checks {
		if !c.OK && !c.Target {
			return true
		}
	}
	return false
}

type groupSpec struct {
	products          int
	latency           time.Duration
	unchangedBaseline bool // also time the earlier system's re-sync with nothing changed
}

// series collects the runs of one case.
type series struct {
	system, scenario, name string
	changed, deleted       int
	runs                   []sample
}

type sample struct {
	f        Figures
	calls    int64
	tooMany  int64
	products int
}

// runGroup measures one catalogue under one database profile: the API floor (under the first profile
// only: it reads no database), the baseline's and kvsync's full syncs, each into empty tables and taking
// turns; then cfg.Runs times 1% changed and 0.5% deleted, kvsync's incremental run and its re-sync with
// nothing changed; then, under the first profile, the baseline's scheduled run on the same data (and its
// unchanged re-sync when asked), timed once: they read the whole catalogue like its full sync, and their
// bar is a ratio under 0.2× that kvsync meets by two orders of magnitude.
func runGroup(ctx context.Context, cfg Config, pool *pgxpool.Pool, g groupSpec, profile string, floor **Case) ([]Case, error) {
	group := fmt.Sprintf("%s products × %d branches", thousands(g.products), cfg.Branches)
	if g.latency > 0 {
		group += fmt.Sprintf(", %s per request", g.latency)
	}
	fmt.Fprintf(cfg.Log, "bench: [%s] %s: building the fake shop\n", profile, group)
	// The latency cases keep the fake's default limits (5,000 GETs an hour), so the table shows that
	// reading pages at once costs no 429s; the zero-latency ones read more than that in an hour.
	limit := -1
	if g.latency > 0 {
		limit = 0
	}
	// The shop's clock starts a day behind kvsync's and moves an hour ahead before each incremental run's
	// changes (see below), as if the runs were an hour apart. Behind, never ahead: a change dated after a
	// pass started is one the pass's catch-up read must read again, which would count every change twice.
	var ahead atomic.Int64
	ahead.Store(int64(-24 * time.Hour))
	fake := kiotvietfake.New(kiotvietfake.Options{Products: g.products, Branches: cfg.Branches, Categories: 40, Seed: cfg.Seed,
		RateLimitPerHour: limit, Faults: kiotvietfake.Faults{Latency: g.latency},
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
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
		CredentialID: credID, Retailer: creds.Retailer, ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
		ReadConc: cfg.ReadConcurrency, WriteBatch: cfg.WriteBatchPages}

	products := len(fake.Snapshot().Products) // then kept up to date without copying the catalogue again
	once := func(s *series) error {
		sp := spec
		sp.Kind = s.system
		fake.ResetCounts()
		fmt.Fprintf(cfg.Log, "bench: [%s] %s: %s (run %d)\n", profile, group, s.name, len(s.runs)+1)
		f, err := child(ctx, cfg.Child, sp, cfg.Log)
		if err != nil {
			return fmt.Errorf("bench: %s, %s (%s): %w", group, s.name, profile, err)
		}
		var calls int64
		for _, v := range fake.Counts() {
			calls += v
		}
		s.runs = append(s.runs, sample{f: f, calls: calls, tooMany: fake.TooManyRequests(), products: products})
		fmt.Fprintf(cfg.Log, "bench:   %s, %d API calls, %d rows written, %.0f MB peak RSS\n", seconds(ms(f.Wall())), calls, f.Rows, float64(f.PeakRSSKB)/1024)
		return nil
	}
	repeat := func(s *series, n int, before func() error) error {
		for range n {
			if before != nil {
				if err := before(); err != nil {
					return err
				}
			}
			if err := once(s); err != nil {
				return err
			}
		}
		return nil
	}
	empty := func() error { _, err := pool.Exec(ctx, truncateData); return err }

	// Runs only where a bar or a target reads the figure: the floor with latency (kvsync's full sync
	// against it) and the earlier system's full sync at zero latency (kvsync's against it) take cfg.Runs
	// runs; the floor at zero latency and the earlier system's full sync with latency are shown for
	// comparison only and run once.
	// Above 10,000 products a full sync takes ~40 s on 2 cores: each system's runs there are capped at
	// cfg.LargeRuns (they take turns, so a load that comes and goes slows both alike), which keeps the
	// whole run near 10 minutes.
	fullRuns := cfg.Runs
	if g.products > 10_000 {
		fullRuns = min(cfg.Runs, cfg.LargeRuns)
	}
	floorRuns, blRuns := cfg.Runs, fullRuns
	if g.latency == 0 {
		floorRuns = 1
	} else {
		blRuns = 1
	}
	var all []*series
	if *floor == nil {
		fl := &series{system: KindFloor, scenario: "read", name: "API floor (read the pages only)"}
		if err := repeat(fl, floorRuns, nil); err != nil {
			return nil, err
		}
		c := fl.toCase(group, "", g.latency)
		*floor = &c
	}
	blFull := &series{system: KindBaseline, scenario: "full", name: "earlier system: full sync"}
	kvFull := &series{system: KindKvsync, scenario: "full", name: "kvsync: full sync"}
	// the two systems' runs take turns, so that load that comes and goes on a shared machine slows both
	for i := range fullRuns {
		if i < blRuns {
			if err := repeat(blFull, 1, empty); err != nil {
				return nil, err
			}
		}
		if err := repeat(kvFull, 1, empty); err != nil {
			return nil, err
		}
	}
	// The incremental runs start from kvsync's last full sync, with the planner's statistics of a table
	// that holds the catalogue, as autovacuum would have them; 1% changed a run does not move them. (A
	// full sync starts from truncated tables, which the planner sees as empty.)
	if _, err := pool.Exec(ctx, "analyze public.kiotviet_products_full, public.kiotviet_products, public.kiotviet_inventory"); err != nil {
		return nil, err
	}
	k, d := int(math.Round(float64(g.products)*cfg.ChangeShare)), int(math.Round(float64(g.products)*cfg.DeleteShare))
	kvInc := &series{system: KindKvsync, scenario: "incremental", name: fmt.Sprintf("kvsync: incremental (%s changed, %s deleted)", thousands(k), thousands(d)), changed: k, deleted: d}
	kvNone := &series{system: KindKvsync, scenario: "unchanged", name: "kvsync: re-sync, nothing changed"}
	for range cfg.Runs {
		// An hour of a shop's changes between two hourly runs, spread over the hour: the next run re-reads
		// only those of the overlap window's last minutes, as a real shop's would. (Made at one instant,
		// every change would be in the window and each run would re-read all of the last run's.)
		ahead.Add(int64(time.Hour))
		changed := len(fake.ChangeProductsOver(k, time.Hour))
		deleted := len(fake.DeleteProducts(d))
		products -= deleted
		kvInc.changed, kvInc.deleted = changed, deleted
		if err := once(kvInc); err != nil {
			return nil, err
		}
		if err := once(kvNone); err != nil {
			return nil, err
		}
	}
	all = append(all, blFull, kvFull, kvInc, kvNone)
	// The earlier system's scheduled run and re-sync read the whole catalogue again, like its full sync:
	// their bar (≤ 0.2×, met at ~0.01–0.05×) is checked under the first profile only, which saves two
	// full pulls (~90 s at 100,000 products) under the others.
	if profile == cfg.Profiles[0] {
		blInc := &series{system: KindBaseline, scenario: "incremental", name: "earlier system: scheduled run (same changes)", changed: k, deleted: d}
		if err := once(blInc); err != nil {
			return nil, err
		}
		all = append(all, blInc)
		if g.unchangedBaseline {
			blNone := &series{system: KindBaseline, scenario: "unchanged", name: "earlier system: re-sync, nothing changed"}
			if err := once(blNone); err != nil {
				return nil, err
			}
			all = append(all, blNone)
		}
	}
	fl := **floor
	fl.Profile = profile
	cases := []Case{fl}
	for _, s := range all {
		cases = append(cases, s.toCase(group, profile, g.latency))
	}
	ratios(cases)
	return cases, nil
}

// toCase is the series as a table row: the median wall time, and the figures of the median run (the
// lower of the two middle ones for an even count).
func (s *series) toCase(group, profile string, latency time.Duration) Case {
	order := make([]int, len(s.runs))
	walls := make([]float64, len(s.runs))
	for i, r := range s.runs {
		order[i], walls[i] = i, ms(r.f.Wall())
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(walls[a], walls[b]) })
	mid := s.runs[order[(len(order)-1)/2]]
	c := Case{Group: group, Profile: profile, System: s.system, Scenario: s.scenario, Name: s.name, Products: mid.products,
		Changed: s.changed, Deleted: s.deleted, LatencyMS: float64(latency) / float64(time.Millisecond),
		Runs: len(s.runs), RunsMS: walls, WallMS: median(walls), APICalls: mid.calls, TooMany: mid.tooMany, RowsWritten: mid.f.Rows,
		ItemsRead: mid.f.Items, PeakRSSMB: float64(mid.f.PeakRSSKB) / 1024, Mode: mid.f.Mode}
	if c.WallMS > 0 {
		c.ProductsPerS = float64(c.Products) / (c.WallMS / 1000)
	}
	return c
}

// median of xs (not changed); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// ratios fills vs baseline (same scenario) and vs floor (the group's read-only pass), from medians.
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
