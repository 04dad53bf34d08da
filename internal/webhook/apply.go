//lint:file-ignore ST1005 the errors start with the name of the KiotViet field they are about (Notifications, Data)

package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// Fetcher re-reads products by id from KiotViet (syncer.Engine.FetchProducts): for payloads that are
// partial or inconsistent. gone lists ids KiotViet no longer has.
type Fetcher interface {
	FetchProducts(ctx context.Context, credentialID string, ids []int64) (ps []kiotviet.Product, gone []int64, calls int64, err error)
}

// Config configures an Applier. Zero values take the defaults in the comments.
type Config struct {
	Store       *store.Store
	Fetch       Fetcher // nil: inconsistent payloads fail (and are retried, then parked)
	Worker      string
	Lease       time.Duration // how long a claimed event is this worker's; default 60 s
	Batch       int           // events claimed at once; default 20
	MaxAttempts int           // attempts before an event is parked; default 8
	Poll        time.Duration // how often to look for events when not woken; default 2 s
	Logger      *slog.Logger
}

// Applier applies stored events. Every replica runs one; they share the queue through the database.
type Applier struct {
	cfg  Config
	wake chan struct{}
}

// NewApplier builds an applier.
func NewApplier(cfg Config) *Applier {
	cfg.Lease = cmp.Or(cfg.Lease, 60*time.Second)
	cfg.Batch = cmp.Or(cfg.Batch, 20)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 8)
	cfg.Poll = cmp.Or(cfg.Poll, 2*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Applier{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake tells the applier an event was stored; it never blocks.
func (a *Applier) Wake() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run applies events until ctx ends: whenever woken, and every Poll (events stored by another replica,
// retries whose time came, claims of a dead worker whose lease ran out).
func (a *Applier) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := a.Drain(ctx); err != nil && ctx.Err() == nil {
			a.cfg.Logger.Warn("webhook applier", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-t.C:
		}
	}
}

// Drain claims and applies due events until none is left; it returns how many it handled.
func (a *Applier) Drain(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		evs, err := a.cfg.Store.ClaimWebhooks(ctx, a.cfg.Worker, a.cfg.Batch, a.cfg.Lease, a.cfg.MaxAttempts)
		if err != nil {
			return n, err
		}
		if len(evs) == 0 {
			return n, nil
		}
		for _, ev := range evs {
			a.handle(ctx, ev)
			n++
		}
	}
	return n, ctx.Err()
}

// Result is what applying one event did, kept in the event's row.
type Result struct {
	Written  int      `json:"written"`
	Deleted  int      `json:"deleted"`
	Older    int      `json:"older"`
	Refetch  int      `json:"refetched"`
	APICalls int64    `json:"api_calls"`
	Skipped  []string `json:"skipped,omitempty"` // event types kvsync does not apply
}

func (a *Applier) handle(ctx context.Context, ev store.WebhookEvent) {
	log := a.cfg.Logger.With("event", ev.ID, "types", ev.EventTypes, "attempt", ev.Attempts)
	res, err := a.apply(ctx, ev)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another worker (or this one restarted) takes it
	}
	if err != nil {
		status, ferr := a.cfg.Store.WebhookFailed(ctx, ev.ID, a.cfg.Worker, err.Error(), a.cfg.MaxAttempts)
		if ferr != nil {
			log.Warn("webhook failure not recorded", "err", ferr)
			return
		}
		if status == "parked" {
			log.Error("webhook event parked", "err", err)
		} else {
			log.Warn("webhook event failed, will retry", "err", err)
		}
		return
	}
	if _, err := a.cfg.Store.WebhookDone(ctx, ev.ID, a.cfg.Worker, res); err != nil {
		log.Warn("webhook event applied but not marked", "err", err)
		return
	}
	log.Info("webhook applied", "written", res.Written, "deleted", res.Deleted, "older", res.Older,
		"refetched", res.Refetch, "api_calls", res.APICalls)
}

