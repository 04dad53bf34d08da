package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/config"
)

func TestDoctorSaysWhichKeyKinds(t *testing.T) {
	t.Parallel()
	const (
		serviceRoleJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
		jwtSecret      = "super-secret-jwt-token-with-at-least-32-characters-long"
		sbSecret       = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
	)
	run := func(vars ...string) string {
		m := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}
		for i := 0; i+1 < len(vars); i += 2 {
			m[vars[i]] = vars[i+1]
		}
		cfg, err := config.Load(func(k string) string { return m[k] })
		require.NoError(t, err)
		var b strings.Builder
		(&doctor{w: &b}).supabaseKeys(cfg)
		return b.String()
	}

	out := run("SUPABASE_SERVICE_ROLE_KEY", serviceRoleJWT, "SUPABASE_JWT_SECRET", jwtSecret)
	assert.Contains(t, out, "legacy service_role JWT (SUPABASE_SERVICE_ROLE_KEY)")
	assert.Contains(t, out, "legacy JWT secret (HS256) (SUPABASE_JWT_SECRET)")
	assert.Contains(t, out, "! Supabase service key: only the legacy service_role JWT")
	assert.Contains(t, out, "! user tokens: only the legacy JWT secret")
	assert.NotContains(t, out, serviceRoleJWT)
	assert.NotContains(t, out, jwtSecret)

	out = run("SUPABASE_SECRET_KEY", sbSecret, "SUPABASE_SERVICE_ROLE_KEY", serviceRoleJWT,
		"SUPABASE_URL", "https://abcdefgh.supabase.co", "SUPABASE_JWT_SECRET", jwtSecret)
	assert.Contains(t, out, "secret key (sb_secret_…) (SUPABASE_SECRET_KEY)")
	assert.Contains(t, out, "JWT signing keys (ES256/RS256, from the JWKS) (SUPABASE_JWKS_URL)")
	assert.NotContains(t, out, "!", "no warning once the new kinds are configured next to the legacy ones")
	assert.NotContains(t, out, sbSecret)
}
