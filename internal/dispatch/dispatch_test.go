package dispatch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/functions/kiotvietsync"
	"github.com/kvsync/kvsync/functions/schedulesync"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

const cronSecret = "cron-secret-0123456789-0123456789-abcdef"

type bundle struct {
	db     *pgxpool.Pool
	fake   *kiotvietfake.Server
	store  *store.Store
	engine *syncer.Engine
	keys   *secret.Keyring
	credID string
	done   chan dispatch.RunResult
}

func setup(t *testing.T, products int) *bundle {
	t.Helper()
	return setupOn(t, testdb.DB(t), products)
}

// setupOn builds the bundle on db: a database of the test's own (setup), or the shared one, the only
// one pg_cron's scheduler runs jobs in (TestRealPgCronTick).
func setupOn(t *testing.T, db *pgxpool.Pool, products int) *bundle {
	t.Helper()
	b := &bundle{db: db, done: make(chan dispatch.RunResult, 1000)}
	s := synctest.NewStack(t, b.db, synctest.StackOptions{MaxAttempts: 2, NoBackoff: true,
		Fake: kiotvietfake.Options{Products: products, Branches: 2, Seed: 11, RateLimitPerHour: -1, OtherRetailers: otherShops}})
	b.fake, b.keys, b.store, b.engine, b.credID = s.Fake, s.Keys, s.Store, s.Engine, s.CredID
	return b
}

func (b *bundle) dispatcher(worker string) *dispatch.Dispatcher {
	return dispatch.New(dispatch.Config{Store: b.store, Runner: b.engine, Worker: worker, Concurrency: 4,
		OnRunDone: func(r dispatch.RunResult) { b.done <- r }})
}

// otherShops: more shops the fake answers for, so that tests can run several shops' schedules.
var otherShops = []string{"shop-b", "shop-c", "shop-d", "shop-e", "shop-f"}

func (b *bundle) schedule(t *testing.T, credID, syncType string) string {
	t.Helper()
	id, err := b.store.UpsertSchedule(context.Background(), store.Schedule{CredentialID: credID, SyncType: syncType, Frequency: "hourly", Enabled: true})
	require.NoError(t, err)
	b.makeDue(t, id)
	return id
}

