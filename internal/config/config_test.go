package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/secret"
)

// env turns a map into the getenv Load expects.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const (
	dbURL      = "postgresql://postgres:db-pass-7f3a9c@127.0.0.1:54322/postgres?sslmode=disable&password=q-pass-91ce"
	cronSecret = "cron-0123456789abcdef0123456789abcdef"
	jwtSecret  = "super-secret-jwt-token-with-at-least-32-characters-long"
	sbSecret   = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
	anonJWT    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
	webhookURL = "https://hooks.slack.com/services/T000/B000/webhook-token-5d2e"
)

var encKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))

func minimal() map[string]string { return map[string]string{"DATABASE_URL": dbURL} }

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// vars lists the variables an error from Load names.
func vars(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var ce *Error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &ce) {
			out = append(out, ce.Var)
		}
	}
	walk(err)
	return out
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.DatabaseURL.Reveal() != dbURL || c.DatabaseURLVar != "DATABASE_URL" {
		t.Errorf("database: %q from %q", c.DatabaseURL.Reveal(), c.DatabaseURLVar)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"TokenURL", c.TokenURL, DefaultTokenURL},
		{"APIURL", c.APIURL, DefaultAPIURL},
		{"RateLimitPerHour", c.RateLimitPerHour, 5000},
		{"Addr", c.Addr, ":8080"},
		{"Concurrency", c.Concurrency, 4},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"JWKSURL", c.JWKSURL, ""},
		{"SyncURL", c.SyncURL, ""},
		{"CORSOrigins", len(c.CORSOrigins), 0},
		{"CronSecret set", c.CronSecret.IsSet(), false},
		{"Alerts.WebhooksStoppedAfter", c.Alerts.WebhooksStoppedAfter, DefaultAlertWebhooksAfter},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if _, err := c.Keyring(); err == nil || !strings.Contains(err.Error(), "KIOTVIET_ENCRYPTION_KEYS") {
		t.Errorf("Keyring without keys: %v, want an error naming KIOTVIET_ENCRYPTION_KEYS", err)
	}
}

func TestDatabaseURLSources(t *testing.T) {
	c, err := Load(env(map[string]string{"SUPABASE_DB_URL": dbURL}))
	if err != nil || c.DatabaseURLVar != "SUPABASE_DB_URL" {
		t.Fatalf("SUPABASE_DB_URL alone: var=%q err=%v", c.DatabaseURLVar, err)
	}
	other := "postgres://app:pw@pooler.example.com:6543/postgres"
	c, err = Load(env(map[string]string{"SUPABASE_DB_URL": dbURL, "DATABASE_URL": other}))
	if err != nil || c.DatabaseURLVar != "DATABASE_URL" || c.DatabaseURL.Reveal() != other {
		t.Fatalf("DATABASE_URL should win: var=%q err=%v", c.DatabaseURLVar, err)
	}
	// PostgREST backend: no database URL, but SUPABASE_URL and the service key.
	c, err = Load(env(map[string]string{"SUPABASE_URL": "https://abc.supabase.co/", "SUPABASE_SERVICE_ROLE_KEY": sbSecret}))
	if err != nil {
		t.Fatalf("PostgREST backend: %v", err)
	}
	if c.SupabaseURL != "https://abc.supabase.co" || c.JWKSURL != "https://abc.supabase.co/auth/v1/.well-known/jwks.json" {
		t.Fatalf("SupabaseURL %q, derived JWKSURL %q", c.SupabaseURL, c.JWKSURL)
	}
	// JWTs must come from the project's own Auth, for the ERP's users
	if c.JWTIssuer != "https://abc.supabase.co/auth/v1" || c.JWTAudience != "authenticated" {
		t.Fatalf("derived issuer %q, audience %q", c.JWTIssuer, c.JWTAudience)
	}
	if a := c.Auth(nil, nil); a.Issuer != c.JWTIssuer || a.Audience != c.JWTAudience {
		t.Fatalf("auth config issuer %q audience %q", a.Issuer, a.Audience)
	}
	c, err = Load(env(map[string]string{"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": sbSecret,
		"SUPABASE_JWT_ISSUER": "https://auth.example.com", "SUPABASE_JWT_AUDIENCE": "erp"}))
	if err != nil || c.JWTIssuer != "https://auth.example.com" || c.JWTAudience != "erp" {
		t.Fatalf("explicit issuer %q, audience %q (%v)", c.JWTIssuer, c.JWTAudience, err)
	}
	_, err = Load(env(map[string]string{"SUPABASE_URL": "https://abc.supabase.co"}))
	if got := vars(err); !slices.Equal(got, []string{"DATABASE_URL"}) {
		t.Fatalf("no backend: vars %v (%v)", got, err)
	}
}

