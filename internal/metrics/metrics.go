// Package metrics is what GET /metrics shows, with prometheus/client_golang: how runs, page writes, claims
// and KiotViet requests went in this process, plus what every replica reports the same because it is read
// from the database at scrape time (when each stream last synced, how many times each schedule has failed
// in a row). Names follow Prometheus's conventions (base units, _total, _seconds); every label has a small,
// bounded set of values (sync types, statuses, endpoints, status codes; credentials and streams, as many as
// the deployment has).
package metrics

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// Metrics holds this process's collectors in a registry of its own (no global state).
type Metrics struct {
	reg *prometheus.Registry

	runDuration   *prometheus.HistogramVec
	runsInFlight  prometheus.Gauge
	recordsRead   *prometheus.CounterVec
	rowsWritten   *prometheus.CounterVec
	claims        prometheus.Counter
	claimed       prometheus.Counter
	claimDuration prometheus.Histogram
	pageWrite     *prometheus.HistogramVec
	requests      *prometheus.CounterVec
	requestTime   *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
}

// Buckets of a run's duration: a re-sync takes well under a second, a first full sync of a big shop
// many minutes.
var runBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// New registers every collector but the database's (Database adds it).
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kvsync_run_duration_seconds",
		Help: "Duration of the sync runs this process claimed (and carried out or fanned out) or started on request, by sync type and final status.", Buckets: runBuckets},
		[]string{"sync_type", "status"})
	m.runsInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvsync_runs_in_flight", Help: "Sync runs going on in this process."})
	m.recordsRead = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kvsync_records_read_total",
		Help: "Items read from KiotViet by runs, by sync type."}, []string{"sync_type"})
	m.rowsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kvsync_rows_written_total",
		Help: "Database rows changed (written or deleted) by runs, by sync type."}, []string{"sync_type"})
	m.claims = prometheus.NewCounter(prometheus.CounterOpts{Name: "kvsync_claims_total", Help: "Dispatcher claims of due schedules."})
	m.claimed = prometheus.NewCounter(prometheus.CounterOpts{Name: "kvsync_claimed_schedules_total", Help: "Schedules claimed by the dispatcher."})
	m.claimDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kvsync_claim_duration_seconds",
		Help: "Time one claim of due schedules took.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	m.pageWrite = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kvsync_page_write_duration_seconds",
		Help:    "Time one page took to write (one kiotviet_apply_* call), by table group.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"table"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kvsync_kiotviet_requests_total",
		Help: "HTTP requests to KiotViet, by endpoint and status code (\"error\" when no reply came)."}, []string{"endpoint", "code"})
	m.requestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kvsync_kiotviet_request_duration_seconds",
		Help: "Time KiotViet took to answer, by endpoint.", Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"endpoint"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kvsync_kiotviet_retries_total",
		Help: "KiotViet requests tried again after a failure, by endpoint."}, []string{"endpoint"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kvsync_alert_deliveries_total",
		Help: "Alert send attempts by this process, by channel and result (sent, pending = will retry, failed = given up)."},
		[]string{"channel", "result"})
	for _, c := range []prometheus.Collector{m.runDuration, m.runsInFlight, m.recordsRead, m.rowsWritten, m.claims, m.claimed,
		m.claimDuration, m.pageWrite, m.requests, m.requestTime, m.retries, m.deliveries} {
		f(c)
	}
	f(buildInfo(version))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Database adds the gauges read from the database at each scrape (freshness, failures in a row, the API
// budget left of limitPerHour calls per credential), so every replica reports the same.
func (m *Metrics) Database(st *store.Store, limitPerHour int) {
	m.reg.MustRegister(&dbCollector{st: st, limit: limitPerHour})
}

func buildInfo(version string) prometheus.Collector {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvsync_build_info", Help: "Always 1; the labels say which kvsync this is.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}})
	g.Set(1)
	return g
}

