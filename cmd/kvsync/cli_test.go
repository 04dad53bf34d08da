package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/testdb"
)

// The CLI tests call run as main does, against the test database and an httptest fake KiotViet, with the
// environment passed through getenv only.

const cliCronSecret = "cli-test-cron-secret-0123456789abcdefghij"

type cliBundle struct {
	db   *pgxpool.Pool
	fake *kiotvietfake.Server
	env  map[string]string
}

func cliSetup(t *testing.T) *cliBundle {
	t.Helper()
	b := &cliBundle{db: testdb.DB(t)}
	b.fake = kiotvietfake.New(kiotvietfake.Options{Products: 120, Branches: 2, Categories: 8, Seed: 11})
	srv := httptest.NewServer(b.fake.Handler())
	t.Cleanup(srv.Close)
	id, key, err := secret.GenerateKey()
	require.NoError(t, err)
	b.env = map[string]string{
		"DATABASE_URL":             b.db.Config().ConnString(),
		"KIOTVIET_ENCRYPTION_KEYS": id + ":" + key,
		"KIOTVIET_CRON_SECRET":     cliCronSecret,
		"KIOTVIET_TOKEN_URL":       srv.URL + kiotvietfake.TokenPath,
		"KIOTVIET_API_URL":         srv.URL,
		"KVSYNC_LOG_LEVEL":         "warn",
	}
	return b
}

// cli runs kvsync with args and stdin, returning stdout, stderr and the error run returned.
func (b *cliBundle) cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, func(k string) string { return b.env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// ok runs kvsync and fails the test unless it succeeded.
func (b *cliBundle) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := b.cli(t, stdin, args...)
	require.NoError(t, err, "kvsync %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out
}

func (b *cliBundle) addCredential(t *testing.T) string {
	t.Helper()
	out := b.ok(t, b.fake.ClientSecret()+"\n", "credentials", "add", "--retailer", b.fake.Retailer(), "--client-id", b.fake.ClientID())
	id := strings.TrimSpace(out)
	require.Len(t, id, 36, "credentials add prints the new id alone: %q", out)
	return id
}

func TestCredentialsScheduleSyncStatusDispatch(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	ctx := context.Background()

	_, _, err := b.cli(t, "wrong-secret", "credentials", "add", "--retailer", b.fake.Retailer(), "--client-id", b.fake.ClientID())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KiotViet rejected")
	_, _, err = b.cli(t, "", "credentials", "add", "--retailer", b.fake.Retailer(), "--client-id", b.fake.ClientID())
	require.ErrorContains(t, err, "no client secret on stdin")

	id := b.addCredential(t)
	list := b.ok(t, "", "credentials", "list")
	assert.Contains(t, list, id)
	assert.Contains(t, list, b.fake.Retailer())
	assert.NotContains(t, list, b.fake.ClientSecret())
	assert.NotContains(t, list, "v1:", "no ciphertext either")
	assert.Equal(t, id+"\n", b.ok(t, "", "credentials", "list", "--retailer", b.fake.Retailer(), "--active", "--ids"))
	js := b.ok(t, "", "credentials", "list", "--json")
	assert.NotContains(t, js, b.fake.ClientSecret())
	assert.NotContains(t, js, "encrypted")

	out := b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "hourly")
	assert.Contains(t, out, "next run:")
	assert.Contains(t, out, "(in 59m)", "hourly: the database puts the first run one hour from now")
	out = b.ok(t, "", "schedule", "set", "--credential", id, "--type", "inventory", "--every", "6h", "--at", "02:00")
	assert.Contains(t, out, "every 6h at 02:00")
	_, _, err = b.cli(t, "", "schedule", "set", "--credential", id, "--type", "inventory", "--every", "0h")
	require.ErrorContains(t, err, "between 1 and 168")
	// An unknown credential breaks the schedule's foreign key: coded not found, said in words.
	_, _, err = b.cli(t, "", "schedule", "set", "--credential", "00000000-0000-0000-0000-000000000000", "--type", "inventory", "--every", "6h")
	require.ErrorContains(t, err, "no credential 00000000-0000-0000-0000-000000000000")

	out = b.ok(t, "", "sync", "--credential", id, "--type", "products_full")
	assert.Contains(t, out, "products")
	assert.Contains(t, out, "categories")
	assert.Contains(t, out, "success: 128 records", "120 products and 8 categories")
	var products int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from kiotviet_products_full where credential_id = $1`, id).Scan(&products))
	assert.Equal(t, 120, products)

	status := b.ok(t, "", "status")
	assert.Contains(t, status, b.fake.Retailer())
	assert.Contains(t, status, "products_full")
	assert.Contains(t, status, "in 59m")
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(b.ok(t, "", "status", "--json")), &rows))
	assert.Len(t, rows, 2)

	out = b.ok(t, "", "dispatch")
	assert.Contains(t, out, "nothing is due")
	_, err = b.db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() where sync_type = 'inventory'`)
	require.NoError(t, err)
	out = b.ok(t, "", "dispatch")
	assert.Contains(t, out, "inventory")
	assert.Contains(t, out, "success")
	assert.Contains(t, out, "total: 1 run(s) (1 success)")
	status = b.ok(t, "", "status")
	assert.Regexp(t, `inventory\s+every 6h at 02:00\s+yes\s+in \S+ \(\S+ \S+ Asia/Ho_Chi_Minh\)\s+\S+ ago \(\S+ \S+ Asia/Ho_Chi_Minh\)\s+success`, status)

	b.ok(t, "", "credentials", "deactivate", id)
	assert.Contains(t, b.ok(t, "", "credentials", "list"), "no ")
	_, _, err = b.cli(t, "", "sync", "--credential", id)
	require.ErrorContains(t, err, "is not active")
	_, _, err = b.cli(t, "", "credentials", "deactivate", "00000000-0000-0000-0000-000000000000")
	require.ErrorContains(t, err, "no credential")
}

