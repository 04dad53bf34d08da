// Package syncer is the sync engine: for one credential and sync type it pages through KiotViet and
// writes each page in one SQL call (one transaction), fetching page n+1 while page n is written, so
// memory stays O(page) whatever the catalogue's size. Streams are incremental by default (cursor with an
// overlap window, removed ids deleted); a full reconcile that also deletes what KiotViet no longer has
// runs when there is no cursor, when asked, and at least once a day.
package syncer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/vocab"
)

// Defaults for Config's zero values.
const (
	DefaultHeartbeatEvery = 10 * time.Second // the issue asks for ≤ 15 s
	DefaultOverlap        = 5 * time.Minute
	DefaultFullEvery      = 24 * time.Hour
	// DefaultWriteBatchPages: the pages a pass reads at once (kiotviet.DefaultReadConcurrency) can be
	// written in one call when they queue up behind the writer.
	DefaultWriteBatchPages = kiotviet.DefaultReadConcurrency
)

// Config is what an Engine needs. Zero values mean the defaults above.
type Config struct {
	Store    *store.Store
	Keys     *secret.Keyring
	KiotViet kiotviet.Config // URLs, HTTP client, rate limit, clock; shared by every credential's client
	Worker   string          // who holds the runs' leases, e.g. host:pid

	Lease          time.Duration
	HeartbeatEvery time.Duration
	Overlap        time.Duration // re-read window before the cursor
	FullEvery      time.Duration // a full reconcile at least this often
	// StockScanEvery: while the credential's stock webhooks are healthy, the inventory sync reads
	// /productOnHands in full only this often (0: every run; see kiotviet_stock_scan_due).
	StockScanEvery time.Duration
	// WriteBatchPages is how many pages read while the writer was busy are written in one call at most
	// (default DefaultWriteBatchPages; 1 writes each page in a call of its own).
	WriteBatchPages int
	Logger          *slog.Logger
	Now             func() time.Time

	// OnHeartbeat, when set, is called after every heartbeat: a test signal, never needed in production.
	OnHeartbeat func(runID string, ok bool)
	// OnFinishFailed, when set, is called after every attempt to finish a run that failed and will be
	// retried: a test signal, never needed in production.
	OnFinishFailed func(runID string, err error)
}

// Engine runs syncs. It keeps one KiotViet client per credential for the life of the process, so each
// credential's hourly request budget is counted across runs.
type Engine struct {
	cfg Config

	mu      sync.Mutex
	clients map[string]*kiotviet.Client // by credential id + client id
}

// New validates cfg and applies its defaults.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("syncer: Store and Keys are required")
	}
	cfg.Lease = cmp.Or(cfg.Lease, vocab.DefaultLease)
	cfg.HeartbeatEvery = cmp.Or(cfg.HeartbeatEvery, DefaultHeartbeatEvery)
	cfg.Overlap = cmp.Or(cfg.Overlap, DefaultOverlap)
	cfg.FullEvery = cmp.Or(cfg.FullEvery, DefaultFullEvery)
	cfg.WriteBatchPages = max(cmp.Or(cfg.WriteBatchPages, DefaultWriteBatchPages), 1)
	cfg.Worker = cmp.Or(cfg.Worker, "kvsync")
	if cfg.HeartbeatEvery >= cfg.Lease {
		return nil, fmt.Errorf("syncer: heartbeat every %s must be shorter than the lease %s", cfg.HeartbeatEvery, cfg.Lease)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KiotViet.Now == nil {
		cfg.KiotViet.Now = cfg.Now
	}
	if cfg.KiotViet.HTTPClient == nil {
		cfg.KiotViet.HTTPClient = kiotviet.NewHTTPClient()
	}
	return &Engine{cfg: cfg, clients: map[string]*kiotviet.Client{}}, nil
}

// Request asks for a run the engine starts (Start, Run): a manual sync or an API call's. A run the
// dispatcher claimed is carried out by RunClaimed instead.
type Request struct {
	CredentialID string
	SyncType     vocab.SyncType
	Trigger      vocab.Trigger // manual (the default) or api
	PageSize     int
	DateFrom     time.Time // incremental from this time instead of the cursor
	Full         bool      // a full reconcile now
}

