package kiotvietsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/functions/kiotvietsync"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

const (
	jwtSecret  = "super-secret-jwt-token-with-at-least-32-characters-long"
	cronSecret = "cron-secret-0123456789-0123456789-abcdef"
	serviceKey = "sb_secret_test_service_key_0123456789"
)

type env struct {
	db      *pgxpool.Pool // the test's own database
	srv     *httptest.Server
	fake    *kiotvietfake.Server
	store   *store.Store
	credID  string
	kvcfg   kiotviet.Config
	keys    *secret.Keyring
	fakeURL string
}

func setup(t *testing.T) *env {
	t.Helper()
	db := testdb.DB(t)
	s := synctest.NewStack(t, db, synctest.StackOptions{Fake: kiotvietfake.Options{Products: 120, Branches: 2, Seed: 3, RateLimitPerHour: -1}})
	e := &env{db: db, store: s.Store, fake: s.Fake, fakeURL: s.FakeURL, keys: s.Keys, kvcfg: s.KiotViet, credID: s.CredID}
	engine := s.Engine
	authn, err := auth.New(auth.Config{CronSecret: cronSecret, ServiceKeys: []string{serviceKey}, JWTSecret: jwtSecret})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/functions/v1/kiotviet-sync", kiotvietsync.Handler(kiotvietsync.Deps{Auth: authn, Admins: e.store, Sync: engine}))
	mux.Handle("/functions/v1/save-kiotviet-token", kiotvietsync.SaveTokenHandler(kiotvietsync.SaveTokenDeps{Auth: authn, Admins: e.store,
		Connect: func(ctx context.Context, c syncer.Connection) (string, error) {
			return syncer.Connect(ctx, e.store, e.keys, e.kvcfg, c)
		}}))
	e.srv = httptest.NewServer(httpx.CORS([]string{"https://erp.example.vn"}, mux))
	t.Cleanup(e.srv.Close)
	return e
}

func token(t *testing.T, claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	if _, ok := claims["aud"]; !ok {
		claims["aud"] = "authenticated" // what Supabase Auth puts in a signed-in user's token
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func userJWT(t *testing.T, role string) string {
	claims := jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", "role": "authenticated"}
	if role != "" {
		claims["app_metadata"] = map[string]any{"role": role}
	}
	return token(t, claims, jwt.SigningMethodHS256, []byte(jwtSecret))
}

func (e *env) post(t *testing.T, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

const syncPath = "/functions/v1/kiotviet-sync"

func TestSyncCallers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	body := map[string]any{"credentialId": e.credID, "syncType": "categories", "options": map[string]any{"pageSize": 100}}
	anonKey := token(t, jwt.MapClaims{"role": "anon", "iss": "supabase-demo"}, jwt.SigningMethodHS256, []byte(jwtSecret))
	expired := token(t, jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", "role": "authenticated",
		"app_metadata": map[string]any{"role": "admin"}, "exp": time.Now().Add(-time.Hour).Unix()}, jwt.SigningMethodHS256, []byte(jwtSecret))
	badlySigned := token(t, jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", "role": "authenticated",
		"app_metadata": map[string]any{"role": "admin"}}, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another-secret"))
	algNone := token(t, jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", "role": "service_role",
		"app_metadata": map[string]any{"role": "admin"}}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)

	for _, tc := range []struct {
		name   string
		bearer string
		status int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"anon key", anonKey, http.StatusUnauthorized},
		{"non-admin user", userJWT(t, ""), http.StatusForbidden},
		{"expired admin JWT", expired, http.StatusUnauthorized},
		{"badly signed JWT", badlySigned, http.StatusUnauthorized},
		{"alg none", algNone, http.StatusUnauthorized},
		{"admin user", userJWT(t, "admin"), http.StatusOK},
		{"owner user", userJWT(t, "owner"), http.StatusOK},
		{"cron secret", cronSecret, http.StatusOK},
		{"service role key", serviceKey, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := e.post(t, syncPath, tc.bearer, body)
			assert.Equal(t, tc.status, status, out)
			if status == http.StatusOK {
				assert.Equal(t, true, out["success"])
				assert.NotEmpty(t, out["runId"])
				results := out["results"].(map[string]any)
				assert.Contains(t, results, "categories")
			} else {
				assert.Equal(t, false, out["success"])
				assert.NotEmpty(t, out["error"])
				assert.NotContains(t, out["error"], jwtSecret)
			}
		})
	}
}

