package kiotvietfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// KiotViet's webhooks, as the fake plays them: the webhook API (POST/GET/DELETE /webhooks, one
// registration per type), and on every change of the shop a signed delivery in KiotViet's shape to each
// active registration of that type. Like KiotViet it retries on 5xx and timeouts, and a 4xx reply
// disables the registration (KiotViet stops delivering to it). WebhookFaults duplicate, reorder, delay,
// hold or drop deliveries on demand.

// WebhooksPath is the webhook API's route.
const WebhooksPath = "/webhooks"

// WebhookTypes are the event types the fake accepts for registration (KiotViet's list).
var WebhookTypes = []string{"customer.update", "customer.delete", "product.update", "product.delete", "stock.update",
	"order.update", "invoice.update", "pricebook.update", "pricebook.delete", "pricebookdetail.update",
	"pricebookdetail.delete", "category.update", "category.delete", "branch.update", "branch.delete"}

// WebhookFaults change how deliveries go out. Zero is a well-behaved KiotViet.
type WebhookFaults struct {
	DuplicateRate float64       // a delivery is sent twice (same Id)
	DropRate      float64       // a delivery is never sent
	Delay         time.Duration // wait before each delivery
	Hold          bool          // keep deliveries until ReleaseWebhooks
	Reorder       bool          // ReleaseWebhooks sends the held deliveries newest first
}

// WebhookStats counts what the sender did.
type WebhookStats struct {
	Events     int64 `json:"events"`     // deliveries created by changes
	Sent       int64 `json:"sent"`       // HTTP POSTs made (retries and duplicates included)
	Delivered  int64 `json:"delivered"`  // deliveries answered 2xx
	Retried    int64 `json:"retried"`    // POSTs repeated after a 5xx or timeout
	Failed     int64 `json:"failed"`     // deliveries given up after the last retry
	Dropped    int64 `json:"dropped"`    // deliveries dropped by the faults
	Duplicated int64 `json:"duplicated"` // deliveries sent twice by the faults
	Disabled   int64 `json:"disabled"`   // registrations disabled after a 4xx
	Pending    int64 `json:"pending"`    // deliveries queued, held or being sent
}

type webhookReg struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"`
	URL         string `json:"url"`
	IsActive    bool   `json:"isActive"`
	RetailerID  int64  `json:"retailerId"`
	Description string `json:"description"`
	secret      string
}

type delivery struct {
	typ  string
	id   string
	body func(attempt int) []byte
}

// webhookHub is the fake's webhook state; the zero value is ready (sender started on first use).
type webhookHub struct {
	mu     sync.Mutex
	regs   []*webhookReg
	nextID int64
	faults WebhookFaults
	held   []delivery
	stats  WebhookStats
	rng    *rand.Rand
	queue  chan delivery
	start  sync.Once
	// RetryBase is the first retry's wait (doubling); MaxAttempts the tries per delivery.
	retryBase   time.Duration
	maxAttempts int
	client      *http.Client
}

// SetWebhookFaults replaces the delivery faults.
func (s *Server) SetWebhookFaults(f WebhookFaults) {
	h := &s.hooks
	h.mu.Lock()
	h.faults = f
	h.mu.Unlock()
}

// WebhookStats returns the sender's counters.
func (s *Server) WebhookStats() WebhookStats {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// ReleaseWebhooks sends the deliveries held by WebhookFaults.Hold (newest first with Reorder) and stops
// holding.
func (s *Server) ReleaseWebhooks() int {
	h := &s.hooks
	h.init(s.opts.Seed)
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.faults.Hold = false
	if h.faults.Reorder {
		slices.Reverse(held)
	}
	h.mu.Unlock()
	for _, d := range held {
		h.queue <- d
	}
	return len(held)
}

// WaitWebhooks waits until no delivery is queued or being sent (held ones do not count), or ctx ends.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		h := &s.hooks
		h.mu.Lock()
		busy := h.stats.Pending - int64(len(h.held))
		h.mu.Unlock()
		if busy <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (h *webhookHub) init(seed int64) {
	h.start.Do(func() {
		h.rng = rand.New(rand.NewPCG(uint64(seed), 0x77e6))
		h.queue = make(chan delivery, 1<<16)
		h.retryBase = 50 * time.Millisecond
		h.maxAttempts = 5
		h.client = &http.Client{Timeout: 5 * time.Second} // KiotViet's limit for an answer
		go h.send()
	})
}

// active tells whether any registration would receive typ (cheap: no payload is built otherwise).
func (h *webhookHub) active(typ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.regs {
		if r.IsActive && r.Type == typ {
			return true
		}
	}
	return false
}

func (h *webhookHub) guid() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", h.rng.Uint32(), h.rng.Uint32()&0xffff, h.rng.Uint32()&0xfff,
		0x8000|h.rng.Uint32()&0x3fff, h.rng.Uint64()&0xffffffffffff)
}

