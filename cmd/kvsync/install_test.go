package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallIsOneIdempotentCommand(t *testing.T) {
	t.Parallel()
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

// A dispatcher URL may carry a secret (a gateway's token in its query, a password in its userinfo): the
// Vault keeps it whole, since pg_net must send it, but neither cron install's output nor the error for a
// wrong URL shows it.
func TestCronInstallNeverPrintsTheURLsSecrets(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	cronState(t, b.db)
	ctx := context.Background()
	const token, password = "GaTeWaYtOkEn0123456789abcdef", "dispatcher-password-0123456789"
	url := "https://kvsync:" + password + "@kvsync.example.com/functions/v1/kiotviet-schedule-sync?token=" + token

	out := b.ok(t, "", "cron", "install", "--url", url)
	assert.Contains(t, out, "Vault: kiotviet_dispatcher_url = https://REDACTED@kvsync.example.com/functions/v1/kiotviet-schedule-sync?token=REDACTED")
	assert.NotContains(t, out, token)
	assert.NotContains(t, out, password)
	var stored string
	require.NoError(t, b.db.QueryRow(ctx, `select decrypted_secret from vault.decrypted_secrets where name = 'kiotviet_dispatcher_url'`).Scan(&stored))
	assert.Equal(t, url, stored, "the Vault keeps the URL whole: pg_net sends it")

	for _, bad := range []string{
		"https://kvsync:" + password + "@kvsync.example.com/elsewhere?token=" + token, // wrong route
		"ftp://kvsync:" + password + "@kvsync.example.com/x?token=" + token,           // not http(s)
		"https://kvsync:" + password + "@kvsync.example.com:bad/?token=" + token,      // does not parse
	} {
		for _, cmd := range [][]string{{"cron", "install", "--url", bad}, {"install", "--url", bad}} {
			stdout, stderr, err := b.cli(t, "", cmd...)
			require.Error(t, err, "%v", cmd)
			for _, text := range []string{err.Error(), stdout, stderr} {
				assert.NotContains(t, text, token, "%v", cmd)
				assert.NotContains(t, text, password, "%v", cmd)
			}
		}
	}
}
