package main

import (
	"slices"
	"strings"

	"github.com/kvsync/kvsync/internal/config"
)

// supabaseKeys says which kinds of Supabase credentials are configured, and warns when only the
// legacy ones are: Supabase is replacing the service_role JWT with secret keys (sb_secret_…) and the
// HS256 JWT secret with asymmetric signing keys (verified through the JWKS).
func (d *doctor) supabaseKeys(cfg config.Config) {
	kinds := cfg.KeyKinds()
	if len(kinds) == 0 {
		d.pass("Supabase keys", "none configured (callers use the cron secret only)")
		return
	}
	var names []string
	for _, k := range kinds {
		names = append(names, k.Name+" ("+k.Var+")")
	}
	serviceVars := []string{"SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"}
	userVars := []string{"SUPABASE_JWKS_URL", "SUPABASE_JWT_SECRET"}
	legacyService := hasKind(kinds, true, serviceVars...) && !hasKind(kinds, false, serviceVars...)
	legacyUsers := hasKind(kinds, true, userVars...) && !hasKind(kinds, false, userVars...)
	d.pass("Supabase keys", strings.Join(names, ", "))
	if legacyService {
		d.warn("Supabase service key", "only the legacy service_role JWT is configured",
			"create a secret key (Dashboard > Project Settings > API Keys) and set SUPABASE_SECRET_KEY; keep SUPABASE_SERVICE_ROLE_KEY until every caller uses the new key")
	}
	if legacyUsers {
		d.warn("user tokens", "only the legacy JWT secret (HS256) verifies users' tokens",
			"set SUPABASE_URL (the JWKS is read from <SUPABASE_URL>/auth/v1/.well-known/jwks.json) or SUPABASE_JWKS_URL, then move the project to asymmetric JWT signing keys")
	}
}

// hasKind reports whether a kind from one of vars, legacy or not as asked, is configured.
func hasKind(kinds []config.KeyKind, legacy bool, vars ...string) bool {
	for _, k := range kinds {
		if k.Legacy == legacy && slices.Contains(vars, k.Var) {
			return true
		}
	}
	return false
}
