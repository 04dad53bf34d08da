package testdb_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/supabase"
)

// A database of the test's own is migrated like the shared one, has the Supabase stand-ins and their
// search_path, starts with no rows in kvsync's tables, is not another test's, and is gone when its test
// ends.
func TestDBIsMigratedEmptyOwnAndDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ms, err := migrate.Load(supabase.Migrations)
	require.NoError(t, err)
	shared := testdb.Pool(t)

	var names []string
	for i := range 2 {
		t.Run("clone", func(t *testing.T) {
			db := testdb.DB(t)
			var name, searchPath string
			var migrations, rows int
			require.NoError(t, db.QueryRow(ctx, `select current_database(), current_setting('search_path'),
				(select count(*) from supabase_migrations.schema_migrations)`).Scan(&name, &searchPath, &migrations))
			assert.NotEqual(t, "postgres", name, "not the shared database")
			assert.Equal(t, `"$user", public, extensions`, searchPath, "the stand-ins' search_path, as in the shared database")
			assert.Equal(t, len(ms), migrations, "every migration of this checkout, recorded")
			require.NoError(t, db.QueryRow(ctx, `select
				  (select count(*) from public.kiotviet_credentials) + (select count(*) from public.kiotviet_sync_logs)
				+ (select count(*) from net._http_response) + (select count(*) from cron.job_run_details)`).Scan(&rows))
			assert.Zero(t, rows, "no rows left by earlier tests")
			// The stand-ins work: Vault, auth, pgcrypto in extensions, pg_cron's tables with kvsync's jobs.
			var jobs int
			require.NoError(t, db.QueryRow(ctx, `select count(*) from cron.job where jobname like 'kiotviet-%'`).Scan(&jobs))
			assert.Equal(t, 2, jobs, "the tick and the purge, as the migration installed them")
			_, err := db.Exec(ctx, `select vault.create_secret('s', 'clone-secret'), auth.uid(), gen_random_bytes(4)`)
			require.NoError(t, err)

			_, err = db.Exec(ctx, `insert into public.kiotviet_credentials (retailer_name, client_id, encrypted_token)
				values ('mine', 'client', 'ct')`)
			require.NoError(t, err, "a commit of the test's own")
			if i == 1 {
				assert.NotContains(t, names, name, "a second call is another database")
			}
			names = append(names, name)
		})
	}
	require.Len(t, names, 2)
	for _, name := range names {
		var left bool
		require.NoError(t, shared.QueryRow(ctx, `select exists (select from pg_database where datname = $1)`, name).Scan(&left))
		assert.False(t, left, "%s dropped when its test ended", name)
	}
	var mine int
	require.NoError(t, shared.QueryRow(ctx, `select count(*) from public.kiotviet_credentials where retailer_name = 'mine'`).Scan(&mine))
	assert.Zero(t, mine, "the shared database never saw the clone's rows")
}
