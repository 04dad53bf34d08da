package kiotvietwebhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/webhook"
)

type env struct {
	db       *pgxpool.Pool
	st       *store.Store
	keys     *secret.Keyring
	h        http.Handler
	cred     string
	retailer int64
	secret   []byte
	stored   int
}

// seq gives each endpoint a retailer id of its own; tests run in parallel.
var seq atomic.Int64

// setup stores a credential with a webhook endpoint. The tests commit events, so each takes a database
// of its own (testdb.DB): a webhook applier running in another test never sees them.
func setup(t *testing.T) *env {
	t.Helper()
	return endpoint(t, testdb.DB(t))
}

// endpoint stores another credential with a webhook endpoint (a retailer id of its own) on db.
func endpoint(t *testing.T, db *pgxpool.Pool) *env {
	t.Helper()
	ctx := context.Background()
	k, err := secret.ParseKeys("t1:"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "")
	require.NoError(t, err)
	e := &env{db: db, keys: k}
	e.st = store.New(store.PG{Pool: e.db})
	e.retailer = seq.Add(1)
	e.cred, err = synctest.SaveCredential(ctx, e.st, k, kiotviet.Credentials{Retailer: fmt.Sprintf("hooktest%d", e.retailer), ClientID: "c", ClientSecret: "s"})
	require.NoError(t, err)
	s, err := webhook.NewSecret()
	require.NoError(t, err)
	e.secret = []byte(s)
	ct, err := k.Encrypt(e.secret, webhook.SecretAAD(e.cred))
	require.NoError(t, err)
	require.NoError(t, e.st.SetWebhookEndpoint(ctx, e.cred, &e.retailer, ct))
	e.h = Handler(Deps{Store: e.st, Keys: k, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stored: func() { e.stored++ }})
	return e
}

// body is a sample from testdata with its retailer id replaced by the test's.
func (e *env) body(t *testing.T, name string, retailer int64) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "webhook", "testdata", name))
	require.NoError(t, err)
	for _, r := range []string{"500400541", "925719", "500322281", "500370926"} {
		b = bytes.ReplaceAll(b, []byte("update."+r), []byte(fmt.Sprintf("update.%d", retailer)))
		b = bytes.ReplaceAll(b, []byte("delete."+r), []byte(fmt.Sprintf("delete.%d", retailer)))
	}
	return b
}

func (e *env) post(t *testing.T, query string, body []byte, sig string) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, "/functions/v1/kiotviet-webhook"+query, bytes.NewReader(body))
	if sig != "" {
		req.Header.Set(webhook.SignatureHeader, sig)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (e *env) events(t *testing.T) int {
	var n int
	require.NoError(t, e.db.QueryRow(context.Background(),
		"select count(*) from public.kiotviet_webhook_events where credential_id = $1", e.cred).Scan(&n))
	return n
}

func TestSignedEventIsStoredOnceAndAcknowledged(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := e.body(t, "real_webhook_product_update_500400541.json", e.retailer)
	code, out := e.post(t, "", b, webhook.Sign(e.secret, b))
	require.Equal(t, http.StatusOK, code, out)
	assert.Equal(t, true, out["success"])
	assert.Equal(t, false, out["duplicate"])
	assert.Equal(t, 1, e.events(t))
	assert.Equal(t, 1, e.stored, "the applier is woken")

	// KiotViet's retry (same Id, next Attempt) and a duplicate are acknowledged and stored once
	retry := bytes.Replace(b, []byte(`"Attempt":1`), []byte(`"Attempt":2`), 1)
	code, out = e.post(t, "", retry, webhook.Sign(e.secret, retry))
	require.Equal(t, http.StatusOK, code, out)
	assert.Equal(t, true, out["duplicate"])
	assert.Equal(t, 1, e.events(t))
	var deliveries, attempt int
	var status string
	var body []byte
	require.NoError(t, e.db.QueryRow(context.Background(), `select deliveries, attempt, status, body::text
		from public.kiotviet_webhook_events where credential_id = $1`, e.cred).Scan(&deliveries, &attempt, &status, &body))
	assert.Equal(t, 2, deliveries)
	assert.Equal(t, 2, attempt)
	assert.Equal(t, "pending", status, "nothing is applied before the reply")
	assert.Contains(t, string(body), `"SP000150"`)
}

func TestBareDeleteNeedsTheURLsCredentialAndEvent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := e.body(t, "doc_webhook_product_delete.json", e.retailer)
	sig := webhook.Sign(e.secret, b)
	code, out := e.post(t, "", b, sig)
	assert.Equal(t, http.StatusBadRequest, code, out)
	code, out = e.post(t, "?credential="+e.cred, b, sig)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, out["error"], "?event=")
	assert.Equal(t, 0, e.events(t))
	code, out = e.post(t, "?credential="+e.cred+"&event=product.delete", b, sig)
	require.Equal(t, http.StatusOK, code, out)
	// the same ids deleted from categories are another event
	code, _ = e.post(t, "?credential="+e.cred+"&event=category.delete", b, sig)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 2, e.events(t))
}

func TestRefusedDeliveriesStoreNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	good := e.body(t, "real_webhook_stock_update_925719.json", e.retailer)
	otherRetailer := e.body(t, "real_webhook_stock_update_925719.json", 7) // no endpoint has retailer 7
	other := endpoint(t, e.db)
	cases := []struct {
		name   string
		query  string
		body   []byte
		sig    string
		status int
		want   string
	}{
		{"unsigned", "", good, "", http.StatusUnauthorized, "unsigned"},
		{"badly signed", "", good, webhook.Sign([]byte("wrong"), good), http.StatusUnauthorized, "bad signature"},
		{"signature of another body", "", good, webhook.Sign(e.secret, otherRetailer), http.StatusUnauthorized, "bad signature"},
		{"garbage signature", "", good, "sha1=zz", http.StatusUnauthorized, "bad signature"},
		{"unknown retailer", "", otherRetailer, webhook.Sign(e.secret, otherRetailer), http.StatusUnauthorized, "unknown retailer"},
		{"retailer of another credential", "?credential=" + other.cred, good, webhook.Sign(other.secret, good), http.StatusUnauthorized, "unknown retailer"},
		{"credential not an id", "?credential=x", good, webhook.Sign(e.secret, good), http.StatusUnauthorized, "credential"},
		{"unknown event in URL", "?event=order.update", good, webhook.Sign(e.secret, good), http.StatusBadRequest, "event"},
		{"malformed, signed", "?credential=" + e.cred, []byte(`{"Id":`), webhook.Sign(e.secret, []byte(`{"Id":`)), http.StatusBadRequest, "not valid JSON"},
		{"malformed, unsigned", "?credential=" + e.cred, []byte(`{"Id":`), "", http.StatusUnauthorized, "unsigned"},
		{"malformed, no endpoint", "", []byte(`nope`), "", http.StatusBadRequest, "JSON object"},
		{"oversized", "", append(bytes.Repeat([]byte(" "), 1<<20), good...), webhook.Sign(e.secret, good), http.StatusRequestEntityTooLarge, "larger"},
	}
	for _, c := range cases {
		code, out := e.post(t, c.query, c.body, c.sig)
		assert.Equal(t, c.status, code, c.name)
		assert.Equal(t, false, out["success"], c.name)
		assert.Contains(t, fmt.Sprint(out["error"]), c.want, c.name)
		assert.NotContains(t, fmt.Sprint(out["error"]), string(e.secret), c.name)
	}
	assert.Equal(t, 0, e.events(t))
	assert.Equal(t, 0, other.events(t))
	assert.Equal(t, 0, e.stored)

	req := httptest.NewRequest(http.MethodGet, "/functions/v1/kiotviet-webhook", nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func TestInactiveCredentialReceivesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ok, err := e.st.DeactivateCredential(context.Background(), e.cred)
	require.NoError(t, err)
	require.True(t, ok)
	b := e.body(t, "real_webhook_stock_update_925719.json", e.retailer)
	code, out := e.post(t, "", b, webhook.Sign(e.secret, b))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.True(t, strings.Contains(fmt.Sprint(out["error"]), "unknown retailer"))
	assert.Equal(t, 0, e.events(t))
}
