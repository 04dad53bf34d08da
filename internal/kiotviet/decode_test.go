package kiotviet

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// realProduct is the product captured from a live shop (reference §4),
// with the fields kvsync reads.
const realProduct = `{
  "createdDate": "2024-02-07T10:00:02.6970000",
  "masterCode": "SPC000275",
  "id": 17385858,
  "retailerId": 500370926,
  "code": "8938540687295",
  "name": "Sữa Natrumax",
  "fullName": "Sữa Natrumax hộp",
  "categoryId": 553478,
  "categoryName": "NATRUMAX",
  "allowsSale": true,
  "type": 2,
  "hasVariants": false,
  "basePrice": 850000.0000,
  "conversionValue": 1,
  "description": "",
  "modifiedDate": "2025-02-19T08:41:34.0530000",
  "isActive": true,
  "isRewardPoint": true,
  "isLotSerialControl": false,
  "isBatchExpireControl": false,
  "inventories": [{"productId": 17385858, "branchId": 146868, "branchName": "Chi nhánh trung tâm",
    "cost": 510000.0, "onHand": 12, "reserved": 0, "actualReserved": 0, "minQuantity": 0,
    "maxQuantity": 0, "isActive": true, "onOrder": 0}],
  "images": ["https://cdn2-retail-images.kiotviet.vn/a.png"]
}`

func TestDecodeRealProduct(t *testing.T) {
	var p Product
	noErr(t, json.Unmarshal([]byte(realProduct), &p))
	eq(t, int64(17385858), p.ID)
	eq(t, "8938540687295", p.Code)
	eq(t, 850000.0, p.BasePrice)
	eq(t, 2, p.Type)
	truth(t, p.IsRewardPoint)
	eq(t, []string{"https://cdn2-retail-images.kiotviet.vn/a.png"}, p.Images)
	eq(t, 1, len(p.Inventories))
	eq(t, 12.0, p.Inventories[0].OnHand)
	eq(t, "Chi nhánh trung tâm", p.Inventories[0].BranchName)
	want := time.Date(2025, 2, 19, 8, 41, 34, 53_000_000, VietnamZone())
	truth(t, p.ModifiedDate.Equal(want), "got %s", p.ModifiedDate)
	eq(t, time.Date(2025, 2, 19, 1, 41, 34, 53_000_000, time.UTC), p.ModifiedDate.UTC())
	truth(t, p.PriceBooks == nil)
}

func TestDecodeProductTolerance(t *testing.T) {
	const in = `{"Id": "42", "Code": "SP1", "BasePrice": "1000.5", "Images": [{"Image": "u1"}, "u2", {"x": 1}, null],
	  "attributes": [{"attributeName": "Màu", "attributeValue": "Đỏ"}],
	  "inventories": [{"branchId": 1, "onhand": 3, "minQuality": 2, "maxQuality": 9}],
	  "priceBooks": {"priceBookId": 1}, "productShelves": null, "isActive": null, "weight": null}`
	var p Product
	noErr(t, json.Unmarshal([]byte(in), &p))
	eq(t, int64(42), p.ID)
	eq(t, 1000.5, p.BasePrice)
	eq(t, []string{"u1", "u2"}, p.Images)
	truth(t, p.IsActive, "absent isActive is not a deactivation")
	truth(t, p.AllowsSale)
	eq(t, 2, p.Type)
	eq(t, 3.0, p.Inventories[0].OnHand)
	eq(t, 2.0, p.Inventories[0].MinQuantity)
	eq(t, 9.0, p.Inventories[0].MaxQuantity)
	jsonEq(t, `[{"priceBookId": 1}]`, string(p.PriceBooks))
	truth(t, p.ProductShelves == nil)

	out, err := json.Marshal(p.Attributes)
	noErr(t, err)
	jsonEq(t, `[{"attributeName": "Màu", "attributeValue": "Đỏ"}]`, string(out))
}

func TestDecodeRejectsWrongKinds(t *testing.T) {
	var p Product
	isErr(t, json.Unmarshal([]byte(`{"id": {"a": 1}}`), &p))
	isErr(t, json.Unmarshal([]byte(`{"id": "abc"}`), &p))
	isErr(t, json.Unmarshal([]byte(`{"modifiedDate": "yesterday"}`), &p))
}

