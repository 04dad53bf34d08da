package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/store"
)

const testServiceKey = "sb-service-role-key-for-tests-0123456789"

// rpcCall is one request the fake PostgREST received.
type rpcCall struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]json.RawMessage
	RawBody             string
}

// fakePostgREST answers /rest/v1/rpc/* with reply and records every request.
type fakePostgREST struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	calls []rpcCall
	reply func(c rpcCall, n int) (status int, body string)
}

func newFakePostgREST(t *testing.T, reply func(c rpcCall, n int) (int, string)) *fakePostgREST {
	t.Helper()
	f := &fakePostgREST{t: t, reply: reply}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := rpcCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), RawBody: string(raw)}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &c.Body); err != nil {
				t.Errorf("request body is not a JSON object: %q", raw)
			}
		}
		f.mu.Lock()
		f.calls = append(f.calls, c)
		n := len(f.calls)
		f.mu.Unlock()
		status, body := f.reply(c, n)
		if strings.HasPrefix(body, "<") {
			w.Header().Set("Content-Type", "text/html")
		} else {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePostgREST) caller(t *testing.T) *store.PostgREST {
	t.Helper()
	pg, err := store.NewPostgREST(f.srv.URL, testServiceKey, f.srv.Client())
	require.NoError(t, err)
	return pg
}

func (f *fakePostgREST) last(t *testing.T) rpcCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.calls, "no request reached the server")
	return f.calls[len(f.calls)-1]
}

func (f *fakePostgREST) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// jsonType names the JSON type of a raw value.
func jsonType(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "boolean"
	case strings.HasPrefix(s, `"`):
		return "string"
	case strings.HasPrefix(s, "{"):
		return "object"
	case strings.HasPrefix(s, "["):
		return "array"
	default:
		return "number"
	}
}

func TestPostgRESTWireFormatClaimDue(t *testing.T) {
	f := newFakePostgREST(t, func(c rpcCall, _ int) (int, string) {
		return 200, `[{"run_id":"11111111-1111-1111-1111-111111111111","schedule_id":"22222222-2222-2222-2222-222222222222",` +
			`"credential_id":"33333333-3333-3333-3333-333333333333","sync_type":"products","slot_at":"2026-12-01T03:00:00+00:00"}]`
	})
	s := store.New(f.caller(t))

	claims, err := s.ClaimDue(context.Background(), "worker-1", 5, 90*time.Second)
	require.NoError(t, err)

	c := f.last(t)
	assert.Equal(t, http.MethodPost, c.Method)
	assert.Equal(t, "/rest/v1/rpc/kiotviet_claim_due", c.Path)
	assert.Empty(t, c.Query)
	assert.Equal(t, testServiceKey, c.Header.Get("apikey"))
	assert.Equal(t, "Bearer "+testServiceKey, c.Header.Get("Authorization"))
	assert.Equal(t, "application/json", c.Header.Get("Content-Type"))
	assert.Equal(t, "application/json", c.Header.Get("Accept"))
	assert.Equal(t, "public", c.Header.Get("Content-Profile"))
	assert.Equal(t, "public", c.Header.Get("Accept-Profile"))
	assert.True(t, strings.HasPrefix(c.Header.Get("X-Client-Info"), "postgrest-go/"), c.Header.Get("X-Client-Info"))
	assert.Empty(t, c.Header.Get("Prefer"))
	assert.Len(t, c.Header.Values("apikey"), 1, "headers are set once, not appended per call")

	assert.JSONEq(t, `{"p_worker":"worker-1","p_limit":5,"p_lease_seconds":90}`, c.RawBody)
	assert.Equal(t, "string", jsonType(c.Body["p_worker"]))
	assert.Equal(t, "number", jsonType(c.Body["p_limit"]))
	assert.Equal(t, "number", jsonType(c.Body["p_lease_seconds"]))

	require.Len(t, claims, 1)
	assert.Equal(t, "11111111-1111-1111-1111-111111111111", claims[0].RunID)
	assert.Equal(t, vocab.Products, claims[0].SyncType)
	assert.True(t, claims[0].SlotAt.Equal(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)))

	// A second call sends the same headers once each (no accumulation on the shared transport).
	_, err = s.ClaimDue(context.Background(), "worker-1", 5, 90*time.Second)
	require.NoError(t, err)
	assert.Len(t, f.last(t).Header.Values("Authorization"), 1)
}