func (a *Applier) apply(ctx context.Context, ev store.WebhookEvent) (Result, error) {
	var res Result
	event := ""
	if len(ev.EventTypes) > 0 {
		event = ev.EventTypes[len(ev.EventTypes)-1]
	}
	d, err := Decode(ev.Body, event)
	if err != nil {
		return res, err
	}
	add := func(m map[string]int) {
		res.Written += m["written"]
		res.Deleted += m["deleted"]
		res.Older += m["older"]
	}
	if d.RemoveIDs != nil {
		m, err := a.remove(ctx, ev, event, d.RemoveIDs)
		if err != nil {
			return res, err
		}
		add(m)
	}
	for i, n := range d.Notifications {
		m, err := a.notification(ctx, ev, n, &res)
		if err != nil {
			return res, fmt.Errorf("Notifications[%d] (%s): %w", i, n.Type, err)
		}
		add(m)
	}
	return res, nil
}

func (a *Applier) remove(ctx context.Context, ev store.WebhookEvent, typ string, ids []int64) (map[string]int, error) {
	st := a.cfg.Store
	switch typ {
	case "product.delete":
		return st.ApplyWebhookProducts(ctx, ev.ID, ev.CredentialID, json.RawMessage(`[]`), ids)
	case "category.delete":
		return st.ApplyWebhookCategories(ctx, ev.ID, ev.CredentialID, json.RawMessage(`[]`), ids)
	case "branch.delete":
		return st.ApplyWebhookBranches(ctx, ev.ID, ev.CredentialID, json.RawMessage(`[]`), ids)
	case "pricebook.delete":
		return st.ApplyWebhookPriceBooks(ctx, ev.ID, ev.CredentialID, "delete", nil, ids)
	}
	return nil, nil
}

func (a *Applier) notification(ctx context.Context, ev store.WebhookEvent, n Notification, res *Result) (map[string]int, error) {
	st := a.cfg.Store
	switch n.Type {
	case "product.update":
		return a.products(ctx, ev, n.Data, res)
	case "stock.update":
		rows, err := stockRows(n.Data)
		if err != nil {
			return nil, err
		}
		return st.ApplyWebhookStock(ctx, ev.ID, ev.CredentialID, rows)
	case "category.update":
		rows, removed, err := categoryRows(n.Data)
		if err != nil {
			return nil, err
		}
		return st.ApplyWebhookCategories(ctx, ev.ID, ev.CredentialID, rows, removed)
	case "branch.update":
		rows, err := branchRows(n.Data)
		if err != nil {
			return nil, err
		}
		return st.ApplyWebhookBranches(ctx, ev.ID, ev.CredentialID, rows, nil)
	case "pricebookdetail.update", "pricebookdetail.delete":
		rows, err := priceRows(n.Data)
		if err != nil {
			return nil, err
		}
		return st.ApplyWebhookPriceBooks(ctx, ev.ID, ev.CredentialID, strings.TrimPrefix(n.Type, "pricebook"), rows, nil)
	case "product.delete", "category.delete", "branch.delete", "pricebook.delete":
		ids, err := idsOf(n.Data)
		if err != nil {
			return nil, err
		}
		return a.remove(ctx, ev, n.Type, ids)
	}
	// customer, order, invoice and pricebook.update (names only) are not kept by kvsync
	if !slices.Contains(res.Skipped, n.Type) {
		res.Skipped = append(res.Skipped, n.Type)
	}
	return nil, nil
}

