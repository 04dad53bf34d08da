package kiotvietfake

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// Catalogue is a typed copy of the fake shop's current data, for tests and
// benchmarks to compare a synced database against. Slices are sorted by id.
type Catalogue struct {
	Retailer        string
	RetailerID      int64
	Products        []Product
	Categories      []Category
	Branches        []Branch // active branches only
	Attributes      []Attribute
	DeletedProducts []Deleted
	// InactiveBranches are the branches deactivated (KiotViet lists them in
	// the branch list's removedIds); their stock is gone from Products.
	InactiveBranches []Branch
}

// Product is one product row as the ERP reads it: the KiotViet fields plus
// the category path (names root → leaf joined with " > ").
type Product struct {
	ID                   int64
	Code                 string
	Barcode              string
	Name                 string
	FullName             string
	Description          string
	OrderTemplate        string
	CategoryID           int64
	CategoryName         string
	CategoryPath         string
	TradeMarkID          int64
	TradeMarkName        string
	MasterProductID      int64  // the variant group's master (0 on the master)
	MasterUnitID         int64  // the base unit's row (0 on the base unit)
	MasterCode           string // KiotViet's masterCode: the same for every row of a group
	Unit                 string
	ConversionValue      float64
	BasePrice            float64
	Weight               float64
	HasVariants          bool
	AllowsSale           bool
	IsActive             bool
	IsRewardPoint        bool
	IsLotSerialControl   bool
	IsBatchExpireControl bool
	Type                 int     // 1 combo, 2 normal, 3 service
	TaxType              string  // "khau_tru", "truc_tiep" or "" (no tax fields sent)
	TaxRate              float64 // with khau_tru (sent as a string, as KiotViet does)
	TaxRateDirect        float64 // with truc_tiep
	Images               []string
	Attributes           []ProductAttribute
	Units                []Unit
	Inventories          []Inventory
	PriceBooks           []PriceBookPrice // sent with includePricebook
	Components           []Component      // a combo's parts, sent with includeMaterial
	Serials              []Serial         // IsLotSerialControl items, sent with IncludeSerials
	Batches              []Batch          // IsBatchExpireControl items, sent with IncludeBatchExpires
	Shelves              []Shelf          // sent with IncludeProductShelves
	CreatedDate          time.Time
	ModifiedDate         time.Time // moves when product data changes
	StockModifiedDate    time.Time // moves when stock moves (/productOnHands)
}

// ProductAttribute is one variant attribute value of a product row.
type ProductAttribute struct {
	AttributeName  string
	AttributeValue string
}

// Unit is one selling unit of a unit group (each unit is also a product row).
type Unit struct {
	ID              int64
	Code            string
	Name            string
	FullName        string
	Unit            string
	ConversionValue float64
	BasePrice       float64
}

// Inventory is a product's stock at one branch.
type Inventory struct {
	BranchID    int64
	BranchName  string
	OnHand      float64
	Reserved    float64
	Cost        float64
	MinQuantity float64
	MaxQuantity float64
}

// PriceBookPrice is a product's price in one price book.
type PriceBookPrice struct {
	PriceBookID   int64
	PriceBookName string
	IsActive      bool
	StartDate     time.Time
	EndDate       time.Time
	Price         float64
}

// Component is one part of a combo: another product and how many of it.
type Component struct {
	ProductID int64
	Code      string
	Name      string
	FullName  string
	Unit      string
	Quantity  float64
	BasePrice float64
}

// Serial is one serial (IMEI) number in stock at a branch.
type Serial struct {
	SerialNumber string
	BranchID     int64
	Status       int // 1 in stock
	CreatedDate  time.Time
}

// Batch is one lot with its expiry date at a branch.
type Batch struct {
	BatchName  string
	BranchID   int64
	OnHand     float64
	ExpireDate time.Time
}

// Shelf is where a product sits at a branch ("Kệ A1 | Kệ B2").
type Shelf struct {
	BranchID   int64
	BranchName string
	Shelves    string
}

// Category is one category; ParentID 0 is a root. Depth is at most 3.
type Category struct {
	ID           int64
	ParentID     int64
	Name         string
	Path         string
	Rank         int64
	HasChild     bool
	CreatedDate  time.Time
	ModifiedDate time.Time
}

// Branch is one shop branch.
type Branch struct {
	ID            int64
	Name          string
	Code          string
	Address       string
	LocationName  string
	WardName      string
	ContactNumber string
	CreatedDate   time.Time
	ModifiedDate  time.Time
}

// Attribute is a variant attribute with its distinct values in use.
type Attribute struct {
	ID     int64
	Name   string
	Values []string
}