func TestPostgRESTTypedMethods(t *testing.T) {
	const credID = "33333333-3333-3333-3333-333333333333"
	f := newFakePostgREST(t, func(c rpcCall, _ int) (int, string) {
		switch c.Path {
		case "/rest/v1/rpc/kiotviet_start_run":
			return 200, `"44444444-4444-4444-4444-444444444444"`
		case "/rest/v1/rpc/kiotviet_finish_run":
			if jsonType(c.Body["p_error"]) == "null" {
				return 200, `"2026-12-01T04:00:00+00:00"`
			}
			return 200, `null`
		case "/rest/v1/rpc/kiotviet_get_credential":
			if string(c.Body["p_id"]) == `"`+credID+`"` {
				return 200, `[{"id":"` + credID + `","user_id":null,"retailer_name":"shop","client_id":"cid",` +
					`"encrypted_client_secret":"v1:abc","encrypted_token":"v1:def","token_expires_at":"2026-12-02T00:00:00+00:00",` +
					`"token_version":3,"is_active":true,"created_at":"2026-11-30T00:00:00+00:00"}]`
			}
			return 200, `[]`
		case "/rest/v1/rpc/kiotviet_heartbeat":
			return 200, `true`
		case "/rest/v1/rpc/kiotviet_apply_products":
			return 200, `{"written":2,"products":2,"inventory":4,"deleted":1,"swept":false,"seen":2}`
		case "/rest/v1/rpc/kiotviet_store_token":
			return 200, `null`
		case "/rest/v1/rpc/kiotviet_rescue_expired":
			return 200, `[]`
		case "/rest/v1/rpc/kiotviet_save_credential":
			return 204, ``
		}
		return 404, `{"code":"PGRST202","details":null,"hint":null,"message":"Could not find the function"}`
	})
	s := store.New(f.caller(t))
	ctx := context.Background()

	t.Run("StartRun", func(t *testing.T) {
		id, err := s.StartRun(ctx, credID, "products", "manual", "worker-1", 2*time.Minute, json.RawMessage(`{"full":true}`))
		require.NoError(t, err)
		assert.Equal(t, "44444444-4444-4444-4444-444444444444", id)
		c := f.last(t)
		assert.Equal(t, "/rest/v1/rpc/kiotviet_start_run", c.Path)
		assert.JSONEq(t, `{"p_credential_id":"`+credID+`","p_sync_type":"products","p_trigger":"manual",`+
			`"p_worker":"worker-1","p_lease_seconds":120,"p_options":{"full":true}}`, c.RawBody)
		assert.Equal(t, "object", jsonType(c.Body["p_options"]), "json.RawMessage is embedded, not a string")
	})

	t.Run("FinishRun", func(t *testing.T) {
		next, err := s.FinishRun(ctx, "run-1", store.Finish{Status: "success", Records: 7,
			Stats: map[string]int{"products": 7}, APICalls: 3})
		require.NoError(t, err)
		require.NotNil(t, next)
		assert.True(t, next.Equal(time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)))
		c := f.last(t)
		assert.JSONEq(t, `{"p_run_id":"run-1","p_status":"success","p_records":7,"p_stats":{"products":7},`+
			`"p_api_calls":3,"p_error":null}`, c.RawBody)

		next, err = s.FinishRun(ctx, "run-2", store.Finish{Status: "failed", Error: "KiotViet said <no>"})
		require.NoError(t, err)
		assert.Nil(t, next, "a JSON null result decodes to nil")
		c = f.last(t)
		assert.Equal(t, `"KiotViet said <no>"`, string(c.Body["p_error"]), "no HTML escaping of text")
		assert.Equal(t, "null", string(c.Body["p_stats"]))
	})

	t.Run("Credential", func(t *testing.T) {
		cr, err := s.Credential(ctx, credID)
		require.NoError(t, err)
		assert.Equal(t, credID, cr.ID)
		assert.Equal(t, "shop", cr.RetailerName)
		assert.Equal(t, int64(3), cr.TokenVersion)
		assert.True(t, cr.IsActive)
		assert.Nil(t, cr.UserID)
		assert.JSONEq(t, `{"p_id":"`+credID+`"}`, f.last(t).RawBody)

		_, err = s.Credential(ctx, "55555555-5555-5555-5555-555555555555")
		require.Error(t, err)
		assert.Equal(t, errs.NotFound, errs.CodeOf(err), "an empty set is an unknown credential")
	})

	t.Run("Heartbeat", func(t *testing.T) {
		ok, err := s.Heartbeat(ctx, "run-1", "worker-1", store.Progress{Stream: "products", Pages: 2}, 30*time.Second)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "object", jsonType(f.last(t).Body["p_progress"]))
	})

	t.Run("ApplyProducts", func(t *testing.T) {
		cursor := time.Date(2026, 11, 30, 23, 59, 58, 0, time.FixedZone("ICT", 7*3600))
		a, err := s.ApplyProducts(ctx, store.Page{RunID: "run-1", CredentialID: credID,
			Rows: json.RawMessage(`[{"id":1,"name":"Áo"}]`), Cursor: &cursor, Full: true})
		require.NoError(t, err)
		assert.Equal(t, store.Applied{Written: 2, Products: 2, Inventory: 4, Deleted: 1, Seen: 2}, a)
		c := f.last(t)
		assert.Equal(t, `[]`, string(c.Body["p_removed_ids"]), "nil []int64 goes as an empty array")
		assert.Equal(t, "array", jsonType(c.Body["p_rows"]))
		assert.Equal(t, "boolean", jsonType(c.Body["p_full"]))
		var sent string
		require.NoError(t, json.Unmarshal(c.Body["p_cursor"], &sent))
		got, err := time.Parse(time.RFC3339, sent)
		require.NoError(t, err, "time.Time goes as RFC 3339")
		assert.True(t, got.Equal(cursor))

		_, err = s.ApplyProducts(ctx, store.Page{RunID: "run-1", CredentialID: credID, Rows: json.RawMessage(`[]`),
			RemovedIDs: []int64{9007199254740993, 2}})
		require.NoError(t, err)
		c = f.last(t)
		assert.Equal(t, `[9007199254740993,2]`, string(c.Body["p_removed_ids"]), "int64 ids keep every digit")
		assert.Equal(t, "null", string(c.Body["p_cursor"]), "a nil *time.Time is null")
	})

	t.Run("StoreToken", func(t *testing.T) {
		exp := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		_, ok, err := s.StoreToken(ctx, credID, "v1:tok", exp, 3)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Equal(t, `"2026-12-02T00:00:00Z"`, string(f.last(t).Body["p_expires_at"]))
	})

	t.Run("set with no rows and void", func(t *testing.T) {
		rescued, err := s.RescueExpired(ctx)
		require.NoError(t, err)
		assert.Empty(t, rescued)
		assert.Equal(t, "{}", f.last(t).RawBody, "no arguments is an empty object")

		require.NoError(t, s.SaveCredential(ctx, store.NewCredential{ID: credID, RetailerName: "shop", ClientID: "cid",
			EncryptedClientSecret: "v1:a", EncryptedToken: "v1:b", TokenExpiresAt: time.Now()}))
		assert.Equal(t, "null", string(f.last(t).Body["p_user_id"]))
	})
}