func TestEveryValueParsed(t *testing.T) {
	c, err := Load(env(with(minimal(),
		"SUPABASE_URL", "http://127.0.0.1:54321",
		"SUPABASE_SERVICE_ROLE_KEY", sbSecret,
		"SUPABASE_JWT_SECRET", jwtSecret,
		"SUPABASE_JWKS_URL", "https://abc.supabase.co/auth/v1/.well-known/jwks.json",
		"KIOTVIET_CRON_SECRET", cronSecret,
		"KIOTVIET_ENCRYPTION_KEY", encKey,
		"KIOTVIET_ENCRYPTION_KEYS", "k2:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"KIOTVIET_TOKEN_URL", "http://127.0.0.1:9090/connect/token",
		"KIOTVIET_API_URL", "http://127.0.0.1:9090/",
		"KIOTVIET_RATE_LIMIT_PER_HOUR", "1200",
		"KIOTVIET_READ_CONCURRENCY", "2",
		"KIOTVIET_SYNC_URL", "http://worker:8080/functions/v1/kiotviet-sync",
		"KIOTVIET_ALERT_WEBHOOK_URL", webhookURL,
		"KIOTVIET_ALERT_WEBHOOKS_STOPPED_AFTER", "6h",
		"KVSYNC_ADDR", "127.0.0.1:9000",
		"KVSYNC_CONCURRENCY", " 8 ",
		"KVSYNC_CORS_ORIGINS", "https://ERP.example.com, http://localhost:5173,",
		"KVSYNC_LOG_LEVEL", "DEBUG",
	)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.APIURL != "http://127.0.0.1:9090" || c.RateLimitPerHour != 1200 || c.ReadConcurrency != 2 || c.Concurrency != 8 || c.Addr != "127.0.0.1:9000" || c.LogLevel != slog.LevelDebug {
		t.Fatalf("parsed: %v", c)
	}
	if !slices.Equal(c.CORSOrigins, []string{"https://erp.example.com", "http://localhost:5173"}) {
		t.Fatalf("CORSOrigins = %q", c.CORSOrigins)
	}
	if c.Alerts.WebhookURL.Reveal() != webhookURL || c.CronSecret.Reveal() != cronSecret {
		t.Fatal("secrets not kept")
	}
	if c.Alerts.WebhooksStoppedAfter != 6*time.Hour {
		t.Fatalf("WebhooksStoppedAfter = %s", c.Alerts.WebhooksStoppedAfter)
	}
	kr, err := c.Keyring()
	if err != nil {
		t.Fatalf("Keyring: %v", err)
	}
	if kr.PrimaryID() != "k2" {
		t.Fatalf("primary key %q, want k2 (first of KIOTVIET_ENCRYPTION_KEYS)", kr.PrimaryID())
	}
}

func TestMalformedValueNamesItsVariable(t *testing.T) {
	cases := []struct{ name, value string }{
		{"DATABASE_URL", "mysql://root@localhost/db"},
		{"DATABASE_URL", "postgres://user:pw@/db"},
		{"DATABASE_URL", "just-a-hostname"},
		{"SUPABASE_URL", "ftp://abc.supabase.co"},
		{"SUPABASE_URL", "abc.supabase.co"},
		{"SUPABASE_SERVICE_ROLE_KEY", anonJWT},
		{"SUPABASE_SERVICE_ROLE_KEY", "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"},
		{"SUPABASE_JWT_SECRET", "short"},
		{"SUPABASE_JWKS_URL", "/auth/v1/.well-known/jwks.json"},
		{"KIOTVIET_CRON_SECRET", "cron"},
		{"KIOTVIET_ENCRYPTION_KEY", "not base64!"},
		{"KIOTVIET_ENCRYPTION_KEY", base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))},
		{"KIOTVIET_ENCRYPTION_KEYS", "k1:" + encKey + ",k1:" + encKey},
		{"KIOTVIET_ENCRYPTION_KEYS", "k1:" + encKey + ",,"},
		{"KIOTVIET_TOKEN_URL", "id.kiotviet.vn/connect/token"},
		{"KIOTVIET_API_URL", "https://"},
		{"KIOTVIET_RATE_LIMIT_PER_HOUR", "lots"},
		{"KIOTVIET_RATE_LIMIT_PER_HOUR", "0"},
		{"KIOTVIET_RATE_LIMIT_PER_HOUR", "5000000"},
		{"KIOTVIET_ALERT_WEBHOOKS_STOPPED_AFTER", "30s"},
		{"KIOTVIET_READ_CONCURRENCY", "0"},
		{"KIOTVIET_READ_CONCURRENCY", "17"},
		{"KIOTVIET_READ_CONCURRENCY", "many"},
		{"KIOTVIET_SYNC_URL", "worker:8080"},
		{"KIOTVIET_ALERT_WEBHOOK_URL", "hooks.slack.com/services/x"},
		{"KVSYNC_ADDR", "8080"},
		{"KVSYNC_ADDR", ":99999"},
		{"KVSYNC_CONCURRENCY", "0"},
		{"KVSYNC_CONCURRENCY", "-1"},
		{"KVSYNC_CONCURRENCY", "four"},
		{"KVSYNC_CONCURRENCY", "100000"},
		{"KVSYNC_CORS_ORIGINS", "https://erp.example.com/"},
		{"KVSYNC_CORS_ORIGINS", "erp.example.com"},
		{"KVSYNC_CORS_ORIGINS", "*,https://erp.example.com"},
		{"KVSYNC_LOG_LEVEL", "loud"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			_, err := Load(env(with(minimal(), c.name, c.value)))
			if got := vars(err); !slices.Equal(got, []string{c.name}) {
				t.Fatalf("error names %v, want exactly [%s]: %v", got, c.name, err)
			}
			if !strings.HasPrefix(err.Error(), c.name+": ") {
				t.Fatalf("message %q should start with the variable", err)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"KVSYNC_CONCURRENCY": "0", "KVSYNC_LOG_LEVEL": "loud"}))
	got := vars(err)
	slices.Sort(got)
	if !slices.Equal(got, []string{"DATABASE_URL", "KVSYNC_CONCURRENCY", "KVSYNC_LOG_LEVEL"}) {
		t.Fatalf("vars %v: %v", got, err)
	}
}

