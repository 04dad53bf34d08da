// Package config reads kvsync's environment once at start, applies defaults, validates every
// value and reports each problem by variable name, so a bad deployment stops before it serves a
// request. It never reads the process environment itself: callers pass os.Getenv (or the
// function LoadDotEnv returns), which keeps tests hermetic and the package free of global state.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/kvsync/kvsync/internal/vocab"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/secret"
)

// Defaults, applied by Load when the variable is unset or empty.
const (
	DefaultTokenURL         = "https://id.kiotviet.vn/connect/token"
	DefaultAPIURL           = "https://public.kiotapi.com"
	DefaultRateLimitPerHour = 5000 // KiotViet's documented per-shop GET budget
	DefaultAddr             = ":8080"
	DefaultConcurrency      = 4
	DefaultReadConcurrency  = 4 // pages of one listing requested at once (kiotviet.DefaultReadConcurrency says why)
	DefaultLeaseSeconds     = int(vocab.DefaultLease / time.Second)
	DefaultMaxConnections   = 512
	DefaultStockScanHours   = 6
	DefaultLogLevel         = slog.LevelInfo
)

// Bounds Load enforces; outside them a value is a typo, not a choice.
const (
	MaxRateLimitPerHour = 1_000_000
	MaxConcurrency      = 256
	MaxReadConcurrency  = 16
	// MinCronSecretLen keeps the cron secret out of guessing range; `openssl rand -hex 32` gives 64.
	MinCronSecretLen = 32
	// MinJWTSecretLen is Supabase's own minimum for the project JWT secret.
	MinJWTSecretLen = 32
)

// Secret is a string that must not be printed. Every formatting path (fmt verbs, slog, JSON,
// text marshalling) shows "[redacted]"; Reveal returns the value for the one place that uses it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value. Call it only where the value is handed to its consumer.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value was given, which is all logs may say about a secret.
func (s Secret) IsSet() bool { return s != "" }

