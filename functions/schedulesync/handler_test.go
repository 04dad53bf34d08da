package schedulesync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/functions/schedulesync"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
	"github.com/kvsync/kvsync/internal/wire"
)

const (
	cronSecret = "cron-secret-0123456789-0123456789-abcdef"
	serviceKey = "sb_secret_test_service_key_0123456789"
	jwtSecret  = "super-secret-jwt-token-with-at-least-32-characters-long"
)

// fakeDB answers the two SQL functions a tick calls: no run to rescue, and due schedules claimed up to
// the limit asked for, which it records.
type fakeDB struct {
	mu     sync.Mutex
	due    int   // schedules due, each claimed once
	limits []int // p_limit of every claim
}

func (f *fakeDB) Call(_ context.Context, fn string, args []store.Arg, _ bool) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch fn {
	case "kiotviet_rescue_expired":
		return json.RawMessage(`[]`), nil
	case "kiotviet_claim_due":
		limit := 0
		for _, a := range args {
			if a.Name == "p_limit" {
				limit = a.Value.(int)
			}
		}
		f.limits = append(f.limits, limit)
		claims := []store.Claim{}
		for ; f.due > 0 && len(claims) < limit; f.due-- {
			n := f.due
			claims = append(claims, store.Claim{RunID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
				ScheduleID: fmt.Sprintf("10000000-0000-4000-8000-%012d", n), CredentialID: "c0000000-0000-4000-8000-000000000001",
				SyncType: vocab.Inventory, SlotAt: time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)})
		}
		return json.Marshal(claims)
	}
	return nil, fmt.Errorf("unexpected call of %s", fn)
}

// runner ends each claimed run at once: the run whose id ends in 1 failed, the others succeeded.
type runner struct{}

func (runner) RunClaimed(_ context.Context, c store.Claim) (syncer.Result, error) {
	if strings.HasSuffix(c.RunID, "1") {
		return syncer.Result{RunID: c.RunID, Status: vocab.Failed, Error: "KiotViet answered 503"}, nil
	}
	return syncer.Result{RunID: c.RunID, Status: vocab.Success, Records: 7}, nil
}

type bundle struct {
	srv *httptest.Server
	db  *fakeDB
	d   *dispatch.Dispatcher
}

// setup serves the handler over a real dispatcher (pool of 4) and a real authenticator; the database
// and the engine are stand-ins, so these tests are about the handler alone: decode, authorize, call,
// encode.
func setup(t *testing.T, due int) *bundle {
	t.Helper()
	db := &fakeDB{due: due}
	d := dispatch.New(dispatch.Config{Store: store.New(db), Runner: runner{}, Concurrency: 4})
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	authn, err := auth.New(auth.Config{CronSecret: cronSecret, ServiceKeys: []string{serviceKey}, JWTSecret: jwtSecret})
	require.NoError(t, err)
	srv := httptest.NewServer(schedulesync.Handler(d, authn, nil))
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, db: db, d: d}
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
			b := setup(t, 1)
			status, raw := b.post(t, tc.bearer, `{}`)
			assert.Equal(t, tc.status, status, string(raw))
			if status != http.StatusAccepted {
				var e wire.ErrorReply
				require.NoError(t, json.Unmarshal(raw, &e))
				assert.False(t, e.Success)
				assert.NotEmpty(t, e.Error)
				assert.Empty(t, b.db.limits, "a refused caller claims nothing")
			}
		})
	}
}

// Bodies the handler refuses, each with a 4xx that says why, before any claim.
func TestDispatchBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
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
	assert.Empty(t, b.db.limits, "nothing was claimed")
}

// Without wait: 202 at once with what was claimed, in the wire type the clients decode; the limit asked
// for reaches the claim.
func TestDispatchAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	status, raw := b.post(t, cronSecret, `{"limit":2}`)
	require.Equal(t, http.StatusAccepted, status, string(raw))
	var out wire.DispatchAccepted
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.True(t, out.Success)
	assert.Equal(t, 2, out.Claimed)
	require.Len(t, out.Runs, 2)
	for _, r := range out.Runs {
		assert.NotEmpty(t, r.RunID)
		assert.Equal(t, vocab.Inventory, r.SyncType)
		assert.Empty(t, r.Status, "without wait the runs' outcomes are not in the reply")
	}
	assert.Equal(t, []int{2}, b.db.limits)
}

// With wait: 200 after the claimed runs ended, in the earlier system's shape, each run with its outcome.
func TestDispatchWaitReportsEachRun(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
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
		if r.Status == vocab.Failed {
			assert.Equal(t, "KiotViet answered 503", *r.Error)
		}
	}
	assert.Equal(t, map[vocab.Status]int{vocab.Success: 1, vocab.Failed: 1}, got)
	assert.Equal(t, []int{4}, b.db.limits, "no limit: the pool's free slots")
}

// A dispatcher that is shutting down answers 503, so pg_cron's next tick (or another replica) claims.
func TestDispatchWhileShuttingDown(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	require.NoError(t, b.d.Shutdown(context.Background()))
	status, raw := b.post(t, cronSecret, `{}`)
	assert.Equal(t, http.StatusServiceUnavailable, status, string(raw))
	assert.Empty(t, b.db.limits)
}
