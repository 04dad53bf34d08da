// Package testdb gives tests a real, migrated PostgreSQL 15 with pg_cron, pgTAP and the Supabase
// stand-ins. The database comes from TEST_DATABASE_URL when it is set (make test sets it); otherwise the
// first test to ask starts the project's test cluster with scripts/db.sh (one cluster serves every test
// package of a `go test ./...` run) and migrates it.
//
// Isolation, as River's test kit does it: DB gives a test that must commit (a sync, a dispatcher, a
// killed process) a database of its own, cloned from a migrated template and dropped when the test ends,
// so such tests run side by side (t.Parallel) in every package at once. Tx gives a transaction on the
// shared database, rolled back at the end of the test. Exclusive is for the few tests that need the
// shared database itself, the one pg_cron's scheduler runs jobs in (cron.database_name): they run one
// after another.
package testdb

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/supabase"
)

// Folder of the cluster tests start when TEST_DATABASE_URL is unset; its port is CheckoutPort(0), apart
// from the development cluster (scripts/db.sh's default 54329), so tests never touch a developer's data.
// KVSYNC_TEST_DB_PORT picks another port (make test sets TEST_DATABASE_URL to a cluster on a free port
// instead).
const testDir = ".local/pg-test"

// CheckoutPort is the port of the n-th cluster a plain `go test` (without make test's free ports)
// starts for this checkout: derived from the checkout's folder, in 61000–64999 (above Linux's ephemeral
// range, and apart from scripts/ports.sh's 20000–31999), so two checkouts' plain `go test` runs on one
// machine start clusters of their own instead of failing on one fixed port. n is 0 for the shared test
// cluster, 1 and 2 for the throwaway ones of the outage and adoption tests.
func CheckoutPort(n int) string {
	root, err := RepoRoot()
	if err != nil {
		root = "."
	}
	h := fnv.New32a()
	h.Write([]byte(root))
	return strconv.Itoa(61000 + int(h.Sum32()%1300)*3 + n)
}

// Template is the database DB clones, made by `scripts/db.sh template` from the migrated shared
// database, emptied of rows and labelled with its migrations (see templateCurrent).
const Template = "kvsync_template"

// clonePrefix names the databases DB makes; scripts/db.sh template drops any a killed run left behind.
const clonePrefix = "kvsync_test_"

// cluster is what every test of one test binary shares: prepared once.
type cluster struct {
	url      string        // the shared, migrated database
	admin    *pgxpool.Pool // on it: creates and drops the clones
	settings []string      // the template's ALTER DATABASE … SET names, which a clone does not inherit
	tmplErr  error         // why DB cannot clone (the template is missing or behind); Tx and URL still work
}

var (
	once    sync.Once
	shared  cluster
	onceErr error
)

func get(t testing.TB) *cluster {
	t.Helper()
	once.Do(func() { onceErr = prepare(&shared) })
	if onceErr != nil {
		t.Fatalf("test database: %v", onceErr)
	}
	return &shared
}

// URL returns the URL of the shared, migrated test database, starting and migrating it on first use.
func URL(t testing.TB) string {
	t.Helper()
	return get(t).url
}

func prepare(c *cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ms, err := migrate.Load(supabase.Migrations)
	if err != nil {
		return err
	}
	c.url = os.Getenv("TEST_DATABASE_URL")
	if c.url == "" {
		// Our own cluster: start it, migrate it and bring its template up to date. Test binaries of one
		// `go test ./...` run start at once, and the template is made while nobody else uses the cluster
		// (scripts/db.sh template restarts it), so the whole of this runs under a lock file.
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		port := cmp.Or(os.Getenv("KVSYNC_TEST_DB_PORT"), CheckoutPort(0))
		unlock, err := lockFile(filepath.Join(root, ".local", "testdb-"+port+".lock"))
		if err != nil {
			return err
		}
		defer unlock()
		if c.url, err = dbsh(ctx, root, port, "up"); err != nil {
			return err
		}
		if err := migrateURL(ctx, c.url, ms); err != nil {
			return err
		}
		if err := templateCurrent(ctx, c.url); err != nil {
			if _, err := dbsh(ctx, root, port, "template"); err != nil {
				return err
			}
		}
	} else if err := migrateURL(ctx, c.url, ms); err != nil {
		return err
	}
	if c.tmplErr = templateCurrent(ctx, c.url); c.tmplErr != nil {
		c.tmplErr = fmt.Errorf("%w; make test makes it, and so does `scripts/db.sh template` for a cluster of "+
			"scripts/db.sh (KVSYNC_DB_PORT, KVSYNC_DB_DIR), run after migrating and while nothing else uses it", c.tmplErr)
	}
	if c.admin, err = pgxpool.New(ctx, c.url); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	rows, err := c.admin.Query(ctx, `select split_part(c, '=', 1) from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
		where s.setrole = 0 and s.setdatabase = (select oid from pg_catalog.pg_database where datname = $1)`, Template)
	if err == nil {
		c.settings, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return fmt.Errorf("the template's settings: %w", err)
	}
	return nil
}

