package metrics_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/metrics"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
)

// scrape GETs /metrics as Prometheus does and parses the text format.
func scrape(t *testing.T, url string, header http.Header) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// find returns the series of fam whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range want {
			if labels(m)[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// A scrape while a run is going shows it in flight; after three runs the run histogram counts three, the
// KiotViet requests are counted by endpoint and code (429s and retries visible), page writes are timed,
// and the freshness gauge of each stream equals the finish time in the database, to the microsecond.
func TestScrapeDuringAndAfterRuns(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	ctx := context.Background()
	m := metrics.New("test")
	st := store.New(m.Caller(store.PG{Pool: db}))
	m.Database(st, 5000)
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 30, Branches: 1, Categories: 4, Seed: 21, RateLimitPerHour: -1})
	fsrv := httptest.NewServer(fake.Handler())
	t.Cleanup(fsrv.Close)
	keys, err := secret.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)), "")
	require.NoError(t, err)
	hc := kiotviet.NewHTTPClient()
	hc.Transport = m.Transport(hc.Transport)
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "metrics-test",
		KiotViet: kiotviet.Config{TokenURL: fsrv.URL + kiotvietfake.TokenPath, APIURL: fsrv.URL, HTTPClient: hc,
			MaxAttempts: 3, OnRetry: m.Retried, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}})
	require.NoError(t, err)
	credID, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	require.NoError(t, err)
	schedID, err := st.UpsertSchedule(ctx, store.Schedule{CredentialID: credID, SyncType: "products_full", Frequency: "hourly", Enabled: true})
	require.NoError(t, err)
	done := make(chan dispatch.RunResult, 10)
	d := dispatch.New(dispatch.Config{Store: st, Runner: engine, Metrics: m, OnRunDone: func(r dispatch.RunResult) { done <- r }})
	srv := httptest.NewServer(m.Handler(metrics.Auth{}, nil))
	t.Cleanup(srv.Close)

	runOnce := func(faults kiotvietfake.Faults, during func()) dispatch.RunResult {
		t.Helper()
		fake.SetFaults(faults)
		_, err := db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = $1`, schedID)
		require.NoError(t, err)
		tick, err := d.Tick(ctx, 1)
		require.NoError(t, err)
		require.Len(t, tick.Claimed, 1)
		if during != nil {
			during()
		}
		select {
		case r := <-done:
			return r
		case <-time.After(time.Minute):
			t.Fatal("run did not end")
		}
		return dispatch.RunResult{}
	}

	// during: each request takes 300 ms, so the run is still going while we scrape
	r := runOnce(kiotvietfake.Faults{Latency: 300 * time.Millisecond}, func() {
		fams := scrape(t, srv.URL, nil)
		assert.Equal(t, 1.0, fams["kvsync_runs_in_flight"].GetMetric()[0].GetGauge().GetValue(), "one run in flight")
		assert.Equal(t, dto.MetricType_GAUGE, fams["kvsync_runs_in_flight"].GetType())
	})
	require.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	// one 429 then success: a retry, and the 429 counted
	r = runOnce(kiotvietfake.Faults{Fail429Next: 1, RetryAfter: time.Second}, nil)
	require.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	r = runOnce(kiotvietfake.Faults{Status5xxNext: 1000}, nil)
	require.Equal(t, vocab.Failed, r.Result.Status)

	fams := scrape(t, srv.URL, nil)
	hist := fams["kvsync_run_duration_seconds"]
	require.NotNil(t, hist)
	assert.Equal(t, dto.MetricType_HISTOGRAM, hist.GetType())
	var count uint64
	for _, s := range hist.GetMetric() {
		count += s.GetHistogram().GetSampleCount()
	}
	var runs uint64
	require.NoError(t, db.QueryRow(ctx, `select count(*) from kiotviet_sync_logs`).Scan(&runs))
	assert.Equal(t, uint64(3), runs, "three runs made")
	assert.Equal(t, runs, count, "the histogram counts every run the database has")
	ok := find(fams, "kvsync_run_duration_seconds", map[string]string{"sync_type": "products_full", "status": "success"})
	require.Len(t, ok, 1)
	assert.Equal(t, uint64(2), ok[0].GetHistogram().GetSampleCount())
	assert.Len(t, find(fams, "kvsync_run_duration_seconds", map[string]string{"status": "failed"}), 1)
	assert.Equal(t, 0.0, fams["kvsync_runs_in_flight"].GetMetric()[0].GetGauge().GetValue())

	assert.Equal(t, dto.MetricType_COUNTER, fams["kvsync_kiotviet_requests_total"].GetType())
	assert.NotEmpty(t, find(fams, "kvsync_kiotviet_requests_total", map[string]string{"endpoint": "products", "code": "200"}))
	assert.NotEmpty(t, find(fams, "kvsync_kiotviet_requests_total", map[string]string{"endpoint": "token", "code": "200"}))
	tooMany := find(fams, "kvsync_kiotviet_requests_total", map[string]string{"code": "429"})
	require.Len(t, tooMany, 1)
	assert.Equal(t, 1.0, tooMany[0].GetCounter().GetValue())
	assert.NotEmpty(t, find(fams, "kvsync_kiotviet_requests_total", map[string]string{"code": "503"}))
	var retries float64
	for _, s := range fams["kvsync_kiotviet_retries_total"].GetMetric() {
		retries += s.GetCounter().GetValue()
	}
	assert.GreaterOrEqual(t, retries, 1.0)
	pages := find(fams, "kvsync_page_write_duration_seconds", map[string]string{"table": "products"})
	require.Len(t, pages, 1)
	assert.Positive(t, pages[0].GetHistogram().GetSampleCount())
	assert.Equal(t, 3.0, fams["kvsync_claimed_schedules_total"].GetMetric()[0].GetCounter().GetValue())
	assert.Equal(t, uint64(3), fams["kvsync_claim_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	assert.Equal(t, "test", labels(fams["kvsync_build_info"].GetMetric()[0])["version"])
	assert.NotNil(t, fams["go_goroutines"], "Go runtime metrics")
	assert.NotNil(t, fams["process_resident_memory_bytes"], "process metrics")
	assert.Equal(t, 1.0, fams["kvsync_database_up"].GetMetric()[0].GetGauge().GetValue())

	// freshness: equal to the finish of the last successful run, as the database has it
	var finished time.Time
	require.NoError(t, db.QueryRow(ctx, `select completed_at from kiotviet_sync_logs where status = 'success'
		order by completed_at desc limit 1`).Scan(&finished))
	for _, stream := range []string{"categories", "products"} {
		g := find(fams, "kvsync_last_success_timestamp_seconds", map[string]string{"credential_id": credID, "stream": stream})
		require.Len(t, g, 1, stream)
		assert.Equal(t, fake.Credentials().Retailer, labels(g[0])["retailer"])
		assert.InDelta(t, float64(finished.UnixMicro())/1e6, g[0].GetGauge().GetValue(), 1e-6, stream)
	}
	fails := find(fams, "kvsync_schedule_consecutive_failures", map[string]string{"credential_id": credID, "sync_type": "products_full"})
	require.Len(t, fails, 1)
	assert.Equal(t, 1.0, fails[0].GetGauge().GetValue(), "the failed run counts")

	// the API budget left: the hourly limit less what the shared budget granted in the last hour
	var granted float64
	require.NoError(t, db.QueryRow(ctx, `select coalesce(sum(n), 0) from kiotviet_api_grants
		where credential_id = $1 and granted_at > now() - interval '1 hour'`, credID).Scan(&granted))
	require.Positive(t, granted)
	left := find(fams, "kvsync_kiotviet_api_budget_remaining", map[string]string{"credential_id": credID})
	require.Len(t, left, 1)
	assert.Equal(t, 5000-granted, left[0].GetGauge().GetValue())
	assert.Equal(t, 5000.0, fams["kvsync_kiotviet_api_budget_limit"].GetMetric()[0].GetGauge().GetValue())

	// webhook events, as the database keeps them: two received, one applied
	_, err = db.Exec(ctx, `insert into kiotviet_webhook_events (credential_id, dedupe_key, body, status, received_at)
		values ($1, 'a', '{}', 'applied', now() - interval '1 minute'), ($1, 'b', '{}', 'pending', now())`, credID)
	require.NoError(t, err)
	var lastHook time.Time
	require.NoError(t, db.QueryRow(ctx, `select max(received_at) from kiotviet_webhook_events`).Scan(&lastHook))
	fams = scrape(t, srv.URL, nil)
	for status, want := range map[string]float64{"applied": 1, "pending": 1, "parked": 0} {
		g := find(fams, "kvsync_webhook_events", map[string]string{"credential_id": credID, "status": status})
		require.Len(t, g, 1, status)
		assert.Equal(t, want, g[0].GetGauge().GetValue(), status)
	}
	lh := find(fams, "kvsync_webhook_last_received_timestamp_seconds", map[string]string{"credential_id": credID})
	require.Len(t, lh, 1)
	assert.InDelta(t, float64(lastHook.UnixMicro())/1e6, lh[0].GetGauge().GetValue(), 1e-6)

	// a second registry over the same database (another replica) reports the same freshness
	other := metrics.New("test")
	other.Database(store.New(store.PG{Pool: db}), 5000)
	osrv := httptest.NewServer(other.Handler(metrics.Auth{}, nil))
	t.Cleanup(osrv.Close)
	ofams := scrape(t, osrv.URL, nil)
	g := find(ofams, "kvsync_last_success_timestamp_seconds", map[string]string{"credential_id": credID, "stream": "products"})
	require.Len(t, g, 1)
	assert.InDelta(t, float64(finished.UnixMicro())/1e6, g[0].GetGauge().GetValue(), 1e-6)
	assert.Empty(t, ofams["kvsync_run_duration_seconds"].GetMetric(), "runs are this process's own")
}

// With a token or a user and password set, /metrics answers 401 without them and 200 with either.
func TestMetricsAuth(t *testing.T) {
	t.Parallel()
	m := metrics.New("")
	srv := httptest.NewServer(m.Handler(metrics.Auth{Token: "scrape-token-0123456789", User: "prom", Password: "pw-123"}, nil))
	t.Cleanup(srv.Close)
	get := func(h http.Header) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	basic := func(u, p string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))}}
	}
	assert.Equal(t, http.StatusUnauthorized, get(nil))
	assert.Equal(t, http.StatusUnauthorized, get(http.Header{"Authorization": {"Bearer wrong"}}))
	assert.Equal(t, http.StatusUnauthorized, get(basic("prom", "wrong")))
	assert.Equal(t, http.StatusOK, get(http.Header{"Authorization": {"Bearer scrape-token-0123456789"}}))
	assert.Equal(t, http.StatusOK, get(basic("prom", "pw-123")))
	fams := scrape(t, srv.URL, basic("prom", "pw-123"))
	assert.Contains(t, fams, "kvsync_build_info")
}

func TestEndpointLabelsAreBounded(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/connect/token": "token", "/products": "products", "/products/12345": "products",
		"/productOnHands": "productOnHands", "/categories": "categories", "/branches": "branches",
		"/attributes/allwithdistinctvalue": "attributes", "/secret/../x": "other", "/": "other",
	} {
		assert.Equal(t, want, metrics.Endpoint(path), path)
	}
}

// Runs started on request (the ERP's "sync now" through kiotviet-sync: a request without a claimed run)
// are in the run histogram like claimed ones; a claimed run that passes through the same wrapper (a
// dispatcher fanning out to kiotviet-sync) is counted once, by the dispatcher; a request refused before a
// run starts is no run.
func TestStartedRunsAreObservedOnce(t *testing.T) {
	t.Parallel()
	db := testdb.DB(t)
	ctx := context.Background()
	m := metrics.New("test")
	st := store.New(store.PG{Pool: db})
	fake := kiotvietfake.New(kiotvietfake.Options{Products: 10, Branches: 1, Categories: 3, Seed: 5, RateLimitPerHour: -1})
	fsrv := httptest.NewServer(fake.Handler())
	t.Cleanup(fsrv.Close)
	keys, err := secret.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32)), "")
	require.NoError(t, err)
	engine, err := syncer.New(syncer.Config{Store: st, Keys: keys, Worker: "metrics-manual",
		KiotViet: kiotviet.Config{TokenURL: fsrv.URL + kiotvietfake.TokenPath, APIURL: fsrv.URL, MaxAttempts: 1,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}})
	require.NoError(t, err)
	credID, err := synctest.SaveCredential(ctx, st, keys, fake.Credentials())
	require.NoError(t, err)
	runner := m.StartedRuns(engine)

	res, err := runner.Run(ctx, syncer.Request{CredentialID: credID, SyncType: vocab.Categories, Trigger: vocab.Manual})
	require.NoError(t, err)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	res, err = runner.Run(ctx, syncer.Request{CredentialID: credID, SyncType: vocab.Categories, Trigger: vocab.Manual})
	require.NoError(t, err)
	require.Equal(t, vocab.Failed, res.Status)
	fake.SetFaults(kiotvietfake.Faults{})
	_, err = runner.Run(ctx, syncer.Request{CredentialID: "00000000-0000-0000-0000-000000000000", SyncType: vocab.Categories, Trigger: vocab.Manual})
	require.Error(t, err, "an unknown credential starts no run")

	// a claimed run through the same wrapper, as a dispatcher's fan-out reaches kiotviet-sync
	schedID, err := st.UpsertSchedule(ctx, store.Schedule{CredentialID: credID, SyncType: "categories", Frequency: "hourly", Enabled: true})
	require.NoError(t, err)
	_, err = db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = $1`, schedID)
	require.NoError(t, err)
	done := make(chan dispatch.RunResult, 1)
	d := dispatch.New(dispatch.Config{Store: st, Runner: runner, Metrics: m, OnRunDone: func(r dispatch.RunResult) { done <- r }})
	tick, err := d.Tick(ctx, 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1)
	select {
	case r := <-done:
		require.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	case <-time.After(time.Minute):
		t.Fatal("the claimed run did not end")
	}

	var runs int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from kiotviet_sync_logs where credential_id = $1`, credID).Scan(&runs))
	require.Equal(t, 3, runs, "two started on request, one claimed")
	srv := httptest.NewServer(m.Handler(metrics.Auth{}, nil))
	t.Cleanup(srv.Close)
	fams := scrape(t, srv.URL, nil)
	var count uint64
	for _, s := range fams["kvsync_run_duration_seconds"].GetMetric() {
		count += s.GetHistogram().GetSampleCount()
	}
	assert.Equal(t, uint64(runs), count, "the histogram counts every run once")
	ok := find(fams, "kvsync_run_duration_seconds", map[string]string{"sync_type": "categories", "status": "success"})
	require.Len(t, ok, 1)
	assert.Equal(t, uint64(2), ok[0].GetHistogram().GetSampleCount())
	failed := find(fams, "kvsync_run_duration_seconds", map[string]string{"sync_type": "categories", "status": "failed"})
	require.Len(t, failed, 1)
	assert.Equal(t, uint64(1), failed[0].GetHistogram().GetSampleCount())
	assert.Equal(t, 0.0, fams["kvsync_runs_in_flight"].GetMetric()[0].GetGauge().GetValue(), "nothing left in flight")
}