// Deleted records a deleted product: /products reports its id in removeId
// to a request whose lastModifiedFrom is at or before DeletedAt.
type Deleted struct {
	ID        int64
	Code      string // the code the product had; KiotViet renames it Code + "{DEL}"
	DeletedAt time.Time
	product   *Product // as it was, for the detail endpoint and ListDeleted
}

// RenamedCode is the code KiotViet shows for the deleted product.
func (d Deleted) RenamedCode() string { return d.Code + kiotviet.DeletedCodeSuffix }

// Vietnamese names for the generated shop. Fixed tables, read only.
var (
	rootCategoryNames = []string{"Thời trang", "Thực phẩm", "Đồ uống", "Mẹ & Bé", "Gia dụng", "Văn phòng phẩm",
		"Mỹ phẩm", "Điện tử", "Sức khỏe", "Thể thao", "Đồ chơi", "Nhà cửa & Đời sống"}
	subCategoryNames = []string{"Áo", "Quần", "Giày dép", "Sữa", "Bánh kẹo", "Gia vị", "Nước giải khát", "Cà phê",
		"Trà", "Tã bỉm", "Đồ dùng nhà bếp", "Bút viết", "Sổ tay", "Chăm sóc da", "Son môi", "Phụ kiện",
		"Vitamin", "Dụng cụ", "Ba lô", "Khăn", "Đèn", "Nồi chảo", "Xà phòng", "Mì gói"}
	nouns = []string{"Áo thun", "Quần jean", "Sữa tươi", "Nước mắm", "Bánh quy", "Cà phê rang xay", "Trà xanh",
		"Mì ăn liền", "Dầu gội", "Kem đánh răng", "Bút bi", "Vở ô li", "Nồi cơm điện", "Chảo chống dính",
		"Khẩu trang", "Giày thể thao", "Dép lê", "Son dưỡng", "Sữa rửa mặt", "Nước suối", "Bia lon",
		"Kẹo dẻo", "Tã dán", "Bình sữa", "Ly thủy tinh", "Khăn tắm", "Ba lô", "Đèn bàn", "Pin tiểu", "Gạo thơm"}
	brands = []string{"Vinamilk", "Trung Nguyên", "Biti's", "Thiên Long", "Kinh Đô", "Chinsu", "Acecook",
		"TH True Milk", "Sunhouse", "Điện Quang", "Hảo Hảo", "Masan", "Rạng Đông", "Hồng Hà", "Lock&Lock"}
	adjectives = []string{"cao cấp", "loại 1", "đặc biệt", "hương dâu", "không đường", "cỡ lớn", "mini",
		"phiên bản mới", "chính hãng", "xuất khẩu", "ít béo", "hữu cơ"}
	branchNames = []string{"Chi nhánh trung tâm", "Chi nhánh Quận 1", "Chi nhánh Hà Đông", "Chi nhánh Đà Nẵng",
		"Chi nhánh Cần Thơ", "Chi nhánh Hải Phòng", "Chi nhánh Biên Hòa", "Chi nhánh Nha Trang"}
	locations = []string{"Hồ Chí Minh - Quận 1", "Hà Nội - Quận Hà Đông", "Đà Nẵng - Quận Hải Châu",
		"Cần Thơ - Quận Ninh Kiều", "Hải Phòng - Quận Lê Chân", "Đồng Nai - Thành phố Biên Hòa"}
	wards      = []string{"Phường Bến Nghé", "Phường Văn Quán", "Phường Thạch Thang", "Phường An Hòa", "Phường 12"}
	colors     = []string{"Đỏ", "Xanh", "Đen", "Trắng", "Vàng", "Hồng"}
	sizes      = []string{"S", "M", "L", "XL"}
	volumes    = []string{"250ml", "500ml", "1L"}
	baseUnits  = []string{"Cái", "Hộp", "Chai", "Gói", "Lon", "Túi"}
	packUnits  = []string{"Thùng", "Lốc", "Bịch", "Kiện"}
	attributes = []struct {
		id   int64
		name string
	}{{1, "Màu sắc"}, {2, "Kích thước"}, {3, "Dung tích"}}
)

