package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/webhook"
)

// ChaosConfig is one chaos run: kvsync serve processes against a fake KiotViet that fails in every way
// it knows, killed and restarted at random, with the catalogue changing under them. Zero values mean the
// defaults in parentheses.
type ChaosConfig struct {
	DatabaseURL string        // a database of its own: every kiotviet_* table is emptied
	Exe         string        // the kvsync binary, started as `kvsync serve`
	Duration    time.Duration // of the fault phase (90 s)
	Products    int           // catalogue size (2,000)
	Workers     int           // kvsync serve processes (3)
	Seed        int64         // 0: from the clock
	Out, Log    io.Writer
}

// ChaosResult is what a chaos run counted.
type ChaosResult struct {
	Seed         int64            `json:"seed"`
	Runs         int              `json:"runs"`
	ByStatus     map[string]int   `json:"byStatus"`
	Rescues      int              `json:"rescues"`
	Kills        int              `json:"kills"`
	Dispatches   int              `json:"dispatches"`
	ManualSyncs  map[int]int      `json:"manualSyncs"` // by HTTP status (0: the worker died under it)
	Faults       map[string]int64 `json:"faults"`
	Mutations    int              `json:"mutations"`
	Overlaps     int              `json:"overlaps"`
	Unfinished   int              `json:"unfinished"`
	Mismatches   int              `json:"mismatches"`
	Diffs        []string         `json:"diffs,omitempty"`
	FinalSyncErr string           `json:"finalSyncError,omitempty"`
	// Webhooks: the fake's deliveries to worker 0 (lost while it was killed: polling repairs that), with
	// duplicates, drops, delays and held-then-reordered bursts; the events kvsync stored and applied.
	Webhooks       kiotvietfake.WebhookStats `json:"webhooks"`
	WebhookEvents  map[string]int            `json:"webhookEvents"`
	WebhookReorder int                       `json:"webhookReorders"`
}

// ErrChaosFailed is returned when the database did not end equal to the shop, runs overlapped, or a run
// was left unfinished.
var ErrChaosFailed = errors.New("chaos: the invariants did not hold")

// chaosLeaseSeconds is the workers' lease (the smallest KVSYNC_LEASE_SECONDS allows), so that a
// killed worker's run is rescued within the run instead of two minutes later.
const chaosLeaseSeconds = 4

// The sync types the credential has schedules for; they all compete for the credential's one running
// run.
var chaosTypes = []string{"products_full", "products", "categories", "inventory", "all", "attributes"}