func TestPostgRESTResultBytes(t *testing.T) {
	replies := map[string]struct {
		status int
		body   string
	}{
		"set_empty":   {200, ``},
		"set_null":    {200, `null`},
		"set_rows":    {200, `[{"a":1}]`},
		"scalar_uuid": {200, `"0b3d2f4e-0000-4000-8000-000000000000"`},
		"scalar_true": {200, `true`},
		"scalar_null": {200, `null`},
		"void":        {204, ``},
		"not_json":    {200, `<html>ok</html>`},
	}
	f := newFakePostgREST(t, func(c rpcCall, _ int) (int, string) {
		r := replies[strings.TrimPrefix(c.Path, "/rest/v1/rpc/")]
		return r.status, r.body
	})
	pg := f.caller(t)
	ctx := context.Background()
	for fn, want := range map[string]struct {
		set  bool
		want string
	}{
		"set_empty":   {true, `[]`},
		"set_null":    {true, `[]`},
		"set_rows":    {true, `[{"a":1}]`},
		"scalar_uuid": {false, `"0b3d2f4e-0000-4000-8000-000000000000"`},
		"scalar_true": {false, `true`},
		"scalar_null": {false, `null`},
		"void":        {false, `null`},
	} {
		got, err := pg.Call(ctx, fn, nil, want.set)
		require.NoError(t, err, fn)
		assert.Equal(t, want.want, string(got), fn)
	}
	_, err := pg.Call(ctx, "not_json", nil, false)
	require.Error(t, err)
	assert.Equal(t, errs.Internal, errs.CodeOf(err))
}