func TestDispatchExitsNonZeroWhenARunFails(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := b.addCredential(t)
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "categories", "--every", "hourly")
	_, err := b.db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now()`)
	require.NoError(t, err)
	b.env["KIOTVIET_API_URL"] = b.env["KIOTVIET_API_URL"] + "/no-such-api" // every request: 404
	out, _, err := b.cli(t, "", "dispatch")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not succeed")
	assert.Contains(t, out, "failed")
}

func TestKeysGenerateAndRotate(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := b.addCredential(t)
	oldKeys := b.env["KIOTVIET_ENCRYPTION_KEYS"]

	line := strings.TrimSpace(b.ok(t, "", "keys", "generate"))
	newKey, ok := strings.CutPrefix(line, "KIOTVIET_ENCRYPTION_KEYS=")
	require.True(t, ok, "keys generate prints a .env line: %q", line)
	newID, _, _ := strings.Cut(newKey, ":")
	_, err := secret.ParseKeys(newKey, "")
	require.NoError(t, err)

	b.env["KIOTVIET_ENCRYPTION_KEYS"] = newKey + "," + oldKeys
	out := b.ok(t, "", "keys", "rotate")
	assert.Contains(t, out, "1 re-encrypted with key "+newID)
	out = b.ok(t, "", "keys", "rotate")
	assert.Contains(t, out, "0 re-encrypted", "a second pass has nothing to do")
	assert.Contains(t, out, "1 already on it")

	var encSecret, encToken string
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select encrypted_client_secret, encrypted_token from kiotviet_credentials where id = $1`, id).Scan(&encSecret, &encToken))
	assert.True(t, strings.HasPrefix(encSecret, "v1:"+newID+":"), "secret under the new key")
	assert.True(t, strings.HasPrefix(encToken, "v1:"+newID+":"), "token under the new key")

	b.env["KIOTVIET_ENCRYPTION_KEYS"] = newKey // the old key is gone: the sync still works
	out = b.ok(t, "", "sync", "--credential", id, "--type", "categories")
	assert.Contains(t, out, "success")

	b.env["KIOTVIET_ENCRYPTION_KEYS"] = oldKeys // only the old key: rotate says what to do
	out, _, err = b.cli(t, "", "keys", "rotate")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keep the key they were saved with")
	assert.Contains(t, out, "1 failed")
}

