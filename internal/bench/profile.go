package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The database profiles every case runs under. dev is the project's development cluster as
// scripts/db.sh creates it: nothing waits for the disk. durable is what a Supabase project runs with,
// PostgreSQL's own defaults: every commit waits for its WAL to be flushed, and full page images are
// written after each checkpoint.
const (
	ProfileDev     = "dev"
	ProfileDurable = "durable"
)

// profiles are the settings of each profile. All three can change with a reload (fsync and
// full_page_writes are sighup settings, synchronous_commit a user one), so one cluster serves both.
var profiles = map[string]map[string]string{
	ProfileDev:     {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
	ProfileDurable: {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"},
}

var profileSettings = []string{"fsync", "synchronous_commit", "full_page_writes"}

// applyProfile sets the profile with ALTER SYSTEM, reloads, waits until a new connection sees it
// (children and dispatchers connect anew for every case) and checkpoints, so a profile starts clean.
func applyProfile(ctx context.Context, pool *pgxpool.Pool, name string) error {
	want := profiles[name]
	for _, k := range profileSettings {
		if _, err := pool.Exec(ctx, fmt.Sprintf("alter system set %s = '%s'", k, want[k])); err != nil {
			return fmt.Errorf("bench: database profile %s: %w (the benchmark needs a superuser on a database of its own)", name, err)
		}
	}
	if _, err := pool.Exec(ctx, "select pg_reload_conf()"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := profileIs(ctx, pool, want)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: database profile %s: the server did not take the settings within 30 s", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err := pool.Exec(ctx, "checkpoint")
	return err
}

// profileIs reports whether a fresh connection sees every setting of want.
func profileIs(ctx context.Context, pool *pgxpool.Pool, want map[string]string) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	// the pool may hand out a connection opened before the reload: ask a new backend through it
	for _, k := range profileSettings {
		var v string
		if err := conn.QueryRow(ctx, "select setting from pg_settings where name = $1", k).Scan(&v); err != nil {
			return false, err
		}
		if v != want[k] {
			conn.Conn().Close(ctx) //nolint:errcheck // a stale connection is dropped; the pool opens another
			return false, nil
		}
	}
	return true, nil
}

// resetProfile puts the database's settings back as its configuration file has them.
func resetProfile(ctx context.Context, pool *pgxpool.Pool, log io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, k := range profileSettings {
		if _, err := pool.Exec(ctx, "alter system reset "+k); err != nil {
			fmt.Fprintf(log, "bench: could not reset %s: %v\n", k, err)
			return
		}
	}
	if _, err := pool.Exec(ctx, "select pg_reload_conf()"); err != nil {
		fmt.Fprintf(log, "bench: could not reload the settings: %v\n", err)
	}
}
