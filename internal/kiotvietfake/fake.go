// Package kiotvietfake is a realistic fake of the KiotViet Retail Public API:
// the token endpoint, the list endpoints kvsync reads with KiotViet's JSON
// shapes, paging and filters, a seeded Vietnamese catalogue, a mutation API
// to create change, and faults on demand (rate limit, latency, 5xx,
// timeouts, malformed JSON, token revocation, page drift). Tests host it
// with httptest; cmd/kiotviet-fake serves it for local development.
package kiotvietfake

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// Options configure a fake shop. Zero values take the documented defaults.
type Options struct {
	Products   int   // product rows (variants and units count); default 200
	Branches   int   // default 2
	Categories int   // default 20, tree depth ≤ 3
	Seed       int64 // same seed, same catalogue; default 1

	// Now is the fake's clock (token expiry, modified dates, the hourly
	// limit); default time.Now.
	Now func() time.Time

	PageDefault      int // pageSize when absent; default 20 (KiotViet's)
	PageMax          int // larger pageSize values are clamped; default 100
	RateLimitPerHour int // GETs per sliding hour; default 5000, negative disables
	// MaxConcurrentPerClient, when above 0, caps the API requests one client (Retailer header) may
	// have in flight: one more is answered 429 with Retry-After: 1 at once, as a busy KiotViet does.
	MaxConcurrentPerClient int
	TokenTTL               time.Duration // expires_in of issued tokens; default 24h (KiotViet's documented value)
	// HangLimit bounds how long a simulated timeout holds a request when the
	// client never gives up; default 2 minutes.
	HangLimit time.Duration

	Retailer, ClientID, ClientSecret string // defaults derived from Seed

	// OtherRetailers are more shop names this server answers for, with the same catalogue and client:
	// tests that need several shops' credentials against one server (kvsync keeps one schedule of a
	// type per shop).
	OtherRetailers []string

	// ImagesAsObjects sends images as [{"Image": url}] (the documented list
	// shape) instead of the plain URL strings real shops return.
	ImagesAsObjects bool

	// ListDeleted keeps deleted products in /products lists, with their code
	// renamed "…{DEL}", not active, modified when deleted (as other KiotViet
	// replies show them), besides reporting their ids in removeId.
	ListDeleted bool

	// Faults active from the start (the binary's rates); see SetFaults.
	Faults Faults

	Logger *slog.Logger // default discards
}

func (o Options) withDefaults() Options {
	o.Products = cmp.Or(o.Products, 200)
	o.Branches = max(cmp.Or(o.Branches, 2), 1)
	o.Categories = max(cmp.Or(o.Categories, 20), 1)
	o.Seed = cmp.Or(o.Seed, 1)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PageDefault = cmp.Or(o.PageDefault, 20)
	o.PageMax = cmp.Or(o.PageMax, 100)
	o.RateLimitPerHour = cmp.Or(o.RateLimitPerHour, kiotviet.DefaultRateLimitPerHour)
	o.TokenTTL = cmp.Or(o.TokenTTL, 24*time.Hour)
	o.HangLimit = cmp.Or(o.HangLimit, 2*time.Minute)
	seed := uint64(o.Seed)
	o.Retailer = cmp.Or(o.Retailer, fmt.Sprintf("shopdemo%d", seed%1000))
	r := rand.New(rand.NewPCG(seed, 0xc1e47))
	o.ClientID = cmp.Or(o.ClientID, fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x",
		r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff))
	o.ClientSecret = cmp.Or(o.ClientSecret, fmt.Sprintf("%016x%016x%08x", r.Uint64(), r.Uint64(), r.Uint32()))
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Server is one fake KiotViet shop. All methods are safe for concurrent use.
type Server struct {
	opts Options

	mu             sync.RWMutex // guards the catalogue below
	retailerID     int64
	products       map[int64]*Product
	byMod          []*Product // sorted by (ModifiedDate, order of change)
	deleted        []Deleted  // sorted by DeletedAt
	catList        []*Category
	categories     map[int64]*Category
	branches       []*Branch
	inactive       []inactiveBranch // deactivated branches, by time
	catDeleted     []deletedCategory
	priceBooks     []PriceBookPrice
	nextProductID  int64
	nextCategoryID int64
	codeSeq        int
	version        uint64
	rng            *rand.Rand // mutation choices; guarded by mu (write)
	xrng           *rand.Rand // choices of the include-only arrays' changes; guarded by mu (write)
	gen            *generator

	viewMu sync.Mutex
	views  map[viewKey][]*Product

	ctl     sync.Mutex // guards tokens, faults, counts, limiter, faultRng
	tokens  map[string]time.Time
	faults  Faults
	counts  map[string]int64
	tooMany int64          // 429s answered, for any reason
	flight  map[string]int // API requests in flight per Retailer header
	window  []time.Time    // start times of GETs in the last hour (ring)
	wnext   int
	wfull   bool
	faultRn *rand.Rand

	hooks webhookHub // registrations and deliveries (webhooks.go)
}

