package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Devices of the product-device tests, all in widget unless noted.
const (
	pdAlpha    = "fa00000000000000000000f1" // "alpha", customer's, connected 10:00, firmware 3
	pdBeta     = "fa00000000000000000000f2" // "beta", owner's, connected 11:00, firmware 1
	pdGamma    = "fa00000000000000000000f3" // "Gamma", never connected, quarantined
	pdUnnamed  = "fa00000000000000000000f4" // unnamed, connected 09:00, firmware 2
	pdAlphabet = "fa00000000000000000000f5" // "alphabet", never connected
	pdGadget   = "fa00000000000000000000f6" // in gadget
)

// productWorld is a world holding the product-device test devices.
func productWorld(t *testing.T) *world {
	t.Helper()
	return productWorldOpts(t, apitest.Options{InMemory: true})
}

// productWorldOpts is productWorld with options for the test environment.
func productWorldOpts(t *testing.T, opts apitest.Options) *world {
	t.Helper()
	w := newWorldOpts(t, opts)
	at := func(h, version int, sid string) *store.DeviceSession {
		return &store.DeviceSession{Node: "n1", SessionID: sid, IP: "192.0.2.40",
			At: time.Date(2025, 3, 1, h, 0, 0, 0, time.UTC), PlatformID: 12, ProductVersion: version, SystemModuleVersion: 6200}
	}
	addDevices(t, w.Store, []deviceFixture{
		{id: pdAlpha, name: "alpha", customer: w.customer.ID, productID: w.product.ID, session: at(10, 3, "s1")},
		{id: pdBeta, name: "beta", ownerID: w.owner.ID, productID: w.product.ID, session: at(11, 1, "s2")},
		{id: pdGamma, name: "Gamma", productID: w.product.ID},
		{id: pdUnnamed, productID: w.product.ID, session: at(9, 2, "s3")},
		{id: pdAlphabet, name: "alphabet", productID: w.product.ID},
		{id: pdGadget, name: "alpha", productID: w.otherProduct.ID},
	})
	setFlags(t, w, pdGamma, func(d *store.Device) { d.Quarantined = true })
	return w
}

