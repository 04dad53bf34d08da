package webhook_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/functions/kiotvietwebhook"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/webhook"
)

// shop is a fake KiotViet shop synced once into the test database, with kvsync's webhook receiver and
// an applier running, and the shop's webhooks registered to the receiver.
type shop struct {
	db      *pgxpool.Pool
	st      *store.Store
	fake    *kiotvietfake.Server
	engine  *syncer.Engine
	applier *webhook.Applier
	cred    string
	recv    *httptest.Server
	apiURL  string
}

func newShop(t *testing.T, products int) *shop {
	t.Helper()
	ctx := context.Background()
	keys, err := secret.ParseKeys("t1:"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "")
	require.NoError(t, err)
	s := &shop{db: testdb.DB(t)}
	s.st = store.New(store.PG{Pool: s.db})
	s.fake = kiotvietfake.New(kiotvietfake.Options{Products: products, Branches: 3, Categories: 12, Seed: 11, RateLimitPerHour: -1})
	api := httptest.NewServer(s.fake.Handler())
	t.Cleanup(api.Close)
	s.apiURL = api.URL
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.engine, err = syncer.New(syncer.Config{Store: s.st, Keys: keys, Worker: "test", Logger: log,
		KiotViet: kiotviet.Config{TokenURL: api.URL + kiotvietfake.TokenPath, APIURL: api.URL, MaxAttempts: 3}})
	require.NoError(t, err)
	s.cred, err = synctest.SaveCredential(ctx, s.st, keys, s.fake.Credentials())
	require.NoError(t, err)
	for _, typ := range []vocab.SyncType{vocab.ProductsFull, vocab.Inventory} {
		_, err := s.engine.Run(ctx, syncer.Request{CredentialID: s.cred, SyncType: typ, Trigger: "manual", Full: true})
		require.NoError(t, err)
	}
	s.equal(t)

	s.applier = webhook.NewApplier(webhook.Config{Store: s.st, Fetch: s.engine, Worker: "test-applier", Logger: log,
		Poll: 50 * time.Millisecond})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.applier.Run(actx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	s.recv = httptest.NewServer(kiotvietwebhook.Handler(kiotvietwebhook.Deps{Store: s.st, Keys: keys, Logger: log, Stored: s.applier.Wake}))
	t.Cleanup(s.recv.Close)
	client, err := s.engine.Client(ctx, s.cred)
	require.NoError(t, err)
	_, err = webhook.Register(ctx, s.st, keys, client, s.cred, s.recv.URL+"/functions/v1/kiotviet-webhook", nil)
	require.NoError(t, err)
	s.fake.ResetCounts()
	return s
}

func (s *shop) equal(t *testing.T) {
	t.Helper()
	diffs, err := synctest.Compare(context.Background(), s.db, s.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	require.Empty(t, diffs)
}

// converge waits (with a deadline, polling) until every delivery is out, every event applied and the
// tables equal the shop.
func (s *shop) converge(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.fake.WaitWebhooks(ctx), "%+v", s.fake.WebhookStats())
	var last []string
	for ctx.Err() == nil {
		var waiting int
		// events due now (a failing one waiting for its retry does not hold the others up)
		require.NoError(t, s.db.QueryRow(ctx, `select count(*) from public.kiotviet_webhook_events
			where status = 'applying' or (status = 'pending' and next_attempt_at <= now())`).Scan(&waiting))
		if waiting == 0 {
			diffs, err := synctest.Compare(ctx, s.db, s.fake.Snapshot(), false, 10)
			require.NoError(t, err)
			if len(diffs) == 0 {
				return
			}
			last = diffs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("tables never matched the shop: %v", last)
}

func (s *shop) apiCalls() int64 {
	var n int64
	for path, c := range s.fake.Counts() {
		if path != kiotvietfake.TokenPath && path != kiotvietfake.WebhooksPath {
			n += c
		}
	}
	return n
}

func (s *shop) parked(t *testing.T) int {
	var n int
	require.NoError(t, s.db.QueryRow(context.Background(), `select count(*) from public.kiotviet_webhook_events where status = 'parked'`).Scan(&n))
	return n
}

func TestShopChangesReachTheTablesThroughWebhooks(t *testing.T) {
	t.Parallel()
	s := newShop(t, 80)
	ctx := context.Background()

	changed := s.fake.ChangeProducts(5)
	s.converge(t)
	// variants' payloads carry their master's id in Inventories (as real ones do) and are re-read by id;
	// everything else costs no API call
	var refetched int64
	require.NoError(t, s.db.QueryRow(ctx, `select coalesce(sum((result ->> 'refetched')::int), 0)
		from public.kiotviet_webhook_events where status = 'applied'`).Scan(&refetched))
	assert.Equal(t, refetched, s.apiCalls(), "API calls are only the re-fetches")
	assert.Less(t, refetched, int64(len(changed)+1))

	// a delete removes the row
	gone := s.fake.DeleteProducts(2)
	s.converge(t)
	var n int
	require.NoError(t, s.db.QueryRow(ctx, `select count(*) from public.kiotviet_products_full where id = any($1)`, gone).Scan(&n))
	assert.Zero(t, n)

	// new products arrive
	s.fake.AddProducts(3)
	s.converge(t)
	assert.Zero(t, s.parked(t))
}

func TestStockEventChangesOneBranchAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	s := newShop(t, 40)
	ctx := context.Background()
	before := map[int64]map[int64]float64{}
	rows, err := s.db.Query(ctx, `select product_id, branch_id, on_hand from public.kiotviet_inventory`)
	require.NoError(t, err)
	for rows.Next() {
		var p, b int64
		var q float64
		require.NoError(t, rows.Scan(&p, &b, &q))
		if before[p] == nil {
			before[p] = map[int64]float64{}
		}
		before[p][b] = q
	}
	require.NoError(t, rows.Err())

	moved := s.fake.MoveStock(4)
	s.converge(t) // every branch of every product equals the shop
	assert.Zero(t, s.apiCalls(), "stock events are applied from their payload")
	var changedBranches int
	for _, p := range s.fake.Snapshot().Products {
		for _, inv := range p.Inventories {
			if before[p.ID] != nil && before[p.ID][inv.BranchID] != inv.OnHand {
				changedBranches++
			}
		}
	}
	assert.LessOrEqual(t, changedBranches, len(moved), "at most one branch of each moved product changed")
	var events int
	require.NoError(t, s.db.QueryRow(ctx, `select count(*) from public.kiotviet_webhook_events where 'stock.update' = any(event_types)`).Scan(&events))
	assert.Equal(t, len(moved), events)
}

func TestDuplicatedReorderedAndLateEventsLeaveTheShop(t *testing.T) {
	t.Parallel()
	s := newShop(t, 60)
	ctx := context.Background()
	// every delivery twice, and the whole burst held and then delivered newest first: each product's
	// older edits arrive after its newer ones
	s.fake.SetWebhookFaults(kiotvietfake.WebhookFaults{DuplicateRate: 1, Hold: true, Reorder: true})
	for range 4 {
		s.fake.ChangeProducts(10)
	}
	require.Positive(t, s.fake.ReleaseWebhooks())
	s.converge(t)
	st := s.fake.WebhookStats()
	assert.Positive(t, st.Duplicated)
	var older, deliveries, events int
	require.NoError(t, s.db.QueryRow(ctx, `select coalesce(sum((result ->> 'older')::int), 0), coalesce(sum(deliveries), 0), count(*)
		from public.kiotviet_webhook_events`).Scan(&older, &deliveries, &events))
	assert.Positive(t, older, "late events were seen and skipped")
	assert.Equal(t, 2*events, deliveries, "each duplicate was stored once")
	assert.Zero(t, s.parked(t))
}

func TestAnOlderEventChangesNothing(t *testing.T) {
	t.Parallel()
	s := newShop(t, 30)
	ctx := context.Background()
	s.fake.SetWebhookFaults(kiotvietfake.WebhookFaults{Hold: true})
	id := s.fake.ChangeProducts(1)[0]
	held := s.fake.ReleaseWebhooks()
	require.Equal(t, 1, held)
	s.converge(t)
	var price float64
	var mod time.Time
	require.NoError(t, s.db.QueryRow(ctx, `select base_price, modified_date from public.kiotviet_products_full where id = $1`, id).Scan(&price, &mod))

	// the same product's state of an hour earlier, as a late retry of an old delivery would carry
	var body string
	require.NoError(t, s.db.QueryRow(ctx, `select body::text from public.kiotviet_webhook_events order by received_at desc limit 1`).Scan(&body))
	old := mod.Add(-time.Hour).In(time.FixedZone("ICT", 7*3600)).Format("2006-01-02T15:04:05.0000000-07:00")
	_, err := s.db.Exec(ctx, `insert into public.kiotviet_webhook_events (credential_id, dedupe_key, event_types, body)
		values ($1, 'id:late', '{product.update}', jsonb_set(jsonb_set($2::jsonb, '{Notifications,0,Data,0,BasePrice}', '1'),
		  '{Notifications,0,Data,0,ModifiedDate}', to_jsonb($3::text)))`, s.cred, body, old)
	require.NoError(t, err)
	s.applier.Wake()
	s.converge(t)
	var after float64
	require.NoError(t, s.db.QueryRow(ctx, `select base_price from public.kiotviet_products_full where id = $1`, id).Scan(&after))
	assert.Equal(t, price, after)
	var status string
	var result map[string]any
	require.NoError(t, s.db.QueryRow(ctx, `select status, result from public.kiotviet_webhook_events where dedupe_key = 'id:late'`).Scan(&status, &result))
	assert.Equal(t, "applied", status)
	assert.EqualValues(t, 1, result["older"])
}

func TestAFailingEventIsRetriedThenParkedWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	s := newShop(t, 20)
	ctx := context.Background()
	// a stock event naming no branch cannot be applied
	_, err := s.db.Exec(ctx, `insert into public.kiotviet_webhook_events (credential_id, dedupe_key, event_types, body)
		values ($1, 'id:bad', '{stock.update}', '{"Id":"bad","Notifications":[{"Action":"stock.update.1","Data":[{"ProductId":1}]}]}')`, s.cred)
	require.NoError(t, err)
	s.applier.Wake()
	s.fake.ChangeProducts(3)
	s.converge(t) // the good events are applied while the bad one waits
	for i := 0; i < 20; i++ {
		// make its retries due now instead of waiting for the backoff
		_, err := s.db.Exec(ctx, `update public.kiotviet_webhook_events set next_attempt_at = now() where dedupe_key = 'id:bad' and status = 'pending'`)
		require.NoError(t, err)
		_, err = s.applier.Drain(ctx)
		require.NoError(t, err)
		if s.parked(t) == 1 {
			break
		}
	}
	var attempts int
	var reason string
	require.NoError(t, s.db.QueryRow(ctx, `select attempts, last_error from public.kiotviet_webhook_events where dedupe_key = 'id:bad' and status = 'parked'`).Scan(&attempts, &reason))
	assert.Equal(t, 8, attempts)
	assert.Contains(t, reason, "BranchId")
	h, err := s.st.WebhookHealth(ctx)
	require.NoError(t, err)
	require.Len(t, h, 1)
	assert.Equal(t, 1, h[0].Parked)
	assert.Contains(t, *h[0].LastParkedError, "BranchId")
}

func TestA4xxDisablesTheRegistrationAndCheckReportsIt(t *testing.T) {
	t.Parallel()
	s := newShop(t, 20)
	ctx := context.Background()
	client, err := s.engine.Client(ctx, s.cred)
	require.NoError(t, err)
	problems, err := webhook.Check(ctx, s.st, client, s.cred)
	require.NoError(t, err)
	assert.Empty(t, problems)

	// the endpoint loses its secret: the next delivery is refused with 401 and KiotViet disables the hook
	_, err = s.db.Exec(ctx, `delete from public.kiotviet_webhook_endpoints`)
	require.NoError(t, err)
	s.fake.ChangeProducts(1)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, s.fake.WaitWebhooks(wctx))
	assert.EqualValues(t, 1, s.fake.WebhookStats().Disabled)
	problems, err = webhook.Check(ctx, s.st, client, s.cred)
	require.NoError(t, err)
	require.Len(t, problems, 1)
	assert.Equal(t, "product.update", problems[0].EventType)
	assert.Contains(t, problems[0].Message, "disabled")

	// registering again repairs it, with a new secret
	keys, _ := secret.ParseKeys("t1:"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "")
	_, err = webhook.Register(ctx, s.st, keys, client, s.cred, s.recv.URL+"/functions/v1/kiotviet-webhook", nil)
	require.NoError(t, err)
	problems, err = webhook.Check(ctx, s.st, client, s.cred)
	require.NoError(t, err)
	assert.Empty(t, problems)
	list, err := client.Webhooks(ctx)
	require.NoError(t, err)
	assert.Len(t, list, len(webhook.DefaultTypes), "one registration per type, the old ones replaced")
	s.fake.ChangeProducts(2)
	// the change refused while the hook was broken is lost to webhooks; polling stays the truth and the
	// next scheduled (incremental) run repairs it
	_, err = s.engine.Run(ctx, syncer.Request{CredentialID: s.cred, SyncType: "products_full", Trigger: "cron"})
	require.NoError(t, err)
	s.converge(t)
}

