// Package auth decides who is calling one of kvsync's HTTP functions: pg_cron with the dispatcher
// secret, a holder of the Supabase service-role key, or a Supabase user with a JWT. It answers
// "who", not "may they": handlers decide what each kind of caller may do (DESIGN.md §4), and the
// admin check proper lives in SQL (public.is_admin).
//
// The anon key (and any publishable key) is never accepted: it is public, shipped in every
// browser bundle, and the earlier system's cron job carried it.
package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"

	"github.com/golang-jwt/jwt/v5"
)

// Kind says which credential a caller presented; handlers branch on it.
type Kind int

// The kinds of caller. The zero Kind is never returned with a nil error.
const (
	// CronSecret is pg_cron (through kiotviet_dispatch and pg_net) presenting KIOTVIET_CRON_SECRET.
	CronSecret Kind = iota + 1
	// ServiceRole is a server holding the service-role key, or a JWT whose role is service_role.
	ServiceRole
	// User is a signed-in Supabase user (JWT role "authenticated"); Caller.UserID is set.
	User
)

// String names the kind for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case CronSecret:
		return "cron"
	case ServiceRole:
		return "service_role"
	case User:
		return "user"
	}
	return "unknown"
}

// Caller is the outcome of a successful Authenticate. It holds no secret, so it may be logged.
type Caller struct {
	Kind Kind
	// UserID is the JWT's sub claim; set for User, and for ServiceRole when a JWT carried one.
	UserID string
	// Role is the JWT's role claim, "service_role" for the service-role key, "" for the cron secret.
	Role string
	// Claims are the verified JWT claims (nil for the cron secret and the service-role key); pass
	// them to AdminFromClaims or on to SQL as request.jwt.claims.
	Claims map[string]any
}

// IsService reports whether the caller acts for the system rather than for a user: the cron
// secret or the service-role key/JWT. These callers may start any sync.
func (c Caller) IsService() bool { return c.Kind == CronSecret || c.Kind == ServiceRole }

// AdminFromClaims reports whether verified claims mark an admin: app_metadata.role is "admin" or
// "owner". Only app_metadata counts; user_metadata is editable by the user. It exists for the
// fallback where the database has no public.is_admin(uuid); prefer that function when present.
func AdminFromClaims(claims map[string]any) bool {
	meta, ok := claims["app_metadata"].(map[string]any)
	if !ok {
		return false
	}
	role, _ := meta["role"].(string)
	return role == "admin" || role == "owner"
}

// ErrUnauthenticated is what every refusal wraps: no credential, a wrong one, an expired token,
// the anon key. Map it to 401.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrUnavailable means the credential could not be checked right now (the JWKS endpoint failed
// and no cached key fits). Map it to 503: the caller may be legitimate and should retry.
var ErrUnavailable = errors.New("authentication temporarily unavailable")

// refuse is every refusal Authenticate returns: an *errs.Error coded Unauthorized (401) whose message
// is safe to send to the caller and whose cause (wrapping ErrUnauthenticated) is for logs. Neither ever
// contains a token, key or secret.
func refuse(msg string, cause error) error {
	return &errs.Error{Code: errs.Unauthorized, Op: "auth", Message: msg, Err: causeOf(ErrUnauthenticated, cause)}
}

// causeOf wraps an internal cause under its sentinel, so errors.Is finds both.
func causeOf(kind, cause error) error {
	if cause == nil {
		return kind
	}
	return fmt.Errorf("%w: %w", kind, cause)
}

// Defaults used when the matching Config field is zero.
const (
	DefaultLeeway         = 30 * time.Second
	DefaultAudience       = "authenticated"
	DefaultJWKSCacheTTL   = 10 * time.Minute // Supabase edge-caches its JWKS for 10 minutes
	DefaultJWKSMinRefresh = time.Minute
	DefaultJWKSTimeout    = 5 * time.Second
)

var errCrit = errors.New("crit header")

// maxTokenLen bounds the work a single request can ask for; Supabase JWTs are about 1 KiB.
const maxTokenLen = 16 << 10

