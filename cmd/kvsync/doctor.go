package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/supabase"
)

func cmdDoctor(ctx context.Context, e env) error {
	fs := newFlags(e, "doctor", `
Usage: kvsync doctor

Checks, with what to do for each problem: which kinds of Supabase keys are configured; the database; the extensions pg_cron, pg_net and Vault; the
migrations; the cron job, its schedule and its last runs; the Vault secrets (never printed) and that the
cron secret equals KIOTVIET_CRON_SECRET; that the dispatcher URL answers as kvsync (it sends a WRONG secret
and expects 401, so it never starts a sync); that the encryption keys decrypt the stored credentials.
And the path that matters: that the cron job ran in the last 15 minutes and the dispatcher's recent
replies (net._http_response) were 2xx; that every active credential gets a KiotViet token (a live token
request, no data read); that no schedule's last 3 runs all failed and none is paused; that no running run
has gone a minute without a heartbeat; that the webhooks registered are still registered and active in
KiotViet, events keep arriving and none is parked. Exits non-zero when a check fails.`)
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	d := &doctor{w: e.stdout}
	defer func() {
		if d.failed == 0 {
			fmt.Fprintln(e.stdout, "\nall checks passed")
		}
	}()
	cfg, err := loadConfig(e)
	if err != nil {
		d.fail("configuration", err.Error(), "fix the variables named above (.env or the environment; see .env.example)")
		return d.result()
	}
	d.supabaseKeys(cfg)
	a, err := newApp(ctx, e, false)
	if err != nil {
		d.fail("database reachable", err.Error(), "start the database (make db-up, or supabase start) and check DATABASE_URL")
		return d.result()
	}
	defer a.close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	if a.pool == nil {
		if _, err := a.store.Status(ctx); err != nil {
			d.fail("database reachable (PostgREST)", err.Error(), "check SUPABASE_URL and SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY), and that kvsync's migrations are applied")
			return d.result()
		}
		d.pass("database reachable", "through PostgREST at "+a.cfg.SupabaseURL)
		d.skip("extensions, migrations, cron job, Vault secrets, dispatcher URL",
			"they read the database directly: set DATABASE_URL (the postgres user's URL) to check them")
	} else {
		cc := a.pool.Config().ConnConfig
		var version string
		_ = a.pool.QueryRow(ctx, "show server_version").Scan(&version)
		d.pass("database reachable", fmt.Sprintf("PostgreSQL %s at %s:%d/%s as %s", version, cc.Host, cc.Port, cc.Database, cc.User))
		ext := d.extensions(ctx, a.pool)
		d.migrations(ctx, a.pool)
		if ext.cron {
			d.cronJob(ctx, a.pool)
		}
		if ext.net {
			d.dispatcherReplies(ctx, a.pool)
		}
		if ext.vault {
			if u := d.vault(ctx, a.pool, a.cfg.CronSecret.Reveal()); u != "" {
				d.dispatcher(ctx, u)
			}
		}
	}
	d.keys(ctx, a)
	d.schedules(ctx, a)
	d.staleRuns(ctx, a)
	d.webhooks(ctx, e, a)
	d.alerts(ctx, a)
	return d.result()
}

// doctor prints one line per check and counts the failures.
type doctor struct {
	w      io.Writer
	failed int
}

func (d *doctor) pass(name, detail string) { fmt.Fprintf(d.w, "✓ %s: %s\n", name, detail) }

func (d *doctor) fail(name, detail, fix string) {
	d.failed++
	fmt.Fprintf(d.w, "✗ %s: %s\n    fix: %s\n", name, detail, fix)
}

func (d *doctor) warn(name, detail, fix string) {
	fmt.Fprintf(d.w, "! %s: %s\n    to do: %s\n", name, detail, fix)
}

func (d *doctor) skip(name, why string) { fmt.Fprintf(d.w, "- %s: not checked: %s\n", name, why) }

func (d *doctor) result() error {
	if d.failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed: see the fixes above", d.failed)
	}
	return nil
}