// String redacts the value for fmt's %v, %s, %q and %x.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the value for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue redacts the value for slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the value for encoding/json and other text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is every setting of DESIGN.md §6, validated. Secrets are typed Secret so that printing a
// Config, or any field of it, never shows them.
type Config struct {
	// DatabaseURL is DATABASE_URL, or SUPABASE_DB_URL when DATABASE_URL is unset (Supabase sets
	// the latter in its own runtimes). It carries the database password.
	DatabaseURL Secret
	// DatabaseURLVar names the variable DatabaseURL came from, for messages ("" when neither).
	DatabaseURLVar string
	// SupabaseURL is SUPABASE_URL without a trailing slash; with ServiceRoleKey and no
	// DatabaseURL it selects the PostgREST backend.
	SupabaseURL string
	// SecretKeys is SUPABASE_SECRET_KEY: one or more (comma-separated) of Supabase's secret API keys
	// (sb_secret_…). Each grants service access; the first is the one kvsync itself sends (PostgREST,
	// fan-out). Several let a key be rotated without downtime.
	SecretKeys []Secret
	// ServiceRoleKey is SUPABASE_SERVICE_ROLE_KEY: the legacy service_role JWT (an sb_secret_ key is
	// accepted here too). Still accepted while Supabase keeps legacy keys enabled.
	ServiceRoleKey Secret
	// JWTSecret is SUPABASE_JWT_SECRET, for HS256 user tokens.
	JWTSecret Secret
	// JWKSURL is SUPABASE_JWKS_URL, for ES256/RS256 user tokens; defaults to
	// SUPABASE_URL + "/auth/v1/.well-known/jwks.json" when SUPABASE_URL is set.
	JWKSURL string
	// JWTIssuer is SUPABASE_JWT_ISSUER, the iss every JWT must carry; defaults to SUPABASE_URL +
	// "/auth/v1" (what Supabase Auth writes) when SUPABASE_URL is set, else no issuer is required.
	JWTIssuer string
	// JWTAudience is SUPABASE_JWT_AUDIENCE, an aud every JWT must carry; default "authenticated".
	JWTAudience string
	// CronSecret is KIOTVIET_CRON_SECRET, the dedicated secret pg_cron sends the dispatcher.
	CronSecret Secret
	// EncryptionKey is the legacy KIOTVIET_ENCRYPTION_KEY (base64 of 32 bytes).
	EncryptionKey Secret
	// EncryptionKeys is KIOTVIET_ENCRYPTION_KEYS ("id:base64,…", first encrypts).
	EncryptionKeys Secret
	// TokenURL is KIOTVIET_TOKEN_URL, KiotViet's OAuth token endpoint (the fake's, locally).
	TokenURL string
	// APIURL is KIOTVIET_API_URL, KiotViet's public API base (the fake's, locally).
	APIURL string
	// RateLimitPerHour is KIOTVIET_RATE_LIMIT_PER_HOUR, the GET budget per credential.
	RateLimitPerHour int
	// ReadConcurrency is KIOTVIET_READ_CONCURRENCY, how many pages of one listing are requested at
	// once (1: one after another). The hourly budget counts the same calls either way.
	ReadConcurrency int
	// SyncURL is KIOTVIET_SYNC_URL: when set, the dispatcher fans runs out to this
	// kiotviet-sync endpoint instead of running them in process.
	SyncURL string
	// Alerts is the KIOTVIET_ALERT_* settings: channels (webhook, email, Telegram) and thresholds.
	Alerts Alerts
	// Metrics is who may read GET /metrics (KVSYNC_METRICS_*).
	Metrics Metrics
	// Addr is KVSYNC_ADDR, the HTTP listen address.
	Addr string
	// Concurrency is KVSYNC_CONCURRENCY, how many syncs one replica runs at once.
	Concurrency int
	// LeaseSeconds is KVSYNC_LEASE_SECONDS: how long a run stays this replica's without a heartbeat.
	// A replica that dies mid-run has its run rescued this long after its last heartbeat.
	LeaseSeconds int
	// MaxConnections is KVSYNC_MAX_CONNECTIONS: open HTTP connections kvsync serve keeps at most (idle
	// ones are closed first to make room); keep it below ulimit -n minus the database pool.
	MaxConnections int
	// StockScanHours is KVSYNC_STOCK_SCAN_HOURS: while a credential's stock webhooks are healthy (its
	// stock.update hook active, an event in the last hour, none parked), its inventory runs read
	// /productOnHands in full only this often. 0 scans on every run.
	StockScanHours int
	// CORSOrigins is KVSYNC_CORS_ORIGINS: browser origins allowed to call the functions
	// (scheme://host[:port]), or ["*"]. Empty means no cross-origin access.
	CORSOrigins []string
	// LogLevel is KVSYNC_LOG_LEVEL: debug, info, warn or error.
	LogLevel slog.Level

	keyring *secret.Keyring
}

// Error is one problem with one variable. Load returns all of them joined, so an operator fixes
// a deployment in one pass; errors.As finds the first.
type Error struct {
	Var     string // the environment variable, e.g. "KVSYNC_CONCURRENCY"
	Problem string // what is wrong, never the value of a secret
}

// Error reads "VARIABLE: problem".
func (e *Error) Error() string { return e.Var + ": " + e.Problem }

type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) get(name string) string { return strings.TrimSpace(l.getenv(name)) }

func (l *loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, &Error{Var: name, Problem: fmt.Sprintf(format, args...)})
}

