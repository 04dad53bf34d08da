package schedulesync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/functions/schedulesync"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/vocab"
	"github.com/kvsync/kvsync/internal/wire"
)

const (
	cronSecret = "cron-secret-0123456789-0123456789-abcdef"
	serviceKey = "sb_secret_test_service_key_0123456789"
	jwtSecret  = "super-secret-jwt-token-with-at-least-32-characters-long"
)

// shops are the fake's shop names these tests schedule: each has one due categories schedule (kvsync
// keeps one schedule of a type per shop). ghostShop is not a shop the fake serves: its client id and
// secret are right, so it gets a token, and every API call answers 401 "Retailer không hợp lệ", as
// KiotViet does for a mistyped shop name: its runs fail.
var shops = []string{"shop-b", "shop-c", "shop-d", "shop-e"}

const ghostShop = "ghost-shop"

type bundle struct {
	srv *httptest.Server
	db  *pgxpool.Pool
	d   *dispatch.Dispatcher
}

// setup serves the handler over the real parts: a database of the test's own, a dispatcher (pool of 4)
// running the engine against the fake KiotViet, and the authenticator; good shops have a due schedule
// each, and with ghost one more shop whose runs fail.
func setup(t *testing.T, good int, ghost bool) *bundle {
	t.Helper()
	db := testdb.DB(t)
	s := synctest.NewStack(t, db, synctest.StackOptions{MaxAttempts: 1, NoBackoff: true,
		Fake: kiotvietfake.Options{Products: 20, Branches: 1, Seed: 5, RateLimitPerHour: -1, OtherRetailers: shops}})
	ctx := context.Background()
	names := slices.Clone(shops[:good])
	if ghost {
		names = append(names, ghostShop)
	}
	for _, name := range names {
		c := s.Fake.Credentials()
		c.Retailer = name
		credID, err := synctest.SaveCredential(ctx, s.Store, s.Keys, c)
		require.NoError(t, err)
		id, err := s.Store.UpsertSchedule(ctx, store.Schedule{CredentialID: credID, SyncType: string(vocab.Categories), Frequency: "hourly", Enabled: true})
		require.NoError(t, err)
		// due on its own grid: the slot a minute ago, the one before it a period earlier
		_, err = db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute',
			last_slot_at = now() - interval '1 minute' - public.kiotviet_schedule_interval(frequency, custom_interval_hours) where id = $1`, id)
		require.NoError(t, err)
	}
	d := dispatch.New(dispatch.Config{Store: s.Store, Runner: s.Engine, Worker: "handler-test", Concurrency: 4})
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	authn, err := auth.New(auth.Config{CronSecret: cronSecret, ServiceKeys: []string{serviceKey}, JWTSecret: jwtSecret})
	require.NoError(t, err)
	srv := httptest.NewServer(schedulesync.Handler(d, authn, nil))
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, db: db, d: d}
}

// claimed counts the scheduled runs claimed so far (each claim writes its run row).
func (b *bundle) claimed(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.QueryRow(context.Background(), `select count(*) from kiotviet_sync_logs where trigger = 'cron'`).Scan(&n))
	return n
}

// unclaimed counts the due schedules no run was claimed for.
func (b *bundle) unclaimed(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.QueryRow(context.Background(), `select count(*) from kiotviet_sync_schedules s
		where s.next_run_at <= now() and not exists (select from kiotviet_sync_logs l where l.schedule_id = s.id)`).Scan(&n))
	return n
}

func (b *bundle) post(t *testing.T, bearer, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, buf.Bytes()
}

func signed(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	require.NoError(t, err)
	return s
}

// Only the cron secret or the service role may dispatch: a signed-in user (even an admin) is
// forbidden, the anon key and no credentials are unauthorized, and none of them claims anything.
func TestDispatchCallers(t *testing.T) {
	t.Parallel()
	admin := signed(t, jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", "role": "authenticated",
		"aud": "authenticated", "app_metadata": map[string]any{"role": "admin"}})
	anon := signed(t, jwt.MapClaims{"role": "anon", "aud": "authenticated"})
	for _, tc := range []struct {
		name   string
		bearer string
		status int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"anon key", anon, http.StatusUnauthorized},
		{"admin user", admin, http.StatusForbidden},
		{"cron secret", cronSecret, http.StatusAccepted},
		{"service key", serviceKey, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 1, false)
			status, raw := b.post(t, tc.bearer, `{}`)
			assert.Equal(t, tc.status, status, string(raw))
			if status != http.StatusAccepted {
				var e wire.ErrorReply
				require.NoError(t, json.Unmarshal(raw, &e))
				assert.False(t, e.Success)
				assert.NotEmpty(t, e.Error)
				assert.Zero(t, b.claimed(t), "a refused caller claims nothing")
				assert.Equal(t, 1, b.unclaimed(t))
			}
		})
	}
}

// Bodies the handler refuses, each with a 4xx that says why, before any claim.
func TestDispatchBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, false)
	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"not JSON", `{"limit":`, http.StatusBadRequest, "JSON"},
		{"limit out of range", `{"limit":0}`, http.StatusBadRequest, "limit must be a whole number from 1 to 1000"},
		{"limit not a number", `{"limit":"5"}`, http.StatusBadRequest, "limit"},
	} {
		status, raw := b.post(t, cronSecret, tc.body)
		assert.Equal(t, tc.status, status, tc.name)
		var e wire.ErrorReply
		require.NoError(t, json.Unmarshal(raw, &e), tc.name)
		assert.Contains(t, e.Error, tc.says, tc.name)
	}
	resp, err := http.Get(b.srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Zero(t, b.claimed(t), "nothing was claimed")
}

// Without wait: 202 at once with what was claimed, in the wire type the clients decode; the limit asked
// for reaches the claim.
func TestDispatchAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, 3, false)
	status, raw := b.post(t, cronSecret, `{"limit":2}`)
	require.Equal(t, http.StatusAccepted, status, string(raw))
	var out wire.DispatchAccepted
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.True(t, out.Success)
	assert.Equal(t, 2, out.Claimed)
	require.Len(t, out.Runs, 2)
	for _, r := range out.Runs {
		assert.NotEmpty(t, r.RunID)
		assert.Equal(t, vocab.Categories, r.SyncType)
		assert.Empty(t, r.Status, "without wait the runs' outcomes are not in the reply")
	}
	assert.Equal(t, 2, b.claimed(t), "the limit reached the claim")
	assert.Equal(t, 1, b.unclaimed(t), "the third schedule waits for the next tick")
}

// With wait: 200 after the claimed runs ended, in the earlier system's shape, each run with its outcome
// as its run row in the database has it.
func TestDispatchWaitReportsEachRun(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, true)
	status, raw := b.post(t, serviceKey, `{"wait":true}`)
	require.Equal(t, http.StatusOK, status, string(raw))
	var out wire.DispatchDone
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.False(t, out.Success, "one run failed")
	assert.Equal(t, 2, out.Total)
	assert.Equal(t, 1, out.Ran)
	assert.Equal(t, 1, out.Errors)
	got := map[vocab.Status]int{}
	for _, r := range out.Runs {
		got[r.Status]++
		require.NotNil(t, r.Error)
		require.NotNil(t, r.Records)
		var status vocab.Status
		var logErr *string
		require.NoError(t, b.db.QueryRow(context.Background(), `select status, error_message from kiotviet_sync_logs where id = $1`, r.RunID).Scan(&status, &logErr))
		assert.Equal(t, status, r.Status, "the reply says what the run row says")
		if r.Status == vocab.Failed {
			require.NotNil(t, logErr)
			assert.Equal(t, *logErr, *r.Error)
			assert.Contains(t, *r.Error, "401")
		}
	}
	assert.Equal(t, map[vocab.Status]int{vocab.Success: 1, vocab.Failed: 1}, got)
}

// No limit: the dispatcher claims as many as its pool has free slots (4 of 5 due), the rest wait.
func TestDispatchClaimsThePoolsFreeSlots(t *testing.T) {
	t.Parallel()
	b := setup(t, 4, true)
	status, raw := b.post(t, cronSecret, `{}`)
	require.Equal(t, http.StatusAccepted, status, string(raw))
	var out wire.DispatchAccepted
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.Equal(t, 4, out.Claimed)
	assert.Equal(t, 4, b.claimed(t))
	assert.Equal(t, 1, b.unclaimed(t))
}

// A dispatcher that is shutting down answers 503, so pg_cron's next tick (or another replica) claims.
func TestDispatchWhileShuttingDown(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, false)
	require.NoError(t, b.d.Shutdown(context.Background()))
	status, raw := b.post(t, cronSecret, `{}`)
	assert.Equal(t, http.StatusServiceUnavailable, status, string(raw))
	assert.Zero(t, b.claimed(t))
	assert.Equal(t, 1, b.unclaimed(t))
}
