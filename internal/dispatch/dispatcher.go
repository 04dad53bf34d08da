// Package dispatch is the dispatcher's machinery (DESIGN.md §2): a tick rescues runs whose worker died,
// claims the due schedules in one statement and runs the claimed syncs on a bounded pool, in this
// process or fanned out to other replicas (FanOut), with failure/recovery alerts and metrics. Its
// callers are the HTTP handler pg_cron reaches through pg_net (functions/schedulesync) and the CLI's
// `kvsync dispatch`. Postgres is the only coordinator: any number of dispatchers may tick at
// once, and each schedule still runs once.
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
)

// Runner carries out one claimed run to its end and finishes it, whatever happened: the sync engine
// (*syncer.Engine), or the engine handing it to another replica (syncer.Engine.Remote with FanOut).
// The dispatcher claims runs and never finishes one itself.
type Runner interface {
	RunClaimed(ctx context.Context, c store.Claim) (syncer.Result, error)
}

// Config is what a Dispatcher needs. Zero values mean the defaults.
type Config struct {
	Store       *store.Store
	Runner      Runner
	Worker      string
	Concurrency int           // syncs at once in this process; default 4
	Lease       time.Duration // of a claimed run until its first heartbeat; default vocab.DefaultLease
	Alerts      Alerts        // optional: told when runs end (internal/alert.Notifier)
	Metrics     Observer      // optional: claims and runs, for /metrics (internal/metrics)
	Logger      *slog.Logger

	// OnRunDone, when set, is called after each claimed run ended: a test signal.
	OnRunDone func(RunResult)
}

// Observer is told what the dispatcher did, for /metrics (internal/metrics.Metrics).
type Observer interface {
	Claimed(took time.Duration, n int)
	RunStarted()
	RunEnded(syncType vocab.SyncType, res syncer.Result, took time.Duration)
}

type nopObserver struct{}

func (nopObserver) Claimed(time.Duration, int)                            {}
func (nopObserver) RunStarted()                                           {}
func (nopObserver) RunEnded(vocab.SyncType, syncer.Result, time.Duration) {}

// Alerts is told, without waiting, that runs ended or were rescued, so it looks for changes of state
// (internal/alert.Notifier). It must never block.
type Alerts interface {
	Kick()
}

// RunResult is one claimed run's end.
type RunResult struct {
	Claim  store.Claim
	Result syncer.Result
	Err    error
}

// Dispatcher claims and runs due schedules.
type Dispatcher struct {
	cfg   Config
	slots chan struct{}

	runCtx    context.Context // runs outlive the request that claimed them
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

// ErrClosed is returned by Tick after Shutdown began.
var ErrClosed = &errs.Error{Code: errs.Unavailable, Op: "dispatch", Message: "shutting down"}

// New applies defaults; it panics on a missing Store or Runner (a programming error).
func New(cfg Config) *Dispatcher {
	if cfg.Store == nil || cfg.Runner == nil {
		panic("dispatch: Store and Runner are required")
	}
	cfg.Concurrency = max(cmp.Or(cfg.Concurrency, 4), 1)
	cfg.Lease = cmp.Or(cfg.Lease, vocab.DefaultLease)
	cfg.Worker = cmp.Or(cfg.Worker, "kvsync")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency), runCtx: ctx, cancelRun: cancel}
}

// Tick is one dispatch: what was claimed, and a way to wait for those runs.
type Tick struct {
	Rescued []store.Rescued
	// RescueErr is the rescue's error, if it failed; the claim ran all the same.
	RescueErr error
	Claimed   []store.Claim
	results   chan RunResult
}

// Wait returns the claimed runs' results once all have ended, or what ended before ctx did.
func (t *Tick) Wait(ctx context.Context) []RunResult {
	out := make([]RunResult, 0, len(t.Claimed))
	for range t.Claimed {
		select {
		case r := <-t.results:
			out = append(out, r)
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// Tick rescues expired runs, claims up to limit due schedules (never more than the pool has free slots,
// so a claimed run starts at once and never waits out its lease in a queue) and starts them.
func (d *Dispatcher) Tick(ctx context.Context, limit int) (*Tick, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.wg.Add(1) // held until the claimed runs are started, so Shutdown waits for them too
	d.mu.Unlock()
	defer d.wg.Done()

	t := &Tick{}
	// A failed rescue must not stop the claim: the runs it could not end only hold their own credentials,
	// and every other credential's due schedules still run (one bad row never stops anyone else).
	rescued, err := d.cfg.Store.RescueExpired(ctx)
	if err != nil {
		t.RescueErr = err
		d.cfg.Logger.Error("rescue of expired runs failed; claiming all the same", "err", err)
	}
	t.Rescued = rescued
	for _, r := range rescued {
		d.cfg.Logger.Warn("rescued a run whose worker stopped heartbeating", "run", r.RunID, "worker", r.Worker)
	}
	d.notify()

	if limit <= 0 {
		limit = d.cfg.Concurrency
	}
	free := 0
acquire:
	for free < limit {
		select {
		case d.slots <- struct{}{}:
			free++
		default:
			break acquire
		}
	}
	if free == 0 {
		t.results = make(chan RunResult)
		return t, nil
	}
	start := time.Now()
	claims, err := d.cfg.Store.ClaimDue(ctx, d.cfg.Worker, free, d.cfg.Lease)
	d.cfg.Metrics.Claimed(time.Since(start), len(claims))
	for i := len(claims); i < free; i++ {
		<-d.slots
	}
	if err != nil {
		return nil, err
	}
	t.Claimed = claims
	t.results = make(chan RunResult, len(claims))
	for _, c := range claims {
		d.wg.Add(1)
		go d.run(c, t.results)
	}
	return t, nil
}

func (d *Dispatcher) run(c store.Claim, results chan<- RunResult) {
	defer d.wg.Done()
	defer func() { <-d.slots }()
	log := d.cfg.Logger.With("run", c.RunID, "credential", c.CredentialID, "sync_type", c.SyncType)
	d.cfg.Metrics.RunStarted()
	started := time.Now()
	res, err := d.cfg.Runner.RunClaimed(d.runCtx, c)
	if err != nil && !errors.Is(err, syncer.ErrLeaseLost) {
		log.Error("run could not be carried out", "err", err)
	}
	if res.Status == "" && err != nil {
		res.Status = vocab.Failed
	}
	d.cfg.Metrics.RunEnded(c.SyncType, res, time.Since(started))
	d.notify()
	rr := RunResult{Claim: c, Result: res, Err: err}
	results <- rr
	if d.cfg.OnRunDone != nil {
		d.cfg.OnRunDone(rr)
	}
}

// notify tells the alerts that something may have changed; it returns at once.
func (d *Dispatcher) notify() {
	if d.cfg.Alerts != nil {
		d.cfg.Alerts.Kick()
	}
}

// Shutdown stops claiming, lets running syncs finish until ctx ends, then cancels the rest: each of those
// is finished as failed (its committed pages and cursor stay; the schedule retries after its backoff).
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.cancelRun()
		<-done
		return ctx.Err()
	}
}