func TestDecodePageRemovedIDSpellings(t *testing.T) {
	for _, field := range []string{"removedIds", "removeIds", "removeId"} {
		body := `{"total": 1, "pageSize": 100, "data": [{"categoryId": 5, "categoryName": "A"}],
		  "timestamp": "2025-03-23T16:13:50.1740006+07:00", "` + field + `": [7, "8"]}`
		pg, hasTotal, size, err := decodePage[Category]([]byte(body))
		noErr(t, err, field)
		truth(t, hasTotal)
		eq(t, 100, size)
		eq(t, []int64{7, 8}, pg.RemovedIDs, field)
		eq(t, int64(5), pg.Items[0].ID)
		eq(t, int64(0), pg.Items[0].ParentID, "absent parentId is a root")
		eq(t, time.Date(2025, 3, 23, 9, 13, 50, 174000600, time.UTC), pg.Timestamp.UTC())
	}
}

func TestDecodeCategoryTree(t *testing.T) {
	body := `{"total": 1, "data": [{"categoryId": 1, "categoryName": "Thời trang", "children": [
	  {"categoryId": 2, "parentId": 1, "categoryName": "Áo", "children": [{"categoryId": 3, "parentId": 2, "categoryName": "Áo thun"}]}]}]}`
	pg, _, _, err := decodePage[Category]([]byte(body))
	noErr(t, err)
	root := pg.Items[0]
	truth(t, root.HasChild)
	eq(t, "Áo thun", root.Children[0].Children[0].Name)
}

func TestDecodeAttributes(t *testing.T) {
	for _, body := range []string{
		`[{"name": "Màu sắc", "id": 1, "attributeValues": [{"value": "Đỏ", "attributeId": 1}, {"value": "Xanh"}]}]`,
		`{"data": [{"name": "Màu sắc", "id": 1, "values": ["Đỏ", "Xanh"]}]}`,
	} {
		attrs, err := decodeAttributes([]byte(body))
		noErr(t, err)
		eq(t, 1, len(attrs))
		eq(t, []AttributeValue{{"Đỏ", 1}, {"Xanh", 1}}, attrs[0].Values)
	}
}

func TestParseTime(t *testing.T) {
	vn := VietnamZone()
	cases := map[string]time.Time{
		"2025-02-19T08:41:34.0530000":       time.Date(2025, 2, 19, 8, 41, 34, 53e6, vn),
		"2025-02-19T08:41:34":               time.Date(2025, 2, 19, 8, 41, 34, 0, vn),
		"2025-02-19 08:41:34":               time.Date(2025, 2, 19, 8, 41, 34, 0, vn),
		"2025-02-19":                        time.Date(2025, 2, 19, 0, 0, 0, 0, vn),
		"2024-03-04T23:39:24.1470000+07:00": time.Date(2024, 3, 4, 23, 39, 24, 147e6, vn),
		"2024-03-04T16:39:24Z":              time.Date(2024, 3, 4, 23, 39, 24, 0, vn),
		"/Date(1709570364147+0700)/":        time.Date(2024, 3, 4, 23, 39, 24, 147e6, vn),
	}
	for in, want := range cases {
		got, err := ParseTime(in)
		noErr(t, err, in)
		truth(t, got.Equal(want), "%s: got %s want %s", in, got, want)
	}
	tm := time.Date(2025, 1, 2, 3, 4, 5, 600e6, time.UTC)
	eq(t, "2025-01-02T10:04:05.6000000", FormatTime(tm))
	back, err := ParseTime(FormatTime(tm))
	noErr(t, err)
	truth(t, back.Equal(tm))
}

func TestTokenNeverPrintsItself(t *testing.T) {
	var buf strings.Builder
	tok := Token{AccessToken: "very-secret-token", ExpiresAt: time.Unix(0, 0)}
	slog.New(slog.NewTextHandler(&buf, nil)).Info("t", "token", tok)
	if strings.Contains(buf.String(), "very-secret-token") || strings.Contains(fmt.Sprintf("%v %+v", tok, tok), "very-secret-token") {
		t.Fatalf("token leaked: %s", buf.String())
	}
}