func TestStockScanRunsLessOftenWhileStockWebhooksAreHealthy(t *testing.T) {
	t.Parallel()
	s := newShop(t, 30) // its inventory run just scanned in full
	ctx := context.Background()
	keys, err := secret.ParseKeys("t1:"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "")
	require.NoError(t, err)
	relieved, err := syncer.New(syncer.Config{Store: s.st, Keys: keys, Worker: "relief", StockScanEvery: time.Hour,
		KiotViet: kiotviet.Config{TokenURL: s.apiURL + kiotvietfake.TokenPath, APIURL: s.apiURL}})
	require.NoError(t, err)
	inventory := func(full bool) (mode string, calls int64) {
		s.fake.ResetCounts()
		res, err := relieved.Run(ctx, syncer.Request{CredentialID: s.cred, SyncType: "inventory", Trigger: "cron", Full: full})
		require.NoError(t, err)
		return res.Streams["inventory"].Mode, s.fake.Counts()[kiotvietfake.ProductOnHandsPath]
	}

	mode, calls := inventory(false)
	assert.Equal(t, "full", mode, "no event has arrived yet: the webhooks are not known to work")
	assert.Positive(t, calls)

	s.fake.MoveStock(2)
	s.converge(t)
	mode, calls = inventory(false)
	assert.Equal(t, "skipped: stock webhooks healthy", mode)
	assert.Zero(t, calls)
	mode, calls = inventory(true)
	assert.Equal(t, "full", mode, "a full run always scans")
	assert.Positive(t, calls)

	// a parked event since the last scan: the webhooks cannot be trusted, scan
	_, err = s.db.Exec(ctx, `insert into public.kiotviet_webhook_events (credential_id, dedupe_key, body, status) values ($1, 'id:p', '{}', 'parked')`, s.cred)
	require.NoError(t, err)
	mode, _ = inventory(false)
	assert.Equal(t, "full", mode)
	_, err = s.db.Exec(ctx, `delete from public.kiotviet_webhook_events where dedupe_key = 'id:p'`)
	require.NoError(t, err)
	// the stock hook disabled by KiotViet: scan
	_, err = s.db.Exec(ctx, `update public.kiotviet_webhook_registrations set is_active = false where event_type = 'stock.update'`)
	require.NoError(t, err)
	mode, _ = inventory(false)
	assert.Equal(t, "full", mode)
}
