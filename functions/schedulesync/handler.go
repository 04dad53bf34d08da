// Package schedulesync serves POST /functions/v1/kiotviet-schedule-sync, which pg_cron calls every five
// minutes through pg_net: it decodes the request, lets in only the cron secret or the service role, runs
// one dispatcher tick (internal/dispatch) and encodes the reply. Postgres is the only coordinator: any
// number of dispatchers may tick at once, and each schedule still runs once.
package schedulesync

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/vocab"
	"github.com/kvsync/kvsync/internal/wire"
)

// Authenticator tells who is calling (internal/auth).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Caller, error)
}

// Ticker is the dispatcher (internal/dispatch).
type Ticker interface {
	Tick(ctx context.Context, limit int) (*dispatch.Tick, error)
}

// MaxWait bounds how long a {wait: true} request is held open.
const MaxWait = 15 * time.Minute

// Handler serves POST /functions/v1/kiotviet-schedule-sync. Only the cron secret or the service role may
// call it: a user's JWT gets 403, the anon key 401. Body {} or {limit, wait}. Without wait: 202
// wire.DispatchAccepted at once, the syncs going on after the reply. With wait: 200 wire.DispatchDone
// after they end, the earlier system's shape. Either way a caller that gives up (pg_net's timeout) never
// cancels the syncs.
func Handler(d Ticker, a Authenticator, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.Method(w, r, log, http.MethodPost) {
			return
		}
		caller, err := a.Authenticate(r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if !caller.IsService() {
			httpx.WriteError(w, r, log, errs.E(errs.Forbidden, "only the cron secret or the service role may dispatch"))
			return
		}
		q, limit, err := decodeDispatch(w, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		tick, err := d.Tick(ctx, limit)
		cancel()
		if err != nil { // dispatch.ErrClosed is coded unavailable (503)
			httpx.WriteError(w, r, log, err)
			return
		}
		runs := make([]wire.DispatchedRun, len(tick.Claimed))
		for i, c := range tick.Claimed {
			runs[i] = wire.DispatchedRun{RunID: c.RunID, ScheduleID: c.ScheduleID, CredentialID: c.CredentialID,
				SyncType: c.SyncType, SlotAt: c.SlotAt}
		}
		log.Info("dispatch", "claimed", len(tick.Claimed), "rescued", len(tick.Rescued), "by", caller.Kind.String())
		if !q.Wait {
			httpx.JSON(w, http.StatusAccepted, wire.DispatchAccepted{Success: true, Claimed: len(tick.Claimed),
				Rescued: len(tick.Rescued), Runs: runs})
			return
		}
		httpx.LongReply(w, MaxWait+time.Minute)
		wctx, wcancel := context.WithTimeout(r.Context(), MaxWait)
		defer wcancel()
		results := tick.Wait(wctx)
		errs := 0
		for _, res := range results {
			if res.Result.Status != vocab.Success {
				errs++
			}
			for i := range runs {
				if runs[i].RunID == res.Claim.RunID {
					msg, records := res.Result.Error, res.Result.Records
					runs[i].Status, runs[i].Error, runs[i].Records = res.Result.Status, &msg, &records
				}
			}
		}
		httpx.JSON(w, http.StatusOK, wire.DispatchDone{Success: errs == 0, Ran: len(results) - errs, Errors: errs,
			Total: len(tick.Claimed), Runs: runs})
	})
}

// decodeDispatch reads and checks a dispatch body (the decoding FuzzDecodeDispatch exercises); limit 0
// means the pool's free slots.
func decodeDispatch(w http.ResponseWriter, r *http.Request) (wire.DispatchRequest, int, error) {
	var q wire.DispatchRequest
	if err := httpx.Decode(w, r, &q); err != nil {
		return q, 0, err
	}
	if q.Limit == nil {
		return q, 0, nil
	}
	if *q.Limit < 1 || *q.Limit > 1000 {
		return q, 0, errs.E(errs.Invalid, "limit must be a whole number from 1 to 1000")
	}
	return q, *q.Limit, nil
}
