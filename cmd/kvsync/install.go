package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/kvsync/kvsync/internal/config"
)

const installUsage = `
Usage: kvsync install --url URL [--db-url DATABASE_URL]

Installs kvsync into a database in one go, for teams that do not use the Supabase CLI, and is safe to
run again (each step does only what is missing or changed):
  1. migrations: applies kvsync's migrations the database lacks (kvsync migrate), leaving a project's
     own migration history alone;
  2. Vault secrets and cron jobs: kiotviet_dispatcher_url = URL, kiotviet_cron_secret =
     $KIOTVIET_CRON_SECRET, the jobs kiotviet-sync-scheduler and kiotviet-purge (kvsync cron install);
  3. kvsync doctor: checks it all, the dispatcher URL answering as kvsync included.
URL is where the database reaches kvsync's dispatcher (see kvsync cron --help), e.g.
  https://kvsync.example.com/functions/v1/kiotviet-schedule-sync
It needs DATABASE_URL (or --db-url) as the postgres user and KIOTVIET_CRON_SECRET. Exits non-zero when
a step or a doctor check fails.`

func cmdInstall(ctx context.Context, e env) error {
	fs := newFlags(e, "install", installUsage)
	rawURL := fs.String("url", "", "the dispatcher's URL as the database reaches it")
	dbURL := fs.String("db-url", "", "database URL (default: $DATABASE_URL, then $SUPABASE_DB_URL)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	// Refuse what would stop a later step before the first one changes anything.
	if err := checkDispatcherURL(*rawURL); err != nil {
		return fmt.Errorf("install: --url: %w", err)
	}
	getenv, err := config.LoadDotEnv(".env", e.getenv)
	if err != nil {
		return err
	}
	if *dbURL != "" {
		outer := getenv
		getenv = func(k string) string {
			if k == "DATABASE_URL" {
				return *dbURL
			}
			return outer(k)
		}
	}
	url, err := databaseURL(env{getenv: getenv}, "")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if getenv("KIOTVIET_CRON_SECRET") == "" {
		return errors.New("install: KIOTVIET_CRON_SECRET is not set: generate one (openssl rand -hex 32), give the same value to kvsync serve, and run this again")
	}
	sub := func(args ...string) env {
		return env{args: args, getenv: getenv, stdin: e.stdin, stdout: e.stdout, stderr: e.stderr}
	}
	fmt.Fprintln(e.stdout, "== 1/3 migrations")
	if err := cmdMigrate(ctx, sub("--db-url", url)); err != nil {
		return fmt.Errorf("install: migrations: %w", err)
	}
	fmt.Fprintln(e.stdout, "== 2/3 Vault secrets and cron jobs")
	if err := cmdCron(ctx, sub("install", "--url", *rawURL)); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintln(e.stdout, "== 3/3 kvsync doctor")
	if err := cmdDoctor(ctx, sub()); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}