// Load reads every variable through getenv, applies defaults, validates, and returns the first
// Config that passed, or an error listing every problem by variable name. Secrets never appear in
// the error. It requires a database backend: DATABASE_URL/SUPABASE_DB_URL, or SUPABASE_URL with
// SUPABASE_SERVICE_ROLE_KEY. What only some commands need (encryption keys, caller credentials) is
// checked by Keyring and Auth, so `kvsync migrate` runs without them.
func Load(getenv func(string) string) (Config, error) {
	l := &loader{getenv: getenv}
	var c Config

	// Database.
	switch {
	case l.get("DATABASE_URL") != "":
		c.DatabaseURLVar = "DATABASE_URL"
	case l.get("SUPABASE_DB_URL") != "":
		c.DatabaseURLVar = "SUPABASE_DB_URL"
	}
	if c.DatabaseURLVar != "" {
		c.DatabaseURL = Secret(l.get(c.DatabaseURLVar))
		if problem := checkPostgresURL(c.DatabaseURL.Reveal()); problem != "" {
			l.fail(c.DatabaseURLVar, "%s", problem)
		}
	}

	// Supabase.
	c.SupabaseURL = strings.TrimRight(l.get("SUPABASE_URL"), "/")
	supabaseURLOK := l.httpURL("SUPABASE_URL", c.SupabaseURL, false)
	for i, k := range strings.Split(l.get("SUPABASE_SECRET_KEY"), ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			if l.get("SUPABASE_SECRET_KEY") != "" {
				l.fail("SUPABASE_SECRET_KEY", "key %d is empty; separate keys with single commas", i+1)
			}
			continue
		case strings.HasPrefix(k, "sb_publishable_"):
			l.fail("SUPABASE_SECRET_KEY", "key %d is a publishable key (sb_publishable_…), which opens nothing; want a secret key (sb_secret_…)", i+1)
		case !strings.HasPrefix(k, "sb_secret_"):
			l.fail("SUPABASE_SECRET_KEY", "key %d is not a secret key (sb_secret_…); a legacy service_role JWT goes in SUPABASE_SERVICE_ROLE_KEY", i+1)
		}
		c.SecretKeys = append(c.SecretKeys, Secret(k))
	}
	c.ServiceRoleKey = Secret(l.get("SUPABASE_SERVICE_ROLE_KEY"))
	if c.ServiceRoleKey.IsSet() {
		if err := auth.ValidateServiceKey(c.ServiceRoleKey.Reveal()); err != nil {
			l.fail("SUPABASE_SERVICE_ROLE_KEY", "%v", err)
		}
	}
	c.JWTSecret = Secret(l.get("SUPABASE_JWT_SECRET"))
	if n := len(c.JWTSecret); n > 0 && n < MinJWTSecretLen {
		l.fail("SUPABASE_JWT_SECRET", "too short (%d characters); Supabase JWT secrets have at least %d", n, MinJWTSecretLen)
	}
	c.JWKSURL = l.get("SUPABASE_JWKS_URL")
	l.httpURL("SUPABASE_JWKS_URL", c.JWKSURL, false)
	c.JWTIssuer = l.get("SUPABASE_JWT_ISSUER")
	if c.JWTIssuer == "" && c.SupabaseURL != "" && supabaseURLOK {
		c.JWTIssuer = c.SupabaseURL + "/auth/v1"
	}
	c.JWTAudience = cmp.Or(l.get("SUPABASE_JWT_AUDIENCE"), auth.DefaultAudience)
	if c.JWKSURL == "" && c.SupabaseURL != "" && supabaseURLOK {
		c.JWKSURL = c.SupabaseURL + "/auth/v1/.well-known/jwks.json"
	}
	if c.DatabaseURLVar == "" && (c.SupabaseURL == "" || !c.ServiceKey().IsSet()) {
		l.fail("DATABASE_URL", "not set: set DATABASE_URL (or SUPABASE_DB_URL), or SUPABASE_URL with SUPABASE_SECRET_KEY (or the legacy SUPABASE_SERVICE_ROLE_KEY)")
	}

	// Secrets kvsync owns.
	c.CronSecret = Secret(l.get("KIOTVIET_CRON_SECRET"))
	if n := len(c.CronSecret); n > 0 && n < MinCronSecretLen {
		l.fail("KIOTVIET_CRON_SECRET", "too short (%d characters); want at least %d, e.g. from `openssl rand -hex 32`", n, MinCronSecretLen)
	}
	c.EncryptionKeys = Secret(l.get(secret.KeysEnv))
	c.EncryptionKey = Secret(l.get(secret.LegacyEnv))
	if c.EncryptionKeys.IsSet() || c.EncryptionKey.IsSet() {
		kr, err := secret.ParseKeys(c.EncryptionKeys.Reveal(), c.EncryptionKey.Reveal())
		if err != nil {
			var ce *secret.ConfigError
			if errors.As(err, &ce) {
				l.fail(ce.Var, "%s", ce.Problem)
			} else {
				l.fail(secret.KeysEnv, "invalid")
			}
		}
		c.keyring = kr
	}

	// KiotViet.
	c.TokenURL = cmp.Or(l.get("KIOTVIET_TOKEN_URL"), DefaultTokenURL)
	l.httpURL("KIOTVIET_TOKEN_URL", c.TokenURL, false)
	c.APIURL = strings.TrimRight(cmp.Or(l.get("KIOTVIET_API_URL"), DefaultAPIURL), "/")
	l.httpURL("KIOTVIET_API_URL", c.APIURL, false)
	c.RateLimitPerHour = l.intIn("KIOTVIET_RATE_LIMIT_PER_HOUR", DefaultRateLimitPerHour, 1, MaxRateLimitPerHour)
	c.ReadConcurrency = l.intIn("KIOTVIET_READ_CONCURRENCY", DefaultReadConcurrency, 1, MaxReadConcurrency)
	c.SyncURL = l.get("KIOTVIET_SYNC_URL")
	l.httpURL("KIOTVIET_SYNC_URL", c.SyncURL, false)
	c.Alerts = l.alerts()
	c.Metrics = l.metrics()

	// The process.
	c.Addr = cmp.Or(l.get("KVSYNC_ADDR"), DefaultAddr)
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		l.fail("KVSYNC_ADDR", "%q is not host:port (e.g. :8080 or 127.0.0.1:8080)", c.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		l.fail("KVSYNC_ADDR", "port %q is not a number from 0 to 65535", port)
	}
	c.Concurrency = l.intIn("KVSYNC_CONCURRENCY", DefaultConcurrency, 1, MaxConcurrency)
	c.LeaseSeconds = l.intIn("KVSYNC_LEASE_SECONDS", DefaultLeaseSeconds, 4, 3600)
	c.MaxConnections = l.intIn("KVSYNC_MAX_CONNECTIONS", DefaultMaxConnections, 16, 1_000_000)
	c.StockScanHours = l.intIn("KVSYNC_STOCK_SCAN_HOURS", DefaultStockScanHours, 0, 168)
	c.CORSOrigins = l.origins("KVSYNC_CORS_ORIGINS")
	c.LogLevel = DefaultLogLevel
	if v := l.get("KVSYNC_LOG_LEVEL"); v != "" {
		switch strings.ToLower(v) {
		case "debug":
			c.LogLevel = slog.LevelDebug
		case "info":
			c.LogLevel = slog.LevelInfo
		case "warn", "warning":
			c.LogLevel = slog.LevelWarn
		case "error":
			c.LogLevel = slog.LevelError
		default:
			l.fail("KVSYNC_LOG_LEVEL", "%q is not one of debug, info, warn, error", v)
		}
	}

	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