func TestSyncReplyIsFinalAndLogged(t *testing.T) {
	t.Parallel()
	e := setup(t)
	status, out := e.post(t, syncPath, serviceKey, map[string]any{"credentialId": e.credID, "syncType": "products_full"})
	require.Equal(t, http.StatusOK, status, out)
	run, err := e.store.Run(context.Background(), out["runId"].(string))
	require.NoError(t, err)
	assert.Equal(t, vocab.Success, run.Status, "the log row is final before the reply")
	assert.Equal(t, 120, run.RecordsSynced-int(out["results"].(map[string]any)["categories"].(map[string]any)["count"].(float64)))
	assert.Equal(t, vocab.API, run.Trigger)
}

func TestSyncBadBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"not JSON", `{"credentialId":`, http.StatusBadRequest, "JSON"},
		{"missing credentialId", map[string]any{"syncType": "all"}, http.StatusBadRequest, "credentialId"},
		{"credentialId not a UUID", map[string]any{"credentialId": "abc", "syncType": "all"}, http.StatusBadRequest, "credentialId"},
		{"credentialId of the wrong type", `{"credentialId": 5, "syncType": "all"}`, http.StatusBadRequest, "credentialId must be a string"},
		{"unknown syncType", map[string]any{"credentialId": e.credID, "syncType": "customers"}, http.StatusBadRequest, "syncType"},
		{"pageSize too big", map[string]any{"credentialId": e.credID, "syncType": "all", "options": map[string]any{"pageSize": 500}}, http.StatusBadRequest, "options.pageSize must be a whole number from 50 to 100"},
		// a page of 1 would spend one API call per product of the shop's hourly budget
		{"pageSize too small", map[string]any{"credentialId": e.credID, "syncType": "all", "options": map[string]any{"pageSize": 1}}, http.StatusBadRequest, "options.pageSize must be a whole number from 50 to 100"},
		{"pageSize not whole", `{"credentialId": "` + e.credID + `", "syncType": "all", "options": {"pageSize": 50.5}}`, http.StatusBadRequest, "options.pageSize must be a whole number"},
		{"options not an object", `{"credentialId": "` + e.credID + `", "syncType": "all", "options": 5}`, http.StatusBadRequest, "options must be an object"},
		{"body not an object", `[1, 2]`, http.StatusBadRequest, "must be a JSON object"},
		{"bad dateFrom", map[string]any{"credentialId": e.credID, "syncType": "all", "options": map[string]any{"dateFrom": "yesterday"}}, http.StatusBadRequest, "options.dateFrom"},
		{"unknown credential", map[string]any{"credentialId": "00000000-0000-4000-8000-000000000000", "syncType": "all"}, http.StatusNotFound, "does not exist"},
		{"body over 1 MiB", `{"credentialId":"` + strings.Repeat("x", 1<<20) + `"}`, http.StatusRequestEntityTooLarge, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := e.post(t, syncPath, serviceKey, tc.body)
			assert.Equal(t, tc.status, status, out)
			assert.Contains(t, out["error"], tc.field)
		})
	}
}

func TestSyncConflictWhileSyncing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	runID, err := e.store.StartRun(ctx, e.credID, "all", "manual", "elsewhere", time.Minute, nil)
	require.NoError(t, err)
	status, out := e.post(t, syncPath, serviceKey, map[string]any{"credentialId": e.credID, "syncType": "products"})
	assert.Equal(t, http.StatusConflict, status, out)
	assert.Contains(t, out["error"], "already syncing")
	_, err = e.store.FinishRun(ctx, runID, store.Finish{Status: "failed", Error: "test over"})
	require.NoError(t, err)
}

