package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/testdb"
)

// TestSampleProductsFillEveryERPColumn writes the products of every real_, edited_ and doc_ sample in
// testdata/kiotviet-samples (list pages, bare arrays, single products, product webhooks) through the
// page function, and checks each row in every column of kiotviet_products_full the ERP reads against
// what erp-contract §4.1 says the column holds, read straight from the sample's JSON. A sample added to
// the folder is picked up without code changes.
func TestSampleProductsFillEveryERPColumn(t *testing.T) {
	t.Parallel()
	root, err := testdb.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "kiotviet-samples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Skipf("no KiotViet samples in %s: copy them there (see SOURCES.md)", dir)
	}
	pool := testdb.DB(t) // its own database: category ids of the samples must not meet another test's rows
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing of this test is kept
	var runID string
	if err := tx.QueryRow(ctx, `with c as (
		  insert into public.kiotviet_credentials (retailer_name, client_id, encrypted_token, is_active)
		  values ('samples', 'samples', 'none', true) returning id)
		select public.kiotviet_start_run((select id from c), 'products_full', 'manual', 'samples-test')`).Scan(&runID); err != nil {
		t.Fatal(err)
	}

	checked := 0
	for _, path := range files {
		name := filepath.Base(path)
		lower := strings.ToLower(name)
		// real_ and edited_ samples are captured traffic; doc_ ones are the only ones with every include
		if strings.HasPrefix(lower, "derived_") || !strings.Contains(lower, "product") || strings.Contains(lower, "productonhands") {
			continue
		}
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raws := sampleProductObjects(t, name, body)
		if len(raws) == 0 {
			continue // e.g. a stock webhook: no product in it
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			var rows []productRow
			byID := map[int64]map[string]any{}
			for _, raw := range raws {
				b, _ := json.Marshal(raw)
				var p kiotviet.Product
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatalf("decode: %v", err)
				}
				rows = append(rows, productRowOf(p))
				byID[p.ID] = raw
			}
			page, _ := json.Marshal(rows)
			if _, err := tx.Exec(ctx, `select public.kiotviet_apply_products($1, (select credential_id from
				public.kiotviet_sync_logs where id = $1), $2, '{}', null, false)`, runID, page); err != nil {
				t.Fatalf("apply: %v", err)
			}
			for id, raw := range byID {
				var got map[string]any
				if err := tx.QueryRow(ctx, `select to_jsonb(f) from public.kiotviet_products_full f where id = $1`, id).Scan(&got); err != nil {
					t.Fatalf("product %d: %v", id, err)
				}
				for _, d := range diffERPRow(raw, got) {
					t.Errorf("product %d: %s", id, d)
				}
				checked++
			}
		})
	}
	if checked == 0 {
		t.Fatal("no real_ or edited_ product sample was checked")
	}
}

// sampleProductObjects returns the product objects of a sample: a list page's data, a bare array, one
// product, or the Data of product webhooks.
func sampleProductObjects(t *testing.T, name string, body []byte) []map[string]any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	objs := func(x any) []map[string]any {
		var out []map[string]any
		list, _ := x.([]any)
		for _, e := range list {
			if m, ok := e.(map[string]any); ok && field(m, "id") != nil {
				out = append(out, m)
			}
		}
		return out
	}
	switch x := v.(type) {
	case []any:
		return objs(x)
	case map[string]any:
		if n, ok := x["Notifications"].([]any); ok {
			var out []map[string]any
			for _, e := range n {
				m, _ := e.(map[string]any)
				if a, _ := m["Action"].(string); strings.HasPrefix(a, "product.update") {
					out = append(out, objs(m["Data"])...)
				}
			}
			return out
		}
		if d, ok := x["data"]; ok {
			return objs(d)
		}
		return objs([]any{x})
	}
	return nil
}

// field reads a key of a KiotViet object in any case; nil when absent or null.
func field(m map[string]any, names ...string) any {
	for _, n := range names {
		for k, v := range m {
			if strings.EqualFold(k, n) && v != nil {
				return v
			}
		}
	}
	return nil
}

