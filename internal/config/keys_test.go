package config

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kvsync/kvsync/internal/auth"
)

// Supabase's API keys as of late 2026: secret keys (sb_secret_…, several at once while rotating) and
// publishable keys (sb_publishable_…) next to the legacy service_role / anon JWTs.
const (
	sbSecret2      = "sb_secret_second_key_for_rotation_0123456789"
	sbPublishable  = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
	serviceRoleJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)

// caller authenticates a request carrying bearer (and apikey, when set) with the authenticator c
// describes.
func caller(t *testing.T, c Config, bearer, apikey string) (auth.Caller, error) {
	t.Helper()
	a, err := auth.New(c.Auth(nil, nil))
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	r := httptest.NewRequest("POST", "/functions/v1/kiotviet-sync", nil)
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	if apikey != "" {
		r.Header.Set("apikey", apikey)
	}
	return a.Authenticate(r)
}

func TestSecretKeyRead(t *testing.T) {
	c, err := Load(env(with(minimal(), "SUPABASE_SECRET_KEY", sbSecret)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretKeys) != 1 || c.SecretKeys[0].Reveal() != sbSecret || c.ServiceKey().Reveal() != sbSecret {
		t.Fatalf("SecretKeys %d, ServiceKey set %v", len(c.SecretKeys), c.ServiceKey().IsSet())
	}
	for _, h := range [][2]string{{sbSecret, ""}, {"", sbSecret}, {sbSecret, sbSecret}} {
		if got, err := caller(t, c, h[0], h[1]); err != nil || got.Kind != auth.ServiceRole {
			t.Errorf("in Authorization %v, in apikey %v: %+v, %v; want service access", h[0] != "", h[1] != "", got, err)
		}
	}
	if _, err := caller(t, c, "sb_secret_some_other_project_key_0000", ""); err == nil {
		t.Error("a secret key that is not configured was accepted")
	}
}

func TestSeveralSecretKeysAndTheLegacyServiceRoleKey(t *testing.T) {
	c, err := Load(env(with(minimal(), "SUPABASE_SECRET_KEY", " "+sbSecret+" , "+sbSecret2+" ",
		"SUPABASE_SERVICE_ROLE_KEY", serviceRoleJWT)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretKeys) != 2 {
		t.Fatalf("want 2 secret keys, got %d", len(c.SecretKeys))
	}
	if c.ServiceKey().Reveal() != sbSecret {
		t.Error("kvsync sends the first secret key, not the legacy JWT, when both are set")
	}
	for name, key := range map[string]string{"first": sbSecret, "second": sbSecret2, "legacy service_role JWT": serviceRoleJWT} {
		if got, err := caller(t, c, key, ""); err != nil || got.Kind != auth.ServiceRole {
			t.Errorf("%s key: %+v, %v; want service access", name, got, err)
		}
	}
	if s := c.String(); strings.Contains(s, sbSecret) || strings.Contains(s, sbSecret2) || !strings.Contains(s, "secret_keys=2") {
		t.Errorf("String shows a key or not their count: %s", s)
	}
}

func TestLegacyServiceRoleKeyAlone(t *testing.T) {
	c, err := Load(env(with(minimal(), "SUPABASE_SERVICE_ROLE_KEY", serviceRoleJWT)))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServiceKey().Reveal() != serviceRoleJWT {
		t.Error("the legacy key is the one kvsync sends when no secret key is set")
	}
	if got, err := caller(t, c, serviceRoleJWT, ""); err != nil || got.Kind != auth.ServiceRole {
		t.Errorf("legacy service_role JWT: %+v, %v", got, err)
	}
}

func TestSecretKeyRefusesOtherKinds(t *testing.T) {
	for name, tc := range map[string]struct{ value, says string }{
		"publishable key":         {sbPublishable, "publishable"},
		"one of two publishable":  {sbSecret + "," + sbPublishable, "key 2 is a publishable key"},
		"legacy JWT":              {serviceRoleJWT, "SUPABASE_SERVICE_ROLE_KEY"},
		"anon JWT":                {anonJWT, "not a secret key"},
		"empty between commas":    {sbSecret + ",," + sbSecret2, "key 2 is empty"},
		"not a key":               {"hunter2", "not a secret key"},
		"publishable as the role": {sbPublishable, "opens nothing"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(env(with(minimal(), "SUPABASE_SECRET_KEY", tc.value)))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := vars(err); len(got) != 1 || got[0] != "SUPABASE_SECRET_KEY" || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q (vars %v); want SUPABASE_SECRET_KEY and %q", err, got, tc.says)
			}
			if strings.Contains(err.Error(), tc.value) {
				t.Error("the error shows the value")
			}
		})
	}
}

