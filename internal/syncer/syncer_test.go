package syncer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

type bundle struct {
	db      *pgxpool.Pool
	fake    *kiotvietfake.Server
	kv      kiotviet.Config
	store   *store.Store
	keys    *secret.Keyring
	engine  *syncer.Engine
	credID  string
	onFetch atomic.Pointer[func(r *http.Request)] // test hook: runs before the fake answers

	mu             sync.Mutex
	inFlight, most int // /products requests being answered now, and the most at once
}

// mostInFlight is the most /products requests the fake answered at once.
func (b *bundle) mostInFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.most
}

func testKeys(t *testing.T) *secret.Keyring {
	k, err := secret.ParseKeys("t1:"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "")
	require.NoError(t, err)
	return k
}

func setup(t *testing.T, products int) *bundle {
	t.Helper()
	return setupWith(t, kiotvietfake.Options{Products: products, Branches: 3, Categories: 25, Seed: 7, RateLimitPerHour: -1})
}

func setupWith(t *testing.T, opts kiotvietfake.Options) *bundle {
	t.Helper()
	b := &bundle{db: testdb.DB(t)}
	s := synctest.NewStack(t, b.db, synctest.StackOptions{Fake: opts, MaxAttempts: 3, NoBackoff: true,
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/products" {
					b.mu.Lock()
					b.inFlight++
					b.most = max(b.most, b.inFlight)
					b.mu.Unlock()
					defer func() { b.mu.Lock(); b.inFlight--; b.mu.Unlock() }()
				}
				if f := b.onFetch.Load(); f != nil {
					(*f)(r)
				}
				h.ServeHTTP(w, r)
			})
		}})
	b.fake, b.keys, b.store, b.engine, b.credID = s.Fake, s.Keys, s.Store, s.Engine, s.CredID
	b.kv = s.KiotViet
	return b
}

func (b *bundle) sync(t *testing.T, syncType vocab.SyncType, full bool) syncer.Result {
	t.Helper()
	res, err := b.engine.Run(context.Background(), syncer.Request{CredentialID: b.credID, SyncType: syncType, Full: full})
	require.NoError(t, err)
	return res
}

func (b *bundle) equal(t *testing.T, withAttributes bool) {
	t.Helper()
	diffs, err := synctest.Compare(context.Background(), b.db, b.fake.Snapshot(), withAttributes, 20)
	require.NoError(t, err)
	assert.Empty(t, diffs, "the database differs from the fake shop")
}

func (b *bundle) productCalls() int64 { return b.fake.Counts()["/products"] }