// Chaos runs the fault phase, then a clean final sync, and checks the invariants.
func Chaos(ctx context.Context, cfg ChaosConfig) (*ChaosResult, error) {
	cfg.Duration = cmp.Or(cfg.Duration, 90*time.Second)
	cfg.Products = cmp.Or(cfg.Products, 2000)
	cfg.Workers = max(cmp.Or(cfg.Workers, 3), 1)
	cfg.Seed = cmp.Or(cfg.Seed, time.Now().UnixNano()%1_000_000)
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &ChaosResult{Seed: cfg.Seed, ManualSyncs: map[int]int{}, ByStatus: map[string]int{}}
	rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0xc4a05))
	fmt.Fprintf(cfg.Out, "chaos: seed %d, %d products, %d workers, %s of faults\n", cfg.Seed, cfg.Products, cfg.Workers, cfg.Duration)

	pool, err := connect(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		return res, fmt.Errorf("chaos: connect to the database: %w", err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		return res, err
	}

	fake := kiotvietfake.New(kiotvietfake.Options{Products: cfg.Products, Branches: 3, Categories: 25, Seed: cfg.Seed,
		RateLimitPerHour: -1, HangLimit: 1500 * time.Millisecond})
	counter := &faultCounter{n: map[string]int64{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	fakeSrv := &http.Server{Handler: counter.wrap(fake.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = fakeSrv.Serve(ln) }()
	defer fakeSrv.Close()
	fakeURL := "http://" + ln.Addr().String()

	keys, keySpec, err := newKeys()
	if err != nil {
		return res, err
	}
	st := store.New(store.PG{Pool: pool})
	credID, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	if err != nil {
		return res, err
	}
	for _, t := range chaosTypes {
		if _, err := st.UpsertSchedule(ctx, store.Schedule{CredentialID: credID, SyncType: t, Frequency: "hourly", Enabled: true}); err != nil {
			return res, err
		}
	}
	var sb [32]byte
	_, _ = rand.Read(sb[:])
	cronSecret := hex.EncodeToString(sb[:])

	dir, err := os.MkdirTemp("", "kvsync-chaos-")
	if err != nil {
		return res, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DATABASE_URL=" + cfg.DatabaseURL,
		"KIOTVIET_ENCRYPTION_KEYS=" + keySpec, "KIOTVIET_CRON_SECRET=" + cronSecret,
		"KIOTVIET_TOKEN_URL=" + fakeURL + kiotvietfake.TokenPath, "KIOTVIET_API_URL=" + fakeURL,
		"KIOTVIET_RATE_LIMIT_PER_HOUR=1000000", "KVSYNC_CONCURRENCY=2", "KVSYNC_LOG_LEVEL=warn",
		"KVSYNC_LEASE_SECONDS=" + strconv.Itoa(chaosLeaseSeconds)}
	ws := &workers{exe: cfg.Exe, dir: dir, env: env}
	defer ws.stopAll()
	for i := range cfg.Workers {
		if err := ws.start(ctx, i); err != nil {
			return res, err
		}
	}
	h := &chaosHTTP{client: &http.Client{Timeout: 5 * time.Minute}, secret: cronSecret}
	if err := chaosWebhooks(ctx, st, keys, fakeURL, credID, ws.url(0)); err != nil {
		return res, err
	}

	// The fault phase.
	var manual sync.WaitGroup
	var mu sync.Mutex
	drift := [2]int{}
	deadline := time.Now().Add(cfg.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		switch x := rng.IntN(100); {
		case x < 35: // the cron tick, on a random worker, with every schedule made due
			if rng.IntN(2) == 0 {
				_, _ = pool.Exec(ctx, `update public.kiotviet_sync_schedules set next_run_at = now() where credential_id = $1`, credID)
			}
			if status, _ := h.post(ctx, ws.url(rng.IntN(cfg.Workers)), "/functions/v1/kiotviet-schedule-sync", map[string]any{}); status != 0 {
				res.Dispatches++
			}
		case x < 45: // the ERP's button (or the CLI) on a random worker
			url, body := ws.url(rng.IntN(cfg.Workers)), map[string]any{"credentialId": credID,
				"syncType": chaosTypes[rng.IntN(len(chaosTypes))], "options": map[string]any{"full": rng.IntN(4) == 0}}
			manual.Add(1)
			go func() {
				defer manual.Done()
				status, _ := h.post(ctx, url, "/functions/v1/kiotviet-sync", body)
				mu.Lock()
				res.ManualSyncs[status]++
				mu.Unlock()
			}()
		case x < 75: // a fault
			f := fake.Faults()
			switch rng.IntN(7) {
			case 0:
				f.Fail429Next += 1 + rng.IntN(2)
			case 1:
				f.Status5xxNext += 1 + rng.IntN(2)
			case 2:
				f.TimeoutNext++
			case 3:
				f.MalformedNext += 1 + rng.IntN(2)
			case 4:
				n := 1 + rng.IntN(3)
				f.DriftInsertNext += n
				drift[0] += n
			case 5:
				n := 1 + rng.IntN(3)
				f.DriftChangeNext += n
				drift[1] += n
			case 6:
				fake.RevokeTokens()
				counter.add("token revoked")
			}
			fake.SetFaults(f)
			// and the webhooks misbehave: duplicates, drops, delays, a held burst released newest first
			if rng.IntN(3) == 0 {
				if fake.ReleaseWebhooks() > 0 {
					res.WebhookReorder++
				}
				fake.SetWebhookFaults(kiotvietfake.WebhookFaults{DuplicateRate: rng.Float64() / 2, DropRate: rng.Float64() / 5,
					Delay: time.Duration(rng.IntN(30)) * time.Millisecond, Hold: rng.IntN(3) == 0, Reorder: true})
			}
		case x < 96: // the shop changes
			switch rng.IntN(4) {
			case 0:
				fake.ChangeProducts(1 + rng.IntN(cfg.Products/50+1))
			case 1:
				fake.DeleteProducts(1 + rng.IntN(cfg.Products/200+1))
			case 2:
				fake.AddProducts(1 + rng.IntN(5))
			case 3:
				fake.MoveStock(1 + rng.IntN(cfg.Products/20+1))
			}
			res.Mutations++
		default: // kill -9 a worker, preferably one that is running a sync, and start it again
			i := rng.IntN(cfg.Workers)
			var worker string
			if pool.QueryRow(ctx, `select worker from public.kiotviet_sync_logs where status = 'running' limit 1`).Scan(&worker) == nil {
				if j := ws.byWorker(worker); j >= 0 {
					i = j
				}
			}
			ws.kill(i)
			res.Kills++
			if err := ws.start(ctx, i); err != nil {
				return res, err
			}
		}
		sleep(ctx, time.Duration(100+rng.IntN(400))*time.Millisecond)
	}

	// The end: no more faults, nothing more due; rescue what the kills left, let the rest finish.
	fmt.Fprintln(cfg.Log, "chaos: faults off; draining")
	fake.SetFaults(kiotvietfake.Faults{})
	if fake.ReleaseWebhooks() > 0 {
		res.WebhookReorder++
	}
	fake.SetWebhookFaults(kiotvietfake.WebhookFaults{})
	left := fake.Faults()
	res.Faults = counter.snapshot()
	res.Faults["page drift (insert)"] = int64(drift[0] - left.DriftInsertNext)
	res.Faults["page drift (change)"] = int64(drift[1] - left.DriftChangeNext)
	manual.Wait()
	if _, err := pool.Exec(ctx, `update public.kiotviet_sync_schedules set next_run_at = now() + interval '1 day' where credential_id = $1`, credID); err != nil {
		return res, err
	}
	drainCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for drainCtx.Err() == nil {
		var running int
		if err := pool.QueryRow(ctx, `select count(*) from public.kiotviet_sync_logs where status = 'running'`).Scan(&running); err != nil {
			return res, err
		}
		if running == 0 {
			break
		}
		_, _ = h.post(drainCtx, ws.url(0), "/functions/v1/kiotviet-schedule-sync", map[string]any{}) // rescues expired leases
		sleep(drainCtx, 300*time.Millisecond)
	}

	// every delivery out and every event applied (or parked) before the final sync: an undated stock
	// event applied after it would leave older stock than the shop's
	for drainCtx.Err() == nil {
		var waiting int
		_ = fake.WaitWebhooks(drainCtx)
		if err := pool.QueryRow(ctx, `select count(*) from public.kiotviet_webhook_events where status in ('pending', 'applying')`).Scan(&waiting); err != nil {
			return res, err
		}
		if waiting == 0 {
			break
		}
		_, _ = pool.Exec(ctx, `update public.kiotviet_webhook_events set next_attempt_at = now() where status = 'pending'`)
		sleep(drainCtx, 200*time.Millisecond)
	}

	// A clean full sync, then an incremental one, through a worker as the ERP would ask.
	for _, full := range []bool{true, false} {
		status, body := h.post(ctx, ws.url(0), "/functions/v1/kiotviet-sync",
			map[string]any{"credentialId": credID, "syncType": "all", "options": map[string]any{"full": full}})
		if status != http.StatusOK {
			res.FinalSyncErr = fmt.Sprintf("final sync (full %v): HTTP %d: %s", full, status, strings.TrimSpace(body))
			break
		}
	}
	ws.stopAll()

	if err := chaosCounts(ctx, pool, credID, res); err != nil {
		return res, err
	}
	res.Webhooks = fake.WebhookStats()
	res.WebhookEvents = map[string]int{}
	if rows, err := pool.Query(ctx, `select status, count(*) from public.kiotviet_webhook_events group by status`); err == nil {
		for rows.Next() {
			var k string
			var n int
			if rows.Scan(&k, &n) == nil {
				res.WebhookEvents[k] = n
			}
		}
		rows.Close()
	}
	diffs, err := synctest.Compare(ctx, pool, fake.Snapshot(), true, 50)
	if err != nil {
		return res, err
	}
	res.Mismatches, res.Diffs = len(diffs), diffs
	res.print(cfg.Out)
	if res.Mismatches > 0 || res.Overlaps > 0 || res.Unfinished > 0 || res.FinalSyncErr != "" {
		fmt.Fprintf(cfg.Out, "chaos: worker logs kept in %s\n", dir)
		return res, ErrChaosFailed
	}
	_ = os.RemoveAll(dir)
	return res, nil
}

// chaosCounts reads the run log: runs by status, rescues, overlaps and unfinished runs.
func chaosCounts(ctx context.Context, pool *pgxpool.Pool, credID string, res *ChaosResult) error {
	rows, err := pool.Query(ctx, `select status, count(*) from public.kiotviet_sync_logs where credential_id = $1 group by status`, credID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return err
		}
		res.ByStatus[s] = n
		res.Runs += n
	}
	rows.Close()
	res.Unfinished = res.ByStatus["running"]
	// A rescued run's row is closed at the rescue; its worker was dead by then (or, had it lived, its
	// next heartbeat or page would have found the run no longer its own). Any other two runs of one
	// credential whose [started_at, completed_at] intersect ran at the same time.
	return pool.QueryRow(ctx, `select
	  (select count(*) from public.kiotviet_sync_logs where credential_id = $1 and error_message like '%stopped heartbeating%'),
	  (select count(*) from public.kiotviet_sync_logs a join public.kiotviet_sync_logs b
	     on b.credential_id = a.credential_id and (a.started_at, a.id) < (b.started_at, b.id)
	    where a.credential_id = $1
	      and b.started_at < coalesce(a.completed_at, 'infinity')
	      and coalesce(a.error_message, '') not like '%stopped heartbeating%')`, credID).Scan(&res.Rescues, &res.Overlaps)
}

func (r *ChaosResult) print(w io.Writer) {
	fmt.Fprintf(w, "chaos: %d runs (", r.Runs)
	statuses := slices.Sorted(maps.Keys(r.ByStatus))
	for i, s := range statuses {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %d", s, r.ByStatus[s])
	}
	fmt.Fprintf(w, "), %d dispatches, manual syncs by HTTP status %v\n", r.Dispatches, r.ManualSyncs)
	var total int64
	kinds := slices.Sorted(maps.Keys(r.Faults))
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		total += r.Faults[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Faults[k]))
	}
	fmt.Fprintf(w, "chaos: faults injected %d (%s); catalogue changes %d\n", total, strings.Join(parts, ", "), r.Mutations)
	wh := r.Webhooks
	fmt.Fprintf(w, "chaos: webhooks: %d deliveries (%d delivered, %d retried, %d lost to killed workers, %d dropped, %d duplicated, %d held bursts reordered); events %v\n",
		wh.Events, wh.Delivered, wh.Retried, wh.Failed, wh.Dropped, wh.Duplicated, r.WebhookReorder, r.WebhookEvents)
	fmt.Fprintf(w, "chaos: kills %d, rescues %d, overlaps %d, unfinished %d, mismatches %d\n", r.Kills, r.Rescues, r.Overlaps, r.Unfinished, r.Mismatches)
	if r.FinalSyncErr != "" {
		fmt.Fprintln(w, "chaos:", r.FinalSyncErr)
	}
	for _, d := range r.Diffs {
		fmt.Fprintln(w, "  mismatch:", d)
	}
}

