package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
)

// DefaultTypes are the event types kvsync registers: what it applies to the ERP's tables.
var DefaultTypes = []string{"product.update", "product.delete", "stock.update", "category.update",
	"category.delete", "branch.update", "branch.delete", "pricebook.delete", "pricebookdetail.update",
	"pricebookdetail.delete"}

// API is KiotViet's webhook API for one shop (kiotviet.Client).
type API interface {
	Webhooks(ctx context.Context) ([]kiotviet.Webhook, error)
	RegisterWebhook(ctx context.Context, typ, url, secret, description string) (kiotviet.Webhook, error)
	DeleteWebhook(ctx context.Context, id int64) error
}

// Description marks kvsync's registrations in KiotViet's list.
const Description = "kvsync"

// EndpointURL is the URL registered for one event type: the receiver's URL with the credential (which
// picks the secret) and the event type (which a bare {"RemoveId"} body does not carry).
func EndpointURL(base, credentialID, eventType string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("--url must be the receiver's address, such as https://kvsync.example.com/functions/v1/kiotviet-webhook")
	}
	if u.User != nil {
		return "", errors.New("--url must not carry a user or password")
	}
	q := u.Query()
	q.Set("credential", credentialID)
	q.Set("event", eventType)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Register (re)registers the credential's webhooks: a new secret (stored encrypted before KiotViet can
// sign with it), and for each type the registration of that type in KiotViet's list deleted (KiotViet
// allows one per type) and registered again to url. Registering again replaces; it also repairs
// registrations KiotViet disabled after a 4xx.
func Register(ctx context.Context, st *store.Store, keys *secret.Keyring, api API, credentialID, base string, types []string) ([]store.WebhookRegistration, error) {
	if len(types) == 0 {
		types = DefaultTypes
	}
	for _, t := range types {
		if !KnownType(t) {
			return nil, fmt.Errorf("%s is not a KiotViet event type kvsync applies (%s)", t, strings.Join(EventTypes, ", "))
		}
	}
	if _, err := EndpointURL(base, credentialID, types[0]); err != nil {
		return nil, err
	}
	sec, err := NewSecret()
	if err != nil {
		return nil, err
	}
	ct, err := keys.Encrypt([]byte(sec), SecretAAD(credentialID))
	if err != nil {
		return nil, err
	}
	existing, err := api.Webhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the shop's webhooks: %w", err)
	}
	if err := st.SetWebhookEndpoint(ctx, credentialID, nil, ct); err != nil {
		return nil, err
	}
	var out []store.WebhookRegistration
	var retailer int64
	for _, t := range types {
		for _, w := range existing {
			if strings.EqualFold(w.Type, t) {
				if err := api.DeleteWebhook(ctx, w.ID); err != nil {
					return out, fmt.Errorf("removing the shop's %s webhook %d: %w", t, w.ID, err)
				}
			}
		}
		u, _ := EndpointURL(base, credentialID, t)
		w, err := api.RegisterWebhook(ctx, t, u, sec, Description)
		if err != nil {
			return out, fmt.Errorf("registering %s: %w", t, err)
		}
		id := w.ID
		r := store.WebhookRegistration{CredentialID: credentialID, EventType: t, KiotVietWebhookID: &id, URL: u, IsActive: true}
		if err := st.SetWebhookRegistration(ctx, r); err != nil {
			return out, err
		}
		out = append(out, r)
		if w.RetailerID != 0 {
			retailer = w.RetailerID
		}
	}
	if retailer != 0 {
		if err := st.SetWebhookEndpoint(ctx, credentialID, &retailer, ct); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Remove deletes the credential's registrations of types (every recorded one when empty) from KiotViet
// and from the database.
func Remove(ctx context.Context, st *store.Store, api API, credentialID string, types []string) ([]string, error) {
	recorded, err := st.WebhookRegistrations(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	existing, err := api.Webhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the shop's webhooks: %w", err)
	}
	want := map[string]bool{}
	for _, t := range types {
		want[t] = true
	}
	var removed []string
	for _, r := range recorded {
		if len(want) > 0 && !want[r.EventType] {
			continue
		}
		for _, w := range existing {
			if r.KiotVietWebhookID != nil && w.ID == *r.KiotVietWebhookID {
				if err := api.DeleteWebhook(ctx, w.ID); err != nil {
					return removed, fmt.Errorf("removing %s: %w", r.EventType, err)
				}
			}
		}
		if _, err := st.DeleteWebhookRegistration(ctx, credentialID, r.EventType); err != nil {
			return removed, err
		}
		removed = append(removed, r.EventType)
	}
	return removed, nil
}

// Problem is something wrong with a credential's webhooks, with what to do.
type Problem struct {
	EventType string
	Message   string
}

// Check compares what kvsync recorded with KiotViet's list: a registration missing from KiotViet, one
// KiotViet disabled (it stops delivering after a 4xx), or one pointing elsewhere (another integration
// replaced it). It records what it found on each registration.
func Check(ctx context.Context, st *store.Store, api API, credentialID string) ([]Problem, error) {
	recorded, err := st.WebhookRegistrations(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	existing, err := api.Webhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the shop's webhooks: %w", err)
	}
	var problems []Problem
	for _, r := range recorded {
		var found *kiotviet.Webhook
		for i, w := range existing {
			if strings.EqualFold(w.Type, r.EventType) {
				found = &existing[i]
			}
		}
		var msg string
		switch {
		case found == nil:
			msg = "missing from KiotViet"
		case found.URL != r.URL:
			msg = "replaced in KiotViet by another URL (another integration registered this type)"
		case !found.IsActive:
			msg = "disabled by KiotViet (it stops delivering after a 4xx reply)"
		}
		r.IsActive = msg == ""
		r.Problem = nil
		if msg != "" {
			r.Problem = &msg
			problems = append(problems, Problem{EventType: r.EventType, Message: msg})
		}
		if err := st.SetWebhookRegistration(ctx, r); err != nil {
			return problems, err
		}
	}
	return problems, nil
}
