package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallIsOneIdempotentCommand(t *testing.T) {
	b := cliSetup(t)
	cronState(t, b.db)
	ctx := context.Background()
	b.addCredential(t)
	_, err := b.db.Exec(ctx, `select cron.unschedule(jobid) from cron.job where jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')`)
	require.NoError(t, err)

	_, _, err = b.cli(t, "", "install", "--url", "http://127.0.0.1:8080/not-the-dispatcher")
	require.ErrorContains(t, err, "/functions/v1/kiotviet-schedule-sync", "a bad URL is refused before anything changes")
	var jobs int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from cron.job where jobname like 'kiotviet-%'`).Scan(&jobs))
	assert.Zero(t, jobs)

	url := "http://" + b.serve(t) + "/functions/v1/kiotviet-schedule-sync"
	for i := range 2 { // the second run changes nothing and passes the same checks
		out := b.ok(t, "", "install", "--url", url)
		assert.Contains(t, out, "== 1/3 migrations")
		assert.Contains(t, out, "database is up to date")
		assert.NotContains(t, out, "applied 2", "the test database is migrated already: nothing is applied twice")
		assert.Contains(t, out, "== 2/3 Vault secrets and cron jobs")
		assert.Contains(t, out, "installed kiotviet-sync-scheduler")
		assert.Contains(t, out, "== 3/3 kvsync doctor")
		assert.Contains(t, out, "✓ cron job kiotviet-sync-scheduler")
		assert.Contains(t, out, "is kvsync (a wrong secret gets 401)")
		assert.Contains(t, out, "all checks passed", "run %d", i+1)
		assert.NotContains(t, out, cliCronSecret)
	}
	var secrets int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from vault.secrets where name in ('kiotviet_dispatcher_url', 'kiotviet_cron_secret')`).Scan(&secrets))
	assert.Equal(t, 2, secrets, "a second install updates the secrets, it does not add more")
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from cron.job where jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')`).Scan(&jobs))
	assert.Equal(t, 2, jobs)

	delete(b.env, "KIOTVIET_CRON_SECRET")
	_, _, err = b.cli(t, "", "install", "--url", url)
	require.ErrorContains(t, err, "KIOTVIET_CRON_SECRET is not set")
}
