package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

// With the SMTP server down, `kvsync dispatch` still runs and reports the sync; the failed delivery is
// shown by `kvsync doctor` (without the password), and `kvsync alerts test` says which channel failed.
func TestDoctorAndAlertsTestShowAFailingChannel(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now: the SMTP server is down
	var hooks int
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		if json.NewDecoder(r.Body).Decode(&m) == nil && m["text"] != "" {
			hooks++
		}
	}))
	t.Cleanup(hook.Close)
	b.env["KIOTVIET_ALERT_SMTP_URL"] = "smtp://alerts:cli-smtp-password@" + down
	b.env["KIOTVIET_ALERT_SMTP_FROM"] = "kvsync@example.com"
	b.env["KIOTVIET_ALERT_SMTP_TO"] = "ops@example.com"
	b.env["KIOTVIET_ALERT_WEBHOOK_URL"] = hook.URL + "/hook"

	id := b.addCredential(t)
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "categories", "--every", "hourly")
	_, err = b.db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	b.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	out, _, err := b.cli(t, "", "dispatch")
	require.Error(t, err, "the run failed")
	assert.Contains(t, out, "failed")
	assert.Equal(t, 1, hooks, "the webhook got the failing alert while email was down")

	out, _, _ = b.cli(t, "", "doctor")
	assert.Contains(t, out, "! alert deliveries to email: 1 being retried; last error: could not reach the SMTP server",
		"a delivery being retried is a warning")
	assert.NotContains(t, out, "✗ alert deliveries")
	assert.NotContains(t, out, "cli-smtp-password")

	out, _, err = b.cli(t, "", "alerts", "test")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 of 2 channel(s) failed")
	assert.Contains(t, out, "✗ email: could not reach the SMTP server "+down)
	assert.Contains(t, out, "✓ webhook: test message sent")
	assert.NotContains(t, out, "cli-smtp-password")
	assert.Equal(t, 2, hooks)
}
