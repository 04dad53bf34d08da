package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// The earlier system's algorithm, rebuilt here as a baseline and nowhere else (it must never ship):
// every run pulls the whole catalogue, holds every page in memory, then upserts in batches of 500 with
// onConflict, always updating, with the JSON columns written as JSON strings (what JSON.stringify through
// supabase-js stored), and deletes nothing. It does the same work as kvsync's products_full sync: it
// fills kiotviet_products_full (as the earlier products_full sync did) and the categories,
// kiotviet_products and kiotviet_inventory (as the earlier `all` sync did, which took a second full pull
// there; here one pull feeds both, in the baseline's favour). It reads the same pages with the same client
// as kvsync, so the difference measured is the algorithm's.

// baselineBatch is supabase-js's batch size in the earlier function.
const baselineBatch = 500

// baselineRow is one kiotviet_products_full row as the earlier function sent it; the JSON columns are
// strings holding serialised JSON.
type baselineRow struct {
	ID                   int64   `json:"id"`
	Code                 string  `json:"code"`
	Name                 string  `json:"name"`
	Barcode              string  `json:"barcode"`
	FullName             string  `json:"full_name"`
	Description          string  `json:"description"`
	OrderTemplate        string  `json:"order_template"`
	CategoryID           int64   `json:"category_id"`
	CategoryName         string  `json:"category_name"`
	CategoryPath         string  `json:"category_path"`
	TrademarkID          int64   `json:"trademark_id"`
	TrademarkName        string  `json:"trademark_name"`
	BasePrice            float64 `json:"base_price"`
	TotalOnHand          float64 `json:"total_on_hand"`
	TotalReserved        float64 `json:"total_reserved"`
	TotalAvailable       float64 `json:"total_available"`
	Weight               float64 `json:"weight"`
	MinStock             float64 `json:"min_stock"`
	MaxStock             float64 `json:"max_stock"`
	HasVariants          bool    `json:"has_variants"`
	AllowSale            bool    `json:"allow_sale"`
	IsActive             bool    `json:"is_active"`
	ProductType          int     `json:"product_type"`
	IsRewardPoint        bool    `json:"is_reward_point"`
	IsLotSerialControl   bool    `json:"is_lot_serial_control"`
	IsBatchExpireControl bool    `json:"is_batch_expire_control"`
	InventoryByBranch    string  `json:"inventory_by_branch"`
	Images               string  `json:"images"`
	Attributes           string  `json:"attributes"`
	Units                string  `json:"units"`
	PriceBooks           string  `json:"price_books"`
	ProductFormulas      string  `json:"product_formulas"`
	ProductSerials       string  `json:"product_serials"`
	ProductBatchExpires  string  `json:"product_batch_expires"`
	ProductShelves       string  `json:"product_shelves"`
	SyncedAt             string  `json:"synced_at"`
}

// baselineUpsert is the statement PostgREST runs for a supabase-js upsert with onConflict 'id': one
// insert of the whole batch from its JSON body, every column updated on conflict.
const baselineUpsert = `insert into public.kiotviet_products_full as t (id, code, name, barcode, full_name,
  description, order_template, category_id, category_name, category_path, trademark_id, trademark_name,
  base_price, total_on_hand, total_reserved, total_available, weight, min_stock, max_stock, has_variants,
  allow_sale, is_active, product_type, is_reward_point, is_lot_serial_control, is_batch_expire_control,
  inventory_by_branch, images, attributes, units, price_books, product_formulas, product_serials,
  product_batch_expires, product_shelves, synced_at)
select id, code, name, barcode, full_name, description, order_template, category_id, category_name,
  category_path, trademark_id, trademark_name, base_price, total_on_hand, total_reserved, total_available,
  weight, min_stock, max_stock, has_variants, allow_sale, is_active, product_type, is_reward_point,
  is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images, attributes, units, price_books,
  product_formulas, product_serials, product_batch_expires, product_shelves, synced_at
from jsonb_populate_recordset(null::public.kiotviet_products_full, $1::jsonb)
on conflict (id) do update set
  code = excluded.code, name = excluded.name, barcode = excluded.barcode, full_name = excluded.full_name,
  description = excluded.description, order_template = excluded.order_template,
  category_id = excluded.category_id, category_name = excluded.category_name,
  category_path = excluded.category_path, trademark_id = excluded.trademark_id,
  trademark_name = excluded.trademark_name, base_price = excluded.base_price,
  total_on_hand = excluded.total_on_hand, total_reserved = excluded.total_reserved,
  total_available = excluded.total_available, weight = excluded.weight, min_stock = excluded.min_stock,
  max_stock = excluded.max_stock, has_variants = excluded.has_variants, allow_sale = excluded.allow_sale,
  is_active = excluded.is_active, product_type = excluded.product_type,
  is_reward_point = excluded.is_reward_point, is_lot_serial_control = excluded.is_lot_serial_control,
  is_batch_expire_control = excluded.is_batch_expire_control,
  inventory_by_branch = excluded.inventory_by_branch, images = excluded.images,
  attributes = excluded.attributes, units = excluded.units, price_books = excluded.price_books,
  product_formulas = excluded.product_formulas, product_serials = excluded.product_serials,
  product_batch_expires = excluded.product_batch_expires, product_shelves = excluded.product_shelves,
  synced_at = excluded.synced_at`

