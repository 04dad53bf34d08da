package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/errs"

	"github.com/golang-jwt/jwt/v5"
)

const (
	jwtSecret  = "super-secret-jwt-token-with-at-least-32-characters-long"
	cronSecret = "cron-secret-0123456789abcdef0123456789abcdef"
	sbSecret   = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
	// The Supabase CLI's local anon and service_role keys (HS256 with jwtSecret, exp 1983812996).
	localAnon    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
	localService = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
	localPublish = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
	userID       = "0d6c3a5e-2f1b-4c8e-9d7a-1b2c3d4e5f60"
)

// clock is a settable clock; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func userClaims(now time.Time, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": userID, "role": "authenticated", "aud": "authenticated", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func signHS(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signWith(t *testing.T, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/functions/v1/kiotviet-sync", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func mustNew(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// hsAuth is the usual local setup: cron secret, the local service_role JWT as service key,
// HS256 user tokens.
func hsAuth(t *testing.T, clk *clock) *Authenticator {
	return mustNew(t, Config{CronSecret: cronSecret, ServiceKeys: []string{localService, sbSecret}, JWTSecret: jwtSecret, Now: clk.Now})
}

func wantRefused(t *testing.T, a *Authenticator, r *http.Request, wantMsg string) {
	t.Helper()
	c, err := a.Authenticate(r)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("got caller %+v, err %v; want ErrUnauthenticated", c, err)
	}
	var ae *errs.Error
	if !errors.As(err, &ae) || ae.Code != errs.Unauthorized {
		t.Fatalf("error %T %v is not an *errs.Error coded unauthorized", err, err)
	}
	if wantMsg != "" && !strings.Contains(ae.Message, wantMsg) {
		t.Fatalf("message %q, want it to mention %q", ae.Message, wantMsg)
	}
	for _, secret := range []string{jwtSecret, cronSecret, sbSecret, localService, localAnon} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q leaks a secret", err)
		}
	}
}

func wantCaller(t *testing.T, a *Authenticator, r *http.Request, kind Kind) Caller {
	t.Helper()
	c, err := a.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if c.Kind != kind {
		t.Fatalf("kind = %v, want %v", c.Kind, kind)
	}
	return c
}

func TestNoCredentials(t *testing.T) {
	wantRefused(t, hsAuth(t, newClock()), request(), "missing")
}

func TestAnonKeyRefused(t *testing.T) {
	a := hsAuth(t, newClock())
	// The local anon key is a validly signed HS256 JWT; its role alone must refuse it.
	wantRefused(t, a, request(bearer(localAnon)...), "anon")
	wantRefused(t, a, request(append(bearer(localAnon), "apikey", localAnon)...), "anon")
	wantRefused(t, a, request("apikey", localAnon), "")
	wantRefused(t, a, request("apikey", localPublish), "")
	wantRefused(t, a, request(bearer(localPublish)...), "")
}

func TestUserJWT(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	tok := signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"app_metadata": map[string]any{"provider": "email"}}))
	// The browser client sends the anon key as apikey beside the user's token.
	c := wantCaller(t, a, request(append(bearer(tok), "apikey", localAnon)...), User)
	if c.UserID != userID || c.Role != "authenticated" || c.IsService() {
		t.Fatalf("caller %+v", c)
	}
	if AdminFromClaims(c.Claims) {
		t.Fatal("plain user reported as admin")
	}
}

func TestAdminJWT(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	for _, role := range []string{"admin", "owner"} {
		tok := signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"app_metadata": map[string]any{"role": role}}))
		c := wantCaller(t, a, request(bearer(tok)...), User)
		if !AdminFromClaims(c.Claims) {
			t.Fatalf("app_metadata.role=%s not reported as admin", role)
		}
	}
	// user_metadata is writable by the user and must not make an admin.
	tok := signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"user_metadata": map[string]any{"role": "admin"}, "app_metadata": map[string]any{"role": "staff"}}))
	if c := wantCaller(t, a, request(bearer(tok)...), User); AdminFromClaims(c.Claims) {
		t.Fatal("user_metadata.role=admin or app_metadata.role=staff made an admin")
	}
}

func TestCronSecret(t *testing.T) {
	a := hsAuth(t, newClock())
	for _, r := range []*http.Request{request(bearer(cronSecret)...), request("X-Cron-Secret", cronSecret)} {
		if c := wantCaller(t, a, r, CronSecret); !c.IsService() {
			t.Fatal("cron caller is not a service caller")
		}
	}
	wantRefused(t, a, request(bearer(cronSecret+"x")...), "")
	wantRefused(t, a, request(bearer(cronSecret[:len(cronSecret)-1])...), "")
	wantRefused(t, a, request("X-Cron-Secret", "wrong"), "cron")
	// A wrong X-Cron-Secret is not rescued by a good Authorization header.
	wantRefused(t, a, request(append(bearer(sbSecret), "X-Cron-Secret", "wrong")...), "cron")
}