// New builds a fake shop with a deterministic catalogue from opts.Seed.
func New(opts Options) *Server {
	o := opts.withDefaults()
	seed := uint64(o.Seed)
	s := &Server{
		opts:           o,
		products:       make(map[int64]*Product, o.Products),
		categories:     make(map[int64]*Category, o.Categories),
		nextProductID:  17_000_000 + int64(seed%1000)*1000,
		nextCategoryID: 553_000,
		rng:            rand.New(rand.NewPCG(seed, 0x6d7574)),
		xrng:           rand.New(rand.NewPCG(seed, 0xa55a7)),
		views:          map[viewKey][]*Product{},
		tokens:         map[string]time.Time{},
		faults:         o.Faults,
		counts:         map[string]int64{},
		flight:         map[string]int{},
		faultRn:        rand.New(rand.NewPCG(seed, 0xfa017)),
	}
	if o.RateLimitPerHour > 0 {
		s.window = make([]time.Time, o.RateLimitPerHour)
	}
	s.gen = &generator{rng: rand.New(rand.NewPCG(seed, 0x6b76)), x: rand.New(rand.NewPCG(seed, 0xde7a115)),
		now: rowTime(o.Now()), s: s}
	s.gen.generate(o)
	s.reindexLocked()
	return s
}

// Retailer is the shop name clients must send in the Retailer header.
func (s *Server) Retailer() string { return s.opts.Retailer }

// ClientID is the client id the token endpoint accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret is the client secret the token endpoint accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Credentials returns the retailer, client id and secret for a kiotviet client.
func (s *Server) Credentials() kiotviet.Credentials {
	return kiotviet.Credentials{Retailer: s.opts.Retailer, ClientID: s.opts.ClientID, ClientSecret: s.opts.ClientSecret}
}

// now is the fake's clock at the wire's millisecond precision.
func (s *Server) now() time.Time { return rowTime(s.opts.Now()) }

// putProductLocked stores p; the caller holds mu or owns s exclusively.
func (s *Server) putProductLocked(p *Product) {
	s.products[p.ID] = p
}

// addCategoryLocked stores c and marks its parent; caller holds mu.
func (s *Server) addCategoryLocked(c *Category) {
	s.categories[c.ID] = c
	s.catList = append(s.catList, c)
	if p := s.categories[c.ParentID]; p != nil {
		p.HasChild = true
	}
}

// depth is 1 for a root.
func (s *Server) depth(c *Category) int {
	d := 1
	for c.ParentID != 0 && d < 10 {
		c = s.categories[c.ParentID]
		if c == nil {
			break
		}
		d++
	}
	return d
}

// categoryPath is the names from root to c joined with " > ".
func (s *Server) categoryPath(id int64) string {
	var names []string
	for c := s.categories[id]; c != nil && len(names) < 10; c = s.categories[c.ParentID] {
		names = append(names, c.Name)
	}
	slices.Reverse(names)
	return strings.Join(names, " > ")
}

// inactiveBranch is a deactivated branch and when it was deactivated.
type inactiveBranch struct {
	Branch
	At time.Time
}

// deletedCategory is a deleted category and when it was deleted.
type deletedCategory struct {
	Category
	At time.Time
}

