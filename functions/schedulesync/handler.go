package schedulesync

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/httpx"
)

// Authenticator tells who is calling (internal/auth).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Caller, error)
}

// MaxWait bounds how long a {wait: true} request is held open.
const MaxWait = 15 * time.Minute

// Handler serves POST /functions/v1/kiotviet-schedule-sync. Only the cron secret or the service role may
// call it: a user's JWT gets 403, the anon key 401. Body {} or {limit, wait}. Without wait: 202
// {success, claimed, runs} at once, the syncs going on after the reply. With wait: 200 {success, ran,
// errors, total, runs} after they end, the earlier system's shape. Either way a caller that gives up (pg_net's
// timeout) never cancels the syncs.
func Handler(d *Dispatcher, a Authenticator, log *slog.Logger) http.Handler {
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
			httpx.WriteError(w, r, log, httpx.Errorf(http.StatusForbidden, "only the cron secret or the service role may dispatch"))
			return
		}
		var q struct {
			Limit *int `json:"limit"`
			Wait  bool `json:"wait"`
		}
		if err := httpx.Decode(w, r, &q); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		limit := 0
		if q.Limit != nil {
			if *q.Limit < 1 || *q.Limit > 1000 {
				httpx.WriteError(w, r, log, httpx.Errorf(http.StatusBadRequest, "limit must be between 1 and 1000"))
				return
			}
			limit = *q.Limit
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		tick, err := d.Tick(ctx, limit)
		cancel()
		if err == ErrClosed {
			httpx.WriteError(w, r, log, httpx.Errorf(http.StatusServiceUnavailable, "shutting down"))
			return
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		runs := make([]map[string]any, len(tick.Claimed))
		for i, c := range tick.Claimed {
			runs[i] = map[string]any{"runId": c.RunID, "scheduleId": c.ScheduleID, "credentialId": c.CredentialID,
				"syncType": c.SyncType, "slotAt": c.SlotAt}
		}
		log.Info("dispatch", "claimed", len(tick.Claimed), "rescued", len(tick.Rescued), "by", caller.Kind.String())
		if !q.Wait {
			httpx.JSON(w, http.StatusAccepted, map[string]any{"success": true, "claimed": len(tick.Claimed),
				"rescued": len(tick.Rescued), "runs": runs})
			return
		}
		wctx, wcancel := context.WithTimeout(r.Context(), MaxWait)
		defer wcancel()
		results := tick.Wait(wctx)
		errs := 0
		for _, res := range results {
			if res.Result.Status != "success" {
				errs++
			}
			for _, run := range runs {
				if run["runId"] == res.Claim.RunID {
					run["status"] = res.Result.Status
					run["error"] = res.Result.Error
					run["records"] = res.Result.Records
				}
			}
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"success": errs == 0, "ran": len(results) - errs, "errors": errs,
			"total": len(tick.Claimed), "runs": runs})
	})
}
