package kiotvietfake

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// Faults are failures the fake injects. The *Next counters hit the next N
// API requests (deterministic, for tests); the rates hit requests at random
// from a seeded source (for the binary and soak runs). Token-endpoint
// faults are separate from API ones.
type Faults struct {
	Latency time.Duration // added to every request, token endpoint included

	ErrorRate     float64 // share of API requests answered 503
	TimeoutRate   float64 // share of API requests that hang until the client gives up
	MalformedRate float64 // share of API replies cut in half (invalid JSON)

	Status5xxNext  int // the next N API requests get Status5xxCode
	Status5xxCode  int // default 503
	Fail429Next    int // the next N API requests get 429
	RetryAfter     time.Duration
	OmitRetryAfter bool // send 429 without a Retry-After header
	MalformedNext  int  // the next N API replies are cut in half
	TimeoutNext    int  // the next N API requests hang until the client gives up
	TokenFailNext  int  // the next N token requests get 503

	// DriftInsertNext inserts new products before each of the next N list
	// requests, DriftChangeNext changes an existing one (its modified date
	// moves to the end): the page drift a client meets while paging.
	DriftInsertNext int
	DriftChangeNext int
}

// SetFaults replaces the active faults.
func (s *Server) SetFaults(f Faults) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.faults = f
}

// Faults returns the active faults with what is left of the *Next counters.
func (s *Server) Faults() Faults {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return s.faults
}

// Routes served by Handler (paths relative to the server's base URL).
const (
	TokenPath          = "/connect/token"
	CategoriesPath     = "/categories"
	ProductsPath       = "/products"
	ProductOnHandsPath = "/productOnHands"
	BranchesPath       = "/branches"
	AttributesPath     = "/attributes/allwithdistinctvalue"
)

// Handler serves the token endpoint and the API on one mux, so a single
// httptest.Server hosts both: TokenURL = base + TokenPath, APIURL = base.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	mux.Handle("GET "+CategoriesPath, s.api(CategoriesPath, s.handleCategories))
	mux.Handle("GET "+CategoriesPath+"/{id}", s.api(CategoriesPath+"/{id}", s.handleCategory))
	mux.Handle("GET "+ProductsPath, s.api(ProductsPath, s.handleProducts))
	mux.Handle("GET "+ProductsPath+"/{id}", s.api(ProductsPath+"/{id}", s.handleProduct))
	mux.Handle("GET "+ProductsPath+"/code/{code}", s.api(ProductsPath+"/code/{code}", s.handleProduct))
	mux.Handle("GET "+ProductOnHandsPath, s.api(ProductOnHandsPath, s.handleOnHands))
	mux.Handle("GET "+BranchesPath, s.api(BranchesPath, s.handleBranches))
	mux.Handle("GET "+AttributesPath, s.api(AttributesPath, s.handleAttributes))
	s.webhookRoutes(mux)
	return mux
}

func (s *Server) count(path string) {
	s.ctl.Lock()
	s.counts[path]++
	s.ctl.Unlock()
}

// writeJSON sends v with KiotViet's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeStatus sends a ServiceStack-style error body.
func writeStatus(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"responseStatus": map[string]any{"errorCode": code, "message": msg, "errors": []any{}}})
}

// handleToken is the client-credentials token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.count(TokenPath)
	s.ctl.Lock()
	f := s.faults
	fail := s.faults.TokenFailNext > 0
	if fail {
		s.faults.TokenFailNext--
	}
	s.ctl.Unlock()
	sleepCtx(r.Context(), f.Latency)
	if fail {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	case r.PostForm.Get("client_id") != s.opts.ClientID || r.PostForm.Get("client_secret") != s.opts.ClientSecret:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"})
		return
	case !slices.Contains(strings.Fields(r.PostForm.Get("scopes")), "PublicApi.Access"):
		// KiotViet's field is "scopes" (plural); OAuth's "scope" is not enough.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope"})
		return
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.opts.Now()
	s.ctl.Lock()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(s.opts.TokenTTL)
	s.ctl.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "expires_in": int64(s.opts.TokenTTL / time.Second), "token_type": "Bearer",
	})
}

// decision is what the fault plan says about one API request.
type decision struct {
	latency             time.Duration
	hang, malformed     bool
	status              int
	fail429             bool
	retryAfter          time.Duration
	omitRetryAfter      bool
	driftIns, driftChng bool
}