// childBaseline runs the earlier algorithm once.
func childBaseline(ctx context.Context, spec Spec) (f Figures, err error) {
	pool, err := connect(ctx, spec.DatabaseURL, 2)
	if err != nil {
		return f, err
	}
	defer pool.Close()
	cfg := kiotvietConfig(spec)
	client := kiotviet.New(cfg, spec.Retailer, kiotviet.NewTokenSource(cfg, credentials(spec)))
	start := time.Now()
	defer func() { f.WallNS, f.ClientCalls, f.Mode = int64(time.Since(start)), client.Calls(), "full pull" }()

	// Categories, only to denormalise names and paths.
	cats := map[int64]kiotviet.Category{}
	cp := client.Categories(kiotviet.ListOptions{PageSize: kiotviet.MaxPageSize})
	for cp.Next(ctx) {
		for _, c := range cp.Page().Items {
			cats[c.ID] = c
		}
	}
	if err := cp.Err(); err != nil {
		return f, err
	}
	// Every page, held until the last one arrived.
	var products []kiotviet.Product
	pp := client.Products(fullPassOptions())
	for pp.Next(ctx) {
		products = append(products, pp.Page().Items...)
	}
	if err := pp.Err(); err != nil {
		return f, err
	}
	f.Items = len(products)
	// Then every row, then the writes.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	rows := make([]baselineRow, len(products))
	for i, p := range products {
		rows[i] = baselineRowOf(p, cats, now)
	}
	for lo := 0; lo < len(rows); lo += baselineBatch {
		body, err := json.Marshal(rows[lo:min(lo+baselineBatch, len(rows))])
		if err != nil {
			return f, err
		}
		tag, err := pool.Exec(ctx, baselineUpsert, string(body))
		if err != nil {
			return f, fmt.Errorf("upsert batch at %d: %w", lo, err)
		}
		f.Rows += int(tag.RowsAffected())
	}
	n, err := baselineLegacy(ctx, pool, cats, products, now)
	f.Rows += n
	return f, err
}

// The earlier `all` sync's upserts of the legacy tables, same batches, same JSON-as-string columns.
const (
	baselineCategories = `insert into public.kiotviet_categories as t (id, category_name, retailer_id, has_child,
  modified_date, created_date, synced_at)
select id, category_name, retailer_id, has_child, modified_date, created_date, synced_at
from jsonb_populate_recordset(null::public.kiotviet_categories, $1::jsonb)
on conflict (id) do update set category_name = excluded.category_name, retailer_id = excluded.retailer_id,
  has_child = excluded.has_child, modified_date = excluded.modified_date, created_date = excluded.created_date,
  synced_at = excluded.synced_at`
	baselineCategoryParents = `update public.kiotviet_categories c set parent_id = (e ->> 'parent_id')::bigint
from jsonb_array_elements($1::jsonb) e where c.id = (e ->> 'id')::bigint and (e ->> 'parent_id') is not null`
	baselineProducts = `insert into public.kiotviet_products as t (id, code, barcode, name, category_id, full_name,
  description, base_price, has_variants, allow_sale, is_active, images, attributes, units, product_type, synced_at)
select id, code, barcode, name, category_id, full_name, description, base_price, has_variants, allow_sale,
  is_active, images, attributes, units, product_type, synced_at
from jsonb_populate_recordset(null::public.kiotviet_products, $1::jsonb)
on conflict (id) do update set code = excluded.code, barcode = excluded.barcode, name = excluded.name,
  category_id = excluded.category_id, full_name = excluded.full_name, description = excluded.description,
  base_price = excluded.base_price, has_variants = excluded.has_variants, allow_sale = excluded.allow_sale,
  is_active = excluded.is_active, images = excluded.images, attributes = excluded.attributes,
  units = excluded.units, product_type = excluded.product_type, synced_at = excluded.synced_at`
	baselineInventory = `insert into public.kiotviet_inventory as t (product_id, branch_id, branch_name, on_hand,
  reserved, available, synced_at)
select product_id, branch_id, branch_name, on_hand, reserved, available, synced_at
from jsonb_populate_recordset(null::public.kiotviet_inventory, $1::jsonb)
on conflict (product_id, branch_id) do update set branch_name = excluded.branch_name, on_hand = excluded.on_hand,
  reserved = excluded.reserved, available = excluded.available, synced_at = excluded.synced_at`
)