type extensions struct{ cron, net, vault bool }

func (d *doctor) extensions(ctx context.Context, pool *pgxpool.Pool) extensions {
	var x extensions
	var vaultExt bool
	err := pool.QueryRow(ctx, `select
		exists (select from pg_extension where extname = 'pg_cron'),
		exists (select from pg_extension where extname = 'pg_net'),
		exists (select from pg_extension where extname = 'supabase_vault'),
		to_regclass('vault.decrypted_secrets') is not null`).Scan(&x.cron, &x.net, &vaultExt, &x.vault)
	if err != nil {
		d.fail("extensions", err.Error(), "check that DATABASE_URL is the postgres user's")
		return x
	}
	if x.cron {
		d.pass("pg_cron", "installed")
	} else {
		d.fail("pg_cron", "not installed", "Supabase: Database > Extensions > pg_cron; locally: make deps, then make db-up; then kvsync migrate")
	}
	if x.net {
		d.pass("pg_net", "installed")
	} else {
		d.fail("pg_net", "not installed", "Supabase: Database > Extensions > pg_net; locally: make deps, then make db-up; then kvsync migrate")
	}
	switch {
	case vaultExt && x.vault:
		d.pass("Vault", "supabase_vault installed")
	case x.vault:
		d.pass("Vault", "vault schema present (local stand-in, sql/local/supabase.sql)")
	default:
		d.fail("Vault", "neither the supabase_vault extension nor vault.decrypted_secrets exists",
			"Supabase: Database > Extensions > supabase_vault; locally: make db-up installs the stand-in")
	}
	return x
}

func (d *doctor) migrations(ctx context.Context, pool *pgxpool.Pool) {
	ms, err := migrate.Load(supabase.Migrations)
	if err != nil {
		d.fail("migrations", err.Error(), "this build's embedded migrations are broken: rebuild kvsync")
		return
	}
	rows, err := pool.Query(ctx, `select version from supabase_migrations.schema_migrations`)
	if err != nil {
		d.fail("migrations", "no supabase_migrations.schema_migrations: nothing applied yet", "kvsync migrate (or supabase db push)")
		return
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		d.fail("migrations", err.Error(), "kvsync migrate")
		return
	}
	have := map[string]bool{}
	for _, v := range versions {
		have[v] = true
	}
	var missing []string
	for _, m := range ms {
		if !have[m.Version] {
			missing = append(missing, m.Version+"_"+m.Name)
		}
	}
	if len(missing) > 0 {
		d.fail("migrations", fmt.Sprintf("%d of %d not applied: %s", len(missing), len(ms), strings.Join(missing, ", ")),
			"kvsync migrate (or supabase db push)")
		return
	}
	d.pass("migrations", fmt.Sprintf("all %d applied (newest %s)", len(ms), ms[len(ms)-1].Version))
}

// bearer hides a token that an earlier job's command may carry in a return message.
var bearer = regexp.MustCompile(`(?i)(bearer\s+)[^\s"',]+`)