// enqueue creates one delivery of typ. data is the Notifications' Data, or for a bare delete (removeIDs
// non-nil) the {"RemoveId": [...]} body KiotViet documents for product, category and branch deletes.
func (s *Server) enqueueWebhook(typ string, data any, removeIDs []int64) {
	h := &s.hooks
	h.mu.Lock()
	id := h.guid()
	h.stats.Events++
	h.stats.Pending++
	rid := s.retailerID
	h.mu.Unlock()
	var dataJSON, removeJSON []byte
	if removeIDs != nil {
		removeJSON, _ = json.Marshal(map[string]any{"RemoveId": removeIDs})
	} else {
		dataJSON, _ = json.Marshal(data)
	}
	d := delivery{typ: typ, id: id, body: func(attempt int) []byte {
		if removeJSON != nil {
			return removeJSON
		}
		return []byte(fmt.Sprintf(`{"Id":%q,"Attempt":%d,"Notifications":[{"Action":"%s.%d","Data":%s}]}`, id, attempt, typ, rid, dataJSON))
	}}
	h.mu.Lock()
	if h.faults.Hold {
		h.held = append(h.held, d)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.queue <- d
}

func (h *webhookHub) send() {
	for d := range h.queue {
		h.mu.Lock()
		f := h.faults
		drop := f.DropRate > 0 && h.rng.Float64() < f.DropRate
		dup := f.DuplicateRate > 0 && h.rng.Float64() < f.DuplicateRate
		var regs []*webhookReg
		for _, r := range h.regs {
			if r.IsActive && r.Type == d.typ {
				regs = append(regs, r)
			}
		}
		if drop {
			h.stats.Dropped++
		}
		if dup && !drop {
			h.stats.Duplicated++
		}
		h.mu.Unlock()
		if !drop {
			if f.Delay > 0 {
				time.Sleep(f.Delay)
			}
			for _, r := range regs {
				h.deliver(r, d)
				if dup {
					h.deliver(r, d)
				}
			}
		}
		h.mu.Lock()
		h.stats.Pending--
		h.mu.Unlock()
	}
}

// deliver POSTs d to r, retrying on 5xx and timeouts; a 4xx disables r, as KiotViet does.
func (h *webhookHub) deliver(r *webhookReg, d delivery) {
	wait := h.retryBase
	for attempt := 1; attempt <= h.maxAttempts; attempt++ {
		body := d.body(attempt)
		req, err := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if r.secret != "" {
			m := hmac.New(sha256.New, []byte(r.secret))
			m.Write(body)
			// KiotViet labels its HMAC-SHA256 "sha1"
			req.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
		}
		resp, err := h.client.Do(req)
		h.mu.Lock()
		h.stats.Sent++
		h.mu.Unlock()
		status := 0
		if err == nil {
			status = resp.StatusCode
			_ = resp.Body.Close()
		}
		switch {
		case status >= 200 && status < 300:
			h.mu.Lock()
			h.stats.Delivered++
			h.mu.Unlock()
			return
		case status >= 400 && status < 500:
			h.mu.Lock()
			if r.IsActive {
				r.IsActive = false
				h.stats.Disabled++
			}
			h.stats.Failed++
			h.mu.Unlock()
			return
		}
		if attempt == h.maxAttempts {
			break
		}
		h.mu.Lock()
		h.stats.Retried++
		h.mu.Unlock()
		time.Sleep(wait)
		wait *= 2
	}
	h.mu.Lock()
	h.stats.Failed++
	h.mu.Unlock()
}

// ---- the mutation points call these, with s.mu held ----

// webhookProductsLocked sends product.update for each product (one delivery each, as KiotViet does).
func (s *Server) webhookProductsLocked(ids []int64) {
	if !s.hooks.active("product.update") {
		return
	}
	for _, id := range ids {
		if p := s.products[id]; p != nil {
			s.enqueueWebhook("product.update", []any{s.webhookProduct(p)}, nil)
		}
	}
}

// webhookDeletedLocked sends product.delete in the bare {"RemoveId": [...]} shape.
func (s *Server) webhookDeletedLocked(ids []int64) {
	if len(ids) == 0 || !s.hooks.active("product.delete") {
		return
	}
	s.enqueueWebhook("product.delete", nil, slices.Clone(ids))
}

// webhookStockLocked sends stock.update for one product at one branch.
func (s *Server) webhookStockLocked(p *Product, branchID int64) {
	if !s.hooks.active("stock.update") {
		return
	}
	for _, inv := range p.Inventories {
		if inv.BranchID != branchID {
			continue
		}
		s.enqueueWebhook("stock.update", []any{map[string]any{
			"__type":    "KiotViet.OmniChannelCore.Api.Shared.Model.WebhookProductStockRes, KiotViet.OmniChannelCore.Api.Shared",
			"ProductId": p.ID, "ProductCode": p.Code, "ProductName": p.FullName, "BranchId": inv.BranchID,
			"BranchName": s.branchName(inv.BranchID), "Cost": inv.Cost, "OnHand": inv.OnHand, "Reserved": inv.Reserved,
			"MinQuantity": inv.MinQuantity, "MaxQuantity": inv.MaxQuantity, "isActive": true,
		}}, nil)
	}
}

// webhookCategoryLocked sends category.update for c.
func (s *Server) webhookCategoryLocked(c *Category) {
	if !s.hooks.active("category.update") {
		return
	}
	var parent any
	if c.ParentID != 0 {
		parent = c.ParentID
	}
	s.enqueueWebhook("category.update", []any{map[string]any{
		"Id": c.ID, "Name": c.Name, "ParentId": parent, "IsDeleted": false, "CreatedDate": webhookTime(c.CreatedDate),
		"ModifiedDate": webhookTime(c.ModifiedDate), "RetailerId": s.retailerID, "Rank": c.Rank, "HasChild": false,
	}}, nil)
}

// webhookProduct is the REST product in the webhook's PascalCase (isActive and masterProductId stay in
// lower camel case, as in captured payloads). As in a real variant payload, a variant's Inventories and
// Attributes carry its master's ProductId, not its own.
func (s *Server) webhookProduct(p *Product) any {
	all := includes{pricebook: true, serials: true, batches: true, shelves: true, material: true, quantity: true}
	raw, _ := json.Marshal(s.productJSON(p, true, nil, all, true))
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	out := pascal(m).(map[string]any)
	out["__type"] = "KiotViet.OmniChannelCore.Api.Shared.Model.WebhookProductUpdateRes, KiotViet.OmniChannelCore.Api.Shared"
	out["ModifiedDate"] = webhookTime(p.ModifiedDate)
	out["CreatedDate"] = webhookTime(p.CreatedDate)
	if p.MasterProductID != 0 {
		for _, key := range []string{"Inventories", "Attributes"} {
			if list, ok := out[key].([]any); ok {
				for _, it := range list {
					if e, ok := it.(map[string]any); ok {
						e["ProductId"] = p.MasterProductID
					}
				}
			}
		}
	}
	return out
}

func pascal(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if k != "isActive" && k != "masterProductId" {
				r, n := utf8.DecodeRuneInString(k)
				k = string(unicode.ToUpper(r)) + k[n:]
			}
			out[k] = pascal(val)
		}
		return out
	case []any:
		for i := range t {
			t[i] = pascal(t[i])
		}
		return t
	}
	return v
}