func TestCORSAndMethod(t *testing.T) {
	t.Parallel()
	e := setup(t)
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+syncPath, nil)
	req.Header.Set("Origin", "https://erp.example.vn")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "https://erp.example.vn", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "apikey")

	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	resp, err = http.Get(e.srv.URL + syncPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestSaveTokenChecksLiveAndMovesSchedules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	creds := e.fake.Credentials()
	admin := userJWT(t, "admin")
	// The signed-in admin exists in auth.users, as on Supabase (credentials reference it).
	_, err := e.db.Exec(ctx, `insert into auth.users (id, email) values ('8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e', 'admin@shop.vn')
		on conflict (id) do nothing`)
	require.NoError(t, err)

	status, out := e.post(t, "/functions/v1/save-kiotviet-token", admin,
		map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": "wrong"})
	assert.Equal(t, http.StatusBadRequest, status, out)
	assert.Contains(t, out["error"], "rejected")

	status, out = e.post(t, "/functions/v1/save-kiotviet-token", admin,
		map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, out["error"], "clientSecret")

	status, _ = e.post(t, "/functions/v1/save-kiotviet-token", userJWT(t, ""),
		map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": creds.ClientSecret})
	assert.Equal(t, http.StatusForbidden, status)

	// The admin's first credential, with a schedule on it.
	status, out = e.post(t, "/functions/v1/save-kiotviet-token", admin,
		map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": creds.ClientSecret})
	require.Equal(t, http.StatusOK, status, out)
	first := out["credentialId"].(string)
	_, err = e.store.UpsertSchedule(ctx, store.Schedule{CredentialID: first, SyncType: "products_full", Frequency: "daily", Enabled: true})
	require.NoError(t, err)

	// Saving again replaces it: the old one is deactivated and its schedule follows the new one.
	status, out = e.post(t, "/functions/v1/save-kiotviet-token", admin,
		map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": creds.ClientSecret})
	require.Equal(t, http.StatusOK, status, out)
	second := out["credentialId"].(string)
	old, err := e.store.Credential(ctx, first)
	require.NoError(t, err)
	assert.False(t, old.IsActive)
	rows, err := e.store.Status(ctx)
	require.NoError(t, err)
	moved := false
	for _, r := range rows {
		if r.SyncType == "products_full" {
			moved = r.CredentialID == second
		}
	}
	assert.True(t, moved, "the schedule moved to the new credential")

	c, err := e.store.Credential(ctx, second)
	require.NoError(t, err)
	require.NotNil(t, c.UserID)
	assert.Equal(t, "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e", *c.UserID, "the saving user is recorded")
	require.NotNil(t, c.EncryptedClientSecret)
	assert.NotContains(t, *c.EncryptedClientSecret, creds.ClientSecret, "only ciphertext is stored")
	plain, err := e.keys.Decrypt(*c.EncryptedClientSecret, syncer.SecretAAD(second))
	require.NoError(t, err)
	assert.Equal(t, creds.ClientSecret, string(plain))
	_, err = e.keys.Decrypt(*c.EncryptedClientSecret, syncer.SecretAAD(first))
	assert.Error(t, err, "a ciphertext never decrypts on another row")
}

// A claimed run is carried out only as claimed: a runId with another type (or credential) is refused.
func TestSyncRunIDMustMatchTheClaim(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	runID, err := e.store.StartRun(ctx, e.credID, "attributes", "cron", "dispatcher", time.Minute, nil)
	require.NoError(t, err)
	status, out := e.post(t, syncPath, serviceKey, map[string]any{"credentialId": e.credID, "syncType": "products", "runId": runID})
	assert.Equal(t, http.StatusBadRequest, status, out)
	assert.Contains(t, out["error"], "runId")
	status, out = e.post(t, syncPath, userJWT(t, "admin"), map[string]any{"credentialId": e.credID, "syncType": "attributes", "runId": runID})
	assert.Equal(t, http.StatusForbidden, status, out, "runId is for the dispatcher only")
	status, out = e.post(t, syncPath, serviceKey, map[string]any{"credentialId": e.credID, "syncType": "attributes", "runId": runID})
	assert.Equal(t, http.StatusOK, status, out)
	assert.Equal(t, runID, out["runId"])
}

// save-kiotviet-token decides whose shop fills the tables: the cron secret (which pg_net sends in request
// headers), a service-role JWT and an sb_secret_ key are refused with 403 and a reason, and the existing
// credential and its schedules stay as they were.
func TestSaveTokenRefusesCronAndServiceKeys(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	creds := e.fake.Credentials()
	sched, err := e.store.UpsertSchedule(ctx, store.Schedule{CredentialID: e.credID, SyncType: "inventory", Frequency: "hourly", Enabled: true})
	require.NoError(t, err)
	schedules := func() []string {
		rows, err := e.store.Status(ctx)
		require.NoError(t, err)
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprint(r.ScheduleID, r.CredentialID, r.CredentialActive, r.Enabled, r.NextRunAt))
		}
		return out
	}
	before := schedules()
	serviceJWT := token(t, jwt.MapClaims{"role": "service_role", "iss": "supabase"}, jwt.SigningMethodHS256, []byte(jwtSecret))
	body := map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": creds.ClientSecret}
	for name, bearer := range map[string]string{"cron secret": cronSecret, "service-role JWT": serviceJWT, "sb_secret_ key": serviceKey} {
		status, out := e.post(t, "/functions/v1/save-kiotviet-token", bearer, body)
		assert.Equal(t, http.StatusForbidden, status, name)
		assert.Equal(t, false, out["success"], name)
		assert.Contains(t, out["error"], "signed-in admin", name)
	}
	c, err := e.store.Credential(ctx, e.credID)
	require.NoError(t, err)
	assert.True(t, c.IsActive, "the existing credential stays active")
	list, err := e.store.Credentials(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1, "no credential was added")
	after := schedules()
	assert.Equal(t, before, after, "the schedules are unchanged")
	assert.Contains(t, after[0], sched+e.credID, "the schedule still belongs to the existing credential")
}
