package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// countingProductLists passes the store's versioned lists through and
// counts how often a product's keys are read (a rebuild of its order).
type countingProductLists struct {
	store.Store
	lists   store.DeviceLists
	pl      store.ProductDeviceLists
	keys    atomic.Int64
	changes atomic.Int64
	// withAccess counts the pages read with a user's team check
	// (store.ProductDevicePageAccess).
	withAccess atomic.Int64
}

func (c *countingProductLists) DeviceVersionsByOwner(ctx context.Context, id string) ([]store.DeviceVersion, error) {
	return c.lists.DeviceVersionsByOwner(ctx, id)
}

func (c *countingProductLists) DeviceVersionsByCustomer(ctx context.Context, id string) ([]store.DeviceVersion, error) {
	return c.lists.DeviceVersionsByCustomer(ctx, id)
}

func (c *countingProductLists) DevicesByIDs(ctx context.Context, ids []string) ([]store.VersionedDevice, error) {
	return c.lists.DevicesByIDs(ctx, ids)
}

func (c *countingProductLists) ProductDeviceListState(ctx context.Context, p int64) (store.ProductDeviceList, error) {
	return c.pl.ProductDeviceListState(ctx, p)
}

func (c *countingProductLists) ProductDeviceKeys(ctx context.Context, p int64) (store.ProductDeviceList, []store.ProductDeviceKey, error) {
	c.keys.Add(1)
	return c.pl.ProductDeviceKeys(ctx, p)
}

func (c *countingProductLists) ProductDeviceChanges(ctx context.Context, p, since int64) (store.ProductDeviceList, []store.ProductDeviceKey, []string, bool, error) {
	l, changed, gone, complete, err := c.pl.ProductDeviceChanges(ctx, p, since)
	if l.Version > since {
		c.changes.Add(1) // changes were read (a call that finds none is the read of the version)
	}
	return l, changed, gone, complete, err
}

func (c *countingProductLists) ProductDeviceVersions(ctx context.Context, p int64, ids []string) ([]store.DeviceVersion, error) {
	return c.pl.ProductDeviceVersions(ctx, p, ids)
}

// countingProductPages is countingProductLists that also passes
// store.ProductDevicePages, store.TeamAccess and
// store.ProductDevicePageAccess through (the page read in one round trip,
// a user's team check with it).
type countingProductPages struct {
	*countingProductLists
	pp store.ProductDevicePages
}

func (c countingProductPages) ProductAccessByID(ctx context.Context, p int64, userID string) (*store.ProductAccess, error) {
	return c.Store.(store.TeamAccess).ProductAccessByID(ctx, p, userID)
}

func (c countingProductPages) ProductAccessBySlug(ctx context.Context, slug, userID string) (*store.ProductAccess, error) {
	return c.Store.(store.TeamAccess).ProductAccessBySlug(ctx, slug, userID)
}

func (c countingProductPages) ReadProductDevicePageFor(ctx context.Context, ref store.ProductRef, userID string, p, since int64,
	ids []string) (*store.ProductAccess, store.ProductDevicePageRead, error) {
	c.withAccess.Add(1)
	a, r, err := c.Store.(store.ProductDevicePageAccess).ReadProductDevicePageFor(ctx, ref, userID, p, since, ids)
	if r.State.Version > since {
		c.changes.Add(1)
	}
	return a, r, err
}

func (c countingProductPages) ReadProductDevicePage(ctx context.Context, p, since int64, ids []string) (store.ProductDevicePageRead, error) {
	r, err := c.pp.ReadProductDevicePage(ctx, p, since, ids)
	if r.State.Version > since {
		c.changes.Add(1)
	}
	return r, err
}

// TestProductDeviceListMatchesSQL checks that every page of GET
// /v1/products/{p}/devices from the cached order is byte for byte the page
// the store's DevicesByProduct gives, for every filter and sort, after each
// kind of write, on SQLite and PostgreSQL; that presence writes leave the
// order as it is, that other writes are applied from the store's change
// log without reading the product again, and that a second node with its
// own cache, which sees several writes at once, serves the same pages.
// The pages are read as the stores do it (store.ProductDevicePages: one
// round trip on PostgreSQL), and on SQLite also with the statements one
// after the other, as for a store without it.
func TestProductDeviceListMatchesSQL(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testProductListMatchesSQL(t, apitest.Options{InMemory: true}, true) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("WICK_TEST_POSTGRES_URL") == "" {
			t.Skip("WICK_TEST_POSTGRES_URL not set")
		}
		testProductListMatchesSQL(t, apitest.Options{DSN: postgresSchema(t)}, true)
	})
	t.Run("sqlite, separate reads", func(t *testing.T) { testProductListMatchesSQL(t, apitest.Options{InMemory: true}, false) })
}

