// Package testdb gives tests a real, migrated PostgreSQL 15 with pg_cron, pgTAP and the Supabase
// stand-ins. The database comes from TEST_DATABASE_URL when it is set (make test sets it); otherwise the
// first test to ask starts the project's test cluster with scripts/db.sh (one cluster serves every test
// package of a `go test ./...` run) and migrates it.
//
// Isolation: Tx gives a transaction rolled back at the end of the test, so tests can run in parallel.
// Tests that must commit (a sync, a claim race) use rows of their own, or Exclusive when they need the
// shared data tables to themselves.
package testdb

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/supabase"
)

// Port and folder of the cluster tests start when TEST_DATABASE_URL is unset: apart from the development
// cluster (scripts/db.sh's defaults), so tests never touch a developer's data. KVSYNC_TEST_DB_PORT
// picks another port (make test sets TEST_DATABASE_URL to a cluster on a free port instead).
const (
	defaultTestPort = "54339"
	testDir         = ".local/pg-test"
)

var (
	once    sync.Once
	dbURL   string
	onceErr error
)

// URL returns the URL of a migrated test database, starting and migrating it on first use.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { dbURL, onceErr = prepare() })
	if onceErr != nil {
		t.Fatalf("test database: %v", onceErr)
	}
	return dbURL
}

func prepare() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "db.sh"), "up")
		cmd.Env = append(os.Environ(), "KVSYNC_DB_PORT="+cmp.Or(os.Getenv("KVSYNC_TEST_DB_PORT"), defaultTestPort), "KVSYNC_DB_DIR="+testDir)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("scripts/db.sh up: %w (set TEST_DATABASE_URL, or run 'make deps' as root)", err)
		}
		url = strings.TrimSpace(string(out))
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", url, err)
	}
	defer conn.Close(ctx)
	ms, err := migrate.Load(supabase.Migrations)
	if err != nil {
		return "", err
	}
	if _, err := migrate.Apply(ctx, conn, ms); err != nil {
		return "", err
	}
	return url, nil
}

// RepoRoot finds the module's root folder (the one holding go.mod) from the test's working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Pool returns a connection pool to the test database, closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Conn returns one connection to the test database, closed when the test ends.
func Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// Tx returns a transaction on its own connection, rolled back when the test ends: whatever the test
// writes is gone afterwards, and parallel tests never see each other's rows.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := Conn(t).Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) }) //nolint:errcheck // the connection closes next anyway
	return tx
}

// exclusiveKey is the advisory lock that Exclusive holds: tests in every package that take it run one
// after another.
const exclusiveKey = 7_246_001_114

// Exclusive gives the test the shared data tables to itself, across every test package running at the
// same time: it holds an advisory lock until the test ends and empties kvsync's tables first. Use it for
// tests that commit through code under test (a sync, a dispatcher), where a rolled-back transaction is
// not possible.
func Exclusive(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	lock := Conn(t)
	if _, err := lock.Exec(ctx, "select pg_advisory_lock($1)", exclusiveKey); err != nil {
		t.Fatalf("exclusive lock: %v", err)
	}
	pool := Pool(t)
	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		t.Fatalf("empty tables: %v", err)
	}
	return pool
}

// truncateAll empties every public kiotviet_* table (and what cascades from them).
const truncateAll = `do $$
declare names text;
begin
  select string_agg(format('public.%I', tablename), ', ') into names
    from pg_tables where schemaname = 'public' and tablename like 'kiotviet\_%';
  if names is not null then
    execute 'truncate ' || names || ' cascade';
  end if;
  delete from net.http_request_queue;
  delete from net._http_response;
end $$`