// Registry is the registry, for tests that gather directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text format (or OpenMetrics when asked). With auth set it
// answers 401 to a scrape without the bearer token or the basic-auth user and password (constant-time
// comparisons).
func (m *Metrics) Handler(auth Auth, log *slog.Logger) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true})
	if !auth.set() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.allows(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="kvsync metrics", charset="UTF-8"`)
			http.Error(w, `{"success":false,"error":"metrics need credentials: Authorization: Bearer <KVSYNC_METRICS_TOKEN> or basic auth"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Auth is who may scrape: a bearer token, a basic-auth user and password, or both (either passes).
type Auth struct {
	Token          string
	User, Password string
}

func (a Auth) set() bool { return a.Token != "" || a.User != "" }

func (a Auth) allows(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if a.Token != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok && subtle.ConstantTimeCompare([]byte(tok), []byte(a.Token)) == 1 {
			return true
		}
	}
	if a.User != "" {
		if u, p, ok := r.BasicAuth(); ok {
			uok := subtle.ConstantTimeCompare([]byte(u), []byte(a.User))
			pok := subtle.ConstantTimeCompare([]byte(p), []byte(a.Password))
			return uok&pok == 1
		}
	}
	return false
}

// ---- the dispatcher's observer (internal/dispatch.Observer) -------------------------------------------------

// Claimed records one claim.
func (m *Metrics) Claimed(took time.Duration, n int) {
	m.claims.Inc()
	m.claimed.Add(float64(n))
	m.claimDuration.Observe(took.Seconds())
}

// RunStarted and RunEnded bracket one run.
func (m *Metrics) RunStarted() { m.runsInFlight.Inc() }

// RunEnded records a run's duration, rows and records.
func (m *Metrics) RunEnded(st vocab.SyncType, res syncer.Result, took time.Duration) {
	m.runsInFlight.Dec()
	syncType := string(st)
	status := res.Status
	switch status {
	case vocab.Success, vocab.Partial, vocab.Failed, vocab.Skipped:
	default:
		status = vocab.Failed
	}
	m.runDuration.WithLabelValues(syncType, string(status)).Observe(took.Seconds())
	m.recordsRead.WithLabelValues(syncType).Add(float64(res.Records))
	var rows int
	for _, st := range res.Streams {
		rows += st.Written + st.Deleted
	}
	m.rowsWritten.WithLabelValues(syncType).Add(float64(rows))
}

// Runner runs one sync to the end: a run it starts (Run) or one a dispatcher claimed (RunClaimed); the
// syncer.Engine, as kiotviet-sync and the dispatcher call it.
type Runner interface {
	Run(ctx context.Context, req syncer.Request) (syncer.Result, error)
	RunClaimed(ctx context.Context, c store.Claim) (syncer.Result, error)
}

// StartedRuns wraps next so that the runs it starts itself (a request without a claimed run: the ERP's
// "sync now" through kiotviet-sync, a service caller) are observed like the dispatcher's claimed runs: in
// flight while they go, then in the run histogram. A request that carries a claimed run id was fanned out
// by a dispatcher, which observes that run itself; counting it here too would count it twice in a sum
// over replicas (RunClaimed passes it through). A request the engine refused before starting a run (already running, unknown
// credential) is no run and is not observed.
func (m *Metrics) StartedRuns(next Runner) Runner { return startedRuns{m: m, next: next} }

type startedRuns struct {
	m    *Metrics
	next Runner
}

// RunClaimed carries out a claimed run unobserved: its dispatcher observes it.
func (s startedRuns) RunClaimed(ctx context.Context, c store.Claim) (syncer.Result, error) {
	return s.next.RunClaimed(ctx, c)
}

func (s startedRuns) Run(ctx context.Context, req syncer.Request) (syncer.Result, error) {
	s.m.RunStarted()
	start := time.Now()
	res, err := s.next.Run(ctx, req)
	if err != nil && res.RunID == "" {
		s.m.runsInFlight.Dec()
		return res, err
	}
	s.m.RunEnded(req.SyncType, res, time.Since(start))
	return res, err
}

// Delivered records one alert send attempt (internal/alert.Notifier.OnDelivery).
func (m *Metrics) Delivered(channel, result string) {
	m.deliveries.WithLabelValues(channel, result).Inc()
}

// Retried records one KiotViet retry (kiotviet.Config.OnRetry).
func (m *Metrics) Retried(path string) { m.retries.WithLabelValues(Endpoint(path)).Inc() }

// ---- KiotViet requests ---------------------------------------------------------------------------------------

// Endpoint maps a KiotViet URL path to its endpoint label: one of a fixed set, so ids in paths never
// become labels.
func Endpoint(path string) string {
	p := strings.ToLower(strings.Trim(path, "/"))
	if strings.HasSuffix(p, "connect/token") {
		return "token"
	}
	first, _, _ := strings.Cut(p, "/")
	switch first {
	case "categories", "products", "productonhands", "branches", "attributes", "webhooks", "customers", "orders", "invoices":
		if first == "productonhands" {
			return "productOnHands"
		}
		return first
	}
	return "other"
}

// Transport wraps next (nil: http.DefaultTransport) to count every KiotViet request by endpoint and code.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{m: m, next: next}
}

