package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kvsync/kvsync/internal/vocab"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// The kinds of work a child process does. Each case runs in a child of its own so that its peak RSS is
// the work's alone: the fake KiotViet, with its whole catalogue in memory, stays in the parent.
const (
	KindKvsync   = "kvsync"   // one syncer.Engine run (products_full: categories + products)
	KindBaseline = "baseline" // the earlier system's algorithm (baseline.go)
	KindFloor    = "floor"    // read the product pages and nothing else
)

// Spec is what a child is asked to do; the parent sends it as JSON on the child's stdin (never on the
// command line, where the throwaway key and client secret would show in ps).
type Spec struct {
	Kind         string `json:"kind"`
	DatabaseURL  string `json:"databaseUrl,omitempty"`
	APIURL       string `json:"apiUrl"`
	TokenURL     string `json:"tokenUrl"`
	Keys         string `json:"keys,omitempty"` // KIOTVIET_ENCRYPTION_KEYS format
	CredentialID string `json:"credentialId,omitempty"`
	Retailer     string `json:"retailer"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Full         bool   `json:"full,omitempty"`            // kvsync: ask for a full reconcile
	ReadConc     int    `json:"readConcurrency,omitempty"` // kvsync: pages read at once (0: its default)
	WriteBatch   int    `json:"writeBatch,omitempty"`      // kvsync: pages written in one call at most (0: its default)
	Timeout      string `json:"timeout,omitempty"`
}

// Figures are what a child measured, printed by the child as one JSON line on stdout.
type Figures struct {
	WallNS      int64          `json:"wallNs"`      // the work only: not process start, not connecting
	Items       int            `json:"items"`       // products read from KiotViet
	Rows        int            `json:"rows"`        // rows written (kvsync: Σ written + deleted over streams)
	ClientCalls int64          `json:"clientCalls"` // requests the KiotViet client counted (token excluded)
	PeakRSSKB   int64          `json:"peakRssKb"`   // VmHWM of the child at the end
	Mode        string         `json:"mode,omitempty"`
	Streams     map[string]any `json:"streams,omitempty"`
	Error       string         `json:"error,omitempty"`
}

// Wall is the measured time as a Duration.
func (f Figures) Wall() time.Duration { return time.Duration(f.WallNS) }

// RunChild is the child's side: read a Spec from in, do the work, print Figures to out. A failed case
// still prints its Figures (with Error) so the parent can report it.
func RunChild(ctx context.Context, in io.Reader, out io.Writer) error {
	var spec Spec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return fmt.Errorf("bench child: read the spec: %w", err)
	}
	timeout := 4 * time.Minute
	if spec.Timeout != "" {
		if d, err := time.ParseDuration(spec.Timeout); err == nil {
			timeout = d
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		f   Figures
		err error
	)
	switch spec.Kind {
	case KindKvsync:
		f, err = childKvsync(ctx, spec)
	case KindBaseline:
		f, err = childBaseline(ctx, spec)
	case KindFloor:
		f, err = childFloor(ctx, spec)
	default:
		err = fmt.Errorf("unknown kind %q", spec.Kind)
	}
	if err != nil {
		f.Error = err.Error()
	}
	f.PeakRSSKB = peakRSSKB()
	return json.NewEncoder(out).Encode(f)
}

// peakRSSKB reads VmHWM (the resident set's high-water mark) of this process, in kB; 0 if unknown.
func peakRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func kiotvietConfig(spec Spec) kiotviet.Config {
	return kiotviet.Config{TokenURL: spec.TokenURL, APIURL: spec.APIURL, HTTPClient: kiotviet.NewHTTPClient()}
}

func credentials(spec Spec) kiotviet.Credentials {
	return kiotviet.Credentials{Retailer: spec.Retailer, ClientID: spec.ClientID, ClientSecret: spec.ClientSecret}
}

// fullPassOptions are the options of kvsync's full pass over /products, every include the ERP shows
// with them; the baseline and the floor read the very same pages.
// They read one page after another: the floor is the sequential one, and the earlier system paged so.
func fullPassOptions() kiotviet.ListOptions {
	return syncer.ProductIncludes(kiotviet.ListOptions{PageSize: kiotviet.MaxPageSize, OrderBy: "modifiedDate", OrderDirection: "Asc"})
}

func connect(ctx context.Context, url string, conns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// childKvsync runs one products_full sync with the engine, as `kvsync sync` would.
func childKvsync(ctx context.Context, spec Spec) (Figures, error) {
	var f Figures
	keys, err := secret.ParseKeys(spec.Keys, "")
	if err != nil {
		return f, err
	}
	pool, err := connect(ctx, spec.DatabaseURL, 4)
	if err != nil {
		return f, err
	}
	defer pool.Close()
	kc := kiotvietConfig(spec)
	kc.ReadConcurrency = spec.ReadConc
	eng, err := syncer.New(syncer.Config{Store: store.New(store.PG{Pool: pool}), Keys: keys,
		KiotViet: kc, Worker: "bench", WriteBatchPages: spec.WriteBatch})
	if err != nil {
		return f, err
	}
	start := time.Now()
	res, err := eng.Run(ctx, syncer.Request{CredentialID: spec.CredentialID, SyncType: "products_full", Trigger: "manual", Full: spec.Full})
	f.WallNS = int64(time.Since(start))
	if err != nil {
		return f, err
	}
	f.ClientCalls = res.APICalls
	f.Streams = map[string]any{}
	for name, st := range res.Streams {
		f.Rows += st.Written + st.Deleted
		f.Streams[name] = st
		if name == string(vocab.StreamProducts) {
			f.Items = st.Count
			f.Mode = st.Mode
		}
	}
	if res.Status != "success" {
		return f, fmt.Errorf("run %s: %s: %s", res.RunID, res.Status, res.Error)
	}
	return f, nil
}

// childFloor is the API floor: a client that pages the same /products pages as kvsync's full pass and
// only decodes them. Its token is fetched before the clock starts, so the floor is a true lower bound.
func childFloor(ctx context.Context, spec Spec) (Figures, error) {
	var f Figures
	cfg := kiotvietConfig(spec)
	ts := kiotviet.NewTokenSource(cfg, credentials(spec))
	if _, err := ts.Token(ctx); err != nil {
		return f, err
	}
	client := kiotviet.New(cfg, spec.Retailer, ts)
	start := time.Now()
	p := client.Products(fullPassOptions())
	for p.Next(ctx) {
		f.Items += len(p.Page().Items)
	}
	f.WallNS = int64(time.Since(start))
	f.ClientCalls = client.Calls()
	f.Mode = "read only"
	return f, p.Err()
}

// child runs one case in a child process (argv: the command that starts a child, e.g. kvsync bench
// --child) and returns what it measured.
func child(ctx context.Context, argv []string, spec Spec, stderr io.Writer) (Figures, error) {
	var f Figures
	in, err := json.Marshal(spec)
	if err != nil {
		return f, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &f); err != nil {
		return f, errors.Join(fmt.Errorf("%s child: no figures (%v)", spec.Kind, err), runErr)
	}
	if f.Error != "" {
		return f, fmt.Errorf("%s child: %s", spec.Kind, f.Error)
	}
	return f, runErr
}