// StreamStats is what one stream did in a run.
type StreamStats struct {
	Count    int    `json:"count"`   // items read from KiotViet
	Written  int    `json:"written"` // rows changed in the database, every table counted
	Deleted  int    `json:"deleted"`
	Pages    int    `json:"pages"`
	APICalls int64  `json:"api_calls"`
	Mode     string `json:"mode"` // incremental | full
	Swept    *bool  `json:"swept,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Result is a finished run.
type Result struct {
	RunID     string                  `json:"runId"`
	Status    vocab.Status            `json:"status"` // success | partial | failed | skipped
	Streams   map[string]*StreamStats `json:"results"`
	Records   int                     `json:"records"`
	APICalls  int64                   `json:"apiCalls"`
	Error     string                  `json:"error,omitempty"`
	NextRunAt *time.Time              `json:"nextRunAt,omitempty"`
	// Paused counts the credential's schedules this run paused because KiotViet rejected its client id
	// or secret (a permanent failure; see PauseReason).
	Paused int `json:"paused,omitempty"`
}

// PauseReason is what a credential's schedules show when KiotViet rejected its client id or secret.
func PauseReason(err error) string {
	var api *kiotviet.APIError
	detail := ""
	if errors.As(err, &api) {
		detail = fmt.Sprintf(" (status %d", api.Status)
		if api.Code != "" {
			detail += " " + api.Code
		}
		detail += ")"
	}
	return "KiotViet rejected the client id or secret" + detail + ": save the connection again (ERP settings, or kvsync credentials add)"
}

// client returns the credential's long-lived KiotViet client.
func (e *Engine) client(c store.Credential) *kiotviet.Client {
	key := c.ID + "/" + c.ClientID
	e.mu.Lock()
	defer e.mu.Unlock()
	if cl, ok := e.clients[key]; ok {
		return cl
	}
	cfg := e.cfg.KiotViet
	cfg.Logger = e.cfg.Logger
	ts := &dbTokens{store: e.cfg.Store, keys: e.cfg.Keys, cfg: cfg, credID: c.ID,
		margin: cmp.Or(cfg.TokenRefreshMargin, kiotviet.DefaultTokenRefreshMargin), now: e.cfg.Now}
	if limit := cmp.Or(cfg.RateLimitPerHour, kiotviet.DefaultRateLimitPerHour); limit > 0 {
		cfg.Budget = sharedBudget{store: e.cfg.Store, credID: c.ID, perHour: limit}
	}
	cl := kiotviet.New(cfg, c.RetailerName, ts)
	e.clients[key] = cl
	return cl
}

// run is one sync in progress.
type run struct {
	e      *Engine
	id     string
	req    Request
	log    *slog.Logger
	res    *Result
	client *kiotviet.Client
	// ahead is the next stream's pass, started early (prefetch), for the stream named aheadStream
	ahead       interface{ stop() }
	aheadStream string

	mu      sync.Mutex
	beatAt  time.Time // the last time the lease was extended (the run's start before the first beat)
	current string
	done    int // items of the current stream applied so far
	total   int // KiotViet's total for the current stream's list (0: not known yet)
	pages   int // pages of the current stream
	records int // items of every stream so far
}

// leaseUntil is when the run's lease ends, as far as this worker knows (measured from the moment the
// heartbeat that set it started, so never later than the database's own expiry).
func (r *run) leaseUntil() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.beatAt.Add(r.e.cfg.Lease)
}

func (r *run) progress(stream string) {
	r.mu.Lock()
	r.current, r.done, r.total, r.pages = stream, 0, 0, 0
	r.mu.Unlock()
}

// addPage counts a page applied; total is KiotViet's total for the list it came from. A pass that reads
// a window again (see pagedStream) can go past its total: the share shown stops at 100%.
func (r *run) addPage(items, total int) {
	r.mu.Lock()
	r.pages++
	r.done += items
	r.records += items
	r.total = max(r.total, total, r.done)
	r.mu.Unlock()
}

// heartbeat extends the lease and publishes progress until ctx ends; a heartbeat that finds the run no
// longer ours cancels the run with ErrLeaseLost, so it stops writing.
func (r *run) heartbeat(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(r.e.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		progress := store.Progress{Stream: r.current, Done: r.done, Total: r.total, Pages: r.pages, Records: r.records}
		r.mu.Unlock()
		hctx, hcancel := context.WithTimeout(ctx, r.e.cfg.HeartbeatEvery)
		sent := time.Now()
		ok, err := r.e.cfg.Store.Heartbeat(hctx, r.id, r.e.cfg.Worker, progress, r.e.cfg.Lease)
		hcancel()
		if err != nil {
			r.log.Warn("heartbeat failed", "err", err) // the next one may succeed before the lease ends
			continue
		}
		if ok {
			r.mu.Lock()
			r.beatAt = sent
			r.mu.Unlock()
		}
		if r.e.cfg.OnHeartbeat != nil {
			r.e.cfg.OnHeartbeat(r.id, ok)
		}
		if !ok {
			r.log.Error("lease lost; stopping the run")
			cancel(ErrLeaseLost)
			return
		}
	}
}

// streamEndpoints are the KiotViet endpoints each stream reads (its API calls in StreamStats).
var streamEndpoints = map[vocab.Stream][]string{
	vocab.StreamCategories: {"/categories"},
	vocab.StreamProducts:   {"/products"},
	vocab.StreamBranches:   {"/branches"},
	vocab.StreamStock:      {"/productOnHands"},
	vocab.StreamAttributes: {"/attributes/allwithdistinctvalue"},
}

func (r *run) stream(ctx context.Context, name string, st *StreamStats) error {
	switch vocab.Stream(name) {
	case vocab.StreamCategories:
		return r.categories(ctx, st)
	case vocab.StreamProducts:
		return r.products(ctx, st)
	case vocab.StreamBranches:
		return r.branches(ctx, st)
	case vocab.StreamStock:
		return r.stock(ctx, st)
	case vocab.StreamAttributes:
		return r.attributes(ctx, st)
	}
	return fmt.Errorf("unknown stream %q", name)
}

// pump reads pages in a goroutine while the caller writes the previous one: the fetch of the next pages
// (up to the client's read concurrency at once, see kiotviet.Pager.Next) overlaps the write of page n,
// and at most concurrency + 2 pages are in memory.
func pump[T any](ctx context.Context, p *kiotviet.Pager[T], apply func(context.Context, kiotviet.Page[T]) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan kiotviet.Page[T], 1)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(pages)
		defer p.Close()
		for p.Next(ctx) {
			select {
			case pages <- p.Page():
			case <-ctx.Done():
				fetchErr <- ctx.Err()
				return
			}
		}
		fetchErr <- p.Err()
	}()
	for pg := range pages {
		if err := apply(ctx, pg); err != nil {
			cancel()
			for range pages { // let the fetcher finish
			}
			return err
		}
	}
	return <-fetchErr
}

// writeBatches is pump for the page functions that take any number of rows: each page is shaped by
// prepare as it arrives, the shaped pages that queue while the writer is busy wait (as many as the pager
// reads at once), and the writer takes every page waiting, up to batch, in one call. A page with removed
// ids starts a new call, so a removal is never applied before rows of an earlier page. batch 1 writes each
// page alone.
func writeBatches[T, S any](ctx context.Context, p *kiotviet.Pager[T], batch int, prepare func([]T) ([]S, error),
	apply func(context.Context, []kiotviet.Page[S]) error) error {
	return writePages(ctx, startReading(ctx, p, batch, nil), batch, prepare, apply)
}

// reading is a listing read in a goroutine of its own into a queue of pages, so that its requests can
// start before its pages are written: the catch-up of a full pass starts once the pass's last page has
// been read (not written), and a run's products start while its categories are read and written
// (run.prefetch). At most the queue, the page being handed over and the pager's read-ahead are in memory.
type reading[T any] struct {
	pages  chan kiotviet.Page[T] // closed when the listing has stopped
	read   chan struct{}         // closed once every page is read (never, for a listing that failed)
	gone   chan struct{}         // closed when the reading goroutine has ended; err is then set
	err    error                 // why the listing stopped (nil: read to its end)
	cancel context.CancelFunc
}

// startReading reads p's pages into a queue of queue pages, from when after is closed (nil: at once).
func startReading[T any](ctx context.Context, p *kiotviet.Pager[T], queue int, after <-chan struct{}) *reading[T] {
	ctx, cancel := context.WithCancel(ctx)
	rd := &reading[T]{pages: make(chan kiotviet.Page[T], max(queue, 1)), read: make(chan struct{}),
		gone: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(rd.gone)
		defer close(rd.pages)
		readAll := sync.OnceFunc(func() { close(rd.read) })
		rd.err = func() error {
			defer p.Close()
			if after != nil {
				select {
				case <-after:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			for p.Next(ctx) {
				if p.Done() {
					readAll() // the last page is in hand, before it waits for room in the queue
				}
				select {
				case rd.pages <- p.Page():
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if p.Err() == nil {
				readAll()
			}
			return p.Err()
		}()
	}()
	return rd
}

// stop abandons the reading: its requests are cancelled and its pages dropped; it returns once the
// reading goroutine has ended.
func (rd *reading[T]) stop() {
	rd.cancel()
	for range rd.pages {
	}
	<-rd.gone
}

// writePages writes a reading's pages in calls of up to batch pages (see writeBatches) and returns the
// first error, of the listing, of shaping a page or of a write (each stops the reading). Pages are shaped
// in a goroutine of their own as they are read, so the shaping of the next pages overlaps the write of
// these and the writer only joins what is shaped and sends it.
func writePages[T, S any](ctx context.Context, rd *reading[T], batch int, prepare func([]T) ([]S, error),
	apply func(context.Context, []kiotviet.Page[S]) error) error {
	defer rd.cancel()
	batch = max(batch, 1)
	shaped := make(chan kiotviet.Page[S], batch)
	stopShaping := make(chan struct{})
	shapingDone := make(chan struct{})
	var shapeErr error // set before shapingDone is closed
	go func() {
		defer close(shapingDone)
		defer close(shaped)
		for pg := range rd.pages {
			if shapeErr != nil {
				continue // the reading was stopped: let it end
			}
			items, err := prepare(pg.Items)
			if err != nil {
				shapeErr = err
				rd.cancel()
				continue
			}
			select {
			case shaped <- kiotviet.Page[S]{Items: items, RemovedIDs: pg.RemovedIDs, Total: pg.Total, Offset: pg.Offset, Timestamp: pg.Timestamp}:
			case <-stopShaping:
				return
			}
		}
	}()
	var next *kiotviet.Page[S] // a page taken from the queue that starts the next call
	for {
		var pgs []kiotviet.Page[S]
		pgs, next = takeBatch(shaped, next, batch)
		if len(pgs) == 0 {
			break
		}
		if err := apply(ctx, pgs); err != nil {
			rd.cancel() // first, so that a shaper waiting for the next page sees the queue close
			close(stopShaping)
			<-shapingDone
			rd.stop()
			return err
		}
	}
	<-shapingDone
	<-rd.gone
	if shapeErr != nil {
		return shapeErr
	}
	return rd.err
}

// shapedRow is one item as its page function reads it (JSON), with the modifiedDate it carries.
type shapedRow struct {
	json json.RawMessage
	date time.Time
}

// shapeRows marshals each row of items (rowOf shapes one item); an error is a row that cannot be written
// as JSON, which fails the page.
func shapeRows[T, R any](items []T, rowOf func(T) (R, time.Time)) ([]shapedRow, error) {
	out := make([]shapedRow, len(items))
	for i, it := range items {
		r, d := rowOf(it)
		raw, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out[i] = shapedRow{json: raw, date: d}
	}
	return out, nil
}

// joinRows is the rows of consecutive pages as one JSON array, in page order, and their dates.
func joinRows(pgs []kiotviet.Page[shapedRow]) (json.RawMessage, []time.Time) {
	size, n := 2, 0
	for _, pg := range pgs {
		n += len(pg.Items)
		for _, r := range pg.Items {
			size += len(r.json) + 1
		}
	}
	raw := make([]byte, 0, size)
	dates := make([]time.Time, 0, n)
	raw = append(raw, '[')
	for _, pg := range pgs {
		for _, r := range pg.Items {
			if len(dates) > 0 {
				raw = append(raw, ',')
			}
			raw = append(raw, r.json...)
			dates = append(dates, r.date)
		}
	}
	return append(raw, ']'), dates
}

// takeBatch is the next call's pages: next (a page held back from the last call) or the next page to
// arrive, then every page already waiting, up to batch, but not one with removed ids (returned as the
// new next). No pages: the queue is closed and empty.
func takeBatch[T any](pages <-chan kiotviet.Page[T], next *kiotviet.Page[T], batch int) ([]kiotviet.Page[T], *kiotviet.Page[T]) {
	var pgs []kiotviet.Page[T]
	if next != nil {
		pgs = append(pgs, *next)
	} else {
		pg, ok := <-pages
		if !ok {
			return nil, nil
		}
		pgs = append(pgs, pg)
	}
	for len(pgs) < batch {
		select {
		case pg, ok := <-pages:
			if !ok {
				return pgs, nil
			}
			if len(pg.RemovedIDs) > 0 {
				return pgs, &pg
			}
			pgs = append(pgs, pg)
		default:
			return pgs, nil
		}
	}
	return pgs, nil
}

// plan decides a stream's mode: full when asked, when there is no cursor yet, or when the last full
// reconcile is older than FullEvery; otherwise incremental from the cursor minus the overlap window (or
// from the request's dateFrom).
func (r *run) plan(ctx context.Context, stream string) (full bool, from time.Time, err error) {
	states, err := r.e.cfg.Store.State(ctx, r.req.CredentialID)
	if err != nil {
		return false, time.Time{}, err
	}
	s := states[stream]
	now := r.e.cfg.Now()
	switch {
	case r.req.Full, s.Cursor == nil, s.LastFullAt == nil, now.Sub(*s.LastFullAt) >= r.e.cfg.FullEvery:
		return true, time.Time{}, nil
	case !r.req.DateFrom.IsZero():
		return false, r.req.DateFrom, nil
	default:
		return false, s.Cursor.Add(-r.e.cfg.Overlap), nil
	}
}

func mode(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

// cursorTracker follows the newest modifiedDate applied. Pages are requested in modifiedDate order, so
// the cursor can move with each committed page; if KiotViet ever returns them out of order, the cursor
// stops moving page by page and moves once, after the whole stream committed. A frozen tracker (a run
// over an explicit dateFrom window) never moves the cursor: that window may start after the cursor, and
// moving it would skip what lies between.
type cursorTracker struct {
	overlap  time.Duration
	frozen   bool
	max      time.Time
	disorder bool
}

func (c *cursorTracker) page(dates []time.Time) *time.Time {
	for _, d := range dates {
		if !c.max.IsZero() && d.Before(c.max.Add(-c.overlap)) {
			c.disorder = true
		}
		if d.After(c.max) {
			c.max = d
		}
	}
	if c.frozen || c.disorder || c.max.IsZero() {
		return nil
	}
	t := c.max
	return &t
}

func (c *cursorTracker) final() *time.Time {
	if c.frozen || c.max.IsZero() {
		return nil
	}
	t := c.max
	return &t
}

func (r *run) listOptions(full bool, from time.Time) kiotviet.ListOptions {
	// ReadAhead: these passes detect a shift while paging (pagedStream), which is what makes reading
	// several pages at once as safe as reading one after another.
	o := kiotviet.ListOptions{PageSize: r.req.PageSize, OrderBy: "modifiedDate", OrderDirection: "Asc", ReadAhead: true}
	if !full {
		o.LastModifiedFrom = from
		o.IncludeRemoveIDs = true
	}
	return o
}

func (r *run) categories(ctx context.Context, st *StreamStats) error {
	return pagedStream(ctx, r, string(vocab.StreamCategories), st, r.e.cfg.Store.ApplyCategories,
		func(o kiotviet.ListOptions) *kiotviet.Pager[kiotviet.Category] { return r.client.Categories(o) },
		func(items []kiotviet.Category) ([]shapedRow, error) {
			return shapeRows(flatten(items), func(c kiotviet.Category) (categoryRow, time.Time) { return categoryRowOf(c), c.ModifiedDate })
		})
}

// ProductIncludes asks /products for everything the ERP shows: stock per branch with its limits,
// price books, serials, lots and expiry dates, shelves and combo components, without the attribute
// values the shop deleted. Each include makes pages heavier, never adds a request.
func ProductIncludes(o kiotviet.ListOptions) kiotviet.ListOptions {
	o.IncludeInventory = true
	o.IncludeQuantity = true
	o.IncludePricebook = true
	o.IncludeSerials = true
	o.IncludeBatchExpires = true
	o.IncludeProductShelves = true
	o.IncludeMaterial = true
	o.ExcludeSoftDeletedAttributes = true
	return o
}

// listProducts is the products stream's listing: /products with every include.
func (r *run) listProducts(o kiotviet.ListOptions) *kiotviet.Pager[kiotviet.Product] {
	return r.client.Products(ProductIncludes(o))
}

func (r *run) products(ctx context.Context, st *StreamStats) error {
	return pagedStream(ctx, r, string(vocab.StreamProducts), st, r.e.cfg.Store.ApplyProducts, r.listProducts,
		func(items []kiotviet.Product) ([]shapedRow, error) {
			return shapeRows(items, func(p kiotviet.Product) (productRow, time.Time) { return productRowOf(p), p.ModifiedDate })
		})
}

// pass is a cursor-driven stream's pass once planned and started: its mode, the moment it started (a
// row modified from then on was modified while it paged), its main listing being read, and a full
// pass's catch-up listing.
type pass[T any] struct {
	full          bool
	from          time.Time
	started       time.Time
	main, catchUp *reading[T]
}

// openPass plans the stream's pass and starts reading its main listing.
func openPass[T any](ctx context.Context, r *run, stream string, list func(kiotviet.ListOptions) *kiotviet.Pager[T]) (*pass[T], error) {
	full, from, err := r.plan(ctx, stream)
	if err != nil {
		return nil, err
	}
	ps := &pass[T]{full: full, from: from, started: r.e.cfg.Now()}
	ps.main = startReading(ctx, list(r.listOptions(full, from)), r.e.cfg.WriteBatchPages, nil)
	return ps, nil
}

// stop abandons whatever the pass still reads (nothing, once its pages are written).
func (ps *pass[T]) stop() {
	ps.main.stop()
	if ps.catchUp != nil {
		ps.catchUp.stop()
	}
}

// prefetch plans the products stream and starts reading its pages while the stream before it
// (categories) runs, so that a run does not wait for one stream's last request and write before the
// next one's first request: with 100 ms per request, the categories' two reads and their write. The
// pages wait in the pass's queue (a few pages) until the products stream's turn; what changed in the
// meantime is the pass's own catch-up's, as for any pass. A prefetch that cannot plan does nothing: the
// stream plans again in its turn and reports the error then.
func (r *run) prefetch(ctx context.Context, next vocab.Stream) {
	if next != vocab.StreamProducts || r.ahead != nil {
		return
	}
	ps, err := openPass(ctx, r, string(next), r.listProducts)
	if err != nil {
		return
	}
	r.ahead, r.aheadStream = ps, string(next)
}

// dropPrefetched abandons a prefetched pass whose stream never ran (the run stopped before it).
func (r *run) dropPrefetched() {
	if r.ahead != nil {
		r.ahead.stop()
		r.ahead, r.aheadStream = nil, ""
	}
}

// pagedStream runs one cursor-driven stream (categories, products): a full pass or an incremental one
// (plan), each page shaped into rows and applied in one SQL call with the cursor it earned.
//
// KiotViet pages by offset over a list sorted by modifiedDate. A row edited while a pass pages moves to
// the end, and every row after its old place shifts back by one: the row at the next page boundary is
// never read. A pass therefore watches for rows modified since it started (and for deletions): an
// incremental pass that saw any reads its window once more; a full pass reads what changed since it
// started (catch-up) and, when that shows any such change, leaves the sweep to the next full reconcile
// rather than delete a row it may have skipped.
func pagedStream[T any](ctx context.Context, r *run, stream string, st *StreamStats,
	applyPage func(context.Context, store.Page) (store.Applied, error),
	list func(kiotviet.ListOptions) *kiotviet.Pager[T],
	shape func([]T) ([]shapedRow, error)) error {
	ps, ok := r.ahead.(*pass[T])
	if ok && r.aheadStream == stream {
		r.ahead, r.aheadStream = nil, "" // planned and started while the stream before it ran
	} else {
		var err error
		if ps, err = openPass(ctx, r, stream, list); err != nil {
			return err
		}
	}
	defer ps.stop()
	full, from, started := ps.full, ps.from, ps.started
	st.Mode = mode(full)
	cur := cursorTracker{overlap: r.e.cfg.Overlap, frozen: !r.req.DateFrom.IsZero() && !full}
	total, read, disturbed := 0, 0, false
	// apply writes consecutive pages in one call (one transaction): their rows in page order, the removed
	// ids of the first (writeBatches never puts removals after rows), and the cursor earned by the last.
	apply := func(ctx context.Context, pgs []kiotviet.Page[shapedRow]) error {
		raw, dates := joinRows(pgs)
		for _, d := range dates {
			if !d.Before(started) {
				disturbed = true // modified while this pass paged
			}
		}
		removed := pgs[0].RemovedIDs
		if len(removed) > 0 && full {
			disturbed = true // only the catch-up of a full pass reports removals
		}
		a, err := applyPage(ctx, store.Page{RunID: r.id, CredentialID: r.req.CredentialID,
			Rows: raw, RemovedIDs: removed, Cursor: cur.page(dates), Full: full})
		if err != nil {
			return err
		}
		total = pgs[len(pgs)-1].Total
		read += len(dates)
		st.Count += len(dates)
		st.Written += a.Written + a.Products + a.Inventory // every table the pages changed
		st.Deleted += a.Deleted
		st.Pages += len(pgs)
		for _, pg := range pgs {
			r.addPage(len(pg.Items), pg.Total)
		}
		return nil
	}
	batch := r.e.cfg.WriteBatchPages
	if full {
		// What changed while the pass paged, read as part of the pass (its ids count as seen). Its reading
		// starts once the pass's last page is read, while the writer may still be busy with the pass: a
		// shift while paging is made by a change before that moment, which it reads; a change after it is
		// the next run's, as it would be for a catch-up read a moment later.
		ps.catchUp = startReading(ctx, list(r.listOptions(false, started.Add(-r.e.cfg.Overlap))), batch, ps.main.read)
	}
	if err := writePages(ctx, ps.main, batch, shape, apply); err != nil {
		return err
	}
	if !full {
		if disturbed {
			// once more over the same window: what a shift made the first pass skip is read now
			if err := writeBatches(ctx, list(r.listOptions(false, from)), batch, shape, apply); err != nil {
				return err
			}
		}
	} else {
		mainTotal, mainRead := total, read
		if err := writePages(ctx, ps.catchUp, batch, shape, apply); err != nil {
			return err
		}
		swept := false
		// A pass that reported no total may have stopped early: only a shop that is really empty
		// (nothing read, total 0) is swept without one.
		if !disturbed && (mainTotal > 0 || mainRead == 0) {
			a, err := r.e.cfg.Store.Sweep(ctx, r.id, r.req.CredentialID, stream, mainTotal)
			if err != nil {
				return err
			}
			st.Deleted += a.Deleted
			swept = a.Swept
		}
		st.Swept = &swept
		if !swept {
			r.log.Info("full reconcile not swept; the next run reconciles again", "stream", stream, "changed_during_pass", disturbed)
		}
	}
	if cur.disorder {
		_, err := applyPage(ctx, store.Page{RunID: r.id, CredentialID: r.req.CredentialID, Rows: json.RawMessage(`[]`), Cursor: cur.final()})
		return err
	}
	return nil
}

// branchesSince is the lastModifiedFrom of the branch read: KiotViet reports deactivated branches
// (removedIds) only to a request with includeRemoveIds and a lastModifiedFrom, so the whole list is
// asked for as "modified since" a date before any shop existed: one request, every branch and every
// deactivation.
var branchesSince = time.Date(2000, 1, 1, 0, 0, 0, 0, kiotviet.VietnamZone())

// branches reads the branch list in full with its deactivations: a deactivated branch keeps its row
// (and name, for history) but loses its stock rows.
func (r *run) branches(ctx context.Context, st *StreamStats) error {
	st.Mode = "full"
	rows := []branchRow{}
	var removed []int64
	opts := kiotviet.ListOptions{IncludeRemoveIDs: true, LastModifiedFrom: branchesSince}
	err := pump(ctx, r.client.Branches(opts), func(_ context.Context, pg kiotviet.Page[kiotviet.Branch]) error {
		for _, b := range pg.Items {
			rows = append(rows, branchRowOf(b))
		}
		removed = append(removed, pg.RemovedIDs...)
		st.Pages++
		return nil
	})
	if err != nil {
		return err
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	a, err := r.e.cfg.Store.ApplyBranches(ctx, r.id, r.req.CredentialID, raw, removed)
	if err != nil {
		return err
	}
	st.Count, st.Written, st.Deleted = len(rows), a.Written+a.Inventory, a.Deleted
	return nil
}

// stock reads /productOnHands in full every time: stock movements do not bump a product's
// modifiedDate, and KiotViet's lastModifiedFrom on this endpoint is known to miss sales.
func (r *run) stock(ctx context.Context, st *StreamStats) error {
	st.Mode = "full"
	if r.e.cfg.StockScanEvery > 0 && !r.req.Full {
		due, err := r.e.cfg.Store.StockScanDue(ctx, r.req.CredentialID, r.e.cfg.StockScanEvery)
		if err != nil {
			return err
		}
		if !due {
			st.Mode = "skipped: stock webhooks healthy"
			return nil
		}
	}
	opts := kiotviet.ListOptions{PageSize: r.req.PageSize, OrderBy: "id", OrderDirection: "Asc"}
	err := pump(ctx, r.client.ProductOnHands(opts), func(ctx context.Context, pg kiotviet.Page[kiotviet.ProductOnHand]) error {
		rows := make([]stockRow, len(pg.Items))
		for i, p := range pg.Items {
			rows[i] = stockRowOf(p)
		}
		raw, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		a, err := r.e.cfg.Store.ApplyStock(ctx, r.id, r.req.CredentialID, raw)
		if err != nil {
			return err
		}
		st.Count += len(rows)
		st.Written += a.Written
		st.Pages++
		r.addPage(len(rows), pg.Total)
		return nil
	})
	if err != nil {
		return err
	}
	// a complete scan: relief (StockScanEvery) counts from now
	return r.e.cfg.Store.StockScanned(ctx, r.req.CredentialID)
}

func (r *run) attributes(ctx context.Context, st *StreamStats) error {
	st.Mode = "full"
	attrs, err := r.client.Attributes(ctx)
	if err != nil {
		return err
	}
	rows := make([]attributeRow, len(attrs))
	for i, a := range attrs {
		rows[i] = attributeRowOf(a)
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	a, err := r.e.cfg.Store.ApplyAttributes(ctx, r.id, r.req.CredentialID, raw)
	if err != nil {
		return err
	}
	st.Count, st.Written, st.Deleted, st.Pages = len(rows), a.Written, a.Deleted, 1
	r.addPage(len(rows), len(rows))
	return nil
}

// flatten turns a category tree (if KiotViet sent one) into the flat list the table holds.
func flatten(cs []kiotviet.Category) []kiotviet.Category {
	var out []kiotviet.Category
	var walk func([]kiotviet.Category, int64)
	walk = func(list []kiotviet.Category, parent int64) {
		for _, c := range list {
			if c.ParentID == 0 {
				c.ParentID = parent
			}
			kids := c.Children
			c.Children = nil
			out = append(out, c)
			walk(kids, c.ID)
		}
	}
	walk(cs, 0)
	return out
}

// sharedBudget is a credential's KiotViet API budget, kept in Postgres and shared by every replica
// (kiotviet_take_api_calls): KIOTVIET_RATE_LIMIT_PER_HOUR calls in any hour for all of them together.
type sharedBudget struct {
	store   *store.Store
	credID  string
	perHour int
}

func (b sharedBudget) Take(ctx context.Context, want int) (int64, int, time.Time, error) {
	g, err := b.store.TakeAPICalls(ctx, b.credID, want, b.perHour)
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	var id int64
	if g.ID != nil {
		id = *g.ID
	}
	var resumes time.Time
	if g.ResumesAt != nil {
		resumes = *g.ResumesAt
	}
	return id, g.N, resumes, nil
}

func (b sharedBudget) Return(ctx context.Context, grantID int64, unused int) error {
	return b.store.ReturnAPICalls(ctx, grantID, unused)
}
