// Package migrate applies the Supabase migrations in version order and records each one in
// supabase_migrations.schema_migrations, the table the Supabase CLI keeps, so that `kvsync migrate` and
// `supabase db push` agree about what a database already has.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Migration is one file of supabase/migrations.
type Migration struct {
	Version string // the digits before the first underscore, e.g. 20261130000000
	Name    string // the rest of the file name, without .sql
	SQL     string
}

var fileName = regexp.MustCompile(`^([0-9]+)_(.+)\.sql$`)

// Load reads every <version>_<name>.sql file at the root of fsys (or under migrations/ when fsys is the
// supabase folder's embed), sorted by version. A file whose name does not follow that pattern is an error,
// since the Supabase CLI would skip it silently.
func Load(fsys fs.FS) ([]Migration, error) {
	dir := "."
	if st, err := fs.Stat(fsys, "migrations"); err == nil && st.IsDir() {
		dir = "migrations"
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be <version>_<name>.sql", e.Name())
		}
		if other, ok := seen[m[1]]; ok {
			return nil, fmt.Errorf("migrations %s and %s share version %s", other, e.Name(), m[1])
		}
		seen[m[1]] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: m[1], Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// lockKey serialises concurrent migrators (several test packages, several replicas starting at once).
const lockKey = 7_246_001_113

const createTable = `
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
)`

// Apply runs every migration not yet recorded, each in its own transaction together with its record, and
// returns the versions it applied. Running it again applies nothing.
func Apply(ctx context.Context, conn *pgx.Conn, ms []Migration) ([]string, error) {
	if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", lockKey); err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock($1)", lockKey) //nolint:errcheck

	if _, err := conn.Exec(ctx, createTable); err != nil {
		return nil, fmt.Errorf("create supabase_migrations.schema_migrations: %w", err)
	}
	done := map[string]bool{}
	rows, err := conn.Query(ctx, "select version from supabase_migrations.schema_migrations")
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		done[v] = true
	}

	var applied []string
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the file with the simple protocol, so it may hold many statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `insert into supabase_migrations.schema_migrations (version, statements, name)
				values ($1, $2, $3)`, m.Version, []string{m.SQL}, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %s_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}