func TestServiceRoleKey(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	for _, r := range []*http.Request{
		request(bearer(sbSecret)...),
		request("apikey", sbSecret),
		request(append(bearer(sbSecret), "apikey", sbSecret)...),
		request(bearer(localService)...),
		request("apikey", localService),
	} {
		if c := wantCaller(t, a, r, ServiceRole); !c.IsService() || c.Role != "service_role" {
			t.Fatalf("caller %+v", c)
		}
	}
	// A service_role JWT that is not the configured key but is signed with the project secret.
	minted := signHS(t, jwtSecret, jwt.MapClaims{"role": "service_role", "aud": "authenticated", "exp": clk.Now().Add(time.Hour).Unix()})
	wantCaller(t, a, request(bearer(minted)...), ServiceRole)
	// A user token in Authorization wins over the service key in apikey, as on Supabase.
	user := signHS(t, jwtSecret, userClaims(clk.Now(), nil))
	wantCaller(t, a, request(append(bearer(user), "apikey", sbSecret)...), User)
	wantRefused(t, a, request(bearer("sb_secret_wrong")...), "")
}

func TestServiceKeyComparedWithoutJWTSecret(t *testing.T) {
	// With no way to verify JWTs, the legacy service_role key still works by comparison alone.
	a := mustNew(t, Config{ServiceKeys: []string{localService}})
	wantCaller(t, a, request(bearer(localService)...), ServiceRole)
	wantRefused(t, a, request(bearer(localAnon)...), "")
}

func TestValidateServiceKey(t *testing.T) {
	for _, k := range []string{sbSecret, localService} {
		if err := ValidateServiceKey(k); err != nil {
			t.Errorf("%.12s…: %v", k, err)
		}
	}
	for _, k := range []string{localAnon, localPublish, "hunter2", "a.b.c"} {
		err := ValidateServiceKey(k)
		if err == nil {
			t.Errorf("%.12s… accepted as a service key", k)
			continue
		}
		if strings.Contains(err.Error(), k) {
			t.Errorf("error %q contains the key", err)
		}
	}
	if _, err := New(Config{ServiceKeys: []string{localAnon}}); err == nil {
		t.Fatal("New accepted the anon key as a service key")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted a config that accepts nobody")
	}
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	now := clk.Now()
	expired := signHS(t, jwtSecret, userClaims(now, jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}))
	wantRefused(t, a, request(bearer(expired)...), "expired")

	withinLeeway := signHS(t, jwtSecret, userClaims(now, jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}))
	wantCaller(t, a, request(bearer(withinLeeway)...), User)

	noExp := userClaims(now, nil)
	delete(noExp, "exp")
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, noExp))...), "expiry")

	// The same token flips from accepted to refused as the injected clock passes exp+leeway.
	tok := signHS(t, jwtSecret, userClaims(now, nil))
	wantCaller(t, a, request(bearer(tok)...), User)
	clk.Advance(time.Hour + DefaultLeeway + time.Second)
	wantRefused(t, a, request(bearer(tok)...), "expired")
}

func TestBadSignature(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	forged := signHS(t, "another-secret-that-is-at-least-32-characters", userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(forged)...), "invalid token")

	good := signHS(t, jwtSecret, userClaims(clk.Now(), nil))
	parts := strings.Split(good, ".")
	admin, _ := json.Marshal(userClaims(clk.Now(), jwt.MapClaims{"app_metadata": map[string]any{"role": "admin"}}))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(admin) + "." + parts[2]
	wantRefused(t, a, request(bearer(tampered)...), "invalid token")
	wantRefused(t, a, request(bearer("not.a.jwt")...), "invalid token")
	wantRefused(t, a, request("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("a:b"))), "Bearer")
}

func TestAlgNoneRefused(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, userClaims(clk.Now(), nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, a, request(bearer(tok)...), "invalid token")
	// Same with a stray signature segment.
	wantRefused(t, a, request(bearer(tok+"AAAA")...), "invalid token")
}

// jwksServer serves a mutable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []map[string]string
	status int
	hits   atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	raw, err := k.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		panic(err)
	}
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig", "x": b64u(raw[1:33]), "y": b64u(raw[33:])}
}

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

type asymKeys struct {
	ec1, ec2 *ecdsa.PrivateKey
	rsa      *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     asymKeys
)

