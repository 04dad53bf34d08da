package kiotviet

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// The entity types below decode KiotViet's JSON tolerantly (absent and null
// fields are zero, numbers may be strings, field names match in any case so
// REST camelCase and webhook PascalCase both work) and encode back with
// KiotViet's camelCase keys, so the raw-array columns the ERP reads keep
// their keys.

// Category is one product category. ParentID is 0 for a root. Children is
// filled only when the list was asked for with HierachicalData. IsDeleted
// (webhooks and some lists send it) marks a category KiotViet deleted.
type Category struct {
	ID           int64      `json:"categoryId"`
	ParentID     int64      `json:"parentId,omitempty"`
	Name         string     `json:"categoryName"`
	HasChild     bool       `json:"hasChild"`
	IsDeleted    bool       `json:"isDeleted,omitempty"`
	RetailerID   int64      `json:"retailerId,omitempty"`
	Rank         int64      `json:"rank,omitempty"`
	ModifiedDate time.Time  `json:"modifiedDate"`
	CreatedDate  time.Time  `json:"createdDate"`
	Children     []Category `json:"children,omitempty"`
}

// UnmarshalJSON decodes a category from REST (categoryId/categoryName) or
// webhook (Id/Name) shapes.
func (c *Category) UnmarshalJSON(b []byte) error {
	var w struct {
		CategoryID   flexInt    `json:"categoryId"`
		ID           flexInt    `json:"id"`
		ParentID     flexInt    `json:"parentId"`
		CategoryName flexString `json:"categoryName"`
		Name         flexString `json:"name"`
		HasChild     flexBool   `json:"hasChild"`
		IsDeleted    flexBool   `json:"isDeleted"`
		RetailerID   flexInt    `json:"retailerId"`
		Rank         flexInt    `json:"rank"`
		ModifiedDate flexTime   `json:"modifiedDate"`
		CreatedDate  flexTime   `json:"createdDate"`
		Children     []Category `json:"children"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Category{
		ID:           pickInt(w.CategoryID, w.ID),
		ParentID:     w.ParentID.V,
		Name:         pickString(w.CategoryName, w.Name),
		HasChild:     w.HasChild.V || len(w.Children) > 0,
		IsDeleted:    w.IsDeleted.V,
		RetailerID:   w.RetailerID.V,
		Rank:         w.Rank.V,
		ModifiedDate: w.ModifiedDate.V,
		CreatedDate:  w.CreatedDate.V,
		Children:     w.Children,
	}
	return nil
}

// ProductAttribute is one variant attribute of a product row, e.g.
// {"attributeName": "Màu sắc", "attributeValue": "Đỏ"}. The ERP's attribute
// filter matches on exactly these two keys.
type ProductAttribute struct {
	ProductID      int64  `json:"productId,omitempty"`
	AttributeName  string `json:"attributeName"`
	AttributeValue string `json:"attributeValue"`
}

// attributeWire is a product attribute as KiotViet sends it.
type attributeWire struct {
	ProductID      flexInt    `json:"productId"`
	AttributeName  flexString `json:"attributeName"`
	AttributeValue flexString `json:"attributeValue"`
}

func (w *attributeWire) attribute() ProductAttribute {
	return ProductAttribute{ProductID: w.ProductID.V, AttributeName: w.AttributeName.V, AttributeValue: w.AttributeValue.V}
}

// UnmarshalJSON decodes an attribute tolerantly.
func (a *ProductAttribute) UnmarshalJSON(b []byte) error {
	var w attributeWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = w.attribute()
	return nil
}

// ProductUnit is one selling unit of a product (a unit conversion is its
// own product row; this list links the rows).
type ProductUnit struct {
	ID              int64   `json:"id"`
	Code            string  `json:"code,omitempty"`
	Name            string  `json:"name,omitempty"`
	FullName        string  `json:"fullName,omitempty"`
	Unit            string  `json:"unit,omitempty"`
	ConversionValue float64 `json:"conversionValue"`
	BasePrice       float64 `json:"basePrice"`
}

// unitWire is a product unit as KiotViet sends it.
type unitWire struct {
	ID              flexInt    `json:"id"`
	Code            flexString `json:"code"`
	Name            flexString `json:"name"`
	FullName        flexString `json:"fullName"`
	Unit            flexString `json:"unit"`
	ConversionValue flexFloat  `json:"conversionValue"`
	BasePrice       flexFloat  `json:"basePrice"`
}

func (w *unitWire) unit() ProductUnit {
	return ProductUnit{ID: w.ID.V, Code: w.Code.V, Name: w.Name.V, FullName: w.FullName.V, Unit: w.Unit.V,
		ConversionValue: w.ConversionValue.V, BasePrice: w.BasePrice.V}
}

// UnmarshalJSON decodes a unit tolerantly.
func (u *ProductUnit) UnmarshalJSON(b []byte) error {
	var w unitWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*u = w.unit()
	return nil
}

// ProductInventory is a product's stock at one branch, from /products
// (includeInventory=true) or /productOnHands (which sends only branchId,
// onHand and reserved). MinQuantity/MaxQuantity also accept the documented
// misspellings minQuality/maxQuality.
type ProductInventory struct {
	ProductID      int64   `json:"productId,omitempty"`
	ProductCode    string  `json:"productCode,omitempty"`
	ProductName    string  `json:"productName,omitempty"`
	BranchID       int64   `json:"branchId"`
	BranchName     string  `json:"branchName,omitempty"`
	Cost           float64 `json:"cost"`
	OnHand         float64 `json:"onHand"`
	Reserved       float64 `json:"reserved"`
	ActualReserved float64 `json:"actualReserved"`
	OnOrder        float64 `json:"onOrder"`
	MinQuantity    float64 `json:"minQuantity"`
	MaxQuantity    float64 `json:"maxQuantity"`
	IsActive       bool    `json:"isActive"`
}

// inventoryWire is a stock entry as KiotViet sends it (onhand and onHand
// both decode, because field names match in any case).
type inventoryWire struct {
	ProductID      flexInt    `json:"productId"`
	ProductCode    flexString `json:"productCode"`
	ProductName    flexString `json:"productName"`
	BranchID       flexInt    `json:"branchId"`
	BranchName     flexString `json:"branchName"`
	Cost           flexFloat  `json:"cost"`
	OnHand         flexFloat  `json:"onHand"`
	Reserved       flexFloat  `json:"reserved"`
	ActualReserved flexFloat  `json:"actualReserved"`
	OnOrder        flexFloat  `json:"onOrder"`
	MinQuantity    flexFloat  `json:"minQuantity"`
	MaxQuantity    flexFloat  `json:"maxQuantity"`
	MinQuality     flexFloat  `json:"minQuality"`
	MaxQuality     flexFloat  `json:"maxQuality"`
	IsActive       flexBool   `json:"isActive"`
}

func (w *inventoryWire) inventory() ProductInventory {
	return ProductInventory{
		ProductID: w.ProductID.V, ProductCode: w.ProductCode.V, ProductName: w.ProductName.V,
		BranchID: w.BranchID.V, BranchName: w.BranchName.V,
		Cost: w.Cost.V, OnHand: w.OnHand.V, Reserved: w.Reserved.V, ActualReserved: w.ActualReserved.V,
		OnOrder:     w.OnOrder.V,
		MinQuantity: pickFloat(w.MinQuantity, w.MinQuality),
		MaxQuantity: pickFloat(w.MaxQuantity, w.MaxQuality),
		IsActive:    !w.IsActive.Set || w.IsActive.V,
	}
}

// UnmarshalJSON decodes an inventory entry tolerantly.
func (v *ProductInventory) UnmarshalJSON(b []byte) error {
	var w inventoryWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*v = w.inventory()
	return nil
}

// each converts decoded wire entries (nil stays nil).
func each[W, T any](ws []W, conv func(*W) T) []T {
	if ws == nil {
		return nil
	}
	out := make([]T, len(ws))
	for i := range ws {
		out[i] = conv(&ws[i])
	}
	return out
}

// Product is one product row. Variants and unit conversions are rows of
// their own, linked by MasterProductID and MasterUnitID. The include-only
// collections kvsync stores verbatim are kept as raw JSON arrays (nil when
// absent). Absent isActive/allowsSale read as true and an absent type as 2
// (normal), the ERP's column defaults: a missing flag is not a deactivation.
// Likewise an absent isRewardPoint reads as true (the ERP's default; real
// lists without includes leave it out), absent lot/batch flags as false.
// A deleted product's code comes back renamed with a "{DEL}" suffix
// (Deleted reports it).
type Product struct {
	ID                   int64              `json:"id"`
	Code                 string             `json:"code"`
	Barcode              string             `json:"barCode,omitempty"`
	RetailerID           int64              `json:"retailerId,omitempty"`
	Name                 string             `json:"name"`
	FullName             string             `json:"fullName,omitempty"`
	Description          string             `json:"description,omitempty"`
	OrderTemplate        string             `json:"orderTemplate,omitempty"`
	CategoryID           int64              `json:"categoryId,omitempty"`
	CategoryName         string             `json:"categoryName,omitempty"`
	TradeMarkID          int64              `json:"tradeMarkId,omitempty"`
	TradeMarkName        string             `json:"tradeMarkName,omitempty"`
	MasterProductID      int64              `json:"masterProductId,omitempty"`
	MasterUnitID         int64              `json:"masterUnitId,omitempty"`
	MasterCode           string             `json:"masterCode,omitempty"`
	Unit                 string             `json:"unit,omitempty"`
	ConversionValue      float64            `json:"conversionValue"`
	BasePrice            float64            `json:"basePrice"`
	Weight               float64            `json:"weight"`
	MinQuantity          float64            `json:"minQuantity"`
	MaxQuantity          float64            `json:"maxQuantity"`
	HasVariants          bool               `json:"hasVariants"`
	AllowsSale           bool               `json:"allowsSale"`
	IsActive             bool               `json:"isActive"`
	IsRewardPoint        bool               `json:"isRewardPoint"`
	IsLotSerialControl   bool               `json:"isLotSerialControl"`
	IsBatchExpireControl bool               `json:"isBatchExpireControl"`
	Type                 int                `json:"type"`
	Images               []string           `json:"images"`
	Attributes           []ProductAttribute `json:"attributes"`
	Units                []ProductUnit      `json:"units"`
	Inventories          []ProductInventory `json:"inventories"`
	PriceBooks           json.RawMessage    `json:"priceBooks,omitempty"`
	ProductFormulas      json.RawMessage    `json:"productFormulas,omitempty"`
	ProductSerials       json.RawMessage    `json:"productSerials,omitempty"`
	ProductBatchExpires  json.RawMessage    `json:"productBatchExpires,omitempty"`
	ProductWarranties    json.RawMessage    `json:"productWarranties,omitempty"`
	ProductShelves       json.RawMessage    `json:"productShelves,omitempty"`
	TaxType              string             `json:"taxType,omitempty"`
	TaxRate              float64            `json:"taxRate,omitempty"`
	TaxRateDirect        float64            `json:"taxRateDirect,omitempty"`
	ModifiedDate         time.Time          `json:"modifiedDate"`
	CreatedDate          time.Time          `json:"createdDate"`
}

// DeletedCodeSuffix is what KiotViet appends to a deleted product's code.
const DeletedCodeSuffix = "{DEL}"

// Deleted reports whether KiotViet renamed the product's code as deleted.
func (p Product) Deleted() bool { return strings.HasSuffix(p.Code, DeletedCodeSuffix) }

// productWire is a product as KiotViet sends it, REST or webhook shape. A list page decodes its
// products straight into this form (decodePage): encoding/json validates the bytes it hands an
// UnmarshalJSON method, so a product decoded through Product's method, its branches, units and
// attributes through theirs, would have each byte of a page scanned three or four times over.
type productWire struct {
	ID                   flexInt         `json:"id"`
	Code                 flexString      `json:"code"`
	BarCode              flexString      `json:"barCode"`
	RetailerID           flexInt         `json:"retailerId"`
	Name                 flexString      `json:"name"`
	FullName             flexString      `json:"fullName"`
	Description          flexString      `json:"description"`
	OrderTemplate        flexString      `json:"orderTemplate"`
	CategoryID           flexInt         `json:"categoryId"`
	CategoryName         flexString      `json:"categoryName"`
	TradeMarkID          flexInt         `json:"tradeMarkId"`
	TradeMarkName        flexString      `json:"tradeMarkName"`
	MasterProductID      flexInt         `json:"masterProductId"`
	MasterUnitID         flexInt         `json:"masterUnitId"`
	MasterCode           flexString      `json:"masterCode"`
	Unit                 flexString      `json:"unit"`
	ConversionValue      flexFloat       `json:"conversionValue"`
	BasePrice            flexFloat       `json:"basePrice"`
	Weight               flexFloat       `json:"weight"`
	MinQuantity          flexFloat       `json:"minQuantity"`
	MaxQuantity          flexFloat       `json:"maxQuantity"`
	HasVariants          flexBool        `json:"hasVariants"`
	AllowsSale           flexBool        `json:"allowsSale"`
	IsActive             flexBool        `json:"isActive"`
	IsRewardPoint        flexBool        `json:"isRewardPoint"`
	IsLotSerialControl   flexBool        `json:"isLotSerialControl"`
	IsBatchExpireControl flexBool        `json:"isBatchExpireControl"`
	Type                 flexInt         `json:"type"`
	Images               images          `json:"images"`
	Attributes           []attributeWire `json:"attributes"`
	Units                []unitWire      `json:"units"`
	Inventories          []inventoryWire `json:"inventories"`
	PriceBooks           rawArray        `json:"priceBooks"`
	ProductFormulas      rawArray        `json:"productFormulas"`
	ProductSerials       rawArray        `json:"productSerials"`
	Serials              rawArray        `json:"serials"`
	ProductBatchExpires  rawArray        `json:"productBatchExpires"`
	ProductWarranties    rawArray        `json:"productWarranties"`
	ProductShelves       rawArray        `json:"productShelves"`
	TaxType              flexString      `json:"taxType"`
	TaxRate              flexFloat       `json:"taxRate"`
	TaxRateDirect        flexFloat       `json:"taxRateDirect"`
	ModifiedDate         flexTime        `json:"modifiedDate"`
	CreatedDate          flexTime        `json:"createdDate"`
}

// UnmarshalJSON decodes a product from the REST or the webhook shape.
func (p *Product) UnmarshalJSON(b []byte) error {
	var w productWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = w.product()
	return nil
}

func (w *productWire) product() Product {
	typ := 2
	if w.Type.Set {
		typ = int(w.Type.V)
	}
	serials := w.ProductSerials
	if serials == nil {
		serials = w.Serials
	}
	return Product{
		ID: w.ID.V, Code: w.Code.V, Barcode: w.BarCode.V, RetailerID: w.RetailerID.V,
		Name: w.Name.V, FullName: w.FullName.V, Description: w.Description.V, OrderTemplate: w.OrderTemplate.V,
		CategoryID: w.CategoryID.V, CategoryName: w.CategoryName.V,
		TradeMarkID: w.TradeMarkID.V, TradeMarkName: w.TradeMarkName.V,
		MasterProductID: w.MasterProductID.V, MasterUnitID: w.MasterUnitID.V, MasterCode: w.MasterCode.V,
		Unit: w.Unit.V, ConversionValue: w.ConversionValue.V,
		BasePrice: w.BasePrice.V, Weight: w.Weight.V,
		MinQuantity: w.MinQuantity.V, MaxQuantity: w.MaxQuantity.V,
		HasVariants:          w.HasVariants.V,
		AllowsSale:           !w.AllowsSale.Set || w.AllowsSale.V,
		IsActive:             !w.IsActive.Set || w.IsActive.V,
		IsRewardPoint:        !w.IsRewardPoint.Set || w.IsRewardPoint.V,
		IsLotSerialControl:   w.IsLotSerialControl.V,
		IsBatchExpireControl: w.IsBatchExpireControl.V,
		Type:                 typ,
		Images:               w.Images,
		Attributes:           each(w.Attributes, (*attributeWire).attribute),
		Units:                each(w.Units, (*unitWire).unit),
		Inventories:          each(w.Inventories, (*inventoryWire).inventory),
		PriceBooks:           json.RawMessage(w.PriceBooks),
		ProductFormulas:      json.RawMessage(w.ProductFormulas),
		ProductSerials:       json.RawMessage(serials),
		ProductBatchExpires:  json.RawMessage(w.ProductBatchExpires),
		ProductWarranties:    json.RawMessage(w.ProductWarranties),
		ProductShelves:       json.RawMessage(w.ProductShelves),
		TaxType:              w.TaxType.V,
		TaxRate:              w.TaxRate.V,
		TaxRateDirect:        w.TaxRateDirect.V,
		ModifiedDate:         w.ModifiedDate.V,
		CreatedDate:          w.CreatedDate.V,
	}
}

// images decodes product images given as URL strings (what real data
// holds) or as objects such as {"Image": url} (what the list docs and
// webhooks show); entries without a URL are dropped.
type images []string

func (im *images) UnmarshalJSON(b []byte) error {
	*im = nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var items []json.RawMessage
	if b[0] == '[' {
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
	} else {
		items = []json.RawMessage{b}
	}
	for _, it := range items {
		if u := imageURL(it); u != "" {
			*im = append(*im, u)
		}
	}
	return nil
}

// imageURL reads one image entry: a string, or an object's image/url/path.
func imageURL(b json.RawMessage) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			return strings.TrimSpace(s)
		}
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return ""
		}
		for _, key := range []string{"image", "url", "path", "src"} {
			for k, v := range m {
				if strings.EqualFold(k, key) {
					var s string
					if json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) != "" {
						return strings.TrimSpace(s)
					}
				}
			}
		}
	}
	return ""
}

// ProductOnHand is one row of /productOnHands: a product's stock per branch
// with the stock's own modified date (which moves when stock moves, unlike
// the product's).
type ProductOnHand struct {
	ID           int64              `json:"id"`
	Code         string             `json:"code,omitempty"`
	CreatedDate  time.Time          `json:"createdDate"`
	ModifiedDate time.Time          `json:"modifiedDate"`
	Inventories  []ProductInventory `json:"inventories"`
}

// UnmarshalJSON decodes a stock row tolerantly.
func (p *ProductOnHand) UnmarshalJSON(b []byte) error {
	var w struct {
		ID           flexInt         `json:"id"`
		ProductID    flexInt         `json:"productId"`
		Code         flexString      `json:"code"`
		CreatedDate  flexTime        `json:"createdDate"`
		ModifiedDate flexTime        `json:"modifiedDate"`
		Inventories  []inventoryWire `json:"inventories"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = ProductOnHand{ID: pickInt(w.ID, w.ProductID), Code: w.Code.V, CreatedDate: w.CreatedDate.V,
		ModifiedDate: w.ModifiedDate.V, Inventories: each(w.Inventories, (*inventoryWire).inventory)}
	return nil
}

// Branch is one shop branch. A deactivated branch is reported in the
// list's removed ids (branch webhooks carry IsActive); an absent isActive
// reads as true.
type Branch struct {
	ID            int64     `json:"id"`
	BranchName    string    `json:"branchName"`
	BranchCode    string    `json:"branchCode,omitempty"`
	ContactNumber string    `json:"contactNumber,omitempty"`
	RetailerID    int64     `json:"retailerId,omitempty"`
	Email         string    `json:"email,omitempty"`
	Address       string    `json:"address,omitempty"`
	LocationName  string    `json:"locationName,omitempty"`
	WardName      string    `json:"wardName,omitempty"`
	IsActive      bool      `json:"isActive"`
	ModifiedDate  time.Time `json:"modifiedDate"`
	CreatedDate   time.Time `json:"createdDate"`
}

// UnmarshalJSON decodes a branch from REST (branchName) or webhook (Name).
func (br *Branch) UnmarshalJSON(b []byte) error {
	var w struct {
		ID            flexInt    `json:"id"`
		BranchName    flexString `json:"branchName"`
		Name          flexString `json:"name"`
		BranchCode    flexString `json:"branchCode"`
		ContactNumber flexString `json:"contactNumber"`
		RetailerID    flexInt    `json:"retailerId"`
		Email         flexString `json:"email"`
		Address       flexString `json:"address"`
		LocationName  flexString `json:"locationName"`
		WardName      flexString `json:"wardName"`
		IsActive      flexBool   `json:"isActive"`
		ModifiedDate  flexTime   `json:"modifiedDate"`
		CreatedDate   flexTime   `json:"createdDate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*br = Branch{ID: w.ID.V, BranchName: pickString(w.BranchName, w.Name), BranchCode: w.BranchCode.V,
		ContactNumber: w.ContactNumber.V, RetailerID: w.RetailerID.V, Email: w.Email.V, Address: w.Address.V,
		LocationName: w.LocationName.V, WardName: w.WardName.V, IsActive: !w.IsActive.Set || w.IsActive.V,
		ModifiedDate: w.ModifiedDate.V, CreatedDate: w.CreatedDate.V}
	return nil
}

// Attribute is a variant attribute (e.g. "Màu sắc") with every distinct
// value products use, from /attributes/allwithdistinctvalue. Encoded, its
// values are the {value, attributeId} objects the ERP's attribute table holds.
type Attribute struct {
	ID     int64            `json:"id"`
	Name   string           `json:"name"`
	Values []AttributeValue `json:"attributeValues"`
}

// AttributeValue is one distinct value of an attribute.
type AttributeValue struct {
	Value       string `json:"value"`
	AttributeID int64  `json:"attributeId"`
}

// UnmarshalJSON decodes an attribute; values come from attributeValues
// (or values), each an object or a bare string.
func (a *Attribute) UnmarshalJSON(b []byte) error {
	var w struct {
		ID              flexInt           `json:"id"`
		Name            flexString        `json:"name"`
		AttributeValues []json.RawMessage `json:"attributeValues"`
		Values          []json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Attribute{ID: w.ID.V, Name: w.Name.V}
	raw := w.AttributeValues
	if raw == nil {
		raw = w.Values
	}
	for _, r := range raw {
		r = bytes.TrimSpace(r)
		if len(r) == 0 || string(r) == "null" {
			continue
		}
		if r[0] == '"' {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return err
			}
			a.Values = append(a.Values, AttributeValue{Value: s, AttributeID: a.ID})
			continue
		}
		var v struct {
			Value       flexString `json:"value"`
			AttributeID flexInt    `json:"attributeId"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			return err
		}
		id := a.ID
		if v.AttributeID.Set {
			id = v.AttributeID.V
		}
		a.Values = append(a.Values, AttributeValue{Value: v.Value.V, AttributeID: id})
	}
	return nil
}

func pickInt(a, b flexInt) int64 {
	if a.Set {
		return a.V
	}
	return b.V
}

func pickFloat(a, b flexFloat) float64 {
	if a.Set {
		return a.V
	}
	return b.V
}

func pickString(a, b flexString) string {
	if a.V != "" {
		return a.V
	}
	return b.V
}