// products applies product.update items. An item that is partial (no id, code or name) or inconsistent
// (real variant payloads carry another product's id in Inventories[].ProductId or
// Attributes[].ProductId) is re-read by id from KiotViet instead of being trusted.
func (a *Applier) products(ctx context.Context, ev store.WebhookEvent, data []json.RawMessage, res *Result) (map[string]int, error) {
	var good []kiotviet.Product
	var refetch []int64
	for i, raw := range data {
		var p kiotviet.Product
		if err := json.Unmarshal(raw, &p); err != nil {
			var probe struct {
				ID json.Number `json:"Id"`
			}
			if json.Unmarshal(raw, &probe) == nil {
				if id, err := strconv.ParseInt(probe.ID.String(), 10, 64); err == nil && id > 0 {
					refetch = append(refetch, id)
					continue
				}
			}
			return nil, fmt.Errorf("Data[%d] is not a product: %v", i, err)
		}
		if p.ID <= 0 {
			return nil, fmt.Errorf("Data[%d] has no product Id", i)
		}
		if !consistent(p) {
			refetch = append(refetch, p.ID)
			continue
		}
		good = append(good, p)
	}
	var gone []int64
	if len(refetch) > 0 {
		if a.cfg.Fetch == nil {
			return nil, errors.New("the payload is partial or inconsistent and no KiotViet client is configured to re-read it")
		}
		ps, g, calls, err := a.cfg.Fetch.FetchProducts(ctx, ev.CredentialID, refetch)
		res.APICalls += calls
		if err != nil {
			return nil, fmt.Errorf("re-reading products %v from KiotViet: %w", refetch, err)
		}
		res.Refetch += len(refetch)
		good = append(good, ps...)
		gone = g
	}
	rows, err := syncer.ProductRows(good)
	if err != nil {
		return nil, err
	}
	return a.cfg.Store.ApplyWebhookProducts(ctx, ev.ID, ev.CredentialID, rows, gone)
}

func consistent(p kiotviet.Product) bool {
	if p.Code == "" || p.Name == "" {
		return false
	}
	for _, v := range p.Inventories {
		if v.ProductID != 0 && v.ProductID != p.ID {
			return false
		}
	}
	for _, at := range p.Attributes {
		if at.ProductID != 0 && at.ProductID != p.ID {
			return false
		}
	}
	return true
}

// flexible scalars of webhook items: numbers may come as strings

type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("not a number")
	}
	*n = num(v)
	return nil
}

type when struct{ t *time.Time }

func (w *when) UnmarshalJSON(b []byte) error {
	var s string
	if string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a date must be a string")
	}
	if s == "" {
		return nil
	}
	t, err := kiotviet.ParseTime(s)
	if err != nil {
		return err
	}
	w.t = &t
	return nil
}

func (w when) MarshalJSON() ([]byte, error) {
	if w.t == nil {
		return []byte("null"), nil
	}
	return json.Marshal(w.t)
}

func stockRows(data []json.RawMessage) (json.RawMessage, error) {
	type entry struct {
		BranchID int64   `json:"branch_id"`
		OnHand   float64 `json:"on_hand"`
		Reserved float64 `json:"reserved"`
	}
	type row struct {
		ProductID int64   `json:"product_id"`
		Branches  []entry `json:"branches"`
	}
	var order []int64
	by := map[int64]*row{}
	for i, raw := range data {
		var it struct {
			ProductID num `json:"ProductId"`
			BranchID  num `json:"BranchId"`
			OnHand    num `json:"OnHand"`
			Reserved  num `json:"Reserved"`
		}
		if err := json.Unmarshal(raw, &it); err != nil || it.ProductID <= 0 || it.BranchID <= 0 {
			return nil, fmt.Errorf("Data[%d] must name ProductId and BranchId", i)
		}
		pid := int64(it.ProductID)
		r := by[pid]
		if r == nil {
			r = &row{ProductID: pid}
			by[pid] = r
			order = append(order, pid)
		}
		r.Branches = append(r.Branches, entry{BranchID: int64(it.BranchID), OnHand: float64(it.OnHand), Reserved: float64(it.Reserved)})
	}
	rows := make([]row, 0, len(order))
	for _, id := range order {
		rows = append(rows, *by[id])
	}
	return json.Marshal(rows)
}

