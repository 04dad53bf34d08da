// Package synctest holds what the sync, dispatcher, chaos and benchmark code need to check a database
// against the fake KiotViet: a comparison of the data tables with the fake's catalogue in every column
// the ERP reads, and a way to store a credential for the fake shop.
package synctest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// SaveCredential stores the fake shop's credentials as an active credential (syncer.Save, without the
// live check) and returns the row's id. The token stored has expired, so the first sync fetches one.
func SaveCredential(ctx context.Context, st *store.Store, keys *secret.Keyring, c kiotviet.Credentials) (string, error) {
	return syncer.Save(ctx, st, keys, syncer.Connection{Retailer: c.Retailer, ClientID: c.ClientID, ClientSecret: c.ClientSecret},
		kiotviet.Token{AccessToken: "none", ExpiresAt: time.Unix(0, 0)})
}

// Compare lists every difference between the data tables and the catalogue, in the columns the ERP reads
// (at most limit of them; 0 means 50). An empty list means the database holds exactly the fake's shop.
// Attributes are compared when withAttributes is set (only syncs of type attributes or all fill them).
func Compare(ctx context.Context, db *pgxpool.Pool, cat kiotvietfake.Catalogue, withAttributes bool, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 50
	}
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < limit {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}

	rows, err := db.Query(ctx, `select id, to_jsonb(f) from public.kiotviet_products_full f`)
	if err != nil {
		return nil, err
	}
	got := map[int64]map[string]any{}
	for rows.Next() {
		var id int64
		var r map[string]any
		if err := rows.Scan(&id, &r); err != nil {
			rows.Close()
			return nil, err
		}
		got[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if len(got) != len(cat.Products) {
		add("products_full: %d rows, the shop has %d products", len(got), len(cat.Products))
	}
	wantInventory := 0
	for _, p := range cat.Products {
		wantInventory += len(p.Inventories)
		r, ok := got[p.ID]
		if !ok {
			add("products_full: product %d (%s) missing", p.ID, p.Code)
			continue
		}
		delete(got, p.ID)
		for _, d := range compareRow(r, p) {
			add("products_full %d.%s", p.ID, d)
		}
	}
	for id, r := range got {
		add("products_full: product %d (%v) should not be there", id, r["code"])
	}

	// The legacy tables: the same products, their stock rows, and the categories.
	var nProducts, nInventory, nCategories int
	var inventorySum float64
	if err := db.QueryRow(ctx, `select (select count(*) from public.kiotviet_products),
		(select count(*) from public.kiotviet_inventory), (select coalesce(sum(on_hand), 0)::float8 from public.kiotviet_inventory),
		(select count(*) from public.kiotviet_categories)`).Scan(&nProducts, &nInventory, &inventorySum, &nCategories); err != nil {
		return nil, err
	}
	var wantOnHand float64
	for _, p := range cat.Products {
		for _, v := range p.Inventories {
			wantOnHand += v.OnHand
		}
	}
	if nProducts != len(cat.Products) {
		add("kiotviet_products: %d rows, want %d", nProducts, len(cat.Products))
	}
	if nInventory != wantInventory || !near(inventorySum, wantOnHand) {
		add("kiotviet_inventory: %d rows with %v on hand, want %d with %v", nInventory, inventorySum, wantInventory, wantOnHand)
	}
	if nCategories != len(cat.Categories) {
		add("kiotviet_categories: %d rows, want %d", nCategories, len(cat.Categories))
	}
	crow, err := db.Query(ctx, `select c.id, c.category_name, coalesce(c.parent_id, 0), coalesce(v.path, '')
		from public.kiotviet_categories c left join public.kiotviet_category_paths v on v.id = c.id`)
	if err != nil {
		return nil, err
	}
	gotCat := map[int64]string{}
	for crow.Next() {
		var id, parent int64
		var name, path string
		if err := crow.Scan(&id, &name, &parent, &path); err != nil {
			crow.Close()
			return nil, err
		}
		gotCat[id] = fmt.Sprintf("%s|%d|%s", name, parent, path)
	}
	crow.Close()
	for _, c := range cat.Categories {
		if w := fmt.Sprintf("%s|%d|%s", c.Name, c.ParentID, c.Path); gotCat[c.ID] != w {
			add("kiotviet_categories %d = %q, want %q", c.ID, gotCat[c.ID], w)
		}
	}

	// Branches, once a sync read them: the active ones, and the deactivated ones kept (name and all) as
	// inactive.
	var nBranches int
	if err := db.QueryRow(ctx, `select count(*) from public.kiotviet_branches`).Scan(&nBranches); err != nil {
		return nil, err
	}
	if nBranches > 0 {
		brow, err := db.Query(ctx, `select id, branch_name, is_active from public.kiotviet_branches`)
		if err != nil {
			return nil, err
		}
		gotBranch := map[int64]string{}
		for brow.Next() {
			var id int64
			var name string
			var active bool
			if err := brow.Scan(&id, &name, &active); err != nil {
				brow.Close()
				return nil, err
			}
			gotBranch[id] = fmt.Sprintf("%s|%t", name, active)
		}
		brow.Close()
		for _, b := range cat.Branches {
			if w := b.Name + "|true"; gotBranch[b.ID] != w {
				add("kiotviet_branches %d = %q, want %q", b.ID, gotBranch[b.ID], w)
			}
		}
		for _, b := range cat.InactiveBranches {
			if w := b.Name + "|false"; gotBranch[b.ID] != w {
				add("kiotviet_branches %d = %q, want %q (deactivated)", b.ID, gotBranch[b.ID], w)
			}
		}
	}

	if withAttributes {
		arow, err := db.Query(ctx, `select id, name, attribute_values from public.kiotviet_attributes`)
		if err != nil {
			return nil, err
		}
		gotAttr := map[int64]string{}
		for arow.Next() {
			var id int64
			var name string
			var raw []byte
			if err := arow.Scan(&id, &name, &raw); err != nil {
				arow.Close()
				return nil, err
			}
			var vals []struct{ Value string }
			_ = json.Unmarshal(raw, &vals)
			var vs []string
			for _, v := range vals {
				vs = append(vs, v.Value)
			}
			sort.Strings(vs)
			gotAttr[id] = name + ":" + strings.Join(vs, ",")
		}
		arow.Close()
		if len(gotAttr) != len(cat.Attributes) {
			add("kiotviet_attributes: %d rows, want %d", len(gotAttr), len(cat.Attributes))
		}
		for _, a := range cat.Attributes {
			vs := append([]string(nil), a.Values...)
			sort.Strings(vs)
			if w := a.Name + ":" + strings.Join(vs, ","); gotAttr[a.ID] != w {
				add("kiotviet_attributes %d = %q, want %q", a.ID, gotAttr[a.ID], w)
			}
		}
	}
	return diffs, nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.0005 }

// compareRow lists the columns of one kiotviet_products_full row (as to_jsonb gives it) that differ from
// what the ERP should read for the product, JSON columns included (erp-contract §4.1), as "column = got,
// want want". The expectations are built here from the fake's typed catalogue, not by the sync's code.
func compareRow(r map[string]any, p kiotvietfake.Product) []string {
	var diffs []string
	check := func(col string, want any) {
		if g := canon(r[col]); g != canon(want) {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", col, g, canon(want)))
		}
	}
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	idOrNil := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	var onHand, reserved float64
	for _, v := range p.Inventories {
		onHand += v.OnHand
		reserved += v.Reserved
	}
	minStock, maxStock := 0.0, 999999999.0
	if len(p.Inventories) > 0 {
		minStock = p.Inventories[0].MinQuantity
		if p.Inventories[0].MaxQuantity > 0 {
			maxStock = p.Inventories[0].MaxQuantity
		}
	}
	check("code", p.Code)
	check("name", p.Name)
	check("barcode", orNil(p.Barcode))
	check("full_name", orNil(p.FullName))
	check("description", orNil(p.Description))
	check("order_template", orNil(p.OrderTemplate))
	check("category_id", idOrNil(p.CategoryID))
	check("category_name", orNil(p.CategoryName))
	check("category_path", orNil(p.CategoryPath))
	check("trademark_id", idOrNil(p.TradeMarkID))
	check("trademark_name", orNil(p.TradeMarkName))
	check("master_code", orNil(p.MasterCode))
	check("master_product_id", idOrNil(p.MasterProductID))
	check("master_unit_id", idOrNil(p.MasterUnitID))
	check("base_price", p.BasePrice)
	check("weight", p.Weight)
	check("total_on_hand", onHand)
	check("total_reserved", reserved)
	check("total_available", onHand-reserved)
	check("min_stock", minStock)
	check("max_stock", maxStock)
	check("low_stock_alert", onHand < minStock)
	check("overstock_alert", onHand > maxStock)
	check("has_variants", p.HasVariants)
	check("allow_sale", p.AllowsSale)
	check("is_active", p.IsActive)
	check("product_type", p.Type)
	check("is_reward_point", p.IsRewardPoint)
	check("is_lot_serial_control", p.IsLotSerialControl)
	check("is_batch_expire_control", p.IsBatchExpireControl)

	shelf := map[int64]string{}
	for _, s := range p.Shelves {
		shelf[s.BranchID] = s.Shelves
	}
	var inv, units, pbs, formulas, serials, batches, shelves []map[string]any
	for _, v := range p.Inventories {
		e := map[string]any{"branch_id": v.BranchID, "branch_name": v.BranchName, "on_hand": v.OnHand, "reserved": v.Reserved,
			"available": v.OnHand - v.Reserved, "min_quality": v.MinQuantity, "max_quality": v.MaxQuantity, "location": nil}
		if s, ok := shelf[v.BranchID]; ok {
			e["location"] = s
		}
		inv = append(inv, e)
	}
	if p.Unit != "" || len(p.Units) > 0 {
		units = append(units, map[string]any{"unitName": p.Unit, "unit_name": p.Unit, "is_base_unit": p.MasterUnitID == 0,
			"conversion_value": p.ConversionValue})
		for _, u := range p.Units {
			if u.ID != p.ID {
				units = append(units, map[string]any{"unit_name": u.Unit, "is_base_unit": u.ID == p.MasterUnitID,
					"conversion_value": u.ConversionValue})
			}
		}
	}
	for _, b := range p.PriceBooks {
		pbs = append(pbs, map[string]any{"price_book_id": b.PriceBookID, "price_book_name": b.PriceBookName, "price": b.Price,
			"is_active": b.IsActive, "from_date": b.StartDate, "to_date": b.EndDate})
	}
	for _, c := range p.Components {
		formulas = append(formulas, map[string]any{"material_id": c.ProductID, "component_code": c.Code, "product_name": c.FullName,
			"quantity": c.Quantity, "unit": orNil(c.Unit)})
	}
	for _, x := range p.Serials {
		serials = append(serials, map[string]any{"serial_number": x.SerialNumber, "status": x.Status, "branch_id": x.BranchID})
	}
	for _, b := range p.Batches {
		batches = append(batches, map[string]any{"batch_code": b.BatchName, "quantity": b.OnHand, "branch_id": b.BranchID,
			"expiration_date": b.ExpireDate})
	}
	for _, s := range p.Shelves {
		shelves = append(shelves, map[string]any{"branch_id": s.BranchID, "branch_name": s.BranchName, "shelf_name": s.Shelves})
	}
	var attrs []map[string]any
	for _, a := range p.Attributes {
		attrs = append(attrs, map[string]any{"attributeName": a.AttributeName, "attributeValue": a.AttributeValue})
	}
	images := make([]any, len(p.Images))
	for i, u := range p.Images {
		images[i] = u
	}
	for _, c := range []struct {
		col     string
		want    []map[string]any
		ordered bool
	}{{"inventory_by_branch", inv, false}, {"attributes", attrs, true}, {"units", units, true}, {"price_books", pbs, false},
		{"product_formulas", formulas, false}, {"product_serials", serials, false}, {"product_batch_expires", batches, false},
		{"product_shelves", shelves, false}} {
		if d := compareArray(r[c.col], c.want, c.ordered); d != "" {
			diffs = append(diffs, c.col+" "+d)
		}
	}
	if g, w := canon(r["images"]), canon(images); g != w {
		diffs = append(diffs, fmt.Sprintf("images = %s, want %s", g, w))
	}
	return diffs
}

// compareArray checks a JSON array column: an array with one element per wanted one, each holding the
// wanted keys with the wanted values (other keys, e.g. KiotViet's own, are fine); ordered keeps the
// order (units: the product's own first), else elements are compared as a set.
func compareArray(got any, want []map[string]any, ordered bool) string {
	list, ok := got.([]any)
	if !ok {
		return fmt.Sprintf("is %T, not a JSON array", got)
	}
	var g, w []string
	for i, e := range list {
		m, _ := e.(map[string]any)
		if i < len(want) || !ordered {
			var keysOf map[string]any
			if ordered {
				keysOf = want[i]
			} else if len(want) > 0 {
				keysOf = want[0]
			}
			g = append(g, canonKeys(m, keysOf))
		} else {
			g = append(g, canon(m))
		}
	}
	for _, e := range want {
		w = append(w, canonKeys(e, e))
	}
	if !ordered {
		sort.Strings(g)
		sort.Strings(w)
	}
	if strings.Join(g, " ") != strings.Join(w, " ") {
		return fmt.Sprintf("= %s, want %s", strings.Join(g, " "), strings.Join(w, " "))
	}
	return ""
}

// canonKeys prints m's values for keys (sorted), canonically.
func canonKeys(m map[string]any, keys map[string]any) string {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + canon(m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// canon prints a value so that a database JSON value and a Go value holding the same thing print the
// same: numbers by value (3 decimals), times and date strings as UTC instants, arrays element by element.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64)
	case int:
		return canon(float64(x))
	case int64:
		return canon(float64(x))
	case time.Time:
		if x.IsZero() {
			return "null"
		}
		return x.UTC().Format(time.RFC3339Nano)
	case string:
		if len(x) >= 19 && x[4] == '-' && x[10] == 'T' {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.UTC().Format(time.RFC3339Nano)
			}
		}
		return strconv.Quote(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canon(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		return canonKeys(x, x)
	}
	return fmt.Sprint(v)
}