func (d *doctor) cronJob(ctx context.Context, pool *pgxpool.Pool) {
	const name = "cron job " + cronJobName
	const fix = "kvsync cron install --url <the dispatcher's URL> (see 'kvsync cron --help')"
	var jobID int64
	var schedule, command string
	var active bool
	err := pool.QueryRow(ctx, `select jobid, schedule, command, active from cron.job where jobname = $1
		order by (command = $2) desc, jobid desc limit 1`, cronJobName, cronCommand).Scan(&jobID, &schedule, &command, &active)
	if errors.Is(err, pgx.ErrNoRows) {
		d.fail(name, "missing: nothing calls the dispatcher, so no schedule runs", fix)
		return
	}
	if err != nil {
		d.fail(name, err.Error(), "check that DATABASE_URL is the postgres user's (cron.job must be readable)")
		return
	}
	switch {
	case schedule != cronSchedule || command != cronCommand:
		d.fail(name, fmt.Sprintf("is %q running %q; expected %q running %q", schedule, oneLine(bearer.ReplaceAllString(command, "${1}<redacted>"), 80),
			cronSchedule, cronCommand), fix)
		return
	case !active:
		d.fail(name, "exists but is inactive", fmt.Sprintf("select cron.alter_job(%d, active := true); or %s", jobID, fix))
		return
	}
	var status, msg string
	var start *time.Time
	err = pool.QueryRow(ctx, `select status, coalesce(return_message, ''), start_time from cron.job_run_details
		where jobid = $1 order by start_time desc nulls last limit 1`, jobID).Scan(&status, &msg, &start)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		d.pass(name, fmt.Sprintf("job %d, %s; no run yet (it runs every 5 minutes: once it has, doctor checks it keeps running)", jobID, cronSchedule))
	case start != nil && time.Since(*start) > cronStale:
		d.fail(name, fmt.Sprintf("its last run was %s: pg_cron is not firing the job", ago(start, time.Now())),
			"pg_cron's scheduler must run in this database (cron.database_name; Supabase: Database > Cron); "+
				"see select * from cron.job_run_details order by start_time desc limit 5")
	case err != nil:
		d.fail(name, "reading cron.job_run_details: "+err.Error(), "check that DATABASE_URL is the postgres user's")
	case status == "failed":
		d.fail(name, fmt.Sprintf("its last run (%s) failed: %s", ago(start, time.Now()), oneLine(bearer.ReplaceAllString(msg, "${1}<redacted>"), 160)),
			"see sql/cron/verify.sql; usually a missing migration (kvsync migrate) or pg_net")
	default:
		d.pass(name, fmt.Sprintf("job %d, %s; last run %s %s", jobID, cronSchedule, ago(start, time.Now()), status))
	}
}

// cronStale: the job runs every 5 minutes; three missed ticks mean it is not firing.
const cronStale = 15 * time.Minute

// dispatcherReplies reads what the dispatcher answered the cron's calls lately (pg_net keeps the replies in
// net._http_response): every sync depends on those being 2xx.
func (d *doctor) dispatcherReplies(ctx context.Context, pool *pgxpool.Pool) {
	const name = "dispatcher replies"
	rows, err := pool.Query(ctx, `select status_code, coalesce(timed_out, false), coalesce(error_msg, ''), created
		from net._http_response where created > now() - interval '1 hour' order by created desc limit 3`)
	if err != nil {
		d.fail(name, "reading net._http_response: "+redact.Error(err).Error(), "check that DATABASE_URL is the postgres user's")
		return
	}
	type reply struct {
		code     *int
		timedOut bool
		msg      string
		at       time.Time
	}
	var got []reply
	for rows.Next() {
		var r reply
		if err := rows.Scan(&r.code, &r.timedOut, &r.msg, &r.at); err != nil {
			rows.Close()
			d.fail(name, err.Error(), "check that DATABASE_URL is the postgres user's")
			return
		}
		got = append(got, r)
	}
	rows.Close()
	if len(got) == 0 {
		d.pass(name, "none in the last hour (the cron has not called the dispatcher, or pg_net purged them)")
		return
	}
	var seen []string
	var bad *reply
	for i, r := range got {
		switch {
		case r.code == nil || r.timedOut:
			seen = append(seen, "no answer")
		default:
			seen = append(seen, fmt.Sprint(*r.code))
		}
		if bad == nil && (r.code == nil || r.timedOut || *r.code < 200 || *r.code >= 300) {
			bad = &got[i]
		}
	}
	if bad == nil {
		d.pass(name, fmt.Sprintf("the last %d were %s", len(got), strings.Join(seen, ", ")))
		return
	}
	detail := fmt.Sprintf("the last %d were %s", len(got), strings.Join(seen, ", "))
	switch {
	case bad.code == nil || bad.timedOut:
		d.fail(name, detail+": "+oneLine(redact.String(bad.msg), 120),
			"kvsync serve must be reachable from the database at the Vault URL kiotviet_dispatcher_url (see the dispatcher URL check)")
	case *bad.code == http.StatusUnauthorized || *bad.code == http.StatusForbidden:
		d.fail(name, detail+": the dispatcher refuses the cron's secret",
			"kvsync cron install --url <the dispatcher's URL> with the KIOTVIET_CRON_SECRET kvsync serve uses")
	case *bad.code == http.StatusNotFound:
		d.fail(name, detail+": wrong path or host", "the URL must end in "+dispatcherPath+": kvsync cron install --url …")
	default:
		d.fail(name, detail, "see kvsync serve's log for what failed at "+bad.at.Format(time.RFC3339))
	}
}