// httpURL checks an optional absolute http(s) URL and reports whether it is usable (false when
// empty or broken). For secret URLs the problem never quotes the value or the parser's message
// (which quotes it).
func (l *loader) httpURL(name, v string, isSecret bool) bool {
	if v == "" {
		return false
	}
	u, err := url.Parse(v)
	n := len(l.errs)
	switch {
	case err != nil && isSecret:
		l.fail(name, "not a valid URL")
	case err != nil:
		l.fail(name, "not a valid URL: %v", errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		l.fail(name, "want an http:// or https:// URL")
	case u.Host == "":
		l.fail(name, "URL has no host")
	}
	return len(l.errs) == n
}

// checkPostgresURL accepts what pgx accepts and Supabase hands out: a postgres:// or
// postgresql:// URL with a host, or a keyword=value DSN. The problem never contains the value.
func checkPostgresURL(v string) string {
	if !strings.Contains(v, "://") {
		if strings.Contains(v, "=") {
			return "" // keyword=value form; pgx reports its own problems at connect time
		}
		return "want postgres://user:password@host:port/db or a keyword=value DSN"
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return "not a valid URL (if the password has special characters, percent-encode them)"
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return "want a postgres:// or postgresql:// URL"
	case u.Host == "" && u.Query().Get("host") == "":
		return "URL has no host"
	}
	return ""
}

func (l *loader) intIn(name string, def, lo, hi int) int {
	v := l.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.fail(name, "%q is not a whole number", v)
		return def
	}
	if n < lo || n > hi {
		l.fail(name, "%d is out of range %d–%d", n, lo, hi)
		return def
	}
	return n
}

