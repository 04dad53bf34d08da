package migrate_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/supabase"
)

// The adoption test needs a database that has never seen kvsync's migrations, and pg_cron ties a
// cluster to its one database "postgres"; so it starts a throwaway cluster of its own, apart from the
// development (54329) and test clusters, and deletes it at the end. make test passes a free port in
// KVSYNC_ADOPT_DB_PORT; testdb.CheckoutPort(2) otherwise.
const adoptDir = ".local/pg-adopt"

// eraCluster starts a fresh cluster with the Supabase stand-ins, loads the earlier system's database
// (supabase/fixtures/seed_era.sql) and returns a connection to it. Another `go test` using the same
// port waits on a file lock instead of sharing (and deleting) the cluster under it.
func eraCluster(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	root, err := testdb.RepoRoot()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".local"), 0o755))

	lock, err := os.OpenFile(filepath.Join(root, ".local", "pg-adopt.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { lock.Close() }) // closing releases the lock, after the reset below

	dbsh := func(arg string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "db.sh"), arg)
		cmd.Env = append(os.Environ(), "KVSYNC_DB_PORT="+cmp.Or(os.Getenv("KVSYNC_ADOPT_DB_PORT"), testdb.CheckoutPort(2)), "KVSYNC_DB_DIR="+adoptDir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("scripts/db.sh %s: %w: %s", arg, err, stderr.String())
		}
		return strings.TrimSpace(string(out)), nil
	}
	// A run that crashed may have left the cluster behind: start from nothing.
	_, err = dbsh("reset")
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := dbsh("reset"); err != nil {
			t.Errorf("delete the adoption cluster: %v", err)
		}
	})
	url, err := dbsh("up")
	require.NoError(t, err, "the adoption test needs its own cluster (run 'make deps' as root first)")

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })

	// The earlier job fires every 5 minutes: make sure nothing it (or anything else) queues leaves the
	// machine while this cluster lives.
	_, err = conn.Exec(ctx, "alter database postgres set kvsync.net_dispatch = 'off'")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "set kvsync.net_dispatch = 'off'")
	require.NoError(t, err)

	fixture, err := os.ReadFile(filepath.Join(root, "supabase", "fixtures", "seed_era.sql"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, string(fixture))
	require.NoError(t, err, "load seed_era.sql")
	return conn
}

// eraTables and the key that identifies a row of each.
var eraTables = map[string]string{
	"kiotviet_credentials":    "id::text",
	"kiotviet_sync_schedules": "id::text",
	"kiotviet_sync_logs":      "id::text",
	"kiotviet_categories":     "id::text",
	"kiotviet_products":       "id::text",
	"kiotviet_inventory":      "id::text",
	"kiotviet_products_full":  "id::text",
	"kiotviet_attributes":     "id::text",
}

func rowKeys(t *testing.T, conn *pgx.Conn) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, key := range eraTables {
		rows, err := conn.Query(context.Background(), "select "+key+" from public."+table)
		require.NoError(t, err)
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		sort.Strings(keys)
		out[table] = keys
	}
	return out
}

func strs(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	sort.Strings(got)
	return got
}

func one[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	require.NoError(t, conn.QueryRow(context.Background(), sql, args...).Scan(&v), sql)
	return v
}

