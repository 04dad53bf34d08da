// Package kiotvietsync serves POST /functions/v1/kiotviet-sync (run one sync and answer when its log row
// is final, in the reply shape the ERP reads) and POST /functions/v1/save-kiotviet-token (check a
// KiotViet connection live, encrypt it, store it).
package kiotvietsync

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
	"github.com/kvsync/kvsync/internal/wire"
)

// Authenticator tells who is calling (internal/auth).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Caller, error)
}

// Admins tells whether a user is an ERP admin (the database's rule: public.is_admin or app_metadata.role).
type Admins interface {
	CallerIsAdmin(ctx context.Context, claims map[string]any) (bool, error)
}

// Syncer runs one sync to the end (internal/syncer's Engine): a run it starts, or one the dispatcher
// claimed and fanned out here.
type Syncer interface {
	Run(ctx context.Context, req syncer.Request) (syncer.Result, error)
	RunClaimed(ctx context.Context, c store.Claim) (syncer.Result, error)
}

// Deps are what the sync handler needs.
type Deps struct {
	Auth   Authenticator
	Admins Admins
	Sync   Syncer
	Logger *slog.Logger
}

// MaxSyncWait is how long a kiotviet-sync request may wait for its run's reply (a full sync of a large
// shop with a slow KiotViet takes minutes); the run itself goes on and writes its log row regardless.
const MaxSyncWait = 30 * time.Minute

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Authorize lets in the cron secret, the service role, and admin users; a signed-in non-admin gets 403
// and anyone else 401 (the anon key opens nothing).
func Authorize(ctx context.Context, a Authenticator, admins Admins, r *http.Request) (auth.Caller, error) {
	c, err := a.Authenticate(r)
	if err != nil {
		return c, err
	}
	if c.IsService() {
		return c, nil
	}
	ok, err := admins.CallerIsAdmin(ctx, c.Claims)
	if err != nil {
		return c, err
	}
	if !ok {
		return c, errs.E(errs.Forbidden, "only an admin may do this")
	}
	return c, nil
}

// syncCall is a checked kiotviet-sync body: a run to start (req), or, when claim is set, a run the
// dispatcher claimed, of req's credential and sync type.
type syncCall struct {
	req   syncer.Request
	claim *store.Claim
}

// decodeSync reads and checks a kiotviet-sync body (the decoding FuzzDecodeSync exercises).
func decodeSync(w http.ResponseWriter, r *http.Request, caller auth.Caller) (syncCall, error) {
	var q wire.SyncRequest
	if err := httpx.Decode(w, r, &q); err != nil {
		return syncCall{}, err
	}
	req, err := toSync(q, caller)
	if err != nil || q.RunID == "" {
		return syncCall{req: req}, err
	}
	if !caller.IsService() {
		return syncCall{}, errs.E(errs.Forbidden, "runId is for the dispatcher only")
	}
	if !uuidRE.MatchString(q.RunID) {
		return syncCall{}, errs.E(errs.Invalid, "runId must be a UUID")
	}
	if q.Options != (wire.SyncOptions{}) {
		return syncCall{}, errs.E(errs.Invalid, "options are not for a claimed run (runId): it runs as its schedule says")
	}
	return syncCall{req: req, claim: &store.Claim{RunID: q.RunID, CredentialID: req.CredentialID, SyncType: req.SyncType}}, nil
}

// toSync checks a request body and makes it an engine request; every problem names the field.
func toSync(q wire.SyncRequest, caller auth.Caller) (syncer.Request, error) {
	req := syncer.Request{CredentialID: strings.TrimSpace(q.CredentialID), SyncType: vocab.SyncType(strings.TrimSpace(q.SyncType)),
		Full: q.Options.Full, Trigger: vocab.Manual}
	if caller.IsService() {
		req.Trigger = vocab.API
	}
	switch {
	case req.CredentialID == "":
		return req, errs.E(errs.Invalid, "credentialId is required")
	case !uuidRE.MatchString(req.CredentialID):
		return req, errs.E(errs.Invalid, "credentialId must be a UUID")
	case req.SyncType == "":
		return req, errs.E(errs.Invalid, "syncType is required")
	}
	if !req.SyncType.Valid() {
		return req, errs.E(errs.Invalid, "syncType must be one of %s", vocab.Names(vocab.SyncTypes))
	}
	if q.Options.PageSize != nil {
		if *q.Options.PageSize == 0 || !kiotviet.PageSizeOK(*q.Options.PageSize) {
			return req, errs.E(errs.Invalid, "options.pageSize must be a whole number from %d to %d",
				kiotviet.MinPageSize, kiotviet.MaxPageSize)
		}
		req.PageSize = *q.Options.PageSize
	}
	if q.Options.DateFrom != "" {
		t, err := kiotviet.ParseDateFrom(q.Options.DateFrom)
		if err != nil {
			return req, errs.E(errs.Invalid, "options.dateFrom must be an ISO date or date-time")
		}
		req.DateFrom = t
	}
	return req, nil
}

// Handler serves POST /functions/v1/kiotviet-sync. It answers after the run's log row is final:
// 200 {success:true, results, runId} on success; 200 {success:false, error, results, runId} when some
// streams failed (partial: the ERP shows the reason, and what committed stays); 502 when the run failed
// on KiotViet; 409 while the credential is already syncing.
func Handler(d Deps) http.Handler {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.Method(w, r, log, http.MethodPost) {
			return
		}
		caller, err := Authorize(r.Context(), d.Auth, d.Admins, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		call, err := decodeSync(w, r, caller)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		// The reply waits for the run: give this route its own write deadline (the server's is a minute).
		httpx.LongReply(w, MaxSyncWait)
		// The sync outlives a caller that gives up: its outcome must still reach the log row.
		ctx := context.WithoutCancel(r.Context())
		var res syncer.Result
		if call.claim != nil {
			res, err = d.Sync.RunClaimed(ctx, *call.claim)
		} else {
			res, err = d.Sync.Run(ctx, call.req)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		body := wire.SyncReply{Success: res.Status == vocab.Success, Results: res.Streams, RunID: res.RunID,
			Status: res.Status, Records: res.Records}
		res.Error = redact.String(res.Error) // an error's text may quote a URL with a token in it
		switch res.Status {
		case vocab.Success:
			httpx.JSON(w, http.StatusOK, body)
		case vocab.Failed:
			body.Error = &res.Error
			httpx.JSON(w, httpx.StatusFor(errs.Upstream), body) // the run failed on KiotViet
		default: // partial, skipped
			body.Error = &res.Error
			httpx.JSON(w, http.StatusOK, body)
		}
	})
}
