package syncer

import (
	"bytes"
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
	ID                   int64             `json:"id"`
	Code                 string            `json:"code"`
	Name                 string            `json:"name"`
	Barcode              *string           `json:"barcode"`
	FullName             *string           `json:"full_name"`
	Description          *string           `json:"description"`
	OrderTemplate        *string           `json:"order_template"`
	CategoryID           *int64            `json:"category_id"`
	CategoryName         *string           `json:"category_name"`
	TrademarkID          *int64            `json:"trademark_id"`
	TrademarkName        *string           `json:"trademark_name"`
	MasterCode           *string           `json:"master_code"`
	MasterProductID      *int64            `json:"master_product_id"`
	MasterUnitID         *int64            `json:"master_unit_id"`
	BasePrice            float64           `json:"base_price"`
	Weight               float64           `json:"weight"`
	MinStock             float64           `json:"min_stock"`
	MaxStock             float64           `json:"max_stock"`
	HasVariants          bool              `json:"has_variants"`
	AllowSale            bool              `json:"allow_sale"`
	IsActive             bool              `json:"is_active"`
	ProductType          int               `json:"product_type"`
	IsRewardPoint        bool              `json:"is_reward_point"`
	IsLotSerialControl   bool              `json:"is_lot_serial_control"`
	IsBatchExpireControl bool              `json:"is_batch_expire_control"`
	InventoryByBranch    []branchStock     `json:"inventory_by_branch"`
	Images               []string          `json:"images"`
	Attributes           any               `json:"attributes"`
	Units                []unitOut         `json:"units"`
	PriceBooks           []json.RawMessage `json:"price_books"`
	ProductFormulas      []json.RawMessage `json:"product_formulas"`
	ProductSerials       []json.RawMessage `json:"product_serials"`
	ProductBatchExpires  []json.RawMessage `json:"product_batch_expires"`
	ProductShelves       []json.RawMessage `json:"product_shelves"`
	ModifiedDate         *time.Time        `json:"modified_date"`
}

// defaultMaxStock is the ERP's column default: "no maximum".
const defaultMaxStock = 999999999