// workers are the kvsync serve processes this run started (and only those are ever killed).
type workers struct {
	exe, dir string
	env      []string

	procs []*exec.Cmd
	addrs []string
}

// start starts worker i (again, on its old address, after a kill) and waits for its /healthz.
func (ws *workers) start(ctx context.Context, i int) error {
	for len(ws.procs) <= i {
		ws.procs = append(ws.procs, nil)
		ws.addrs = append(ws.addrs, "")
	}
	if ws.addrs[i] == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ws.addrs[i] = ln.Addr().String()
		ln.Close()
	}
	logf, err := os.OpenFile(filepath.Join(ws.dir, fmt.Sprintf("worker-%d.log", i)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(ws.exe, "serve", "--grace", "2s")
	cmd.Dir = ws.dir // no .env is read from here
	cmd.Env = append(slices.Clone(ws.env), "KVSYNC_ADDR="+ws.addrs[i])
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	ws.procs[i] = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get("http://" + ws.addrs[i] + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return fmt.Errorf("chaos: worker %d did not come up on %s (log in %s)", i, ws.addrs[i], ws.dir)
}

func (ws *workers) url(i int) string { return "http://" + ws.addrs[i] }

// byWorker finds the process whose run rows carry this worker name (host:pid).
func (ws *workers) byWorker(name string) int {
	for i, p := range ws.procs {
		if p != nil && p.Process != nil && strings.HasSuffix(name, fmt.Sprintf(":%d", p.Process.Pid)) {
			return i
		}
	}
	return -1
}

// kill sends SIGKILL to worker i and waits for it. Its runs stay 'running' until their lease
// (KVSYNC_LEASE_SECONDS, short here) expires and a dispatcher tick rescues them.
func (ws *workers) kill(i int) {
	p := ws.procs[i]
	if p == nil || p.Process == nil {
		return
	}
	_ = p.Process.Kill()
	_ = p.Wait()
	ws.procs[i] = nil
}

// stopAll stops every worker still running (SIGTERM, then SIGKILL after a grace).
func (ws *workers) stopAll() {
	for i, p := range ws.procs {
		if p == nil || p.Process == nil {
			continue
		}
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
		ws.procs[i] = nil
	}
}

// chaosHTTP calls the workers' functions with the cron secret.
type chaosHTTP struct {
	client *http.Client
	secret string
}

// post returns the status (0 when the worker could not be reached or died mid-request) and the body.
func (h *chaosHTTP) post(ctx context.Context, base, path string, body any) (int, string) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Cron-Secret", h.secret)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(out)
}

// faultCounter counts the faults the fake really served, from its replies.
type faultCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *faultCounter) add(kind string) {
	c.mu.Lock()
	c.n[kind]++
	c.mu.Unlock()
}