func num(v any) float64 {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case float64:
		return x
	case string:
		var f float64
		_, _ = fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// text is a string field, nil when absent or empty (the columns hold NULL then).
func text(m map[string]any, names ...string) any {
	if s, ok := field(m, names...).(string); ok && s != "" {
		return s
	}
	return nil
}

func idOrNil(m map[string]any, names ...string) any {
	if f := num(field(m, names...)); f != 0 {
		return f
	}
	return nil
}

func flag(m map[string]any, def bool, names ...string) bool {
	if b, ok := field(m, names...).(bool); ok {
		return b
	}
	return def
}

func list(m map[string]any, names ...string) []map[string]any {
	var out []map[string]any
	l, _ := field(m, names...).([]any)
	for _, e := range l {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func isoOrNil(v any) any {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	t, err := kiotviet.ParseTime(s)
	if err != nil {
		return s
	}
	return t
}

// diffERPRow compares one stored row with erp-contract §4.1's reading of the KiotViet product.
func diffERPRow(raw, got map[string]any) []string {
	var diffs []string
	want := map[string]any{
		"id": num(field(raw, "id")), "code": field(raw, "code"), "name": field(raw, "name"),
		"barcode": text(raw, "barCode"), "full_name": text(raw, "fullName"), "description": text(raw, "description"),
		"order_template": text(raw, "orderTemplate"), "category_id": idOrNil(raw, "categoryId"),
		"category_name": text(raw, "categoryName"), "category_path": text(raw, "categoryName"),
		"trademark_id": idOrNil(raw, "tradeMarkId"), "trademark_name": text(raw, "tradeMarkName"),
		"master_code": text(raw, "masterCode"), "master_product_id": idOrNil(raw, "masterProductId"),
		"master_unit_id": idOrNil(raw, "masterUnitId"),
		"base_price":     num(field(raw, "basePrice")), "weight": num(field(raw, "weight")),
		"has_variants": flag(raw, false, "hasVariants"), "allow_sale": flag(raw, true, "allowsSale"),
		"is_active": flag(raw, true, "isActive"), "product_type": 2.0,
		"is_reward_point":         flag(raw, true, "isRewardPoint"),
		"is_lot_serial_control":   flag(raw, false, "isLotSerialControl"),
		"is_batch_expire_control": flag(raw, false, "isBatchExpireControl"),
	}
	if ty := field(raw, "type"); ty != nil {
		want["product_type"] = num(ty)
	}
	inv := list(raw, "inventories")
	shelves := map[float64]string{}
	for _, s := range list(raw, "productShelves") {
		if name, ok := field(s, "ProductShelves").(string); ok {
			shelves[num(field(s, "branchId"))] = name
		}
	}
	var onHand, reserved float64
	var wantInv []map[string]any
	for _, v := range inv {
		oh, rs := num(field(v, "onHand")), num(field(v, "reserved"))
		onHand, reserved = onHand+oh, reserved+rs
		b := map[string]any{"branch_id": num(field(v, "branchId")), "branch_name": field(v, "branchName"),
			"on_hand": oh, "reserved": rs, "available": oh - rs,
			"min_quality": num(field(v, "minQuantity", "minQuality")), "max_quality": num(field(v, "maxQuantity", "maxQuality")),
			"location": nil}
		if s, ok := shelves[num(field(v, "branchId"))]; ok {
			b["location"] = s
		}
		wantInv = append(wantInv, b)
	}
	want["total_on_hand"], want["total_reserved"], want["total_available"] = onHand, reserved, onHand-reserved
	minStock, maxStock := 0.0, 999999999.0
	if len(inv) > 0 {
		minStock = num(field(inv[0], "minQuantity", "minQuality"))
		if m := num(field(inv[0], "maxQuantity", "maxQuality")); m > 0 {
			maxStock = m
		}
	}
	want["min_stock"], want["max_stock"] = minStock, maxStock
	want["low_stock_alert"], want["overstock_alert"] = onHand < minStock, onHand > maxStock

	for col, w := range want {
		if !same(got[col], w) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", col, got[col], w))
		}
	}
	for _, col := range []string{"synced_at", "created_at", "updated_at"} {
		if got[col] == nil {
			diffs = append(diffs, col+" is null")
		}
	}
	for _, col := range []string{"inventory_by_branch", "images", "attributes", "units", "price_books", "product_formulas",
		"product_serials", "product_batch_expires", "product_shelves"} {
		if _, ok := got[col].([]any); !ok {
			diffs = append(diffs, fmt.Sprintf("%s is %T, not a JSON array", col, got[col]))
		}
	}

	// JSON columns: each element carries the keys the ERP reads, with these values (extra keys are fine)
	diffs = append(diffs, elements("inventory_by_branch", got["inventory_by_branch"], wantInv)...)
	var images []string
	for _, e := range toList(field(raw, "images")) {
		switch x := e.(type) {
		case string:
			images = append(images, x)
		case map[string]any:
			if s, ok := field(x, "Image", "url").(string); ok {
				images = append(images, s)
			}
		}
	}
	var gotImages []string
	for _, e := range toList(got["images"]) {
		s, _ := e.(string)
		gotImages = append(gotImages, s)
	}
	if strings.Join(gotImages, " ") != strings.Join(images, " ") {
		diffs = append(diffs, fmt.Sprintf("images = %v, want the URL strings %v", gotImages, images))
	}
	var wantAttrs []map[string]any
	for _, a := range list(raw, "attributes") {
		wantAttrs = append(wantAttrs, map[string]any{"attributeName": field(a, "attributeName"), "attributeValue": field(a, "attributeValue")})
	}
	diffs = append(diffs, elements("attributes", got["attributes"], wantAttrs)...)

	var wantUnits []map[string]any
	if u := text(raw, "unit"); u != nil || len(list(raw, "units")) > 0 {
		conv := num(field(raw, "conversionValue"))
		if conv == 0 {
			conv = 1
		}
		wantUnits = append(wantUnits, map[string]any{"unitName": field(raw, "unit"), "unit_name": field(raw, "unit"),
			"is_base_unit": field(raw, "masterUnitId") == nil, "conversion_value": conv})
		for _, o := range list(raw, "units") {
			if num(field(o, "id")) == num(field(raw, "id")) {
				continue
			}
			wantUnits = append(wantUnits, map[string]any{"unit_name": field(o, "unit"),
				"is_base_unit": num(field(o, "id")) == num(field(raw, "masterUnitId")), "conversion_value": num(field(o, "conversionValue"))})
		}
	}
	diffs = append(diffs, elements("units", got["units"], wantUnits)...)

	var pbs, formulas, serials, batches, shelvesOut []map[string]any
	for _, o := range list(raw, "priceBooks") {
		pbs = append(pbs, map[string]any{"price_book_name": field(o, "priceBookName"), "price": num(field(o, "price")),
			"from_date": isoOrNil(field(o, "startDate")), "to_date": isoOrNil(field(o, "endDate"))})
	}
	for _, o := range list(raw, "productFormulas") {
		formulas = append(formulas, map[string]any{"product_name": field(o, "materialFullName", "materialName", "productName", "name"),
			"quantity": num(field(o, "quantity")), "unit": field(o, "unit")})
	}
	for _, o := range list(raw, "productSerials", "serials") {
		serials = append(serials, map[string]any{"serial_number": field(o, "serialNumber"), "status": field(o, "status")})
	}
	for _, o := range list(raw, "productBatchExpires") {
		batches = append(batches, map[string]any{"batch_code": field(o, "batchName"), "quantity": num(field(o, "onHand")),
			"expiration_date": isoOrNil(field(o, "expireDate")), "manufacture_date": isoOrNil(field(o, "manufactureDate"))})
	}
	for _, o := range list(raw, "productShelves") {
		shelvesOut = append(shelvesOut, map[string]any{"branch_name": field(o, "branchName"), "shelf_name": field(o, "ProductShelves")})
	}
	diffs = append(diffs, elements("price_books", got["price_books"], pbs)...)
	diffs = append(diffs, elements("product_formulas", got["product_formulas"], formulas)...)
	diffs = append(diffs, elements("product_serials", got["product_serials"], serials)...)
	diffs = append(diffs, elements("product_batch_expires", got["product_batch_expires"], batches)...)
	diffs = append(diffs, elements("product_shelves", got["product_shelves"], shelvesOut)...)
	sort.Strings(diffs)
	return diffs
}

func toList(v any) []any { l, _ := v.([]any); return l }

// elements checks a JSON array column element by element: same length, and each element has the
// wanted keys with the wanted values.
func elements(col string, got any, want []map[string]any) []string {
	g := toList(got)
	if len(g) != len(want) {
		return []string{fmt.Sprintf("%s has %d elements, want %d: %v", col, len(g), len(want), got)}
	}
	var diffs []string
	for i, w := range want {
		e, _ := g[i].(map[string]any)
		for k, wv := range w {
			if !same(e[k], wv) {
				diffs = append(diffs, fmt.Sprintf("%s[%d].%s = %v, want %v", col, i, k, e[k], wv))
			}
		}
	}
	return diffs
}

// same compares a value read back from the database (JSON) with a wanted one: numbers by value,
// times as instants, everything else by its printed form.
func same(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case float64:
		return got != nil && math.Abs(num(got)-w) < 1e-6
	case json.Number:
		return got != nil && math.Abs(num(got)-num(w)) < 1e-6
	case time.Time:
		s, _ := got.(string)
		g, err := time.Parse(time.RFC3339Nano, s)
		return err == nil && g.Equal(w)
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}
