package dispatch

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvsync/kvsync/internal/syncer"
)

// Metrics counts what the dispatcher did, for GET /metrics in Prometheus's text format. A nil *Metrics
// records nothing.
type Metrics struct {
	mu       sync.Mutex
	runs     map[string]int64
	rows     atomic.Int64
	written  atomic.Int64
	apiCalls atomic.Int64
	claims   atomic.Int64
	claimNs  atomic.Int64
	claimed  atomic.Int64
	inflight atomic.Int64
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics { return &Metrics{runs: map[string]int64{}} }

func (m *Metrics) observeClaim(d time.Duration, n int) {
	if m == nil {
		return
	}
	m.claims.Add(1)
	m.claimNs.Add(int64(d))
	m.claimed.Add(int64(n))
}

func (m *Metrics) observeRun(r syncer.Result) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.runs[r.Status]++
	m.mu.Unlock()
	m.rows.Add(int64(r.Records))
	m.apiCalls.Add(r.APICalls)
	for _, st := range r.Streams {
		m.written.Add(int64(st.Written))
	}
}

// WriteTo writes the metrics in Prometheus's text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var n int64
	p := func(format string, args ...any) {
		k, _ := fmt.Fprintf(w, format, args...)
		n += int64(k)
	}
	p("# HELP kvsync_runs_total Sync runs ended, by status.\n# TYPE kvsync_runs_total counter\n")
	m.mu.Lock()
	statuses := make([]string, 0, len(m.runs))
	for s := range m.runs {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		p("kvsync_runs_total{status=%q} %d\n", s, m.runs[s])
	}
	m.mu.Unlock()
	p("# HELP kvsync_records_read_total Items read from KiotViet by runs.\n# TYPE kvsync_records_read_total counter\nkvsync_records_read_total %d\n", m.rows.Load())
	p("# HELP kvsync_rows_written_total Database rows changed by runs.\n# TYPE kvsync_rows_written_total counter\nkvsync_rows_written_total %d\n", m.written.Load())
	p("# HELP kvsync_api_calls_total KiotViet requests made by runs.\n# TYPE kvsync_api_calls_total counter\nkvsync_api_calls_total %d\n", m.apiCalls.Load())
	p("# HELP kvsync_claim_seconds Time spent claiming due schedules.\n# TYPE kvsync_claim_seconds summary\nkvsync_claim_seconds_sum %g\nkvsync_claim_seconds_count %d\n",
		time.Duration(m.claimNs.Load()).Seconds(), m.claims.Load())
	p("# HELP kvsync_claimed_total Schedules claimed.\n# TYPE kvsync_claimed_total counter\nkvsync_claimed_total %d\n", m.claimed.Load())
	p("# HELP kvsync_runs_in_flight Syncs running in this process.\n# TYPE kvsync_runs_in_flight gauge\nkvsync_runs_in_flight %d\n", m.inflight.Load())
	return n, nil
}
