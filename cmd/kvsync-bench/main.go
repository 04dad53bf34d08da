// Command kvsync-bench measures kvsync against DESIGN.md §8 (make bench), or shakes it with faults and
// killed workers with --chaos (make chaos). It is a command of its own so that the shipped kvsync binary
// links neither the fake KiotViet nor the test kit these drivers need; chaos starts the kvsync binary
// given by --kvsync as its workers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kvsync/kvsync/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvsync-bench:", err)
		os.Exit(1)
	}
}

// run is the whole program. --child is how the benchmark runs each case in a process of its own.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvsync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("db-url", "", "database to use; every kiotviet_* table in it is EMPTIED (make bench starts one of its own)")
	sizes := fs.String("sizes", "10000,100000", "catalogue sizes (products) at zero latency, comma separated (0: none)")
	branches := fs.Int("branches", 5, "branches of the fake shop")
	latProducts := fs.Int("latency-products", 5000, "catalogue size of the latency cases (0: none)")
	latency := fs.Duration("latency", 100*time.Millisecond, "latency added to every request in the latency cases")
	schedules := fs.Int("schedules", 10000, "due schedules in the dispatcher case (0: none)")
	creds := fs.Int("credentials", 2000, "credentials those schedules belong to")
	dispatchers := fs.Int("dispatchers", 4, "concurrent dispatchers")
	runs := fs.Int("runs", 3, "runs of each timed case; the table shows their median")
	largeRuns := fs.Int("large-runs", 2, "runs of each full sync above 10,000 products (at most --runs; ~40 s each on 2 cores)")
	profiles := fs.String("profiles", "dev,durable", "database profiles, comma separated: dev (fsync, synchronous_commit, full_page_writes off) and durable (on, as Supabase runs)")
	readConc := fs.Int("read-concurrency", 0, "kvsync: pages read at once (0: its default, KIOTVIET_READ_CONCURRENCY's), to compare settings")
	writeBatch := fs.Int("write-batch", 0, "kvsync: pages written in one call at most (0: its default; 1: each page alone), to compare settings")
	tickShops := fs.Int("tick-shops", 10000, "shops in the dispatcher tick case, one due schedule each (0: none)")
	webhooks := fs.Bool("webhooks", true, "run the webhook freshness case (--webhooks=false: skip it)")
	quick := fs.Bool("quick", false, "a short run of a few minutes: 5,000 and 10,000 products, 5,000 with latency, 2,000 schedules and shops (flags given explicitly win)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	commit := fs.String("commit", "", "the commit measured, for the report (default: from the binary's build info)")
	child := fs.Bool("child", false, "internal: run one case described on stdin and print its figures")
	chaos := fs.Bool("chaos", false, "run the chaos test instead of the benchmark")
	kvsyncExe := fs.String("kvsync", "", "chaos: the kvsync binary its workers run (default: kvsync next to this binary, else on PATH)")
	c := bench.ChaosConfig{}
	fs.DurationVar(&c.Duration, "chaos-duration", 90*time.Second, "chaos: how long to inject faults before the final check")
	fs.IntVar(&c.Products, "chaos-products", 2000, "chaos: catalogue size")
	fs.IntVar(&c.Workers, "chaos-workers", 3, "chaos: kvsync serve processes")
	fs.Int64Var(&c.Seed, "chaos-seed", 0, "chaos: random seed (0: from the clock; printed so a run can be repeated)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: kvsync-bench --db-url URL [--quick] [--sizes 10000,100000] [--runs 3] [--profiles dev,durable] [--json FILE]\n       kvsync-bench --chaos --db-url URL [--kvsync PATH] [--chaos-duration 90s]\n\nkvsync-bench measures kvsync's full, incremental and unchanged syncs against the earlier system's\nalgorithm and the API floor on a fake KiotViet served from 127.0.0.1, plus the dispatcher under\nconcurrent claims and one tick's claims, each case under both database profiles and the median of\n--runs runs, and checks the quality bars of DESIGN.md §8 (exit status 1 when one is missed).\n--chaos runs kvsync serve processes against a faulty fake, kills them at random, and checks that the\ndatabase ends equal to the shop, that no runs overlapped and that every run finished or was rescued.\nBoth empty every kiotviet_* table of --db-url: give them a database of their own.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, v := range map[string]string{"sizes": "5000,10000", "latency-products": "5000", "schedules": "2000",
			"credentials": "400", "tick-shops": "2000"} {
			if !given[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	if *child {
		return bench.RunChild(ctx, stdin, stdout)
	}
	if *dbURL == "" {
		fs.Usage()
		return errors.New("--db-url is required (its kiotviet_* tables are emptied, so it is never taken from DATABASE_URL)")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if *chaos {
		worker, err := findKvsync(*kvsyncExe, exe)
		if err != nil {
			return err
		}
		c.DatabaseURL, c.Exe, c.Out, c.Log = *dbURL, worker, stdout, stderr
		_, err = bench.Chaos(ctx, c)
		return err
	}
	cfg := bench.Config{DatabaseURL: *dbURL, Child: []string{exe, "--child"}, Branches: *branches,
		LatencyProducts: *latProducts, Latency: *latency, Schedules: *schedules, Credentials: *creds,
		Dispatchers: *dispatchers, JSONPath: *jsonPath, Commit: *commit, Out: stdout, Log: stderr,
		Runs: *runs, LargeRuns: *largeRuns, TickShops: *tickShops, ReadConcurrency: *readConc, WriteBatchPages: *writeBatch, NoFreshness: !*webhooks}
	if *runs < 1 {
		return errors.New("--runs must be at least 1")
	}
	if *tickShops == 0 {
		cfg.TickShops = -1
	}
	for _, p := range strings.Split(*profiles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Profiles = append(cfg.Profiles, p)
		}
	}
	if *latProducts == 0 {
		cfg.LatencyProducts = -1
	}
	if *schedules == 0 {
		cfg.Schedules = -1
	}
	cfg.Sizes = []int{} // empty, not nil: --sizes 0 asks for no zero-latency case
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" || s == "0" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			return fmt.Errorf("--sizes: %q is not a catalogue size (at least 100)", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	_, err = bench.Run(ctx, cfg)
	return err
}

// findKvsync is the kvsync binary chaos starts: the one given, else kvsync beside this binary (make
// chaos builds both into one folder), else kvsync on PATH.
func findKvsync(given, self string) (string, error) {
	if given != "" {
		return given, nil
	}
	beside := filepath.Join(filepath.Dir(self), "kvsync")
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	p, err := exec.LookPath("kvsync")
	if err != nil {
		return "", errors.New("--chaos needs the kvsync binary: build it (go build -o bin/ ./cmd/...) and pass --kvsync PATH")
	}
	return p, nil
}