func TestFullSyncThenIncrementalConverges(t *testing.T) {
	t.Parallel()
	b := setup(t, 450)
	res := b.sync(t, "all", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, "full", res.Streams["products"].Mode, "no cursor yet: the first sync is a full reconcile")
	assert.Equal(t, 450, countOf(t, b.db, "kiotviet_products_full"))
	b.equal(t, true)

	var status vocab.Status
	var records int
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select status, records_synced from kiotviet_sync_logs where id = $1`, res.RunID).Scan(&status, &records))
	assert.Equal(t, vocab.Success, status)
	assert.Equal(t, res.Records, records)

	// k changes and d deletions: an incremental run reads ceil(k/100) product pages plus a constant.
	changed := b.fake.ChangeProducts(230)
	deleted := b.fake.DeleteProducts(7)
	k := len(changed)
	b.fake.ResetCounts()
	res = b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, "incremental", res.Streams["products"].Mode)
	calls := b.productCalls()
	assert.LessOrEqual(t, calls, int64((k+99)/100+1), "incremental product calls for %d changes", k)
	assert.GreaterOrEqual(t, calls, int64((k+99)/100))
	assert.GreaterOrEqual(t, res.Streams["products"].Deleted, len(deleted))
	b.equal(t, false)

	// Nothing changed: nothing is written.
	res = b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Zero(t, res.Streams["products"].Written, "an unchanged catalogue writes no row")
	assert.Zero(t, res.Streams["categories"].Written)
}

func TestUnchangedFullResyncWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 250)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	var before int64
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select sum(xmin::text::bigint) from kiotviet_products_full`).Scan(&before))

	res := b.sync(t, "products_full", true) // a forced full reconcile reads everything again
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, "full", res.Streams["products"].Mode)
	assert.Equal(t, 250, res.Streams["products"].Count, "every product read once (the catch-up found nothing new)")
	assert.Zero(t, res.Streams["products"].Written)
	assert.Zero(t, res.Streams["products"].Deleted)
	var after int64
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select sum(xmin::text::bigint) from kiotviet_products_full`).Scan(&after))
	assert.Equal(t, before, after, "no row was rewritten, so no realtime event fired")
}

func TestFullReconcileDeletesWhatKiotVietNoLongerHas(t *testing.T) {
	t.Parallel()
	b := setup(t, 200)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	// Rows KiotViet never reported as removed (say, deleted while nobody synced for weeks).
	_, err := b.db.Exec(context.Background(), `insert into kiotviet_products_full (id, code, name) values (999000001, 'GHOST-1', 'ghost')`)
	require.NoError(t, err)
	res := b.sync(t, "products_full", true)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	require.NotNil(t, res.Streams["products"].Swept)
	assert.True(t, *res.Streams["products"].Swept)
	assert.Equal(t, 1, res.Streams["products"].Deleted)
	b.equal(t, false)
}

func TestInventoryStreamFollowsStockMoves(t *testing.T) {
	t.Parallel()
	b := setup(t, 220)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	moved := b.fake.MoveStock(40)
	require.NotEmpty(t, moved)
	// Stock moves do not bump modifiedDate: an incremental product sync cannot see them …
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	diffs, err := synctest.Compare(context.Background(), b.db, b.fake.Snapshot(), false, 5)
	require.NoError(t, err)
	require.NotEmpty(t, diffs, "the fake moved stock; the products stream alone should not see it")
	// … the inventory stream reads /productOnHands in full and does.
	res := b.sync(t, "inventory", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Positive(t, res.Streams["inventory"].Written)
	b.equal(t, false)
}

func TestFaultMidRunKeepsCommittedPagesAndNextRunConverges(t *testing.T) {
	t.Parallel()
	b := setup(t, 600)
	var productPages atomic.Int32
	hook := func(r *http.Request) {
		if r.URL.Path == "/products" && productPages.Add(1) == 4 {
			b.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 50})
		}
	}
	b.onFetch.Store(&hook)
	res := b.sync(t, "products_full", false)
	assert.Contains(t, []vocab.Status{vocab.Failed, vocab.Partial}, res.Status)
	// the products are read while the categories run, so the faults may also meet the categories' last read
	assert.Contains(t, res.Streams["products"].Error, "status 503")
	// pages are read ahead, so which of them the fault hit depends on the order requests arrived; every
	// page committed before it stays, whole
	pages := res.Streams["products"].Pages
	assert.True(t, pages >= 1 && pages < 6, "pages committed: %d", pages)
	assert.Equal(t, 100*pages, countOf(t, b.db, "kiotviet_products_full"), "the committed pages stay")

	var logStatus vocab.Status
	var logErr string
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select status, error_message from kiotviet_sync_logs where id = $1`, res.RunID).Scan(&logStatus, &logErr))
	assert.Equal(t, res.Status, logStatus)
	assert.Contains(t, logErr, "status 503")

	b.onFetch.Store(nil)
	b.fake.SetFaults(kiotvietfake.Faults{})
	res = b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	b.equal(t, false)
}

func TestTokenExpiryAnd429StormDuringARun(t *testing.T) {
	t.Parallel()
	b := setup(t, 500)
	var productPages atomic.Int32
	hook := func(r *http.Request) {
		switch productPages.Add(1) {
		case 2:
			b.fake.RevokeTokens() // the token dies mid-run: one re-authentication, then on
		case 3:
			b.fake.SetFaults(kiotvietfake.Faults{Fail429Next: 2, RetryAfter: time.Second})
		}
	}
	b.onFetch.Store(&hook)
	res := b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	b.equal(t, false)
}

func TestOverlappingRunsForOneCredentialConflict(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	ctx := context.Background()
	runID, err := b.store.StartRun(ctx, b.credID, "products", "manual", "other-worker", time.Minute, nil)
	require.NoError(t, err)
	_, err = b.engine.Run(ctx, syncer.Request{CredentialID: b.credID, SyncType: "products"})
	require.Error(t, err)
	assert.Equal(t, errs.Conflict, errs.CodeOf(err))
	assert.True(t, strings.Contains(err.Error(), "already syncing"), err.Error())
	_, err = b.store.FinishRun(ctx, runID, store.Finish{Status: "failed", Error: "test"})
	require.NoError(t, err)
}

func TestTokenIsStoredEncryptedAndReused(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	require.Equal(t, vocab.Success, b.sync(t, "categories", false).Status)
	c, err := b.store.Credential(context.Background(), b.credID)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(c.EncryptedToken, "v1:"), "ciphertext only")
	plain, err := b.keys.Decrypt(c.EncryptedToken, syncer.TokenAAD(b.credID))
	require.NoError(t, err)
	assert.NotEqual(t, "none", string(plain))
	// Another engine (another process) reuses the stored token instead of fetching a new one.
	tokens := b.fake.Counts()["/connect/token"]
	other, err := syncer.New(syncer.Config{Store: b.store, Keys: b.keys, Worker: "other",
		KiotViet: kiotviet.Config{TokenURL: "http://127.0.0.1:1/connect/token", APIURL: fakeURL(t, b)}})
	require.NoError(t, err)
	res, err := other.Run(context.Background(), syncer.Request{CredentialID: b.credID, SyncType: "categories"})
	require.NoError(t, err)
	assert.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, tokens, b.fake.Counts()["/connect/token"])
}