type roundTripper struct {
	m    *Metrics
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	ep := Endpoint(r.URL.Path)
	start := time.Now()
	resp, err := rt.next.RoundTrip(r)
	rt.m.requestTime.WithLabelValues(ep).Observe(time.Since(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	rt.m.requests.WithLabelValues(ep, code).Inc()
	return resp, err
}

// ---- page writes -------------------------------------------------------------------------------------------

// Caller wraps a store.Caller to time every page write (kiotviet_apply_* and kiotviet_sweep).
func (m *Metrics) Caller(next store.Caller) store.Caller { return caller{m: m, next: next} }

type caller struct {
	m    *Metrics
	next store.Caller
}

func (c caller) Call(ctx context.Context, fn string, args []store.Arg, set bool) (json.RawMessage, error) {
	table, ok := strings.CutPrefix(fn, "kiotviet_apply_")
	if !ok && fn == "kiotviet_sweep" {
		table, ok = "sweep", true
	}
	if !ok {
		return c.next.Call(ctx, fn, args, set)
	}
	start := time.Now()
	out, err := c.next.Call(ctx, fn, args, set)
	c.m.pageWrite.WithLabelValues(table).Observe(time.Since(start).Seconds())
	return out, err
}

// ---- what the database says, the same on every replica -----------------------------------------------

var (
	lastSuccessDesc = prometheus.NewDesc("kvsync_last_success_timestamp_seconds",
		"When each stream of each active credential last synced successfully (Unix time), from the database.",
		[]string{"credential_id", "retailer", "stream"}, nil)
	failuresDesc = prometheus.NewDesc("kvsync_schedule_consecutive_failures",
		"Failed runs in a row of each enabled schedule, from the database (0 = healthy).",
		[]string{"credential_id", "retailer", "sync_type"}, nil)
	budgetDesc = prometheus.NewDesc("kvsync_kiotviet_api_budget_remaining",
		"KiotViet API calls left in each active credential's shared budget for the sliding hour, from the database.",
		[]string{"credential_id", "retailer"}, nil)
	budgetLimitDesc = prometheus.NewDesc("kvsync_kiotviet_api_budget_limit",
		"The hourly KiotViet API budget per credential (KIOTVIET_RATE_LIMIT_PER_HOUR).", nil, nil)
	webhookEventsDesc = prometheus.NewDesc("kvsync_webhook_events",
		"KiotViet webhook events kept in the database, by credential and state (pending, applying, applied, parked).",
		[]string{"credential_id", "retailer", "status"}, nil)
	webhookLastDesc = prometheus.NewDesc("kvsync_webhook_last_received_timestamp_seconds",
		"When the last KiotViet webhook event of each credential was received (Unix time), from the database.",
		[]string{"credential_id", "retailer"}, nil)
	dbUpDesc = prometheus.NewDesc("kvsync_database_up",
		"1 when this scrape could read the database gauges, else 0.", nil, nil)
)

type dbCollector struct {
	st    *store.Store
	limit int
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastSuccessDesc
	ch <- failuresDesc
	ch <- budgetDesc
	ch <- budgetLimitDesc
	ch <- webhookEventsDesc
	ch <- webhookLastDesc
	ch <- dbUpDesc
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	fresh, err := c.st.Freshness(ctx)
	if err != nil {
		up = 0
	}
	for _, f := range fresh {
		if f.LastSuccessAt == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
			float64(f.LastSuccessAt.UnixNano())/1e9, f.CredentialID, f.RetailerName, f.Stream)
	}
	status, err := c.st.Status(ctx)
	if err != nil {
		up = 0
	}
	for _, s := range status {
		if !s.Enabled || !s.CredentialActive {
			continue
		}
		retailer := ""
		if s.RetailerName != nil {
			retailer = *s.RetailerName
		}
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(s.ConsecutiveFailures),
			s.CredentialID, retailer, s.SyncType)
	}
	if c.limit > 0 {
		used, err := c.st.APIBudgetUsed(ctx)
		if err != nil {
			up = 0
		}
		for _, u := range used {
			ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(max(int64(c.limit)-u.UsedLastHour, 0)),
				u.CredentialID, u.RetailerName)
		}
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(c.limit))
	}
	hooks, err := c.st.WebhookHealth(ctx)
	if err != nil {
		up = 0
	}
	for _, h := range hooks {
		for status, n := range map[string]int{"pending": h.Pending, "applying": h.Applying, "applied": h.Applied, "parked": h.Parked} {
			ch <- prometheus.MustNewConstMetric(webhookEventsDesc, prometheus.GaugeValue, float64(n), h.CredentialID, h.RetailerName, status)
		}
		if h.LastReceivedAt != nil {
			ch <- prometheus.MustNewConstMetric(webhookLastDesc, prometheus.GaugeValue,
				float64(h.LastReceivedAt.UnixNano())/1e9, h.CredentialID, h.RetailerName)
		}
	}
	ch <- prometheus.MustNewConstMetric(dbUpDesc, prometheus.GaugeValue, up)
}