// reindexLocked rebuilds the modified-date order and drops cached views
// after a change; the caller holds mu for writing.
func (s *Server) reindexLocked() {
	s.byMod = s.byMod[:0]
	for _, p := range s.products {
		s.byMod = append(s.byMod, p)
	}
	if s.opts.ListDeleted {
		for _, d := range s.deleted {
			if d.product == nil {
				continue
			}
			q := *d.product
			q.Code, q.IsActive, q.ModifiedDate = d.RenamedCode(), false, d.DeletedAt
			s.byMod = append(s.byMod, &q)
		}
	}
	sort.Slice(s.byMod, func(i, j int) bool {
		a, b := s.byMod[i], s.byMod[j]
		if !a.ModifiedDate.Equal(b.ModifiedDate) {
			return a.ModifiedDate.Before(b.ModifiedDate)
		}
		return a.ID < b.ID
	})
	s.version++
	s.viewMu.Lock()
	clear(s.views)
	s.viewMu.Unlock()
}

// changeTime is the modified date for a change made now: never earlier
// than the newest existing one, so the modified order stays append-only
// even under a frozen test clock.
func (s *Server) changeTime() time.Time {
	t := s.now()
	if n := len(s.byMod); n > 0 && s.byMod[n-1].ModifiedDate.After(t) {
		t = s.byMod[n-1].ModifiedDate
	}
	return t
}

// Counts returns the requests received per endpoint path (for example
// "/products", "/connect/token"), faulted ones included.
func (s *Server) Counts() map[string]int64 {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return maps.Clone(s.counts)
}

// ResetCounts zeroes the per-endpoint counters and TooManyRequests.
func (s *Server) ResetCounts() {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	clear(s.counts)
	s.tooMany = 0
}

// TooManyRequests returns the 429s answered since the last ResetCounts: the hourly limit, the
// per-client concurrency cap and injected ones.
func (s *Server) TooManyRequests() int64 {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return s.tooMany
}

// Snapshot returns a deep copy of the current catalogue with category
// names and paths and branch names filled in.
func (s *Server) Snapshot() Catalogue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := Catalogue{Retailer: s.opts.Retailer, RetailerID: s.retailerID}
	for _, p := range s.products {
		c.Products = append(c.Products, s.expandLocked(p))
	}
	slices.SortFunc(c.Products, func(a, b Product) int { return cmp.Compare(a.ID, b.ID) })
	for _, cat := range s.catList {
		cc := *cat
		cc.Path = s.categoryPath(cat.ID)
		c.Categories = append(c.Categories, cc)
	}
	slices.SortFunc(c.Categories, func(a, b Category) int { return cmp.Compare(a.ID, b.ID) })
	for _, b := range s.branches {
		c.Branches = append(c.Branches, *b)
	}
	for _, b := range s.inactive {
		c.InactiveBranches = append(c.InactiveBranches, b.Branch)
	}
	c.Attributes = s.attributesLocked()
	c.DeletedProducts = slices.Clone(s.deleted)
	return c
}

// expandLocked deep-copies p and fills the denormalised names.
func (s *Server) expandLocked(p *Product) Product {
	q := *p
	q.Images = slices.Clone(p.Images)
	q.Attributes = slices.Clone(p.Attributes)
	q.Units = slices.Clone(p.Units)
	q.Inventories = slices.Clone(p.Inventories)
	q.PriceBooks = slices.Clone(p.PriceBooks)
	q.Components = slices.Clone(p.Components)
	q.Serials = slices.Clone(p.Serials)
	q.Batches = slices.Clone(p.Batches)
	q.Shelves = slices.Clone(p.Shelves)
	for i := range q.Shelves {
		q.Shelves[i].BranchName = s.branchName(q.Shelves[i].BranchID)
	}
	if cat := s.categories[p.CategoryID]; cat != nil {
		q.CategoryName = cat.Name
		q.CategoryPath = s.categoryPath(cat.ID)
	}
	for i := range q.Inventories {
		q.Inventories[i].BranchName = s.branchName(q.Inventories[i].BranchID)
	}
	return q
}

func (s *Server) branchName(id int64) string {
	for _, b := range s.branches {
		if b.ID == id {
			return b.Name
		}
	}
	return ""
}

// attributesLocked lists the attributes with the distinct values products use.
func (s *Server) attributesLocked() []Attribute {
	seen := map[string]map[string]bool{}
	for _, p := range s.products {
		for _, a := range p.Attributes {
			if seen[a.AttributeName] == nil {
				seen[a.AttributeName] = map[string]bool{}
			}
			seen[a.AttributeName][a.AttributeValue] = true
		}
	}
	var out []Attribute
	for _, a := range attributes {
		if vals := seen[a.name]; len(vals) > 0 {
			out = append(out, Attribute{ID: a.id, Name: a.name, Values: slices.Sorted(maps.Keys(vals))})
		}
	}
	return out
}