func (s *Server) decide() decision {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	f := &s.faults
	d := decision{latency: f.Latency, retryAfter: cmp.Or(f.RetryAfter, time.Second), omitRetryAfter: f.OmitRetryAfter}
	take := func(n *int) bool {
		if *n > 0 {
			*n--
			return true
		}
		return false
	}
	roll := func(p float64) bool { return p > 0 && s.faultRn.Float64() < p }
	// One failure per request, so "next N" counters add up predictably.
	switch {
	case take(&f.TimeoutNext) || roll(f.TimeoutRate):
		d.hang = true
	case take(&f.Status5xxNext):
		d.status = cmp.Or(f.Status5xxCode, http.StatusServiceUnavailable)
	case roll(f.ErrorRate):
		d.status = http.StatusServiceUnavailable
	case take(&f.Fail429Next):
		d.fail429 = true
	default:
		d.malformed = take(&f.MalformedNext) || roll(f.MalformedRate)
		d.driftIns = take(&f.DriftInsertNext)
		d.driftChng = take(&f.DriftChangeNext)
	}
	return d
}

// api wraps an endpoint with counting, faults, the Retailer and token
// checks and the hourly GET limit, in that order.
func (s *Server) api(path string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(path)
		if !s.enter(r) {
			s.write429(w, time.Second, false)
			return
		}
		defer s.leave(r)
		d := s.decide()
		sleepCtx(r.Context(), d.latency)
		if d.hang {
			sleepCtx(r.Context(), s.opts.HangLimit)
			if r.Context().Err() != nil {
				return
			}
			writeStatus(w, http.StatusGatewayTimeout, "TimeoutException", "Hết thời gian xử lý")
			return
		}
		if d.status != 0 {
			writeStatus(w, d.status, "ServiceUnavailable", "Hệ thống đang bận, vui lòng thử lại sau")
			return
		}
		if d.fail429 {
			s.write429(w, d.retryAfter, d.omitRetryAfter)
			return
		}
		if !s.authorized(w, r) {
			return
		}
		if wait, ok := s.allowGET(); !ok {
			s.write429(w, wait, false)
			return
		}
		if d.driftIns || d.driftChng {
			s.mu.Lock()
			if d.driftIns {
				s.addProductsLocked(1)
			}
			if d.driftChng && len(s.products) > 0 {
				p := s.byMod[s.rng.IntN(len(s.byMod))]
				if live := s.products[p.ID]; live == p { // not a ListDeleted copy
					s.changeLocked(p, s.changeTime())
				}
			}
			s.reindexLocked()
			s.mu.Unlock()
		}
		if !d.malformed {
			h(w, r)
			return
		}
		rec := &recorder{header: w.Header(), status: http.StatusOK}
		h(rec, r)
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.buf.Bytes()[:rec.buf.Len()/2])
	})
}

// enter admits an API request under the per-client concurrency cap (always, without one); leave ends it.
func (s *Server) enter(r *http.Request) bool {
	if s.opts.MaxConcurrentPerClient <= 0 {
		return true
	}
	key := r.Header.Get("Retailer")
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.flight[key] >= s.opts.MaxConcurrentPerClient {
		return false
	}
	s.flight[key]++
	return true
}

func (s *Server) leave(r *http.Request) {
	if s.opts.MaxConcurrentPerClient <= 0 {
		return
	}
	key := r.Header.Get("Retailer")
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.flight[key]--; s.flight[key] <= 0 {
		delete(s.flight, key)
	}
}

func (s *Server) write429(w http.ResponseWriter, wait time.Duration, omit bool) {
	s.ctl.Lock()
	s.tooMany++
	s.ctl.Unlock()
	if !omit {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10))
	}
	writeStatus(w, http.StatusTooManyRequests, "RateLimitException", "Vượt quá giới hạn 5000 request/giờ")
}

// authorized checks the Retailer header and the bearer token; KiotViet
// answers 401 for a wrong retailer as for a bad token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.ctl.Lock()
	exp, known := s.tokens[strings.TrimSpace(tok)]
	s.ctl.Unlock()
	if !ok || !known || !s.opts.Now().Before(exp) {
		writeStatus(w, http.StatusUnauthorized, "TokenException", "Token không hợp lệ hoặc đã hết hạn")
		return false
	}
	if !s.servesRetailer(strings.TrimSpace(r.Header.Get("Retailer"))) {
		writeStatus(w, http.StatusUnauthorized, "UnauthorizedException", "Retailer không hợp lệ")
		return false
	}
	return true
}

// servesRetailer: the shop name is the server's own or one of its OtherRetailers (any case).
func (s *Server) servesRetailer(name string) bool {
	if strings.EqualFold(name, s.opts.Retailer) {
		return true
	}
	for _, o := range s.opts.OtherRetailers {
		if strings.EqualFold(name, o) {
			return true
		}
	}
	return false
}

