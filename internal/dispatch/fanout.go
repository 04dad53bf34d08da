package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/wire"
)

// FanOut hands each claimed run to another kvsync replica (or a pool behind a load balancer) by POSTing
// it to that replica's /functions/v1/kiotviet-sync with the run's id, instead of running it in this
// process. The replica heartbeats and finishes the run; this side waits for its reply. It is a
// syncer.Carrier: the dispatcher's Runner is engine.Remote(FanOut{…}), which finishes a run the replica
// could not carry out.
type FanOut struct {
	URL    string // e.g. https://sync.internal/functions/v1/kiotviet-sync
	Secret string // the cron secret (or service key) the replica accepts
	Client *http.Client
}

// Carry posts the claimed run and returns the replica's result.
func (f FanOut) Carry(ctx context.Context, c store.Claim) (syncer.Result, error) {
	body, _ := json.Marshal(wire.SyncRequest{CredentialID: c.CredentialID, SyncType: string(c.SyncType), RunID: c.RunID})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return syncer.Result{}, redact.Error(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+f.Secret)
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		// a *url.Error prints the whole URL, which may carry a token
		return syncer.Result{}, fmt.Errorf("fan-out to %s: %w", hr.URL.Host, redact.Error(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return syncer.Result{}, fmt.Errorf("fan-out to %s: %w", hr.URL.Host, err)
	}
	var out wire.SyncReply
	if err := json.Unmarshal(raw, &out); err != nil || out.Status == "" {
		// Not a run's reply: the replica's error body (wire.ErrorReply) says why.
		var e wire.ErrorReply
		_ = json.Unmarshal(raw, &e)
		return syncer.Result{}, fmt.Errorf("fan-out to %s: status %d: %s", hr.URL.Host, resp.StatusCode, redact.String(e.Error))
	}
	res := syncer.Result{RunID: out.RunID, Status: out.Status, Streams: out.Results, Records: out.Records}
	if out.Error != nil {
		res.Error = *out.Error
	}
	return res, nil
}