func baselineLegacy(ctx context.Context, pool interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, cats map[int64]kiotviet.Category, products []kiotviet.Product, now string) (int, error) {
	written := 0
	batches := func(stmt string, rows []map[string]any) error {
		for lo := 0; lo < len(rows); lo += baselineBatch {
			body, err := json.Marshal(rows[lo:min(lo+baselineBatch, len(rows))])
			if err != nil {
				return err
			}
			tag, err := pool.Exec(ctx, stmt, string(body))
			if err != nil {
				return fmt.Errorf("baseline upsert: %w", err)
			}
			written += int(tag.RowsAffected())
		}
		return nil
	}
	var catRows []map[string]any
	for _, c := range cats {
		r := map[string]any{"id": c.ID, "category_name": c.Name, "retailer_id": c.RetailerID, "has_child": c.HasChild,
			"modified_date": c.ModifiedDate, "created_date": c.CreatedDate, "synced_at": now}
		if c.ParentID != 0 {
			r["parent_id"] = c.ParentID
		}
		catRows = append(catRows, r)
	}
	if err := batches(baselineCategories, catRows); err != nil {
		return written, err
	}
	if err := batches(baselineCategoryParents, catRows); err != nil {
		return written, err
	}
	prodRows := make([]map[string]any, 0, len(products))
	var invRows []map[string]any
	for _, p := range products {
		r := map[string]any{"id": p.ID, "code": p.Code, "barcode": p.Barcode, "name": p.Name, "full_name": p.FullName,
			"description": p.Description, "base_price": p.BasePrice, "has_variants": p.HasVariants,
			"allow_sale": p.AllowsSale, "is_active": p.IsActive, "images": stringify(p.Images),
			"attributes": stringify(p.Attributes), "units": stringify(p.Units), "product_type": p.Type, "synced_at": now}
		if _, ok := cats[p.CategoryID]; ok {
			r["category_id"] = p.CategoryID
		}
		prodRows = append(prodRows, r)
		for _, v := range p.Inventories {
			invRows = append(invRows, map[string]any{"product_id": p.ID, "branch_id": v.BranchID, "branch_name": v.BranchName,
				"on_hand": v.OnHand, "reserved": v.Reserved, "available": v.OnHand - v.Reserved, "synced_at": now})
		}
	}
	if err := batches(baselineProducts, prodRows); err != nil {
		return written, err
	}
	err := batches(baselineInventory, invRows)
	return written, err
}

func baselineRowOf(p kiotviet.Product, cats map[int64]kiotviet.Category, now string) baselineRow {
	type stock struct {
		BranchID   int64   `json:"branch_id"`
		BranchName string  `json:"branch_name"`
		OnHand     float64 `json:"on_hand"`
		Reserved   float64 `json:"reserved"`
		Available  float64 `json:"available"`
	}
	r := baselineRow{ID: p.ID, Code: p.Code, Name: p.Name, Barcode: p.Barcode, FullName: p.FullName,
		Description: p.Description, OrderTemplate: p.OrderTemplate, CategoryID: p.CategoryID,
		TrademarkID: p.TradeMarkID, TrademarkName: p.TradeMarkName, BasePrice: p.BasePrice, Weight: p.Weight,
		MaxStock: 999999999, HasVariants: p.HasVariants, AllowSale: p.AllowsSale, IsActive: p.IsActive,
		ProductType: p.Type, IsRewardPoint: p.IsRewardPoint, IsLotSerialControl: p.IsLotSerialControl,
		IsBatchExpireControl: p.IsBatchExpireControl, SyncedAt: now}
	if c, ok := cats[p.CategoryID]; ok {
		r.CategoryName = c.Name
		var names []string
		for seen := 0; ok && seen < 10; seen++ {
			names = append([]string{c.Name}, names...)
			c, ok = cats[c.ParentID]
		}
		r.CategoryPath = strings.Join(names, " > ")
	}
	inv := make([]stock, 0, len(p.Inventories))
	for _, v := range p.Inventories {
		inv = append(inv, stock{v.BranchID, v.BranchName, v.OnHand, v.Reserved, v.OnHand - v.Reserved})
		r.TotalOnHand += v.OnHand
		r.TotalReserved += v.Reserved
	}
	r.TotalAvailable = r.TotalOnHand - r.TotalReserved
	if len(p.Inventories) > 0 {
		r.MinStock = p.Inventories[0].MinQuantity
	}
	r.InventoryByBranch = stringify(inv)
	r.Images = stringify(p.Images)
	r.Attributes = stringify(p.Attributes)
	r.Units = stringify(p.Units)
	r.PriceBooks = stringify(p.PriceBooks)
	r.ProductFormulas = stringify(p.ProductFormulas)
	r.ProductSerials = stringify(p.ProductSerials)
	r.ProductBatchExpires = stringify(p.ProductBatchExpires)
	r.ProductShelves = stringify(p.ProductShelves)
	return r
}

// stringify is JSON.stringify(v || []): the text of the JSON, to be stored as a JSON string.
func stringify(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || len(b) == 0 {
		return "[]"
	}
	return string(b)
}