// origins parses the CORS allow-list. Browsers send Origin as scheme://host[:port] exactly, so a
// path or trailing slash would silently never match; it is refused instead.
func (l *loader) origins(name string) []string {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			l.fail(name, "%q is not an origin; want scheme://host[:port] with no path or trailing slash", o)
			continue
		}
		out = append(out, strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host))
	}
	if len(out) > 1 {
		for _, o := range out {
			if o == "*" {
				l.fail(name, `"*" allows every origin; list it alone or not at all`)
				break
			}
		}
	}
	return out
}

// Keyring returns the encryption keys parsed at Load, or an error naming the variables when none
// were set. Commands that touch credentials call it; others need no key.
func (c Config) Keyring() (*secret.Keyring, error) {
	if c.keyring == nil {
		return nil, &Error{Var: secret.KeysEnv, Problem: "not set (nor the legacy " + secret.LegacyEnv + "); generate one with `kvsync keys generate`"}
	}
	return c.keyring, nil
}

// Auth is the auth.Config this configuration describes, for the HTTP server. client fetches the
// JWKS and now is the clock; both may be nil for the defaults. auth.New reports a configuration
// that would accept nobody.
func (c Config) Auth(client *http.Client, now func() time.Time) auth.Config {
	cfg := auth.Config{
		CronSecret: c.CronSecret.Reveal(),
		JWTSecret:  c.JWTSecret.Reveal(),
		JWKSURL:    c.JWKSURL,
		Issuer:     c.JWTIssuer,
		Audience:   c.JWTAudience,
		HTTPClient: client,
		Now:        now,
	}
	for _, k := range c.SecretKeys {
		cfg.ServiceKeys = append(cfg.ServiceKeys, k.Reveal())
	}
	if c.ServiceRoleKey.IsSet() {
		cfg.ServiceKeys = append(cfg.ServiceKeys, c.ServiceRoleKey.Reveal())
	}
	return cfg
}

// ServiceKey is the key kvsync sends as a Supabase client (the PostgREST backend, fan-out without a
// cron secret): the first SUPABASE_SECRET_KEY, else SUPABASE_SERVICE_ROLE_KEY.
func (c Config) ServiceKey() Secret {
	if len(c.SecretKeys) > 0 {
		return c.SecretKeys[0]
	}
	return c.ServiceRoleKey
}

// KeyKind is one kind of Supabase credential kvsync is configured with, for `kvsync doctor`.
type KeyKind struct {
	Name   string // e.g. "secret key (sb_secret_…)"
	Var    string // the variable it comes from
	Legacy bool   // one of the kinds Supabase is retiring (service_role JWT, HS256 JWT secret)
}

// KeyKinds lists the Supabase credentials configured: for service access (secret keys, the legacy
// service_role JWT) and for verifying users' tokens (the JWKS of asymmetric signing keys, the legacy
// HS256 JWT secret).
func (c Config) KeyKinds() []KeyKind {
	var out []KeyKind
	if n := len(c.SecretKeys); n > 0 {
		name := "secret key (sb_secret_…)"
		if n > 1 {
			name = fmt.Sprintf("%d secret keys (sb_secret_…)", n)
		}
		out = append(out, KeyKind{Name: name, Var: "SUPABASE_SECRET_KEY"})
	}
	if c.ServiceRoleKey.IsSet() {
		if strings.HasPrefix(c.ServiceRoleKey.Reveal(), "sb_secret_") {
			out = append(out, KeyKind{Name: "secret key (sb_secret_…)", Var: "SUPABASE_SERVICE_ROLE_KEY"})
		} else {
			out = append(out, KeyKind{Name: "legacy service_role JWT", Var: "SUPABASE_SERVICE_ROLE_KEY", Legacy: true})
		}
	}
	if c.JWKSURL != "" {
		out = append(out, KeyKind{Name: "JWT signing keys (ES256/RS256, from the JWKS)", Var: "SUPABASE_JWKS_URL"})
	}
	if c.JWTSecret.IsSet() {
		out = append(out, KeyKind{Name: "legacy JWT secret (HS256)", Var: "SUPABASE_JWT_SECRET", Legacy: true})
	}
	return out
}