// allowGET records a GET in the sliding hour, or says how long to wait.
func (s *Server) allowGET() (time.Duration, bool) {
	if len(s.window) == 0 {
		return 0, true
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	now := s.opts.Now()
	if s.wfull {
		if free := s.window[s.wnext].Add(time.Hour); now.Before(free) {
			return free.Sub(now), false
		}
	}
	s.window[s.wnext] = now
	s.wnext++
	if s.wnext == len(s.window) {
		s.wnext, s.wfull = 0, true
	}
	return 0, true
}

// recorder buffers a reply so a fault can corrupt it.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.buf.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// listQuery is a parsed list request. KiotViet (ServiceStack) matches
// query names in any case.
type listQuery struct {
	size, offset     int
	from             time.Time
	hasFrom          bool
	includeRemoved   bool
	includeInventory bool
	inc              includes
	hierarchical     bool
	order            string
	desc             bool
	branchIDs        map[int64]bool
}

func (s *Server) parseList(w http.ResponseWriter, r *http.Request) (listQuery, bool) {
	vals := map[string][]string{}
	for k, v := range r.URL.Query() {
		vals[strings.ToLower(k)] = append(vals[strings.ToLower(k)], v...)
	}
	get := func(k string) string {
		if v := vals[strings.ToLower(k)]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	bad := func(msg string) (listQuery, bool) {
		writeStatus(w, http.StatusBadRequest, "ArgumentException", msg)
		return listQuery{}, false
	}
	q := listQuery{size: s.opts.PageDefault}
	if v := get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("pageSize không hợp lệ")
		}
		if n > 0 {
			q.size = min(n, s.opts.PageMax)
		}
	}
	if v := get("currentItem"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return bad("currentItem không hợp lệ")
		}
		q.offset = max(n, 0)
	}
	if v := get("lastModifiedFrom"); v != "" {
		t, err := kiotviet.ParseTime(v)
		if err != nil {
			return bad("lastModifiedFrom không hợp lệ")
		}
		q.from, q.hasFrom = t, true
	}
	flag := func(k string) bool { b, _ := strconv.ParseBool(get(k)); return b }
	q.includeRemoved = flag("includeRemoveIds")
	q.includeInventory = flag("includeInventory")
	q.inc = includes{pricebook: flag("includePricebook"), serials: flag("IncludeSerials"),
		batches: flag("IncludeBatchExpires"), shelves: flag("IncludeProductShelves"), material: flag("includeMaterial"),
		quantity: flag("includeQuantity")}
	q.hierarchical = flag("hierachicalData")
	q.order = strings.ToLower(get("orderBy"))
	q.desc = strings.EqualFold(get("orderDirection"), "desc")
	for _, v := range vals["branchids"] {
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '[' || r == ']' || r == ' ' }) {
			if id, err := strconv.ParseInt(part, 10, 64); err == nil {
				if q.branchIDs == nil {
					q.branchIDs = map[int64]bool{}
				}
				q.branchIDs[id] = true
			}
		}
	}
	return q, true
}

// envelope is KiotViet's list reply. Exactly one removed-ids spelling is
// set, the one KiotViet documents for the endpoint; nil pointers are left
// out like KiotViet's nulls.
type envelope struct {
	RemovedIDs *[]int64 `json:"removedIds,omitempty"`
	RemoveID   *[]int64 `json:"removeId,omitempty"`
	Total      int      `json:"total"`
	PageSize   int      `json:"pageSize"`
	Data       any      `json:"data"`
	Timestamp  string   `json:"timestamp"`
}

func (s *Server) timestamp() string {
	return s.opts.Now().In(kiotviet.VietnamZone()).Format("2006-01-02T15:04:05.0000000Z07:00")
}

func wireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return kiotviet.FormatTime(t)
}

// window returns the page [offset, offset+size) of a list of n items.
func window(n, offset, size int) (int, int) {
	lo := min(offset, n)
	return lo, min(lo+size, n)
}

// viewKey names a cached, filtered and ordered list of products.
type viewKey struct {
	kind    string // "products" (ModifiedDate) or "onhands" (StockModifiedDate)
	from    int64
	hasFrom bool
	order   string
	desc    bool
}