// vault checks both secrets and returns the dispatcher URL (or "" when it is missing).
func (d *doctor) vault(ctx context.Context, pool *pgxpool.Pool, cronSecret string) string {
	const fix = "kvsync cron install --url <the dispatcher's URL> (with KIOTVIET_CRON_SECRET set)"
	rows, err := pool.Query(ctx, `select name, coalesce(decrypted_secret, '') from vault.decrypted_secrets where name in ($1, $2)
		order by updated_at`, vaultURLName, vaultSecretName)
	if err != nil {
		d.fail("Vault secrets", err.Error(), "check that DATABASE_URL is the postgres user's (vault.decrypted_secrets must be readable)")
		return ""
	}
	got := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			rows.Close()
			d.fail("Vault secrets", err.Error(), fix)
			return ""
		}
		got[n] = v // the newest wins, as in kiotviet_dispatch()
	}
	rows.Close()
	dispatcherURL := got[vaultURLName]
	if dispatcherURL == "" {
		d.fail("Vault secret "+vaultURLName, "missing: kiotviet_dispatch() sends nothing", fix)
	} else {
		d.pass("Vault secret "+vaultURLName, dispatcherURL)
	}
	stored := got[vaultSecretName]
	switch {
	case stored == "":
		d.fail("Vault secret "+vaultSecretName, "missing: kiotviet_dispatch() sends nothing", fix)
	case cronSecret == "":
		d.fail("Vault secret "+vaultSecretName, "present, but KIOTVIET_CRON_SECRET is not set here, so it cannot be compared "+
			"(and kvsync serve would refuse the cron's calls)", "set KIOTVIET_CRON_SECRET to the value kvsync serve uses")
	case subtle.ConstantTimeCompare([]byte(stored), []byte(cronSecret)) != 1:
		d.fail("Vault secret "+vaultSecretName, "present, but differs from KIOTVIET_CRON_SECRET: the dispatcher answers the cron with 401",
			"kvsync cron install --url "+cmpURL(dispatcherURL)+" (stores the current KIOTVIET_CRON_SECRET)")
	default:
		d.pass("Vault secret "+vaultSecretName, "present and equal to KIOTVIET_CRON_SECRET")
	}
	return dispatcherURL
}

func cmpURL(u string) string {
	if u == "" {
		return "<the dispatcher's URL>"
	}
	return u
}