func TestPostgRESTErrorMapping(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		code       errs.Code
		sqlState   string
		constraint string
		contains   string
	}{
		{"unique violation", 409,
			`{"code":"23505","details":"Key (credential_id)=(33333333-3333-3333-3333-333333333333) already exists.","hint":null,` +
				`"message":"duplicate key value violates unique constraint \"kiotviet_sync_logs_one_running\""}`,
			errs.Conflict, "23505", "kiotviet_sync_logs_one_running", "duplicate key value"},
		{"already syncing", 409,
			`{"code":"23505","details":null,"hint":null,"message":"credential 33333333-3333-3333-3333-333333333333 is already syncing (run 44444444-4444-4444-4444-444444444444)"}`,
			errs.Conflict, "23505", "", "is already syncing"},
		{"unknown credential", 400,
			`{"code":"P0002","details":null,"hint":null,"message":"credential 5 does not exist"}`,
			errs.NotFound, "P0002", "", "does not exist"},
		{"invalid input", 400,
			`{"code":"22023","details":null,"hint":null,"message":"syncType must be one of categories, products"}`,
			errs.Invalid, "22023", "", "syncType must be one of"},
		{"check violation", 400,
			`{"code":"23514","details":"Failing row contains (...).","hint":null,"message":"new row for relation \"kiotviet_sync_schedules\" violates check constraint \"custom_interval_hours_range\""}`,
			errs.Invalid, "23514", "custom_interval_hours_range", "violates check constraint"},
		{"inactive", 400,
			`{"code":"55000","details":null,"hint":"Save the KiotViet connection again.","message":"credential 5 is not active"}`,
			errs.State, "55000", "", "is not active"},
		{"bad JWT", 401,
			`{"code":"PGRST301","details":null,"hint":null,"message":"JWSError JWSInvalidSignature"}`,
			errs.Internal, "", "", "401"},
		{"gateway key check", 401, `{"message":"Invalid API key"}`,
			errs.Internal, "", "", "Invalid API key"},
		{"no permission", 403,
			`{"code":"42501","details":null,"hint":null,"message":"permission denied for function kiotviet_claim_due"}`,
			errs.Internal, "42501", "", "permission denied"},
		{"unknown function", 404,
			`{"code":"PGRST202","details":"Searched for the function public.kiotviet_claim_due with parameters p_limit","hint":null,"message":"Could not find the function public.kiotviet_claim_due(p_limit) in the schema cache"}`,
			errs.Internal, "", "", "PGRST202"},
		{"gateway HTML", 502, `<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>`,
			errs.Internal, "", "", "502"},
		{"redirect", 307, ``, errs.Internal, "", "", "307"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePostgREST(t, func(rpcCall, int) (int, string) { return tc.status, tc.body })
			raw, err := f.caller(t).Call(context.Background(), "kiotviet_claim_due", []store.Arg{{Name: "p_limit", Value: 1}}, true)
			require.Error(t, err)
			assert.Nil(t, raw)
			var se *errs.Error
			require.True(t, errors.As(err, &se), "%T", err)
			assert.Equal(t, tc.code, errs.CodeOf(err))
			assert.Equal(t, "kiotviet_claim_due", se.Op)
			assert.Equal(t, tc.sqlState, se.SQLState)
			assert.Equal(t, tc.constraint, se.Constraint)
			assert.Contains(t, err.Error(), tc.contains)
			assert.NotContains(t, err.Error(), testServiceKey)
			assert.NotContains(t, err.Error(), "<html", "no gateway page in the message")
		})
	}

	// Through the typed method: the overlap guard is a conflict the HTTP layer turns into 409.
	f := newFakePostgREST(t, func(rpcCall, int) (int, string) {
		return 409, `{"code":"23505","details":null,"hint":null,"message":"credential c is already syncing (run r)"}`
	})
	_, err := store.New(f.caller(t)).StartRun(context.Background(), "c", "all", "manual", "w", 0, nil)
	require.Error(t, err)
	assert.Equal(t, errs.Conflict, errs.CodeOf(err))
	assert.Equal(t, "kiotviet_start_run: credential c is already syncing (run r)", err.Error())
}

func TestPostgRESTRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `[]`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/rest/v1/rpc/kiotviet_claim_due", http.StatusTemporaryRedirect))
	defer srv.Close()
	pg, err := store.NewPostgREST(srv.URL, testServiceKey, srv.Client())
	require.NoError(t, err)

	_, err = pg.Call(context.Background(), "kiotviet_claim_due", nil, true)
	require.Error(t, err)
	assert.Equal(t, errs.Internal, errs.CodeOf(err))
	assert.Zero(t, elsewhere.Load(), "the key is never sent to the redirect's host")
}

func TestPostgRESTFailureDoesNotPoisonLaterCalls(t *testing.T) {
	f := newFakePostgREST(t, func(c rpcCall, n int) (int, string) {
		switch n {
		case 1:
			return 400, `{"code":"P0001","details":null,"hint":null,"message":"boom"}`
		case 2:
			return 502, `<html>bad gateway</html>`
		}
		return 200, `[{"run_id":"r","schedule_id":"s","credential_id":"c","sync_type":"all","slot_at":"2026-12-01T00:00:00Z"}]`
	})
	s := store.New(f.caller(t))
	ctx := context.Background()

	_, err := s.ClaimDue(ctx, "w", 1, time.Minute)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "boom")
	_, err = s.ClaimDue(ctx, "w", 1, time.Minute)
	require.Error(t, err)

	claims, err := s.ClaimDue(ctx, "w", 1, time.Minute)
	require.NoError(t, err, "a 400 and a 502 before must not fail this 200")
	require.Len(t, claims, 1)
	assert.Equal(t, "r", claims[0].RunID)

	// A bad argument fails before any request and leaves the caller usable too.
	before := f.count()
	_, err = (f.caller(t)).Call(ctx, "kiotviet_claim_due", []store.Arg{{Name: "p_limit", Value: make(chan int)}}, true)
	require.Error(t, err)
	assert.Equal(t, errs.Invalid, errs.CodeOf(err))
	assert.Equal(t, before, f.count(), "nothing was sent")
	claims, err = s.ClaimDue(ctx, "w", 1, time.Minute)
	require.NoError(t, err)
	assert.Len(t, claims, 1)
}

func TestPostgRESTRejectsBadNames(t *testing.T) {
	f := newFakePostgREST(t, func(rpcCall, int) (int, string) { return 200, `null` })
	pg := f.caller(t)
	ctx := context.Background()
	for _, fn := range []string{"", "../auth/v1/admin", "kiotviet_x?select=*", "Kiotviet"} {
		_, err := pg.Call(ctx, fn, nil, false)
		require.Error(t, err, fn)
		assert.Equal(t, errs.Invalid, errs.CodeOf(err), fn)
	}
	_, err := pg.Call(ctx, "kiotviet_x", []store.Arg{{Name: `p"x`, Value: 1}}, false)
	assert.Equal(t, errs.Invalid, errs.CodeOf(err))
	_, err = pg.Call(ctx, "kiotviet_x", []store.Arg{{Name: "p_a", Value: 1}, {Name: "p_a", Value: 2}}, false)
	assert.Equal(t, errs.Invalid, errs.CodeOf(err))
	assert.Zero(t, f.count())
}