// setFlags changes a stored device.
func setFlags(t *testing.T, w *world, id string, change func(*store.Device)) {
	t.Helper()
	ctx := context.Background()
	d, err := w.Store.DeviceByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	change(d)
	if err := w.Store.UpdateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// listIDs returns the device IDs of a product device list, in order.
func listIDs(tb testing.TB, r *apitest.Resp) []string {
	tb.Helper()
	var ids []string
	list, _ := r.Map(tb)["devices"].([]any)
	for _, d := range list {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

// TestListProductDevices covers GET /v1/products/{p}/devices
// (docs/particle-api.md#device-endpoints).
func TestListProductDevices(t *testing.T) {
	w := productWorld(t)
	list := func(token, query string) apitest.Req {
		return apitest.Req{Method: "GET", Path: "/v1/products/" + w.product.Slug + "/devices" + query, Token: token}
	}
	ids := func(want ...string) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			if got := listIDs(tb, r); strings.Join(got, " ") != strings.Join(want, " ") {
				tb.Errorf("devices %v, want %v", got, want)
			}
		}
	}
	meta := func(pages, page, perPage, total int) string {
		return `{"total_pages":` + itoa(int64(pages)) + `,"page":` + itoa(int64(page)) + `,"per_page":` +
			itoa(int64(perPage)) + `,"total":` + itoa(int64(total)) + `}`
	}
	both := func(checks ...func(testing.TB, *apitest.Resp)) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			for _, c := range checks {
				c(tb, r)
			}
		}
	}
	metaIs := func(want string) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			m := r.Map(tb)
			b, _ := json.Marshal(m["meta"])
			apitest.MatchJSON(tb, b, want)
		}
	}
	customers := func(want string) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			b, _ := json.Marshal(r.Map(tb)["customers"])
			apitest.MatchJSON(tb, b, want)
		}
	}
	jane := `[{"id":"` + w.customer.ID + `","username":"jane@example.com"}]`
	w.Run(t, []apitest.Scenario{
		{Name: "default order: last connection, never connected last", Req: list(w.ownerToken, ""), Status: 200,
			Check: both(ids(pdBeta, pdAlpha, pdUnnamed, pdGamma, pdAlphabet), metaIs(meta(1, 1, 25, 5)), customers(jane))},
		{Name: "product token, by ID", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + itoa(w.product.ID) + "/devices",
			Token: w.productToken}, Status: 200, Check: ids(pdBeta, pdAlpha, pdUnnamed, pdGamma, pdAlphabet)},
		{Name: "page 1 of 3", Req: list(w.ownerToken, "?per_page=2"), Status: 200,
			Check: both(ids(pdBeta, pdAlpha), metaIs(meta(3, 1, 2, 5)), customers(jane))},
		{Name: "page 2 (perPage)", Req: list(w.ownerToken, "?perPage=2&page=2"), Status: 200,
			Check: both(ids(pdUnnamed, pdGamma), metaIs(meta(3, 2, 2, 5)), customers(`[]`))},
		{Name: "page 3", Req: list(w.ownerToken, "?per_page=2&page=3"), Status: 200,
			Check: both(ids(pdAlphabet), metaIs(meta(3, 3, 2, 5)))},
		{Name: "past the end", Req: list(w.ownerToken, "?per_page=2&page=4"), Status: 200,
			Check: both(ids(), metaIs(meta(3, 4, 2, 5)))},
		{Name: "by ID ascending", Req: list(w.ownerToken, "?sortAttr=deviceId&sortDir=asc"), Status: 200,
			Check: ids(pdAlpha, pdBeta, pdGamma, pdUnnamed, pdAlphabet)},
		{Name: "by ID, default descending", Req: list(w.ownerToken, "?sortAttr=deviceId"), Status: 200,
			Check: ids(pdAlphabet, pdUnnamed, pdGamma, pdBeta, pdAlpha)},
		{Name: "by firmware version descending", Req: list(w.ownerToken, "?sortAttr=firmwareVersion&sortDir=desc"), Status: 200,
			Check: ids(pdAlpha, pdUnnamed, pdBeta, pdGamma, pdAlphabet)},
		{Name: "name filter, partial, any case", Req: list(w.ownerToken, "?deviceName=ALPHA"), Status: 200,
			Check: both(ids(pdAlpha, pdAlphabet), metaIs(meta(1, 1, 25, 2)))},
		{Name: "ID filter, partial", Req: list(w.ownerToken, "?deviceId=F4"), Status: 200, Check: ids(pdUnnamed)},
		{Name: "quarantined", Req: list(w.ownerToken, "?quarantined=true"), Status: 200, Check: ids(pdGamma)},
		{Name: "not quarantined", Req: list(w.ownerToken, "?quarantined=false"), Status: 200,
			Check: ids(pdBeta, pdAlpha, pdUnnamed, pdAlphabet)},
		{Name: "groups match nothing", Req: list(w.ownerToken, "?groups=east,west"), Status: 200,
			Check: both(ids(), metaIs(meta(0, 1, 25, 0)))},
		{Name: "serial numbers match nothing", Req: list(w.ownerToken, "?serialNumber=P0123"), Status: 200, Check: ids()},
		{Name: "unknown sort", Req: list(w.ownerToken, "?sortAttr=name"), Status: 400,
			Want: `{"ok":false,"error":"sortAttr must be deviceId, firmwareVersion or lastConnection"}`},
		{Name: "unknown direction", Req: list(w.ownerToken, "?sortDir=up"), Status: 400,
			Want: `{"ok":false,"error":"sortDir must be asc or desc"}`},
		{Name: "bad quarantined", Req: list(w.ownerToken, "?quarantined=perhaps"), Status: 400,
			Want: `{"ok":false,"error":"quarantined must be true or false"}`},
		{Name: "other product's team", Req: list(w.otherToken, ""), Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "customer", Req: list(w.customerToken, ""), Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "gadget lists its own", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + w.otherProduct.Slug + "/devices",
			Token: w.otherToken}, Status: 200, Check: ids(pdGadget)},
	})

	// The single device, with its product fields.
	pid := itoa(w.product.ID)
	w.Run(t, []apitest.Scenario{
		{Name: "get a quarantined device", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + pid + "/devices/" + strings.ToUpper(pdGamma),
			Token: w.productToken}, Status: 200,
			Want: `{"id":"` + pdGamma + `","name":"Gamma","owner":null,"last_app":null,"last_ip_address":null,"last_heard":null,
				"last_handshake_at":null,"product_id":` + pid + `,"platform_id":0,"online":false,"connected":false,"cellular":false,
				"notes":null,"functions":[],"variables":{},"status":"normal","firmware_updates_enabled":true,"firmware_updates_forced":false,
				"firmware_product_id":` + pid + `,"firmware_version":null,"desired_firmware_version":null,
				"targeted_firmware_release_version":null,"groups":[],"development":false,"quarantined":true,"denied":false}`},
		{Name: "get a customer's device", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/devices/" + pdAlpha,
			Token: w.ownerToken}, Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
			m := r.Map(tb)
			if m["owner"] != customerEmail || m["firmware_version"] != 3.0 || m["online"] != true {
				tb.Errorf("owner %v firmware %v online %v", m["owner"], m["firmware_version"], m["online"])
			}
		}},
		{Name: "another product's device", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/devices/" + pdGadget,
			Token: w.ownerToken}, Status: 404, Want: `{"ok":false,"error":"device not found"}`},
	})
}