// dispatcher proves that kvsync answers at the URL without starting anything: a POST with a wrong
// secret must get kvsync's 401 reply.
func (d *doctor) dispatcher(ctx context.Context, rawURL string) {
	const name = "dispatcher URL"
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		d.fail(name, fmt.Sprintf("%q is not a URL", rawURL), "kvsync cron install --url <the dispatcher's URL>")
		return
	}
	status, body, err := probe(ctx, u.String())
	note := ""
	if err != nil && isHostOnlyName(u.Hostname()) {
		// The URL is as the database container sees the host; from here the host is 127.0.0.1.
		local := *u
		local.Host = net.JoinHostPort("127.0.0.1", cmpPort(u))
		if s, b, lerr := probe(ctx, local.String()); lerr == nil {
			status, body, err = s, b, nil
			note = fmt.Sprintf(" (probed as %s: %s is the host as the database container sees it)", local.Host, u.Hostname())
		}
	}
	var reply struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &reply)
	switch {
	case err != nil:
		d.fail(name, fmt.Sprintf("%s does not answer: %v", rawURL, err),
			"start kvsync serve there; the URL must be reachable from the database (supabase start: http://host.docker.internal:8080"+dispatcherPath+")")
	case status == http.StatusUnauthorized && reply.Success != nil && !*reply.Success:
		d.pass(name, fmt.Sprintf("%s is kvsync (a wrong secret gets 401)%s", rawURL, note))
	case status == http.StatusUnauthorized:
		d.fail(name, fmt.Sprintf("%s answers 401 but not as kvsync (a gateway? %s)", rawURL, oneLine(string(body), 80)),
			"point kiotviet_dispatcher_url at kvsync itself (kvsync cron install --url ...), not at a gateway that checks JWTs")
	case status == http.StatusNotFound:
		d.fail(name, fmt.Sprintf("%s answers 404: wrong host or path", rawURL), "the path must be "+dispatcherPath+"; kvsync cron install --url ...")
	case status < 300:
		d.fail(name, fmt.Sprintf("%s ACCEPTED a wrong secret (%d)", rawURL, status),
			"this is not kvsync's dispatcher, or it runs without authentication: check what serves that URL")
	default:
		d.fail(name, fmt.Sprintf("%s answers %d: %s", rawURL, status, oneLine(string(body), 80)), "check kvsync serve's log")
	}
}

func probe(ctx context.Context, target string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader("{}"))
	if err != nil {
		return 0, nil, redact.Error(err)
	}
	var wrong [16]byte
	_, _ = rand.Read(wrong[:])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer kvsync-doctor-wrong-secret-"+hex.EncodeToString(wrong[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, redact.Error(err) // the URL comes from Vault and may carry a token
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, body, nil
}

// isHostOnlyName: names that mean "the host" only from inside a container.
func isHostOnlyName(h string) bool {
	return h == "host.docker.internal" || h == "host.containers.internal" || h == "gateway.docker.internal"
}

func cmpPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// token asks KiotViet for a token with a credential's client id and secret, as every run does first: the
// check that the credential still works, without reading any data (a token request is not a GET of the
// shop's hourly budget).
func (d *doctor) token(ctx context.Context, a *app, c store.Credential, clientSecret string) {
	name := fmt.Sprintf("KiotViet token for %s (credential %s)", c.RetailerName, c.ID)
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cfg := a.kiotviet
	cfg.MaxAttempts = 1
	_, err := kiotviet.FetchToken(tctx, cfg, kiotviet.Credentials{Retailer: c.RetailerName, ClientID: c.ClientID, ClientSecret: clientSecret})
	switch {
	case err == nil:
		d.pass(name, "KiotViet issues one")
	case kiotviet.CredentialsRejected(err):
		d.fail(name, "KiotViet rejects the client id or secret: "+redact.Error(err).Error(),
			"the shop owner changed them or removed API access: save the connection again in the ERP's settings, "+
				"or printf %s \"$SECRET\" | kvsync credentials add --retailer "+c.RetailerName+" --client-id <client id>")
	default:
		d.fail(name, "KiotViet does not answer: "+redact.Error(err).Error(),
			"check the network and KIOTVIET_TOKEN_URL ("+redact.String(cfg.TokenURL)+"); every sync fails until it answers")
	}
}

// failedRuns: this many scheduled runs in a row failing means the schedule is broken, not unlucky.
const failedRuns = 3