// rowTime truncates to the millisecond so that a time survives the
// seven-digit wire format unchanged.
func rowTime(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

// generator builds the seeded catalogue.
type generator struct {
	rng  *rand.Rand
	x    *rand.Rand // draws for the details below, apart so rng's sequence (the base shop) is unchanged
	now  time.Time
	s    *Server
	mseq int // masterCode sequence
	// normals are recent normal products, in the order made: a combo's parts
	normals []*Product
}

// pastTimes returns a created date in the last two years and a modified
// date between it and now.
func (g *generator) pastTimes() (time.Time, time.Time) {
	span := int64(730 * 24 * time.Hour)
	created := rowTime(g.now.Add(-time.Duration(g.rng.Int64N(span) + int64(time.Hour))))
	modified := rowTime(created.Add(time.Duration(g.rng.Int64N(int64(g.now.Sub(created))))))
	return created, modified
}

func (g *generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// generate fills s with branches, categories and products. Caller holds no lock
// (the server is not shared yet).
func (g *generator) generate(o Options) {
	s := g.s
	s.retailerID = 500_000_000 + g.rng.Int64N(500_000)
	for i := 0; i < o.Branches; i++ {
		name := fmt.Sprintf("Chi nhánh %d", i+1)
		if i < len(branchNames) {
			name = branchNames[i]
		}
		created, modified := g.pastTimes()
		s.branches = append(s.branches, &Branch{
			ID: 146_868 + int64(i)*int64(1+g.rng.IntN(500)) + int64(i), Name: name, Code: fmt.Sprintf("CN%03d", i+1),
			Address: fmt.Sprintf("%d Nguyễn Huệ", 1+g.rng.IntN(300)), LocationName: g.pick(locations),
			WardName: g.pick(wards), ContactNumber: fmt.Sprintf("09%08d", g.rng.IntN(100_000_000)),
			CreatedDate: created, ModifiedDate: modified,
		})
	}
	g.generatePriceBooks()
	g.generateCategories(o.Categories)
	for len(s.products) < o.Products {
		g.addGroup(o.Products-len(s.products), time.Time{})
	}
}

func (g *generator) generateCategories(n int) {
	s := g.s
	roots := max(1, min(len(rootCategoryNames), n/6+1))
	used := map[string]bool{}
	for i := 0; i < n; i++ {
		c := &Category{ID: s.nextCategoryID, Rank: int64(i)}
		s.nextCategoryID += int64(1 + g.rng.IntN(40))
		depth := 1
		if i < roots {
			c.Name = rootCategoryNames[i]
		} else {
			// A parent of depth 1 or 2, so the tree stays within 3 levels.
			for {
				p := s.catList[g.rng.IntN(len(s.catList))]
				if d := s.depth(p); d < 3 {
					c.ParentID, depth = p.ID, d+1
					break
				}
			}
			c.Name = g.pick(subCategoryNames)
			if depth == 3 {
				c.Name += " " + strings.ToLower(g.pick(adjectives))
			}
		}
		key := fmt.Sprint(c.ParentID, "/", c.Name)
		for k := 2; used[key]; k++ {
			c.Name = fmt.Sprintf("%s %d", strings.TrimRight(c.Name, " 0123456789"), k)
			key = fmt.Sprint(c.ParentID, "/", c.Name)
		}
		used[key] = true
		c.CreatedDate, c.ModifiedDate = g.pastTimes()
		s.addCategoryLocked(c)
	}
}

// addGroup adds up to room product rows: a simple product, a variant group
// or a unit group. A non-zero at is the created/modified time (mutations).
func (g *generator) addGroup(room int, at time.Time) []*Product {
	s := g.s
	roll := g.rng.IntN(10)
	base := g.baseProduct(at)
	var rows []*Product
	switch {
	case roll < 2 && room >= 3: // variants
		nv := min(room, 2+g.rng.IntN(3))
		attr := attributes[g.rng.IntN(len(attributes))]
		values := map[int64][]string{1: colors, 2: sizes, 3: volumes}[attr.id]
		start := g.rng.IntN(len(values))
		for i := 0; i < nv; i++ {
			p := *base
			v := values[(start+i)%len(values)]
			p.ID, p.Code = g.nextID(), g.nextCode()
			p.HasVariants = true
			p.Attributes = []ProductAttribute{{AttributeName: attr.name, AttributeValue: v}}
			p.FullName = p.Name + " - " + v
			p.Images = append([]string(nil), base.Images...)
			p.Inventories = g.inventories(p.BasePrice)
			if i > 0 {
				p.MasterProductID = rows[0].ID
			}
			rows = append(rows, &p)
		}
	case roll < 3 && room >= 2: // units
		base.ID, base.Code = g.nextID(), g.nextCode()
		pack := *base
		pack.ID, pack.Code = g.nextID(), g.nextCode()
		pack.Unit = g.pick(packUnits)
		pack.ConversionValue = float64([]int{6, 12, 24, 48}[g.rng.IntN(4)])
		pack.BasePrice = math.Round(base.BasePrice*pack.ConversionValue*0.95/1000) * 1000
		pack.MasterUnitID = base.ID
		pack.FullName = pack.Name + " (" + pack.Unit + ")"
		pack.Barcode = ""
		pack.Inventories = g.inventories(pack.BasePrice)
		pack.Images = append([]string(nil), base.Images...)
		units := []Unit{
			{ID: base.ID, Code: base.Code, Name: base.Name, FullName: base.FullName, Unit: base.Unit, ConversionValue: 1, BasePrice: base.BasePrice},
			{ID: pack.ID, Code: pack.Code, Name: pack.Name, FullName: pack.FullName, Unit: pack.Unit, ConversionValue: pack.ConversionValue, BasePrice: pack.BasePrice},
		}
		base.Units, pack.Units = units, append([]Unit(nil), units...)
		rows = append(rows, base, &pack)
	default:
		base.ID, base.Code = g.nextID(), g.nextCode()
		if base.Type == 2 && g.x.IntN(20) == 0 {
			g.makeCombo(base)
		}
		rows = append(rows, base)
	}
	g.mseq++
	master := fmt.Sprintf("SPC%06d", g.mseq)
	for _, p := range rows {
		p.MasterCode = master
		g.decorate(p)
		s.putProductLocked(p)
		if p.Type == 2 {
			g.normals = append(g.normals, p)
			if len(g.normals) > 64 {
				g.normals = g.normals[1:]
			}
		}
	}
	return rows
}

// priceBookNames are the fake shop's price books; the last one is inactive.
var priceBookNames = []string{"Bảng giá sỉ", "Bảng giá VIP", "Bảng giá khuyến mãi Tết"}

func (g *generator) generatePriceBooks() {
	start := time.Date(g.now.Year(), 1, 1, 0, 0, 0, 0, kiotviet.VietnamZone())
	for i, name := range priceBookNames {
		pb := PriceBookPrice{PriceBookID: 813_695 + int64(i)*17, PriceBookName: name, IsActive: i < 2,
			StartDate: start, EndDate: start.AddDate(1+i, 0, 0)}
		g.s.priceBooks = append(g.s.priceBooks, pb)
	}
}

// makeCombo turns p into a combo of two or three normal products the shop already has.
func (g *generator) makeCombo(p *Product) {
	var parts []*Product
	for _, q := range g.normals {
		if g.s.products[q.ID] == q { // not deleted since
			parts = append(parts, q)
		}
	}
	if len(parts) < 2 {
		return
	}
	p.Type, p.IsLotSerialControl, p.IsBatchExpireControl = 1, false, false
	n := 2 + g.x.IntN(2)
	seen := map[int64]bool{}
	for len(p.Components) < n && len(seen) < len(parts) {
		q := parts[g.x.IntN(len(parts))]
		if seen[q.ID] {
			continue
		}
		seen[q.ID] = true
		p.Components = append(p.Components, Component{ProductID: q.ID, Code: q.Code, Name: q.Name, FullName: q.FullName,
			Unit: q.Unit, Quantity: float64(1 + g.x.IntN(3)), BasePrice: q.BasePrice})
	}
	slices.SortFunc(p.Components, func(a, b Component) int { return cmp.Compare(a.ProductID, b.ProductID) })
}

// decorate draws a row's price books, shelves, serials and lots (each row has its own stock).
func (g *generator) decorate(p *Product) {
	for _, pb := range g.s.priceBooks {
		if g.x.IntN(3) == 0 {
			pb.Price = math.Round(p.BasePrice*(0.8+0.15*g.x.Float64())/1000) * 1000
			p.PriceBooks = append(p.PriceBooks, pb)
		}
	}
	p.Serials, p.Batches, p.Shelves = nil, nil, nil
	for i := range p.Inventories {
		inv := &p.Inventories[i]
		if p.Type == 3 || p.Type == 1 {
			inv.OnHand, inv.Reserved = 0, 0 // services and combos keep no stock of their own
		}
		if g.x.IntN(5) < 2 {
			shelf := fmt.Sprintf("Kệ %c%d", 'A'+rune(g.x.IntN(6)), 1+g.x.IntN(9))
			if g.x.IntN(4) == 0 {
				shelf += fmt.Sprintf(" | Kệ %c%d", 'A'+rune(g.x.IntN(6)), 1+g.x.IntN(9))
			}
			p.Shelves = append(p.Shelves, Shelf{BranchID: inv.BranchID, Shelves: shelf})
		}
		switch {
		case p.IsLotSerialControl:
			n := g.x.IntN(4)
			inv.OnHand, inv.Reserved = float64(n), 0
			for j := 0; j < n; j++ {
				p.Serials = append(p.Serials, Serial{SerialNumber: fmt.Sprintf("IMEI%012d", g.x.Int64N(1_000_000_000_000)),
					BranchID: inv.BranchID, Status: 1, CreatedDate: p.CreatedDate})
			}
		case p.IsBatchExpireControl:
			left := inv.OnHand
			for j := 0; left > 0 && j < 2; j++ {
				q := left
				if j == 0 && left > 1 {
					q = math.Floor(left / 2)
				}
				left -= q
				exp := time.Date(g.now.Year()+1+j, time.Month(1+g.x.IntN(12)), 1, 0, 0, 0, 0, kiotviet.VietnamZone())
				p.Batches = append(p.Batches, Batch{BatchName: fmt.Sprintf("Lô %d", len(p.Batches)+1), BranchID: inv.BranchID,
					OnHand: q, ExpireDate: exp})
			}
		}
	}
}

// baseProduct draws the shared fields of a group.
func (g *generator) baseProduct(at time.Time) *Product {
	s := g.s
	noun, brand := g.pick(nouns), g.rng.IntN(len(brands))
	name := fmt.Sprintf("%s %s %s", noun, brands[brand], g.pick(adjectives))
	created, modified := g.pastTimes()
	if !at.IsZero() {
		created, modified = at, at
	}
	cat := s.catList[g.rng.IntN(len(s.catList))]
	price := float64(5+g.rng.IntN(1995)) * 1000
	p := &Product{
		Name: name, FullName: name,
		Description:     fmt.Sprintf("%s chính hãng %s.", noun, brands[brand]),
		CategoryID:      cat.ID,
		TradeMarkID:     int64(10_000 + brand),
		Unit:            g.pick(baseUnits),
		BasePrice:       price,
		Weight:          float64(50+g.rng.IntN(2000)) / 1000,
		AllowsSale:      g.rng.IntN(20) >= 9, // many real shops sell nothing directly (117 of 117 in one export)
		IsActive:        g.rng.IntN(25) != 0,
		IsRewardPoint:   g.rng.IntN(3) != 0,
		Type:            2,
		ConversionValue: 1,
		CreatedDate:     created, ModifiedDate: modified, StockModifiedDate: modified,
	}
	p.TradeMarkName = brands[brand]
	if g.x.IntN(4) == 0 { // no brand: KiotViet leaves the tradeMark fields out
		p.TradeMarkID, p.TradeMarkName = 0, ""
	}
	switch g.x.IntN(3) {
	case 0:
		p.TaxType, p.TaxRate = "khau_tru", []float64{0, 5, 8, 10}[g.x.IntN(4)]
	case 1:
		p.TaxType, p.TaxRateDirect = "truc_tiep", []float64{1, 1.5, 2}[g.x.IntN(3)]
	}
	switch r := g.x.IntN(20); {
	case r < 2:
		p.IsLotSerialControl = true
	case r < 4:
		p.IsBatchExpireControl = true
	}
	if g.rng.IntN(10) < 6 {
		p.Barcode = fmt.Sprintf("893%010d", g.rng.Int64N(10_000_000_000))
	}
	if g.rng.IntN(30) == 0 {
		p.Type, p.Unit = 3, "Lần" // a service
		p.IsLotSerialControl, p.IsBatchExpireControl = false, false
	}
	if g.rng.IntN(15) == 0 {
		p.OrderTemplate = "Giao trong ngày"
	}
	for i := g.rng.IntN(4); i > 0; i-- {
		p.Images = append(p.Images, fmt.Sprintf("https://cdn2-retail-images.kiotviet.vn/%d/%016x.jpg", s.retailerID, g.rng.Uint64()))
	}
	p.Inventories = g.inventories(price)
	return p
}

func (g *generator) inventories(price float64) []Inventory {
	inv := make([]Inventory, len(g.s.branches))
	for i, b := range g.s.branches {
		inv[i] = Inventory{
			BranchID: b.ID, OnHand: float64(g.rng.IntN(200)), Reserved: float64(g.rng.IntN(6)),
			Cost: math.Round(price*0.6/100) * 100, MinQuantity: float64(g.rng.IntN(10)), MaxQuantity: float64(500 + g.rng.IntN(500)),
		}
	}
	return inv
}

func (g *generator) nextID() int64 {
	id := g.s.nextProductID
	g.s.nextProductID += int64(1 + g.rng.IntN(7))
	return id
}

func (g *generator) nextCode() string {
	g.s.codeSeq++
	return fmt.Sprintf("SP%06d", g.s.codeSeq)
}
