package api_test

import (
	"context"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// Device IDs of the device-control tests.
const (
	ctlLamp     = "ab00000000000000000000a1" // owner's "Lamp", online, Device OS 6.2.0 on an Argon
	ctlOld      = "ab00000000000000000000a2" // owner's "old", online, Device OS 0.7.0 on a Photon
	ctlAttic    = "ab00000000000000000000a3" // owner's "attic", described, never connected
	ctlGen2     = "ab00000000000000000000a4" // owner's "photon", online, Device OS 3.3.1 on a Photon
	ctlOtherDev = "ab00000000000000000000b1" // other user's "lamp", online
	ctlPorch    = "ab00000000000000000000c1" // customer's "porch" in widget, online
	ctlOtherC   = "ab00000000000000000000c2" // other customer's "porch" in gadget, online
	ctlFleet    = "ab00000000000000000000d1" // unowned in widget, online
)

// ctlFunctions and ctlVariables are what the control-test devices
// describe. "ghost" is described but unknown to the fake device.
var (
	ctlFunctions = []string{"led", "reset"}
	ctlVariables = map[string]string{"temp": "double", "count": "int32", "on": "bool", "greeting": "string", "ghost": "int32"}
)

// controlWorld is a world holding the control-test devices.
func controlWorld(t *testing.T) *world {
	t.Helper()
	w := newWorldOpts(t, apitest.Options{InMemory: true})
	online := func(sid string, platform, module int) *store.DeviceSession {
		return &store.DeviceSession{Node: "n1", SessionID: sid, IP: "192.0.2.30",
			At: time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC), PlatformID: platform, SystemModuleVersion: module}
	}
	app := &store.Describe{Parts: store.DescribeApplication, Functions: ctlFunctions, Variables: ctlVariables}
	addDevices(t, w.Store, []deviceFixture{
		{id: ctlLamp, name: "Lamp", ownerID: w.owner.ID, session: online("s1", 12, 6200), describe: app},
		{id: ctlOld, name: "old", ownerID: w.owner.ID, session: online("s2", 6, 207), describe: app},
		{id: ctlAttic, name: "attic", ownerID: w.owner.ID, describe: app},
		{id: ctlGen2, name: "photon", ownerID: w.owner.ID, session: online("s7", 6, 3302), describe: app},
		{id: ctlOtherDev, name: "lamp", ownerID: w.other.ID, session: online("s3", 12, 6200), describe: app},
		{id: ctlPorch, name: "porch", customer: w.customer.ID, productID: w.product.ID, session: online("s4", 12, 6200), describe: app},
		{id: ctlOtherC, name: "porch", customer: w.otherCustomer.ID, productID: w.otherProduct.ID, session: online("s5", 12, 6200), describe: app},
		{id: ctlFleet, productID: w.product.ID, session: online("s6", 12, 6200), describe: app},
	})
	return w
}

// ctlCase is one request of the control tests, with the fake device
// failure it runs under.
type ctlCase struct {
	name     string
	failDev  string // with failName and failErr: make that call fail
	failName string
	failErr  error
	req      apitest.Req
	status   int
	want     string // exact JSON body, when set
	raw      string // exact text/plain body, when set
	calls    int    // device calls the request must make (-1: not checked)
}

// runControl runs the cases in order on w.
func runControl(t *testing.T, w *world, cases []ctlCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outer := w.TB
			w.TB = t
			defer func() { w.TB = outer }()
			if tc.failErr != nil {
				w.Devices.Fail(tc.failDev, tc.failName, tc.failErr)
				defer w.Devices.Fail(tc.failDev, tc.failName, nil)
			}
			before := len(w.Devices.Calls())
			tc.req.Raw = tc.raw != ""
			r := w.Do(tc.req)
			if r.Status != tc.status {
				t.Errorf("status %d, want %d; body %s", r.Status, tc.status, r.Body)
			}
			if tc.want != "" {
				apitest.MatchJSON(t, r.Body, tc.want)
			}
			if tc.raw != "" {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q, want text/plain", ct)
				}
				if string(r.Body) != tc.raw {
					t.Errorf("body %q, want %q", r.Body, tc.raw)
				}
			}
			if got := len(w.Devices.Calls()) - before; tc.calls >= 0 && got != tc.calls {
				t.Errorf("%d device calls, want %d", got, tc.calls)
			}
		})
	}
}

