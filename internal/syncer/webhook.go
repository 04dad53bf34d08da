package syncer

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// What the webhook applier (internal/webhook) shares with the sync: the row shapes the apply functions
// read, and the credential's KiotViet client (one rate limiter and token per credential in this process).

// ProductRows shapes products as the product apply functions read them.
func ProductRows(ps []kiotviet.Product) (json.RawMessage, error) {
	rows := make([]productRow, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, productRowOf(p))
	}
	return json.Marshal(rows)
}

// FetchProducts reads products by id from KiotViet with the credential's client. Ids KiotViet no longer
// has are left out (gone lists them). calls is the API requests spent.
func (e *Engine) FetchProducts(ctx context.Context, credentialID string, ids []int64) (ps []kiotviet.Product, gone []int64, calls int64, err error) {
	c, err := e.cfg.Store.Credential(ctx, credentialID)
	if err != nil {
		return nil, nil, 0, err
	}
	cl := e.client(c)
	before := cl.Calls()
	defer func() { calls = cl.Calls() - before }()
	for _, id := range ids {
		p, err := cl.Product(ctx, id)
		if errors.Is(err, kiotviet.ErrNotFound) {
			gone = append(gone, id)
			continue
		}
		if err != nil {
			return nil, nil, 0, err
		}
		ps = append(ps, p)
	}
	return ps, gone, 0, nil
}

// Client returns the credential's KiotViet client (its tokens stored encrypted in its row, as for syncs).
func (e *Engine) Client(ctx context.Context, credentialID string) (*kiotviet.Client, error) {
	c, err := e.cfg.Store.Credential(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	return e.client(c), nil
}