// productView returns the products matching the filter in the requested
// order. Views are cached until the catalogue changes, so paging through
// 100k products costs one O(N) pass, not one per page. Caller holds mu.RLock.
func (s *Server) productView(k viewKey) []*Product {
	if k.kind == "products" && k.order == "modifieddate" && !k.desc {
		i := 0
		if k.hasFrom {
			from := time.Unix(0, k.from)
			i = sort.Search(len(s.byMod), func(i int) bool { return !s.byMod[i].ModifiedDate.Before(from) })
		}
		return s.byMod[i:]
	}
	s.viewMu.Lock()
	v, ok := s.views[k]
	s.viewMu.Unlock()
	if ok {
		return v
	}
	from := time.Unix(0, k.from)
	v = make([]*Product, 0, len(s.byMod))
	for _, p := range s.byMod {
		t := p.ModifiedDate
		if k.kind == "onhands" {
			t = p.StockModifiedDate
		}
		if !k.hasFrom || !t.Before(from) {
			v = append(v, p)
		}
	}
	key := func(p *Product) (string, time.Time) {
		switch k.order {
		case "code":
			return p.Code, time.Time{}
		case "name":
			return p.Name, time.Time{}
		case "createddate":
			return "", p.CreatedDate
		case "modifieddate":
			if k.kind == "onhands" {
				return "", p.StockModifiedDate
			}
			return "", p.ModifiedDate
		}
		return "", time.Time{}
	}
	slices.SortStableFunc(v, func(a, b *Product) int {
		as, at := key(a)
		bs, bt := key(b)
		c := cmp.Or(strings.Compare(as, bs), at.Compare(bt), cmp.Compare(a.ID, b.ID))
		if k.desc {
			return -c
		}
		return c
	})
	s.viewMu.Lock()
	if len(s.views) > 32 {
		clear(s.views)
	}
	s.views[k] = v
	s.viewMu.Unlock()
	return v
}

// Wire shapes (camelCase as KiotViet's REST API writes them).

// includes are /products' include options; each array is sent only when asked for.
type includes struct {
	pricebook, serials, batches, shelves, material, quantity bool
}

// productJSON is a product as KiotViet's lists write it. Like a real list it
// always sends barCode (empty too), weight, description and the flags
// allowsSale/isActive/hasVariants, and leaves out what is not set: the
// tradeMark fields, orderTemplate, unit, the master ids, attributes and
// images when there are none, isRewardPoint when true and the lot/batch
// flags when false (a real export of 117 products had none of the three),
// and every include-only array unless asked for.
type productJSON struct {
	ID                   int64            `json:"id"`
	RetailerID           int64            `json:"retailerId"`
	Code                 string           `json:"code"`
	BarCode              *string          `json:"barCode,omitempty"`
	Name                 string           `json:"name"`
	FullName             string           `json:"fullName"`
	CategoryID           int64            `json:"categoryId,omitempty"`
	CategoryName         string           `json:"categoryName,omitempty"`
	AllowsSale           bool             `json:"allowsSale"`
	Type                 int              `json:"type"`
	HasVariants          bool             `json:"hasVariants"`
	BasePrice            float64          `json:"basePrice"`
	Weight               *float64         `json:"weight,omitempty"`
	Unit                 string           `json:"unit,omitempty"`
	MasterCode           string           `json:"masterCode,omitempty"`
	MasterProductID      int64            `json:"masterProductId,omitempty"`
	MasterUnitID         int64            `json:"masterUnitId,omitempty"`
	ConversionValue      float64          `json:"conversionValue"`
	Description          string           `json:"description"`
	OrderTemplate        string           `json:"orderTemplate,omitempty"`
	TradeMarkID          int64            `json:"tradeMarkId,omitempty"`
	TradeMarkName        string           `json:"tradeMarkName,omitempty"`
	IsActive             bool             `json:"isActive"`
	IsRewardPoint        *bool            `json:"isRewardPoint,omitempty"`
	IsLotSerialControl   *bool            `json:"isLotSerialControl,omitempty"`
	IsBatchExpireControl *bool            `json:"isBatchExpireControl,omitempty"`
	TaxType              string           `json:"taxType,omitempty"`
	TaxRate              string           `json:"taxRate,omitempty"`
	TaxRateDirect        *float64         `json:"taxRateDirect,omitempty"`
	Attributes           []attributeJSON  `json:"attributes,omitempty"`
	Units                []unitJSON       `json:"units,omitempty"`
	Inventories          []inventoryJSON  `json:"inventories,omitempty"`
	PriceBooks           *[]priceBookJSON `json:"priceBooks,omitempty"`
	ProductFormulas      *[]formulaJSON   `json:"productFormulas,omitempty"`
	ProductSerials       *[]serialJSON    `json:"productSerials,omitempty"`
	ProductBatchExpires  *[]batchJSON     `json:"productBatchExpires,omitempty"`
	ProductShelves       *[]shelfJSON     `json:"productShelves,omitempty"`
	Images               any              `json:"images,omitempty"`
	CreatedDate          string           `json:"createdDate,omitempty"`
	ModifiedDate         string           `json:"modifiedDate,omitempty"`
}

type priceBookJSON struct {
	PriceBookID   int64   `json:"priceBookId"`
	PriceBookName string  `json:"priceBookName"`
	ProductID     int64   `json:"productId"`
	IsActive      bool    `json:"isActive"`
	StartDate     string  `json:"startDate"`
	EndDate       string  `json:"endDate"`
	Price         float64 `json:"price"`
}