// cronState removes kvsync's jobs and Vault secrets for the test, and puts the jobs back (as the
// migration installs them) and the secrets away when it ends, so other tests find the database as usual.
func cronState(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	clean := func() {
		_, err := db.Exec(ctx, `delete from vault.secrets where name in ('kiotviet_dispatcher_url', 'kiotviet_cron_secret')`)
		require.NoError(t, err)
	}
	clean()
	t.Cleanup(func() {
		clean()
		_, err := db.Exec(ctx, `select public.kiotviet_cron_install()`)
		require.NoError(t, err)
	})
}

func TestCronInstallAndDoctor(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	cronState(t, b.db)
	ctx := context.Background()
	b.addCredential(t)

	assert.Contains(t, b.ok(t, "", "cron", "uninstall"), "unscheduled kiotviet-sync-scheduler")
	assert.Contains(t, b.ok(t, "", "cron", "uninstall"), "no kvsync cron job to remove")

	out, _, err := b.cli(t, "", "doctor")
	require.Error(t, err)
	assert.Contains(t, out, "✗ cron job kiotviet-sync-scheduler: missing")
	assert.Contains(t, out, "fix: kvsync cron install --url")
	assert.Contains(t, out, "✓ migrations")
	assert.Contains(t, out, "✓ encryption keys")

	_, _, err = b.cli(t, "", "cron", "install", "--url", "http://127.0.0.1:8080/somewhere-else")
	require.ErrorContains(t, err, "/functions/v1/kiotviet-schedule-sync")

	// A real kvsync serve for the doctor's probe of the dispatcher URL.
	addr := b.serve(t)
	url := "http://" + addr + "/functions/v1/kiotviet-schedule-sync"
	out = b.ok(t, "", "cron", "install", "--url", url)
	assert.Contains(t, out, "installed kiotviet-sync-scheduler")
	assert.NotContains(t, out, cliCronSecret)

	var schedule, command string
	require.NoError(t, b.db.QueryRow(ctx, `select schedule, command from cron.job where jobname = 'kiotviet-sync-scheduler'`).Scan(&schedule, &command))
	assert.Equal(t, "*/5 * * * *", schedule)
	assert.Equal(t, "select public.kiotviet_dispatch()", command)
	secrets := map[string]string{}
	rows, err := b.db.Query(ctx, `select name, decrypted_secret from vault.decrypted_secrets where name like 'kiotviet\_%'`)
	require.NoError(t, err)
	for rows.Next() {
		var n, v string
		require.NoError(t, rows.Scan(&n, &v))
		secrets[n] = v
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]string{"kiotviet_dispatcher_url": url, "kiotviet_cron_secret": cliCronSecret}, secrets)

	// Twice is an update, not a second secret of the same name.
	b.ok(t, "", "cron", "install", "--url", url)
	var n int
	require.NoError(t, b.db.QueryRow(ctx, `select count(*) from vault.secrets where name like 'kiotviet\_%'`).Scan(&n))
	assert.Equal(t, 2, n)

	// the replies and cron runs of earlier tests are not this test's
	_, err = b.db.Exec(ctx, `delete from net._http_response; delete from cron.job_run_details`)
	require.NoError(t, err)
	out = b.ok(t, "", "doctor")
	assert.Contains(t, out, "✓ KiotViet token for "+b.fake.Retailer())
	assert.Contains(t, out, "✓ schedules:")
	assert.Contains(t, out, "✓ running runs:")
	assert.Contains(t, out, "✓ cron job kiotviet-sync-scheduler")
	assert.Contains(t, out, "✓ Vault secret kiotviet_cron_secret: present and equal to KIOTVIET_CRON_SECRET")
	assert.Contains(t, out, "is kvsync (a wrong secret gets 401)")
	assert.NotContains(t, out, cliCronSecret)

	b.env["KIOTVIET_CRON_SECRET"] = "another-cron-secret-0123456789abcdefghijkl"
	out, _, err = b.cli(t, "", "doctor")
	require.Error(t, err)
	assert.Contains(t, out, "differs from KIOTVIET_CRON_SECRET")
	assert.NotContains(t, out, cliCronSecret)
	b.env["KIOTVIET_CRON_SECRET"] = cliCronSecret

	// doctor checks the path that matters: each break below fails it, with a fix, and nothing else does
	broken := func(want, fix string) {
		t.Helper()
		out, _, err := b.cli(t, "", "doctor")
		require.Error(t, err, "doctor must exit non-zero:\n%s", out)
		assert.Contains(t, out, want)
		assert.Regexp(t, `fix: .*`+regexp.QuoteMeta(fix), out)
		assert.Equal(t, 1, strings.Count(out, "✗ "), "only the broken path fails:\n%s", out)
		assert.NotContains(t, out, b.fake.ClientSecret())
	}
	mustExec := func(sql string, args ...any) {
		t.Helper()
		_, err := b.db.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	b.ok(t, "", "doctor")

	// KiotViet down
	tokenURL := b.env["KIOTVIET_TOKEN_URL"]
	b.env["KIOTVIET_TOKEN_URL"] = closedURL(t) + kiotvietfake.TokenPath
	broken("KiotViet does not answer", "check the network and KIOTVIET_TOKEN_URL")
	b.env["KIOTVIET_TOKEN_URL"] = tokenURL

	// the credential rejected (API access removed: KiotViet no longer knows the client id)
	mustExec(`update kiotviet_credentials set client_id = 'revoked-' || client_id where is_active`)
	broken("KiotViet rejects the client id or secret", "save the connection again")
	mustExec(`update kiotviet_credentials set client_id = substr(client_id, 9) where is_active and client_id like 'revoked-%'`)

	// a schedule whose last runs all failed
	var credID string
	require.NoError(t, b.db.QueryRow(ctx, `select id from kiotviet_credentials where is_active`).Scan(&credID))
	b.ok(t, "", "schedule", "set", "--credential", credID, "--type", "inventory", "--every", "hourly")
	mustExec(`update kiotviet_sync_schedules set consecutive_failures = 3, last_status = 'failed', last_error = 'KiotViet 503: maintenance'`)
	broken("its last 3 runs failed: KiotViet 503: maintenance", "see the error; kvsync sync --credential "+credID+" --type inventory")
	mustExec(`update kiotviet_sync_schedules set consecutive_failures = 0, last_status = 'success', last_error = null`)

	// a running run whose worker stopped beating
	mustExec(`insert into kiotviet_sync_logs (credential_id, sync_type, status, trigger, worker, started_at, heartbeat_at, lease_expires_at)
		values ($1, 'attributes', 'running', 'manual', 'gone-worker', now() - interval '12 minutes', now() - interval '10 minutes',
		        now() + interval '1 minute')`, credID)
	broken("worker gone-worker has not beaten for 10m", "the worker died or hangs")
	mustExec(`delete from kiotviet_sync_logs where worker = 'gone-worker'`)

	// the dispatcher refusing the cron's calls
	mustExec(`insert into net._http_response (id, status_code, timed_out, created) values (-1, 401, false, now())`)
	broken("the last 1 were 401: the dispatcher refuses the cron's secret", "kvsync cron install --url")
	mustExec(`delete from net._http_response where id = -1`)

	// pg_cron not firing: the job's last run an hour ago. A real tick may land meanwhile (every 5
	// minutes): then the scenario is set up again.
	for attempt := 0; ; attempt++ {
		mustExec(`delete from cron.job_run_details`)
		mustExec(`insert into cron.job_run_details (jobid, command, status, start_time, end_time)
			select jobid, command, 'succeeded', now() - interval '1 hour', now() - interval '1 hour' from cron.job
			 where jobname = 'kiotviet-sync-scheduler'`)
		out, _, err := b.cli(t, "", "doctor")
		var ticked bool
		require.NoError(t, b.db.QueryRow(ctx, `select count(*) > 1 from cron.job_run_details`).Scan(&ticked))
		if ticked && attempt < 3 {
			continue
		}
		require.Error(t, err)
		assert.Contains(t, out, "pg_cron is not firing the job")
		assert.Contains(t, out, "fix: pg_cron's scheduler must run in this database")
		break
	}
	mustExec(`delete from cron.job_run_details`)
	b.ok(t, "", "doctor")
}