// productRowOf shapes one KiotViet product as a kiotviet_products_full row. The per-branch stock is
// built as the ERP reads it (snake_case, available = on hand − reserved, the shelf as location, the
// branch's min/max); min/max stock come from the first branch, as the earlier writer did, 0 meaning
// "not set". The include-only arrays keep KiotViet's own keys and gain the snake_case keys the ERP's
// tabs read (erp-contract §4.1), so both the ERP and anything reading the earlier raw arrays work.
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
	row := productRow{
		ID: p.ID, Code: p.Code, Name: p.Name,
		Barcode: str(p.Barcode), FullName: str(p.FullName), Description: str(p.Description),
		OrderTemplate: str(p.OrderTemplate), CategoryID: id(p.CategoryID), CategoryName: str(p.CategoryName),
		TrademarkID: id(p.TradeMarkID), TrademarkName: str(p.TradeMarkName),
		MasterCode: str(p.MasterCode), MasterProductID: id(p.MasterProductID), MasterUnitID: id(p.MasterUnitID),
		BasePrice: p.BasePrice, Weight: p.Weight, MinStock: minStock, MaxStock: maxStock,
		HasVariants: p.HasVariants, AllowSale: p.AllowsSale, IsActive: p.IsActive, ProductType: p.Type,
		IsRewardPoint: p.IsRewardPoint, IsLotSerialControl: p.IsLotSerialControl,
		IsBatchExpireControl: p.IsBatchExpireControl,
		InventoryByBranch:    inv, Images: p.Images, Attributes: attrs, Units: unitsOf(p),
		PriceBooks:          shape(p.PriceBooks, priceBookKeys),
		ProductFormulas:     shape(p.ProductFormulas, formulaKeys),
		ProductSerials:      shape(p.ProductSerials, serialKeys),
		ProductBatchExpires: shape(p.ProductBatchExpires, batchKeys),
		ProductShelves:      shape(p.ProductShelves, shelfKeys),
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

// erpKey is one key the ERP reads: filled from the first KiotViet field present (names matched in any
// case); a date is written as an ISO time with its +07:00 offset so the browser's Date parses it right.
type erpKey struct {
	name string
	from []string
	date bool
}

var (
	priceBookKeys = []erpKey{{name: "price_book_id", from: []string{"priceBookId", "id"}},
		{name: "price_book_name", from: []string{"priceBookName", "name"}}, {name: "price", from: []string{"price"}},
		{name: "is_active", from: []string{"isActive"}},
		{name: "from_date", from: []string{"startDate", "fromDate"}, date: true},
		{name: "to_date", from: []string{"endDate", "toDate"}, date: true}}
	formulaKeys = []erpKey{{name: "material_id", from: []string{"materialId", "productId", "id"}},
		{name: "component_code", from: []string{"materialCode", "code"}},
		{name: "product_name", from: []string{"materialFullName", "materialName", "fullName", "productName", "name"}},
		{name: "quantity", from: []string{"quantity"}}, {name: "unit", from: []string{"unit", "materialUnit"}}}
	serialKeys = []erpKey{{name: "serial_number", from: []string{"serialNumber", "serial"}},
		{name: "status", from: []string{"status"}}, {name: "branch_id", from: []string{"branchId"}},
		{name: "quantity", from: []string{"quantity"}}}
	batchKeys = []erpKey{{name: "batch_code", from: []string{"batchName", "batchCode", "fullNameVirgule"}},
		{name: "quantity", from: []string{"onHand", "quantity"}}, {name: "branch_id", from: []string{"branchId"}},
		{name: "manufacture_date", from: []string{"manufactureDate", "manufacturingDate"}, date: true},
		{name: "expiration_date", from: []string{"expireDate", "expirationDate", "expiryDate"}, date: true}}
	shelfKeys = []erpKey{{name: "branch_id", from: []string{"branchId"}}, {name: "branch_name", from: []string{"branchName"}},
		{name: "shelf_name", from: []string{"ProductShelves", "shelfName", "shelves", "name"}}}
)

// shape reads a KiotViet array (nil when the include was not asked for, or not sent) into elements that
// keep KiotViet's object as it came and gain the ERP's keys, appended to it (a key KiotViet already
// sends under the ERP's name is left as it is). Elements that are not objects are dropped; a key the ERP
// reads that KiotViet did not send is null, never invented. The values are copied as raw JSON, so
// numbers stay exact and nothing is decoded twice.
func shape(raw json.RawMessage, keys []erpKey) []json.RawMessage {
	out := []json.RawMessage{}
	if len(raw) == 0 {
		return out
	}
	// one pass when every element is an object (KiotViet's arrays), else element by element
	var objs []map[string]json.RawMessage
	if json.Unmarshal(raw, &objs) != nil {
		objs = objs[:0]
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return out
		}
		for _, it := range items {
			var obj map[string]json.RawMessage
			if it = bytes.TrimSpace(it); len(it) > 0 && it[0] == '{' && json.Unmarshal(it, &obj) == nil {
				objs = append(objs, obj)
			}
		}
	}
	for _, obj := range objs {
		if obj == nil {
			continue // a null element
		}
		var b bytes.Buffer
		b.Grow(64 * (len(obj) + len(keys)))
		b.WriteByte('{')
		sep := false
		field := func(k string, v json.RawMessage) {
			if sep {
				b.WriteByte(',')
			}
			sep = true
			writeKey(&b, k)
			b.WriteByte(':')
			b.Write(v)
		}
		for k, v := range obj {
			field(k, v)
		}
		for _, k := range keys {
			if _, ok := obj[k.name]; ok {
				continue
			}
			v := lookup(obj, k.from)
			if k.date {
				v = isoDate(v)
			}
			field(k.name, v)
		}
		b.WriteByte('}')
		out = append(out, b.Bytes())
	}
	return out
}

// writeKey writes k as a JSON string: as it is between quotes when it needs no escaping (KiotViet's
// keys are plain ASCII names), else through encoding/json.
func writeKey(b *bytes.Buffer, k string) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(k)
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(k)
	b.WriteByte('"')
}

var jsonNull = json.RawMessage("null")

// lookup returns the raw value of the first of names present and not null: exact names first, then in
// any case (KiotViet mixes ProductShelves and productShelves).
func lookup(obj map[string]json.RawMessage, names []string) json.RawMessage {
	for _, n := range names {
		if v, ok := obj[n]; ok && !bytes.Equal(v, jsonNull) {
			return v
		}
	}
	for _, n := range names {
		for k, v := range obj {
			if strings.EqualFold(k, n) && !bytes.Equal(v, jsonNull) {
				return v
			}
		}
	}
	return jsonNull
}