func TestPublishableAndAnonKeysOpenNothing(t *testing.T) {
	c, err := Load(env(with(minimal(), "SUPABASE_SECRET_KEY", sbSecret, "SUPABASE_JWT_SECRET", jwtSecret)))
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string][2]string{
		"publishable in Authorization": {sbPublishable, ""},
		"publishable in apikey":        {"", sbPublishable},
		"publishable in both":          {sbPublishable, sbPublishable},
		"anon JWT in Authorization":    {anonJWT, sbPublishable},
		"anon JWT in apikey":           {"", anonJWT},
	} {
		if got, err := caller(t, c, h[0], h[1]); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}

func TestJWKSDefaultAndHS256(t *testing.T) {
	c, err := Load(env(with(minimal(), "SUPABASE_URL", "https://abcdefgh.supabase.co/")))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWKSURL != "https://abcdefgh.supabase.co/auth/v1/.well-known/jwks.json" {
		t.Errorf("JWKS default: %q", c.JWKSURL)
	}
	c, err = Load(env(with(minimal(), "SUPABASE_URL", "https://abcdefgh.supabase.co", "SUPABASE_JWKS_URL", "https://keys.example.com/jwks.json")))
	if err != nil || c.JWKSURL != "https://keys.example.com/jwks.json" {
		t.Errorf("SUPABASE_JWKS_URL wins: %q, %v", c.JWKSURL, err)
	}
	c, err = Load(env(minimal()))
	if err != nil || c.JWKSURL != "" {
		t.Errorf("no SUPABASE_URL, no JWKS: %q, %v", c.JWKSURL, err)
	}

	// With the JWKS configured, HS256 user tokens still pass while SUPABASE_JWT_SECRET is set.
	c, err = Load(env(with(minimal(), "SUPABASE_URL", "https://abcdefgh.supabase.co", "SUPABASE_JWT_SECRET", jwtSecret)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e",
		"role": "authenticated", "aud": "authenticated", "iss": "https://abcdefgh.supabase.co/auth/v1",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := caller(t, c, tok, ""); err != nil || got.Kind != auth.User {
		t.Errorf("HS256 user token with JWKS and JWT secret set: %+v, %v", got, err)
	}
	c, err = Load(env(with(minimal(), "SUPABASE_URL", "https://abcdefgh.supabase.co")))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := caller(t, c, tok, ""); err == nil {
		t.Errorf("HS256 token accepted without SUPABASE_JWT_SECRET: %+v", got)
	}
}

func TestPostgRESTBackendWithSecretKey(t *testing.T) {
	if _, err := Load(env(map[string]string{"SUPABASE_URL": "https://abcdefgh.supabase.co", "SUPABASE_SECRET_KEY": sbSecret})); err != nil {
		t.Errorf("SUPABASE_URL + SUPABASE_SECRET_KEY is a backend: %v", err)
	}
	_, err := Load(env(map[string]string{"SUPABASE_URL": "https://abcdefgh.supabase.co"}))
	if err == nil || !strings.Contains(err.Error(), "SUPABASE_SECRET_KEY") {
		t.Errorf("the missing backend names SUPABASE_SECRET_KEY: %v", err)
	}
}

func TestKeyKinds(t *testing.T) {
	for name, tc := range map[string]struct {
		env    map[string]string
		kinds  []string
		legacy []string
	}{
		"new keys only": {with(minimal(), "SUPABASE_SECRET_KEY", sbSecret+","+sbSecret2, "SUPABASE_URL", "https://x.supabase.co"),
			[]string{"SUPABASE_SECRET_KEY", "SUPABASE_JWKS_URL"}, nil},
		"legacy only": {with(minimal(), "SUPABASE_SERVICE_ROLE_KEY", serviceRoleJWT, "SUPABASE_JWT_SECRET", jwtSecret),
			[]string{"SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET"}, []string{"SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET"}},
		"sb_secret_ in the legacy variable": {with(minimal(), "SUPABASE_SERVICE_ROLE_KEY", sbSecret),
			[]string{"SUPABASE_SERVICE_ROLE_KEY"}, nil},
		"none": {minimal(), nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			var kinds, legacy []string
			for _, k := range c.KeyKinds() {
				kinds = append(kinds, k.Var)
				if k.Legacy {
					legacy = append(legacy, k.Var)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") || strings.Join(legacy, ",") != strings.Join(tc.legacy, ",") {
				t.Errorf("kinds %v legacy %v; want %v and %v", kinds, legacy, tc.kinds, tc.legacy)
			}
		})
	}
}