func migrateURL(ctx context.Context, url string, ms []migrate.Migration) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer conn.Close(ctx)
	_, err = migrate.Apply(ctx, conn, ms)
	return err
}

// templateCurrent says whether the template holds exactly the shared database's migrations, from the
// label scripts/db.sh template gives it (the same expression): connecting to the template to look would
// make every clone taken meanwhile fail ("source database is being accessed by other users").
func templateCurrent(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer conn.Close(ctx)
	var exists, current bool
	err = conn.QueryRow(ctx, `select count(*) > 0, coalesce(bool_and(pg_catalog.shobj_description(d.oid, 'pg_database') =
		  'kvsync test template, migrations ' || (select md5(string_agg(version, ',' order by version))
		                                          from supabase_migrations.schema_migrations)), false)
		from pg_catalog.pg_database d where d.datname = $1`, Template).Scan(&exists, &current)
	switch {
	case err != nil:
		return fmt.Errorf("look for the template database %s: %w", Template, err)
	case !exists:
		return fmt.Errorf("the test database's cluster has no template database %s", Template)
	case !current:
		return fmt.Errorf("the template database %s is not migrated as far as the test database", Template)
	}
	return nil
}

// dbsh runs scripts/db.sh on the test cluster and returns what it printed (a URL).
func dbsh(ctx context.Context, root, port, command string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "db.sh"), command)
	cmd.Env = append(os.Environ(), "KVSYNC_DB_PORT="+port, "KVSYNC_DB_DIR="+testDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/db.sh %s: %w (set TEST_DATABASE_URL, or run 'make deps' as root)", command, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// lockFile holds an exclusive lock on path (created if needed) until the returned function is called.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// DB returns a pool on a database of the test's own: a copy of the migrated template, with no rows in
// kvsync's tables, dropped (whoever is still connected) when the test ends. Tests that commit through
// the code under test take one and may then run in parallel. pool.Config().ConnString() is its URL, for
// a child process. pg_cron's scheduler never runs jobs here (it runs them only in the shared database):
// a test that waits for a real tick uses Exclusive.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	c := get(t)
	if c.tmplErr != nil {
		t.Fatalf("a database of the test's own: %v", c.tmplErr)
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("a database of the test's own needs TEST_DATABASE_URL as a postgres:// URL (got %q)", c.url)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	name := clonePrefix + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ident := pgx.Identifier{name}.Sanitize()
	// file_copy: a checkpoint and a copy of the template's files, faster for a small database than
	// WAL_LOG's page by page (measured: 30 ms against 70 ms a clone).
	if _, err := c.admin.Exec(ctx, "create database "+ident+" template "+pgx.Identifier{Template}.Sanitize()+" strategy file_copy"); err != nil {
		t.Fatalf("create a database of the test's own: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.admin.Exec(ctx, "drop database if exists "+ident+" with (force)"); err != nil {
			t.Errorf("drop the test's database %s: %v", name, err)
		}
	})
	// A clone inherits no ALTER DATABASE … SET (the stand-ins' search_path): the admin session started
	// with the shared database's, which the template was copied from.
	for _, s := range c.settings {
		if _, err := c.admin.Exec(ctx, "alter database "+ident+" set "+pgx.Identifier{s}.Sanitize()+" from current"); err != nil {
			t.Fatalf("copy the template's setting %s: %v", s, err)
		}
	}
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
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

// Exclusive gives the test the shared database's data tables to itself, across every test package
// running at the same time: it holds an advisory lock until the test ends and empties kvsync's tables
// first. Only for a test that needs the shared database itself (pg_cron's scheduler runs jobs there and
// nowhere else); any other test that must commit takes DB.
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
