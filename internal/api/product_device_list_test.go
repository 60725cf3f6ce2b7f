package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	lists store.DeviceLists
	pl    store.ProductDeviceLists
	keys  atomic.Int64
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

func (c *countingProductLists) ProductDeviceVersions(ctx context.Context, p int64, ids []string) ([]store.DeviceVersion, error) {
	return c.pl.ProductDeviceVersions(ctx, p, ids)
}

// TestProductDeviceListMatchesSQL checks that every page of GET
// /v1/products/{p}/devices from the cached order is byte for byte the page
// the store's DevicesByProduct gives, for every filter and sort, after each
// kind of write; and that presence writes do not rebuild the order.
func TestProductDeviceListMatchesSQL(t *testing.T) {
	var counter *countingProductLists
	w := productWorldOpts(t, apitest.Options{InMemory: true, WrapStore: func(st store.Store) store.Store {
		counter = &countingProductLists{Store: st, lists: st.(store.DeviceLists), pl: st.(store.ProductDeviceLists)}
		return counter
	}})
	ref := api.New(api.Config{Now: w.Clock.Now}, api.Deps{Store: plainStore{w.DB}, Auth: w.Auth}, nil)
	ctx := context.Background()
	st := w.Store
	base := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	var more []deviceFixture
	for i := range 30 {
		f := deviceFixture{id: fmt.Sprintf("fa0000000000000000%06x", 0x100+i*37), productID: w.product.ID}
		if i%3 != 0 {
			f.name = fmt.Sprintf("unit-%d", i%11)
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
	check := func(step string) {
		t.Helper()
		for _, q := range queries {
			path := "/v1/products/" + strconv.FormatInt(w.product.ID, 10) + "/devices" + q
			if got, want := get(w.Handler, path), get(ref, path); !bytes.Equal(got, want) {
				t.Fatalf("%s: GET %s\ncached %s\nwant   %s", step, path, got, want)
			}
		}
	}
	check("first")
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
	steps := []struct {
		name    string
		write   func() error
		rebuild bool // the product's order must be read again
	}{
		{"offline", func() error { _, err := st.SetDeviceOffline(ctx, pdAlpha, "s1", base); return err }, false},
		{"last heard", func() error { return st.TouchDevices(ctx, map[string]time.Time{pdBeta: base.Add(time.Hour)}) }, false},
		{"describe", func() error {
			return st.SetDeviceDescribe(ctx, pdBeta, store.Describe{Parts: store.DescribeApplication, Functions: []string{"x"}})
		}, false},
		{"notes", update(pdGamma, func(d *store.Device) { d.Notes = "<b>" }), false},
		{"online", func() error {
			_, err := st.SetDeviceOnline(ctx, pdGamma, store.DeviceSession{Node: "n1", SessionID: "g", At: base.Add(9 * time.Hour), ProductVersion: 7})
			return err
		}, true},
		{"rename", update(pdUnnamed, func(d *store.Device) { d.Name = "alpha-2" }), true},
		{"quarantine", update(pdBeta, func(d *store.Device) { d.Quarantined = true }), true},
		{"claim by customer", func() error { _, err := st.ClaimDevice(ctx, pdAlphabet, "", w.customer.ID); return err }, false},
		{"move out", update(pdAlpha, func(d *store.Device) { d.ProductID = w.otherProduct.ID }), true},
		{"import", func() error {
			_, err := st.ProvisionDevice(ctx, "fa00000000000000000000ff", "", nil, w.product.ID)
			return err
		}, true},
		{"delete", func() error { return st.DeleteDevice(ctx, pdGamma) }, true},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		before := counter.keys.Load()
		check(s.name)
		if n := counter.keys.Load() - before; (n > 0) != s.rebuild {
			t.Errorf("%s: read the product's keys %d times; want a rebuild: %v", s.name, n, s.rebuild)
		}
		if n := counter.keys.Load() - before; n > 1 {
			t.Errorf("%s: read the product's keys %d times for one version", s.name, n)
		}
	}
}
