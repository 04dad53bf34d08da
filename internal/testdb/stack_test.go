package testdb_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/migrate"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/supabase"
)

func TestMigrationsAreRecordedAndApplyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testdb.Conn(t)
	ms, err := migrate.Load(supabase.Migrations)
	require.NoError(t, err)
	require.NotEmpty(t, ms)

	applied, err := migrate.Apply(ctx, conn, ms)
	require.NoError(t, err)
	assert.Empty(t, applied, "the harness migrated already; a second run must apply nothing")

	for _, m := range ms {
		var name string
		err := conn.QueryRow(ctx, `select name from supabase_migrations.schema_migrations where version = $1`, m.Version).Scan(&name)
		require.NoError(t, err, "migration %s not recorded as the Supabase CLI records it", m.Version)
		assert.Equal(t, m.Name, name)
	}
}

// ownConn is one connection to a database of the test's own (testdb.DB): the pg_net stand-in's requests
// and responses committed there are the test's alone.
func ownConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testdb.DB(t).Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

type seen struct {
	path, auth, custom string
	body               map[string]any
}

// listener records every request it gets on a channel.
func listener(t *testing.T) (*httptest.Server, chan seen) {
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		got <- seen{path: r.URL.RequestURI(), auth: r.Header.Get("Authorization"), custom: r.Header.Get("X-Test"), body: body}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestNetHTTPPostSendsOnCommitOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, got := listener(t)
	conn := ownConn(t)
	post := `select net.http_post(url := $1, body := $2::jsonb,
		headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer s3cret', 'X-Test', $3::text),
		timeout_milliseconds := 3000)`

	// Rolled back: must never be sent.
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "set local kvsync.net_dispatch = 'sync'")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, post, srv.URL+"/rolled-back", `{"n": 1}`, "rolled-back")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	// Committed: sent at commit, with the URL, headers and body given; the response is recorded.
	tx, err = conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "set local kvsync.net_dispatch = 'sync'")
	require.NoError(t, err)
	var id int64
	require.NoError(t, tx.QueryRow(ctx, post, srv.URL+"/functions/v1/hook?x=1", `{"n": 2, "s": "q\"uote"}`, "committed").Scan(&id))
	select {
	case s := <-got:
		t.Fatalf("request %q left before commit", s.path)
	default:
	}
	require.NoError(t, tx.Commit(ctx))

	// Requests leave in commit order, so the first one to arrive must be the committed one.
	s := <-got
	assert.Equal(t, "/functions/v1/hook?x=1", s.path)
	assert.Equal(t, "Bearer s3cret", s.auth)
	assert.Equal(t, "committed", s.custom)
	assert.Equal(t, map[string]any{"n": 2.0, "s": `q"uote`}, s.body)

	var status int
	require.NoError(t, conn.QueryRow(ctx, `select status_code from net._http_response where id = $1`, id).Scan(&status))
	assert.Equal(t, http.StatusAccepted, status)
}

func TestNetHTTPPostAsyncByDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, got := listener(t)
	conn := ownConn(t)
	var id int64
	require.NoError(t, conn.QueryRow(ctx, `select net.http_post($1, '{"async": true}'::jsonb)`, srv.URL+"/async").Scan(&id))
	select {
	case s := <-got:
		assert.Equal(t, "/async", s.path)
		assert.Equal(t, map[string]any{"async": true}, s.body)
	case <-time.After(30 * time.Second):
		t.Fatal("the committed request never arrived")
	}
}

func TestAuthStandInDrivesRLSLikeSupabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := testdb.Tx(t)
	_, err := tx.Exec(ctx, "set local role authenticated")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `select set_config('request.jwt.claims', $1, true)`,
		`{"sub":"11111111-2222-3333-4444-555555555555","role":"authenticated","app_metadata":{"role":"admin"}}`)
	require.NoError(t, err)
	var uid, role, appRole string
	require.NoError(t, tx.QueryRow(ctx, `select auth.uid()::text, auth.role(), auth.jwt()->'app_metadata'->>'role'`).Scan(&uid, &role, &appRole))
	assert.Equal(t, "11111111-2222-3333-4444-555555555555", uid)
	assert.Equal(t, "authenticated", role)
	assert.Equal(t, "admin", appRole)

	var user string
	require.NoError(t, tx.QueryRow(ctx, "select current_user").Scan(&user))
	assert.Equal(t, "authenticated", user)
	_, err = tx.Exec(ctx, "select * from vault.decrypted_secrets")
	assert.ErrorContains(t, err, "permission denied", "the frontend roles must not read Vault")
}
