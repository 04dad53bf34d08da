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

	type fullRow struct {
		Code, Name, Barcode, FullName, Description, CategoryName, CategoryPath, TrademarkName string
		CategoryID, TrademarkID                                                               int64
		BasePrice, Weight, TotalOnHand, TotalReserved                                         float64
		HasVariants, AllowSale, IsActive                                                      bool
		ProductType                                                                           int
		Images                                                                                []string
		Attributes                                                                            []struct{ AttributeName, AttributeValue string }
		Inventory                                                                             []struct {
			BranchID   int64   `json:"branch_id"`
			BranchName string  `json:"branch_name"`
			OnHand     float64 `json:"on_hand"`
			Reserved   float64 `json:"reserved"`
		}
	}
	rows, err := db.Query(ctx, `select id, code, name, coalesce(barcode, ''), coalesce(full_name, ''), coalesce(description, ''),
		coalesce(category_id, 0), coalesce(category_name, ''), coalesce(category_path, ''), coalesce(trademark_id, 0),
		coalesce(trademark_name, ''), base_price::float8, weight::float8, total_on_hand::float8, total_reserved::float8,
		has_variants, allow_sale, is_active, product_type, images, attributes, inventory_by_branch,
		jsonb_typeof(images) = 'array' and jsonb_typeof(attributes) = 'array' and jsonb_typeof(units) = 'array'
		  and jsonb_typeof(inventory_by_branch) = 'array'
		from public.kiotviet_products_full`)
	if err != nil {
		return nil, err
	}
	got := map[int64]fullRow{}
	for rows.Next() {
		var id int64
		var r fullRow
		var images, attrs, inv []byte
		var arrays bool
		if err := rows.Scan(&id, &r.Code, &r.Name, &r.Barcode, &r.FullName, &r.Description, &r.CategoryID, &r.CategoryName,
			&r.CategoryPath, &r.TrademarkID, &r.TrademarkName, &r.BasePrice, &r.Weight, &r.TotalOnHand, &r.TotalReserved,
			&r.HasVariants, &r.AllowSale, &r.IsActive, &r.ProductType, &images, &attrs, &inv, &arrays); err != nil {
			rows.Close()
			return nil, err
		}
		if !arrays {
			add("products_full %d: a JSON column is not an array", id)
		}
		_ = json.Unmarshal(images, &r.Images)
		_ = json.Unmarshal(attrs, &r.Attributes)
		_ = json.Unmarshal(inv, &r.Inventory)
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
		var onHand, reserved float64
		for _, v := range p.Inventories {
			onHand += v.OnHand
			reserved += v.Reserved
		}
		check := func(col string, g, w any) {
			if fmt.Sprint(g) != fmt.Sprint(w) {
				add("products_full %d.%s = %v, want %v", p.ID, col, g, w)
			}
		}
		check("code", r.Code, p.Code)
		check("name", r.Name, p.Name)
		check("barcode", r.Barcode, p.Barcode)
		check("full_name", r.FullName, p.FullName)
		check("description", r.Description, p.Description)
		check("category_id", r.CategoryID, p.CategoryID)
		check("category_name", r.CategoryName, p.CategoryName)
		check("category_path", r.CategoryPath, p.CategoryPath)
		check("trademark_id", r.TrademarkID, p.TradeMarkID)
		check("trademark_name", r.TrademarkName, p.TradeMarkName)
		check("has_variants", r.HasVariants, p.HasVariants)
		check("allow_sale", r.AllowSale, p.AllowsSale)
		check("is_active", r.IsActive, p.IsActive)
		check("product_type", r.ProductType, p.Type)
		check("images", strings.Join(r.Images, " "), strings.Join(p.Images, " "))
		if !near(r.BasePrice, p.BasePrice) {
			add("products_full %d.base_price = %v, want %v", p.ID, r.BasePrice, p.BasePrice)
		}
		if !near(r.Weight, p.Weight) {
			add("products_full %d.weight = %v, want %v", p.ID, r.Weight, p.Weight)
		}
		if !near(r.TotalOnHand, onHand) || !near(r.TotalReserved, reserved) {
			add("products_full %d totals = %v/%v, want %v/%v", p.ID, r.TotalOnHand, r.TotalReserved, onHand, reserved)
		}
		var ga, wa []string
		for _, a := range r.Attributes {
			ga = append(ga, a.AttributeName+"="+a.AttributeValue)
		}
		for _, a := range p.Attributes {
			wa = append(wa, a.AttributeName+"="+a.AttributeValue)
		}
		check("attributes", strings.Join(ga, ","), strings.Join(wa, ","))
		var gi, wi []string
		for _, v := range r.Inventory {
			gi = append(gi, fmt.Sprintf("%d:%s:%g:%g", v.BranchID, v.BranchName, v.OnHand, v.Reserved))
		}
		for _, v := range p.Inventories {
			wi = append(wi, fmt.Sprintf("%d:%s:%g:%g", v.BranchID, v.BranchName, v.OnHand, v.Reserved))
		}
		sort.Strings(gi)
		sort.Strings(wi)
		check("inventory_by_branch", strings.Join(gi, " "), strings.Join(wi, " "))
	}
	for id, r := range got {
		add("products_full: product %d (%s) should not be there", id, r.Code)
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