// Config is everything an Authenticator needs. Zero durations mean the defaults above.
type Config struct {
	// CronSecret is KIOTVIET_CRON_SECRET; accepted as "Authorization: Bearer" or "X-Cron-Secret".
	CronSecret string
	// ServiceKeys are keys that grant service access: SUPABASE_SERVICE_ROLE_KEY, which is a legacy
	// service_role JWT or an sb_secret_ key. Compared whole, in constant time, in "Authorization:
	// Bearer" or "apikey". Each must pass ValidateServiceKey.
	ServiceKeys []string
	// JWTSecret is SUPABASE_JWT_SECRET; when set, HS256 JWTs are verified with it.
	JWTSecret string
	// JWKSURL is SUPABASE_JWKS_URL; when set, ES256 and RS256 JWTs are verified against it.
	JWKSURL string
	// Issuer, when set, must equal the JWT's iss claim (Supabase: "<SUPABASE_URL>/auth/v1").
	Issuer string
	// Audience must be one of the JWT's aud values; "" means DefaultAudience, Supabase's for signed-in
	// users. A token minted for another service (another audience) is refused.
	Audience string
	// HTTPClient fetches the JWKS; nil means a fresh client (never http.DefaultClient).
	HTTPClient *http.Client
	// Now is the clock for exp/nbf and the JWKS cache; nil means time.Now.
	Now func() time.Time
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
	// JWKSCacheTTL is how long a fetched key set is trusted before it is fetched again.
	JWKSCacheTTL time.Duration
	// JWKSMinRefresh is the least time between two fetches, so tokens with made-up kids cannot
	// make kvsync hammer the JWKS endpoint.
	JWKSMinRefresh time.Duration
	// JWKSTimeout bounds one JWKS fetch.
	JWKSTimeout time.Duration
}

// Authenticator turns a request into a Caller. Build it once with New; it is safe for
// concurrent use.
type Authenticator struct {
	cronDigest    *[sha256.Size]byte
	serviceDigest [][sha256.Size]byte
	hmacKey       []byte
	jwks          *jwksCache
	methods       []string
	issuer        string
	audience      string
	now           func() time.Time
	leeway        time.Duration
}

// New validates cfg and builds an Authenticator. It refuses a config that would accept nobody,
// and a service key that is really the anon or a publishable key.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{
		issuer:   cfg.Issuer,
		audience: cmp.Or(cfg.Audience, DefaultAudience),
		now:      cfg.Now,
		leeway:   cfg.Leeway,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.leeway == 0 {
		a.leeway = DefaultLeeway
	}
	if cfg.CronSecret != "" {
		d := sha256.Sum256([]byte(cfg.CronSecret))
		a.cronDigest = &d
	}
	for i, k := range cfg.ServiceKeys {
		if k == "" {
			continue
		}
		if err := ValidateServiceKey(k); err != nil {
			return nil, fmt.Errorf("auth: service key %d: %w", i+1, err)
		}
		a.serviceDigest = append(a.serviceDigest, sha256.Sum256([]byte(k)))
	}
	if cfg.JWTSecret != "" {
		a.hmacKey = []byte(cfg.JWTSecret)
		a.methods = append(a.methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("auth: JWKS URL must be an absolute http(s) URL")
		}
		a.jwks = newJWKSCache(cfg)
		a.methods = append(a.methods, jwt.SigningMethodES256.Alg(), jwt.SigningMethodRS256.Alg())
	}
	if a.cronDigest == nil && len(a.serviceDigest) == 0 && len(a.methods) == 0 {
		return nil, errors.New("auth: nothing configured: set a cron secret, a service key, a JWT secret or a JWKS URL")
	}
	return a, nil
}

