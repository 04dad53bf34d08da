package store

import (
	"context"
	"encoding/json"
	"time"
)

// AlertRules are the thresholds of kiotviet_alert_scan.
type AlertRules struct {
	Failures   int           // consecutive failures before a schedule is failing
	LongFactor float64       // × the schedule's median duration before a run is running long
	LongMin    time.Duration // and at least this long
	StaleAfter time.Duration // no successful sync of a stream for this long is stale
	// WebhooksStoppedAfter: a credential that was receiving webhooks and got none for this long
	WebhooksStoppedAfter time.Duration
}

// AlertEvent is one event as the database returns it; Details is its JSON.
type AlertEvent struct {
	EventID   string          `json:"event_id"`
	Kind      string          `json:"kind"`
	Details   json.RawMessage `json:"details"`
	CreatedAt time.Time       `json:"created_at"`
	// Set by AlertClaim only:
	Channel  string `json:"channel,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// AlertScan moves every watched subject to its current state and returns the events raised by this call
// (kiotviet_alert_scan), each with a pending delivery for every channel given.
func (s *Store) AlertScan(ctx context.Context, r AlertRules, channels []string) ([]AlertEvent, error) {
	var out []AlertEvent
	if channels == nil {
		channels = []string{}
	}
	err := s.call(ctx, "kiotviet_alert_scan", &out, true,
		Arg{"p_failures", r.Failures}, Arg{"p_long_factor", r.LongFactor}, Arg{"p_long_min_seconds", int(r.LongMin / time.Second)},
		Arg{"p_stale_seconds", int(r.StaleAfter / time.Second)}, Arg{"p_channels", channels},
		Arg{"p_webhooks_stopped_seconds", int(r.WebhooksStoppedAfter / time.Second)})
	return out, err
}

// AlertTest raises a test event with a pending delivery for every channel given (kiotviet_alert_test).
func (s *Store) AlertTest(ctx context.Context, channels []string) (string, error) {
	var id string
	err := s.call(ctx, "kiotviet_alert_test", &id, false, Arg{"p_channels", channels}, Arg{"p_details", json.RawMessage(`{}`)})
	return id, err
}

// AlertClaim claims up to limit due deliveries (of one event when eventID is set) for lease
// (kiotviet_alert_claim).
func (s *Store) AlertClaim(ctx context.Context, limit int, lease time.Duration, eventID string) ([]AlertEvent, error) {
	var out []AlertEvent
	var ev any
	if eventID != "" {
		ev = eventID
	}
	err := s.call(ctx, "kiotviet_alert_claim", &out, true,
		Arg{"p_limit", limit}, Arg{"p_lease_seconds", leaseSeconds(lease)}, Arg{"p_event_id", ev})
	return out, err
}

// AlertDelivered records a send (errText "" = sent) and returns the delivery's status: sent, pending (to
// be retried) or failed (given up) (kiotviet_alert_delivered). errText must already be redacted.
func (s *Store) AlertDelivered(ctx context.Context, eventID, channel, errText string, maxAttempts int) (string, error) {
	var e any
	if errText != "" {
		e = errText
	}
	var status string
	err := s.call(ctx, "kiotviet_alert_delivered", &status, false,
		Arg{"p_event_id", eventID}, Arg{"p_channel", channel}, Arg{"p_error", e}, Arg{"p_max_attempts", maxAttempts})
	return status, err
}

// AlertProblem is a channel whose deliveries fail (kiotviet_alert_problems).
type AlertProblem struct {
	Channel       string     `json:"channel"`
	Failed        int        `json:"failed"`
	Retrying      int        `json:"retrying"`
	LastError     *string    `json:"last_error"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
}

// AlertProblems lists the channels whose deliveries failed lately or are being retried.
func (s *Store) AlertProblems(ctx context.Context) ([]AlertProblem, error) {
	var out []AlertProblem
	err := s.call(ctx, "kiotviet_alert_problems", &out, true)
	return out, err
}

// Freshness is when one stream of one active credential last synced successfully.
type Freshness struct {
	CredentialID  string     `json:"credential_id"`
	RetailerName  string     `json:"retailer_name"`
	Stream        string     `json:"stream"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	FirstSeenAt   *time.Time `json:"first_seen_at"`
}

// Freshness reads every active credential's streams (kiotviet_freshness).
func (s *Store) Freshness(ctx context.Context) ([]Freshness, error) {
	var out []Freshness
	err := s.call(ctx, "kiotviet_freshness", &out, true)
	return out, err
}

// BudgetUsed is how many calls of a credential's shared KiotViet API budget the last hour used.
type BudgetUsed struct {
	CredentialID string `json:"credential_id"`
	RetailerName string `json:"retailer_name"`
	UsedLastHour int64  `json:"used_last_hour"`
}

// APIBudgetUsed reads every active credential's use of its budget (kiotviet_api_budget_used).
func (s *Store) APIBudgetUsed(ctx context.Context) ([]BudgetUsed, error) {
	var out []BudgetUsed
	err := s.call(ctx, "kiotviet_api_budget_used", &out, true)
	return out, err
}
