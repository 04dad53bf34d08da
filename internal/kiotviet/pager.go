package kiotviet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// ListOptions are the query parameters of KiotViet's list endpoints. Zero
// values are left out of the request. Not every endpoint honours every
// option (KiotViet ignores unknown ones).
type ListOptions struct {
	// PageSize is items per page; 0 means MaxPageSize, larger values are
	// clamped to MaxPageSize (KiotViet's documented maximum).
	PageSize int
	// LastModifiedFrom asks for items modified at or after this time. It is
	// sent in Vietnam local time without an offset, as KiotViet writes dates.
	LastModifiedFrom time.Time
	// IncludeRemoveIDs asks for the ids deleted since LastModifiedFrom.
	IncludeRemoveIDs bool
	// IncludeInventory asks /products for per-branch stock.
	IncludeInventory bool
	// IncludePricebook asks /products for price books (priceBooks).
	IncludePricebook bool
	// IncludeSerials asks /products for serial/IMEI numbers (productSerials).
	IncludeSerials bool
	// IncludeBatchExpires asks /products for lots and expiry dates
	// (productBatchExpires).
	IncludeBatchExpires bool
	// IncludeProductShelves asks /products for shelf locations
	// (productShelves), the ERP's "Vị trí".
	IncludeProductShelves bool
	// IncludeMaterial asks /products for a combo's components
	// (productFormulas).
	IncludeMaterial bool
	// IncludeQuantity asks /products for the stock limits (minQuantity and
	// maxQuantity, per branch and per product).
	IncludeQuantity bool
	// ExcludeSoftDeletedAttributes sends includeSoftDeletedAttribute=false:
	// KiotViet's default (true) returns attribute values the shop deleted.
	ExcludeSoftDeletedAttributes bool
	// OrderBy is a field name such as "createdDate", "id" or "name";
	// OrderDirection is "Asc" or "Desc". Empty means KiotViet's default.
	OrderBy        string
	OrderDirection string
	// HierachicalData (KiotViet's spelling) asks /categories for the tree;
	// KiotViet then ignores LastModifiedFrom.
	HierachicalData bool
	// BranchIDs limits stock to these branches (/products, /productOnHands).
	BranchIDs []int64
	// Extra carries any other parameter verbatim, e.g. includeQuantity=true.
	Extra url.Values
	// MaxPages stops a runaway listing with ErrRunawayPaging; 0 means a
	// bound derived from total, or 100,000 pages when total is absent.
	MaxPages int
	// ReadAhead lets the listing request up to the client's ReadConcurrency
	// pages at once (see Pager.Next). Pages read at different moments can
	// each see a different shift of the list: a row that moves while the
	// listing pages can make another one skipped even where one page after
	// another would only have repeated it. Only a caller that detects such
	// moves (as kvsync's product and category passes do) should set it.
	ReadAhead bool
}

// query renders the options; the pager sets currentItem itself.
func (o ListOptions) query() url.Values {
	q := url.Values{}
	for k, vs := range o.Extra {
		q[k] = append([]string(nil), vs...)
	}
	q.Set("pageSize", strconv.Itoa(o.pageSize()))
	if !o.LastModifiedFrom.IsZero() {
		q.Set("lastModifiedFrom", FormatTime(o.LastModifiedFrom))
	}
	if o.IncludeRemoveIDs {
		q.Set("includeRemoveIds", "true")
	}
	if o.IncludeInventory {
		q.Set("includeInventory", "true")
	}
	if o.IncludePricebook {
		q.Set("includePricebook", "true")
	}
	// KiotViet's docs spell these with a capital I; its server (ServiceStack)
	// reads query names in any case.
	if o.IncludeSerials {
		q.Set("IncludeSerials", "true")
	}
	if o.IncludeBatchExpires {
		q.Set("IncludeBatchExpires", "true")
	}
	if o.IncludeProductShelves {
		q.Set("IncludeProductShelves", "true")
	}
	if o.IncludeMaterial {
		q.Set("includeMaterial", "true")
	}
	if o.IncludeQuantity {
		q.Set("includeQuantity", "true")
	}
	if o.ExcludeSoftDeletedAttributes {
		q.Set("includeSoftDeletedAttribute", "false")
	}
	if o.OrderBy != "" {
		q.Set("orderBy", o.OrderBy)
	}
	if o.OrderDirection != "" {
		q.Set("orderDirection", o.OrderDirection)
	}
	if o.HierachicalData {
		q.Set("hierachicalData", "true")
	}
	for _, id := range o.BranchIDs {
		q.Add("branchIds", strconv.FormatInt(id, 10))
	}
	return q
}