// ChangeProductsOver changes k products as ChangeProducts does, with their modified dates spread evenly
// over the span before now (never before the newest date already given): the changes of an hour between
// two scheduled runs, instead of all at one instant. Only the changes of the last few minutes before a
// run's cursor are then in its next run's overlap window, as in a shop whose staff edit all day.
func (s *Server) ChangeProductsOver(k int, span time.Duration) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.pickProductsLocked(k)
	end := s.changeTime()
	start := end.Add(-span)
	if n := len(s.byMod); n > 0 && s.byMod[n-1].ModifiedDate.After(start) {
		start = s.byMod[n-1].ModifiedDate
	}
	for i, id := range ids {
		s.changeLocked(s.products[id], rowTime(start.Add(end.Sub(start)*time.Duration(i+1)/time.Duration(len(ids)))))
	}
	s.reindexLocked()
	s.webhookProductsLocked(ids)
	return ids
}

// ChangeProducts edits k random products (price, name or description) and
// moves their modified date to now. It returns the changed ids.
func (s *Server) ChangeProducts(k int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.pickProductsLocked(k)
	at := s.changeTime()
	for _, id := range ids {
		s.changeLocked(s.products[id], at)
	}
	s.reindexLocked()
	s.webhookProductsLocked(ids)
	return ids
}

func (s *Server) changeLocked(p *Product, at time.Time) {
	// now and then one of the include-only arrays changes too (drawn apart, so the choices of rng,
	// and with them the shop a seed gives after changes, stay what they were)
	if s.xrng.IntN(4) == 0 {
		s.changeArrayLocked(p, s.xrng.IntN(arrayKinds))
	}
	switch s.rng.IntN(3) {
	case 0:
		p.BasePrice = max(1000, p.BasePrice+float64(s.rng.IntN(21)-10)*1000)
	case 1:
		p.Description = fmt.Sprintf("%s Cập nhật %d.", strings.SplitN(p.Description, " Cập nhật", 2)[0], s.rng.IntN(1000))
	default:
		p.Weight = float64(50+s.rng.IntN(2000)) / 1000
	}
	p.ModifiedDate = at
	if p.StockModifiedDate.Before(at) {
		p.StockModifiedDate = at
	}
}

// Arrays a change can touch, in changeArrayLocked's order.
const (
	ArrayPriceBooks = iota
	ArrayShelves
	ArraySerials
	ArrayBatches
	ArrayComponents
	arrayKinds
)

// changeArrayLocked edits one of p's include-only arrays (kind is one of
// the Array* constants) and reports whether p had such an array to edit.
// Slices are replaced, never edited in place: a Snapshot may share them.
func (s *Server) changeArrayLocked(p *Product, kind int) bool {
	switch kind {
	case ArrayPriceBooks:
		if len(p.PriceBooks) == 0 {
			return false
		}
		pb := slices.Clone(p.PriceBooks)
		i := s.xrng.IntN(len(pb))
		pb[i].Price = max(1000, pb[i].Price+float64(s.xrng.IntN(11)-5)*1000)
		p.PriceBooks = pb
	case ArrayShelves:
		if len(p.Inventories) == 0 {
			return false
		}
		sh := slices.DeleteFunc(slices.Clone(p.Shelves), func(x Shelf) bool { return x.BranchID == p.Inventories[0].BranchID })
		sh = append(sh, Shelf{BranchID: p.Inventories[0].BranchID, Shelves: fmt.Sprintf("Kệ %c%d", 'A'+rune(s.xrng.IntN(6)), 10+s.xrng.IntN(90))})
		p.Shelves = sh
	case ArraySerials:
		if !p.IsLotSerialControl || len(p.Inventories) == 0 {
			return false
		}
		inv := slices.Clone(p.Inventories)
		p.Serials = append(slices.Clone(p.Serials), Serial{SerialNumber: fmt.Sprintf("IMEI%012d", s.xrng.Int64N(1_000_000_000_000)),
			BranchID: inv[0].BranchID, Status: 1, CreatedDate: s.now()})
		inv[0].OnHand++
		p.Inventories = inv
	case ArrayBatches:
		if len(p.Batches) == 0 {
			return false
		}
		b := slices.Clone(p.Batches)
		b[0].ExpireDate = b[0].ExpireDate.AddDate(0, 1+s.xrng.IntN(6), 0)
		p.Batches = b
	case ArrayComponents:
		if len(p.Components) == 0 {
			return false
		}
		c := slices.Clone(p.Components)
		c[0].Quantity++
		p.Components = c
	default:
		return false
	}
	return true
}