func categoryRows(data []json.RawMessage) (json.RawMessage, []int64, error) {
	type row struct {
		ID           int64  `json:"id"`
		CategoryName string `json:"category_name"`
		ParentID     *int64 `json:"kiotviet_parent_id"`
		RetailerID   *int64 `json:"retailer_id"`
		HasChild     bool   `json:"has_child"`
		ModifiedDate when   `json:"modified_date"`
		CreatedDate  when   `json:"created_date"`
	}
	rows := []row{}
	removed := []int64{}
	for i, raw := range data {
		var it struct {
			ID           num    `json:"Id"`
			Name         string `json:"Name"`
			ParentID     num    `json:"ParentId"`
			RetailerID   num    `json:"RetailerId"`
			HasChild     bool   `json:"HasChild"`
			IsDeleted    bool   `json:"IsDeleted"`
			ModifiedDate when   `json:"ModifiedDate"`
			CreatedDate  when   `json:"CreatedDate"`
		}
		if err := json.Unmarshal(raw, &it); err != nil || it.ID <= 0 {
			return nil, nil, fmt.Errorf("Data[%d] must be a category with an Id", i)
		}
		if it.IsDeleted {
			removed = append(removed, int64(it.ID))
			continue
		}
		r := row{ID: int64(it.ID), CategoryName: it.Name, HasChild: it.HasChild, ModifiedDate: it.ModifiedDate, CreatedDate: it.CreatedDate}
		if it.ParentID > 0 {
			v := int64(it.ParentID)
			r.ParentID = &v
		}
		if it.RetailerID > 0 {
			v := int64(it.RetailerID)
			r.RetailerID = &v
		}
		rows = append(rows, r)
	}
	b, err := json.Marshal(rows)
	return b, removed, err
}

func branchRows(data []json.RawMessage) (json.RawMessage, error) {
	type row struct {
		ID           int64   `json:"id"`
		BranchName   string  `json:"branch_name"`
		Address      *string `json:"address"`
		IsActive     bool    `json:"is_active"`
		ModifiedDate when    `json:"modified_date"`
	}
	rows := []row{}
	for i, raw := range data {
		var it struct {
			ID           num     `json:"Id"`
			Name         string  `json:"Name"`
			Address      *string `json:"Address"`
			IsActive     *bool   `json:"IsActive"`
			ModifiedDate when    `json:"ModifiedDate"`
		}
		if err := json.Unmarshal(raw, &it); err != nil || it.ID <= 0 {
			return nil, fmt.Errorf("Data[%d] must be a branch with an Id", i)
		}
		rows = append(rows, row{ID: int64(it.ID), BranchName: it.Name, Address: it.Address,
			IsActive: it.IsActive == nil || *it.IsActive, ModifiedDate: it.ModifiedDate})
	}
	return json.Marshal(rows)
}

func priceRows(data []json.RawMessage) (json.RawMessage, error) {
	type row struct {
		PriceBookID int64   `json:"price_book_id"`
		ProductID   int64   `json:"product_id"`
		Price       float64 `json:"price"`
	}
	rows := []row{}
	for i, raw := range data {
		var it struct {
			PriceBookID num `json:"PriceBookId"`
			ProductID   num `json:"ProductId"`
			Price       num `json:"Price"`
		}
		if err := json.Unmarshal(raw, &it); err != nil || it.PriceBookID <= 0 || it.ProductID <= 0 {
			return nil, fmt.Errorf("Data[%d] must name PriceBookId and ProductId", i)
		}
		rows = append(rows, row{PriceBookID: int64(it.PriceBookID), ProductID: int64(it.ProductID), Price: float64(it.Price)})
	}
	return json.Marshal(rows)
}

func idsOf(data []json.RawMessage) ([]int64, error) {
	out := make([]int64, 0, len(data))
	for i, raw := range data {
		var v num
		if err := json.Unmarshal(raw, &v); err != nil || v <= 0 {
			// {"Id": n} objects as well as bare ids
			var it struct {
				ID num `json:"Id"`
			}
			if json.Unmarshal(raw, &it) != nil || it.ID <= 0 {
				return nil, fmt.Errorf("Data[%d] must be an id", i)
			}
			v = it.ID
		}
		out = append(out, int64(v))
	}
	return out, nil
}
