package syncer_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/supabase"
)

// The outage test stops and starts a database under a running sync, so it has a throwaway cluster of its
// own (never the shared test cluster). make test passes a free port in KVSYNC_OUTAGE_DB_PORT.
// Without it, the port is testdb.CheckoutPort(1).
const outageDir = ".local/pg-outage"

type outageCluster struct {
	t    *testing.T
	root string
	url  string
}

func (c *outageCluster) dbsh(arg string) error {
	cmd := exec.Command(filepath.Join(c.root, "scripts", "db.sh"), arg)
	cmd.Env = append(os.Environ(), "KVSYNC_DB_PORT="+cmp.Or(os.Getenv("KVSYNC_OUTAGE_DB_PORT"), testdb.CheckoutPort(1)),
		"KVSYNC_DB_DIR="+outageDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("scripts/db.sh %s: %w: %s", arg, err, stderr.String())
	}
	if arg == "up" {
		c.url = strings.TrimSpace(string(out))
	}
	return nil
}

func newOutageCluster(t *testing.T) *outageCluster {
	t.Helper()
	root, err := testdb.RepoRoot()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".local"), 0o755))
	lock, err := os.OpenFile(filepath.Join(root, ".local", "pg-outage.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { lock.Close() })
	c := &outageCluster{t: t, root: root}
	require.NoError(t, c.dbsh("reset"))
	t.Cleanup(func() {
		if err := c.dbsh("reset"); err != nil {
			t.Errorf("delete the outage cluster: %v", err)
		}
	})
	require.NoError(t, c.dbsh("up"), "the outage test needs its own cluster (run 'make deps' as root first)")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	ms, err := migrate.Load(supabase.Migrations)
	require.NoError(t, err)
	_, err = migrate.Apply(ctx, conn, ms)
	require.NoError(t, err)
	return c
}

// A worker that loses the database mid-run keeps its outcome and finishes the run as soon as the database
// is back (well before its lease would expire), and the credential can sync again at once.
func TestRunLosingTheDatabaseFinishesWhenItIsBack(t *testing.T) {
	t.Parallel()
	c := newOutageCluster(t)
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(c.url)
	require.NoError(t, err)
	pcfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(store.PG{Pool: pool})
	keys := testKeys(t)

	fake := kiotvietfake.New(kiotvietfake.Options{Products: 600, Branches: 2, Categories: 10, Seed: 21, RateLimitPerHour: -1})
	var stopped atomic.Bool
	stopErr := make(chan error, 1)
	var productPages atomic.Int32
	h := fake.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/products" && productPages.Add(1) == 3 && stopped.CompareAndSwap(false, true) {
			stopErr <- c.dbsh("down") // the database goes away under the run, after two pages committed
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	finishFailed := make(chan struct{}, 1)
	const lease = 60 * time.Second
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "outage", Lease: lease, HeartbeatEvery: time.Second,
		KiotViet: kiotviet.Config{TokenURL: srv.URL + "/connect/token", APIURL: srv.URL, MaxAttempts: 2,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
		OnFinishFailed: func(string, error) {
			select {
			case finishFailed <- struct{}{}:
			default:
			}
		}})
	require.NoError(t, err)
	credID, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	require.NoError(t, err)

	type outcome struct {
		res syncer.Result
		err error
	}
	done := make(chan outcome, 1)
	started := time.Now()
	go func() {
		res, err := engine.Run(ctx, syncer.Request{CredentialID: credID, SyncType: "products_full"})
		done <- outcome{res, err}
	}()
	select {
	case err := <-stopErr:
		require.NoError(t, err, "stop the database")
	case o := <-done:
		t.Fatalf("the run ended before the database was stopped: %+v", o)
	}
	// The run could not finish: it keeps trying. Then the database comes back.
	select {
	case <-finishFailed:
	case o := <-done:
		t.Fatalf("the run gave up instead of retrying its finish: %+v %v", o.res, o.err)
	case <-time.After(lease):
		t.Fatal("no finish attempt while the database was down")
	}
	require.NoError(t, c.dbsh("up"))
	back := time.Now()

	var o outcome
	select {
	case o = <-done:
	case <-time.After(lease):
		t.Fatal("the run did not finish once the database was back")
	}
	require.NoError(t, o.err, "the run finished")
	assert.Contains(t, []vocab.Status{vocab.Failed, vocab.Partial}, o.res.Status)
	assert.Less(t, time.Since(back), 30*time.Second, "finished soon after the database came back")
	assert.Less(t, time.Since(started), lease, "finished before its lease would have expired")

	var status string
	var completed time.Time
	require.NoError(t, pool.QueryRow(ctx, `select status, completed_at from kiotviet_sync_logs where id = $1`, o.res.RunID).
		Scan(&status, &completed))
	assert.Equal(t, string(o.res.Status), status, "the log row holds the outcome the worker kept")
	var products int
	require.NoError(t, pool.QueryRow(ctx, `select count(*)::int from kiotviet_products_full`).Scan(&products))
	require.NotNil(t, o.res.Streams["products"])
	assert.Equal(t, o.res.Streams["products"].Count, products, "the pages committed before the outage stay, and only they")

	// the credential syncs again at once, and the shop is whole
	res, err := engine.Run(ctx, syncer.Request{CredentialID: credID, SyncType: "products_full"})
	require.NoError(t, err)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	diffs, err := synctest.Compare(ctx, pool, fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)
}
