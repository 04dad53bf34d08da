package syncer

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

// asRead is the shaping of pages whose items are written as they came.
func asRead[T any](items []T) ([]T, error) { return items, nil }

func fakeClient(t *testing.T, fake *kiotvietfake.Server) *kiotviet.Client {
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	cfg := kiotviet.Config{TokenURL: srv.URL + kiotvietfake.TokenPath, APIURL: srv.URL, HTTPClient: srv.Client(), ReadConcurrency: 4}
	return kiotviet.New(cfg, fake.Retailer(), kiotviet.NewTokenSource(cfg, fake.Credentials()))
}

// Pages that queue behind a busy writer are written together, in page order, up to the batch; every
// page is written exactly once.
func TestWriteBatchesTakesTheQueuedPagesInOneCall(t *testing.T) {
	t.Parallel()
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 1000, RateLimitPerHour: -1})
	c := fakeClient(t, fake)
	var calls [][]int // offsets of the pages of each call
	first := true
	err := writeBatches(context.Background(), c.Products(kiotviet.ListOptions{OrderBy: "modifiedDate", OrderDirection: "Asc", ReadAhead: true}), 4,
		asRead[kiotviet.Product], func(_ context.Context, pgs []kiotviet.Page[kiotviet.Product]) error {
			if first {
				// a slow first write: wait until the reader has fetched the pages that queue behind it
				first = false
				deadline := time.Now().Add(10 * time.Second)
				for fake.Counts()[kiotvietfake.ProductsPath] < 6 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
				}
			}
			var offs []int
			for _, pg := range pgs {
				offs = append(offs, pg.Offset)
			}
			calls = append(calls, offs)
			return nil
		})
	require.NoError(t, err)
	var all []int
	most := 0
	for _, offs := range calls {
		all = append(all, offs...)
		most = max(most, len(offs))
	}
	assert.Equal(t, []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}, all, "every page once, in order")
	assert.Greater(t, most, 1, "pages queued behind the first write went in one call: %v", calls)
	assert.LessOrEqual(t, most, 4, "never more than the batch")
}

// A page with removed ids starts a call of its own: a removal must not be applied before the rows of an
// earlier page it follows. A batch never takes more than its size.
func TestTakeBatchStartsACallAtRemovals(t *testing.T) {
	t.Parallel()
	ch := make(chan kiotviet.Page[kiotviet.Product], 8)
	for i := range 7 {
		pg := kiotviet.Page[kiotviet.Product]{Offset: i * 100}
		if i == 3 {
			pg.RemovedIDs = []int64{1}
		}
		ch <- pg
	}
	close(ch)
	var calls [][]int
	var next *kiotviet.Page[kiotviet.Product]
	for {
		var pgs []kiotviet.Page[kiotviet.Product]
		pgs, next = takeBatch(ch, next, 4)
		if len(pgs) == 0 {
			break
		}
		var offs []int
		for _, pg := range pgs {
			offs = append(offs, pg.Offset)
		}
		calls = append(calls, offs)
	}
	assert.Equal(t, [][]int{{0, 100, 200}, {300, 400, 500, 600}}, calls)
}

// A reading says its listing is read once the last page is in hand, while the writer is still busy with
// the first: a full pass's catch-up can start reading then, without waiting for the writes.
func TestReadingEndsBeforeItsPagesAreWritten(t *testing.T) {
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 500, RateLimitPerHour: -1})
	c := fakeClient(t, fake)
	rd := startReading(context.Background(), c.Products(kiotviet.ListOptions{OrderBy: "modifiedDate", OrderDirection: "Asc", ReadAhead: true}), 4, nil)
	var offsets []int
	readFirst := false
	err := writePages(context.Background(), rd, 4, asRead[kiotviet.Product], func(_ context.Context, pgs []kiotviet.Page[kiotviet.Product]) error {
		if len(offsets) == 0 {
			// the first write waits for the reading's end: 5 pages fit in the queue and the reader's hand
			select {
			case <-rd.read:
				readFirst = true
			case <-time.After(10 * time.Second):
			}
		}
		for _, pg := range pgs {
			offsets = append(offsets, pg.Offset)
		}
		return nil
	})
	require.NoError(t, err)
	assert.True(t, readFirst, "every page was read before the first was written")
	assert.Equal(t, []int{0, 100, 200, 300, 400}, offsets, "every page once, in order")
}

// A reading that waits for another starts its requests only once that one is read; abandoned, it stops
// without a request.
func TestReadingAfterAnother(t *testing.T) {
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 300, RateLimitPerHour: -1})
	c := fakeClient(t, fake)
	gate := make(chan struct{})
	rd := startReading(context.Background(), c.Categories(kiotviet.ListOptions{}), 4, gate)
	rd.stop()
	assert.Zero(t, fake.Counts()[kiotvietfake.CategoriesPath], "no request before the gate opened")
	require.ErrorIs(t, rd.err, context.Canceled)

	close(gate)
	rd = startReading(context.Background(), c.Categories(kiotviet.ListOptions{}), 4, gate)
	require.NoError(t, writePages(context.Background(), rd, 4, asRead[kiotviet.Category], func(context.Context, []kiotviet.Page[kiotviet.Category]) error { return nil }))
	assert.Equal(t, int64(1), fake.Counts()[kiotvietfake.CategoriesPath])
}
