package syncer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/vocab"
)

// A run's life belongs to the engine: it starts a manual run (Start, Run) or takes over one the
// dispatcher claimed (RunClaimed, or Remote for a claim carried out by another replica), heartbeats it
// with its progress, and finishes it whatever happened, in carry or, for a run that never got that far,
// in fail. No other package starts a run outside a claim or finishes one (TestOnlyTheEngineFinishesRuns).

// ErrLeaseLost means the run's lease was taken away (the run was rescued as dead); nothing more was
// written after that.
var ErrLeaseLost = errors.New("the run's lease expired and it was handed back")

// Running is a run the engine started and is carrying out.
type Running struct {
	// ID is the run's log row, known before the run goes on: a caller can follow its progress there.
	ID string

	done chan struct{}
	res  Result
	err  error
}

// Wait blocks until the run has ended and returns its outcome (as Run does).
func (r *Running) Wait() (Result, error) {
	<-r.done
	return r.res, r.err
}

// runOptions are a started run's options, kept in its log row.
type runOptions struct {
	PageSize int        `json:"pageSize"`
	Full     bool       `json:"full"`
	DateFrom *time.Time `json:"dateFrom"`
}

// Start opens a run of req (its log row, running, leased to this engine's worker) and carries it out in
// the background until it ends, or until ctx does (shutdown, Ctrl-C: the run is then finished as
// failed, its committed pages kept). Validation and overlap errors (an *errs.Error coded Conflict when
// the credential is already syncing, NotFound for an unknown one) come back before anything is written.
func (e *Engine) Start(ctx context.Context, req Request) (*Running, error) {
	streams, err := check(req)
	if err != nil {
		return nil, err
	}
	opts, err := json.Marshal(runOptions{PageSize: req.PageSize, Full: req.Full, DateFrom: tm(req.DateFrom)})
	if err != nil {
		return nil, err
	}
	runID, err := e.cfg.Store.StartRun(ctx, req.CredentialID, req.SyncType, cmp.Or(req.Trigger, vocab.Manual), e.cfg.Worker, e.cfg.Lease, opts)
	if err != nil {
		return nil, err
	}
	h := &Running{ID: runID, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.res, h.err = e.carry(ctx, runID, req, streams)
	}()
	return h, nil
}

// Run starts a run of req and waits for its end. Errors before the start are Start's; once the run has
// started, its outcome is in Result and in the log row, and the error is only for a run that could not
// be finished (lost lease, database gone).
func (e *Engine) Run(ctx context.Context, req Request) (Result, error) {
	h, err := e.Start(ctx, req)
	if err != nil {
		return Result{}, err
	}
	return h.Wait()
}

// RunClaimed carries out a run the dispatcher claimed (its row already running) to its end, as Run
// does. It carries the run out only as claimed: a claim that does not name a running run of its own
// credential and sync type is refused (coded Invalid) and left alone, as it may be another's. A claim
// whose row cannot be read is finished as failed, so it does not stay running until its lease expires.
func (e *Engine) RunClaimed(ctx context.Context, c store.Claim) (Result, error) {
	req := Request{CredentialID: c.CredentialID, SyncType: c.SyncType, Trigger: vocab.Cron}
	l, err := e.cfg.Store.Run(ctx, c.RunID)
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return Result{}, err
		}
		return e.fail(ctx, c.RunID, err), err
	}
	if l.Status != vocab.Running || l.CredentialID == nil || *l.CredentialID != c.CredentialID || l.SyncType != c.SyncType {
		return Result{}, &errs.Error{Op: "sync", Code: errs.Invalid,
			Message: fmt.Sprintf("runId %s is not a running %s run of credential %s", c.RunID, c.SyncType, c.CredentialID)}
	}
	streams, err := check(req)
	if err != nil {
		return e.fail(ctx, c.RunID, err), err
	}
	return e.carry(ctx, c.RunID, req, streams)
}

// Carrier hands a claimed run to another process that carries it out and finishes it there
// (dispatch.FanOut: another replica's kiotviet-sync, which calls RunClaimed).
type Carrier interface {
	Carry(ctx context.Context, c store.Claim) (Result, error)
}

