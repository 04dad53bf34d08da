package store

import (
	"context"
	"encoding/json"
)

// WebhookEndpoint is a credential's webhook signing secret (still encrypted) and KiotViet's retailer id.
type WebhookEndpoint struct {
	CredentialID    string `json:"credential_id"`
	RetailerID      *int64 `json:"retailer_id"`
	EncryptedSecret string `json:"encrypted_secret"`
}

// WebhookEndpoint finds the endpoint a delivery is for, by credential id, retailer id or both (which
// must agree); ok false when there is none (an unknown retailer).
func (s *Store) WebhookEndpoint(ctx context.Context, credentialID *string, retailerID *int64) (WebhookEndpoint, bool, error) {
	var rows []WebhookEndpoint
	err := s.call(ctx, "kiotviet_webhook_endpoint", &rows, true,
		Arg{"p_credential_id", credentialID}, Arg{"p_retailer_id", retailerID})
	if err != nil || len(rows) == 0 {
		return WebhookEndpoint{}, false, err
	}
	return rows[0], true, nil
}

// SetWebhookEndpoint stores (or replaces) a credential's encrypted signing secret and retailer id (nil
// keeps the one known).
func (s *Store) SetWebhookEndpoint(ctx context.Context, credentialID string, retailerID *int64, encryptedSecret string) error {
	return s.call(ctx, "kiotviet_webhook_set_endpoint", nil, false, Arg{"p_credential_id", credentialID},
		Arg{"p_retailer_id", retailerID}, Arg{"p_encrypted_secret", encryptedSecret})
}

// WebhookDelivery is one verified delivery to store.
type WebhookDelivery struct {
	CredentialID string
	DedupeKey    string
	KiotVietID   string
	Attempt      int
	Types        []string
	Body         json.RawMessage
}

// ReceiveWebhook stores a verified delivery; inserted false means it was a repeat of one stored already.
func (s *Store) ReceiveWebhook(ctx context.Context, d WebhookDelivery) (eventID string, inserted bool, err error) {
	var rows []struct {
		EventID  string `json:"event_id"`
		Inserted bool   `json:"inserted"`
	}
	var kid *string
	if d.KiotVietID != "" {
		kid = &d.KiotVietID
	}
	types := d.Types
	if types == nil {
		types = []string{}
	}
	err = s.call(ctx, "kiotviet_webhook_receive", &rows, true, Arg{"p_credential_id", d.CredentialID},
		Arg{"p_dedupe_key", d.DedupeKey}, Arg{"p_kiotviet_id", kid}, Arg{"p_attempt", d.Attempt},
		Arg{"p_event_types", types}, Arg{"p_body", d.Body})
	if err != nil || len(rows) == 0 {
		return "", false, err
	}
	return rows[0].EventID, rows[0].Inserted, nil
}
