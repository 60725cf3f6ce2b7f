package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// plainStore hides the store's versioned lists, so that an API over it
// reads and renders every device (the reference rendering).
type plainStore struct{ store.Store }

// countingLists counts the devices the cached list rereads and the
// version lists it reads; with noStamps its list stamps are never exact.
type countingLists struct {
	store.Store
	lists       store.DeviceLists
	stamps      store.DeviceListStamps
	noStamps    bool
	read        atomic.Int64
	versions    atomic.Int64
	rowVersions atomic.Int64
}

func (c *countingLists) DeviceListStampByOwner(ctx context.Context, id string) (store.DeviceListStamp, bool, error) {
	s, exact, err := c.stamps.DeviceListStampByOwner(ctx, id)
	return s, exact && !c.noStamps, err
}

func (c *countingLists) DeviceListStampByCustomer(ctx context.Context, id string) (store.DeviceListStamp, bool, error) {
	s, exact, err := c.stamps.DeviceListStampByCustomer(ctx, id)
	return s, exact && !c.noStamps, err
}

func (c *countingLists) DeviceVersionsByOwner(ctx context.Context, id string) ([]store.DeviceVersion, error) {
	c.versions.Add(1)
	return c.lists.DeviceVersionsByOwner(ctx, id)
}

func (c *countingLists) DeviceVersionsByCustomer(ctx context.Context, id string) ([]store.DeviceVersion, error) {
	return c.lists.DeviceVersionsByCustomer(ctx, id)
}

func (c *countingLists) DeviceVersion(ctx context.Context, id string) (int64, error) {
	c.rowVersions.Add(1)
	return c.Store.(store.DeviceRowVersions).DeviceVersion(ctx, id)
}

func (c *countingLists) DevicesByIDs(ctx context.Context, ids []string) ([]store.VersionedDevice, error) {
	c.read.Add(int64(len(ids)))
	return c.lists.DevicesByIDs(ctx, ids)
}