func testKeys(t *testing.T) asymKeys {
	keysOnce.Do(func() {
		var err error
		if keys.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keys
}

func jwksAuth(t *testing.T, clk *clock, srv *jwksServer) *Authenticator {
	return mustNew(t, Config{JWKSURL: srv.URL + "/auth/v1/.well-known/jwks.json", HTTPClient: srv.Client(), Now: clk.Now})
}

func TestJWKSES256AndRS256(t *testing.T) {
	k := testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, ecJWK("ec-1", k.ec1), rsaJWK("rsa-1", k.rsa))
	a := jwksAuth(t, clk, srv)

	es := signWith(t, jwt.SigningMethodES256, "ec-1", k.ec1, userClaims(clk.Now(), nil))
	if c := wantCaller(t, a, request(bearer(es)...), User); c.UserID != userID {
		t.Fatalf("caller %+v", c)
	}
	rs := signWith(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, userClaims(clk.Now(), nil))
	wantCaller(t, a, request(bearer(rs)...), User)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (cached)", got)
	}

	// A token claiming a kid whose key is of another type is refused.
	wrongType := signWith(t, jwt.SigningMethodRS256, "ec-1", k.rsa, userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(wrongType)...), "invalid token")
	// Signed by a key the JWKS does not hold, under a known kid.
	impostor := signWith(t, jwt.SigningMethodES256, "ec-1", k.ec2, userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(impostor)...), "invalid token")
	noKid := signWith(t, jwt.SigningMethodES256, "", k.ec1, userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(noKid)...), "invalid token")
}

func TestHS256RefusedWhenOnlyJWKS(t *testing.T) {
	k := testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, rsaJWK("rsa-1", k.rsa))
	a := jwksAuth(t, clk, srv)

	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, userClaims(clk.Now(), nil)))...), "invalid token")
	// The classic confusion: HMAC keyed with the RSA public key the attacker can download.
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	confused := signWith(t, jwt.SigningMethodHS256, "rsa-1", pubDER, userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(confused)...), "invalid token")
	confusedN := signWith(t, jwt.SigningMethodHS256, "rsa-1", k.rsa.N.Bytes(), userClaims(clk.Now(), nil))
	wantRefused(t, a, request(bearer(confusedN)...), "invalid token")
	// And ES/RS tokens are refused when only the HS256 secret is configured.
	hsOnly := hsAuth(t, clk)
	wantRefused(t, hsOnly, request(bearer(signWith(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, userClaims(clk.Now(), nil)))...), "invalid token")
}

func TestUnknownKidRefetchesWithRateLimit(t *testing.T) {
	k := testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, ecJWK("ec-1", k.ec1))
	a := jwksAuth(t, clk, srv)

	wantCaller(t, a, request(bearer(signWith(t, jwt.SigningMethodES256, "ec-1", k.ec1, userClaims(clk.Now(), nil)))...), User)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1", got)
	}

	// Supabase rotated to ec-2, and it is past the refetch rate limit: one refetch finds it.
	srv.set(http.StatusOK, ecJWK("ec-1", k.ec1), ecJWK("ec-2", k.ec2))
	clk.Advance(DefaultJWKSMinRefresh)
	tok2 := signWith(t, jwt.SigningMethodES256, "ec-2", k.ec2, userClaims(clk.Now(), nil))
	wantCaller(t, a, request(bearer(tok2)...), User)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (one refetch for the unknown kid)", got)
	}

	// Made-up kids right after a fetch do not reach the JWKS endpoint.
	for i := range 5 {
		bogus := signWith(t, jwt.SigningMethodES256, "bogus-"+string(rune('a'+i)), k.ec2, userClaims(clk.Now(), nil))
		wantRefused(t, a, request(bearer(bogus)...), "invalid token")
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (refetch is rate limited)", got)
	}
	// Once the rate limit has passed, an unknown kid may fetch again.
	clk.Advance(DefaultJWKSMinRefresh)
	wantRefused(t, a, request(bearer(signWith(t, jwt.SigningMethodES256, "bogus-z", k.ec2, userClaims(clk.Now(), nil)))...), "invalid token")
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("hits = %d, want 3", got)
	}
}

func TestJWKSCacheExpiryAndOutage(t *testing.T) {
	k := testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, ecJWK("ec-1", k.ec1))
	a := jwksAuth(t, clk, srv)
	tok := func() *http.Request {
		return request(bearer(signWith(t, jwt.SigningMethodES256, "ec-1", k.ec1, userClaims(clk.Now(), nil)))...)
	}
	wantCaller(t, a, tok(), User)

	// After the TTL the set is refetched; if that fails, the known key keeps working.
	srv.set(http.StatusInternalServerError)
	clk.Advance(DefaultJWKSCacheTTL)
	wantCaller(t, a, tok(), User)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (refetch after TTL)", got)
	}

	// A key never seen cannot be verified during the outage: 503, not 401.
	clk.Advance(DefaultJWKSMinRefresh)
	_, err := a.Authenticate(request(bearer(signWith(t, jwt.SigningMethodES256, "ec-2", k.ec2, userClaims(clk.Now(), nil)))...))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}

	// Recovery: the key was revoked (removed) meanwhile, so the next refresh stops accepting it.
	srv.set(http.StatusOK, ecJWK("ec-2", k.ec2))
	clk.Advance(DefaultJWKSMinRefresh)
	wantRefused(t, a, tok(), "invalid token")
}