// ChangeEveryArray edits, for each include-only array (price books,
// shelves, serials, lots, combo parts), one product that has it, and moves
// those products' modified date to now. It returns the changed ids.
func (s *Server) ChangeEveryArray() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.changeTime()
	var ids []int64
	for kind := 0; kind < arrayKinds; kind++ {
		for _, id := range slices.Sorted(maps.Keys(s.products)) {
			p := s.products[id]
			if slices.Contains(ids, id) || !s.changeArrayLocked(p, kind) {
				continue
			}
			p.ModifiedDate = at
			ids = append(ids, id)
			break
		}
	}
	s.reindexLocked()
	return ids
}

// DeactivateBranch deactivates a branch, as a shop closing it does: KiotViet
// then lists it in the branch list's removedIds, and its stock leaves every
// product (without moving their modified dates). The last branch cannot go.
func (s *Server) DeactivateBranch(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.branches, func(b *Branch) bool { return b.ID == id })
	if i < 0 {
		return fmt.Errorf("kiotvietfake: no active branch %d", id)
	}
	if len(s.branches) == 1 {
		return fmt.Errorf("kiotvietfake: branch %d is the shop's last", id)
	}
	s.inactive = append(s.inactive, inactiveBranch{Branch: *s.branches[i], At: s.changeTime()})
	s.branches = slices.Delete(s.branches, i, i+1)
	other := func(bid int64) bool { return bid == id }
	for _, p := range s.products {
		p.Inventories = slices.DeleteFunc(slices.Clone(p.Inventories), func(v Inventory) bool { return other(v.BranchID) })
		p.Shelves = slices.DeleteFunc(slices.Clone(p.Shelves), func(v Shelf) bool { return other(v.BranchID) })
		p.Serials = slices.DeleteFunc(slices.Clone(p.Serials), func(v Serial) bool { return other(v.BranchID) })
		p.Batches = slices.DeleteFunc(slices.Clone(p.Batches), func(v Batch) bool { return other(v.BranchID) })
	}
	s.reindexLocked()
	return nil
}

// DeleteCategory deletes a category no product and no child uses (KiotViet
// refuses the others). Lists asked with lastModifiedFrom then carry it
// marked isDeleted, and includeRemoveIds lists its id in removedIds.
func (s *Server) DeleteCategory(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.categories[id]
	if c == nil {
		return fmt.Errorf("kiotvietfake: no category %d", id)
	}
	for _, x := range s.catList {
		if x.ParentID == id {
			return fmt.Errorf("kiotvietfake: category %d has children", id)
		}
	}
	for _, p := range s.products {
		if p.CategoryID == id {
			return fmt.Errorf("kiotvietfake: category %d is in use", id)
		}
	}
	s.catDeleted = append(s.catDeleted, deletedCategory{Category: *c, At: s.changeTime()})
	delete(s.categories, id)
	s.catList = slices.DeleteFunc(s.catList, func(x *Category) bool { return x.ID == id })
	if p := s.categories[c.ParentID]; p != nil {
		p.HasChild = slices.ContainsFunc(s.catList, func(x *Category) bool { return x.ParentID == p.ID })
	}
	s.reindexLocked()
	return nil
}

// UnusedCategory returns a category that DeleteCategory accepts, if any.
func (s *Server) UnusedCategory() (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	used := map[int64]bool{}
	for _, p := range s.products {
		used[p.CategoryID] = true
	}
	for _, c := range s.catList {
		used[c.ParentID] = true
	}
	for _, c := range s.catList {
		if !used[c.ID] {
			return c.ID, true
		}
	}
	return 0, false
}

// pickProductsLocked returns k distinct random product ids (all if k ≥ N),
// sorted.
func (s *Server) pickProductsLocked(k int) []int64 {
	ids := slices.Sorted(maps.Keys(s.products))
	k = min(max(k, 0), len(ids))
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:k]
	slices.Sort(ids)
	return ids
}