func TestMigrationsAdoptTheEarlierSystemsDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn := eraCluster(t)

	before := rowKeys(t, conn)
	require.NotEmpty(t, before["kiotviet_products_full"], "the fixture holds rows")
	require.Equal(t, "string", one[string](t, conn, "select jsonb_typeof(attributes) from public.kiotviet_products_full where id = 2001"),
		"the fixture stores JSON as JSON strings, as the old writers did")

	ms, err := migrate.Load(supabase.Migrations)
	require.NoError(t, err)
	applied, err := migrate.Apply(ctx, conn, ms)
	require.NoError(t, err, "every migration applies over the earlier system's database")
	assert.Len(t, applied, len(ms))

	t.Run("every row of the earlier system is kept", func(t *testing.T) {
		assert.Equal(t, before, rowKeys(t, conn))
		assert.Equal(t, "Gọng kính titan", one[string](t, conn, "select name from public.kiotviet_products_full where code = 'GK-001'"))
		assert.Equal(t, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj",
			one[string](t, conn, "select encrypted_token from public.kiotviet_credentials where id = 'c1000000-0000-0000-0000-000000000002'"),
			"ciphertext is kept as it was")
	})

	t.Run("JSON strings became arrays", func(t *testing.T) {
		assert.Zero(t, one[int](t, conn, `select count(*)::int from public.kiotviet_products_full, lateral (values
			(inventory_by_branch), (images), (attributes), (units), (price_books), (product_formulas), (product_serials),
			(product_batch_expires), (product_shelves)) v(j) where jsonb_typeof(j) <> 'array'`))
		assert.Zero(t, one[int](t, conn, `select count(*)::int from public.kiotviet_products, lateral (values
			(images), (attributes), (units)) v(j) where jsonb_typeof(j) <> 'array'`))
		assert.Zero(t, one[int](t, conn, `select count(*)::int from public.kiotviet_attributes where jsonb_typeof(attribute_values) <> 'array'`))
		assert.Equal(t, []string{"GK-001"}, strs(t, conn, `select code from public.kiotviet_products_full
			where attributes @> '[{"attributeName":"Màu sắc","attributeValue":"Đỏ"}]'`),
			"the ERP's attribute filter (cs) now matches")
		assert.Equal(t, "Kệ A1", one[string](t, conn, "select inventory_by_branch->0->>'location' from public.kiotviet_products_full where id = 2001"))
	})

	t.Run("the anon-key job is gone and the new job holds no key or URL", func(t *testing.T) {
		assert.Empty(t, strs(t, conn, `select jobname::text from cron.job
			where command ~* '(eyJ|bearer|authorization|https?://|supabase\.co)'`))
		assert.Equal(t, []string{"select public.kiotviet_dispatch()"},
			strs(t, conn, "select command from cron.job where lower(jobname) = 'kiotviet-sync-scheduler'"))
		assert.Equal(t, "*/5 * * * *", one[string](t, conn, "select schedule from cron.job where jobname = 'kiotviet-sync-scheduler'"))
		assert.Equal(t, []string{"select public.kiotviet_purge()"}, strs(t, conn, "select command from cron.job where jobname = 'kiotviet-purge'"))
	})

	t.Run("the new constraints, indexes and triggers are in place", func(t *testing.T) {
		_, err := conn.Exec(ctx, `begin;
			insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency) values
			  ('c1000000-0000-0000-0000-000000000002', 'attributes', 'hourly');
			rollback`)
		assert.NoError(t, err, "sync_type 'attributes' is allowed now (509493f refused it)")
		_, err = conn.Exec(ctx, `update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = null
			where id = '5c000000-0000-0000-0000-000000000001'`)
		assert.ErrorContains(t, err, "kiotviet_sync_schedules_custom_interval_required")
		assert.Equal(t, []string{"kiotviet_sync_logs_one_running", "kiotviet_sync_schedules_due_idx"},
			strs(t, conn, `select indexname::text from pg_indexes where schemaname = 'public'
				and indexname in ('kiotviet_sync_logs_one_running', 'kiotviet_sync_schedules_due_idx')`))
		assert.True(t, one[bool](t, conn, `select exists (select from pg_trigger where tgname = 'calculate_next_run_trigger'
			and tgrelid = 'public.kiotviet_sync_schedules'::regclass)`))
		assert.Equal(t, "manual", one[string](t, conn, "select trigger from public.kiotviet_sync_logs where id = '10900000-0000-0000-0000-000000000001'"),
			"earlier log rows get the new columns' defaults")
		assert.True(t, one[bool](t, conn, `select relreplident = 'f' from pg_class where oid = 'public.kiotviet_products_full'::regclass`),
			"kiotviet_products_full keeps REPLICA IDENTITY FULL")
	})

	t.Run("the earlier policies are replaced by the contract's", func(t *testing.T) {
		assert.Empty(t, strs(t, conn, `select policyname::text from pg_policies where schemaname = 'public'
			and tablename like 'kiotviet\_%' and policyname not like 'kiotviet\_%'`), "no earlier policy is left")
		assert.Equal(t, []string{"kiotviet_products_full_admin", "kiotviet_products_full_read"},
			strs(t, conn, "select policyname::text from pg_policies where tablename = 'kiotviet_products_full'"))
		assert.Empty(t, strs(t, conn, `select relname::text from pg_class where relnamespace = 'public'::regnamespace
			and relkind = 'r' and relname like 'kiotviet\_%' and not relrowsecurity`), "RLS is on everywhere")
		assert.False(t, one[bool](t, conn, "select has_table_privilege('anon', 'public.kiotviet_sync_logs', 'select')"),
			"anon loses what Supabase's default privileges gave it")
		assert.False(t, one[bool](t, conn, "select has_column_privilege('authenticated', 'public.kiotviet_credentials', 'encrypted_token', 'select')"))
	})

	t.Run("the ERP's is_admin still decides who is an admin", func(t *testing.T) {
		seen := func(sub string) int {
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			_, err = tx.Exec(ctx, "set local role authenticated")
			require.NoError(t, err)
			_, err = tx.Exec(ctx, "select set_config('request.jwt.claims', $1, true)", `{"role":"authenticated","sub":"`+sub+`"}`)
			require.NoError(t, err)
			var n int
			require.NoError(t, tx.QueryRow(ctx, "select count(*)::int from public.kiotviet_credentials").Scan(&n))
			return n
		}
		assert.Equal(t, 2, seen("e0000000-0000-0000-0000-0000000000a1"), "the ERP admin sees the credentials")
		assert.Equal(t, 0, seen("e0000000-0000-0000-0000-0000000000b1"), "an ERP user does not")

		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		_, err = tx.Exec(ctx, "set local role anon")
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.QueryRow(ctx, "select count(*)::int from public.kiotviet_products_full").Scan(&n))
		assert.Equal(t, 2, n, "anon still reads kiotviet_products_full (/p/:code)")
	})

	t.Run("schedules keep their grid; last sync stays the earlier system's last success", func(t *testing.T) {
		// The earlier dispatcher set last_run_at = now() when a run succeeded, and its trigger put the next
		// run one period after that: that moment is the grid. It was also the last success, so "last sync"
		// keeps it, and the next run does not move.
		assert.True(t, one[bool](t, conn, `select last_slot_at = last_run_at from public.kiotviet_sync_schedules
			where id = '5c000000-0000-0000-0000-000000000001'`), "the grid column is derived from the old last_run_at")
		assert.True(t, one[bool](t, conn, `select next_run_at = last_slot_at + interval '1 day' from public.kiotviet_sync_schedules
			where id = '5c000000-0000-0000-0000-000000000001'`), "the next run is where the earlier trigger put it")
		assert.True(t, one[bool](t, conn, `select abs(extract(epoch from (last_run_at - (now() - interval '3 hours')))) < 60
			from public.kiotviet_sync_schedules where id = '5c000000-0000-0000-0000-000000000001'`),
			"last sync is still three hours ago, as the card showed")
		assert.True(t, one[bool](t, conn, `select last_run_at is null and last_slot_at = created_at
			from public.kiotviet_sync_schedules where id = '5c000000-0000-0000-0000-000000000002'`),
			"a schedule that never ran keeps no last sync; its grid starts where the earlier trigger counted from")
		// an admin's "run now" that succeeds: last sync now, the grid and so the next run stay
		adopted := one[time.Time](t, conn, `select last_slot_at from public.kiotviet_sync_schedules
			where id = '5c000000-0000-0000-0000-000000000001'`)
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		var grid bool
		require.NoError(t, tx.QueryRow(ctx, `select public.kiotviet_schedule_after_run('5c000000-0000-0000-0000-000000000001',
			'success', now(), null) is not null`).Scan(&grid))
		require.NoError(t, tx.QueryRow(ctx, `select last_run_at = now() and last_slot_at = $1
			and next_run_at = $1 + interval '1 day' from public.kiotviet_sync_schedules
			where id = '5c000000-0000-0000-0000-000000000001'`, adopted).Scan(&grid))
		assert.True(t, grid, "after a success: last sync now, the next run still one day after the adopted slot")
	})

	t.Run("migrating a second time applies nothing", func(t *testing.T) {
		again, err := migrate.Apply(ctx, conn, ms)
		require.NoError(t, err)
		assert.Empty(t, again)
	})
}