type formulaJSON struct {
	MaterialID       int64   `json:"materialId"`
	MaterialCode     string  `json:"materialCode"`
	MaterialName     string  `json:"materialName"`
	MaterialFullName string  `json:"materialFullName"`
	Quantity         float64 `json:"quantity"`
	BasePrice        float64 `json:"basePrice"`
	Unit             string  `json:"unit,omitempty"`
	ProductID        int64   `json:"productId"`
}

type serialJSON struct {
	ProductID    int64  `json:"productId"`
	SerialNumber string `json:"serialNumber"`
	Status       int    `json:"status"`
	BranchID     int64  `json:"branchId"`
	Quantity     int    `json:"quantity"`
	CreatedDate  string `json:"createdDate"`
}

type batchJSON struct {
	ProductID       int64   `json:"productId"`
	OnHand          float64 `json:"onHand"`
	BatchName       string  `json:"batchName"`
	ExpireDate      string  `json:"expireDate"`
	FullNameVirgule string  `json:"fullNameVirgule"`
	BranchID        int64   `json:"branchId"`
}

type shelfJSON struct {
	BranchID       int64  `json:"branchId"`
	BranchName     string `json:"branchName"`
	ProductShelves string `json:"ProductShelves"` // KiotViet's capital P
}

type attributeJSON struct {
	ProductID      int64  `json:"productId"`
	AttributeName  string `json:"attributeName"`
	AttributeValue string `json:"attributeValue"`
}

type unitJSON struct {
	ID              int64   `json:"id"`
	Code            string  `json:"code"`
	Name            string  `json:"name"`
	FullName        string  `json:"fullName"`
	Unit            string  `json:"unit"`
	ConversionValue float64 `json:"conversionValue"`
	BasePrice       float64 `json:"basePrice"`
}

type inventoryJSON struct {
	ProductID      int64    `json:"productId"`
	ProductCode    string   `json:"productCode"`
	ProductName    string   `json:"productName"`
	BranchID       int64    `json:"branchId"`
	BranchName     string   `json:"branchName"`
	Cost           float64  `json:"cost"`
	OnHand         float64  `json:"onHand"`
	Reserved       float64  `json:"reserved"`
	ActualReserved float64  `json:"actualReserved"`
	MinQuantity    *float64 `json:"minQuantity,omitempty"` // with includeQuantity
	MaxQuantity    *float64 `json:"maxQuantity,omitempty"`
	IsActive       bool     `json:"isActive"`
	OnOrder        float64  `json:"onOrder"`
}

