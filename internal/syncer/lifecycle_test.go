package syncer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
)

// claim opens a running row as a dispatcher's claim would, for this worker.
func (b *bundle) claim(t *testing.T, syncType vocab.SyncType) store.Claim {
	t.Helper()
	id, err := b.store.StartRun(context.Background(), b.credID, syncType, vocab.Cron, "dispatcher", time.Minute, nil)
	require.NoError(t, err)
	return store.Claim{RunID: id, CredentialID: b.credID, SyncType: syncType}
}

func (b *bundle) runStatus(t *testing.T, runID string) store.RunLog {
	t.Helper()
	l, err := b.store.Run(context.Background(), runID)
	require.NoError(t, err)
	return l
}

// failingCarrier is a replica that never carried the run out (its reply never came).
type failingCarrier struct{}

func (failingCarrier) Carry(context.Context, store.Claim) (syncer.Result, error) {
	return syncer.Result{}, errors.New("fan-out to replica: connection refused")
}

// A claimed run that the other replica could not carry out is finished here, as failed with the
// reason, by the engine: its row never stays running until its lease expires.
func TestRemoteFinishesARunItsCarrierCouldNotCarryOut(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	c := b.claim(t, vocab.Categories)
	res, err := b.engine.Remote(failingCarrier{}).RunClaimed(context.Background(), c)
	require.Error(t, err)
	assert.Equal(t, vocab.Failed, res.Status)
	l := b.runStatus(t, c.RunID)
	assert.Equal(t, vocab.Failed, l.Status)
	require.NotNil(t, l.ErrorMessage)
	assert.Contains(t, *l.ErrorMessage, "connection refused")
}

// RunClaimed carries a claim out only as claimed: a claim of another sync type is refused, coded
// Invalid, and the run (perhaps another's) is left as it was; the claim as made runs to its end.
func TestRunClaimedRefusesAnotherClaimAndRunsItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	c := b.claim(t, vocab.Categories)
	wrong := c
	wrong.SyncType = vocab.Products
	_, err := b.engine.RunClaimed(context.Background(), wrong)
	require.Error(t, err)
	assert.Equal(t, errs.Invalid, errs.CodeOf(err))
	assert.Equal(t, vocab.Running, b.runStatus(t, c.RunID).Status, "a refused claim is left alone")

	res, err := b.engine.RunClaimed(context.Background(), c)
	require.NoError(t, err)
	assert.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, c.RunID, res.RunID, "the claimed run, not a new one")
	assert.Equal(t, vocab.Success, b.runStatus(t, c.RunID).Status)
}

// Start hands back the run's id once its row is running, and the run goes on to its end; Wait returns
// the outcome that the row holds.
func TestStartHandsBackTheRunningRun(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	run, err := b.engine.Start(context.Background(), syncer.Request{CredentialID: b.credID, SyncType: vocab.Categories})
	require.NoError(t, err)
	require.NotEmpty(t, run.ID)
	l := b.runStatus(t, run.ID)
	assert.Equal(t, vocab.Manual, l.Trigger)
	res, err := run.Wait()
	require.NoError(t, err)
	assert.Equal(t, run.ID, res.RunID)
	assert.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, res.Status, b.runStatus(t, run.ID).Status)

	_, err = b.engine.Start(context.Background(), syncer.Request{CredentialID: b.credID, SyncType: "customers"})
	assert.Equal(t, errs.Invalid, errs.CodeOf(err), "an unknown sync type starts nothing")
}