// serve starts `kvsync serve` on a free port until the test ends and returns its address.
func (b *cliBundle) serve(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	env := map[string]string{"KVSYNC_ADDR": "127.0.0.1:0"}
	for k, v := range b.env {
		env[k] = v
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--grace", "5s"}, func(k string) string { return env[k] }, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan(), "kvsync serve printed nothing")
	addr, ok := strings.CutPrefix(sc.Text(), "kvsync listening on ")
	require.True(t, ok, "unexpected first line %q", sc.Text())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return addr
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	b := &cliBundle{env: map[string]string{}}
	for _, args := range [][]string{{"dispatch", "--help"}, {"sync", "--help"}, {"status", "--help"},
		{"credentials", "--help"}, {"credentials", "add", "--help"}, {"schedule", "--help"}, {"schedule", "set", "--help"},
		{"keys", "--help"}, {"cron", "--help"}, {"cron", "install", "--help"}, {"doctor", "--help"}, {"install", "--help"}} {
		_, errOut, err := b.cli(t, "", args...)
		assert.NoError(t, err, args)
		assert.Contains(t, errOut, "Usage: kvsync", args)
	}
	_, _, err := b.cli(t, "", "sync")
	assert.ErrorContains(t, err, "--credential is required")
	_, _, err = b.cli(t, "", "cron", "install")
	assert.ErrorContains(t, err, "--url: required")
}

func TestHumanTimes(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "in 3h12m", nextRunIn(3*time.Hour+12*time.Minute+30*time.Second))
	assert.Equal(t, "in 45s", nextRunIn(45*time.Second))
	assert.Equal(t, "due", nextRunIn(0))
	assert.Equal(t, "due", nextRunIn(-4*time.Minute))
	assert.Equal(t, "overdue 25m", nextRunIn(-25*time.Minute))
	assert.Equal(t, "in 3d2h", nextRunIn(74*time.Hour))
	assert.Equal(t, "12,345", thousands(12345))
	assert.Equal(t, "100", thousands(int64(100)))
	f, h, err := parseEvery("6h")
	require.NoError(t, err)
	assert.Equal(t, "custom", f)
	assert.Equal(t, 6, *h)
	_, _, err = parseEvery("weekly")
	assert.Error(t, err)
	d, err := kiotviet.ParseDateFrom("2026-03-01")
	require.NoError(t, err)
	assert.Equal(t, "2026-02-28T17:00:00Z", d.UTC().Format(time.RFC3339), "a bare date is Vietnam time")
}