func (o ListOptions) pageSize() int {
	if o.PageSize <= 0 || o.PageSize > MaxPageSize {
		return MaxPageSize
	}
	return o.PageSize
}

// Page is one page of a list endpoint.
type Page[T any] struct {
	Items []T
	// RemovedIDs are ids deleted since LastModifiedFrom, read from
	// removedIds, removeIds or removeId; ids already reported on an earlier
	// page of the same listing are left out.
	RemovedIDs []int64
	// Total is the envelope's total (0 when KiotViet left it out).
	Total int
	// Offset is the currentItem this page was requested at.
	Offset int
	// Timestamp is the envelope's server time (zero when absent); the one
	// of the first page is a good watermark for the next incremental run.
	Timestamp time.Time
}

// envelope is a list reply; the three removed-id spellings all occur.
type envelope[T any] struct {
	Total      flexInt  `json:"total"`
	PageSize   flexInt  `json:"pageSize"`
	Data       []T      `json:"data"`
	Timestamp  flexTime `json:"timestamp"`
	RemovedIDs flexIDs  `json:"removedIds"`
	RemoveIDs  flexIDs  `json:"removeIds"`
	RemoveID   flexIDs  `json:"removeId"`
}

// decodePage decodes a list reply. It also returns whether total was
// present and the server's page size (0 if absent).
func decodePage[T any](body []byte) (pg Page[T], hasTotal bool, serverPageSize int, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return pg, false, 0, fmt.Errorf("list reply is not a JSON object")
	}
	if _, ok := any(pg).(Page[Product]); ok {
		// products in their wire form, converted after: the page is scanned once (productWire says why)
		var env envelope[productWire]
		if err := json.Unmarshal(body, &env); err != nil {
			return pg, false, 0, err
		}
		pp := pageOf(&env, each(env.Data, (*productWire).product))
		return any(pp).(Page[T]), env.Total.Set, int(env.PageSize.V), nil
	}
	var env envelope[T]
	if err := json.Unmarshal(body, &env); err != nil {
		return pg, false, 0, err
	}
	return pageOf(&env, env.Data), env.Total.Set, int(env.PageSize.V), nil
}

// pageOf is the reply as a Page of items (its data, decoded).
func pageOf[W, T any](env *envelope[W], items []T) Page[T] {
	pg := Page[T]{Items: items, Total: int(max(env.Total.V, 0)), Timestamp: env.Timestamp.V}
	for _, ids := range []flexIDs{env.RemovedIDs, env.RemoveIDs, env.RemoveID} {
		pg.RemovedIDs = append(pg.RemovedIDs, ids...)
	}
	return pg
}

// Pager walks a list endpoint page by page with offset paging:
//
//	for p.Next(ctx) { pg := p.Page(); ... }
//	if err := p.Err(); err != nil { ... }
//
// It stops when the offset reaches total, on an empty page, on a short page
// (fewer items than the page size), and with ErrRunawayPaging when a server
// keeps sending pages (a repeated page, or more pages than total allows).
// A first page without items but with removed ids is still returned. Next
// blocks until the next page is there (pages after the first may have been
// requested ahead, see Next); run the pager in its own goroutine to overlap
// reading with writing. A Pager is not safe for concurrent use.
type Pager[T any] struct {
	c      *Client
	path   string
	query  url.Values
	size   int
	limit  int
	idOf   func(T) int64
	offset int
	pages  int

	firstTotal  int
	page        Page[T]
	prevIDs     []int64
	seenRemoved map[int64]struct{}
	done        bool
	err         error

	// read-ahead: the pages requested before they are asked for, in offset order
	concurrency int
	step        int // the offset between two full pages, known after the first one
	maxTotal    int // the largest total seen; nothing is read ahead beyond it
	ahead       []*fetch[T]
}

// fetch is one page request in flight.
type fetch[T any] struct {
	offset int
	cancel context.CancelFunc
	done   chan struct{}
	res    fetched[T]
}