// ValidateServiceKey refuses a would-be service key that is not one: a publishable key, or a JWT
// whose role is not service_role (putting the anon key there would open every function to the
// public). The JWT is only decoded, not verified: the check is against operator mistakes.
func ValidateServiceKey(key string) error {
	switch {
	case strings.HasPrefix(key, "sb_secret_"):
		return nil
	case strings.HasPrefix(key, "sb_publishable_"):
		return errors.New("is a publishable key; want the secret (sb_secret_…) or service_role key")
	case strings.Count(key, ".") == 2:
		parts := strings.Split(key, ".")
		payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
		if err != nil {
			return errors.New("looks like a JWT but its payload is not base64url")
		}
		var claims struct {
			Role string `json:"role"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			return errors.New("looks like a JWT but its payload is not JSON")
		}
		if claims.Role != "service_role" {
			return fmt.Errorf("is a JWT for role %q; want the service_role key", claims.Role)
		}
		return nil
	}
	return errors.New("is neither an sb_secret_ key nor a service_role JWT")
}

// Authenticate identifies the caller of r. The rules, in order:
//
//  1. An X-Cron-Secret header decides alone: it must equal the cron secret.
//  2. Otherwise "Authorization: Bearer <x>" decides: x may be the cron secret, a service key, or
//     a JWT (service_role or authenticated). As on Supabase, a user JWT here wins over a service
//     key in apikey, so a user's request never gains service rights by accident.
//  3. Otherwise an apikey header must be a service key.
//
// Every refusal wraps ErrUnauthenticated, except a JWKS outage (ErrUnavailable).
func (a *Authenticator) Authenticate(r *http.Request) (Caller, error) {
	if v := r.Header.Get("X-Cron-Secret"); v != "" {
		if a.isCron(v) {
			return Caller{Kind: CronSecret}, nil
		}
		return Caller{}, refuse("invalid cron secret", nil)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return Caller{}, refuse("Authorization must be \"Bearer <token>\"", nil)
		}
		return a.fromBearer(r.Context(), tok)
	}
	if k := r.Header.Get("apikey"); k != "" {
		if a.isService(k) {
			return Caller{Kind: ServiceRole, Role: "service_role"}, nil
		}
		return Caller{}, refuse("this API key grants no access; send a user token or the service key", nil)
	}
	return Caller{}, refuse("missing credentials", nil)
}

func (a *Authenticator) fromBearer(ctx context.Context, tok string) (Caller, error) {
	if len(tok) > maxTokenLen {
		return Caller{}, refuse("invalid credentials", errors.New("token too long"))
	}
	if a.isCron(tok) {
		return Caller{Kind: CronSecret}, nil
	}
	if a.isService(tok) {
		return Caller{Kind: ServiceRole, Role: "service_role"}, nil
	}
	if strings.HasPrefix(tok, "sb_") {
		return Caller{}, refuse("this API key grants no access; send a user token or the service key", nil)
	}
	if strings.Count(tok, ".") != 2 {
		return Caller{}, refuse("invalid credentials", nil)
	}
	return a.fromJWT(ctx, tok)
}

// equalDigest compares two secrets in time independent of their content and length (both sides
// are hashed to a fixed size first; subtle.ConstantTimeCompare alone leaks length).
func equalDigest(want *[sha256.Size]byte, got string) bool {
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], d[:]) == 1
}

func (a *Authenticator) isCron(v string) bool {
	return a.cronDigest != nil && equalDigest(a.cronDigest, v)
}

func (a *Authenticator) isService(v string) bool {
	match := false
	for i := range a.serviceDigest { // no early exit: time does not depend on which key matched
		if equalDigest(&a.serviceDigest[i], v) {
			match = true
		}
	}
	return match
}

func (a *Authenticator) fromJWT(ctx context.Context, tok string) (Caller, error) {
	if len(a.methods) == 0 {
		return Caller{}, refuse("invalid token", errors.New("no JWT verification configured"))
	}
	// Every JWT, a user's or a service role's, is checked the same way: signature, expiry, audience,
	// issuer (when one is configured), nbf and iat not in the future beyond the leeway, and no crit
	// header (RFC 7515 §4.1.11: extensions listed there must be understood, and kvsync understands none).
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(a.audience),
		jwt.WithLeeway(a.leeway),
		jwt.WithTimeFunc(a.now),
	}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		return a.keyFor(ctx, t)
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenInvalidClaims) && claims["role"] == "anon":
		// validly signed, so the anon key itself (or a token made from it): say so
		return Caller{}, refuse("the anon key grants no access; sign in", err)
	case errors.Is(err, errCrit):
		return Caller{}, refuse("token has a crit header kvsync does not understand", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Caller{}, refuse("token is for another audience", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return Caller{}, refuse("token is from another issuer", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return Caller{}, refuse("token is not valid yet (iat or nbf in the future)", err)
	case errors.Is(err, ErrUnavailable):
		// err already wraps ErrUnavailable. The caller may be legitimate: 503, retry.
		return Caller{}, &errs.Error{Code: errs.Unavailable, Op: "auth", Message: "cannot verify tokens right now", Err: err}
	case errors.Is(err, jwt.ErrTokenExpired):
		return Caller{}, refuse("token expired", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims["exp"] == nil:
		return Caller{}, refuse("token has no expiry", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims["aud"] == nil:
		return Caller{}, refuse("token has no audience (aud)", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Caller{}, refuse("token has no issuer (iss)", err)
	default:
		return Caller{}, refuse("invalid token", err)
	}

	role, _ := claims["role"].(string)
	sub, _ := claims["sub"].(string)
	c := Caller{Role: role, UserID: sub, Claims: map[string]any(claims)}
	switch role {
	case "service_role":
		c.Kind = ServiceRole
	case "authenticated":
		if sub == "" {
			return Caller{}, refuse("invalid token", errors.New("authenticated token without sub"))
		}
		c.Kind = User
	case "anon":
		return Caller{}, refuse("the anon key grants no access; sign in", nil)
	default:
		return Caller{}, refuse("token role not accepted", fmt.Errorf("role %q", role))
	}
	return c, nil
}

// keyFor returns the verification key for t's algorithm. Each algorithm has its own key source
// and key type (HS256 → the shared secret as []byte; ES256 → *ecdsa.PublicKey; RS256 →
// *rsa.PublicKey), so a public key can never be used as an HMAC secret.
func (a *Authenticator) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if a.hmacKey == nil {
			return nil, errors.New("HS256 not accepted")
		}
		return a.hmacKey, nil
	}
	if a.jwks == nil {
		return nil, fmt.Errorf("%s not accepted", alg)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("token has no kid")
	}
	k, err := a.jwks.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k.alg != "" && k.alg != alg {
		return nil, fmt.Errorf("key %q is for %s, token says %s", kid, k.alg, alg)
	}
	if !k.fits(alg) {
		return nil, fmt.Errorf("key %q does not fit %s", kid, alg)
	}
	return k.key, nil
}