// serveGet serves GET path with a bearer token from a fixed client address
// and returns the recorded answer.
func serveGet(h http.Handler, path, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestDeviceListCacheMatchesRendering checks that GET /v1/devices from the
// cache is byte for byte the list rendered from the store, after every
// kind of write to a device, for a user and a customer, and that only
// changed devices are reread; with list stamps (SQLite) and without
// (PostgreSQL's case).
func TestDeviceListCacheMatchesRendering(t *testing.T) {
	for _, noStamps := range []bool{false, true} {
		t.Run("noStamps="+strconv.FormatBool(noStamps), func(t *testing.T) { testDeviceListCache(t, noStamps) })
	}
}

func testDeviceListCache(t *testing.T, noStamps bool) {
	var counter *countingLists
	env := apitest.New(t, apitest.Options{WrapStore: func(st store.Store) store.Store {
		counter = &countingLists{Store: st, lists: st.(store.DeviceLists), stamps: st.(store.DeviceListStamps), noStamps: noStamps}
		return counter
	}})
	ref := api.New(api.Config{Now: env.Clock.Now}, api.Deps{Store: plainStore{env.DB}, Auth: env.Auth}, nil)
	ctx := context.Background()
	st := env.Store
	owner := env.CreateUser("owner@example.com", "pw")
	other := env.CreateUser("other@example.com", "pw")
	prod := env.CreateProduct(owner, "widget")
	cust := env.CreateCustomer(prod.ID, "cust<&>@example.com", "pw")
	userTok := env.UserToken(owner)
	custTok := env.Issue(auth.Issue{Kind: store.KindCustomer, CustomerID: cust.ID, ProductID: prod.ID, ClientID: "apitest", Lifetime: auth.DefaultLifetime})

	at := func(min int) time.Time { return apitest.Epoch.Add(time.Duration(min) * time.Minute) }
	addDevices(t, st, []deviceFixture{
		{id: devKitchen, name: `kitchen","owner":null,"x`, ownerID: owner.ID, notes: "<b>&",
			session:  &store.DeviceSession{Node: "n1", SessionID: "s1", IP: "192.0.2.10", At: at(10), PlatformID: 6, SystemModuleVersion: 3302},
			describe: &store.Describe{Parts: store.DescribeApplication, Functions: []string{"led"}, Variables: map[string]string{"t": "double"}}},
		{id: devGarage, name: "garage", ownerID: owner.ID},
		{id: devShed, name: "shed", ownerID: owner.ID, productID: prod.ID,
			session: &store.DeviceSession{Node: "n1", SessionID: "s3", At: at(5), PlatformID: 12, ProductVersion: 3}, offlineAt: at(6)},
		{id: devOther, name: "kitchen", ownerID: other.ID},
		{id: devPorch, name: "porch", customer: cust.ID, productID: prod.ID},
		{id: devNobody},
	})

	list := func(h http.Handler, tok string) []byte {
		t.Helper()
		w := serveGet(h, "/v1/devices", tok)
		if w.Code != http.StatusOK {
			t.Fatalf("GET /v1/devices: %d %s", w.Code, w.Body)
		}
		if cl := w.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(w.Body.Len()) {
			t.Fatalf("Content-Length %s for a body of %d bytes", cl, w.Body.Len())
		}
		return w.Body.Bytes()
	}
	check := func(step string, wantRead int64) {
		t.Helper()
		for _, tok := range []string{userTok, custTok} {
			before := counter.read.Load()
			got, want := list(env.Handler, tok), list(ref, tok)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: cached list\n%s\nwant\n%s", step, got, want)
			}
			if tok == userTok && wantRead >= 0 {
				if n := counter.read.Load() - before; n != wantRead {
					t.Errorf("%s: reread %d devices; want %d", step, n, wantRead)
				}
			}
		}
	}
	// get compares GET /v1/devices/{id} (by ID, from the cache) and by
	// name with the reference for every device and both callers: status
	// and body, the 403 for others' devices included.
	get := func(step string) {
		t.Helper()
		for _, tok := range []string{userTok, custTok} {
			for _, id := range []string{devKitchen, devGarage, devShed, devOther, devPorch, devNobody,
				strings.ToUpper(devGarage), "garage", "carport", "porch", "000000000000000000000000"} {
				got, want := serveGet(env.Handler, "/v1/devices/"+id, tok), serveGet(ref, "/v1/devices/"+id, tok)
				if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
					t.Fatalf("%s: GET /v1/devices/%s: %d %s\nwant %d %s", step, id, got.Code, got.Body, want.Code, want.Body)
				}
				if cl := got.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(got.Body.Len()) {
					t.Fatalf("%s: GET /v1/devices/%s: Content-Length %s for %d bytes", step, id, cl, got.Body.Len())
				}
			}
		}
	}
	check("first list", 3)
	get("first list")
	// The lists cached the callers' devices: getting one again reads its
	// version and nothing else. (Others' devices are read on every GET
	// and never cached.)
	before, rows := counter.read.Load(), counter.rowVersions.Load()
	for _, g := range []struct{ tok, id string }{{userTok, devKitchen}, {userTok, devGarage}, {userTok, devShed}, {custTok, devPorch}} {
		w := serveGet(env.Handler, "/v1/devices/"+g.id, g.tok)
		if w.Code != http.StatusOK {
			t.Fatalf("GET /v1/devices/%s: %d %s", g.id, w.Code, w.Body)
		}
	}
	if n := counter.read.Load() - before; n != 0 {
		t.Errorf("GET of the callers' unchanged devices reread %d devices; want 0", n)
	}
	if n := counter.rowVersions.Load() - rows; n != 4 {
		t.Errorf("4 GETs read %d row versions; want 4 (the cached path is not taken)", n)
	}
	v := counter.versions.Load()
	check("unchanged", 0)
	if n := counter.versions.Load() - v; noStamps != (n > 0) {
		t.Errorf("unchanged list read its versions %d times (stamps disabled: %v)", n, noStamps)
	}

	update := func(id string, f func(d *store.Device)) {
		t.Helper()
		d, err := st.DeviceByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		f(d)
		if err := st.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name  string
		write func() error
		read  int64 // devices of the user's list reread; -1: not checked
	}{
		{"rename", func() error { update(devGarage, func(d *store.Device) { d.Name = "carport" }); return nil }, 1},
		{"notes", func() error { update(devKitchen, func(d *store.Device) { d.Notes = "new" }); return nil }, 1},
		{"product move", func() error { update(devGarage, func(d *store.Device) { d.ProductID = prod.ID }); return nil }, 1},
		{"online", func() error {
			_, err := st.SetDeviceOnline(ctx, devGarage, store.DeviceSession{Node: "n1", SessionID: "g1", At: at(20), PlatformID: 12})
			return err
		}, 1},
		{"describe", func() error {
			return st.SetDeviceDescribe(ctx, devGarage, store.Describe{Parts: store.DescribeApplication, Functions: []string{"a", "b"}})
		}, 1},
		{"last heard", func() error { return st.TouchDevices(ctx, map[string]time.Time{devGarage: at(21)}) }, 1},
		{"offline", func() error { _, err := st.SetDeviceOffline(ctx, devGarage, "g1", at(22)); return err }, 1},
		{"batched presence", func() error { // the gateway's presence writer
			_, err := env.DB.ApplyPresence(ctx, []store.PresenceUpdate{
				{DeviceID: devGarage, Online: &store.DeviceSession{Node: "n1", SessionID: "g2", At: at(23), PlatformID: 12}},
				{DeviceID: devGarage, OfflineSession: "g2", OfflineAt: at(24)},
				{DeviceID: devKitchen, LastHeard: at(25)},
			})
			return err
		}, 2},
		{"firmware updates off", func() error { return st.SetFirmwareUpdatesEnabled(ctx, devShed, false) }, 1},
		{"claim", func() error { _, err := st.ClaimDevice(ctx, devNobody, owner.ID, ""); return err }, 1},
		{"customer's device online", func() error {
			_, err := st.SetDeviceOnline(ctx, devPorch, store.DeviceSession{Node: "n1", SessionID: "p1", At: at(30), PlatformID: 12})
			return err
		}, 0},
		{"unclaim", func() error { return st.UnclaimDevice(ctx, devKitchen) }, 0},
		{"node reset", func() error { _, err := st.ResetNode(ctx, "n1", at(40)); return err }, 0},
		{"delete", func() error { return st.DeleteDevice(ctx, devShed) }, 0},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check(s.name, s.read)
		get(s.name)
	}
}