// secretValues are the values that must never be printed.
var secretValues = []string{"db-pass-7f3a9c", "q-pass-91ce", cronSecret, jwtSecret, sbSecret, encKey, "webhook-token-5d2e"}

func assertNoSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secretValues {
		if strings.Contains(out, s) {
			t.Errorf("%s leaks %.8s…: %s", what, s, out)
		}
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	for name, value := range map[string]string{
		"DATABASE_URL":               "postgres://postgres:db-pass-7f3a9c@host:port/db",
		"KIOTVIET_ALERT_WEBHOOK_URL": "https://hooks slack.com/services/T000/B000/webhook-token-5d2e",
		"KIOTVIET_CRON_SECRET":       "webhook-token-5d2e", // too short
		"KIOTVIET_ENCRYPTION_KEYS":   "k1:" + encKey[:40],  // truncated key
		"SUPABASE_SERVICE_ROLE_KEY":  "q-pass-91ce",        // not a key at all
		"SUPABASE_JWT_SECRET":        "db-pass-7f3a9c",     // too short
	} {
		_, err := Load(env(with(minimal(), name, value)))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		assertNoSecrets(t, name+" error", err.Error())
		if strings.Contains(err.Error(), encKey[:40]) {
			t.Errorf("%s error leaks key material: %v", name, err)
		}
	}
}

func fullConfig(t *testing.T) Config {
	t.Helper()
	c, err := Load(env(with(minimal(),
		"SUPABASE_URL", "https://abc.supabase.co",
		"SUPABASE_SERVICE_ROLE_KEY", sbSecret,
		"SUPABASE_JWT_SECRET", jwtSecret,
		"KIOTVIET_CRON_SECRET", cronSecret,
		"KIOTVIET_ENCRYPTION_KEYS", "k1:"+encKey,
		"KIOTVIET_ALERT_WEBHOOK_URL", webhookURL,
	)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestRedaction(t *testing.T) {
	c := fullConfig(t)
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c, "cron", c.CronSecret)
	marshalled, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		//lint:ignore S1025 the %s verb itself is what is tested: it must redact too
		"%s": fmt.Sprintf("%s", c), "pointer %v": fmt.Sprintf("%v", &c),
		"field %v":  fmt.Sprintf("%v %s %q %x %#v %v", c.CronSecret, c.JWTSecret, c.ServiceRoleKey, c.Alerts.WebhookURL, c.DatabaseURL, c.EncryptionKeys),
		"slog text": text.String(), "slog json": js.String(), "json": string(marshalled),
	}
	for what, out := range outputs {
		assertNoSecrets(t, what, out)
	}
	// Redacted, but still useful: what is set, where the database is, which key encrypts.
	s := c.String()
	for _, want := range []string{"cron_secret=set", "127.0.0.1:54322", "postgres:xxxxx@", "primary: k1", "concurrency=4"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %s; want it to contain %q", s, want)
		}
	}
}

func TestAuthConfigWorks(t *testing.T) {
	c := fullConfig(t)
	a, err := auth.New(c.Auth(nil, nil))
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	r := httptest.NewRequest("POST", "/functions/v1/kiotviet-schedule-sync", nil)
	r.Header.Set("X-Cron-Secret", cronSecret)
	if caller, err := a.Authenticate(r); err != nil || caller.Kind != auth.CronSecret {
		t.Fatalf("cron secret from config: %+v, %v", caller, err)
	}
	r = httptest.NewRequest("POST", "/functions/v1/kiotviet-sync", nil)
	r.Header.Set("apikey", sbSecret)
	if caller, err := a.Authenticate(r); err != nil || caller.Kind != auth.ServiceRole {
		t.Fatalf("service key from config: %+v, %v", caller, err)
	}
}

