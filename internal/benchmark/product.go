package benchmark

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// The list scenario's product mode (`wick bench list --product`): a
// product of Config.Devices devices, written to the store before the
// server starts (as a fleet imported long ago: none connected now), and
// clients that read pages of GET /v1/products/:p/devices.

// DefaultPerPage is the page size of the product mode.
const DefaultPerPage = 25

// benchProduct is the slug of the product the product mode creates.
const benchProduct = "bench-fleet"

// insertChunk is how many devices one transaction inserts.
const insertChunk = 10000

// productCustomers is how many customers own the product's devices.
const productCustomers = 2000

// PageKinds are the pages the product mode reads, in turn: the first, a
// middle and the last page in the default order (last handshake, newest
// first), and a middle page sorted by device ID.
var PageKinds = []string{"first", "middle", "last", "middle-by-id"}

// PageResult is the latency of one kind of page.
type PageResult struct {
	Kind    string  `json:"kind"`
	Query   string  `json:"query"`
	Ops     int64   `json:"ops"`
	Latency Latency `json:"latency_ms"`
}

// fillProduct creates the product benchProduct, owned by benchUser, with
// cfg.Devices devices in the store of the server configuration sc, and
// returns its ID. Device i (from 1) has the simulator's ID sim.DeviceID(
// cfg.IDPrefix, i), the name dev-i, a last handshake spread over a day
// (except every tenth device, which never connected), and one in 4 a
// customer, one in 50 the bench user as its owner.
func fillProduct(ctx context.Context, sc config.Serve, cfg EnvConfig, log *slog.Logger) (int64, error) {
	dsn := sc.DB
	if dsn == "" {
		dsn = config.DefaultDB(sc.Data)
	}
	db, err := sqlstore.Open(ctx, dsn, log)
	if err != nil {
		return 0, fmt.Errorf("benchmark: product: %w", err)
	}
	defer db.Close()
	p := &store.Product{Slug: benchProduct, Name: "Bench fleet", PlatformID: 12}
	if err := db.CreateProduct(ctx, p, benchUser); err != nil {
		return 0, fmt.Errorf("benchmark: product: %w", err)
	}
	owner, err := db.UserByUsername(ctx, benchUser)
	if err != nil {
		return 0, fmt.Errorf("benchmark: product: %w", err)
	}
	// One device in 4 belongs to one of productCustomers customers, one
	// in 50 to the bench user, as in BenchmarkProductDevicePages: a page
	// shows its devices' owners.
	customers := make([]string, min(productCustomers, max(1, cfg.Devices/50)))
	for i := range customers {
		c := &store.Customer{ProductID: p.ID, Email: fmt.Sprintf("customer-%d@bench.wick.local", i), PasswordHash: "x"}
		if err := db.CreateCustomer(ctx, c); err != nil {
			return 0, fmt.Errorf("benchmark: product: %w", err)
		}
		customers[i] = c.ID
	}
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	devs := make([]store.Device, 0, insertChunk)
	for lo := 1; lo <= cfg.Devices; lo += insertChunk {
		devs = devs[:0]
		for i := lo; i < min(lo+insertChunk, cfg.Devices+1); i++ {
			id, err := sim.DeviceID(cfg.IDPrefix, i)
			if err != nil {
				return 0, fmt.Errorf("benchmark: product: %w", err)
			}
			d := store.Device{ID: id, Name: "dev-" + strconv.Itoa(i), ProductID: p.ID, PlatformID: 12, ProductVersion: i % 5}
			switch {
			case i%4 == 1:
				d.CustomerID = customers[i*7%len(customers)]
			case i%50 == 2:
				d.OwnerID = owner.ID
			}
			if i%10 != 0 {
				// A permutation of the devices over a day: the default
				// order is not the ID order.
				at := base.Add(time.Duration(int64(i)*7919%int64(cfg.Devices)) * time.Second * 86400 / time.Duration(cfg.Devices))
				d.LastHandshakeAt = &at
			}
			devs = append(devs, d)
		}
		if err := db.InsertDevices(ctx, devs); err != nil {
			return 0, fmt.Errorf("benchmark: product: %w", err)
		}
	}
	// The pages are read as in a store autovacuum has analyzed since the
	// fleet was written: PostgreSQL plans some of their statements
	// differently without statistics.
	if err := db.Analyze(ctx); err != nil {
		return 0, fmt.Errorf("benchmark: product: %w", err)
	}
	return p.ID, nil
}

// pageQuery is one page the product mode reads, and what it must hold.
type pageQuery struct {
	kind  string
	query string // ?perPage=...
	page  int
	count int    // devices on the page
	first string // the first device's ID, when the order is known ("" else)
}

// productPages returns the pages of PageKinds for perPage.
func (e *Env) productPages(perPage int) []pageQuery {
	n := len(e.DeviceIDs)
	last := (n + perPage - 1) / perPage
	middle := max(1, last/2)
	count := func(page int) int { return min(perPage, n-(page-1)*perPage) }
	pp := "?perPage=" + strconv.Itoa(perPage)
	return []pageQuery{
		{kind: PageKinds[0], query: pp, page: 1, count: count(1)},
		{kind: PageKinds[1], query: pp + "&page=" + strconv.Itoa(middle), page: middle, count: count(middle)},
		{kind: PageKinds[2], query: pp + "&page=" + strconv.Itoa(last), page: last, count: count(last)},
		{kind: PageKinds[3], query: pp + "&sortAttr=deviceId&sortDir=asc&page=" + strconv.Itoa(middle), page: middle,
			count: count(middle), first: e.DeviceIDs[(middle-1)*perPage]},
	}
}