func (c *faultCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func (c *faultCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &capture{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		switch {
		case rec.status == http.StatusTooManyRequests:
			c.add("429")
		case rec.status == http.StatusGatewayTimeout:
			c.add("timeout")
		case rec.status >= 500:
			c.add("5xx")
		case rec.status == http.StatusUnauthorized:
			c.add("401 after revocation")
		case rec.status == http.StatusOK && r.URL.Path != kiotvietfake.TokenPath && r.Context().Err() == nil && !json.Valid(rec.body.Bytes()):
			c.add("malformed page")
		}
	})
}

type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(b []byte) (int, error) {
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// chaosWebhooks registers the shop's webhooks to one worker (through KiotViet's webhook API, as kvsync
// webhooks register does): while that worker is killed, deliveries fail and are lost, as they would be.
func chaosWebhooks(ctx context.Context, st *store.Store, keys *secret.Keyring, fakeURL, credID, workerURL string) error {
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "chaos",
		KiotViet: kiotviet.Config{TokenURL: fakeURL + kiotvietfake.TokenPath, APIURL: fakeURL}})
	if err != nil {
		return err
	}
	client, err := engine.Client(ctx, credID)
	if err != nil {
		return err
	}
	_, err = webhook.Register(ctx, st, keys, client, credID, workerURL+"/functions/v1/kiotviet-webhook",
		[]string{"product.update", "product.delete", "stock.update", "category.update"})
	return err
}
