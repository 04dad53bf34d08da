package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/config"
	"github.com/kvsync/kvsync/internal/redact"
)

const cronUsage = `
Usage: kvsync cron install --url URL [--secret-from-env=true]
       kvsync cron uninstall

install stores the two Supabase Vault secrets the job reads (kiotviet_dispatcher_url = URL,
kiotviet_cron_secret = $KIOTVIET_CRON_SECRET; created, or updated when they exist) and (re)installs the
pg_cron jobs kiotviet-sync-scheduler (*/5 * * * *, select public.kiotviet_dispatch()) and kiotviet-purge,
replacing the earlier system's anon-key job. URL is where the database can reach kvsync's dispatcher:
  hosted kvsync:                   https://kvsync.example.com/functions/v1/kiotviet-schedule-sync
  supabase start, kvsync on host:  http://host.docker.internal:8080/functions/v1/kiotviet-schedule-sync
  make run (no Docker):            http://127.0.0.1:8080/functions/v1/kiotviet-schedule-sync
uninstall unschedules both jobs; the Vault secrets and the run history stay.
Both are DBA operations: they need DATABASE_URL as the postgres user (PostgREST cannot do them).`

// Names of what cron install writes; kiotviet_dispatch() reads the secrets by these names.
const (
	vaultURLName    = "kiotviet_dispatcher_url"
	vaultSecretName = "kiotviet_cron_secret"
	cronJobName     = "kiotviet-sync-scheduler"
	cronPurgeName   = "kiotviet-purge"
	cronSchedule    = "*/5 * * * *"
	cronCommand     = "select public.kiotviet_dispatch()"
	dispatcherPath  = "/functions/v1/kiotviet-schedule-sync"
)

func cmdCron(ctx context.Context, e env) error {
	sub, e, ok, err := takeSubcommand(e, "cron", cronUsage, "install", "uninstall")
	if !ok {
		return err
	}
	fs := newFlags(e, "cron "+sub, cronUsage)
	var rawURL *string
	var fromEnv *bool
	if sub == "install" {
		rawURL = fs.String("url", "", "the dispatcher's URL as the database reaches it (see above)")
		fromEnv = fs.Bool("secret-from-env", true, "store $KIOTVIET_CRON_SECRET as kiotviet_cron_secret; false keeps the Vault's")
	} else if sub != "uninstall" {
		return unknownSubcommand("cron", sub, "install", "uninstall")
	}
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if sub == "install" {
		if err := checkDispatcherURL(*rawURL); err != nil {
			return fmt.Errorf("cron install: --url: %w", err)
		}
	}
	a, err := newApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.close()
	if a.pool == nil {
		return fmt.Errorf("cron %s: installing pg_cron jobs and Vault secrets is a DBA operation that needs a direct "+
			"connection: set DATABASE_URL (the postgres user's URL; Supabase: Project Settings > Database); "+
			"SUPABASE_URL + a service key (PostgREST) cannot do it", sub)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := needCron(ctx, a.pool); err != nil {
		return fmt.Errorf("cron %s: %w", sub, err)
	}
	if sub == "uninstall" {
		return cronUninstall(ctx, e, a.pool)
	}
	sec := ""
	if *fromEnv {
		if !a.cfg.CronSecret.IsSet() {
			return fmt.Errorf("cron install: KIOTVIET_CRON_SECRET is not set: generate one (openssl rand -hex 32), give the "+
				"same value to kvsync serve, and run this again (or --secret-from-env=false to keep the Vault's; at least %d characters)",
				config.MinCronSecretLen)
		}
		sec = a.cfg.CronSecret.Reveal()
	}
	return cronInstall(ctx, e, a.pool, *rawURL, sec)
}

func checkDispatcherURL(raw string) error {
	if raw == "" {
		return errors.New("required: where the database reaches kvsync's dispatcher, e.g. https://kvsync.example.com" + dispatcherPath)
	}
	// the URL is quoted redacted: one that carries a token or a password would otherwise reach a terminal
	// or a CI log
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL: want an http(s) URL such as https://kvsync.example.com" + dispatcherPath)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redact.URL(raw))
	}
	if !strings.HasSuffix(u.Path, dispatcherPath) {
		return fmt.Errorf("%q does not end with %s, the dispatcher's route", redact.URL(raw), dispatcherPath)
	}
	return nil
}