// The schedule commands, and every bad input: each error says what to do, in words (no SQL, constraint
// or function names).
func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	ctx := context.Background()
	id := b.addCredential(t)
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := b.cli(t, "", args...)
		require.Error(t, err, "kvsync %s", strings.Join(args, " "))
		assert.Contains(t, err.Error(), want)
		for _, raw := range []string{"kiotviet_", "constraint", "SQLSTATE", "violates", "public."} {
			assert.NotContains(t, err.Error(), raw, "no internals in %q", err.Error())
		}
	}
	sched := func() (freq string, hours *int, tod *string, tz string, enabled bool, paused *string) {
		t.Helper()
		require.NoError(t, b.db.QueryRow(ctx, `select frequency, custom_interval_hours, to_char(time_of_day, 'HH24:MI'), timezone,
			enabled, paused_reason from kiotviet_sync_schedules where credential_id = $1 and sync_type = 'products_full'`, id).
			Scan(&freq, &hours, &tod, &tz, &enabled, &paused))
		return
	}

	out := b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "daily", "--at", "03:00",
		"--timezone", "Europe/Paris")
	assert.Contains(t, out, "Europe/Paris", "the next run is shown in the schedule's zone, named")
	// the case: --every daily --disabled dropped an earlier --at and --timezone
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--disabled")
	freq, _, tod, tz, enabled, _ := sched()
	assert.Equal(t, []any{"daily", "03:00", "Europe/Paris", false}, []any{freq, *tod, tz, enabled}, "set changes only the flags given")
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "5h")
	freq, hours, tod, _, enabled, _ := sched()
	assert.Equal(t, []any{"custom", 5, "03:00", false}, []any{freq, *hours, *tod, enabled}, "any period keeps the time of day")
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--at", "none", "--enabled")
	_, _, tod, _, enabled, _ = sched()
	assert.Nil(t, tod, "--at none removes the time of day")
	assert.True(t, enabled)
	var sid string
	require.NoError(t, b.db.QueryRow(ctx, `select id from kiotviet_sync_schedules where credential_id = $1`, id).Scan(&sid))

	fails("between 1 and 168", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "0h")
	fails("between 1 and 168", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "169h")
	fails("use hourly, daily or a number of hours", "schedule", "set", "--credential", id, "--type", "products_full", "--every", "weekly")
	fails("use HH:MM", "schedule", "set", "--credential", id, "--type", "products_full", "--at", "25:00")
	fails("use an IANA name", "schedule", "set", "--credential", id, "--type", "products_full", "--timezone", "Mars/Olympus")
	fails("nothing to change", "schedule", "set", "--credential", id, "--type", "products_full")
	fails("add --every", "schedule", "set", "--credential", id, "--type", "inventory", "--enabled")
	fails("not one of", "schedule", "set", "--credential", id, "--type", "stock", "--every", "daily")
	fails("not a credential id", "schedule", "set", "--credential", "shop1", "--type", "inventory", "--every", "daily")
	fails("no credential", "schedule", "set", "--credential", "00000000-0000-0000-0000-000000000000", "--type", "inventory", "--every", "daily")
	fails("--enabled or --disabled, not both", "schedule", "set", "--credential", id, "--type", "products_full", "--enabled", "--disabled")

	list := b.ok(t, "", "schedule", "list")
	assert.Contains(t, list, sid)
	assert.Regexp(t, `products_full\s+every 5h\s+on\s+\S+ \S+ Europe/Paris\s+never`, list)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(b.ok(t, "", "schedule", "list", "--json")), &rows))
	require.Len(t, rows, 1)

	// run: due now; --wait runs it here
	assert.Contains(t, b.ok(t, "", "schedule", "run", sid), "due now")
	var due bool
	require.NoError(t, b.db.QueryRow(ctx, `select next_run_at <= now() from kiotviet_sync_schedules where id = $1`, sid).Scan(&due))
	assert.True(t, due)
	out = b.ok(t, "", "schedule", "run", sid, "--wait")
	assert.Contains(t, out, "success: 128 records")
	var lastRun, completed time.Time
	require.NoError(t, b.db.QueryRow(ctx, `select s.last_run_at, l.completed_at from kiotviet_sync_schedules s
		join kiotviet_sync_logs l on l.schedule_id = s.id where s.id = $1`, sid).Scan(&lastRun, &completed))
	assert.True(t, lastRun.Equal(completed), "the run is the schedule's last sync")
	// while the credential syncs, --wait is refused
	runID, err := b.storeStart(t, id)
	require.NoError(t, err)
	fails("already syncing", "schedule", "run", sid, "--wait")
	b.ok(t, "", "schedule", "run", sid)
	assert.Contains(t, b.ok(t, "", "dispatch"), "nothing could start: 1 due schedule(s) wait for a run of their credential",
		"dispatch says why a due schedule did not start")
	assert.Regexp(t, `products_full .*waiting: the credential is syncing`, b.ok(t, "", "status"))
	_, err = b.db.Exec(ctx, `update kiotviet_sync_logs set status = 'failed', completed_at = now() where id = $1`, runID)
	require.NoError(t, err)

	// pause, resume
	assert.Contains(t, b.ok(t, "", "schedule", "pause", sid, "--reason", "shop closed for Tết"), "paused")
	assert.Contains(t, b.ok(t, "", "status"), "paused: shop closed for Tết")
	assert.Contains(t, b.ok(t, "", "schedule", "list"), "paused: shop closed for Tết")
	fails("resume it first", "schedule", "run", sid)
	assert.Contains(t, b.ok(t, "", "schedule", "resume", sid), "1 schedule(s) resumed")
	_, _, _, _, enabled, paused := sched()
	assert.True(t, enabled)
	assert.Nil(t, paused)
	fails("is not paused", "schedule", "resume", sid)
	fails("has no paused schedule", "schedule", "resume", "--credential", id)
	b.ok(t, "", "schedule", "pause", sid)
	assert.Contains(t, b.ok(t, "", "schedule", "resume", "--credential", id), "1 schedule(s) resumed")
	b.ok(t, "", "schedule", "set", "--credential", id, "--type", "products_full", "--disabled")
	fails("switch it on first", "schedule", "run", sid)

	// delete
	assert.Contains(t, b.ok(t, "", "schedule", "delete", sid), "deleted")
	assert.NotContains(t, b.ok(t, "", "schedule", "list"), sid)
	fails("no schedule", "schedule", "delete", sid)
	fails("no schedule", "schedule", "run", sid)
	fails("no schedule", "schedule", "pause", sid)
	fails("no schedule", "schedule", "resume", sid)

	// bad ids and subcommands
	fails("not a schedule id", "schedule", "run", "abc")
	fails("give the schedule's id", "schedule", "run")
	fails("give the schedule's id", "schedule", "delete")
	fails("give a schedule id or --credential", "schedule", "resume")
	fails("unknown subcommand", "schedule", "frobnicate")
	fails("say list, set, run", "schedule")
}

