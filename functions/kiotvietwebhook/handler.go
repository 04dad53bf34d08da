// Package kiotvietwebhook serves POST /functions/v1/kiotviet-webhook: it checks a KiotViet webhook's
// signature, stores the event and answers 200, well within KiotViet's 5 s. It does no sync work: the
// applier (internal/webhook) applies stored events afterwards, on whichever replica claims them.
package kiotvietwebhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/webhook"
)

// Store is what the handler needs of the database.
type Store interface {
	WebhookEndpoint(ctx context.Context, credentialID *string, retailerID *int64) (store.WebhookEndpoint, bool, error)
	ReceiveWebhook(ctx context.Context, d store.WebhookDelivery) (string, bool, error)
}

// Decrypter opens the stored signing secret (internal/secret's Keyring).
type Decrypter interface {
	Decrypt(ct string, aad []byte) ([]byte, error)
}

// Deps are what the handler needs. Stored, when set, is told (without blocking) that an event was
// stored, so this replica's applier picks it up at once.
type Deps struct {
	Store  Store
	Keys   Decrypter
	Logger *slog.Logger
	Stored func()
}

// StoreTimeout bounds the one database call, so the reply comes well within KiotViet's 5 s.
const StoreTimeout = 3 * time.Second

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler is the webhook receiver. The URL kvsync registers is
// /functions/v1/kiotviet-webhook?credential=<credential id>&event=<event type>: the credential picks
// the secret, the event type is what a bare {"RemoveId": [...]} body cannot tell. A delivery without
// them is matched by the retailer id in its Action.
func Handler(d Deps) http.Handler {
	log := d.Logger
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.Method(w, r, log, http.MethodPost) {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				httpx.WriteError(w, r, log, errs.E(errs.TooLarge, "request body is larger than %d bytes", httpx.MaxBody))
				return
			}
			httpx.WriteError(w, r, log, errs.E(errs.Invalid, "could not read the request body"))
			return
		}
		q := r.URL.Query()
		var credential *string
		if c := q.Get("credential"); c != "" {
			if !uuidRE.MatchString(c) {
				httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "unknown webhook endpoint: credential in the URL is not a credential id"))
				return
			}
			credential = &c
		}
		event := q.Get("event")
		if event != "" && !webhook.KnownType(event) {
			httpx.WriteError(w, r, log, errs.E(errs.Invalid, "event in the URL is not a KiotViet event type (such as product.update)"))
			return
		}
		delivery, decodeErr := webhook.Decode(body, event)
		var retailer *int64
		if decodeErr == nil && delivery.RetailerID != 0 {
			retailer = &delivery.RetailerID
		}
		if credential == nil && retailer == nil {
			if decodeErr != nil {
				httpx.WriteError(w, r, log, errs.E(errs.Invalid, "%s", decodeErr.Error()))
				return
			}
			httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "unknown retailer: the delivery names no retailer and the URL no credential"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
		defer cancel()
		ep, ok, err := d.Store.WebhookEndpoint(ctx, credential, retailer)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if !ok {
			httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "unknown retailer: no webhook endpoint is set up for it (kvsync webhooks register)"))
			return
		}
		sig := r.Header.Get(webhook.SignatureHeader)
		if sig == "" {
			httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "unsigned: the %s header is missing", webhook.SignatureHeader))
			return
		}
		key, err := d.Keys.Decrypt(ep.EncryptedSecret, webhook.SecretAAD(ep.CredentialID))
		if err != nil {
			httpx.WriteError(w, r, log, errs.Wrap(errs.Internal, errors.New("the webhook secret does not decrypt with the configured keys"), "internal error"))
			return
		}
		if !webhook.Verify(key, body, sig) {
			httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "bad signature: %s does not match the body", webhook.SignatureHeader))
			return
		}
		if decodeErr != nil {
			httpx.WriteError(w, r, log, errs.E(errs.Invalid, "%s", decodeErr.Error()))
			return
		}
		types := delivery.Types()
		if delivery.RemoveIDs != nil {
			types = append(types, event)
		}
		keyType := event
		if keyType == "" && len(types) > 0 {
			keyType = types[0]
		}
		id, inserted, err := d.Store.ReceiveWebhook(ctx, store.WebhookDelivery{
			CredentialID: ep.CredentialID, DedupeKey: delivery.DedupeKey(keyType, body),
			KiotVietID: delivery.ID, Attempt: delivery.Attempt, Types: types, Body: body,
		})
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		log.Info("webhook stored", "event", id, "types", types, "duplicate", !inserted)
		if inserted && d.Stored != nil {
			d.Stored()
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"success": true, "eventId": id, "duplicate": !inserted})
	})
}