// String lists the configuration for a startup log line: plain values as they are, the database
// URL with its password masked, other secrets as set or unset.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", a.Key, a.Value.String())
	}
	return b.String()
}

// GoString keeps %#v, which would otherwise bypass String, redacted too.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// LogValue makes slog.Any("config", cfg) a redacted group.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.attrs()...) }

func (c Config) attrs() []slog.Attr {
	set := func(s Secret) string {
		if s.IsSet() {
			return "set"
		}
		return "unset"
	}
	db := set(c.DatabaseURL)
	if u, err := url.Parse(c.DatabaseURL.Reveal()); err == nil && u.Host != "" {
		u.RawQuery = ""   // may hold password=…
		db = u.Redacted() // password shown as xxxxx
	}
	keys := "unset"
	if c.keyring != nil {
		keys = c.keyring.String() // key ids only
	}
	return []slog.Attr{
		slog.String("database_url", db),
		slog.String("database_url_var", c.DatabaseURLVar),
		slog.String("supabase_url", c.SupabaseURL),
		slog.Int("secret_keys", len(c.SecretKeys)),
		slog.String("service_role_key", set(c.ServiceRoleKey)),
		slog.String("jwt_secret", set(c.JWTSecret)),
		slog.String("jwks_url", c.JWKSURL),
		slog.String("jwt_issuer", c.JWTIssuer),
		slog.String("jwt_audience", c.JWTAudience),
		slog.String("cron_secret", set(c.CronSecret)),
		slog.String("encryption_keys", keys),
		slog.String("token_url", c.TokenURL),
		slog.String("api_url", c.APIURL),
		slog.Int("rate_limit_per_hour", c.RateLimitPerHour),
		slog.Int("read_concurrency", c.ReadConcurrency),
		slog.String("sync_url", c.SyncURL),
		slog.String("alert_webhook_url", set(c.Alerts.WebhookURL)),
		slog.String("alert_smtp_url", set(c.Alerts.SMTPURL)),
		slog.String("alert_telegram_bot_token", set(c.Alerts.TelegramToken)),
		slog.String("alert_lang", c.Alerts.Lang),
		slog.String("metrics_auth", metricsAuth(c.Metrics)),
		slog.String("addr", c.Addr),
		slog.Int("concurrency", c.Concurrency),
		slog.Int("lease_seconds", c.LeaseSeconds),
		slog.Int("max_connections", c.MaxConnections),
		slog.Int("stock_scan_hours", c.StockScanHours),
		slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		slog.String("log_level", c.LogLevel.String()),
	}
}

// SecretValues are the values of every Secret field of c, for a log redactor (redact.New): each whole
// value, each part of a list (KIOTVIET_ENCRYPTION_KEYS's "id:base64,…"), and a database URL's password.
// Found by type, so a Secret field added later is covered without touching this.
func (c Config) SecretValues() []string {
	var out []string
	secretFields(reflect.ValueOf(c), func(s Secret) { out = append(out, secretParts(s)...) })
	return out
}

// secretFields calls f with every Secret among v's exported fields: single ones, lists, and those of
// nested settings structs (Alerts, Metrics).
func secretFields(v reflect.Value, f func(Secret)) {
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		fv := v.Field(i)
		switch x := fv.Interface().(type) {
		case Secret:
			f(x)
		case []Secret:
			for _, s := range x {
				f(s)
			}
		default:
			if fv.Kind() == reflect.Struct {
				secretFields(fv, f)
			}
		}
	}
}

// secretParts is a secret's value, each part of a list in it, and a URL's password.
func secretParts(s Secret) []string {
	if !s.IsSet() {
		return nil
	}
	raw := s.Reveal()
	out := []string{raw}
	for _, item := range strings.Split(raw, ",") {
		out = append(out, strings.TrimSpace(item))
		if _, key, ok := strings.Cut(item, ":"); ok && !strings.Contains(item, "://") {
			out = append(out, strings.TrimSpace(key))
		}
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
	}
	return out
}

func metricsAuth(m Metrics) string {
	switch {
	case m.Token.IsSet() && m.User != "":
		return "bearer+basic"
	case m.Token.IsSet():
		return "bearer"
	case m.User != "":
		return "basic"
	}
	return "open"
}