func (b *cliBundle) storeStart(t *testing.T, credID string) (string, error) {
	t.Helper()
	var id string
	err := b.db.QueryRow(context.Background(), `select public.kiotviet_start_run($1, 'attributes', 'manual', 'other', 120)`, credID).Scan(&id)
	return id, err
}

// The progress line shows a share once KiotViet's total is known, never past 100%.
func TestProgressText(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "products: 45% (4,500 of 10,000), 45 pages, 4,530 records",
		progressText(store.Progress{Stream: "products", Done: 4500, Total: 10000, Pages: 45, Records: 4530}))
	assert.Equal(t, "categories: 0 pages, 0 records", progressText(store.Progress{Stream: "categories"}),
		"no total yet: no share")
	assert.Equal(t, "starting: 0 pages, 0 records", progressText(store.Progress{}))
	assert.Equal(t, "products: 100% (1,010 of 1,000), 11 pages, 1,010 records",
		progressText(store.Progress{Stream: "products", Done: 1010, Total: 1000, Pages: 11, Records: 1010}),
		"a window read again stops at 100%")
}

// CLI errors from the database are in words: the rule, never the internal function or SQL codes; a
// database that does not answer is said so, with what to run.
func TestDatabaseErrorsAreWorded(t *testing.T) {
	t.Parallel()
	err := dbError("sync", &errs.Error{Op: "kiotviet_start_run", Code: errs.Invalid, SQLState: "22023",
		Message: "syncType must be one of categories, products"})
	assert.Equal(t, "sync: syncType must be one of categories, products", err.Error())
	assert.Equal(t, errs.Invalid, errs.CodeOf(err), "the store error stays wrapped")
	err = dbError("status", &errs.Error{Op: "kiotviet_status", Code: errs.Internal, Message: "dial tcp 127.0.0.1:1: connect: connection refused"})
	assert.Contains(t, err.Error(), "status: the database did not answer")
	assert.Contains(t, err.Error(), "kvsync doctor")
	assert.NotContains(t, err.Error(), "kiotviet_status")

	b := cliSetup(t)
	b.env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"
	for _, args := range [][]string{{"status"}, {"schedule", "list"}, {"credentials", "list"}} {
		_, _, err := b.cli(t, "", args...)
		require.Error(t, err, strings.Join(args, " "))
		assert.NotContains(t, err.Error(), "kiotviet_", "no internal function names: %s", err)
		assert.Regexp(t, `database|DATABASE_URL`, err.Error())
	}
}
