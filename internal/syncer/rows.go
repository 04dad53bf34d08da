package syncer

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// The shapes below are what the apply functions in supabase/migrations read: snake_case column names,
// JSON arrays as the ERP reads them (never JSON in a string).

type branchStock struct {
	BranchID   int64   `json:"branch_id"`
	BranchName string  `json:"branch_name"`
	OnHand     float64 `json:"on_hand"`
	Reserved   float64 `json:"reserved"`
	Available  float64 `json:"available"`
	MinQuality float64 `json:"min_quality"`
	MaxQuality float64 `json:"max_quality"`
	Location   *string `json:"location"`
}

type productRow struct {
	ID                   int64           `json:"id"`
	Code                 string          `json:"code"`
	Name                 string          `json:"name"`
	Barcode              *string         `json:"barcode"`
	FullName             *string         `json:"full_name"`
	Description          *string         `json:"description"`
	OrderTemplate        *string         `json:"order_template"`
	CategoryID           *int64          `json:"category_id"`
	CategoryName         *string         `json:"category_name"`
	TrademarkID          *int64          `json:"trademark_id"`
	TrademarkName        *string         `json:"trademark_name"`
	BasePrice            float64         `json:"base_price"`
	Weight               float64         `json:"weight"`
	MinStock             float64         `json:"min_stock"`
	MaxStock             float64         `json:"max_stock"`
	HasVariants          bool            `json:"has_variants"`
	AllowSale            bool            `json:"allow_sale"`
	IsActive             bool            `json:"is_active"`
	ProductType          int             `json:"product_type"`
	IsRewardPoint        bool            `json:"is_reward_point"`
	IsLotSerialControl   bool            `json:"is_lot_serial_control"`
	IsBatchExpireControl bool            `json:"is_batch_expire_control"`
	InventoryByBranch    []branchStock   `json:"inventory_by_branch"`
	Images               []string        `json:"images"`
	Attributes           any             `json:"attributes"`
	Units                any             `json:"units"`
	PriceBooks           json.RawMessage `json:"price_books,omitempty"`
	ProductFormulas      json.RawMessage `json:"product_formulas,omitempty"`
	ProductSerials       json.RawMessage `json:"product_serials,omitempty"`
	ProductBatchExpires  json.RawMessage `json:"product_batch_expires,omitempty"`
	ProductShelves       json.RawMessage `json:"product_shelves,omitempty"`
	ModifiedDate         *time.Time      `json:"modified_date"`
}

// defaultMaxStock is the ERP's column default: "no maximum".
const defaultMaxStock = 999999999

// productRowOf shapes one KiotViet product as a kiotviet_products_full row. The per-branch stock is
// built as the ERP reads it (snake_case, available = on hand − reserved, the shelf as location);
// min/max stock come from the first branch, as the earlier writer did, 0 meaning "not set".
func productRowOf(p kiotviet.Product) productRow {
	shelves := shelfByBranch(p.ProductShelves)
	inv := make([]branchStock, 0, len(p.Inventories))
	for _, v := range p.Inventories {
		b := branchStock{BranchID: v.BranchID, BranchName: v.BranchName, OnHand: v.OnHand, Reserved: v.Reserved,
			Available: v.OnHand - v.Reserved, MinQuality: v.MinQuantity, MaxQuality: v.MaxQuantity}
		if loc, ok := shelves[v.BranchID]; ok {
			b.Location = &loc
		}
		inv = append(inv, b)
	}
	minStock, maxStock := 0.0, float64(defaultMaxStock)
	if len(p.Inventories) > 0 {
		minStock = p.Inventories[0].MinQuantity
		if p.Inventories[0].MaxQuantity > 0 {
			maxStock = p.Inventories[0].MaxQuantity
		}
	}
	attrs := any(p.Attributes)
	if p.Attributes == nil {
		attrs = []any{}
	}
	units := any(p.Units)
	if p.Units == nil {
		units = []any{}
	}
	row := productRow{
		ID: p.ID, Code: p.Code, Name: p.Name,
		Barcode: str(p.Barcode), FullName: str(p.FullName), Description: str(p.Description),
		OrderTemplate: str(p.OrderTemplate), CategoryID: id(p.CategoryID), CategoryName: str(p.CategoryName),
		TrademarkID: id(p.TradeMarkID), TrademarkName: str(p.TradeMarkName),
		BasePrice: p.BasePrice, Weight: p.Weight, MinStock: minStock, MaxStock: maxStock,
		HasVariants: p.HasVariants, AllowSale: p.AllowsSale, IsActive: p.IsActive, ProductType: p.Type,
		IsRewardPoint: p.IsRewardPoint, IsLotSerialControl: p.IsLotSerialControl,
		IsBatchExpireControl: p.IsBatchExpireControl,
		InventoryByBranch:    inv, Images: p.Images, Attributes: attrs, Units: units,
		PriceBooks: arrayOrNil(p.PriceBooks), ProductFormulas: arrayOrNil(p.ProductFormulas),
		ProductSerials: arrayOrNil(p.ProductSerials), ProductBatchExpires: arrayOrNil(p.ProductBatchExpires),
		ProductShelves: arrayOrNil(p.ProductShelves),
	}
	if row.Images == nil {
		row.Images = []string{}
	}
	if !p.ModifiedDate.IsZero() {
		t := p.ModifiedDate
		row.ModifiedDate = &t
	}
	return row
}

