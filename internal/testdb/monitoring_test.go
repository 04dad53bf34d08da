package testdb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/testdb"
)

// The DBA queries in sql/monitoring run on the current schema, and failing_schedules.sql shows a schedule
// that only its manual runs failed, with the reason and the schedule's zone.
func TestMonitoringQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := testdb.Tx(t)
	root, err := testdb.RepoRoot()
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `
		insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active)
		values ('c7700000-0000-0000-0000-000000000001', 'monitor-shop', 'client', 'ct', true);
		insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, timezone)
		values ('57700000-0000-0000-0000-000000000001', 'c7700000-0000-0000-0000-000000000001', 'inventory', 'daily', 'Europe/Paris');
		insert into public.kiotviet_sync_logs (credential_id, sync_type, status, trigger, started_at, completed_at, error_message)
		values ('c7700000-0000-0000-0000-000000000001', 'inventory', 'failed', 'manual', now() - interval '1 hour',
		        now() - interval '59 minutes', 'stock: KiotViet 503');`)
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "sql", "monitoring", "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, q := range strings.Split(stripComments(string(b)), ";") {
			if strings.TrimSpace(q) == "" {
				continue
			}
			rows, err := tx.Query(ctx, q)
			require.NoError(t, err, filepath.Base(f))
			rows.Close()
			require.NoError(t, rows.Err(), filepath.Base(f))
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "sql", "monitoring", "failing_schedules.sql"))
	require.NoError(t, err)
	rows, err := tx.Query(ctx, "select retailer_name, failure_reason, timezone, manual_runs_7d from ("+
		strings.TrimSuffix(strings.TrimSpace(stripComments(string(b))), ";")+") f where retailer_name = 'monitor-shop'")
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next(), "a schedule whose manual run failed is listed")
	var shop, reason, tz string
	var manual int64
	require.NoError(t, rows.Scan(&shop, &reason, &tz, &manual))
	assert.Equal(t, "stock: KiotViet 503", reason)
	assert.Equal(t, "Europe/Paris", tz)
	assert.Equal(t, int64(1), manual)
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