// TestCallFunction covers POST /v1/devices/{id}/{fn} and its product
// variant (docs/particle-api.md#function-and-variable-errors): the argument
// fields, raw format and every error.
func TestCallFunction(t *testing.T) {
	w := controlWorld(t)
	call := func(token, path string, body string) apitest.Req {
		r := w.bodyReq("POST", path, body)
		r.Token = token
		return r
	}
	own := func(path, body string) apitest.Req { return call(w.ownerToken, path, body) }
	lamp := "/v1/devices/" + ctlLamp
	ret := func(id, name string, v int) string {
		return `{"id":"` + id + `","name":"` + name + `","connected":true,"return_value":` + itoa(int64(v)) + `}`
	}
	runControl(t, w, []ctlCase{
		{name: "JS args", req: own(lamp+"/led", `{"args":"on"}`), status: 200, want: ret(ctlLamp, "Lamp", 2), calls: 1},
		{name: "form arg (CLI-legacy)", req: own(lamp+"/led", "arg=hello"), status: 200, want: ret(ctlLamp, "Lamp", 5), calls: 1},
		{name: "no argument", req: own(lamp+"/led", `{}`), status: 200, want: ret(ctlLamp, "Lamp", 0), calls: 1},
		{name: "no body", req: own(lamp+"/led", ""), status: 200, want: ret(ctlLamp, "Lamp", 0), calls: 1},
		{name: "arg wins over args", req: own(lamp+"/led", `{"arg":"abc","args":"abcdef"}`), status: 200,
			want: ret(ctlLamp, "Lamp", 3), calls: 1},
		{name: "numeric args", req: own(lamp+"/led", `{"args":1234}`), status: 200, want: ret(ctlLamp, "Lamp", 4), calls: 1},
		{name: "by name, any case", req: own("/v1/devices/LAMP/led", `{"args":"x"}`), status: 200,
			want: ret(ctlLamp, "Lamp", 1), calls: 1},
		{name: "by upper-case ID", req: own("/v1/devices/"+strings.ToUpper(ctlLamp)+"/led", `{"args":"x"}`), status: 200,
			want: ret(ctlLamp, "Lamp", 1), calls: 1},
		{name: "raw format in the query", req: own(lamp+"/led?format=raw", `{"args":"on"}`), status: 200, raw: "2", calls: 1},
		{name: "raw format in the body", req: own(lamp+"/led", "arg=four&format=raw"), status: 200, raw: "4", calls: 1},
		{name: "function not described", req: own(lamp+"/nope", `{"args":"x"}`), status: 404,
			want: `{"ok":false,"error":"Function nope not found"}`, calls: 0},
		{name: "function names are case-sensitive", req: own(lamp+"/LED", ``), status: 404,
			want: `{"ok":false,"error":"Function LED not found"}`, calls: 0},
		{name: "device says no such function", failDev: ctlLamp, failName: "reset", failErr: bus.ErrNoSuchName,
			req: own(lamp+"/reset", ``), status: 404, want: `{"ok":false,"error":"Function reset not found"}`, calls: 1},
		{name: "store says offline", req: own("/v1/devices/attic/led", `{"args":"x"}`), status: 400,
			want: `{"ok":false,"error":"Device is offline"}`, calls: 0},
		{name: "gateway says offline", failDev: ctlLamp, failErr: bus.ErrDeviceOffline,
			req: own(lamp+"/led", ``), status: 400, want: `{"ok":false,"error":"Device is offline"}`, calls: 1},
		{name: "timeout", failDev: ctlLamp, failErr: bus.ErrTimeout,
			req: own(lamp+"/led", ``), status: 408, want: `{"ok":false,"error":"Timed out."}`, calls: 1},
		{name: "wrapped timeout", failDev: ctlLamp, failErr: errors.Join(errors.New("gateway: device"), bus.ErrTimeout),
			req: own(lamp+"/led", ``), status: 408, want: `{"ok":false,"error":"Timed out."}`, calls: 1},
		{name: "device refuses the argument", failDev: ctlLamp, failErr: bus.ErrRefused,
			req: own(lamp+"/led", `{"args":"x"}`), status: 400, want: `{"ok":false,"error":"Function argument too long"}`, calls: 1},
		{name: "other failures are internal", failDev: ctlLamp, failErr: errors.New("boom"),
			req: own(lamp+"/led", ``), status: 500, want: `{"ok":false,"error":"Internal server error"}`, calls: 1},
		{name: "1024-byte argument", req: own(lamp+"/led", `{"args":"`+strings.Repeat("a", 1024)+`"}`), status: 200,
			want: ret(ctlLamp, "Lamp", 1024), calls: 1},
		{name: "1025-byte argument", req: own(lamp+"/led", `{"args":"`+strings.Repeat("a", 1025)+`"}`), status: 400,
			want: `{"ok":false,"error":"Function argument too long"}`, calls: 0},
		{name: "Device OS 0.7: 63 bytes", req: own("/v1/devices/old/led", "arg="+strings.Repeat("b", 63)), status: 200,
			want: ret(ctlOld, "old", 63), calls: 1},
		{name: "Device OS 0.7: 64 bytes", req: own("/v1/devices/old/led", "arg="+strings.Repeat("b", 64)), status: 400,
			want: `{"ok":false,"error":"Function argument too long"}`, calls: 0},
		{name: "Gen 2 on 3.x: 864 bytes", req: own("/v1/devices/photon/led", "arg="+strings.Repeat("c", 864)), status: 200,
			want: ret(ctlGen2, "photon", 864), calls: 1},
		{name: "Gen 2 on 3.x: 865 bytes", req: own("/v1/devices/photon/led", "arg="+strings.Repeat("c", 865)), status: 400,
			want: `{"ok":false,"error":"Function argument too long"}`, calls: 0},
		{name: "another user's device by ID", req: own("/v1/devices/"+ctlOtherDev+"/led", ``), status: 403,
			want: unknownDevice, calls: 0},
		{name: "the other user's lamp is theirs by name", req: call(w.otherToken, "/v1/devices/lamp/led", `{"args":"x"}`),
			status: 200, want: ret(ctlOtherDev, "lamp", 1), calls: 1},
		{name: "customer, own device by name", req: call(w.customerToken, "/v1/devices/porch/led", `{"args":"on"}`),
			status: 200, want: ret(ctlPorch, "porch", 2), calls: 1},
		{name: "customer, another customer's device", req: call(w.customerToken, "/v1/devices/"+ctlOtherC+"/led", ``),
			status: 403, want: unknownDevice, calls: 0},
		{name: "customer, a user's device", req: call(w.customerToken, lamp+"/led", ``), status: 403, want: unknownDevice, calls: 0},
		{name: "product token on the user route", req: call(w.productToken, "/v1/devices/"+ctlPorch+"/led", ``), status: 403,
			want: `{"ok":false,"error":"Permission Denied"}`, calls: 0},

		// Product route: team and product token, device IDs of the product only.
		{name: "product: team member", req: own("/v1/products/{p}/devices/"+ctlFleet+"/led", `{"args":"abc"}`), status: 200,
			want: `{"id":"` + ctlFleet + `","name":null,"connected":true,"return_value":3}`, calls: 1},
		{name: "product: product token, customer's device", req: call(w.productToken, "/v1/products/{pid}/devices/"+ctlPorch+"/led", `{"args":"ab"}`),
			status: 200, want: ret(ctlPorch, "porch", 2), calls: 1},
		{name: "product: raw", req: call(w.productToken, "/v1/products/{p}/devices/"+ctlPorch+"/led?format=raw", ``),
			status: 200, raw: "0", calls: 1},
		{name: "product: device of another product", req: own("/v1/products/{p}/devices/"+ctlOtherC+"/led", ``), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
		{name: "product: a user's device", req: own("/v1/products/{p}/devices/"+ctlLamp+"/led", ``), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
		{name: "product: names are not accepted", req: own("/v1/products/{p}/devices/porch/led", ``), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
		{name: "product: unknown function", req: own("/v1/products/{p}/devices/"+ctlPorch+"/dance", ``), status: 404,
			want: `{"ok":false,"error":"Function dance not found"}`, calls: 0},
		{name: "product: other user is not on the team", req: call(w.otherToken, "/v1/products/{p}/devices/"+ctlPorch+"/led", ``),
			status: 403, want: `{"ok":false,"error":"Permission Denied"}`, calls: 0},
		{name: "product: customer refused", req: call(w.customerToken, "/v1/products/{p}/devices/"+ctlPorch+"/led", ``),
			status: 403, want: `{"ok":false,"error":"Permission Denied"}`, calls: 0},
	})

	// The device received exactly the argument sent.
	calls := w.Devices.Calls()
	last := calls[len(calls)-1]
	if last.Kind != "function" || last.DeviceID != ctlPorch || last.Name != "led" || last.Arg != "" {
		t.Errorf("last call %+v", last)
	}
	for _, c := range calls {
		if c.Name == "led" && c.DeviceID == ctlLamp && c.Arg == "abcdef" {
			t.Error("args was sent although arg was given")
		}
	}
}

// TestGetVariable covers GET /v1/devices/{id}/{var} and its product
// variant (docs/particle-api.md#function-and-variable-errors): typed results,
// raw format, coreInfo and errors.
func TestGetVariable(t *testing.T) {
	w := controlWorld(t)
	get := func(token, path string) apitest.Req {
		return apitest.Req{Method: "GET", Path: w.expand(path), Token: token}
	}
	own := func(path string) apitest.Req { return get(w.ownerToken, path) }
	lamp := "/v1/devices/" + ctlLamp
	coreInfo := func(id, name string, productID int64) string {
		n := `null`
		if name != "" {
			n = `"` + name + `"`
		}
		return `"coreInfo":{"name":` + n + `,"deviceID":"` + id + `","connected":true,
			"last_handshake_at":"2025-03-01T13:00:00.000Z","last_app":null,"last_heard":"2025-03-01T13:00:00.000Z",
			"product_id":` + itoa(productID) + `}`
	}
	lampInfo := coreInfo(ctlLamp, "Lamp", 12)
	runControl(t, w, []ctlCase{
		{name: "double", req: own(lamp + "/temp"), status: 200, want: `{"name":"temp","result":21.5,` + lampInfo + `}`, calls: 1},
		{name: "int32", req: own(lamp + "/count"), status: 200, want: `{"name":"count","result":42,` + lampInfo + `}`, calls: 1},
		{name: "bool", req: own(lamp + "/on"), status: 200, want: `{"name":"on","result":true,` + lampInfo + `}`, calls: 1},
		{name: "string", req: own(lamp + "/greeting"), status: 200,
			want: `{"name":"greeting","result":"hello world",` + lampInfo + `}`, calls: 1},
		{name: "raw double", req: own(lamp + "/temp?format=raw"), status: 200, raw: "21.5", calls: 1},
		{name: "raw int32", req: own(lamp + "/count?format=raw"), status: 200, raw: "42", calls: 1},
		{name: "raw bool", req: own(lamp + "/on?format=raw"), status: 200, raw: "true", calls: 1},
		{name: "raw string", req: own(lamp + "/greeting?format=raw"), status: 200, raw: "hello world", calls: 1},
		{name: "by name, any case", req: own("/v1/devices/lAmP/count"), status: 200,
			want: `{"name":"count","result":42,` + lampInfo + `}`, calls: 1},
		{name: "not described", req: own(lamp + "/nope"), status: 404, want: `{"ok":false,"error":"Unknown Variable: nope"}`, calls: 0},
		{name: "names are case-sensitive", req: own(lamp + "/TEMP"), status: 404,
			want: `{"ok":false,"error":"Unknown Variable: TEMP"}`, calls: 0},
		{name: "device says no such variable", req: own(lamp + "/ghost"), status: 404,
			want: `{"ok":false,"error":"Unknown Variable: ghost"}`, calls: 1},
		{name: "store says offline", req: own("/v1/devices/attic/temp"), status: 400,
			want: `{"ok":false,"error":"Device is offline"}`, calls: 0},
		{name: "gateway says offline", failDev: ctlLamp, failErr: bus.ErrDeviceOffline, req: own(lamp + "/temp"), status: 400,
			want: `{"ok":false,"error":"Device is offline"}`, calls: 1},
		{name: "timeout", failDev: ctlLamp, failName: "temp", failErr: bus.ErrTimeout, req: own(lamp + "/temp"), status: 408,
			want: `{"ok":false,"error":"Timed out."}`, calls: 1},
		{name: "context deadline", failDev: ctlLamp, failErr: context.DeadlineExceeded, req: own(lamp + "/temp"), status: 408,
			want: `{"ok":false,"error":"Timed out."}`, calls: 1},
		{name: "refused", failDev: ctlLamp, failErr: bus.ErrRefused, req: own(lamp + "/temp"), status: 400,
			want: `{"ok":false,"error":"The device refused to read the variable"}`, calls: 1},
		{name: "another user's device", req: own("/v1/devices/" + ctlOtherDev + "/temp"), status: 403, want: unknownDevice, calls: 0},
		{name: "customer, own device", req: get(w.customerToken, "/v1/devices/porch/count"), status: 200,
			want: `{"name":"count","result":42,` + coreInfo(ctlPorch, "porch", w.product.ID) + `}`, calls: 1},
		{name: "customer, another customer's device", req: get(w.customerToken, "/v1/devices/"+ctlOtherC+"/count"),
			status: 403, want: unknownDevice, calls: 0},
		{name: "product: team, unnamed device", req: own("/v1/products/{p}/devices/" + ctlFleet + "/on"), status: 200,
			want: `{"name":"on","result":true,` + coreInfo(ctlFleet, "", w.product.ID) + `}`, calls: 1},
		{name: "product: product token, raw", req: get(w.productToken, "/v1/products/{pid}/devices/"+ctlPorch+"/greeting?format=raw"),
			status: 200, raw: "hello world", calls: 1},
		{name: "product: not in the product", req: own("/v1/products/{p}/devices/" + ctlLamp + "/temp"), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
		{name: "product: unknown variable", req: own("/v1/products/{p}/devices/" + ctlPorch + "/nope"), status: 404,
			want: `{"ok":false,"error":"Unknown Variable: nope"}`, calls: 0},
	})

	// A double that is not a number cannot be JSON: it reads as null.
	w.Devices.SetVariable("temp", math.NaN())
	runControl(t, w, []ctlCase{
		{name: "NaN", req: own(lamp + "/temp"), status: 200, want: `{"name":"temp","result":null,` + lampInfo + `}`, calls: 1},
		{name: "raw NaN", req: own(lamp + "/temp?format=raw"), status: 200, raw: "NaN", calls: 1},
	})
}

// TestPing covers PUT /v1/devices/{id}/ping and the product variant.
func TestPing(t *testing.T) {
	w := controlWorld(t)
	ping := func(token, path string) apitest.Req {
		return apitest.Req{Method: "PUT", Path: w.expand(path), Token: token}
	}
	runControl(t, w, []ctlCase{
		{name: "online", req: ping(w.ownerToken, "/v1/devices/lamp/ping"), status: 200, want: `{"online":true,"ok":true}`, calls: 1},
		{name: "offline in the store: no call", req: ping(w.ownerToken, "/v1/devices/attic/ping"), status: 200,
			want: `{"online":false,"ok":true}`, calls: 0},
		{name: "no answer", failDev: ctlLamp, failErr: bus.ErrTimeout, req: ping(w.ownerToken, "/v1/devices/"+ctlLamp+"/ping"),
			status: 200, want: `{"online":false,"ok":true}`, calls: 1},
		{name: "gone", failDev: ctlLamp, failErr: bus.ErrDeviceOffline, req: ping(w.ownerToken, "/v1/devices/lamp/ping"),
			status: 200, want: `{"online":false,"ok":true}`, calls: 1},
		{name: "customer", req: ping(w.customerToken, "/v1/devices/porch/ping"), status: 200, want: `{"online":true,"ok":true}`, calls: 1},
		{name: "another user's device", req: ping(w.otherToken, "/v1/devices/"+ctlLamp+"/ping"), status: 403, want: unknownDevice, calls: 0},
		{name: "product", req: ping(w.productToken, "/v1/products/{p}/devices/"+ctlFleet+"/ping"), status: 200,
			want: `{"online":true,"ok":true}`, calls: 1},
		{name: "product: not in it", req: ping(w.productToken, "/v1/products/{p}/devices/"+ctlOtherC+"/ping"), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
	})
}

// TestDeviceCallsWithoutGateway checks that a server without a
// DeviceCaller answers calls as for offline devices.
func TestDeviceCallsWithoutGateway(t *testing.T) {
	w := newWorldOpts(t, apitest.Options{InMemory: true, NoDevices: true})
	w.addDevices(t)
	w.Run(t, []apitest.Scenario{
		{Name: "call", Req: apitest.Req{Method: "POST", Path: "/v1/devices/" + ownerDeviceID + "/" + authzFunction, Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"Device is offline"}`},
		{Name: "variable", Req: apitest.Req{Method: "GET", Path: "/v1/devices/" + ownerDeviceID + "/" + authzVariable, Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"Device is offline"}`},
		{Name: "ping", Req: apitest.Req{Method: "PUT", Path: "/v1/devices/" + ownerDeviceID + "/ping", Token: w.ownerToken},
			Status: 200, Want: `{"online":false,"ok":true}`},
		{Name: "signal", Req: apitest.Req{Method: "PUT", Path: "/v1/devices/" + ownerDeviceID, Token: w.ownerToken,
			Form: url.Values{"signal": {"1"}}}, Status: 400, Want: `{"ok":false,"error":"Device is offline"}`},
		{Name: "claim without reload", Req: apitest.Req{Method: "POST", Path: "/v1/devices", Token: w.otherToken,
			JSON: map[string]string{"id": freeDeviceID}}, Status: 200},
	})
}

// TestUpdateDevice covers PUT /v1/devices/{id} and PUT
// /v1/products/{p}/devices/{id} (docs/particle-api.md#device-endpoints).
func TestUpdateDevice(t *testing.T) {
	w := controlWorld(t)
	put := func(token, path, body string) apitest.Req {
		r := w.bodyReq("PUT", path, body)
		r.Token = token
		return r
	}
	own := func(path, body string) apitest.Req { return put(w.ownerToken, path, body) }
	lamp := "/v1/devices/" + ctlLamp
	badName := `{"ok":false,"error":"name must be 1 to 63 characters: letters, digits, underscores and hyphens"}`
	nothing := `{"ok":false,"error":"Nothing to do?"}`
	runControl(t, w, []ctlCase{
		{name: "rename (JS)", req: own(lamp, `{"name":"desk_lamp"}`), status: 200,
			want: `{"id":"` + ctlLamp + `","name":"desk_lamp","updated_at":"<iso>"}`, calls: 0},
		{name: "renamed device answers to its new name", req: own("/v1/devices/DESK_LAMP", `{"notes":"by the window"}`), status: 200,
			want: `{"id":"` + ctlLamp + `","notes":"by the window","updated_at":"<iso>"}`, calls: 0},
		{name: "rename (CLI-legacy form)", req: own("/v1/devices/desk_lamp", "name=Lamp"), status: 200,
			want: `{"id":"` + ctlLamp + `","name":"Lamp","updated_at":"<iso>"}`, calls: 0},
		{name: "name taken by another of the owner's devices", req: own(lamp, `{"name":"OLD"}`), status: 400,
			want: `{"ok":false,"error":"Another device of the same owner is already named OLD"}`, calls: 0},
		{name: "another owner's name is free", req: own(lamp, `{"name":"porch"}`), status: 200,
			want: `{"id":"` + ctlLamp + `","name":"porch","updated_at":"<iso>"}`, calls: 0},
		{name: "back to Lamp", req: own(lamp, `{"name":"Lamp"}`), status: 200, calls: 0},
		{name: "name with a space", req: own(lamp, `{"name":"my lamp"}`), status: 400, want: badName, calls: 0},
		{name: "name with a slash", req: own(lamp, `{"name":"a/b"}`), status: 400, want: badName, calls: 0},
		{name: "empty name", req: own(lamp, `{"name":""}`), status: 400, want: badName, calls: 0},
		{name: "null name", req: own(lamp, `{"name":null}`), status: 400, want: badName, calls: 0},
		{name: "64-character name", req: own(lamp, `{"name":"`+strings.Repeat("n", 64)+`"}`), status: 400, want: badName, calls: 0},
		{name: "63-character name", req: own(lamp, `{"name":"`+strings.Repeat("n", 63)+`"}`), status: 200, calls: 0},
		{name: "name like a device ID", req: own("/v1/devices/"+ctlLamp, `{"name":"`+ctlOtherC+`"}`), status: 400,
			want: `{"ok":false,"error":"name must not look like a device ID"}`, calls: 0},
		{name: "reserved name", req: own(lamp, `{"name":"Events"}`), status: 400,
			want: `{"ok":false,"error":"name \"events\" is reserved: /v1/devices/events is the event stream"}`, calls: 0},
		{name: "restore the name", req: own(lamp, `{"name":"Lamp"}`), status: 200, calls: 0},
		{name: "notes too long", req: own(lamp, `{"notes":"`+strings.Repeat("x", 10001)+`"}`), status: 400,
			want: `{"ok":false,"error":"notes must be at most 10000 bytes"}`, calls: 0},
		{name: "signal on (JS string)", req: own(lamp, `{"signal":"1"}`), status: 200,
			want: `{"id":"` + ctlLamp + `","connected":true,"signaling":true}`, calls: 1},
		{name: "signal off (number)", req: own(lamp, `{"signal":0}`), status: 200,
			want: `{"id":"` + ctlLamp + `","connected":true,"signaling":false}`, calls: 1},
		{name: "signal (boolean)", req: own(lamp, `{"signal":true}`), status: 200,
			want: `{"id":"` + ctlLamp + `","connected":true,"signaling":true}`, calls: 1},
		{name: "signal (CLI-legacy form)", req: own("/v1/devices/lamp", "signal=0"), status: 200,
			want: `{"id":"` + ctlLamp + `","connected":true,"signaling":false}`, calls: 1},
		{name: "signal value", req: own(lamp, `{"signal":"maybe"}`), status: 400,
			want: `{"ok":false,"error":"signal must be 1 or 0"}`, calls: 0},
		{name: "signal to an offline device changes nothing", req: own("/v1/devices/attic", `{"signal":"1","name":"loft"}`),
			status: 400, want: `{"ok":false,"error":"Device is offline"}`, calls: 0},
		{name: "the name stayed", req: own("/v1/devices/attic", `{"notes":""}`), status: 200, calls: 0},
		{name: "signal timeout", failDev: ctlLamp, failErr: bus.ErrTimeout, req: own(lamp, `{"signal":"1"}`), status: 408,
			want: `{"ok":false,"error":"Timed out."}`, calls: 1},
		{name: "several keys merge", req: own(lamp, `{"name":"Lamp2","notes":"n","signal":"1","firmware_updates_forced":true}`),
			status: 200, want: `{"id":"` + ctlLamp + `","name":"Lamp2","notes":"n","updated_at":"<iso>","connected":true,
			"signaling":true,"firmware_updates_forced":true}`, calls: 1},
		{name: "firmware_updates_forced alone", req: own(lamp, "firmware_updates_forced=false"), status: 200,
			want: `{"id":"` + ctlLamp + `","firmware_updates_forced":false}`, calls: 0},
		{name: "firmware_updates_forced not a boolean", req: own(lamp, `{"firmware_updates_forced":"sometimes"}`), status: 400,
			want: `{"ok":false,"error":"firmware_updates_forced must be true or false"}`, calls: 0},
		{name: "nothing", req: own(lamp, `{}`), status: 400, want: nothing, calls: 0},
		{name: "unknown keys only", req: own(lamp, `{"colour":"red"}`), status: 400, want: nothing, calls: 0},
		{name: "development is a product field", req: own(lamp, `{"development":true}`), status: 400, want: nothing, calls: 0},
		{name: "flashing is not supported", req: own(lamp, `{"build_target_version":"6.2.0"}`), status: 400,
			want: `{"ok":false,"error":"Flashing firmware over the API is not supported"}`, calls: 0},
		{name: "another user's device", req: put(w.otherToken, lamp, `{"name":"mine"}`), status: 403, want: unknownDevice, calls: 0},
		{name: "customer renames its device", req: put(w.customerToken, "/v1/devices/porch", `{"name":"front_door"}`), status: 200,
			want: `{"id":"` + ctlPorch + `","name":"front_door","updated_at":"<iso>"}`, calls: 0},
		{name: "customer signals its device", req: put(w.customerToken, "/v1/devices/front_door", `{"signal":"1"}`), status: 200,
			want: `{"id":"` + ctlPorch + `","connected":true,"signaling":true}`, calls: 1},
		{name: "customer, another customer's device", req: put(w.customerToken, "/v1/devices/"+ctlOtherC, `{"name":"x"}`),
			status: 403, want: unknownDevice, calls: 0},

		// Product route.
		{name: "product: development", req: put(w.productToken, "/v1/products/{p}/devices/"+ctlPorch, `{"development":true}`),
			status: 200, want: `{"id":"` + ctlPorch + `","development":true,"updated_at":"<iso>"}`, calls: 0},
		{name: "product: unlock firmware (nothing locked)", req: own("/v1/products/{p}/devices/"+ctlPorch, `{"desired_firmware_version":null}`),
			status: 200, want: `{"id":"` + ctlPorch + `","desired_firmware_version":null,"updated_at":"<iso>"}`, calls: 0},
		// Locking to a version is tested with product firmware in firmware_test.go.
		{name: "product: lock firmware to a version the product lacks", req: own("/v1/products/{p}/devices/"+ctlPorch, `{"desired_firmware_version":3,"flash":true}`),
			status: 400, want: `{"ok":false,"error":"Firmware version 3 does not exist in this product"}`, calls: 0},
		{name: "product: groups", req: own("/v1/products/{p}/devices/"+ctlPorch, `{"groups":["east"]}`), status: 400,
			want: `{"ok":false,"error":"Device groups are not supported"}`, calls: 0},
		{name: "product: rename a customer's device", req: own("/v1/products/{p}/devices/"+ctlPorch, `{"name":"porch"}`), status: 200,
			want: `{"id":"` + ctlPorch + `","name":"porch","updated_at":"<iso>"}`, calls: 0},
		{name: "product: signal", req: own("/v1/products/{p}/devices/"+ctlFleet, `{"signal":"1"}`), status: 200,
			want: `{"id":"` + ctlFleet + `","connected":true,"signaling":true}`, calls: 1},
		{name: "product: not in it", req: own("/v1/products/{p}/devices/"+ctlLamp, `{"name":"x"}`), status: 404,
			want: `{"ok":false,"error":"device not found"}`, calls: 0},
	})

	ctx := context.Background()
	d, err := w.Store.DeviceByID(ctx, ctlLamp)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "Lamp2" || d.Notes != "n" || d.FirmwareUpdatesForced {
		t.Errorf("lamp stored as name %q notes %q forced %v", d.Name, d.Notes, d.FirmwareUpdatesForced)
	}
	if !d.UpdatedAt.Equal(w.Clock.Now()) {
		t.Errorf("updated_at %v, want the clock's %v", d.UpdatedAt, w.Clock.Now())
	}
	if a, _ := w.Store.DeviceByID(ctx, ctlAttic); a.Name != "attic" {
		t.Errorf("attic renamed to %q by a failed request", a.Name)
	}
	if p, _ := w.Store.DeviceByID(ctx, ctlPorch); !p.Development || p.Name != "porch" {
		t.Errorf("porch: development %v name %q", p.Development, p.Name)
	}
	var signals []string
	for _, c := range w.Devices.Calls() {
		if c.Kind == "signal" {
			signals = append(signals, c.DeviceID[len(c.DeviceID)-2:]+"="+c.Arg)
		}
	}
	if got, want := strings.Join(signals, " "), "a1=1 a1=0 a1=1 a1=0 a1=1 a1=1 c1=1 d1=1"; got != want {
		t.Errorf("signals %s, want %s", got, want)
	}
}

// TestUnclaimDevice covers DELETE /v1/devices/{id}
// (docs/particle-api.md#unclaiming-and-removing-devices).
func TestUnclaimDevice(t *testing.T) {
	w := controlWorld(t)
	del := func(token, path string) apitest.Req { return apitest.Req{Method: "DELETE", Path: path, Token: token} }
	w.Run(t, []apitest.Scenario{
		{Name: "another user's device", Req: del(w.otherToken, "/v1/devices/"+ctlLamp), Status: 403, Want: unknownDevice},
		{Name: "by name", Req: del(w.ownerToken, "/v1/devices/lamp"), Status: 200, Want: `{"ok":true}`},
		{Name: "gone from the owner", Req: apitest.Req{Method: "GET", Path: "/v1/devices/" + ctlLamp, Token: w.ownerToken},
			Status: 403, Want: unknownDevice},
		{Name: "twice", Req: del(w.ownerToken, "/v1/devices/"+ctlLamp), Status: 403, Want: unknownDevice},
		{Name: "CLI-legacy form body", Req: apitest.Req{Method: "DELETE", Path: "/v1/devices/old", Token: w.ownerToken,
			Form: url.Values{"id": {"old"}}}, Status: 200, Want: `{"ok":true}`},
		{Name: "customer", Req: del(w.customerToken, "/v1/devices/porch"), Status: 200, Want: `{"ok":true}`},
		{Name: "customer, another customer's", Req: del(w.customerToken, "/v1/devices/"+ctlOtherC), Status: 403, Want: unknownDevice},
	})
	ctx := context.Background()
	for _, id := range []string{ctlLamp, ctlOld, ctlPorch} {
		d, err := w.Store.DeviceByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.OwnerID != "" || d.CustomerID != "" {
			t.Errorf("%s still owned by %q/%q", id, d.OwnerID, d.CustomerID)
		}
		if d.Name == "" {
			t.Errorf("%s lost its name", id)
		}
	}
	if p, _ := w.Store.DeviceByID(ctx, ctlPorch); p.ProductID != w.product.ID {
		t.Errorf("porch left its product: %d", p.ProductID)
	}
	assertReloads(t, w, ctlLamp, ctlOld, ctlPorch)
}

// assertReloads checks that the devices, and only they, were reloaded, in
// that order.
func assertReloads(t *testing.T, w *world, ids ...string) {
	t.Helper()
	var got []string
	for _, c := range w.Devices.Calls() {
		if c.Kind == "reload" {
			got = append(got, c.DeviceID)
		}
	}
	if strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Errorf("reloads %v, want %v", got, ids)
	}
}

// BenchmarkCallFunction measures POST /v1/devices/{id}/{fn} through the
// API with a fake gateway.
func BenchmarkCallFunction(b *testing.B) {
	e := apitest.New(b, apitest.Options{InMemory: true, Config: api.Config{GlobalRate: -1}})
	u := e.CreateUser(ownerName, ownerPass)
	token := e.UserToken(u)
	ctx := context.Background()
	if _, err := e.Store.ProvisionDevice(ctx, ctlLamp, "", nil, 0); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Store.ClaimDevice(ctx, ctlLamp, u.ID, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Store.SetDeviceOnline(ctx, ctlLamp, store.DeviceSession{Node: "n", SessionID: "s", PlatformID: 12}); err != nil {
		b.Fatal(err)
	}
	if err := e.Store.SetDeviceDescribe(ctx, ctlLamp, store.Describe{Parts: store.DescribeApplication, Functions: []string{"led"}}); err != nil {
		b.Fatal(err)
	}
	req := apitest.Req{Method: "POST", Path: "/v1/devices/" + ctlLamp + "/led", Token: token, JSON: map[string]string{"args": "on"}}
	if r := e.Do(req); r.Status != 200 {
		b.Fatalf("status %d: %s", r.Status, r.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Do(req)
	}
}