// isoDate turns a KiotViet date string into RFC 3339 with its offset; anything else stays as it is.
func isoDate(v json.RawMessage) json.RawMessage {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil || s == "" {
		return v
	}
	t, err := kiotviet.ParseTime(s)
	if err != nil {
		return v
	}
	out, _ := json.Marshal(t.In(kiotviet.VietnamZone()).Format(time.RFC3339Nano))
	return out
}

// unitOut is one selling unit as the units column holds it: KiotViet's keys and the ERP's.
type unitOut struct {
	ID              int64   `json:"id"`
	Code            string  `json:"code"`
	Name            string  `json:"name"`
	FullName        string  `json:"fullName"`
	Unit            string  `json:"unit"`
	ConversionValue float64 `json:"conversionValue"`
	BasePrice       float64 `json:"basePrice"`
	UnitName        string  `json:"unitName"`  // what the ERP's list reads (units[0].unitName)
	UnitNameSnake   string  `json:"unit_name"` // what its Advanced tab reads
	IsBaseUnit      bool    `json:"is_base_unit"`
	ConversionSnake float64 `json:"conversion_value"`
}

// unitsOf lists a product's selling units as the ERP reads them: the product's own unit first (the
// list shows units[0].unitName), then the other units KiotViet lists, each with unit_name,
// is_base_unit and conversion_value next to KiotViet's keys. A product with no unit and no units
// gets [].
func unitsOf(p kiotviet.Product) []unitOut {
	out := []unitOut{}
	unit := func(u kiotviet.ProductUnit, base bool) unitOut {
		return unitOut{ID: u.ID, Code: u.Code, Name: u.Name, FullName: u.FullName, Unit: u.Unit,
			ConversionValue: u.ConversionValue, BasePrice: u.BasePrice,
			UnitName: u.Unit, UnitNameSnake: u.Unit, IsBaseUnit: base, ConversionSnake: u.ConversionValue}
	}
	if p.Unit == "" && len(p.Units) == 0 {
		return out
	}
	conv := p.ConversionValue
	if conv == 0 {
		conv = 1
	}
	out = append(out, unit(kiotviet.ProductUnit{ID: p.ID, Code: p.Code, Name: p.Name, FullName: p.FullName, Unit: p.Unit,
		ConversionValue: conv, BasePrice: p.BasePrice}, p.MasterUnitID == 0))
	for _, u := range p.Units {
		if u.ID == p.ID {
			continue
		}
		out = append(out, unit(u, p.MasterUnitID != 0 && u.ID == p.MasterUnitID))
	}
	return out
}

// shelfByBranch reads productShelves entries ({branchId, ProductShelves}; names match in any case) into
// a location per branch; anything unexpected is ignored, never fatal.
func shelfByBranch(raw json.RawMessage) map[int64]string {
	if len(raw) == 0 {
		return nil
	}
	var items []struct {
		BranchID int64  `json:"branchId"`
		Shelves  string `json:"ProductShelves"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make(map[int64]string, len(items))
	for _, it := range items {
		if it.BranchID != 0 && it.Shelves != "" {
			out[it.BranchID] = it.Shelves
		}
	}
	return out
}

type categoryRow struct {
	ID               int64      `json:"id"`
	CategoryName     string     `json:"category_name"`
	KiotvietParentID *int64     `json:"kiotviet_parent_id"`
	RetailerID       *int64     `json:"retailer_id"`
	HasChild         bool       `json:"has_child"`
	IsDeleted        bool       `json:"is_deleted,omitempty"`
	ModifiedDate     *time.Time `json:"modified_date"`
	CreatedDate      *time.Time `json:"created_date"`
}

func categoryRowOf(c kiotviet.Category) categoryRow {
	return categoryRow{ID: c.ID, CategoryName: c.Name, KiotvietParentID: id(c.ParentID), RetailerID: id(c.RetailerID),
		HasChild: c.HasChild, IsDeleted: c.IsDeleted, ModifiedDate: tm(c.ModifiedDate), CreatedDate: tm(c.CreatedDate)}
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
	IsActive     bool       `json:"is_active"`
	ModifiedDate *time.Time `json:"modified_date"`
}

func branchRowOf(b kiotviet.Branch) branchRow {
	return branchRow{ID: b.ID, BranchName: b.BranchName, Address: str(b.Address), IsActive: b.IsActive,
		ModifiedDate: tm(b.ModifiedDate)}
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