func fakeURL(t *testing.T, b *bundle) string {
	srv := httptest.NewServer(b.fake.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func countOf(t *testing.T, db *pgxpool.Pool, table string) int {
	var n int
	require.NoError(t, db.QueryRow(context.Background(), "select count(*) from public."+table).Scan(&n))
	return n
}

// A product edited while a full pass pages moves to the end of KiotViet's modifiedDate order, and the
// product at the next page boundary is never read (with pages read ahead, at whichever boundary a page
// read after the edit meets one read before it). The sweep must then wait: it deletes nothing that the
// shop still has.
func TestFullPassDisturbedMidwayDeletesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 500)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	b.fake.SetFaults(kiotvietfake.Faults{Latency: 5 * time.Millisecond}) // so that pages read ahead overlap
	var pages, catchUps atomic.Int32
	hook := func(r *http.Request) {
		if r.URL.Path != "/products" {
			return
		}
		if r.URL.Query().Get("lastModifiedFrom") == "" && pages.Add(1) == 3 {
			b.fake.ChangeProducts(40) // some of them were read on pages 1 and 2
		}
		if r.URL.Query().Get("lastModifiedFrom") != "" && catchUps.Add(1) == 1 {
			// new products arrive before the catch-up: ids seen now reach KiotViet's total even though
			// the pass skipped some, so a count alone cannot tell the pass was incomplete
			b.fake.AddProducts(60)
		}
	}
	b.onFetch.Store(&hook)
	res := b.sync(t, "products_full", true)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	require.NotNil(t, res.Streams["products"].Swept)
	assert.False(t, *res.Streams["products"].Swept, "rows changed during the pass: the sweep waits for the next full reconcile")
	assert.Zero(t, res.Streams["products"].Deleted)
	b.equal(t, false) // every product the shop has is still there, the changed ones up to date
	assert.GreaterOrEqual(t, b.mostInFlight(), 2, "the pass read pages ahead, several at once")

	b.onFetch.Store(nil)
	res = b.sync(t, "products_full", true) // an undisturbed full pass sweeps
	require.NotNil(t, res.Streams["products"].Swept)
	assert.True(t, *res.Streams["products"].Swept)
	b.equal(t, false)
}

// The same shift in an incremental pass: products edited while it pages would make it skip changes at
// page boundaries, so it reads its window once more.
func TestIncrementalPassDisturbedMidwayMissesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 500)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	b.fake.ChangeProducts(250)
	b.fake.SetFaults(kiotvietfake.Faults{Latency: 5 * time.Millisecond}) // so that pages read ahead overlap
	var incremental atomic.Int32
	hook := func(r *http.Request) {
		if r.URL.Path == "/products" && r.URL.Query().Get("lastModifiedFrom") != "" && incremental.Add(1) == 2 {
			b.fake.ChangeProducts(40) // some were already read on page 1 of this window
		}
	}
	b.onFetch.Store(&hook)
	res := b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, "incremental", res.Streams["products"].Mode)
	b.equal(t, false)
	assert.GreaterOrEqual(t, b.mostInFlight(), 2, "the pass read pages ahead, several at once")
}

