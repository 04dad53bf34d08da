package vocab_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/vocab"
)

var quoted = regexp.MustCompile(`'([^']*)'::text`)

// checkList reads the words a check constraint of a migrated database allows.
func checkList(t *testing.T, constraint string) []string {
	t.Helper()
	var def string
	require.NoError(t, testdb.Pool(t).QueryRow(context.Background(),
		`select pg_get_constraintdef(oid) from pg_constraint where conname = $1`, constraint).Scan(&def), constraint)
	var out []string
	for _, m := range quoted.FindAllStringSubmatch(def, -1) {
		out = append(out, m[1])
	}
	require.NotEmpty(t, out, "no words in %s: %s", constraint, def)
	return out
}

func strs[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// Each Go list equals the SQL check constraint that guards the same column, so a word added on one
// side only fails here instead of at a user's first run.
func TestListsEqualTheSQLCheckConstraints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		constraint string
		goList     []string
	}{
		{"kiotviet_sync_schedules_sync_type_check", strs(vocab.SyncTypes)},
		{"kiotviet_sync_logs_status_check", strs(vocab.Statuses)},
		{"kiotviet_sync_logs_trigger_check", strs(vocab.Triggers)},
		{"kiotviet_sync_schedules_frequency_check", strs(vocab.Frequencies)},
	} {
		assert.ElementsMatch(t, checkList(t, tc.constraint), tc.goList, tc.constraint)
	}
}

// Every sync type runs at least one stream, and only known ones.
func TestEverySyncTypeHasStreams(t *testing.T) {
	t.Parallel()
	known := map[vocab.Stream]bool{vocab.StreamCategories: true, vocab.StreamProducts: true,
		vocab.StreamBranches: true, vocab.StreamStock: true, vocab.StreamAttributes: true}
	for _, st := range vocab.SyncTypes {
		require.NotEmpty(t, vocab.Streams[st], st)
		for _, s := range vocab.Streams[st] {
			assert.True(t, known[s], "%s runs unknown stream %s", st, s)
		}
	}
	assert.Len(t, vocab.Streams, len(vocab.SyncTypes))
	assert.False(t, vocab.SyncType("everything").Valid())
}
