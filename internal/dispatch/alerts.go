package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/store"
)

// Alerter posts a Slack/Discord-compatible JSON message ({"text": …}) to a webhook when a schedule starts
// failing and when it recovers; never on every retry.
type Alerter struct {
	URL    string
	Client *http.Client
	Logger *slog.Logger
}

// Notify posts an alert if the run changed its schedule's health.
func (a *Alerter) Notify(ctx context.Context, o store.Outcome) {
	if a == nil || a.URL == "" || o.ScheduleID == nil {
		return
	}
	prev := "success"
	if o.PreviousStatus != nil {
		prev = *o.PreviousStatus
	}
	failed := func(s string) bool { return s == "failed" || s == "partial" }
	retailer := "?"
	if o.RetailerName != nil {
		retailer = *o.RetailerName
	}
	var text string
	switch {
	case failed(o.Status) && !failed(prev):
		reason := ""
		if o.ErrorMessage != nil {
			reason = *o.ErrorMessage
		}
		next := "unknown"
		if o.NextRunAt != nil {
			next = o.NextRunAt.UTC().Format("2006-01-02 15:04 MST")
		}
		text = fmt.Sprintf(":warning: kvsync: %s sync for %s %s: %s. Retrying with backoff; next try %s.",
			o.SyncType, retailer, o.Status, reason, next)
	case o.Status == "success" && failed(prev):
		text = fmt.Sprintf(":white_check_mark: kvsync: %s sync for %s recovered.", o.SyncType, retailer)
	default:
		return
	}
	body, _ := json.Marshal(map[string]string{"text": text, "content": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		a.log().Warn("alert: bad webhook URL", "err", redact.Error(err))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		a.log().Warn("alert: webhook failed", "err", redact.Error(err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		a.log().Warn("alert: webhook refused", "status", resp.StatusCode)
	}
}

func (a *Alerter) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}