// productJSON writes p as a list item, or as the detail endpoint does
// (detail: every flag, and the stock with its limits, as the captured
// detail reply shows).
func (s *Server) productJSON(p *Product, inventory bool, branches map[int64]bool, inc includes, detail bool) productJSON {
	out := productJSON{
		ID: p.ID, RetailerID: s.retailerID, Code: p.Code, Name: p.Name, FullName: p.FullName,
		CategoryID: p.CategoryID, AllowsSale: p.AllowsSale, Type: p.Type, HasVariants: p.HasVariants,
		BasePrice: p.BasePrice, Unit: p.Unit, MasterCode: p.MasterCode, MasterProductID: p.MasterProductID,
		MasterUnitID: p.MasterUnitID, ConversionValue: p.ConversionValue, Description: p.Description,
		OrderTemplate: p.OrderTemplate, TradeMarkID: p.TradeMarkID, TradeMarkName: p.TradeMarkName,
		IsActive: p.IsActive, TaxType: p.TaxType,
		CreatedDate: wireTime(p.CreatedDate), ModifiedDate: wireTime(p.ModifiedDate),
	}
	if !detail || p.Barcode != "" {
		out.BarCode = &p.Barcode
	}
	if !detail || p.Weight != 0 {
		out.Weight = &p.Weight
	}
	if detail || !p.IsRewardPoint {
		out.IsRewardPoint = &p.IsRewardPoint
	}
	if detail || p.IsLotSerialControl {
		out.IsLotSerialControl = &p.IsLotSerialControl
	}
	if detail || p.IsBatchExpireControl {
		out.IsBatchExpireControl = &p.IsBatchExpireControl
	}
	switch p.TaxType {
	case "khau_tru":
		out.TaxRate = strconv.FormatFloat(p.TaxRate, 'f', -1, 64)
	case "truc_tiep":
		out.TaxRateDirect = &p.TaxRateDirect
	}
	if c := s.categories[p.CategoryID]; c != nil {
		out.CategoryName = c.Name
	}
	for _, a := range p.Attributes {
		out.Attributes = append(out.Attributes, attributeJSON{ProductID: p.ID, AttributeName: a.AttributeName, AttributeValue: a.AttributeValue})
	}
	for _, u := range p.Units {
		out.Units = append(out.Units, unitJSON(u))
	}
	if len(p.Images) > 0 {
		if s.opts.ImagesAsObjects {
			objs := make([]map[string]string, len(p.Images))
			for i, u := range p.Images {
				objs[i] = map[string]string{"Image": u}
			}
			out.Images = objs
		} else {
			out.Images = p.Images
		}
	}
	keep := func(branch int64) bool { return branches == nil || branches[branch] }
	if inventory {
		for _, inv := range p.Inventories {
			if !keep(inv.BranchID) {
				continue
			}
			j := inventoryJSON{
				ProductID: p.ID, ProductCode: p.Code, ProductName: p.FullName, BranchID: inv.BranchID,
				BranchName: s.branchName(inv.BranchID), Cost: inv.Cost, OnHand: inv.OnHand, Reserved: inv.Reserved,
				ActualReserved: inv.Reserved, IsActive: true,
			}
			if inc.quantity || detail {
				j.MinQuantity, j.MaxQuantity = &inv.MinQuantity, &inv.MaxQuantity
			}
			out.Inventories = append(out.Inventories, j)
		}
	}
	if inc.pricebook {
		l := []priceBookJSON{}
		for _, pb := range p.PriceBooks {
			l = append(l, priceBookJSON{PriceBookID: pb.PriceBookID, PriceBookName: pb.PriceBookName, ProductID: p.ID,
				IsActive: pb.IsActive, StartDate: wireDate(pb.StartDate), EndDate: wireDate(pb.EndDate), Price: pb.Price})
		}
		out.PriceBooks = &l
	}
	if inc.material {
		l := []formulaJSON{}
		for _, c := range p.Components {
			l = append(l, formulaJSON{MaterialID: c.ProductID, MaterialCode: c.Code, MaterialName: c.Name,
				MaterialFullName: c.FullName, Quantity: c.Quantity, BasePrice: c.BasePrice, Unit: c.Unit, ProductID: p.ID})
		}
		out.ProductFormulas = &l
	}
	if inc.serials {
		l := []serialJSON{}
		for _, x := range p.Serials {
			if keep(x.BranchID) {
				l = append(l, serialJSON{ProductID: p.ID, SerialNumber: x.SerialNumber, Status: x.Status, BranchID: x.BranchID,
					Quantity: 1, CreatedDate: wireTime(x.CreatedDate)})
			}
		}
		out.ProductSerials = &l
	}
	if inc.batches {
		l := []batchJSON{}
		for _, b := range p.Batches {
			if keep(b.BranchID) {
				l = append(l, batchJSON{ProductID: p.ID, OnHand: b.OnHand, BatchName: b.BatchName, ExpireDate: wireDate(b.ExpireDate),
					FullNameVirgule: b.BatchName + " - " + b.ExpireDate.In(kiotviet.VietnamZone()).Format("02/01/2006"), BranchID: b.BranchID})
			}
		}
		out.ProductBatchExpires = &l
	}
	if inc.shelves {
		l := []shelfJSON{}
		for _, sh := range p.Shelves {
			if keep(sh.BranchID) {
				l = append(l, shelfJSON{BranchID: sh.BranchID, BranchName: s.branchName(sh.BranchID), ProductShelves: sh.Shelves})
			}
		}
		out.ProductShelves = &l
	}
	return out
}

// wireDate writes a date as KiotViet's price book and lot dates look:
// Vietnam time, no offset, no fraction.
func wireDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kiotviet.VietnamZone()).Format("2006-01-02T15:04:05")
}

