package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http/httptest"
	"syscall"
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

// kvsync serve acknowledges a webhook (the event is stored), is killed with SIGKILL before the event is
// applied, and the restarted process applies it: at least once, and idempotent.
func TestWebhookAcknowledgedThenKilledIsAppliedAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &procBundle{db: testdb.DB(t), bin: buildBinary(t)}
	b.store = store.New(store.PG{Pool: b.db})
	b.fake = kiotvietfake.New(kiotvietfake.Options{Products: 40, Branches: 2, Seed: 9, RateLimitPerHour: -1})
	srv := httptest.NewServer(b.fake.Handler())
	t.Cleanup(srv.Close)
	b.fakeURL = srv.URL
	b.keysEnv = "p1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	var err error
	b.keys, err = secret.ParseKeys(b.keysEnv, "")
	require.NoError(t, err)
	b.credID, err = synctest.SaveCredential(ctx, b.store, b.keys, b.fake.Credentials())
	require.NoError(t, err)
	engine, err := syncer.New(syncer.Config{Store: b.store, Keys: b.keys, Worker: "test",
		KiotViet: kiotviet.Config{TokenURL: b.fakeURL + "/connect/token", APIURL: b.fakeURL}})
	require.NoError(t, err)
	_, err = engine.Run(ctx, syncer.Request{CredentialID: b.credID, SyncType: "products_full", Full: true})
	require.NoError(t, err)

	proc, base := b.start(t)
	client, err := engine.Client(ctx, b.credID)
	require.NoError(t, err)
	_, err = webhook.Register(ctx, b.store, b.keys, client, b.credID, base+"/functions/v1/kiotviet-webhook", []string{"product.update"})
	require.NoError(t, err)

	// hold the products table so the process can store and acknowledge the event but not apply it
	lock, err := b.db.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx) //nolint:errcheck // released below; this only covers a failed assertion
	_, err = lock.Exec(ctx, `lock table public.kiotviet_products_full in share mode`)
	require.NoError(t, err)
	b.fake.ChangeProducts(5)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, b.fake.WaitWebhooks(wctx))
	require.Zero(t, b.fake.WebhookStats().Failed, "every delivery was acknowledged")
	status := func() (s string) {
		_ = b.db.QueryRow(ctx, `select coalesce(min(status), '') from public.kiotviet_webhook_events`).Scan(&s)
		return
	}
	waitFor(t, "the applier to claim the events", 20*time.Second, func() bool {
		var n int
		_ = b.db.QueryRow(ctx, `select count(*) from public.kiotviet_webhook_events where status = 'applying'`).Scan(&n)
		return n > 0
	})

	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_, _ = proc.Process.Wait()
	// the dead process's statement, still waiting for the lock, dies with it (as its connection would);
	// only in this test's database: other tests' appliers run in theirs at the same time
	_, err = b.db.Exec(ctx, `select pg_terminate_backend(pid) from pg_stat_activity
		where pid <> pg_backend_pid() and datname = current_database() and query like '%kiotviet_webhook_apply%'`)
	require.NoError(t, err)
	require.NoError(t, lock.Rollback(ctx))
	diffs, err := synctest.Compare(ctx, b.db, b.fake.Snapshot(), false, 100)
	require.NoError(t, err)
	require.NotEmpty(t, diffs, "nothing was applied before the kill")
	assert.NotEqual(t, "applied", status())

	b.start(t)
	waitFor(t, "the restarted process to apply every event", 30*time.Second, func() bool {
		var n int
		_ = b.db.QueryRow(ctx, `select count(*) from public.kiotviet_webhook_events where status <> 'applied'`).Scan(&n)
		return n == 0
	})
	diffs, err = synctest.Compare(ctx, b.db, b.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)
}
