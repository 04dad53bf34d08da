package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"github.com/kvsync/kvsync/internal/vocab"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

// These tests run the Edge Function forwarders (supabase/functions) under real Deno, in an
// edge-runtime-like harness (supabase/functions/_tests/edge_harness.ts), in front of a real `kvsync
// serve`, and call them through @supabase/supabase-js functions.invoke (tools/invoke.ts) as the ERP
// frontend does. Deno and supabase-js are the versions tools/package-lock.json pins
// (scripts/install-deps.sh installs them).

const (
	fwdJWTSecret = "forwarder-test-jwt-secret-0123456789-abcdef"
	fwdOrigin    = "https://erp.example.vn"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testdb.RepoRoot()
	require.NoError(t, err)
	return root
}

func denoBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "tools", "node_modules", ".bin", "deno")
	_, err := os.Stat(bin)
	require.NoError(t, err, "Deno is missing: run scripts/install-deps.sh (it installs tools/package-lock.json)")
	return bin
}

func fwdToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(fwdJWTSecret))
	require.NoError(t, err)
	return s
}

// fwdServe starts `kvsync serve` on the database at dbURL with KiotViet at kiotvietURL and returns its
// base URL.
func fwdServe(t *testing.T, dbURL, bin, keysEnv, kiotvietURL string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL, "KIOTVIET_ENCRYPTION_KEYS="+keysEnv, "KIOTVIET_CRON_SECRET="+procCronSecret,
		"SUPABASE_JWT_SECRET="+fwdJWTSecret, "KVSYNC_CORS_ORIGINS="+fwdOrigin,
		"KIOTVIET_TOKEN_URL="+kiotvietURL+"/connect/token", "KIOTVIET_API_URL="+kiotvietURL, "KVSYNC_LOG_LEVEL=error")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "kvsync listening on "))
}

// harness runs both forwarders under Deno with KVSYNC_URL=upstream and returns the harness's base URL,
// the stand-in for https://<ref>.supabase.co.
func harness(t *testing.T, upstream string) string {
	t.Helper()
	return harnessOf(t, upstream, "kiotviet-sync", "save-kiotviet-token")
}

// harnessOf runs the named forwarders under Deno (see harness).
func harnessOf(t *testing.T, upstream string, names ...string) string {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command(denoBin(t), append([]string{"run", "--allow-net", "--allow-env", "--allow-read",
		filepath.Join(root, "supabase", "functions", "_tests", "edge_harness.ts")}, names...)...)
	cmd.Env = append(os.Environ(), "KVSYNC_URL="+upstream, "HARNESS_PORT=0", "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard // the forwarders' console.error lines when kvsync is down
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the Deno harness did not start")
	port := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	return "http://127.0.0.1:" + port
}

type invokeCall struct {
	URL   string `json:"url"`
	Key   string `json:"key"`
	Name  string `json:"name"`
	Token string `json:"token,omitempty"`
	Body  any    `json:"body"`
}

type invokeResult struct {
	Data   map[string]any `json:"data"`
	Error  *string        `json:"error"`
	Status int            `json:"status"`
}

// invoke makes the calls at once through supabase-js functions.invoke.
func invoke(t *testing.T, calls ...invokeCall) []invokeResult {
	t.Helper()
	root := repoRoot(t)
	arg, err := json.Marshal(calls)
	require.NoError(t, err)
	cmd := exec.Command(denoBin(t), "run", "--allow-net", "--allow-env", "--allow-read", filepath.Join(root, "tools", "invoke.ts"), string(arg))
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var res []invokeResult
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	require.Len(t, res, len(calls))
	return res
}

// direct posts to kvsync itself and returns its status and reason: kvsync's own API keeps its statuses.
// A transport or decoding failure comes back as status 0 with the error as the reason (it may run on a
// goroutine of its own, where t.FailNow is not allowed).
func direct(base, name, token string, body any) (int, string) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/functions/v1/"+name, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var out struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, "kvsync's reply is not JSON: " + err.Error()
	}
	return resp.StatusCode, out.Error
}

