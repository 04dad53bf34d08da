// Package supabase holds the Supabase CLI project (config, migrations, pgTAP tests, seed) and embeds its
// migrations, so that `kvsync migrate` applies exactly what `supabase db push` would.
package supabase

import "embed"

// Migrations are the files of migrations/, named <version>_<name>.sql as the Supabase CLI names them.
//
//go:embed migrations/*.sql
var Migrations embed.FS
