package testdb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/testdb"
)

// Two (here eight) dispatchers claiming at once never get the same schedule, every due schedule runs
// exactly once, and a credential never has two running runs: kiotviet_claim_due's FOR UPDATE SKIP LOCKED,
// its one-schedule-per-credential pick and the kiotviet_sync_logs_one_running index keep them apart.
func TestConcurrentClaimsNeverReturnTheSameSchedule(t *testing.T) {
	const (
		credentials = 40
		workers     = 8
		limit       = 10
	)
	syncTypes := []string{"categories", "products", "inventory", "products_full", "attributes"}
	t.Parallel()
	ctx := context.Background()
	pool := testdb.DB(t)

	_, err := pool.Exec(ctx, `insert into public.kiotviet_credentials (retailer_name, client_id, encrypted_token)
		select 'shop' || g, 'client' || g, 'ciphertext' from generate_series(1, $1::int) g`, credentials)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
		select c.id, t, 'daily' from public.kiotviet_credentials c cross join unnest($1::text[]) t`, syncTypes)
	require.NoError(t, err)
	// Due, at slots spread over the last hour (the trigger put them a day ahead on insert).
	_, err = pool.Exec(ctx, `update public.kiotviet_sync_schedules
		set next_run_at = now() - make_interval(mins => 1 + abs(hashtext(id::text)) % 60)`)
	require.NoError(t, err)
	var due int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from public.kiotviet_sync_schedules where next_run_at <= now()`).Scan(&due))
	require.Equal(t, credentials*len(syncTypes), due)

	type claim struct {
		RunID, ScheduleID, CredentialID string
	}
	var (
		mu      sync.Mutex
		claims  []claim
		errs    []error
		wg      sync.WaitGroup
		start   = make(chan struct{})
		conns   = make([]*pgx.Conn, workers)
		recordE = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	)
	for i := range conns {
		c, err := pgx.Connect(ctx, pool.Config().ConnString()) // opened here: require may stop the test, which only its goroutine may do
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(context.Background()) })
		conns[i] = c
	}
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("worker-%d", i)
			<-start
			for {
				rows, err := conn.Query(ctx, `select run_id::text, schedule_id::text, credential_id::text
					from public.kiotviet_claim_due($1, $2)`, worker, limit)
				if err != nil {
					recordE(fmt.Errorf("%s claim: %w", worker, err))
					return
				}
				got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[claim])
				if err != nil {
					recordE(fmt.Errorf("%s claim: %w", worker, err))
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				claims = append(claims, got...)
				mu.Unlock()
				for _, c := range got {
					if _, err := conn.Exec(ctx, `select public.kiotviet_finish_run($1, 'success')`, c.RunID); err != nil {
						recordE(fmt.Errorf("%s finish %s: %w", worker, c.RunID, err))
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()

	require.Empty(t, errs, "no claim or finish may fail (a deadlock or a second running run would show here)")

	perSchedule := map[string]int{}
	perRun := map[string]int{}
	for _, c := range claims {
		perSchedule[c.ScheduleID]++
		perRun[c.RunID]++
	}
	assert.Len(t, claims, credentials*len(syncTypes), "every schedule claimed, none twice")
	assert.Len(t, perSchedule, credentials*len(syncTypes), "every schedule claimed")
	for id, n := range perSchedule {
		assert.Equal(t, 1, n, "schedule %s claimed %d times", id, n)
	}
	assert.Len(t, perRun, len(claims), "every claim opened its own run")

	var runsPerSchedule []int
	rows, err := pool.Query(ctx, `select count(l.id)::int from public.kiotviet_sync_schedules s
		left join public.kiotviet_sync_logs l on l.schedule_id = s.id group by s.id`)
	require.NoError(t, err)
	runsPerSchedule, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Len(t, runsPerSchedule, credentials*len(syncTypes))
	for _, n := range runsPerSchedule {
		require.Equal(t, 1, n, "every schedule has exactly one run row")
	}

	var running, notSuccess, stillDue int
	require.NoError(t, pool.QueryRow(ctx, `select
		  (select count(*) from public.kiotviet_sync_logs where status = 'running'),
		  (select count(*) from public.kiotviet_sync_logs where status <> 'success'),
		  (select count(*) from public.kiotviet_sync_schedules where next_run_at <= now())`).
		Scan(&running, &notSuccess, &stillDue))
	assert.Zero(t, running, "no run left running")
	assert.Zero(t, notSuccess, "every run finished with success")
	assert.Zero(t, stillDue, "no schedule left due: each moved to its next slot")

	// The guard that made a second running row per credential impossible is still what it should be.
	var unique bool
	require.NoError(t, pool.QueryRow(ctx, `select i.indisunique from pg_catalog.pg_index i
		where i.indexrelid = 'public.kiotviet_sync_logs_one_running'::regclass`).Scan(&unique))
	assert.True(t, unique, "kiotviet_sync_logs_one_running is a unique index")
}