type fetched[T any] struct {
	pg       Page[T]
	hasTotal bool
	srvSize  int
	err      error
}

func newPager[T any](c *Client, path string, o ListOptions, idOf func(T) int64) *Pager[T] {
	n := 1
	if o.ReadAhead {
		n = c.cfg.ReadConcurrency
	}
	return &Pager[T]{c: c, path: path, query: o.query(), size: o.pageSize(), limit: o.MaxPages, idOf: idOf, concurrency: n}
}

// Next fetches the next page and reports whether there is one to read.
//
// With a concurrency above 1, once the first page has told the total and the page step, Next keeps up to
// that many of the following pages requested at once (never beyond the largest total seen, so a listing
// costs the same calls as reading one page after another) and hands them out in offset order, each
// through the same checks and stop rules as a page read alone. A page read ahead at an offset the
// listing did not reach (a short page before it) is discarded and read again at the right offset.
func (p *Pager[T]) Next(ctx context.Context) bool {
	if p.done || p.err != nil {
		p.dropAhead()
		return false
	}
	if p.runaway() {
		p.err = fmt.Errorf("%w: GET %s after %d pages (offset %d, first total %d)", ErrRunawayPaging, p.path, p.pages, p.offset, p.firstTotal)
		p.dropAhead()
		return false
	}
	p.readAhead(ctx)
	var r fetched[T]
	if len(p.ahead) > 0 && p.ahead[0].offset == p.offset {
		f := p.ahead[0]
		p.ahead = p.ahead[1:]
		select {
		case <-f.done:
		case <-ctx.Done():
			f.cancel()
			<-f.done
		}
		f.cancel()
		r = f.res
		if r.err == nil && ctx.Err() != nil {
			r.err = ctx.Err()
		}
	} else {
		p.dropAhead() // read ahead at offsets this listing did not reach
		r = p.fetchAt(ctx, p.offset)
	}
	if r.err != nil {
		p.err = r.err
		p.dropAhead()
		return false
	}
	ok := p.accept(r)
	if !ok || p.done || p.err != nil {
		p.dropAhead()
	}
	return ok
}

// fetchAt requests the page at offset.
func (p *Pager[T]) fetchAt(ctx context.Context, offset int) (r fetched[T]) {
	q := cloneValues(p.query)
	q.Set("currentItem", strconv.Itoa(offset))
	r.err = p.c.get(ctx, p.path, q, func(b []byte) error {
		var err error
		r.pg, r.hasTotal, r.srvSize, err = decodePage[T](b)
		return err
	})
	return r
}

// readAhead tops the read-ahead up to concurrency requests (the one Next is about to use included).
func (p *Pager[T]) readAhead(ctx context.Context) {
	if p.concurrency <= 1 || p.step == 0 {
		return
	}
	next := p.offset
	if n := len(p.ahead); n > 0 {
		next = p.ahead[n-1].offset + p.step
	}
	limit := min(p.concurrency, p.c.ReadConcurrency())
	for len(p.ahead) < limit && next < p.maxTotal {
		fctx, cancel := context.WithCancel(ctx)
		f := &fetch[T]{offset: next, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(f.done)
			f.res = p.fetchAt(fctx, f.offset)
		}()
		p.ahead = append(p.ahead, f)
		next += p.step
	}
}

// dropAhead cancels the requests read ahead and waits for them to end.
func (p *Pager[T]) dropAhead() {
	for _, f := range p.ahead {
		f.cancel()
	}
	for _, f := range p.ahead {
		<-f.done
	}
	p.ahead = nil
}

// Close cancels any page still read ahead; a listing read to its end needs no Close.
func (p *Pager[T]) Close() { p.dropAhead() }

