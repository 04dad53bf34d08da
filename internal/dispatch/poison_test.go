package dispatch_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/store"
)

// failingRescue is the real database, except that kiotviet_rescue_expired answers an error, as it would
// if a future bug or a lock timeout made it fail.
type failingRescue struct{ store.PG }

func (f failingRescue) Call(ctx context.Context, fn string, args []store.Arg, set bool) (json.RawMessage, error) {
	if fn == "kiotviet_rescue_expired" {
		return nil, &errs.Error{Op: fn, Code: errs.Internal, Message: "integer out of range"}
	}
	return f.PG.Call(ctx, fn, args, set)
}

// One bad row never stops anyone else: a schedule with its failure count at the bound and an expired run
// (the row that once made every tick fail with "integer out of range") is rescued and backs off, and the
// healthy credential's due schedule is claimed and synced in the same tick. And when the rescue itself
// fails, the tick still claims.
func TestTickClaimsPastPoisonRows(t *testing.T) {
	t.Parallel()
	b := setup(t, 20)
	ctx := context.Background()
	healthy := b.schedule(t, b.credID, "categories")

	const poisonCred = "c9900000-0000-0000-0000-000000000001"
	_, err := b.db.Exec(ctx, `insert into kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active)
		values ($1, 'poison shop', 'poison', 'ct', true)`, poisonCred)
	require.NoError(t, err)
	poison := b.schedule(t, poisonCred, "products")
	_, err = b.db.Exec(ctx, `update kiotviet_sync_schedules set consecutive_failures = 1000000 where id = $1`, poison)
	require.NoError(t, err)
	var expired string
	require.NoError(t, b.db.QueryRow(ctx, `insert into kiotviet_sync_logs
		(sync_type, status, trigger, credential_id, schedule_id, worker, lease_expires_at)
		values ('products', 'running', 'cron', $1, $2, 'dead', now() - interval '1 minute') returning id::text`,
		poisonCred, poison).Scan(&expired))

	tick, err := b.dispatcher("poison").Tick(ctx, 10)
	require.NoError(t, err)
	require.NoError(t, tick.RescueErr)
	require.Len(t, tick.Rescued, 1)
	assert.Equal(t, expired, tick.Rescued[0].RunID)
	require.Len(t, tick.Claimed, 1, "the poison schedule backs off; the healthy one is claimed")
	assert.Equal(t, healthy, tick.Claimed[0].ScheduleID)
	runs := b.waitRuns(t, 1)
	assert.Equal(t, vocab.Success, runs[0].Result.Status)
	var failures int
	require.NoError(t, b.db.QueryRow(ctx, `select consecutive_failures from kiotviet_sync_schedules where id = $1`, poison).Scan(&failures))
	assert.Equal(t, 1000000, failures, "the count stays at its bound")

	// The rescue fails outright: the claim still runs.
	b.makeDue(t, healthy)
	d := dispatch.New(dispatch.Config{Store: store.New(failingRescue{store.PG{Pool: b.db}}), Runner: b.engine,
		Worker: "poison-2", Concurrency: 2, OnRunDone: func(r dispatch.RunResult) { b.done <- r }})
	tick, err = d.Tick(ctx, 10)
	require.NoError(t, err)
	require.Error(t, tick.RescueErr)
	require.Len(t, tick.Claimed, 1)
	assert.Equal(t, healthy, tick.Claimed[0].ScheduleID)
	assert.Equal(t, vocab.Success, b.waitRuns(t, 1)[0].Result.Status)
}