// Remote carries out claimed runs through a Carrier (see Engine.Remote).
type Remote struct {
	e *Engine
	c Carrier
}

// Remote returns a runner of claimed runs that hands each to c. A run c could not carry out (the
// replica refused it, or its reply never came) is finished here as failed: its row must not stay
// running until its lease expires.
func (e *Engine) Remote(c Carrier) Remote { return Remote{e: e, c: c} }

// RunClaimed hands the claimed run to the carrier and waits for its outcome.
func (r Remote) RunClaimed(ctx context.Context, c store.Claim) (Result, error) {
	res, err := r.c.Carry(ctx, c)
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return r.e.fail(ctx, c.RunID, err), err
	}
	return res, err
}

// check validates a request before anything is written and returns the streams its sync type runs.
func check(req Request) ([]vocab.Stream, error) {
	streams, ok := vocab.Streams[req.SyncType]
	if !ok {
		return nil, &errs.Error{Op: "sync", Code: errs.Invalid, Message: "syncType must be one of " + vocab.Names(vocab.SyncTypes)}
	}
	if !kiotviet.PageSizeOK(req.PageSize) {
		return nil, &errs.Error{Op: "sync", Code: errs.Invalid,
			Message: fmt.Sprintf("options.pageSize must be a whole number from %d to %d", kiotviet.MinPageSize, kiotviet.MaxPageSize)}
	}
	return streams, nil
}

// carry is a running run's life in this engine: its streams, its heartbeat (lease and progress), and
// its one finish, whatever happened, except after a lost lease (the rescue owns the run then).
func (e *Engine) carry(ctx context.Context, runID string, req Request, streams []vocab.Stream) (Result, error) {
	log := e.cfg.Logger.With("credential", req.CredentialID, "sync_type", req.SyncType, "run", runID)
	res := Result{RunID: runID, Streams: map[string]*StreamStats{}}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{e: e, id: runID, req: req, log: log, res: &res, beatAt: time.Now()}
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); r.heartbeat(runCtx, cancel) }()

	var firstErr error
	cred, err := e.cfg.Store.Credential(runCtx, req.CredentialID)
	switch {
	case err != nil:
		firstErr = err
	case !cred.IsActive:
		res.Status = vocab.Skipped
		res.Error = "credential is not active"
	default:
		r.client = e.client(cred)
		startCalls := r.client.Calls()
		// a stream's calls are those of its endpoints: the next stream's may start before it ends (prefetch)
		base := r.client.CallsByEndpoint()
		for i, stream := range streams {
			name := string(stream)
			st := &StreamStats{}
			res.Streams[name] = st
			r.progress(name)
			if i+1 < len(streams) {
				r.prefetch(runCtx, streams[i+1])
			}
			err := r.stream(runCtx, name, st)
			now := r.client.CallsByEndpoint()
			for _, ep := range streamEndpoints[stream] {
				st.APICalls += now[ep] - base[ep]
			}
			if err != nil {
				st.Error = err.Error()
				log.Warn("stream failed", "stream", name, "err", err)
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				if runCtx.Err() != nil {
					break // shutting down or lease lost: stop, keep what committed
				}
				if errors.Is(err, kiotviet.ErrBudget) {
					break // the next streams would find it used up too
				}
			}
		}
		r.dropPrefetched()
		res.APICalls = r.client.Calls() - startCalls
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := r.client.ReleaseBudget(rctx); err != nil {
			log.Warn("could not give back unused API calls to the shared budget", "err", err)
		}
		rcancel()
	}
	cancel(nil)
	<-hbDone

	var budget *kiotviet.BudgetError
	if res.Status == "" && errors.As(firstErr, &budget) {
		// Not a failure of the shop or of kvsync: what committed stays and the next run goes on from
		// there once the budget has room ("API budget used up; resumes at 14:05").
		res.Status, firstErr = vocab.Partial, budget
	}
	if res.Status == "" {
		res.Status = outcome(res.Streams, firstErr)
	}
	for _, st := range res.Streams {
		res.Records += st.Count
	}
	if firstErr != nil {
		res.Error = firstErr.Error()
	}
	if cause := context.Cause(runCtx); errors.Is(cause, ErrLeaseLost) {
		return res, ErrLeaseLost
	}
	// Finish even when the caller's context ended (shutdown): the run's outcome must reach its log row.
	// The database may be gone for a while (restart, failover, network): keep the outcome and try again
	// until it is back or the lease would expire, after which the rescue owns the run.
	fctx := context.WithoutCancel(ctx)
	next, err := e.finish(fctx, r, store.Finish{Status: res.Status, Records: res.Records,
		Stats: res.Streams, APICalls: res.APICalls, Error: res.Error})
	if err != nil {
		err = fmt.Errorf("finish run %s: %w", runID, err)
		if e.fail(ctx, runID, err).Status == vocab.Failed {
			res.Status = vocab.Failed // the outcome could not be written, but the run's row is not left running
		}
		return res, err
	}
	res.NextRunAt = next
	if res.Status != vocab.Success && kiotviet.CredentialsRejected(firstErr) {
		// retrying every period will not help: stop the credential's schedules until it is saved again
		n, err := e.cfg.Store.PauseSchedules(fctx, req.CredentialID, PauseReason(firstErr))
		if err != nil {
			log.Error("could not pause the schedules of a rejected credential", "err", err)
		} else {
			res.Paused = n
			log.Warn("KiotViet rejected the credential: its schedules are paused", "schedules", n)
		}
	}
	log.Info("sync finished", "status", res.Status, "records", res.Records, "api_calls", res.APICalls)
	return res, nil
}