// multipartFile builds a multipart/form-data body with a part "file"
// named "file", as particle-cli uploads it.
func multipartFile(t *testing.T, content string) (body, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "file")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte(content))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), mw.FormDataContentType()
}

// TestImportProductDevices covers POST /v1/products/{p}/devices
// (docs/particle-api.md#adding-devices-to-a-product).
func TestImportProductDevices(t *testing.T) {
	w := productWorld(t)
	const (
		imFree      = "fb00000000000000000000e1" // unowned, no product
		imOthers    = "fb00000000000000000000e2" // other user's (not on widget's team)
		imOwners    = "fb00000000000000000000e3" // owner's (on the team)
		imPhoton    = "fb00000000000000000000e4" // unowned, connected as a Photon
		imDenied    = "fb00000000000000000000e5" // in widget, denied
		imUnknown   = "fb00000000000000000000ee" // not known to Wick
		imOtherCust = "fb00000000000000000000e6" // other customer's, in gadget
	)
	addDevices(t, w.Store, []deviceFixture{
		{id: imFree}, {id: imOthers, ownerID: w.other.ID}, {id: imOwners, ownerID: w.owner.ID},
		{id: imPhoton, session: &store.DeviceSession{Node: "n", SessionID: "p", PlatformID: 6}},
		{id: imDenied, productID: w.product.ID},
		{id: imOtherCust, customer: w.otherCustomer.ID, productID: w.otherProduct.ID},
	})
	setFlags(t, w, imDenied, func(d *store.Device) { d.Denied = true })
	post := func(token, body string) apitest.Req {
		r := w.bodyReq("POST", "/v1/products/{p}/devices", body)
		r.Token = token
		return r
	}
	file := func(content string) apitest.Req {
		body, ct := multipartFile(t, content)
		return apitest.Req{Method: "POST", Path: "/v1/products/widget/devices", Token: w.productToken, Body: body, ContentType: ct}
	}
	result := func(updated, existing, nonmember, invalid []string) string {
		q := func(ids []string) string {
			if len(ids) == 0 {
				return "[]"
			}
			return `["` + strings.Join(ids, `","`) + `"]`
		}
		return `{"updated":` + itoa(int64(len(updated))) + `,"updatedDeviceIds":` + q(updated) + `,"existingDeviceIds":` + q(existing) +
			`,"nonmemberDeviceIds":` + q(nonmember) + `,"invalidDeviceIds":` + q(invalid) + `,"protectedDeviceIds":[]}`
	}
	w.Run(t, []apitest.Scenario{
		{Name: "one ID (JS)", Req: post(w.ownerToken, `{"id":"`+imFree+`"}`), Status: 200, Want: result([]string{imFree}, nil, nil, nil)},
		{Name: "again: existing", Req: post(w.ownerToken, `{"id":"`+strings.ToUpper(imFree)+`"}`), Status: 200,
			Want: result(nil, []string{imFree}, nil, nil)},
		{Name: "form id (curl)", Req: post(w.productToken, "id="+imOwners), Status: 200, Want: result([]string{imOwners}, nil, nil, nil)},
		{Name: "owned by a non-member", Req: post(w.ownerToken, `{"id":"`+imOthers+`"}`), Status: 200,
			Want: result(nil, nil, []string{imOthers}, nil)},
		{Name: "CLI file: every kind of line", Req: file("  " + imUnknown + "\r\n\r\n" + imDenied + "\r\n" + pdGamma + "\n" +
			pdBeta + "\n" + pdGadget + "\n" + imPhoton + "\n" + imOtherCust + "\n" + "not-an-id\n" + "P046AF1234567\n" +
			imUnknown + ",extra,columns\n" + imOthers),
			Status: 200, Want: result([]string{imUnknown, imDenied, pdGamma}, []string{pdBeta}, []string{imOthers},
				[]string{pdGadget, imPhoton, imOtherCust, "not-an-id", "P046AF1234567"})},
		{Name: "file as a plain form field", Req: post(w.ownerToken, "file="+imFree+"%0A"), Status: 200,
			Want: result(nil, []string{imFree}, nil, nil)},
		{Name: "nothing", Req: post(w.ownerToken, `{}`), Status: 400,
			Want: `{"ok":false,"error":"id or file is required: a device ID, or a file of one identifier per line"}`},
		{Name: "empty file", Req: file("\n\n"), Status: 400,
			Want: `{"ok":false,"error":"id or file is required: a device ID, or a file of one identifier per line"}`},
		{Name: "other user", Req: post(w.otherToken, `{"id":"`+imFree+`"}`), Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
	})
	ctx := context.Background()
	for _, id := range []string{imFree, imOwners, imUnknown, imDenied, pdGamma} {
		d, err := w.Store.DeviceByID(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if d.ProductID != w.product.ID || d.Quarantined || d.Denied {
			t.Errorf("%s: product %d quarantined %v denied %v", id, d.ProductID, d.Quarantined, d.Denied)
		}
	}
	if d, _ := w.Store.DeviceByID(ctx, imOwners); d.OwnerID != w.owner.ID {
		t.Errorf("the team member lost the device: owner %q", d.OwnerID)
	}
	for _, id := range []string{imOthers, imPhoton} {
		if d, _ := w.Store.DeviceByID(ctx, id); d.ProductID != 0 {
			t.Errorf("%s moved into product %d", id, d.ProductID)
		}
	}
	if d, _ := w.Store.DeviceByID(ctx, pdGadget); d.ProductID != w.otherProduct.ID {
		t.Errorf("gadget's device moved to %d", d.ProductID)
	}
	assertReloads(t, w, imFree, imOwners, imDenied, pdGamma)
}

// TestRemoveProductDevice covers DELETE /v1/products/{p}/devices/{id} and
// DELETE /v1/products/{p}/devices/{id}/owner
// (docs/particle-api.md#unclaiming-and-removing-devices).
func TestRemoveProductDevice(t *testing.T) {
	w := productWorld(t)
	del := func(token, path, body string) apitest.Req {
		r := w.bodyReq("DELETE", path, body)
		r.Token = token
		return r
	}
	notFound := `{"ok":false,"error":"device not found"}`
	w.Run(t, []apitest.Scenario{
		{Name: "deny a quarantined device (JS)", Req: del(w.ownerToken, "/v1/products/{p}/devices/"+pdGamma, `{"deny":true}`), Status: 204},
		{Name: "denied, still listed", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/devices/" + pdGamma, Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if m := r.Map(tb); m["denied"] != true || m["quarantined"] != false {
					tb.Errorf("denied %v quarantined %v", m["denied"], m["quarantined"])
				}
			}},
		{Name: "remove a customer's device (JS {})", Req: del(w.productToken, "/v1/products/{p}/devices/"+pdAlpha, `{}`), Status: 204},
		{Name: "gone from the product", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/devices/" + pdAlpha, Token: w.ownerToken},
			Status: 404, Want: notFound},
		{Name: "and from the customer", Req: apitest.Req{Method: "GET", Path: "/v1/devices/" + pdAlpha, Token: w.customerToken},
			Status: 403},
		{Name: "remove a team member's device (no body)", Req: del(w.ownerToken, "/v1/products/{pid}/devices/"+pdBeta, ""), Status: 204},
		{Name: "twice", Req: del(w.ownerToken, "/v1/products/{p}/devices/"+pdBeta, ""), Status: 404, Want: notFound},
		{Name: "another product's", Req: del(w.ownerToken, "/v1/products/{p}/devices/"+pdGadget, ""), Status: 404, Want: notFound},
		{Name: "by name", Req: del(w.ownerToken, "/v1/products/{p}/devices/alphabet", ""), Status: 404, Want: notFound},
		{Name: "customer refused", Req: del(w.customerToken, "/v1/products/{p}/devices/"+pdUnnamed, ""), Status: 403},
	})
	ctx := context.Background()
	if d, _ := w.Store.DeviceByID(ctx, pdGamma); d.ProductID != w.product.ID || !d.Denied || d.Quarantined {
		t.Errorf("denied device: product %d denied %v quarantined %v", d.ProductID, d.Denied, d.Quarantined)
	}
	if d, _ := w.Store.DeviceByID(ctx, pdAlpha); d.ProductID != 0 || d.CustomerID != "" || d.Name != "alpha" {
		t.Errorf("removed customer device: product %d customer %q name %q", d.ProductID, d.CustomerID, d.Name)
	}
	if d, _ := w.Store.DeviceByID(ctx, pdBeta); d.ProductID != 0 || d.OwnerID != w.owner.ID {
		t.Errorf("removed user device: product %d owner %q", d.ProductID, d.OwnerID)
	}

	// Unclaim keeps the device in the product.
	setFlags(t, w, pdUnnamed, func(d *store.Device) { d.CustomerID = w.customer.ID })
	w.Run(t, []apitest.Scenario{
		{Name: "remove the owner", Req: del(w.ownerToken, "/v1/products/{p}/devices/"+pdUnnamed+"/owner", ""), Status: 200,
			Want: `{"ok":true}`},
		{Name: "owner of a device outside the product", Req: del(w.ownerToken, "/v1/products/{p}/devices/"+pdBeta+"/owner", ""),
			Status: 404, Want: notFound},
	})
	if d, _ := w.Store.DeviceByID(ctx, pdUnnamed); d.ProductID != w.product.ID || d.CustomerID != "" {
		t.Errorf("unclaimed product device: product %d customer %q", d.ProductID, d.CustomerID)
	}
	assertReloads(t, w, pdGamma, pdAlpha, pdBeta, pdUnnamed)
}

