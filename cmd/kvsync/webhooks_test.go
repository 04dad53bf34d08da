package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhooksRegisterListRemoveAndDoctor(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := b.addCredential(t)
	// a receiver that answers 404, as a wrong URL would: KiotViet (the fake) disables the hook
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	t.Cleanup(gone.Close)

	_, _, err := b.cli(t, "", "webhooks", "register", "--credential", id, "--url", "ftp://x")
	require.ErrorContains(t, err, "--url must be the receiver's address")
	_, _, err = b.cli(t, "", "webhooks", "register", "--credential", id, "--url", gone.URL, "--types", "order.update")
	require.ErrorContains(t, err, "not a KiotViet event type kvsync applies")

	out := b.ok(t, "", "webhooks", "register", "--credential", id, "--url", gone.URL+"/functions/v1/kiotviet-webhook")
	assert.Contains(t, out, "registered 10 webhook(s)")
	assert.Contains(t, out, "event=stock.update")
	out = b.ok(t, "", "webhooks", "list")
	assert.Contains(t, out, "product.update")
	assert.Equal(t, 10, strings.Count(out, id))

	var ct string
	require.NoError(t, b.db.QueryRow(context.Background(), `select encrypted_secret from kiotviet_webhook_endpoints where credential_id = $1`, id).Scan(&ct))
	assert.True(t, strings.HasPrefix(ct, "v1:"), "the secret is stored encrypted")

	out, _, _ = b.cli(t, "", "doctor")
	assert.Contains(t, out, "webhooks of "+b.fake.Retailer())
	assert.Contains(t, out, "no event has arrived yet")
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "inventory", "--every", "hourly")
	out = b.ok(t, "", "status")
	assert.Contains(t, out, "webhooks "+b.fake.Retailer()+": 10/10 registered active, 0 waiting, 0 applied, 0 parked, no event yet")

	b.fake.ChangeProducts(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.fake.WaitWebhooks(ctx))
	out, _, err = b.cli(t, "", "doctor")
	require.Error(t, err)
	assert.Contains(t, out, "product.update disabled by KiotViet")
	assert.Contains(t, out, "kvsync webhooks register --credential "+id)

	// registering again repairs it
	b.ok(t, "", "webhooks", "register", "--credential", id, "--url", gone.URL+"/functions/v1/kiotviet-webhook")
	out, _, _ = b.cli(t, "", "doctor")
	assert.NotContains(t, out, "disabled by KiotViet")

	out = b.ok(t, "", "webhooks", "remove", "--credential", id, "--types", "stock.update")
	assert.Contains(t, out, "removed 1 webhook(s): stock.update")
	out = b.ok(t, "", "webhooks", "list")
	assert.Equal(t, 9, strings.Count(out, id))
}