// DeleteProducts deletes d random products and remembers them (with the
// deletion time) for includeRemoveIds. It returns the deleted ids.
func (s *Server) DeleteProducts(d int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.pickProductsLocked(d)
	at := s.changeTime()
	for _, id := range ids {
		s.deleted = append(s.deleted, Deleted{ID: id, Code: s.products[id].Code, DeletedAt: at, product: s.products[id]})
		delete(s.products, id)
	}
	s.reindexLocked()
	s.webhookDeletedLocked(ids)
	return ids
}

// DeleteProductIDs deletes the given products, as DeleteProducts does.
func (s *Server) DeleteProductIDs(ids ...int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.products[id] == nil {
			return fmt.Errorf("kiotvietfake: no product %d", id)
		}
	}
	at := s.changeTime()
	for _, id := range ids {
		s.deleted = append(s.deleted, Deleted{ID: id, Code: s.products[id].Code, DeletedAt: at, product: s.products[id]})
		delete(s.products, id)
	}
	s.reindexLocked()
	return nil
}

// MoveStock changes the on-hand quantity of n random products at a random
// branch. Like KiotViet it moves the stock's modified date
// (/productOnHands) but not the product's. It returns the product ids.
func (s *Server) MoveStock(n int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.pickProductsLocked(n)
	at := s.now()
	for _, id := range ids {
		p := s.products[id]
		inv := slices.Clone(p.Inventories)
		if len(inv) == 0 {
			continue
		}
		i := s.rng.IntN(len(inv))
		inv[i].OnHand = max(0, inv[i].OnHand+float64(s.rng.IntN(41)-20))
		p.Inventories = inv
		p.StockModifiedDate = at
		s.webhookStockLocked(p, inv[i].BranchID)
	}
	s.reindexLocked()
	return ids
}

// AddProducts inserts about n new product rows (whole groups) created now.
func (s *Server) AddProducts(n int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.addProductsLocked(n)
	s.reindexLocked()
	s.webhookProductsLocked(ids)
	return ids
}

func (s *Server) addProductsLocked(n int) []int64 {
	at := s.changeTime()
	var ids []int64
	for len(ids) < n {
		for _, p := range s.gen.addGroup(n-len(ids), at) {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// AddCategory adds a category under parentID (0 for a root). KiotViet
// limits the tree to 3 levels and names to 125 characters.
func (s *Server) AddCategory(name string, parentID int64) (int64, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 125 {
		return 0, fmt.Errorf("kiotvietfake: category name must be 1 to 125 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if parentID != 0 {
		p := s.categories[parentID]
		if p == nil {
			return 0, fmt.Errorf("kiotvietfake: no category %d", parentID)
		}
		if s.depth(p) >= 3 {
			return 0, fmt.Errorf("kiotvietfake: category %d is already at depth 3", parentID)
		}
	}
	at := s.now()
	c := &Category{ID: s.nextCategoryID, ParentID: parentID, Name: name, Rank: int64(len(s.catList)), CreatedDate: at, ModifiedDate: at}
	s.nextCategoryID += 7
	s.addCategoryLocked(c)
	s.reindexLocked()
	s.webhookCategoryLocked(c)
	return c.ID, nil
}

// ReuseDeletedCode creates a new product (new id) carrying the code of the
// earliest deleted product whose code is free, as a shop does when it
// re-creates an item. ok is false when no deleted code is free.
func (s *Server) ReuseDeletedCode() (id int64, code string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inUse := make(map[string]bool, len(s.products))
	for _, p := range s.products {
		inUse[p.Code] = true
	}
	for _, d := range s.deleted {
		if inUse[d.Code] {
			continue
		}
		at := s.changeTime()
		p := s.gen.baseProduct(at)
		p.ID, p.Code = s.gen.nextID(), d.Code
		s.gen.mseq++
		p.MasterCode = fmt.Sprintf("SPC%06d", s.gen.mseq)
		s.gen.decorate(p)
		s.putProductLocked(p)
		s.reindexLocked()
		s.webhookProductsLocked([]int64{p.ID})
		return p.ID, p.Code, true
	}
	return 0, "", false
}

// RevokeTokens invalidates every issued token, as a credential reset in
// KiotViet does; the next API call gets 401 TokenException.
func (s *Server) RevokeTokens() {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	clear(s.tokens)
}

// sleepCtx waits d of real time or until ctx ends (latency simulation).
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