func (s *Server) handleProducts(w http.ResponseWriter, r *http.Request) {
	q, ok := s.parseList(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	view := s.productView(viewKey{kind: "products", from: q.from.UnixNano(), hasFrom: q.hasFrom, order: q.order, desc: q.desc})
	lo, hi := window(len(view), q.offset, q.size)
	data := make([]productJSON, 0, hi-lo)
	for _, p := range view[lo:hi] {
		data = append(data, s.productJSON(p, q.includeInventory, q.branchIDs, q.inc, false))
	}
	env := envelope{Total: len(view), PageSize: q.size, Data: data, Timestamp: s.timestamp()}
	if q.includeRemoved && q.hasFrom {
		// /products spells the field removeId, as KiotViet documents it.
		ids := []int64{}
		i := sort.Search(len(s.deleted), func(i int) bool { return !s.deleted[i].DeletedAt.Before(q.from) })
		for _, d := range s.deleted[i:] {
			ids = append(ids, d.ID)
		}
		env.RemoveID = &ids
	}
	writeJSON(w, http.StatusOK, env)
}

// handleProduct serves /products/{id} and /products/code/{code}.
func (s *Server) handleProduct(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found *Product
	if code := r.PathValue("code"); code != "" {
		for _, p := range s.products {
			if p.Code == code {
				found = p
				break
			}
		}
	} else if id, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil {
		found = s.products[id]
	}
	if found == nil {
		// a deleted product is still found by id, its code renamed "…{DEL}", as other replies show it
		if id, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil {
			for _, d := range s.deleted {
				if d.ID == id && d.product != nil {
					q := *d.product
					q.Code, q.IsActive = d.RenamedCode(), false
					found = &q
				}
			}
		}
	}
	if found == nil {
		writeStatus(w, http.StatusNotFound, "NotFoundException", "Không tìm thấy hàng hóa")
		return
	}
	all := includes{pricebook: true, serials: true, batches: true, shelves: true, material: true, quantity: true}
	writeJSON(w, http.StatusOK, s.productJSON(found, true, nil, all, true))
}

type onHandJSON struct {
	ID           int64              `json:"id"`
	Code         string             `json:"code"`
	CreatedDate  string             `json:"createdDate,omitempty"`
	ModifiedDate string             `json:"modifiedDate,omitempty"`
	Inventories  []onHandBranchJSON `json:"inventories"`
}

type onHandBranchJSON struct {
	BranchID int64   `json:"branchId"`
	OnHand   float64 `json:"onHand"`
	Reserved float64 `json:"reserved"`
}

func (s *Server) handleOnHands(w http.ResponseWriter, r *http.Request) {
	q, ok := s.parseList(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	view := s.productView(viewKey{kind: "onhands", from: q.from.UnixNano(), hasFrom: q.hasFrom, order: q.order, desc: q.desc})
	lo, hi := window(len(view), q.offset, q.size)
	data := make([]onHandJSON, 0, hi-lo)
	for _, p := range view[lo:hi] {
		row := onHandJSON{ID: p.ID, Code: p.Code, CreatedDate: wireTime(p.CreatedDate), ModifiedDate: wireTime(p.StockModifiedDate),
			Inventories: []onHandBranchJSON{}}
		for _, inv := range p.Inventories {
			if q.branchIDs == nil || q.branchIDs[inv.BranchID] {
				row.Inventories = append(row.Inventories, onHandBranchJSON{BranchID: inv.BranchID, OnHand: inv.OnHand, Reserved: inv.Reserved})
			}
		}
		data = append(data, row)
	}
	writeJSON(w, http.StatusOK, envelope{Total: len(view), PageSize: q.size, Data: data, Timestamp: s.timestamp()})
}

type categoryJSON struct {
	CategoryID   int64          `json:"categoryId"`
	ParentID     int64          `json:"parentId,omitempty"`
	CategoryName string         `json:"categoryName"`
	RetailerID   int64          `json:"retailerId"`
	HasChild     *bool          `json:"hasChild,omitempty"`
	IsDeleted    bool           `json:"isDeleted,omitempty"`
	Rank         *int64         `json:"rank,omitempty"` // flat lists and tree roots; the docs' tree children have none
	ModifiedDate string         `json:"modifiedDate,omitempty"`
	CreatedDate  string         `json:"createdDate,omitempty"`
	Children     []categoryJSON `json:"children,omitempty"`
}

func (s *Server) categoryJSON(c *Category, tree bool) categoryJSON {
	rank := c.Rank
	out := categoryJSON{CategoryID: c.ID, ParentID: c.ParentID, CategoryName: c.Name, RetailerID: s.retailerID,
		Rank: &rank, ModifiedDate: wireTime(c.ModifiedDate), CreatedDate: wireTime(c.CreatedDate)}
	if tree {
		// The flat list of a real shop had no hasChild; the tree has it.
		hc := c.HasChild
		out.HasChild = &hc
		for _, child := range s.sortedCategories(func(x *Category) bool { return x.ParentID == c.ID }, "", false) {
			cj := s.categoryJSON(child, true)
			cj.Rank = nil
			out.Children = append(out.Children, cj)
		}
	}
	return out
}

// sortedCategories filters and orders categories; KiotViet's default is
// by name, a→z.
func (s *Server) sortedCategories(keep func(*Category) bool, order string, desc bool) []*Category {
	var out []*Category
	for _, c := range s.catList {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b *Category) int {
		var c int
		switch order {
		case "categoryid", "id":
		case "createddate":
			c = a.CreatedDate.Compare(b.CreatedDate)
		case "modifieddate":
			c = a.ModifiedDate.Compare(b.ModifiedDate)
		default:
			c = strings.Compare(a.Name, b.Name)
		}
		c = cmp.Or(c, cmp.Compare(a.ID, b.ID))
		if desc {
			return -c
		}
		return c
	})
	return out
}

func (s *Server) handleCategories(w http.ResponseWriter, r *http.Request) {
	q, ok := s.parseList(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var list []*Category
	if q.hierarchical {
		// The tree ignores lastModifiedFrom, as KiotViet's does.
		list = s.sortedCategories(func(c *Category) bool { return c.ParentID == 0 }, q.order, q.desc)
	} else {
		list = s.sortedCategories(func(c *Category) bool { return !q.hasFrom || !c.ModifiedDate.Before(q.from) }, q.order, q.desc)
	}
	var removed []int64
	if q.hasFrom && !q.hierarchical {
		// a category deleted since lastModifiedFrom is listed marked isDeleted (at the end: its
		// modified date is its deletion)
		for i := range s.catDeleted {
			if d := &s.catDeleted[i]; !d.At.Before(q.from) {
				c := d.Category
				c.ModifiedDate = d.At
				list = append(list, &c)
				removed = append(removed, c.ID)
			}
		}
	}
	lo, hi := window(len(list), q.offset, q.size)
	data := make([]categoryJSON, 0, hi-lo)
	for _, c := range list[lo:hi] {
		cj := s.categoryJSON(c, q.hierarchical)
		cj.IsDeleted = slices.Contains(removed, c.ID)
		data = append(data, cj)
	}
	env := envelope{Total: len(list), PageSize: q.size, Data: data, Timestamp: s.timestamp()}
	if q.includeRemoved && q.hasFrom {
		ids := append([]int64{}, removed...)
		env.RemovedIDs = &ids
	}
	writeJSON(w, http.StatusOK, env)
}

func (s *Server) handleCategory(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c := s.categories[id]
	if c == nil {
		writeStatus(w, http.StatusNotFound, "NotFoundException", "Không tìm thấy nhóm hàng")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": s.categoryJSON(c, false)})
}

type branchJSON struct {
	ID            int64  `json:"id"`
	BranchName    string `json:"branchName"`
	BranchCode    string `json:"branchCode,omitempty"`
	ContactNumber string `json:"contactNumber,omitempty"`
	RetailerID    int64  `json:"retailerId"`
	Address       string `json:"address,omitempty"`
	LocationName  string `json:"locationName,omitempty"`
	WardName      string `json:"wardName,omitempty"`
	ModifiedDate  string `json:"modifiedDate,omitempty"`
	CreatedDate   string `json:"createdDate,omitempty"`
}

func (s *Server) handleBranches(w http.ResponseWriter, r *http.Request) {
	q, ok := s.parseList(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var list []*Branch
	for _, b := range s.branches {
		if !q.hasFrom || !b.ModifiedDate.Before(q.from) {
			list = append(list, b)
		}
	}
	lo, hi := window(len(list), q.offset, q.size)
	data := make([]branchJSON, 0, hi-lo)
	for _, b := range list[lo:hi] {
		data = append(data, branchJSON{ID: b.ID, BranchName: b.Name, BranchCode: b.Code, ContactNumber: b.ContactNumber,
			RetailerID: s.retailerID, Address: b.Address, LocationName: b.LocationName, WardName: b.WardName,
			ModifiedDate: wireTime(b.ModifiedDate), CreatedDate: wireTime(b.CreatedDate)})
	}
	env := envelope{Total: len(list), PageSize: q.size, Data: data, Timestamp: s.timestamp()}
	if q.includeRemoved && q.hasFrom {
		// deactivated branches, as KiotViet reports them (only with lastModifiedFrom)
		ids := []int64{}
		for _, b := range s.inactive {
			if !b.At.Before(q.from) {
				ids = append(ids, b.ID)
			}
		}
		env.RemovedIDs = &ids
	}
	writeJSON(w, http.StatusOK, env)
}

// handleAttributes answers with a bare array, as KiotViet documents.
func (s *Server) handleAttributes(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	attrs := s.attributesLocked()
	s.mu.RUnlock()
	type valueJSON struct {
		Value       string `json:"value"`
		AttributeID int64  `json:"attributeId"`
	}
	type attrJSON struct {
		Name            string      `json:"name"`
		ID              int64       `json:"id"`
		AttributeValues []valueJSON `json:"attributeValues"`
	}
	out := make([]attrJSON, 0, len(attrs))
	for _, a := range attrs {
		aj := attrJSON{Name: a.Name, ID: a.ID, AttributeValues: []valueJSON{}}
		for _, v := range a.Values {
			aj.AttributeValues = append(aj.AttributeValues, valueJSON{Value: v, AttributeID: a.ID})
		}
		out = append(out, aj)
	}
	writeJSON(w, http.StatusOK, out)
}