// accept runs a fetched page through the checks and stop rules.
func (p *Pager[T]) accept(r fetched[T]) bool {
	pg, hasTotal, srvSize := r.pg, r.hasTotal, r.srvSize
	p.pages++
	pg.Offset = p.offset
	pg.RemovedIDs = p.newRemoved(pg.RemovedIDs)
	n := len(pg.Items)
	if p.pages == 1 {
		p.firstTotal = pg.Total
	}
	if hasTotal {
		p.maxTotal = max(p.maxTotal, pg.Total)
	}

	if n > 0 && p.repeats(pg.Items) {
		p.err = fmt.Errorf("%w: GET %s returned the same page again at offset %d", ErrRunawayPaging, p.path, p.offset)
		return false
	}
	p.offset += n
	// Stop rules: empty page; short page; offset reached total.
	effSize := p.size
	if srvSize > 0 && srvSize < effSize {
		effSize = srvSize
	}
	switch {
	case n == 0:
		p.done = true
		if p.pages > 1 || len(pg.RemovedIDs) == 0 {
			return false
		}
	case n < effSize:
		p.done = true
	case hasTotal && pg.Total > 0 && p.offset >= pg.Total:
		p.done = true
	}
	if p.step == 0 && !p.done {
		p.step = n // a full page: the following ones start n apart
	}
	p.page = pg
	return true
}

// runaway reports whether the pager has fetched more pages than any sane
// listing needs.
func (p *Pager[T]) runaway() bool {
	limit := p.limit
	if limit <= 0 {
		limit = 100_000
		if p.firstTotal > 0 {
			// Twice the pages the first total asked for: room for items
			// inserted while paging, but a total that keeps growing with
			// the offset cannot keep the pager going.
			limit = 2*((p.firstTotal+p.size-1)/p.size) + 10
		}
	}
	return p.pages >= limit
}

// repeats reports whether this page has exactly the ids of the previous
// one, the sign of a server that ignores currentItem.
func (p *Pager[T]) repeats(items []T) bool {
	if p.idOf == nil {
		return false
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = p.idOf(it)
	}
	same := len(ids) == len(p.prevIDs)
	for i := 0; same && i < len(ids); i++ {
		same = ids[i] == p.prevIDs[i]
	}
	p.prevIDs = ids
	return same
}

// newRemoved drops removed ids already reported by an earlier page (a
// server may repeat the whole list on every page).
func (p *Pager[T]) newRemoved(ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	if p.seenRemoved == nil {
		p.seenRemoved = make(map[int64]struct{}, len(ids))
	}
	out := ids[:0]
	for _, id := range ids {
		if _, ok := p.seenRemoved[id]; ok {
			continue
		}
		p.seenRemoved[id] = struct{}{}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Done reports whether the page the last Next returned is the listing's last: the next Next returns
// false without a request, and no request of the listing is in flight any more.
func (p *Pager[T]) Done() bool { return p.done }

// Page returns the page fetched by the last successful Next.
func (p *Pager[T]) Page() Page[T] { return p.page }

// Err returns the error that stopped the pager, or nil after a clean end.
func (p *Pager[T]) Err() error { return p.err }

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

// Categories lists /categories (flat, or the tree with HierachicalData).
func (c *Client) Categories(o ListOptions) *Pager[Category] {
	return newPager(c, "/categories", o, func(x Category) int64 { return x.ID })
}

// Products lists /products; set IncludeInventory for per-branch stock.
func (c *Client) Products(o ListOptions) *Pager[Product] {
	return newPager(c, "/products", o, func(x Product) int64 { return x.ID })
}

// ProductOnHands lists /productOnHands, the light stock-only endpoint.
func (c *Client) ProductOnHands(o ListOptions) *Pager[ProductOnHand] {
	return newPager(c, "/productOnHands", o, func(x ProductOnHand) int64 { return x.ID })
}

// Branches lists /branches; removed ids are deactivated branches.
func (c *Client) Branches(o ListOptions) *Pager[Branch] {
	return newPager(c, "/branches", o, func(x Branch) int64 { return x.ID })
}

// Attributes reads /attributes/allwithdistinctvalue: every variant
// attribute with its distinct values. KiotViet returns a bare array; an
// object with a data array is accepted too.
func (c *Client) Attributes(ctx context.Context) ([]Attribute, error) {
	var out []Attribute
	err := c.get(ctx, "/attributes/allwithdistinctvalue", nil, func(b []byte) error {
		var err error
		out, err = decodeAttributes(b)
		return err
	})
	return out, err
}

func decodeAttributes(b []byte) ([]Attribute, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var env struct {
			Data []Attribute `json:"data"`
		}
		err := json.Unmarshal(b, &env)
		return env.Data, err
	}
	var out []Attribute
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
