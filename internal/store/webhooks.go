package store

import (
	"context"
	"encoding/json"
	"time"
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

// WebhookEvent is a stored event claimed for applying.
type WebhookEvent struct {
	ID           string          `json:"id"`
	CredentialID string          `json:"credential_id"`
	EventTypes   []string        `json:"event_types"`
	Body         json.RawMessage `json:"body"`
	Attempts     int             `json:"attempts"`
	ReceivedAt   time.Time       `json:"received_at"`
}

// ClaimWebhooks claims up to limit due events for worker (FOR UPDATE SKIP LOCKED); an event whose worker
// died maxAttempts times is parked instead.
func (s *Store) ClaimWebhooks(ctx context.Context, worker string, limit int, lease time.Duration, maxAttempts int) ([]WebhookEvent, error) {
	var out []WebhookEvent
	err := s.call(ctx, "kiotviet_webhook_claim", &out, true, Arg{"p_worker", worker}, Arg{"p_limit", limit},
		Arg{"p_lease_seconds", leaseSeconds(lease)}, Arg{"p_max_attempts", maxAttempts})
	return out, err
}

// WebhookDone marks an event applied, keeping what it did; false when it is no longer this worker's.
func (s *Store) WebhookDone(ctx context.Context, id, worker string, result any) (bool, error) {
	raw, err := json.Marshal(result)
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.call(ctx, "kiotviet_webhook_done", &ok, false, Arg{"p_id", id}, Arg{"p_worker", worker}, Arg{"p_result", json.RawMessage(raw)})
	return ok, err
}

// WebhookFailed records a failure: the event is retried after a backoff, or parked once maxAttempts are
// used; it returns the new status ("" when the event is no longer this worker's).
func (s *Store) WebhookFailed(ctx context.Context, id, worker, reason string, maxAttempts int) (string, error) {
	var status *string
	err := s.call(ctx, "kiotviet_webhook_fail", &status, false, Arg{"p_id", id}, Arg{"p_worker", worker},
		Arg{"p_error", reason}, Arg{"p_max_attempts", maxAttempts})
	if err != nil || status == nil {
		return "", err
	}
	return *status, nil
}

// RetryWebhook puts a parked event back in the queue; false when it was not parked.
func (s *Store) RetryWebhook(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.call(ctx, "kiotviet_webhook_retry", &ok, false, Arg{"p_id", id})
	return ok, err
}

func (s *Store) applyWebhook(ctx context.Context, fn string, args ...Arg) (map[string]int, error) {
	var out map[string]int
	err := s.call(ctx, fn, &out, false, args...)
	return out, err
}

// ApplyWebhookProducts upserts products newer than the stored rows and deletes removed ids.
func (s *Store) ApplyWebhookProducts(ctx context.Context, eventID, credentialID string, rows json.RawMessage, removed []int64) (map[string]int, error) {
	return s.applyWebhook(ctx, "kiotviet_webhook_apply_products", Arg{"p_event_id", eventID}, Arg{"p_credential_id", credentialID},
		Arg{"p_rows", rows}, Arg{"p_removed_ids", ids(removed)})
}

// ApplyWebhookStock merges stock per branch.
func (s *Store) ApplyWebhookStock(ctx context.Context, eventID, credentialID string, rows json.RawMessage) (map[string]int, error) {
	return s.applyWebhook(ctx, "kiotviet_webhook_apply_stock", Arg{"p_event_id", eventID}, Arg{"p_credential_id", credentialID},
		Arg{"p_rows", rows})
}

// ApplyWebhookCategories upserts categories newer than the stored rows and deletes removed ids.
func (s *Store) ApplyWebhookCategories(ctx context.Context, eventID, credentialID string, rows json.RawMessage, removed []int64) (map[string]int, error) {
	return s.applyWebhook(ctx, "kiotviet_webhook_apply_categories", Arg{"p_event_id", eventID}, Arg{"p_credential_id", credentialID},
		Arg{"p_rows", rows}, Arg{"p_removed_ids", ids(removed)})
}

// ApplyWebhookBranches upserts branches newer than the stored rows and deactivates removed ids.
func (s *Store) ApplyWebhookBranches(ctx context.Context, eventID, credentialID string, rows json.RawMessage, removed []int64) (map[string]int, error) {
	return s.applyWebhook(ctx, "kiotviet_webhook_apply_branches", Arg{"p_event_id", eventID}, Arg{"p_credential_id", credentialID},
		Arg{"p_rows", rows}, Arg{"p_removed_ids", ids(removed)})
}

// ApplyWebhookPriceBooks applies a price book change: kind is detail.update, detail.delete or delete.
func (s *Store) ApplyWebhookPriceBooks(ctx context.Context, eventID, credentialID, kind string, rows json.RawMessage, removed []int64) (map[string]int, error) {
	if rows == nil {
		rows = json.RawMessage(`[]`)
	}
	return s.applyWebhook(ctx, "kiotviet_webhook_apply_price_books", Arg{"p_event_id", eventID}, Arg{"p_credential_id", credentialID},
		Arg{"p_kind", kind}, Arg{"p_rows", rows}, Arg{"p_removed_ids", ids(removed)})
}

func ids(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}

// WebhookHealth is one credential's webhook state (kiotviet_webhook_health).
type WebhookHealth struct {
	CredentialID        string     `json:"credential_id"`
	RetailerName        string     `json:"retailer_name"`
	RetailerID          *int64     `json:"retailer_id"`
	Pending             int        `json:"pending"`
	Applying            int        `json:"applying"`
	Applied             int        `json:"applied"`
	Parked              int        `json:"parked"`
	LastReceivedAt      *time.Time `json:"last_received_at"`
	OldestPendingAt     *time.Time `json:"oldest_pending_at"`
	LastParkedError     *string    `json:"last_parked_error"`
	Registrations       int        `json:"registrations"`
	ActiveRegistrations int        `json:"active_registrations"`
	InactiveTypes       []string   `json:"inactive_types"`
}

// WebhookHealth lists the webhook state of every credential that has webhooks.
func (s *Store) WebhookHealth(ctx context.Context) ([]WebhookHealth, error) {
	var out []WebhookHealth
	err := s.call(ctx, "kiotviet_webhook_health", &out, true)
	return out, err
}

// WebhookRegistration is one registration kvsync made with KiotViet.
type WebhookRegistration struct {
	CredentialID      string     `json:"credential_id"`
	EventType         string     `json:"event_type"`
	KiotVietWebhookID *int64     `json:"kiotviet_webhook_id"`
	URL               string     `json:"url"`
	IsActive          bool       `json:"is_active"`
	RegisteredAt      time.Time  `json:"registered_at"`
	CheckedAt         *time.Time `json:"checked_at"`
	Problem           *string    `json:"problem"`
}

// SetWebhookRegistration records (or replaces) the registration of one event type.
func (s *Store) SetWebhookRegistration(ctx context.Context, r WebhookRegistration) error {
	return s.call(ctx, "kiotviet_webhook_set_registration", nil, false, Arg{"p_credential_id", r.CredentialID},
		Arg{"p_event_type", r.EventType}, Arg{"p_kiotviet_webhook_id", r.KiotVietWebhookID}, Arg{"p_url", r.URL},
		Arg{"p_is_active", r.IsActive}, Arg{"p_problem", r.Problem})
}

// DeleteWebhookRegistration forgets a registration; false when there was none.
func (s *Store) DeleteWebhookRegistration(ctx context.Context, credentialID, eventType string) (bool, error) {
	var ok bool
	err := s.call(ctx, "kiotviet_webhook_delete_registration", &ok, false, Arg{"p_credential_id", credentialID},
		Arg{"p_event_type", eventType})
	return ok, err
}

// WebhookRegistrations lists the registrations of one credential (every credential when empty).
func (s *Store) WebhookRegistrations(ctx context.Context, credentialID string) ([]WebhookRegistration, error) {
	var cid *string
	if credentialID != "" {
		cid = &credentialID
	}
	var out []WebhookRegistration
	err := s.call(ctx, "kiotviet_webhook_list_registrations", &out, true, Arg{"p_credential_id", cid})
	return out, err
}

// StockScanDue tells whether an inventory run must read /productOnHands in full: false only while the
// credential's stock webhooks are healthy and the last full scan is younger than every (0: always due).
func (s *Store) StockScanDue(ctx context.Context, credentialID string, every time.Duration) (bool, error) {
	var due bool
	err := s.call(ctx, "kiotviet_stock_scan_due", &due, false, Arg{"p_credential_id", credentialID},
		Arg{"p_scan_every_seconds", int(every / time.Second)})
	return due, err
}

// StockScanned records a complete full stock scan.
func (s *Store) StockScanned(ctx context.Context, credentialID string) error {
	return s.call(ctx, "kiotviet_stock_scanned", nil, false, Arg{"p_credential_id", credentialID})
}
