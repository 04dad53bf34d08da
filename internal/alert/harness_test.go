package alert_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/alert"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

// ---- a real SMTP server (aiosmtpd) with STARTTLS and a login ----------------------------------------------

type smtpServer struct {
	URL  string      // smtp://user:pass@127.0.0.1:port
	TLS  *tls.Config // trusts the throwaway certificate
	Pass string
	dir  string
}

// startSMTP runs testdata/smtpd.py on a free port with a certificate made for this test.
func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, where python3-aiosmtpd is installed
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	out := filepath.Join(dir, "mail")
	require.NoError(t, os.Mkdir(out, 0o700))
	pass := "p@ss:w0rd/" + randHex(t, 6)
	cmd := exec.Command(py, "testdata/smtpd.py", certFile, keyFile, "alerts", pass, out)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start(), "python3 with aiosmtpd (scripts/install-deps.sh installs python3-aiosmtpd)")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	portc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		portc <- strings.TrimSpace(line)
	}()
	var port string
	select {
	case port = <-portc:
	case <-time.After(30 * time.Second):
		t.Fatalf("aiosmtpd did not start: %s", stderr.String())
	}
	require.NotEmpty(t, port, "aiosmtpd did not start: %s", stderr.String())
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	u := url.URL{Scheme: "smtp", User: url.UserPassword("alerts", pass), Host: "127.0.0.1:" + port}
	return &smtpServer{URL: u.String(), TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Pass: pass, dir: out}
}

type email struct {
	To, Subject, Text, HTML string
	ContentType             string
	Raw                     string
}

// mails reads every message the server accepted, in order.
func (s *smtpServer) mails(t *testing.T) []email {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	require.NoError(t, err)
	sort.Strings(names)
	var out []email
	for _, n := range names {
		raw, err := os.ReadFile(n)
		require.NoError(t, err)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		require.NoError(t, err)
		var e email
		e.Raw = string(raw)
		e.To = m.Header.Get("X-Rcpt-To")
		e.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		require.NoError(t, err)
		e.ContentType = m.Header.Get("Content-Type")
		mt, params, err := mime.ParseMediaType(e.ContentType)
		require.NoError(t, err)
		require.Equal(t, "multipart/alternative", mt)
		mr := multipart.NewReader(m.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			body, err := io.ReadAll(quotedprintable.NewReader(p))
			require.NoError(t, err)
			switch {
			case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
				e.Text = string(body)
			case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
				e.HTML = string(body)
			}
		}
		out = append(out, e)
	}
	return out
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kvsync test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- a fake Telegram Bot API and a chat webhook -------------------------------------------------------------

type recorder struct {
	mu    sync.Mutex
	texts []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.texts = append(r.texts, s); r.mu.Unlock() }
func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

// fakeTelegram answers sendMessage as the Bot API does: the token in the path, {"ok":true,...} or
// {"ok":false,"error_code":...,"description":...}.
func fakeTelegram(t *testing.T, token, chatID string) (*httptest.Server, *recorder) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/bot"+token+"/sendMessage" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
			return
		}
		var m struct {
			ChatID string `json:"chat_id"`
			Text   string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
			return
		}
		if m.ChatID != chatID {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
			return
		}
		rec.add(m.Text)
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":1}}`)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func fakeWebhook(t *testing.T) (*httptest.Server, *recorder) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m["text"] == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec.add(m["text"])
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// ---- a shop, its credential, and replicas --------------------------------------------------------------

type shop struct {
	db     *pgxpool.Pool
	fake   *kiotvietfake.Server
	store  *store.Store
	engine *syncer.Engine
	credID string
	secret string
}

func newShop(t *testing.T) *shop { return newShopWithSecret(t, "") }

// newShopWithSecret stores the credential with this client secret instead of the fake's own ("" = the
// right one), so KiotViet refuses it.
func newShopWithSecret(t *testing.T, clientSecret string) *shop {
	t.Helper()
	s := &shop{db: testdb.DB(t)}
	s.store = store.New(store.PG{Pool: s.db})
	s.fake = kiotvietfake.New(kiotvietfake.Options{Products: 20, Branches: 1, Categories: 5, Seed: 16, RateLimitPerHour: -1})
	fsrv := httptest.NewServer(s.fake.Handler())
	t.Cleanup(fsrv.Close)
	keys, err := secret.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), "")
	require.NoError(t, err)
	s.engine, err = syncer.New(syncer.Config{Store: s.store, Keys: keys, Worker: "alerts-test",
		KiotViet: kiotviet.Config{TokenURL: fsrv.URL + kiotvietfake.TokenPath, APIURL: fsrv.URL, MaxAttempts: 1,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}})
	require.NoError(t, err)
	creds := s.fake.Credentials()
	if clientSecret != "" {
		creds.ClientSecret = clientSecret
	}
	s.secret = creds.ClientSecret
	s.credID, err = synctest.SaveCredential(context.Background(), s.store, keys, creds)
	require.NoError(t, err)
	return s
}

func (s *shop) schedule(t *testing.T, syncType string) string {
	t.Helper()
	id, err := s.store.UpsertSchedule(context.Background(), store.Schedule{CredentialID: s.credID, SyncType: syncType,
		Frequency: "hourly", Enabled: true})
	require.NoError(t, err)
	return id
}

func (s *shop) makeDue(t *testing.T, scheduleID string) {
	t.Helper()
	_, err := s.db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = $1`, scheduleID)
	require.NoError(t, err)
}

// replica is one kvsync process's dispatcher and notifier.
type replica struct {
	d    *dispatch.Dispatcher
	n    *alert.Notifier
	done chan dispatch.RunResult
}

func (s *shop) replica(name string, n *alert.Notifier) *replica {
	r := &replica{n: n, done: make(chan dispatch.RunResult, 10)}
	r.d = dispatch.New(dispatch.Config{Store: s.store, Runner: s.engine, Worker: name, Concurrency: 2,
		Alerts: n, OnRunDone: func(res dispatch.RunResult) { r.done <- res }})
	return r
}

// runOnce makes the schedule due, ticks and waits for the one run; it returns the run's status.
func (s *shop) runOnce(t *testing.T, r *replica, scheduleID string) string {
	t.Helper()
	s.makeDue(t, scheduleID)
	tick, err := r.d.Tick(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1)
	select {
	case res := <-r.done:
		return string(res.Result.Status)
	case <-time.After(time.Minute):
		t.Fatal("the run did not end")
	}
	return ""
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
