package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/webhook"
)

// KiotViet (the fake) delivers to the Supabase project's kiotviet-webhook forwarder (under real Deno),
// which passes body, signature and query to a real kvsync serve: the events are stored and applied, a
// bare delete keeps its ?event=, and a bad signature's 401 reaches the sender as it is.
func TestWebhookForwarderPassesDeliveriesUnchanged(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	ctx := context.Background()
	st := store.New(store.PG{Pool: db})
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 30, Branches: 2, Categories: 5, Seed: 17, RateLimitPerHour: -1})
	fsrv := httptest.NewServer(fake.Handler())
	t.Cleanup(fsrv.Close)
	keysEnv := "w1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	keys, err := secret.ParseKeys(keysEnv, "")
	require.NoError(t, err)
	cred, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	require.NoError(t, err)
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "test",
		KiotViet: kiotviet.Config{TokenURL: fsrv.URL + kiotvietfake.TokenPath, APIURL: fsrv.URL}})
	require.NoError(t, err)
	_, err = engine.Run(ctx, syncer.Request{CredentialID: cred, SyncType: "products_full", Full: true})
	require.NoError(t, err)

	kv := fwdServe(t, db.Config().ConnString(), buildBinary(t), keysEnv, fsrv.URL)
	project := harnessOf(t, kv, "kiotviet-webhook")
	client, err := engine.Client(ctx, cred)
	require.NoError(t, err)
	_, err = webhook.Register(ctx, st, keys, client, cred, project+"/functions/v1/kiotviet-webhook", []string{"product.update", "product.delete"})
	require.NoError(t, err)

	fake.ChangeProducts(3)
	gone := fake.DeleteProducts(1)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, fake.WaitWebhooks(wctx))
	stats := fake.WebhookStats()
	assert.EqualValues(t, 4, stats.Delivered, "%+v", stats)
	assert.Zero(t, stats.Failed)
	waitFor(t, "kvsync to apply the events", 20*time.Second, func() bool {
		var n int
		_ = db.QueryRow(ctx, `select count(*) from kiotviet_webhook_events where status = 'applied'`).Scan(&n)
		return n == 4
	})
	var deleteTypes []string
	require.NoError(t, db.QueryRow(ctx, `select event_types from kiotviet_webhook_events where body ? 'RemoveId'`).Scan(&deleteTypes))
	assert.Equal(t, []string{"product.delete"}, deleteTypes, "the query reached kvsync")
	var left int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from kiotviet_products_full where id = any($1)`, gone).Scan(&left))
	assert.Zero(t, left)
	diffs, err := synctest.Compare(ctx, db, fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)

	// a forged delivery: kvsync's 401 comes back as it is (the ERP's 200-for-errors is not for KiotViet)
	req, _ := http.NewRequest(http.MethodPost, project+"/functions/v1/kiotviet-webhook?credential="+cred+"&event=product.delete",
		bytes.NewReader([]byte(`{"RemoveId":[1]}`)))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte("not the secret"), []byte(`{"RemoveId":[1]}`)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