// shelfByBranch reads productShelves entries ({branchId, ProductShelves|productShelves|shelfName}) into
// a location per branch; anything unexpected is ignored, never fatal.
func shelfByBranch(raw json.RawMessage) map[int64]string {
	if len(raw) == 0 {
		return nil
	}
	var items []map[string]any
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := map[int64]string{}
	for _, it := range items {
		var branch int64
		var shelf string
		for k, v := range it {
			switch strings.ToLower(k) {
			case "branchid":
				if f, ok := v.(float64); ok {
					branch = int64(f)
				}
			case "productshelves", "shelfname", "name":
				if s, ok := v.(string); ok && shelf == "" {
					shelf = s
				}
			}
		}
		if branch != 0 && shelf != "" {
			out[branch] = shelf
		}
	}
	return out
}

func arrayOrNil(raw json.RawMessage) json.RawMessage {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, "[") {
		return raw
	}
	return nil
}

type categoryRow struct {
	ID               int64      `json:"id"`
	CategoryName     string     `json:"category_name"`
	KiotvietParentID *int64     `json:"kiotviet_parent_id"`
	RetailerID       *int64     `json:"retailer_id"`
	HasChild         bool       `json:"has_child"`
	ModifiedDate     *time.Time `json:"modified_date"`
	CreatedDate      *time.Time `json:"created_date"`
}

func categoryRowOf(c kiotviet.Category) categoryRow {
	return categoryRow{ID: c.ID, CategoryName: c.Name, KiotvietParentID: id(c.ParentID), RetailerID: id(c.RetailerID),
		HasChild: c.HasChild, ModifiedDate: tm(c.ModifiedDate), CreatedDate: tm(c.CreatedDate)}
}

type stockRow struct {
	ProductID int64        `json:"product_id"`
	Branches  []stockEntry `json:"branches"`
}

type stockEntry struct {
	BranchID int64   `json:"branch_id"`
	OnHand   float64 `json:"on_hand"`
	Reserved float64 `json:"reserved"`
}

func stockRowOf(p kiotviet.ProductOnHand) stockRow {
	r := stockRow{ProductID: p.ID, Branches: make([]stockEntry, 0, len(p.Inventories))}
	for _, v := range p.Inventories {
		r.Branches = append(r.Branches, stockEntry{BranchID: v.BranchID, OnHand: v.OnHand, Reserved: v.Reserved})
	}
	return r
}

type branchRow struct {
	ID           int64      `json:"id"`
	BranchName   string     `json:"branch_name"`
	Address      *string    `json:"address"`
	ModifiedDate *time.Time `json:"modified_date"`
}

func branchRowOf(b kiotviet.Branch) branchRow {
	return branchRow{ID: b.ID, BranchName: b.BranchName, Address: str(b.Address), ModifiedDate: tm(b.ModifiedDate)}
}

type attributeRow struct {
	ID              int64                     `json:"id"`
	Name            string                    `json:"name"`
	AttributeValues []kiotviet.AttributeValue `json:"attribute_values"`
}

func attributeRowOf(a kiotviet.Attribute) attributeRow {
	vals := a.Values
	if vals == nil {
		vals = []kiotviet.AttributeValue{}
	}
	return attributeRow{ID: a.ID, Name: a.Name, AttributeValues: vals}
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func id(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func tm(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