// productPage is the part of a page the product mode checks.
type productPage struct {
	Devices []struct {
		ID string `json:"id"`
	} `json:"devices"`
	Meta struct {
		Page    int `json:"page"`
		PerPage int `json:"per_page"`
		Total   int `json:"total"`
	} `json:"meta"`
}

// check reports what is wrong with a page read for q, "" if nothing.
func (q pageQuery) check(body []byte, total, perPage int) string {
	var p productPage
	if err := json.Unmarshal(body, &p); err != nil {
		return err.Error()
	}
	switch {
	case len(p.Devices) != q.count:
		return fmt.Sprintf("%d devices, want %d", len(p.Devices), q.count)
	case p.Meta.Total != total || p.Meta.Page != q.page || p.Meta.PerPage != perPage:
		return fmt.Sprintf("meta %+v, want total %d, page %d, per_page %d", p.Meta, total, q.page, perPage)
	case q.first != "" && p.Devices[0].ID != q.first:
		return fmt.Sprintf("first device %s, want %s", p.Devices[0].ID, q.first)
	}
	return ""
}

// ProductPages runs the list scenario's product mode: concurrency clients
// read the pages of PageKinds of perPage devices, in turn, from GET
// /v1/products/:p/devices, and check each (its count of devices, its
// meta, and the first device where the order is the IDs'); m.RPS paces
// them. Result.Pages has each kind's latency.
func (e *Env) ProductPages(ctx context.Context, concurrency, perPage int, m Measure) (*Result, error) {
	if e.ProductID == 0 {
		return nil, fmt.Errorf("%w: the environment has no product (EnvConfig.ProductDevices)", ErrConfig)
	}
	if perPage < 1 {
		return nil, fmt.Errorf("%w: --per-page must be at least 1", ErrConfig)
	}
	pages := e.productPages(perPage)
	path := "/v1/products/" + strconv.FormatInt(e.ProductID, 10) + "/devices"
	// Each window's meter gets its own histograms of the page kinds.
	var byMeter sync.Map // *meter → []*histogram
	hists := func(mt *meter) []*histogram {
		if h, ok := byMeter.Load(mt); ok {
			return h.([]*histogram)
		}
		hs := make([]*histogram, len(pages))
		for i := range hs {
			hs[i] = new(histogram)
		}
		h, _ := byMeter.LoadOrStore(mt, hs)
		return h.([]*histogram)
	}
	var next atomic.Uint64
	cur, stop := requestLoad(ctx, concurrency, m.RPS, func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
		k := int(next.Add(1)-1) % len(pages)
		q := pages[k]
		resp := e.send(ctx, http.MethodGet, path+q.query, "", cur)
		if resp == nil {
			return
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat := time.Since(start)
		switch {
		case ctx.Err() != nil:
		case resp.StatusCode != http.StatusOK:
			report(cur, 0, "HTTP "+strconv.Itoa(resp.StatusCode), fmt.Errorf("GET %s%s: HTTP %d: %.200s", path, q.query, resp.StatusCode, body))
		case rerr != nil:
			report(cur, 0, "read", fmt.Errorf("GET %s%s: %w", path, q.query, rerr))
		default:
			if bad := q.check(body, len(e.DeviceIDs), perPage); bad != "" {
				report(cur, 0, "wrong answer", fmt.Errorf("GET %s%s: %s", path, q.query, bad))
				return
			}
			if mt := cur.Load(); mt != nil {
				mt.bytes.Add(int64(len(body)))
				hists(mt)[k].record(lat)
			}
			report(cur, lat, "", nil)
		}
	})
	w, err := measure(ctx, List, "pages/s", m, cur, nil)
	stop()
	if err != nil {
		return nil, err
	}
	r := e.result(List, "pages/s", w)
	r.Concurrency, r.RPS = concurrency, m.RPS
	r.ProductID, r.PerPage = e.ProductID, perPage
	hs := hists(w.meter)
	for i, q := range pages {
		s := hs[i].snapshot()
		r.Pages = append(r.Pages, PageResult{Kind: q.kind, Query: q.query, Ops: s.total, Latency: s.latency()})
	}
	if r.Ops > 0 {
		r.BytesPerOp = float64(w.meter.bytes.Load()) / float64(r.Ops)
	}
	r.Goal = productGoal(r)
	return r, nil
}

// productGoal is the target for product pages: every kind of
// page of 25 to 100 devices under 2 ms p50 with 100,000 devices in the
// product, without errors.
func productGoal(r *Result) *Goal {
	met := r.Devices >= 100000 && r.PerPage >= 25 && r.PerPage <= 100 && r.Errors == 0 && len(r.Pages) > 0
	for _, p := range r.Pages {
		met = met && p.Ops > 0 && p.Latency.P50 < 2
	}
	return &Goal{Text: "pages of 25-100 devices < 2 ms p50 (100,000 devices in the product)", Met: met}
}
