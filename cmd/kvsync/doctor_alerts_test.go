package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/testdb"
)

// doctor on alert deliveries: one being retried is a warning (kvsync keeps trying, nobody needs to act
// yet) and does not fail doctor; one given up after its last try is a failure that says what to do. The
// deliveries are made through the SQL functions the notifier uses (kiotviet_alert_claim/_delivered).
func TestDoctorAlertsRetryingWarnsGivenUpFails(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	ctx := context.Background()
	st := store.New(store.PG{Pool: db})
	a := &app{store: st}
	deliver := func(channel string, maxAttempts int) string {
		t.Helper()
		id, err := st.AlertTest(ctx, []string{channel})
		require.NoError(t, err)
		due, err := st.AlertClaim(ctx, 10, time.Minute, id)
		require.NoError(t, err)
		require.Len(t, due, 1)
		status, err := st.AlertDelivered(ctx, id, channel, "could not reach the SMTP server smtp.example.com:587: connection refused", maxAttempts)
		require.NoError(t, err)
		return status
	}

	require.Equal(t, "pending", deliver("email", 8))
	var out bytes.Buffer
	d := &doctor{w: &out}
	d.alerts(ctx, a)
	assert.Zero(t, d.failed, "a delivery being retried does not fail doctor:\n%s", out.String())
	assert.Contains(t, out.String(), "! alert deliveries to email: 1 being retried; last error: could not reach the SMTP server smtp.example.com:587: connection refused")
	assert.Contains(t, out.String(), "to do: nothing yet: kvsync retries with backoff")

	require.Equal(t, "failed", deliver("email", 1), "the last try failed: given up")
	out.Reset()
	d = &doctor{w: &out}
	d.alerts(ctx, a)
	assert.Equal(t, 1, d.failed, "a delivery given up fails doctor:\n%s", out.String())
	assert.Contains(t, out.String(), "✗ alert deliveries to email: 1 given up in the last 7 days (every try failed), 1 being retried; last error:")
	assert.Contains(t, out.String(), "fix: fix the channel (its KIOTVIET_ALERT_* settings, and that its server answers) until 'kvsync alerts test' passes")
	assert.Contains(t, out.String(), "where d.status = 'failed' and d.channel = 'email'")
	require.Error(t, d.result())
}