// TestProductDevicesAPIUser checks the device scopes of API users on the
// product routes.
func TestProductDevicesAPIUser(t *testing.T) {
	w := productWorld(t)
	u := w.CreateUser("devices+0002@api.wick.local", "unused-password")
	if err := w.Store.AddTeamMember(context.Background(), &store.TeamMember{ProductID: w.product.ID, Username: u.Username,
		Role: store.RoleDeveloper, Programmatic: true}); err != nil {
		t.Fatal(err)
	}
	token := w.Issue(auth.Issue{Kind: store.KindUser, UserID: u.ID, ClientID: "api-user",
		Scope: "devices:list devices.variable:get devices.function:call"})
	addDevices(t, w.Store, []deviceFixture{{id: ctlFleet, productID: w.product.ID,
		session:  &store.DeviceSession{Node: "n", SessionID: "f", PlatformID: 12},
		describe: &store.Describe{Parts: store.DescribeApplication, Functions: []string{"led"}, Variables: map[string]string{"on": "bool"}}}})
	req := func(method, path string) apitest.Req {
		return apitest.Req{Method: method, Path: "/v1/products/widget" + path, Token: token}
	}
	refused := `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`
	w.Run(t, []apitest.Scenario{
		{Name: "devices:list", Req: req("GET", "/devices"), Status: 200},
		{Name: "devices.variable:get", Req: req("GET", "/devices/"+ctlFleet+"/on"), Status: 200},
		{Name: "devices.function:call", Req: req("POST", "/devices/"+ctlFleet+"/led"), Status: 200},
		{Name: "no devices:get", Req: req("GET", "/devices/"+ctlFleet), Status: 400, Want: refused},
		{Name: "no devices:import", Req: req("POST", "/devices?id="+ctlFleet), Status: 400, Want: refused},
		{Name: "no devices:remove", Req: req("DELETE", "/devices/"+ctlFleet), Status: 400, Want: refused},
		{Name: "user routes refused", Req: apitest.Req{Method: "GET", Path: "/v1/devices", Token: token}, Status: 400, Want: refused},
	})
}