func TestIssuer(t *testing.T) {
	clk := newClock()
	a := mustNew(t, Config{JWTSecret: jwtSecret, Issuer: "https://ref.supabase.co/auth/v1", Now: clk.Now})
	wantCaller(t, a, request(bearer(signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"iss": "https://ref.supabase.co/auth/v1"})))...), User)
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"iss": "https://other.supabase.co/auth/v1"})))...), "another issuer")
}

// The checks beyond the signature (DESIGN.md §4), each on a token that is validly signed with the
// project secret and would otherwise be accepted: the control token is.
func TestJWTClaimsAndHeaderChecks(t *testing.T) {
	clk := newClock()
	const iss = "https://ref.supabase.co/auth/v1"
	a := mustNew(t, Config{JWTSecret: jwtSecret, Issuer: iss, Now: clk.Now})
	now := clk.Now()
	good := jwt.MapClaims{"iss": iss}
	wantCaller(t, a, request(bearer(signHS(t, jwtSecret, userClaims(now, good)))...), User) // control
	with := func(extra jwt.MapClaims) string {
		c := userClaims(now, good)
		for k, v := range extra {
			c[k] = v
		}
		return signHS(t, jwtSecret, c)
	}
	wantRefused(t, a, request(bearer(with(jwt.MapClaims{"aud": "someone-else"}))...), "another audience")
	noAud := userClaims(now, good)
	delete(noAud, "aud")
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, noAud))...), "audience")
	wantRefused(t, a, request(bearer(with(jwt.MapClaims{"iss": "https://evil.example.com/auth/v1"}))...), "another issuer")
	noIss := userClaims(now, nil)
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, noIss))...), "issuer")
	wantRefused(t, a, request(bearer(with(jwt.MapClaims{"iat": now.Add(365 * 24 * time.Hour).Unix()}))...), "not valid yet")
	wantRefused(t, a, request(bearer(with(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}))...), "not valid yet")
	// within the leeway, a clock a little ahead is tolerated
	wantCaller(t, a, request(bearer(with(jwt.MapClaims{"iat": now.Add(DefaultLeeway / 2).Unix(), "nbf": now.Add(DefaultLeeway / 2).Unix()}))...), User)
	// an aud list that includes ours is fine
	wantCaller(t, a, request(bearer(with(jwt.MapClaims{"aud": []string{"other", "authenticated"}}))...), User)

	critTok := jwt.NewWithClaims(jwt.SigningMethodHS256, userClaims(now, good))
	critTok.Header["crit"] = []string{"exp-ext"}
	critTok.Header["exp-ext"] = true
	signed, err := critTok.SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, a, request(bearer(signed)...), "crit")

	// a service-role JWT is checked the same way
	svc := func(extra jwt.MapClaims) string {
		c := jwt.MapClaims{"role": "service_role", "iss": iss, "aud": "authenticated", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return signHS(t, jwtSecret, c)
	}
	wantCaller(t, a, request(bearer(svc(nil))...), ServiceRole)
	wantRefused(t, a, request(bearer(svc(jwt.MapClaims{"aud": "someone-else"}))...), "another audience")
	wantRefused(t, a, request(bearer(svc(jwt.MapClaims{"iss": "supabase"}))...), "another issuer")
	wantRefused(t, a, request(bearer(svc(jwt.MapClaims{"iat": now.Add(24 * time.Hour).Unix()}))...), "not valid yet")

	// the audience is configurable
	b := mustNew(t, Config{JWTSecret: jwtSecret, Issuer: iss, Audience: "erp", Now: clk.Now})
	wantRefused(t, b, request(bearer(signHS(t, jwtSecret, userClaims(now, good)))...), "another audience")
	wantCaller(t, b, request(bearer(with(jwt.MapClaims{"aud": "erp"}))...), User)
}

func TestUnknownRoleAndMissingSub(t *testing.T) {
	clk := newClock()
	a := hsAuth(t, clk)
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, userClaims(clk.Now(), jwt.MapClaims{"role": "supabase_admin"})))...), "role")
	noSub := userClaims(clk.Now(), nil)
	delete(noSub, "sub")
	wantRefused(t, a, request(bearer(signHS(t, jwtSecret, noSub))...), "invalid token")
}