func (b *bundle) makeDue(t *testing.T, scheduleID string) {
	// due on its own grid: the slot a minute ago, the one before it a period earlier
	_, err := b.db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute',
		last_slot_at = now() - interval '1 minute' - public.kiotviet_schedule_interval(frequency, custom_interval_hours) where id = $1`, scheduleID)
	require.NoError(t, err)
}

func (b *bundle) waitRuns(t *testing.T, n int) []dispatch.RunResult {
	t.Helper()
	var out []dispatch.RunResult
	timeout := time.After(2 * time.Minute)
	for len(out) < n {
		select {
		case r := <-b.done:
			out = append(out, r)
		case <-timeout:
			t.Fatalf("only %d of %d runs ended", len(out), n)
		}
	}
	return out
}

func serve(t *testing.T, d *dispatch.Dispatcher) *httptest.Server {
	authn, err := auth.New(auth.Config{CronSecret: cronSecret, JWTSecret: strings.Repeat("j", 40)})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/functions/v1/kiotviet-schedule-sync", schedulesync.Handler(d, authn, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func setVault(t *testing.T, db *pgxpool.Pool, name, value string) {
	ctx := context.Background()
	_, err := db.Exec(ctx, `delete from vault.secrets where name = $1`, name)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `select vault.create_secret($1, $2)`, value, name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `delete from vault.secrets where name = $1`, name) })
}

// The scheduled path end to end: the cron job's own command → net.http_post (sent at commit) → the
// dispatcher → a sync from the fake → data tables equal to the shop → schedule advanced → log success.
func TestCronCommandToSyncedTables(t *testing.T) {
	t.Parallel()
	b := setup(t, 300)
	ctx := context.Background()
	srv := serve(t, b.dispatcher("cron-e2e"))
	setVault(t, b.db, "kiotviet_dispatcher_url", srv.URL+"/functions/v1/kiotviet-schedule-sync")
	setVault(t, b.db, "kiotviet_cron_secret", cronSecret)
	scheduleID := b.schedule(t, b.credID, "products_full")
	var slot time.Time
	require.NoError(t, b.db.QueryRow(ctx, `select next_run_at from kiotviet_sync_schedules where id = $1`, scheduleID).Scan(&slot))

	var command string
	require.NoError(t, b.db.QueryRow(ctx, `select command from cron.job where jobname = 'kiotviet-sync-scheduler'`).Scan(&command))
	tx, err := b.db.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `set local kvsync.net_dispatch = 'sync'`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, command)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	var status int
	require.NoError(t, b.db.QueryRow(ctx, `select status_code from net._http_response order by created desc limit 1`).Scan(&status))
	assert.Equal(t, http.StatusAccepted, status, "the dispatcher answers at once")

	r := b.waitRuns(t, 1)[0]
	require.NoError(t, r.Err)
	assert.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	diffs, err := synctest.Compare(ctx, b.db, b.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)

	var lastRun, lastSlot, next, completed time.Time
	var failures int
	require.NoError(t, b.db.QueryRow(ctx, `select last_run_at, last_slot_at, next_run_at, consecutive_failures from kiotviet_sync_schedules where id = $1`,
		scheduleID).Scan(&lastRun, &lastSlot, &next, &failures))
	require.NoError(t, b.db.QueryRow(ctx, `select completed_at from kiotviet_sync_logs where id = $1`, r.Claim.RunID).Scan(&completed))
	assert.True(t, lastRun.Equal(completed), "last_run_at is when the run finished (%s), not its slot", lastRun)
	assert.True(t, lastSlot.Equal(slot), "the grid column holds the slot the run was for")
	assert.True(t, next.Equal(slot.Add(time.Hour)), "the next slot is on the same grid: %s", next)
	var logStatus vocab.Status
	var trigger string
	require.NoError(t, b.db.QueryRow(ctx, `select status, trigger from kiotviet_sync_logs where id = $1`, r.Claim.RunID).Scan(&logStatus, &trigger))
	assert.Equal(t, vocab.Success, logStatus)
	assert.Equal(t, "cron", trigger)
}

func TestDispatchRefusesUsersAndAnon(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	srv := serve(t, b.dispatcher("auth"))
	for _, tc := range []struct {
		bearer string
		status int
	}{{"", 401}, {"wrong-secret-wrong-secret-wrong-secret", 401}, {cronSecret, 202}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/functions/v1/kiotviet-schedule-sync", strings.NewReader(`{}`))
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, string(body))
	}
}

// N dispatchers ticking at once over M due schedules: each schedule runs exactly once.
func TestConcurrentDispatchersRunEachScheduleOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 40)
	ctx := context.Background()
	const credentials = 6
	ids := []string{b.credID}
	for _, shop := range otherShops[:credentials-1] {
		c := b.fake.Credentials()
		c.Retailer = shop
		id, err := synctest.SaveCredential(ctx, b.store, b.keys, c)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var schedules []string
	for _, id := range ids {
		for _, st := range []string{"categories", "attributes"} {
			schedules = append(schedules, b.schedule(t, id, st))
		}
	}
	var dispatchers []*dispatch.Dispatcher
	for i := 0; i < 4; i++ {
		dispatchers = append(dispatchers, b.dispatcher("d"+string(rune('a'+i))))
	}
	total := 0
	for total < len(schedules) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		claimed := 0
		for _, d := range dispatchers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick, err := d.Tick(ctx, 10)
				assert.NoError(t, err)
				if err == nil {
					mu.Lock()
					claimed += len(tick.Claimed)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		b.waitRuns(t, claimed)
		require.Positive(t, claimed, "due schedules are left but nobody claimed them")
		total += claimed
	}
	assert.Equal(t, len(schedules), total)
	rows, err := b.db.Query(ctx, `select schedule_id, count(*) from kiotviet_sync_logs where trigger = 'cron' group by schedule_id`)
	require.NoError(t, err)
	runs := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		require.NoError(t, rows.Scan(&id, &n))
		runs[id] = n
	}
	require.NoError(t, rows.Err())
	for _, s := range schedules {
		assert.Equal(t, 1, runs[s], "schedule %s ran %d times", s, runs[s])
	}
}

// The one slow test: a real pg_cron tick (at the next minute boundary) runs the dispatch command, which
// posts through pg_net to the dispatcher. Up to two minutes.
func TestRealPgCronTick(t *testing.T) {
	t.Parallel()
	b := setupOn(t, testdb.Exclusive(t), 50)
	ctx := context.Background()
	srv := serve(t, b.dispatcher("pg-cron"))
	setVault(t, b.db, "kiotviet_dispatcher_url", srv.URL+"/functions/v1/kiotviet-schedule-sync")
	setVault(t, b.db, "kiotviet_cron_secret", cronSecret)
	b.schedule(t, b.credID, "categories")
	var command string
	require.NoError(t, b.db.QueryRow(ctx, `select command from cron.job where jobname = 'kiotviet-sync-scheduler'`).Scan(&command))
	// The same command as the real job, every minute instead of every five, so the test waits less.
	_, err := b.db.Exec(ctx, `select cron.schedule('kiotviet-tick-test', '* * * * *', $1)`, command)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = b.db.Exec(context.Background(), `select cron.unschedule('kiotviet-tick-test')`) })

	select {
	case r := <-b.done:
		assert.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	case <-time.After(150 * time.Second):
		t.Fatal("no pg_cron tick reached the dispatcher")
	}
	var ran int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from cron.job_run_details d join cron.job j on j.jobid = d.jobid
		where j.jobname = 'kiotviet-tick-test' and d.status = 'succeeded'`).Scan(&ran))
	assert.Positive(t, ran)
}