// KiotViet refusing the client secret is permanent: the run fails and the credential's schedules pause
// with the reason; a 5xx from the token endpoint is not, and pauses nothing. Saving the connection again
// resumes them.
func TestRejectedCredentialPausesItsSchedulesUntilSavedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, 20)
	ctx := context.Background()
	paused := func() (n int, reason string) {
		t.Helper()
		require.NoError(t, b.db.QueryRow(ctx, `select count(*)::int, coalesce(max(paused_reason), '')
			from kiotviet_sync_schedules where not enabled and paused_reason is not null`).Scan(&n, &reason))
		return n, reason
	}
	good := b.fake.Credentials()
	bad := good
	bad.ClientSecret = "regenerated-by-the-shop-owner"
	var err error
	b.credID, err = synctest.SaveCredential(ctx, b.store, b.keys, bad)
	require.NoError(t, err)
	for _, st := range []string{"products_full", "attributes"} {
		_, err := b.store.UpsertSchedule(ctx, store.Schedule{CredentialID: b.credID, SyncType: st, Frequency: "hourly", Enabled: true})
		require.NoError(t, err)
	}

	b.fake.SetFaults(kiotvietfake.Faults{TokenFailNext: 50}) // the token endpoint answers 503
	res := b.sync(t, "products_full", false)
	assert.Equal(t, vocab.Failed, res.Status)
	assert.Contains(t, res.Error, "503")
	assert.Zero(t, res.Paused, "a 5xx is not a rejection")
	n, _ := paused()
	assert.Zero(t, n, "KiotViet being down pauses nothing")
	b.fake.SetFaults(kiotvietfake.Faults{})

	res = b.sync(t, "products_full", false)
	assert.Equal(t, vocab.Failed, res.Status)
	assert.Equal(t, 2, res.Paused)
	n, reason := paused()
	assert.Equal(t, 2, n, "both schedules of the rejected credential are paused")
	assert.Contains(t, reason, "KiotViet rejected the client id or secret (status 400 invalid_client)")
	assert.NotContains(t, reason, bad.ClientSecret)
	_, err = b.db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	var claimed int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*)::int from kiotviet_claim_due('test', 10)`).Scan(&claimed))
	assert.Zero(t, claimed, "a paused schedule is not claimed")

	b.credID, err = synctest.SaveCredential(ctx, b.store, b.keys, good)
	require.NoError(t, err)
	n, _ = paused()
	assert.Zero(t, n, "saving the connection again resumes the schedules")
	var enabled int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*)::int from kiotviet_sync_schedules where enabled and credential_id = $1
		and next_run_at <= now()`, b.credID).Scan(&enabled))
	assert.Equal(t, 2, enabled, "on the new credential, due at once")
	res = b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
}

// The heartbeat publishes {stream, done, total, pages} with KiotViet's total, so a client can draw a bar:
// caught mid-run, while the fake holds back a later products page.
func TestHeartbeatPublishesProgressWithTotal(t *testing.T) {
	t.Parallel()
	b := setup(t, 600)
	ctx := context.Background()
	engine, err := syncer.New(syncer.Config{Store: b.store, Keys: b.keys, Worker: "test", HeartbeatEvery: 20 * time.Millisecond,
		KiotViet: b.kv})
	require.NoError(t, err)
	var runID atomic.Value // the run's id, once Start has returned it
	var seen atomic.Pointer[store.Progress]
	hook := func(r *http.Request) {
		if r.URL.Path != "/products" || r.URL.Query().Get("currentItem") != "300" || r.URL.Query().Get("lastModifiedFrom") != "" {
			return
		}
		// hold page 4 (pages are read ahead, so by its offset, not by the order requests arrive) until a
		// heartbeat has published the pages before it
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var p store.Progress
			var raw []byte
			if err := b.db.QueryRow(ctx, `select progress::text from kiotviet_sync_logs where id = $1`, runID.Load()).Scan(&raw); err == nil &&
				json.Unmarshal(raw, &p) == nil && p.Stream == "products" && p.Done >= 200 {
				seen.Store(&p)
				return
			}
			time.Sleep(5 * time.Millisecond) // polling the row, bounded by the deadline above
		}
	}
	b.onFetch.Store(&hook)
	run, err := engine.Start(ctx, syncer.Request{CredentialID: b.credID, SyncType: "products_full"})
	require.NoError(t, err)
	runID.Store(run.ID)
	res, err := run.Wait()
	require.NoError(t, err)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	p := seen.Load()
	require.NotNil(t, p, "a heartbeat published the products stream's progress mid-run")
	assert.Equal(t, 600, p.Total, "total is KiotViet's total for the products list")
	assert.GreaterOrEqual(t, p.Pages, 2)
	assert.Less(t, p.Done, 600, "caught mid-run")
	assert.Greater(t, p.Records, p.Done, "records count the categories stream too")
}

// A run's products start while its categories are read: the first /products request arrives while the
// categories listing is still being answered, and each stream counts its own endpoint's calls.
func TestProductsAreReadWhileCategoriesRun(t *testing.T) {
	b := setup(t, 250)
	productsAsked := make(chan struct{})
	var once sync.Once
	var held atomic.Bool
	hook := func(r *http.Request) {
		switch r.URL.Path {
		case "/products":
			once.Do(func() { close(productsAsked) })
		case "/categories":
			select { // hold the categories until the products are asked for (or give up)
			case <-productsAsked:
				held.Store(true)
			case <-time.After(10 * time.Second):
			}
		}
	}
	b.onFetch.Store(&hook)
	b.fake.ResetCounts()
	res := b.sync(t, "products_full", true)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.True(t, held.Load(), "the products were asked for while the categories were being read")
	counts := b.fake.Counts()
	assert.Equal(t, counts["/categories"], res.Streams["categories"].APICalls, "categories calls")
	assert.Equal(t, counts["/products"], res.Streams["products"].APICalls, "products calls")
	assert.Equal(t, res.APICalls, res.Streams["categories"].APICalls+res.Streams["products"].APICalls)
	b.equal(t, false)
}