// BenchmarkListDevicesCache measures GET /v1/devices for a user with 1,000
// and 10,000 described devices, from the cache and rendered from the
// store.
func BenchmarkListDevicesCache(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("devices="+strconv.Itoa(n), func(b *testing.B) { benchListDevices(b, n) })
	}
}

func benchListDevices(b *testing.B, n int) {
	env := apitest.New(b, apitest.Options{InMemory: true})
	u := env.CreateUser("bench@example.com", "pw")
	tok := env.UserToken(u)
	ctx := context.Background()
	for i := range n {
		id := "ee" + strconv.FormatInt(int64(1e15)+int64(i), 16)
		for len(id) < 24 {
			id += "0"
		}
		if _, err := env.Store.ProvisionDevice(ctx, id, "", nil, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := env.Store.ClaimDevice(ctx, id, u.ID, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := env.Store.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n", SessionID: "s", PlatformID: 6, SystemModuleVersion: 3302}); err != nil {
			b.Fatal(err)
		}
		err := env.Store.SetDeviceDescribe(ctx, id, store.Describe{Parts: store.DescribeApplication | store.DescribeSystem,
			Functions: []string{"led"}, SystemVersion: "3.3.1",
			Variables: map[string]string{"temp": "double", "count": "int32", "label": "string", "on": "bool"}})
		if err != nil {
			b.Fatal(err)
		}
	}
	ref := api.New(api.Config{Now: env.Clock.Now}, api.Deps{Store: plainStore{env.DB}, Auth: env.Auth}, nil)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"cached", env.Handler}, {"uncached", ref}} {
		get := func() *httptest.ResponseRecorder {
			w := serveGet(h.h, "/v1/devices", tok)
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
			return w
		}
		get() // fill the cache: the figure is the steady state
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.SetBytes(int64(get().Body.Len()))
			}
		})
	}
}
