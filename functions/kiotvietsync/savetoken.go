package kiotvietsync

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/syncer"
)

// Connector checks and saves a KiotViet connection (syncer.Connect with its dependencies bound).
type Connector func(ctx context.Context, c syncer.Connection) (string, error)

// SaveTokenDeps are what the save-kiotviet-token handler needs.
type SaveTokenDeps struct {
	Auth    Authenticator
	Admins  Admins
	Connect Connector
	Logger  *slog.Logger
}

// decodeSaveToken reads and checks a save-kiotviet-token body (the decoding FuzzDecodeSaveToken exercises).
func decodeSaveToken(w http.ResponseWriter, r *http.Request) (syncer.Connection, error) {
	var q struct {
		RetailerName string `json:"retailerName"`
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	if err := httpx.Decode(w, r, &q); err != nil {
		return syncer.Connection{}, err
	}
	for _, f := range []struct{ name, v string }{{"retailerName", q.RetailerName}, {"clientId", q.ClientID}, {"clientSecret", q.ClientSecret}} {
		if strings.TrimSpace(f.v) == "" {
			return syncer.Connection{}, errs.E(errs.Invalid, "%s is required", f.name)
		}
	}
	return syncer.Connection{Retailer: q.RetailerName, ClientID: q.ClientID, ClientSecret: q.ClientSecret}, nil
}

// SaveTokenHandler serves POST /functions/v1/save-kiotviet-token: an admin user's JWT only, with
// {retailerName, clientId, clientSecret}. Saving decides whose shop fills the tables (the owner's older
// credentials are deactivated and their schedules move to the new one), so the cron secret, which pg_net
// sends in request headers, and the service keys are refused with 403: they may start syncs, never
// replace a shop. The saving user's id is recorded as the credential's user_id. The connection is checked
// live with KiotViet before anything is stored: 400 naming the missing field, 400 when KiotViet refuses
// the credentials (with KiotViet's reason), 502 when KiotViet cannot be reached.
func SaveTokenHandler(d SaveTokenDeps) http.Handler {
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
		if caller.IsService() || caller.UserID == "" {
			httpx.WriteError(w, r, log, errs.E(errs.Forbidden,
				"save-kiotviet-token takes a signed-in admin's token only; the cron secret and service keys may start syncs but never replace a shop's KiotViet connection"))
			return
		}
		conn, err := decodeSaveToken(w, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		uid := caller.UserID
		conn.UserID = &uid
		id, err := d.Connect(context.WithoutCancel(r.Context()), conn)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"success": true, "credentialId": id,
			"message": "KiotViet connection saved"})
	})
}