// gzipProxy is a compressing reverse proxy in front of kvsync, as a CDN or load balancer would be.
func gzipProxy(t *testing.T, upstream string) string {
	t.Helper()
	u, err := url.Parse(upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(res *http.Response) error {
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		res.Body.Close()
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		res.Body = io.NopCloser(&buf)
		res.ContentLength = int64(buf.Len())
		res.Header.Set("Content-Length", strconv.Itoa(buf.Len()))
		res.Header.Set("Content-Encoding", "gzip")
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestForwardersUnderDenoThroughSupabaseJS(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	ctx := context.Background()
	st := store.New(store.PG{Pool: db})
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 30, Branches: 1, Categories: 5, Seed: 13, RateLimitPerHour: -1})
	fsrv := httptest.NewServer(fake.Handler())
	t.Cleanup(fsrv.Close)
	keysEnv := "f1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	keys, err := secret.ParseKeys(keysEnv, "")
	require.NoError(t, err)
	credID, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	require.NoError(t, err)

	bin := buildBinary(t)
	kvsync := fwdServe(t, db.Config().ConnString(), bin, keysEnv, fsrv.URL)
	kiotvietDown := fwdServe(t, db.Config().ConnString(), bin, keysEnv, closedURL(t))
	up, viaGzip, noKiotViet, noKvsync := harness(t, kvsync), harness(t, gzipProxy(t, kvsync)), harness(t, kiotvietDown), harness(t, closedURL(t))

	// The ERP's client is built with the anon (or publishable) key; a signed-in user's token replaces it
	// in Authorization.
	anonKey := fwdToken(t, jwt.MapClaims{"role": "anon", "iss": "supabase-demo"})
	publishable := "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
	const adminID = "f0f0f0f0-0000-4000-8000-00000000ad01"
	// The signed-in admin exists in auth.users, as on Supabase (a saved credential references it).
	_, err = db.Exec(ctx, `insert into auth.users (id, email) values ($1, 'forwarder-admin@shop.vn') on conflict (id) do nothing`, adminID)
	require.NoError(t, err)
	admin := fwdToken(t, jwt.MapClaims{"sub": adminID, "role": "authenticated", "aud": "authenticated",
		"app_metadata": map[string]any{"role": "admin"}})
	user := fwdToken(t, jwt.MapClaims{"sub": "9c2e3d0f-8e62-4e4f-8e9f-2a3b4c5d6e7f", "role": "authenticated", "aud": "authenticated"})
	creds := fake.Credentials()
	syncBody := func(id, typ string) map[string]any {
		return map[string]any{"credentialId": id, "syncType": typ, "options": map[string]any{"pageSize": 100}}
	}
	saveBody := func(secret string) map[string]any {
		return map[string]any{"retailerName": creds.Retailer, "clientId": creds.ClientID, "clientSecret": secret}
	}

	t.Run("each error status becomes 200 {success:false, error} with kvsync's reason", func(t *testing.T) {
		cases := []struct {
			name   string
			base   string // the harness the ERP calls
			direct string // the kvsync behind it
			fn     string
			key    string
			token  string
			body   any
			status int // what kvsync itself answers
			reason string
		}{
			{"bad syncType", up, kvsync, "kiotviet-sync", anonKey, admin, syncBody(credID, "customers"), 400, "syncType must be one of"},
			{"anon key only", up, kvsync, "kiotviet-sync", anonKey, "", syncBody(credID, "categories"), 401, ""},
			{"publishable key only", up, kvsync, "kiotviet-sync", publishable, "", syncBody(credID, "categories"), 401, ""},
			{"not an admin", up, kvsync, "kiotviet-sync", anonKey, user, syncBody(credID, "categories"), 403, "only an admin"},
			{"unknown credential", up, kvsync, "kiotviet-sync", anonKey, admin, syncBody("00000000-0000-4000-8000-000000000000", "categories"), 404, "does not exist"},
			{"wrong KiotViet secret", up, kvsync, "save-kiotviet-token", anonKey, admin, saveBody("not-the-secret"), 400, "KiotViet rejected"},
			{"KiotViet down", noKiotViet, kiotvietDown, "save-kiotviet-token", anonKey, admin, saveBody(creds.ClientSecret), 502, "KiotViet could not be reached"},
			{"not an admin, through a compressing proxy", viaGzip, kvsync, "kiotviet-sync", anonKey, user, syncBody(credID, "categories"), 403, "only an admin"},
		}
		calls := make([]invokeCall, len(cases))
		for i, c := range cases {
			calls[i] = invokeCall{URL: c.base, Key: c.key, Name: c.fn, Token: c.token, Body: c.body}
		}
		// kvsync's own answers, asked at the same time (KiotViet down takes its retries).
		type answer struct {
			status int
			reason string
		}
		directs := make([]answer, len(cases))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i, c := range cases {
				token := c.token
				if token == "" {
					token = c.key
				}
				directs[i].status, directs[i].reason = direct(c.direct, c.fn, token, c.body)
			}
		}()
		got := invoke(t, calls...)
		<-done
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, reason := directs[i].status, directs[i].reason
				assert.Equal(t, c.status, status, "kvsync's own API keeps its status")
				assert.Contains(t, reason, c.reason)
				require.NotEmpty(t, reason)
				r := got[i]
				assert.Nil(t, r.Error, "functions.invoke sees a 2xx reply")
				assert.Equal(t, 200, r.Status)
				assert.Equal(t, map[string]any{"success": false, "error": reason}, r.Data, "the ERP's toast shows kvsync's reason")
			})
		}
	})

	t.Run("success, directly and through a compressing proxy", func(t *testing.T) {
		for _, base := range []string{up, viaGzip} {
			r := invoke(t, invokeCall{URL: base, Key: anonKey, Name: "kiotviet-sync", Token: admin, Body: syncBody(credID, "categories")})[0]
			require.Nil(t, r.Error)
			assert.Equal(t, 200, r.Status)
			assert.Equal(t, true, r.Data["success"], r.Data)
			assert.Contains(t, r.Data["results"], "categories")
			run, err := st.Run(ctx, r.Data["runId"].(string))
			require.NoError(t, err)
			assert.Equal(t, vocab.Success, run.Status, "the sync ran and its reply arrived")
		}
	})

	t.Run("a compressed reply reaches the caller decoded, without its encoding headers", func(t *testing.T) {
		raw, _ := json.Marshal(syncBody(credID, "categories"))
		req, _ := http.NewRequest(http.MethodPost, viaGzip+"/functions/v1/kiotviet-sync", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
		assert.Empty(t, resp.Header.Values("Connection"))
		var out map[string]any
		require.NoError(t, json.Unmarshal(body, &out), "the body is plain JSON: %q", body)
		assert.Equal(t, true, out["success"])
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	})

	t.Run("already syncing", func(t *testing.T) {
		runID, err := st.StartRun(ctx, credID, "all", "manual", "elsewhere", time.Minute, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = st.FinishRun(ctx, runID, store.Finish{Status: "failed", Error: "test over"}) })
		status, reason := direct(kvsync, "kiotviet-sync", admin, syncBody(credID, "products"))
		require.Equal(t, http.StatusConflict, status)
		r := invoke(t, invokeCall{URL: up, Key: anonKey, Name: "kiotviet-sync", Token: admin, Body: syncBody(credID, "products")})[0]
		assert.Nil(t, r.Error)
		assert.Equal(t, map[string]any{"success": false, "error": reason}, r.Data)
		assert.Contains(t, reason, "already syncing")
	})

	t.Run("saving a connection succeeds through the forwarder", func(t *testing.T) {
		r := invoke(t, invokeCall{URL: up, Key: anonKey, Name: "save-kiotviet-token", Token: admin, Body: saveBody(creds.ClientSecret)})[0]
		require.Nil(t, r.Error)
		assert.Equal(t, true, r.Data["success"], r.Data)
		assert.NotEmpty(t, r.Data["credentialId"])
	})

	t.Run("kvsync down: POST gets the reason, preflight is answered", func(t *testing.T) {
		r := invoke(t, invokeCall{URL: noKvsync, Key: anonKey, Name: "kiotviet-sync", Token: admin, Body: syncBody(credID, "categories")})[0]
		assert.Nil(t, r.Error)
		assert.Equal(t, map[string]any{"success": false, "error": "kvsync could not be reached; try again"}, r.Data)

		for _, base := range []string{noKvsync, up} {
			req, _ := http.NewRequest(http.MethodOptions, base+"/functions/v1/kiotviet-sync", nil)
			req.Header.Set("Origin", fwdOrigin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, x-client-info, apikey, content-type")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNoContent, resp.StatusCode, base)
			assert.Equal(t, fwdOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
			for _, h := range []string{"authorization", "x-client-info", "apikey", "content-type"} {
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), h)
			}
		}
	})
}

// TestForwardModuleUnderDenoTest runs supabase/functions/_tests/forward_test.ts with `deno test`: the
// "as-is" mode a webhook forwarder uses (raw body bytes in, kvsync's status and body out), the reply to a
// non-JSON error page, and that KVSYNC_URL's value (which may carry a token) is never logged nor replied.
func TestForwardModuleUnderDenoTest(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	cmd := exec.Command(denoBin(t), "test", "--allow-net", "--allow-env", filepath.Join(root, "supabase", "functions", "_tests", "forward_test.ts"))
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "4 passed | 0 failed")
}
