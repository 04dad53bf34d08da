package syncer_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/vocab"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

// A varied shop (combos, services, serial- and lot-controlled items, price books, shelves, inactive and
// not-for-sale products) ends equal to the database in every ERP column, JSON columns included, after a
// full sync, and again after an incremental sync that follows a change to each include-only array.
func TestEveryERPColumnFollowsTheShop(t *testing.T) {
	t.Parallel()
	b := setup(t, 450)
	var mu sync.Mutex
	var queries []string
	hook := func(r *http.Request) {
		if r.URL.Path == "/products" {
			mu.Lock()
			queries = append(queries, r.URL.RawQuery)
			mu.Unlock()
		}
	}
	b.onFetch.Store(&hook)
	res := b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	b.equal(t, false)
	mu.Lock()
	for _, include := range []string{"includeInventory=true", "includeQuantity=true", "includePricebook=true",
		"IncludeSerials=true", "IncludeBatchExpires=true", "IncludeProductShelves=true", "includeMaterial=true",
		"includeSoftDeletedAttribute=false"} {
		assert.Contains(t, queries[0], include, "product pages ask for %s", include)
	}
	mu.Unlock()

	var filled map[string]int
	require.NoError(t, b.db.QueryRow(context.Background(), `select jsonb_build_object(
		'price_books', count(*) filter (where price_books <> '[]'), 'product_formulas', count(*) filter (where product_formulas <> '[]'),
		'product_serials', count(*) filter (where product_serials <> '[]'),
		'product_batch_expires', count(*) filter (where product_batch_expires <> '[]'),
		'product_shelves', count(*) filter (where product_shelves <> '[]'),
		'location', count(*) filter (where jsonb_path_exists(inventory_by_branch, '$[*].location ? (@ != null)')),
		'combos', count(*) filter (where product_type = 1), 'services', count(*) filter (where product_type = 3),
		'not_for_sale', count(*) filter (where not allow_sale), 'inactive', count(*) filter (where not is_active),
		'no_reward_points', count(*) filter (where not is_reward_point), 'master_code', count(*) filter (where master_code is not null))
		from kiotviet_products_full`).Scan(&filled))
	for k, n := range filled {
		assert.Positive(t, n, "no product has %s: the shop is not varied enough to test it", k)
	}

	changed := b.fake.ChangeEveryArray()
	require.Len(t, changed, kiotvietfake.ArrayComponents+1, "one product changed per array")
	res = b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, "incremental", res.Streams["products"].Mode)
	assert.GreaterOrEqual(t, res.Streams["products"].Written, len(changed))
	b.equal(t, false)
}

// A branch the shop deactivates comes back in the branch list's removedIds: its stock leaves the
// database, its name stays; products and stock pages read later do not bring it back.
func TestDeactivatedBranchLosesItsStockAndKeepsItsName(t *testing.T) {
	t.Parallel()
	b := setup(t, 200)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	require.Equal(t, vocab.Success, b.sync(t, "inventory", false).Status)
	b.equal(t, false)
	gone := b.fake.Snapshot().Branches[1]
	require.NoError(t, b.fake.DeactivateBranch(gone.ID))
	b.fake.ResetCounts()
	res := b.sync(t, "inventory", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	assert.Equal(t, int64(1), b.fake.Counts()["/branches"], "the branch read, deactivations included, is one request")
	assert.Equal(t, 200, res.Streams["branches"].Deleted, "one stock row per product went")
	b.equal(t, false)
	var name string
	var active bool
	require.NoError(t, b.db.QueryRow(context.Background(), `select branch_name, is_active from kiotviet_branches where id = $1`,
		gone.ID).Scan(&name, &active))
	assert.Equal(t, gone.Name, name)
	assert.False(t, active)
	// a full product pass and a second inventory run keep it that way
	require.Equal(t, vocab.Success, b.sync(t, "products_full", true).Status)
	require.Equal(t, vocab.Success, b.sync(t, "inventory", false).Status)
	b.equal(t, false)
}

// Deleted products listed with their code renamed "…{DEL}" (two of them carrying the same renamed code)
// never reach the ERP nor fail a page; a deleted category listed as isDeleted goes; full and incremental.
func TestDeletedCodesAndCategoriesNeverShow(t *testing.T) {
	t.Parallel()
	// The shop's clock runs an hour behind: its deletions are older than the overlap window a full pass
	// re-reads at its end, so that pass reports no removal and may sweep.
	b := setupWith(t, kiotvietfake.Options{Products: 300, Branches: 2, Categories: 40, Seed: 9, RateLimitPerHour: -1,
		ListDeleted: true, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	_, err := b.fake.AddCategory("Hàng thanh lý", 0) // no product uses it
	require.NoError(t, err)
	require.Equal(t, vocab.Success, b.sync(t, "products_full", false).Status)
	deleted := b.fake.DeleteProducts(6)
	// a product re-created with a deleted one's code, then deleted again: two "{DEL}" rows share a code
	_, code, ok := b.fake.ReuseDeletedCode()
	require.True(t, ok)
	for _, p := range b.fake.Snapshot().Products {
		if p.Code == code {
			deleted = append(deleted, p.ID)
		}
	}
	require.NoError(t, b.fake.DeleteProductIDs(deleted[len(deleted)-1]))
	cat, ok := b.fake.UnusedCategory()
	require.True(t, ok, "the shop has a category no product uses")
	require.NoError(t, b.fake.DeleteCategory(cat))

	res := b.sync(t, "products_full", false)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	b.equal(t, false)
	var dels int
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select count(*) from kiotviet_products_full where code like '%{DEL}'`).Scan(&dels))
	assert.Zero(t, dels)

	res = b.sync(t, "products_full", true)
	require.Equal(t, vocab.Success, res.Status, res.Error)
	require.NotNil(t, res.Streams["products"].Swept)
	assert.True(t, *res.Streams["products"].Swept, "the {DEL} rows count as seen, so the full pass can sweep")
	b.equal(t, false)
}
