package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/supabase"
)

func sortedCommands() []string {
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// databaseURL is DATABASE_URL, else SUPABASE_DB_URL, as in the configuration.
func databaseURL(e env, flagValue string) (string, error) {
	for _, v := range []string{flagValue, e.getenv("DATABASE_URL"), e.getenv("SUPABASE_DB_URL")} {
		if v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("no database: set DATABASE_URL (or SUPABASE_DB_URL), or pass --db-url")
}

func cmdMigrate(ctx context.Context, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dbURL := fs.String("db-url", "", "database URL (default: $DATABASE_URL, then $SUPABASE_DB_URL)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: kvsync migrate [--db-url URL]\n\nApplies the migrations of supabase/migrations that the database lacks, recording them in\nsupabase_migrations.schema_migrations as `supabase db push` does.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(e.args); err != nil {
		return err
	}
	url, err := databaseURL(e, *dbURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ms, err := migrate.Load(supabase.Migrations)
	if err != nil {
		return err
	}
	applied, err := migrate.Apply(ctx, conn, ms)
	for _, v := range applied {
		fmt.Fprintln(e.stdout, "applied", v)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database is up to date (%d migrations)\n", len(ms))
	return nil
}
