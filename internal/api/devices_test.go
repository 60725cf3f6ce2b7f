package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// Device IDs of the device-list tests.
const (
	devKitchen  = "aa00000000000000000000a1" // owner's, online, a Photon on 3.3.1
	devGarage   = "aa00000000000000000000a2" // owner's, never connected
	devShed     = "aa00000000000000000000a3" // owner's, offline, described 5.1.0 by module number
	devOther    = "bb00000000000000000000b1" // other user's, also named "kitchen"
	devPorch    = "cc00000000000000000000c1" // customer's, in widget
	devOtherC   = "cc00000000000000000000c2" // other customer's, in gadget
	devNobody   = "dd00000000000000000000d1" // unclaimed
	devInWidget = "dd00000000000000000000d2" // unclaimed, in widget
)

// deviceFixture is one device to store.
type deviceFixture struct {
	id, name           string
	ownerID, customer  string
	productID          int64
	session            *store.DeviceSession // connected once when set
	offlineAt          time.Time            // then disconnected, when set
	describe           *store.Describe
	notes              string
	development        bool
	firmwareUpdatesOff bool
}

// addDevices stores the fixtures through the store's own methods.
func addDevices(t *testing.T, st store.Store, fixtures []deviceFixture) {
	t.Helper()
	ctx := context.Background()
	for _, f := range fixtures {
		if _, err := st.ProvisionDevice(ctx, f.id, "", nil, f.productID); err != nil {
			t.Fatal(err)
		}
		if f.ownerID != "" || f.customer != "" {
			if _, err := st.ClaimDevice(ctx, f.id, f.ownerID, f.customer); err != nil {
				t.Fatal(err)
			}
		}
		d, err := st.DeviceByID(ctx, f.id)
		if err != nil {
			t.Fatal(err)
		}
		d.Name, d.Notes, d.Development = f.name, f.notes, f.development
		if err := st.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if f.session != nil {
			if _, err := st.SetDeviceOnline(ctx, f.id, *f.session); err != nil {
				t.Fatal(err)
			}
			if !f.offlineAt.IsZero() {
				if _, err := st.SetDeviceOffline(ctx, f.id, f.session.SessionID, f.offlineAt); err != nil {
					t.Fatal(err)
				}
			}
		}
		if f.describe != nil {
			if err := st.SetDeviceDescribe(ctx, f.id, *f.describe); err != nil {
				t.Fatal(err)
			}
		}
		if f.firmwareUpdatesOff {
			if err := st.SetFirmwareUpdatesEnabled(ctx, f.id, false); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// deviceWorld is a world holding the devices of the constants above.
func deviceWorld(t *testing.T, cfg api.Config) *world {
	t.Helper()
	w := newWorld(t, cfg)
	at := func(h int) time.Time { return time.Date(2025, 3, 1, h, 0, 0, 0, time.UTC) }
	addDevices(t, w.Store, []deviceFixture{
		{id: devKitchen, name: "kitchen", ownerID: w.owner.ID,
			session: &store.DeviceSession{Node: "n1", SessionID: "s1", IP: "192.0.2.10", At: at(10), PlatformID: 6, SystemModuleVersion: 3302},
			describe: &store.Describe{Parts: store.DescribeApplication | store.DescribeSystem, Functions: []string{"led"},
				Variables: map[string]string{"temp": "double", "on": "bool"}, SystemVersion: ""}},
		{id: devGarage, name: "Garage", ownerID: w.owner.ID, notes: "by the door"},
		{id: devShed, ownerID: w.owner.ID,
			session:   &store.DeviceSession{Node: "n1", SessionID: "s2", IP: "192.0.2.11", At: at(8), PlatformID: 12, SystemModuleVersion: 5004},
			offlineAt: at(9), firmwareUpdatesOff: true,
			describe: &store.Describe{Parts: store.DescribeSystem, Status: store.DeviceStatusSafeMode}},
		{id: devOther, name: "kitchen", ownerID: w.other.ID},
		{id: devPorch, name: "porch", customer: w.customer.ID, productID: w.product.ID, development: true,
			session: &store.DeviceSession{Node: "n1", SessionID: "s3", IP: "192.0.2.12", At: at(11), PlatformID: 12,
				ProductVersion: 7, SystemModuleVersion: 6200}},
		{id: devOtherC, name: "porch", customer: w.otherCustomer.ID, productID: w.otherProduct.ID},
		{id: devNobody, name: "stray"},
		{id: devInWidget, productID: w.product.ID},
	})
	return w
}

// The expected device objects.
const (
	kitchenJSON = `{"id":"` + devKitchen + `","name":"kitchen","owner":"owner@example.com","last_app":null,
		"last_ip_address":"192.0.2.10","last_heard":"2025-03-01T10:00:00.000Z","last_handshake_at":"2025-03-01T10:00:00.000Z",
		"product_id":6,"platform_id":6,"online":true,"connected":true,"cellular":false,"notes":null,
		"functions":["led"],"variables":{"on":"bool","temp":"double"},"status":"normal",
		"system_firmware_version":"3.3.1","current_build_target":"3.3.1",
		"firmware_updates_enabled":true,"firmware_updates_forced":false}`
	shedJSON = `{"id":"` + devShed + `","name":null,"owner":"owner@example.com","last_app":null,
		"last_ip_address":"192.0.2.11","last_heard":"2025-03-01T09:00:00.000Z","last_handshake_at":"2025-03-01T08:00:00.000Z",
		"product_id":12,"platform_id":12,"online":false,"connected":false,"cellular":false,"notes":null,
		"functions":[],"variables":{},"status":"safe_mode",
		"system_firmware_version":"5.1.0","current_build_target":"5.1.0",
		"firmware_updates_enabled":false,"firmware_updates_forced":false}`
	garageJSON = `{"id":"` + devGarage + `","name":"Garage","owner":"owner@example.com","last_app":null,
		"last_ip_address":null,"last_heard":null,"last_handshake_at":null,
		"product_id":0,"platform_id":0,"online":false,"connected":false,"cellular":false,"notes":"by the door",
		"functions":[],"variables":{},"status":"normal",
		"firmware_updates_enabled":true,"firmware_updates_forced":false}`
	otherKitchenJSON = `{"id":"` + devOther + `","name":"kitchen","owner":"other@example.com","last_app":null,
		"last_ip_address":null,"last_heard":null,"last_handshake_at":null,
		"product_id":0,"platform_id":0,"online":false,"connected":false,"cellular":false,"notes":null,
		"functions":[],"variables":{},"status":"normal",
		"firmware_updates_enabled":true,"firmware_updates_forced":false}`
)

// porchJSON is the customer's product device, with the product fields.
func porchJSON(productID int64) string {
	return `{"id":"` + devPorch + `","name":"porch","owner":"jane@example.com","last_app":null,
		"last_ip_address":"192.0.2.12","last_heard":"2025-03-01T11:00:00.000Z","last_handshake_at":"2025-03-01T11:00:00.000Z",
		"product_id":` + itoa(productID) + `,"platform_id":12,"online":true,"connected":true,"cellular":false,"notes":null,
		"functions":[],"variables":{},"status":"normal",
		"system_firmware_version":"6.2.0","current_build_target":"6.2.0",
		"firmware_updates_enabled":true,"firmware_updates_forced":false,
		"firmware_product_id":` + itoa(productID) + `,"firmware_version":7,"desired_firmware_version":null,
		"targeted_firmware_release_version":null,"groups":[],"development":true,"quarantined":false,"denied":false}`
}

// unknownDevice is the 403 of docs/particle-api.md#device-id-or-name as the
// tests' requests see it.
const unknownDevice = `{"ok":false,"error":"Permission Denied",
	"info":"I didn't recognize that device name or ID, try opening http://example.com/v1/devices"}`

// TestDevices covers GET /v1/devices and GET /v1/devices/{id}
// (docs/particle-api.md#the-device-object,
// docs/particle-api.md#device-endpoints,
// docs/particle-api.md#device-id-or-name) for every kind of caller.
func TestDevices(t *testing.T) {
	w := deviceWorld(t, api.Config{})
	get := func(token, path string) apitest.Req { return apitest.Req{Method: "GET", Path: path, Token: token} }
	porch := porchJSON(w.product.ID)
	w.Run(t, []apitest.Scenario{
		// Lists: connected most recently first, never connected last.
		{Name: "owner's list", Req: get(w.ownerToken, "/v1/devices"), Status: 200,
			Want: `[` + kitchenJSON + `,` + shedJSON + `,` + garageJSON + `]`},
		{Name: "other user's list", Req: get(w.otherToken, "/v1/devices"), Status: 200, Want: `[` + otherKitchenJSON + `]`},
		{Name: "customer's list", Req: get(w.customerToken, "/v1/devices"), Status: 200, Want: `[` + porch + `]`},
		{Name: "token in the query", Req: apitest.Req{Method: "GET", Path: "/v1/devices?access_token=" + w.otherToken},
			Status: 200, Want: `[` + otherKitchenJSON + `]`},
		{Name: "empty list is an array", Req: get(w.Issue(issueCustomer(w, w.Env.CreateCustomer(w.product.ID, "new@example.com", "").ID)), "/v1/devices"),
			Status: 200, Want: `[]`},
		{Name: "product token: list refused", Req: get(w.productToken, "/v1/devices"), Status: 403,
			Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "API user: list refused", Req: get(w.apiUserToken, "/v1/devices"), Status: 400,
			Want: `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`},
		{Name: "no token", Req: get("", "/v1/devices"), Status: 400,
			Want: `{"error":"invalid_request","error_description":"The access token was not found"}`},

		// One device, by ID or name.
		{Name: "by ID", Req: get(w.ownerToken, "/v1/devices/"+devKitchen), Status: 200, Want: kitchenJSON},
		{Name: "by upper-case ID", Req: get(w.ownerToken, "/v1/devices/AA00000000000000000000A1"), Status: 200, Want: kitchenJSON},
		{Name: "by name", Req: get(w.ownerToken, "/v1/devices/kitchen"), Status: 200, Want: kitchenJSON},
		{Name: "by name, any case", Req: get(w.ownerToken, "/v1/devices/gARAGE"), Status: 200, Want: garageJSON},
		{Name: "trailing slash", Req: get(w.ownerToken, "/v1/devices/garage/"), Status: 200, Want: garageJSON},
		{Name: "same name, other owner", Req: get(w.otherToken, "/v1/devices/kitchen"), Status: 200, Want: otherKitchenJSON},
		{Name: "another user's device by ID", Req: get(w.otherToken, "/v1/devices/"+devKitchen), Status: 403, Want: unknownDevice},
		{Name: "unknown name", Req: get(w.ownerToken, "/v1/devices/attic"), Status: 403, Want: unknownDevice},
		{Name: "unknown ID", Req: get(w.ownerToken, "/v1/devices/ee00000000000000000000e1"), Status: 403, Want: unknownDevice},
		{Name: "unclaimed device", Req: get(w.ownerToken, "/v1/devices/"+devNobody), Status: 403, Want: unknownDevice},
		{Name: "unclaimed device's name", Req: get(w.ownerToken, "/v1/devices/stray"), Status: 403, Want: unknownDevice},
		{Name: "the team does not see customers' devices here", Req: get(w.ownerToken, "/v1/devices/"+devPorch),
			Status: 403, Want: unknownDevice},
		{Name: "the team does not see unclaimed product devices here", Req: get(w.ownerToken, "/v1/devices/"+devInWidget),
			Status: 403, Want: unknownDevice},
		{Name: "customer by ID", Req: get(w.customerToken, "/v1/devices/"+devPorch), Status: 200, Want: porch},
		{Name: "customer by name", Req: get(w.customerToken, "/v1/devices/PORCH"), Status: 200, Want: porch},
		{Name: "customer, another customer's device", Req: get(w.customerToken, "/v1/devices/"+devOtherC), Status: 403, Want: unknownDevice},
		{Name: "other customer sees its own porch", Req: get(w.otherCustToken, "/v1/devices/porch"), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if id := r.String(tb, "id"); id != devOtherC {
					tb.Errorf("id = %s, want %s", id, devOtherC)
				}
			}},
		{Name: "customer, a user's device", Req: get(w.customerToken, "/v1/devices/"+devKitchen), Status: 403, Want: unknownDevice},
		{Name: "product token: device refused", Req: get(w.productToken, "/v1/devices/"+devPorch), Status: 403,
			Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "wrong method", Req: apitest.Req{Method: "PATCH", Path: "/v1/devices/" + devKitchen, Token: w.ownerToken},
			Status: 405, Want: `{"ok":false,"error":"Method Not Allowed"}`},
	})
}

// TestDevicesURL checks the URL named by the unknown-device 403: the
// public URL when it names a host, else the request's host.
func TestDevicesURL(t *testing.T) {
	tests := []struct {
		name, publicURL string
		header          map[string]string
		trustProxy      bool
		want            string
	}{
		{name: "public URL", publicURL: "https://wick.example.com/", want: "https://wick.example.com/v1/devices"},
		{name: "public URL with a path", publicURL: "https://example.org/wick", want: "https://example.org/wick/v1/devices"},
		{name: "listen address as public URL", publicURL: "http://0.0.0.0:8080", want: "http://api.test:8080/v1/devices"},
		{name: "no host", publicURL: "http://:8080", want: "http://api.test:8080/v1/devices"},
		{name: "ephemeral listen port as public URL", publicURL: "http://127.0.0.1:0", want: "http://api.test:8080/v1/devices"},
		{name: "request host", want: "http://api.test:8080/v1/devices"},
		{name: "trusted proxy says https", trustProxy: true, header: map[string]string{"X-Forwarded-Proto": "https"},
			want: "https://api.test:8080/v1/devices"},
		{name: "untrusted proxy header ignored", header: map[string]string{"X-Forwarded-Proto": "https"},
			want: "http://api.test:8080/v1/devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorldOpts(t, apitest.Options{InMemory: true, Config: api.Config{PublicURL: tt.publicURL, TrustProxy: tt.trustProxy}})
			r := apitest.Req{Method: "GET", Path: "http://api.test:8080/v1/devices/nothing", Token: w.ownerToken,
				Header: map[string][]string{}}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			resp := w.Do(r)
			if resp.Status != 403 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			want := "I didn't recognize that device name or ID, try opening " + tt.want
			if got := resp.String(t, "info"); got != want {
				t.Errorf("info = %q, want %q", got, want)
			}
		})
	}
}

// benchDevices returns an API without a global rate limit, a token of a
// user with 50 described devices, and their IDs.
func benchDevices(b *testing.B) (*apitest.Env, string, []string) {
	e := apitest.New(b, apitest.Options{InMemory: true, Config: api.Config{GlobalRate: -1}})
	u := e.CreateUser(ownerName, ownerPass)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 50; i++ {
		id := "ab" + itoa(int64(1000000000+i)) + "000000000000"
		if _, err := e.Store.ProvisionDevice(ctx, id, "", nil, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Store.ClaimDevice(ctx, id, u.ID, ""); err != nil {
			b.Fatal(err)
		}
		if err := e.Store.SetDeviceDescribe(ctx, id, store.Describe{Parts: store.DescribeApplication,
			Functions: []string{"led", "reset"}, Variables: map[string]string{"temp": "double", "count": "int32"}}); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	return e, e.UserToken(u), ids
}

// BenchmarkListDevices measures GET /v1/devices for a user with 50
// devices.
func BenchmarkListDevices(b *testing.B) {
	e, token, _ := benchDevices(b)
	req := apitest.Req{Method: "GET", Path: "/v1/devices", Token: token}
	b.ReportAllocs()
	for b.Loop() {
		if r := e.Do(req); r.Status != 200 {
			b.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
}

// BenchmarkGetDevice measures GET /v1/devices/{id} by ID, cycling over a
// user's 50 described devices: from the device cache (cached) and read and
// rendered from the store for every request (uncached, the reference API
// over a store without row versions).
func BenchmarkGetDevice(b *testing.B) {
	e, token, ids := benchDevices(b)
	ref := api.New(api.Config{Now: e.Clock.Now, GlobalRate: -1}, api.Deps{Store: plainStore{e.DB}, Auth: e.Auth}, nil)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"cached", e.Handler}, {"uncached", ref}} {
		get := func(id string) {
			if w := serveGet(h.h, "/v1/devices/"+id, token); w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
		for _, id := range ids {
			get(id) // fill the cache: the figure is the steady state
		}
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				get(ids[i%len(ids)])
				i++
			}
		})
	}
}