// fail finishes a run this engine could not carry out, or whose outcome it could not write, as failed
// with cause. Its Result says failed when the row was finished now; it is empty when the run had
// already ended (or the database could not be reached: the rescue ends the run once its lease expires).
func (e *Engine) fail(ctx context.Context, runID string, cause error) Result {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := e.cfg.Store.FinishRun(fctx, runID, store.Finish{Status: vocab.Failed, Error: cause.Error()}); err != nil {
		e.cfg.Logger.Warn("could not finish a run that was not carried out", "run", runID, "err", err)
		return Result{}
	}
	return Result{RunID: runID, Status: vocab.Failed, Error: cause.Error()}
}

// finish closes the run's log row, retrying while the database cannot be reached, until just before the
// run's lease would expire (its last heartbeat plus the lease): past that, a rescue may already have
// ended the run, and finishing it could only fail.
func (e *Engine) finish(ctx context.Context, r *run, f store.Finish) (*time.Time, error) {
	deadline := r.leaseUntil().Add(-time.Second)
	wait := 250 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, max(min(10*time.Second, time.Until(deadline)), time.Second))
		next, err := e.cfg.Store.FinishRun(actx, r.id, f)
		cancel()
		if err == nil || !unreachable(err) || time.Until(deadline) <= 0 {
			return next, err
		}
		r.log.Warn("the database cannot be reached to finish the run; trying again", "err", err,
			"until", deadline.Format(time.RFC3339))
		if e.cfg.OnFinishFailed != nil {
			e.cfg.OnFinishFailed(r.id, err)
		}
		t := time.NewTimer(min(wait, max(time.Until(deadline), 0)))
		<-t.C
		wait = min(wait*2, 5*time.Second)
	}
}

// unreachable: the call never got an answer from the database (connection refused or lost, the server
// shutting down or starting), as opposed to the database refusing it.
func unreachable(err error) bool {
	var se *errs.Error
	if errors.As(err, &se) && se.SQLState != "" {
		return se.Code == errs.Unavailable // store.sqlError: connection exceptions and shutdowns
	}
	code := errs.CodeOf(err)
	return code == errs.Internal || code == errs.Unavailable
}

// outcome: every stream done → success; some → partial; none → failed.
func outcome(streams map[string]*StreamStats, err error) vocab.Status {
	if err == nil {
		return vocab.Success
	}
	ok := 0
	for _, st := range streams {
		if st.Error == "" {
			ok++
		}
	}
	if ok > 0 {
		return vocab.Partial
	}
	return vocab.Failed
}