// Fan-out: the dispatcher claims, and another replica's kiotviet-sync carries the run out under the
// claimed run's id, heartbeating and finishing it.
func TestFanOutRunsClaimedRunOnAnotherReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, 120)
	ctx := context.Background()
	authn, err := auth.New(auth.Config{CronSecret: cronSecret, JWTSecret: strings.Repeat("j", 40)})
	require.NoError(t, err)
	replica := httptest.NewServer(kiotvietsync.Handler(kiotvietsync.Deps{Auth: authn, Admins: b.store, Sync: b.engine}))
	t.Cleanup(replica.Close)
	done := make(chan dispatch.RunResult, 1)
	d := dispatch.New(dispatch.Config{Store: b.store, Worker: "claimer",
		Runner:    b.engine.Remote(dispatch.FanOut{URL: replica.URL, Secret: cronSecret}),
		OnRunDone: func(r dispatch.RunResult) { done <- r }})
	scheduleID := b.schedule(t, b.credID, "products_full")

	tick, err := d.Tick(ctx, 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1)
	r := <-done
	require.NoError(t, r.Err)
	assert.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	assert.Equal(t, tick.Claimed[0].RunID, r.Result.RunID, "the replica ran the claimed run, not a new one")

	var status vocab.Status
	var trigger string
	require.NoError(t, b.db.QueryRow(ctx, `select status, trigger from kiotviet_sync_logs where id = $1`, r.Claim.RunID).Scan(&status, &trigger))
	assert.Equal(t, vocab.Success, status)
	assert.Equal(t, "cron", trigger)
	var last *time.Time
	require.NoError(t, b.db.QueryRow(ctx, `select last_run_at from kiotviet_sync_schedules where id = $1`, scheduleID).Scan(&last))
	assert.NotNil(t, last, "the schedule moved on")
	diffs, err := synctest.Compare(ctx, b.db, b.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)
}