// webhookTime is a date as webhooks write it: Vietnam time with its offset and 7 decimals.
func webhookTime(t time.Time) string {
	return t.In(time.FixedZone("ICT", 7*3600)).Format("2006-01-02T15:04:05.0000000-07:00")
}

// ---- the webhook API ----

func (s *Server) webhookRoutes(mux *http.ServeMux) {
	mux.Handle("POST "+WebhooksPath, s.webhookAPI(s.handleWebhookRegister))
	mux.Handle("GET "+WebhooksPath, s.webhookAPI(s.handleWebhookList))
	mux.Handle("GET "+WebhooksPath+"/{id}", s.webhookAPI(s.handleWebhookGet))
	mux.Handle("DELETE "+WebhooksPath+"/{id}", s.webhookAPI(s.handleWebhookDelete))
}

func (s *Server) webhookAPI(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(WebhooksPath)
		if !s.authorized(w, r) {
			return
		}
		h(w, r)
	})
}

func (s *Server) handleWebhookRegister(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Webhook *struct {
			Type        string `json:"Type"`
			URL         string `json:"Url"`
			IsActive    *bool  `json:"IsActive"`
			Description string `json:"Description"`
			Secret      string `json:"Secret"`
		} `json:"Webhook"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil || body.Webhook == nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "Dữ liệu không hợp lệ")
		return
	}
	wh := body.Webhook
	typ := strings.ToLower(strings.TrimSpace(wh.Type))
	if !slices.Contains(WebhookTypes, typ) {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "Type không hợp lệ")
		return
	}
	u, err := url.Parse(wh.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "Url không hợp lệ")
		return
	}
	h := &s.hooks
	h.init(s.opts.Seed)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, reg := range h.regs {
		if reg.Type == typ {
			writeStatus(w, http.StatusBadRequest, "BadRequest", "Type đã tồn tại")
			return
		}
	}
	h.nextID++
	reg := &webhookReg{ID: 70_000 + h.nextID, Type: typ, URL: wh.URL, IsActive: wh.IsActive == nil || *wh.IsActive,
		RetailerID: s.retailerID, Description: wh.Description, secret: wh.Secret}
	h.regs = append(h.regs, reg)
	writeJSON(w, http.StatusOK, *reg)
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	h := &s.hooks
	h.mu.Lock()
	data := make([]webhookReg, 0, len(h.regs))
	for _, reg := range h.regs {
		data = append(data, *reg)
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"total": len(data), "pageSize": 100, "data": data})
}

func (s *Server) findWebhook(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	h := &s.hooks
	if err == nil {
		for i, reg := range h.regs {
			if reg.ID == id {
				return i, true
			}
		}
	}
	writeStatus(w, http.StatusNotFound, "NotFoundException", "Không tìm thấy webhook")
	return 0, false
}

func (s *Server) handleWebhookGet(w http.ResponseWriter, r *http.Request) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := s.findWebhook(w, r); ok {
		writeJSON(w, http.StatusOK, *h.regs[i])
	}
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := s.findWebhook(w, r); ok {
		h.regs = slices.Delete(h.regs, i, i+1)
		writeJSON(w, http.StatusOK, map[string]any{"message": "Xóa webhook thành công"})
	}
}

// WebhookAdminRoutes adds the fake's webhook controls to an admin mux: POST
// /_fake/webhooks/faults?duplicate=0.2&drop=0.1&delay=50ms&hold=1&reorder=1, POST
// /_fake/webhooks/release, GET /_fake/webhooks/stats.
func (s *Server) WebhookAdminRoutes(mux *http.ServeMux) {
	reply := func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) }
	mux.HandleFunc("POST /_fake/webhooks/faults", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rate := func(k string) float64 { v, _ := strconv.ParseFloat(q.Get(k), 64); return v }
		delay, _ := time.ParseDuration(q.Get("delay"))
		f := WebhookFaults{DuplicateRate: rate("duplicate"), DropRate: rate("drop"), Delay: delay,
			Hold: q.Get("hold") == "1", Reorder: q.Get("reorder") == "1"}
		s.SetWebhookFaults(f)
		reply(w, f)
	})
	mux.HandleFunc("POST /_fake/webhooks/release", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"released": s.ReleaseWebhooks()})
	})
	mux.HandleFunc("GET /_fake/webhooks/stats", func(w http.ResponseWriter, r *http.Request) { reply(w, s.WebhookStats()) })
}