// needCron checks that pg_cron and the Vault are there, naming what to do when they are not.
func needCron(ctx context.Context, pool *pgxpool.Pool) error {
	var cron, vault, fn bool
	err := pool.QueryRow(ctx, `select exists (select from pg_extension where extname = 'pg_cron'),
		to_regclass('vault.decrypted_secrets') is not null,
		to_regprocedure('public.kiotviet_cron_install()') is not null`).Scan(&cron, &vault, &fn)
	switch {
	case err != nil:
		return err
	case !cron:
		return errors.New("pg_cron is not installed in this database: enable it (Supabase: Database > Extensions > pg_cron; " +
			"locally: make deps, then scripts/db.sh up), then kvsync migrate")
	case !vault:
		return errors.New("the Supabase Vault (vault.decrypted_secrets) is missing: enable the supabase_vault extension " +
			"(locally: scripts/db.sh up installs the stand-in)")
	case !fn:
		return errors.New("public.kiotviet_cron_install() is missing: apply kvsync's migrations first (kvsync migrate)")
	}
	return nil
}

func cronInstall(ctx context.Context, e env, pool *pgxpool.Pool, dispatcherURL, cronSecret string) error {
	var jobs []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := upsertVaultSecret(ctx, tx, vaultURLName, dispatcherURL, "kvsync dispatcher URL"); err != nil {
			return err
		}
		if cronSecret != "" {
			if err := upsertVaultSecret(ctx, tx, vaultSecretName, cronSecret, "kvsync cron secret (= KIOTVIET_CRON_SECRET)"); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `select jobname, jobid from public.kiotviet_cron_install()`)
		if err != nil {
			return fmt.Errorf("install the jobs: %w", err)
		}
		for rows.Next() {
			var name string
			var id int64
			if err := rows.Scan(&name, &id); err != nil {
				return err
			}
			jobs = append(jobs, fmt.Sprintf("%s (job %d)", name, id))
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("cron install: %w", err)
	}
	fmt.Fprintf(e.stdout, "Vault: %s = %s\n", vaultURLName, redact.URL(dispatcherURL))
	if cronSecret != "" {
		fmt.Fprintf(e.stdout, "Vault: %s = the value of KIOTVIET_CRON_SECRET\n", vaultSecretName)
	} else {
		fmt.Fprintf(e.stdout, "Vault: %s left as it was\n", vaultSecretName)
	}
	fmt.Fprintf(e.stdout, "pg_cron: installed %s\n", strings.Join(jobs, ", "))
	fmt.Fprintln(e.stdout, "the database now calls the dispatcher every 5 minutes; check it all with 'kvsync doctor'")
	return nil
}

// upsertVaultSecret creates the named secret, or updates it when one exists (Vault names are unique, so a
// second create_secret would fail). The value goes as a parameter, never into the statement's text.
func upsertVaultSecret(ctx context.Context, tx pgx.Tx, name, value, description string) error {
	var id *string
	err := tx.QueryRow(ctx, `select id::text from vault.secrets where name = $1 order by updated_at desc limit 1`, name).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read Vault secret %s: %w", name, err)
	}
	if id != nil {
		_, err = tx.Exec(ctx, `select vault.update_secret($1::uuid, $2)`, *id, value)
	} else {
		_, err = tx.Exec(ctx, `select vault.create_secret($1, $2, $3)`, value, name, description)
	}
	if err != nil {
		return fmt.Errorf("write Vault secret %s: %w", name, err)
	}
	return nil
}

// cronUninstall is sql/cron/unschedule.sql: kvsync's jobs of the current user, a missing one not an error.
func cronUninstall(ctx context.Context, e env, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `select jobname, cron.unschedule(jobid) from cron.job
		where jobname in ($1, $2) and username = current_user order by jobid`, cronJobName, cronPurgeName)
	if err != nil {
		return fmt.Errorf("cron uninstall: %w", err)
	}
	names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name string
		var ok bool
		err := r.Scan(&name, &ok)
		return name, err
	})
	if err != nil {
		return fmt.Errorf("cron uninstall: %w", err)
	}
	if len(names) == 0 {
		fmt.Fprintln(e.stdout, "no kvsync cron job to remove (none under this database user)")
		return nil
	}
	fmt.Fprintf(e.stdout, "unscheduled %s; the Vault secrets and run history stay ('kvsync cron install' puts the jobs back)\n",
		strings.Join(names, ", "))
	return nil
}