func TestKeyringFromLegacyOnly(t *testing.T) {
	c, err := Load(env(with(minimal(), "KIOTVIET_ENCRYPTION_KEY", encKey)))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := c.Keyring()
	if err != nil || kr.PrimaryID() != secret.LegacyKeyID {
		t.Fatalf("Keyring: %v, %v", kr, err)
	}
}

func TestLoadDotEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	const unique = "KVSYNC_TEST_ONLY_FROM_FILE_3B1F"
	content := "# comment\nDATABASE_URL=" + dbURL + "\nKVSYNC_CONCURRENCY=6\nKVSYNC_LOG_LEVEL=warn\nKVSYNC_ADDR=:7000\n" + unique + "=x\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	real := map[string]string{"KVSYNC_CONCURRENCY": "2", "KVSYNC_LOG_LEVEL": ""}
	getenv, err := LoadDotEnv(path, env(real))
	if err != nil {
		t.Fatalf("LoadDotEnv: %v", err)
	}
	c, err := Load(getenv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Concurrency != 2 {
		t.Errorf("Concurrency = %d, want 2 (the real environment wins over .env)", c.Concurrency)
	}
	if c.LogLevel != slog.LevelWarn || c.Addr != ":7000" || c.DatabaseURL.Reveal() != dbURL {
		t.Errorf("values from .env not used: %v", c)
	}
	if _, ok := os.LookupEnv(unique); ok {
		t.Fatal("LoadDotEnv modified the process environment")
	}

	// No file: the environment alone.
	getenv, err = LoadDotEnv(filepath.Join(dir, "missing.env"), env(real))
	if err != nil || getenv("KVSYNC_CONCURRENCY") != "2" || getenv("DATABASE_URL") != "" {
		t.Fatalf("missing file: err=%v", err)
	}

	// A broken file is reported by path, without the parser's quote of the file's secrets.
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("BAD-NAME=x\nKIOTVIET_CRON_SECRET="+cronSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDotEnv(bad, env(nil))
	if err == nil || !strings.Contains(err.Error(), "bad.env") {
		t.Fatalf("broken file: %v", err)
	}
	assertNoSecrets(t, "dotenv error", err.Error())
}

// TestEnvExampleListsEveryVariable keeps the repository's .env.example in step with Load: every
// variable Load reads has a line there, and the example loads as it stands.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	const example = "../../.env.example"
	file, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	_, _ = Load(func(name string) string { read[name] = true; return "" })
	if len(read) < 17 {
		t.Fatalf("Load read only %d variables", len(read))
	}
	for name := range read {
		if !strings.Contains(string(file), "\n"+name+"=") {
			t.Errorf(".env.example has no line for %s", name)
		}
	}
	getenv, err := LoadDotEnv(example, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(getenv); err != nil {
		t.Fatalf(".env.example does not load: %v", err)
	}
}

// The log redactor gets every secret of the configuration: each Secret field, each key of a list, and
// the database URL's password.
func TestSecretValuesCoverEverySecret(t *testing.T) {
	second := "sb_secret_Second0123456789abcdefghijkl"
	c, err := Load(env(with(minimal(), "KIOTVIET_CRON_SECRET", cronSecret, "SUPABASE_JWT_SECRET", jwtSecret,
		"SUPABASE_SECRET_KEY", sbSecret+","+second, "KIOTVIET_ENCRYPTION_KEYS", "k1:"+encKey,
		"KIOTVIET_ALERT_WEBHOOK_URL", webhookURL,
		"KIOTVIET_ALERT_SMTP_URL", "smtps://alerts:smtp-pass-0123456@smtp.example.com:465",
		"KIOTVIET_ALERT_SMTP_FROM", "kvsync@example.com", "KIOTVIET_ALERT_SMTP_TO", "ops@example.com",
		"KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN", "123456:bot-token-abcdefghij", "KIOTVIET_ALERT_TELEGRAM_CHAT_ID", "-100",
		"KVSYNC_METRICS_TOKEN", "metrics-token-0123456789")))
	if err != nil {
		t.Fatal(err)
	}
	got := c.SecretValues()
	for _, want := range []string{dbURL, "db-pass-7f3a9c", cronSecret, jwtSecret, sbSecret, second, encKey, webhookURL,
		"smtp-pass-0123456", "123456:bot-token-abcdefghij", "bot-token-abcdefghij", "metrics-token-0123456789"} {
		if !slices.Contains(got, want) {
			t.Errorf("SecretValues lacks %q", want)
		}
	}
}
