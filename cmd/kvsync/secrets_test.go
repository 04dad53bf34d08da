package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/testdb"
)

// lockedBuffer collects a server's log lines from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// closedURL is a base URL on which nothing listens: requests to it fail with net/http's *url.Error, whose
// text carries the whole URL.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// A faulty sync with every secret configured: an alert webhook URL with a token in its path, a fan-out URL
// with userinfo and a token, the cron secret, a service key, the JWT secret, the encryption key, and the
// KiotViet client secret and the access tokens the fake issued. Scheduled runs fan out to a dead replica
// (and fail), the failure alert cannot be delivered, a manual sync fails on KiotViet; refused calls are
// logged. Not one of the secrets appears in any log line (at debug level), any reply, /metrics, or the
// run rows' error messages.
func TestNoSecretInLogsRepliesOrMetrics(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 60, Branches: 2, Categories: 5, Seed: 21, RateLimitPerHour: -1})
	var tokMu sync.Mutex
	var tokens []string
	fsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != kiotvietfake.TokenPath {
			fake.Handler().ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		fake.Handler().ServeHTTP(rec, r)
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &tr) == nil && tr.AccessToken != "" {
			tokMu.Lock()
			tokens = append(tokens, tr.AccessToken)
			tokMu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(fsrv.Close)

	id, key, err := secret.GenerateKey()
	require.NoError(t, err)
	const (
		cron       = "scan-test-cron-secret-0123456789abcdefghij"
		serviceKey = "sb_secret_scanTest0123456789abcdefXYZ"
		jwtSecret  = "scan-test-jwt-secret-with-at-least-32-characters"
		alertToken = "AlErTtOkEn0123456789abcdefXYZ"
		fanToken   = "FaNoUtToKeN9876543210zyxwvuTS"
		fanPass    = "fanout-password-0123456789"
	)
	alertURL := closedURL(t) + "/services/T000/B000/" + alertToken
	fanURL := strings.Replace(closedURL(t), "http://", "http://replica:"+fanPass+"@", 1) + "/functions/v1/kiotviet-sync?token=" + fanToken
	env := map[string]string{
		"DATABASE_URL":               db.Config().ConnString(),
		"KIOTVIET_ENCRYPTION_KEYS":   id + ":" + key,
		"KIOTVIET_CRON_SECRET":       cron,
		"SUPABASE_SERVICE_ROLE_KEY":  serviceKey,
		"SUPABASE_JWT_SECRET":        jwtSecret,
		"KIOTVIET_ALERT_WEBHOOK_URL": alertURL,
		"KIOTVIET_SYNC_URL":          fanURL,
		"KIOTVIET_TOKEN_URL":         fsrv.URL + kiotvietfake.TokenPath,
		"KIOTVIET_API_URL":           fsrv.URL,
		"KVSYNC_LOG_LEVEL":           "debug",
		"KVSYNC_ADDR":                "127.0.0.1:0",
	}
	getenv := func(k string) string { return env[k] }
	var seen bytes.Buffer // every reply and CLI output
	cli := func(stdin string, args ...string) string {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := run(ctx, args, getenv, strings.NewReader(stdin), &out, &errOut)
		seen.WriteString(out.String() + errOut.String())
		require.NoError(t, err, "%s\n%s", out.String(), errOut.String())
		return out.String()
	}
	credID := strings.TrimSpace(cli(fake.ClientSecret()+"\n", "credentials", "add", "--retailer", fake.Retailer(), "--client-id", fake.ClientID()))
	cli("", "schedule", "set", "--credential", credID, "--type", "categories", "--every", "hourly")
	_, err = db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where credential_id = $1`, credID)
	require.NoError(t, err)

	// kvsync serve, its log collected
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--grace", "5s"}, getenv, strings.NewReader(""), pw, logs)
		pw.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan())
	addr, ok := strings.CutPrefix(sc.Text(), "kvsync listening on ")
	require.True(t, ok)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := "http://" + addr

	call := func(method, path, bearer, body string) int {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&seen, "%s %s → %d %s\n", method, path, resp.StatusCode, raw)
		return resp.StatusCode
	}
	// the scheduled run fans out to the dead replica and fails; its alert cannot be delivered
	assert.Equal(t, http.StatusOK, call("POST", "/functions/v1/kiotviet-schedule-sync", cron, `{"wait": true}`))
	// a manual sync that fails on KiotViet (a token is issued, then every API call is refused)
	fake.SetFaults(kiotvietfake.Faults{Fail429Next: 1000, RetryAfter: time.Hour})
	assert.NotEqual(t, http.StatusOK, call("POST", "/functions/v1/kiotviet-sync", serviceKey,
		fmt.Sprintf(`{"credentialId": %q, "syncType": "products"}`, credID)))
	// refusals: a forged token, a service key on save-kiotviet-token, a wrong cron secret
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "authenticated", "sub": "x",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not-the-secret-but-long-enough-0123456789"))
	require.NoError(t, err)
	call("POST", "/functions/v1/kiotviet-sync", forged, `{}`)
	call("POST", "/functions/v1/save-kiotviet-token", serviceKey, `{"retailerName":"a","clientId":"b","clientSecret":"c"}`)
	call("POST", "/functions/v1/kiotviet-schedule-sync", cron+"x", `{}`)
	assert.Equal(t, http.StatusOK, call("GET", "/metrics", "", ""))
	// alerts are delivered in the background: wait for the failed delivery to be logged
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "alert delivery failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Contains(t, logs.String(), "alert delivery failed", "the alert delivery was tried and its failure logged")
	var deliveryErrors string
	require.NoError(t, db.QueryRow(context.Background(),
		`select coalesce(string_agg(last_error, ' | '), '') from kiotviet_alert_deliveries`).Scan(&deliveryErrors))
	assert.Contains(t, deliveryErrors, "could not reach", "the failed delivery kept its (redacted) error")
	assert.Contains(t, logs.String(), "fan-out", "the fan-out failure was logged")

	var rowErrors string
	require.NoError(t, db.QueryRow(context.Background(),
		`select coalesce(string_agg(error_message, ' | '), '') from kiotviet_sync_logs where credential_id = $1`, credID).Scan(&rowErrors))
	assert.Contains(t, rowErrors, "fan-out", "the fanned-out run failed")

	tokMu.Lock()
	secrets := append([]string{cron, serviceKey, jwtSecret, key, alertToken, fanToken, fanPass, fake.ClientSecret(), forged}, tokens...)
	tokMu.Unlock()
	require.NotEmpty(t, tokens, "the fake issued access tokens")
	all := map[string]string{"log": logs.String(), "replies and CLI output": seen.String(), "run rows": rowErrors,
		"alert deliveries": deliveryErrors}
	for where, text := range all {
		for _, s := range secrets {
			assert.NotContains(t, text, s, "a secret in the %s", where)
		}
	}
	t.Logf("scanned %d bytes of log, %d of replies", len(logs.String()), seen.Len())
}