func TestPostgRESTContext(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	pg, err := store.NewPostgREST(srv.URL, testServiceKey, srv.Client())
	require.NoError(t, err)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := pg.Call(ctx, "kiotviet_claim_due", nil, true)
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), err.Error())
		assert.Equal(t, errs.Internal, errs.CodeOf(err))
		assert.NotContains(t, err.Error(), testServiceKey)
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		_, err := store.New(pg).ClaimDue(ctx, "w", 1, time.Minute)
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.Canceled), err.Error())
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := hits.Load()
		_, err := pg.Call(ctx, "kiotviet_claim_due", nil, true)
		assert.True(t, errors.Is(err, context.Canceled))
		assert.Equal(t, n, hits.Load(), "no request is sent")
	})

	t.Run("client timeout", func(t *testing.T) {
		hc := srv.Client()
		hc.Timeout = 100 * time.Millisecond
		pg, err := store.NewPostgREST(srv.URL, testServiceKey, hc)
		require.NoError(t, err)
		_, err = pg.Call(context.Background(), "kiotviet_claim_due", nil, true)
		assert.True(t, errors.Is(err, context.DeadlineExceeded))
	})
}

func TestPostgRESTConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	pg, err := store.NewPostgREST(url, testServiceKey, nil)
	require.NoError(t, err, "construction sends no request")
	_, err = pg.Call(context.Background(), "kiotviet_claim_due", nil, true)
	require.Error(t, err)
	assert.Equal(t, errs.Internal, errs.CodeOf(err))
	assert.NotContains(t, err.Error(), testServiceKey)
}

func TestPostgRESTKeyNeverInErrors(t *testing.T) {
	f := newFakePostgREST(t, func(c rpcCall, _ int) (int, string) {
		return 401, `{"code":"PGRST301","details":null,"hint":null,"message":"JWT ` + c.Header.Get("apikey") + ` is invalid"}`
	})
	_, err := f.caller(t).Call(context.Background(), "kiotviet_claim_due", nil, true)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), testServiceKey)
	assert.Contains(t, err.Error(), "[redacted]")

	for _, u := range []string{"", "ftp://example.com", "not a url", "https://user:pw@example.com", "example.com"} {
		_, err := store.NewPostgREST(u, testServiceKey, nil)
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), testServiceKey)
	}
	_, err = store.NewPostgREST("https://example.supabase.co", "", nil)
	require.Error(t, err)
}

func TestPostgRESTURLForms(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		_, _ = io.WriteString(w, `true`)
	}))
	defer srv.Close()
	for base, want := range map[string]string{
		srv.URL:             "/rest/v1/rpc/kiotviet_heartbeat",
		srv.URL + "/":       "/rest/v1/rpc/kiotviet_heartbeat",
		srv.URL + "/proxy/": "/proxy/rest/v1/rpc/kiotviet_heartbeat",
	} {
		pg, err := store.NewPostgREST(base, testServiceKey, srv.Client())
		require.NoError(t, err)
		ok, err := store.New(pg).Heartbeat(context.Background(), "r", "w", store.Progress{}, time.Minute)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, want, path.Load(), base)
	}
}

func TestPostgRESTConcurrentCalls(t *testing.T) {
	f := newFakePostgREST(t, func(c rpcCall, n int) (int, string) {
		if n%3 == 0 {
			return 409, `{"code":"23505","details":null,"hint":null,"message":"credential x is already syncing (run y)"}`
		}
		return 200, `"` + strings.Trim(string(c.Body["p_worker"]), `"`) + `"`
	})
	pg := f.caller(t)
	var wg sync.WaitGroup
	var ok, conflict atomic.Int32
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := "w" + string(rune('a'+i%26))
			raw, err := pg.Call(context.Background(), "kiotviet_start_run", []store.Arg{{Name: "p_worker", Value: w}}, false)
			if err != nil {
				if errs.CodeOf(err) == errs.Conflict {
					conflict.Add(1)
				}
				return
			}
			if string(raw) == `"`+w+`"` {
				ok.Add(1)
			}
		}(i)
	}
	wg.Wait()
	assert.Equal(t, int32(20), ok.Load())
	assert.Equal(t, int32(10), conflict.Load())
}
