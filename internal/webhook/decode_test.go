package webhook

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestDecodeRealAndDocumentedBodies(t *testing.T) {
	t.Parallel()
	d, err := Decode(sample(t, "real_webhook_product_update_500400541.json"), "")
	require.NoError(t, err)
	assert.Equal(t, "d42dcce1-3919-4303-b829-d473a163845f", d.ID)
	assert.Equal(t, 1, d.Attempt)
	assert.Equal(t, int64(500400541), d.RetailerID)
	assert.Equal(t, []string{"product.update"}, d.Types())
	require.Len(t, d.Notifications[0].Data, 1)

	d, err = Decode(sample(t, "real_webhook_stock_update_925719.json"), "")
	require.NoError(t, err)
	assert.Equal(t, int64(925719), d.RetailerID)
	assert.Equal(t, []string{"stock.update"}, d.Types())

	d, err = Decode(sample(t, "doc_webhook_product_delete.json"), "product.delete")
	require.NoError(t, err)
	assert.Equal(t, []int64{26254255, 26254256}, d.RemoveIDs)
	assert.Zero(t, d.RetailerID)

	d, err = Decode(sample(t, "doc_webhook_pricebook_delete.json"), "")
	require.NoError(t, err)
	assert.Equal(t, []string{"pricebook.delete"}, d.Types())

	for _, f := range []string{"doc_webhook_branch_update.json", "doc_webhook_category_update.json",
		"doc_webhook_pricebookdetail_update.json", "real_webhook_product_update_variant_500322281.json"} {
		_, err := Decode(sample(t, f), "")
		assert.NoError(t, err, f)
	}
}

func TestDecodeRefusesWhatItCannotApply(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct{ body, event, want string }{
		"not JSON":           {`{"Id":`, "", "not valid JSON"},
		"an array":           {`[1]`, "", "JSON object"},
		"empty":              {``, "", "JSON object"},
		"nothing to do":      {`{"Id":"x"}`, "", "neither Notifications nor RemoveId"},
		"bare delete no url": {`{"RemoveId":[1]}`, "", "URL must name it"},
		"delete for update":  {`{"RemoveId":[1]}`, "product.update", "is a delete"},
		"bad ids":            {`{"RemoveId":["a"]}`, "product.delete", "RemoveId must be a list of ids"},
		"action no retailer": {`{"Notifications":[{"Action":"product.update","Data":[]}]}`, "", "retailer id"},
		"two retailers": {`{"Notifications":[{"Action":"product.update.1","Data":[]},{"Action":"stock.update.2","Data":[]}]}`,
			"", "another retailer"},
		"data not a list": {`{"Notifications":[{"Action":"product.update.1","Data":{}}]}`, "", "Data must be a list"},
		"Id a number":     {`{"Id":5,"Notifications":[{"Action":"product.update.1","Data":[]}]}`, "", "Id must be a string"},
	} {
		_, err := Decode([]byte(c.body), c.event)
		require.ErrorIs(t, err, ErrMalformed, name)
		assert.Contains(t, err.Error(), c.want, name)
	}
}

func TestDedupeKeyIsKiotVietsIdElseTheBody(t *testing.T) {
	t.Parallel()
	d, err := Decode(sample(t, "real_webhook_stock_update_925719.json"), "")
	require.NoError(t, err)
	assert.Equal(t, "id:71676945-a9ef-4ca0-aff6-856731f30a49", d.DedupeKey("stock.update", nil))
	a, _ := Decode([]byte(`{"RemoveId":[1]}`), "product.delete")
	k1 := a.DedupeKey("product.delete", []byte(`{"RemoveId":[1]}`))
	k2 := a.DedupeKey("category.delete", []byte(`{"RemoveId":[1]}`))
	k3 := a.DedupeKey("product.delete", []byte(`{"RemoveId":[2]}`))
	assert.NotEqual(t, k1, k2)
	assert.NotEqual(t, k1, k3)
	assert.Equal(t, k1, a.DedupeKey("product.delete", []byte(`{"RemoveId":[1]}`)))
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"real_webhook_product_update_500400541.json", "real_webhook_stock_update_925719.json",
		"real_webhook_product_update_variant_500322281.json", "doc_webhook_product_delete.json",
		"doc_webhook_pricebook_delete.json", "doc_webhook_category_update.json"} {
		f.Add(sample(f, s), "")
		f.Add(sample(f, s), "product.delete")
	}
	f.Add([]byte(`{"RemoveId":["1", 2]}`), "category.delete")
	f.Fuzz(func(t *testing.T, body []byte, event string) {
		d, err := Decode(body, event)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		// what decodes is something the applier can route
		require.True(t, len(d.Notifications) > 0 || d.RemoveIDs != nil)
		for _, n := range d.Notifications {
			require.NotEmpty(t, n.Type)
			require.Equal(t, d.RetailerID, n.RetailerID)
		}
		require.NotEmpty(t, d.DedupeKey(event, body))
	})
}