// schedules: none has failed its last failedRuns runs, and none is paused.
func (d *doctor) schedules(ctx context.Context, a *app) {
	rows, err := a.store.Status(ctx)
	if err != nil {
		d.fail("schedules", err.Error(), "kvsync migrate")
		return
	}
	bad := 0
	for _, r := range rows {
		name := fmt.Sprintf("schedule %s %s (%s)", deref(r.RetailerName, r.CredentialID), r.SyncType, r.ScheduleID)
		switch {
		case r.PausedReason != nil:
			bad++
			d.fail(name, "paused: "+*r.PausedReason,
				"fix the cause, then kvsync schedule resume "+r.ScheduleID+" (saving the connection again resumes it too)")
		case r.ConsecutiveFailures >= failedRuns:
			bad++
			retry := ""
			if r.NextRetryAt != nil {
				retry = "; next retry " + deref(r.NextRunLocal, "-")
			}
			d.fail(name, fmt.Sprintf("its last %d runs failed: %s%s", r.ConsecutiveFailures, oneLine(deref(r.LastError, "no error recorded"), 160), retry),
				"see the error; kvsync sync --credential "+r.CredentialID+" --type "+r.SyncType+" runs it now with the streams' errors")
		}
	}
	if bad == 0 {
		d.pass("schedules", fmt.Sprintf("%d, none paused, none with its last %d runs failed", len(rows), failedRuns))
	}
}

// staleBeat: the engine beats every ≤ 10 s; a minute without one means the worker is gone or stuck.
const staleBeat = time.Minute

func (d *doctor) staleRuns(ctx context.Context, a *app) {
	runs, err := a.store.StaleRuns(ctx, staleBeat)
	if err != nil {
		d.fail("running runs", err.Error(), "kvsync migrate")
		return
	}
	for _, r := range runs {
		d.fail(fmt.Sprintf("run %s (%s %s)", r.RunID, deref(r.RetailerName, "?"), r.SyncType),
			fmt.Sprintf("still running, but worker %s has not beaten for %s (lease until %s)", deref(r.Worker, "?"),
				human(time.Duration(r.SecondsSinceHeartbeat)*time.Second), tsOr(r.LeaseExpiresAt)),
			"the worker died or hangs: check its log; once the lease expires the next dispatcher tick (or kvsync dispatch) rescues the run")
	}
	if len(runs) == 0 {
		d.pass("running runs", "every running run has a heartbeat from the last minute")
	}
}

func tsOr(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (d *doctor) keys(ctx context.Context, a *app) {
	const name = "encryption keys"
	keys, err := a.cfg.Keyring()
	if err != nil {
		d.fail(name, err.Error(), "kvsync keys generate, and put the line it prints in .env")
		return
	}
	creds, err := a.store.Credentials(ctx)
	if err != nil {
		d.fail(name, "list the credentials: "+err.Error(), "kvsync migrate")
		return
	}
	checked, stale := 0, 0
	var bad []string
	for _, c := range creds {
		if !c.IsActive {
			continue
		}
		full, err := a.store.Credential(ctx, c.ID)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s (%s): %v", c.ID, c.RetailerName, err))
			continue
		}
		checked++
		if full.EncryptedClientSecret == nil {
			bad = append(bad, fmt.Sprintf("%s (%s): no client secret stored", c.ID, c.RetailerName))
			continue
		}
		if pt, err := keys.Decrypt(*full.EncryptedClientSecret, syncer.SecretAAD(c.ID)); err != nil {
			bad = append(bad, fmt.Sprintf("%s (%s): client secret: %v", c.ID, c.RetailerName, err))
			continue
		} else {
			d.token(ctx, a, full, string(pt))
			clear(pt)
		}
		if keys.NeedsRotation(*full.EncryptedClientSecret) || keys.NeedsRotation(full.EncryptedToken) {
			stale++
		}
	}
	switch {
	case len(bad) > 0:
		d.fail(name, fmt.Sprintf("%d of %d active credential(s) do not decrypt: %s", len(bad), checked, strings.Join(bad, "; ")),
			"add the key they were saved with to "+secret.KeysEnv+" (or "+secret.LegacyEnv+"), or add those connections again (kvsync credentials add)")
	case checked == 0:
		d.pass(name, fmt.Sprintf("primary key %s loads; no active credential to decrypt yet", keys.PrimaryID()))
	default:
		d.pass(name, fmt.Sprintf("primary key %s decrypts all %d active credential(s)", keys.PrimaryID(), checked))
	}
	if stale > 0 {
		d.warn("key rotation", fmt.Sprintf("%d credential(s) still under an older key", stale), "kvsync keys rotate")
	}
}