func testProductListMatchesSQL(t *testing.T, opts apitest.Options, pages bool) {
	var counter *countingProductLists
	opts.WrapStore = func(st store.Store) store.Store {
		counter = &countingProductLists{Store: st, lists: st.(store.DeviceLists), pl: st.(store.ProductDeviceLists)}
		if pages {
			return countingProductPages{counter, st.(store.ProductDevicePages)}
		}
		return counter
	}
	opts.Config.GlobalRate = 1 << 30 // many pages under a stopped clock
	w := productWorldOpts(t, opts)
	ref := api.New(api.Config{Now: w.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: plainStore{w.DB}, Auth: w.Auth}, nil)
	node2 := api.New(api.Config{Now: w.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: w.DB, Auth: w.Auth}, nil)
	ctx := context.Background()
	st := w.Store
	base := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	var more []deviceFixture
	for i := range 30 {
		f := deviceFixture{id: fmt.Sprintf("fa0000000000000000%06x", 0x100+i*37), productID: w.product.ID}
		if i%3 != 0 {
			f.name = fmt.Sprintf("unit-%d", i%11)
		}
		if i%7 == 1 {
			f.name = fmt.Sprintf("under_score%d", i)
		}
		if i%4 != 0 {
			f.session = &store.DeviceSession{Node: "n1", SessionID: fmt.Sprintf("m%d", i), At: base.Add(time.Duration(i%7) * time.Hour),
				PlatformID: 12, ProductVersion: i % 3}
		}
		if i%5 == 0 {
			f.customer = w.customer.ID
		}
		more = append(more, f)
	}
	addDevices(t, st, more)

	queries := []string{
		"", "?perPage=4", "?perPage=4&page=3", "?per_page=7&page=2", "?page=99",
		"?sortAttr=deviceId", "?sortAttr=deviceId&sortDir=asc&perPage=9&page=2",
		"?sortAttr=firmwareVersion&perPage=100", "?sortAttr=firmwareVersion&sortDir=asc&perPage=5&page=4",
		"?sortAttr=lastConnection&sortDir=asc&perPage=6&page=2",
		"?deviceName=ALPHA", "?deviceName=unit-1&perPage=3&page=2", "?deviceId=F1", "?deviceId=1a",
		"?quarantined=true", "?quarantined=false&perPage=5&page=3", "?deviceName=unit&quarantined=false&sortAttr=deviceId",
		"?deviceName=%25", "?serialNumber=x", "?groups=a",
		"?deviceName=a&perPage=2&page=2", "?deviceName=a&sortAttr=deviceId&sortDir=asc&perPage=3&page=3",
		"?deviceName=a&perPage=3&page=5", "?deviceName=a&page=99", "?deviceName=_", "?deviceName=e_s",
		"?deviceName=renamed&sortAttr=firmwareVersion", "?deviceId=0&sortAttr=firmwareVersion&perPage=4&page=2",
		"?deviceId=fa&quarantined=false&sortDir=asc&perPage=6&page=4", "?deviceId=f&sortAttr=deviceId&perPage=50&page=2",
		"?deviceName=ALPHA&quarantined=true", "?deviceId=0000ff&deviceName=", "?deviceId=b&deviceName=u&perPage=2&page=3",
	}
	get := func(h http.Handler, path string) []byte {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+w.ownerToken)
		r.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	check := func(step string, h http.Handler) {
		t.Helper()
		for i, q := range queries {
			path := "/v1/products/" + strconv.FormatInt(w.product.ID, 10) + "/devices" + q
			hpath := path // every other page by slug
			if i%2 == 1 {
				hpath = "/v1/products/" + w.product.Slug + "/devices" + q
			}
			if got, want := get(h, hpath), get(ref, path); !bytes.Equal(got, want) {
				t.Fatalf("%s: GET %s\ncached %s\nwant   %s", step, hpath, got, want)
			}
		}
	}
	check("first", w.Handler)
	check("first, node 2", node2)
	update := func(id string, f func(d *store.Device)) func() error {
		return func() error {
			d, err := st.DeviceByID(ctx, id)
			if err != nil {
				return err
			}
			f(d)
			return st.UpdateDevice(ctx, d)
		}
	}
	online := func(id string, at time.Time, version int) error {
		_, err := st.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n1", SessionID: "o" + id, At: at, ProductVersion: version})
		return err
	}
	newDevices := func(prefix string, n int) []store.Device {
		devs := make([]store.Device, n)
		for i := range devs {
			devs[i] = store.Device{ID: fmt.Sprintf("%s%0*x", prefix, 24-len(prefix), i), ProductID: w.product.ID,
				ProductVersion: i % 4, Quarantined: i%9 == 0}
			if i%3 != 0 {
				devs[i].Name = fmt.Sprintf("Bulk-%d", i%13)
			}
			if i%5 != 0 {
				at := base.Add(time.Duration(i%17) * time.Minute)
				devs[i].LastHandshakeAt = &at
			}
		}
		return devs
	}
	steps := []struct {
		name  string
		write func() error
		moves bool // the product's order version moves
		whole bool // and the order is read whole again (the change log no longer reaches back)
	}{
		{name: "offline", write: func() error { _, err := st.SetDeviceOffline(ctx, pdAlpha, "s1", base); return err }},
		{name: "last heard", write: func() error { return st.TouchDevices(ctx, map[string]time.Time{pdBeta: base.Add(time.Hour)}) }},
		{name: "describe", write: func() error {
			return st.SetDeviceDescribe(ctx, pdBeta, store.Describe{Parts: store.DescribeApplication, Functions: []string{"x"}})
		}},
		{name: "notes", write: update(pdGamma, func(d *store.Device) { d.Notes = "<b>" })},
		{name: "online", moves: true, write: func() error { return online(pdGamma, base.Add(9*time.Hour), 7) }},
		{name: "rename", moves: true, write: update(pdUnnamed, func(d *store.Device) { d.Name = "alpha-2" })},
		{name: "quarantine", moves: true, write: update(pdBeta, func(d *store.Device) { d.Quarantined = true })},
		{name: "claim by customer", write: func() error { _, err := st.ClaimDevice(ctx, pdAlphabet, "", w.customer.ID); return err }},
		{name: "move out", moves: true, write: update(pdAlpha, func(d *store.Device) { d.ProductID = w.otherProduct.ID })},
		{name: "import", moves: true, write: func() error {
			_, err := st.ProvisionDevice(ctx, "fa00000000000000000000ff", "", nil, w.product.ID)
			return err
		}},
		{name: "delete", moves: true, write: func() error { return st.DeleteDevice(ctx, pdGamma) }},
		{name: "move in", moves: true, write: update(pdGadget, func(d *store.Device) { d.ProductID = w.product.ID })},
		{name: "rename twice", moves: true, write: func() error {
			if err := update(pdBeta, func(d *store.Device) { d.Name = "renamed-beta" })(); err != nil {
				return err
			}
			return update(pdBeta, func(d *store.Device) { d.Name = "Renamed" })()
		}},
		{name: "unquarantine and firmware", moves: true, write: func() error {
			if err := update(pdBeta, func(d *store.Device) { d.Quarantined = false })(); err != nil {
				return err
			}
			return online(pdBeta, base.Add(-time.Hour), 9)
		}},
		{name: "import and delete", moves: true, write: func() error {
			if _, err := st.ProvisionDevice(ctx, "fa00000000000000000000fe", "", nil, w.product.ID); err != nil {
				return err
			}
			return st.DeleteDevice(ctx, "fa00000000000000000000fe")
		}},
		{name: "40 handshakes", moves: true, write: func() error {
			for i := range 40 {
				if err := online(more[i%len(more)].id, base.Add(time.Duration(i*13%29)*time.Minute), i%5); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "bulk import of 60", moves: true, write: func() error { return w.DB.InsertDevices(ctx, newDevices("fb", 60)) }},
		{name: "40 renames", moves: true, write: func() error {
			for i := range 40 {
				id := fmt.Sprintf("fb%022x", i)
				if err := update(id, func(d *store.Device) { d.Name = fmt.Sprintf("renamed-%d", i%7) })(); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "bulk import past the change log", moves: true, whole: true,
			write: func() error { return w.DB.InsertDevices(ctx, newDevices("fc", 4100)) }},
		{name: "delete 40", moves: true, write: func() error {
			for i := range 40 {
				if err := st.DeleteDevice(ctx, fmt.Sprintf("fb%022x", i+10)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "20 handshakes to the front", moves: true, write: func() error {
			for i := range 20 {
				if err := online(fmt.Sprintf("fc%022x", i), base.Add(48*time.Hour+time.Duration(i)*time.Second), 1); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "delete the front 20", moves: true, write: func() error {
			for i := range 20 {
				if err := st.DeleteDevice(ctx, fmt.Sprintf("fc%022x", i)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for i, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		keys, changes := counter.keys.Load(), counter.changes.Load()
		check(s.name, w.Handler)
		if n := counter.keys.Load() - keys; (n > 0) != s.whole || n > 1 {
			t.Errorf("%s: read the product's keys %d times; want %v", s.name, n, s.whole)
		}
		if n := counter.changes.Load() - changes; (n > 0) != s.moves || n > 1 {
			t.Errorf("%s: read the product's changes %d times; want %v", s.name, n, s.moves)
		}
		if i%3 == 2 || i == len(steps)-1 { // the second node sees three steps at once
			check(s.name+", node 2", node2)
		}
	}
	if n := counter.withAccess.Load(); pages && n == 0 {
		t.Error("no page was read with its team check (store.ProductDevicePageAccess)")
	}
}

// TestProductDeviceListConcurrent pages through a product from several
// goroutines while devices join, leave, connect and are renamed, so that
// changes are applied while pages and lazy sorts read the order (run it
// with -race); once the writes stop, every page is the store's again.
func TestProductDeviceListConcurrent(t *testing.T) {
	w := productWorldOpts(t, apitest.Options{InMemory: true, Config: api.Config{GlobalRate: 1 << 30}})
	ref := api.New(api.Config{Now: w.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: plainStore{w.DB}, Auth: w.Auth}, nil)
	ctx := context.Background()
	base := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	path := "/v1/products/" + strconv.FormatInt(w.product.ID, 10) + "/devices"
	queries := []string{"", "?perPage=5&page=3", "?sortAttr=deviceId&sortDir=asc&perPage=7&page=2", "?sortAttr=firmwareVersion",
		"?deviceName=n-1&perPage=3&page=2", "?deviceId=c&sortDir=asc", "?quarantined=false&perPage=4&page=5"}
	get := func(h http.Handler, q string) ([]byte, error) {
		r := httptest.NewRequest(http.MethodGet, path+q, nil)
		r.Header.Set("Authorization", "Bearer "+w.ownerToken)
		r.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", q, rec.Code, rec.Body)
		}
		return rec.Body.Bytes(), nil
	}
	id := func(i int) string { return fmt.Sprintf("fc%022x", i) }
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for r := range 3 {
		go func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if _, err := get(w.Handler, queries[i%len(queries)]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 200 {
		var err error
		switch i % 4 {
		case 0:
			_, err = w.Store.ProvisionDevice(ctx, id(i), "", nil, w.product.ID)
		case 1:
			_, err = w.Store.SetDeviceOnline(ctx, id(i-1), store.DeviceSession{Node: "n", SessionID: "s", At: base.Add(time.Duration(i%17) * time.Minute), ProductVersion: i % 3})
		case 2:
			var d *store.Device
			if d, err = w.Store.DeviceByID(ctx, id(i-2)); err == nil {
				d.Name, d.Quarantined = fmt.Sprintf("n-%d", i%13), i%3 == 0
				err = w.Store.UpdateDevice(ctx, d)
			}
		case 3:
			if i%8 == 7 {
				err = w.Store.DeleteDevice(ctx, id(i-7))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range queries {
		got, err := get(w.Handler, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := get(ref, q)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("GET %s after the writes\ncached %s\nwant   %s", q, got, want)
		}
	}
}
