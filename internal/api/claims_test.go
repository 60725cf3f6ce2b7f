package api_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// claimCodeRE is the shape of a Wi-Fi claim code: 63 characters of the
// base64 alphabet.
var claimCodeRE = regexp.MustCompile(`^[A-Za-z0-9+/]{63}$`)

// takeCode takes the stored claim code of code, failing the test when
// there is none.
func takeCode(t *testing.T, w *world, code string, at time.Time) *store.ClaimCode {
	t.Helper()
	cc, err := w.Store.TakeClaimCode(context.Background(), auth.HashToken(code), at)
	if err != nil {
		t.Fatalf("claim code %q: %v", code, err)
	}
	return cc
}

// TestClaimCodes covers POST /v1/device_claims and POST
// /v1/products/{p}/device_claims (docs/particle-api.md#claim-codes): who may
// create codes, what is stored, and the answer.
func TestClaimCodes(t *testing.T) {
	w := controlWorld(t)
	now := w.Clock.Now()
	memberToken := w.UserToken(w.CreateUser(memberName, "member-password"))
	tests := []struct {
		name         string
		token, path  string
		body         string
		status       int
		wantErr      string // exact error body for failures
		user         string // the stored code's user ...
		customer     string // ... customer ...
		product      int64  // ... and product
		deviceIDs    []string
		cellularCode string // expected code when given as iccid/imei
	}{
		{name: "user (CLI-legacy, no body)", token: w.ownerToken, path: "/v1/device_claims", status: 200,
			user: w.owner.ID, deviceIDs: []string{ctlLamp, ctlOld, ctlGen2, ctlAttic}},
		{name: "user (JS, iccid absent)", token: w.otherToken, path: "/v1/device_claims", body: `{}`, status: 200,
			user: w.other.ID, deviceIDs: []string{ctlOtherDev}},
		{name: "customer", token: w.customerToken, path: "/v1/device_claims", status: 200,
			customer: w.customer.ID, product: w.product.ID, deviceIDs: []string{ctlPorch}},
		{name: "customer on its product", token: w.customerToken, path: "/v1/products/{p}/device_claims", status: 200,
			customer: w.customer.ID, product: w.product.ID, deviceIDs: []string{ctlPorch}},
		{name: "customer on its product by ID", token: w.customerToken, path: "/v1/products/{pid}/device_claims", status: 200,
			customer: w.customer.ID, product: w.product.ID, deviceIDs: []string{ctlPorch}},
		{name: "customer on another product", token: w.otherCustToken, path: "/v1/products/{p}/device_claims", status: 403,
			wantErr: `{"ok":false,"error":"Permission Denied"}`},
		{name: "team owner on the product", token: w.ownerToken, path: "/v1/products/{p}/device_claims", status: 200,
			user: w.owner.ID, product: w.product.ID, deviceIDs: []string{ctlLamp, ctlOld, ctlGen2, ctlAttic}},
		{name: "team member on the product", token: memberToken, path: "/v1/products/{p}/device_claims", status: 200,
			user: "member", product: w.product.ID, deviceIDs: []string{}},
		{name: "user off the team", token: w.otherToken, path: "/v1/products/{p}/device_claims", status: 403,
			wantErr: `{"ok":false,"error":"Permission Denied"}`},
		{name: "product token", token: w.productToken, path: "/v1/products/{p}/device_claims", status: 200,
			product: w.product.ID, deviceIDs: []string{}},
		{name: "product token, user route", token: w.productToken, path: "/v1/device_claims", status: 403,
			wantErr: `{"ok":false,"error":"Permission Denied"}`},
		{name: "product token, another product", token: w.productToken, path: "/v1/products/" + w.otherProduct.Slug + "/device_claims",
			status: 403, wantErr: `{"ok":false,"error":"Permission Denied"}`},
		{name: "unknown product", token: w.ownerToken, path: "/v1/products/nope/device_claims", status: 404,
			wantErr: `{"ok":false,"error":"Product not found"}`},
		{name: "API user", token: w.apiUserToken, path: "/v1/products/{p}/device_claims", status: 400,
			wantErr: `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`},
		{name: "cellular: the ICCID is the code", token: w.ownerToken, path: "/v1/device_claims",
			body: `{"iccid":"89314404000012345678"}`, status: 200, user: w.owner.ID,
			deviceIDs: []string{ctlLamp, ctlOld, ctlGen2, ctlAttic}, cellularCode: "89314404000012345678"},
		{name: "cellular: IMEI without ICCID", token: w.customerToken, path: "/v1/products/{p}/device_claims",
			body: "imei=352753090000001", status: 200, customer: w.customer.ID, product: w.product.ID,
			deviceIDs: []string{ctlPorch}, cellularCode: "352753090000001"},
		{name: "cellular: bad ICCID", token: w.ownerToken, path: "/v1/device_claims", body: `{"iccid":"8931 4404"}`, status: 400,
			wantErr: `{"ok":false,"error":"iccid and imei must be 1 to 63 printable characters without spaces"}`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.TB = t
			r := w.bodyReq("POST", tt.path, tt.body)
			r.Token = tt.token
			resp := w.Do(r)
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if tt.wantErr != "" {
				apitest.MatchJSON(t, resp.Body, tt.wantErr)
				return
			}
			m := resp.Map(t)
			if len(m) != 2 {
				t.Errorf("body has keys other than claim_code and device_ids: %s", resp.Body)
			}
			code, _ := m["claim_code"].(string)
			if tt.cellularCode != "" {
				if code != tt.cellularCode {
					t.Errorf("claim_code %q, want %q", code, tt.cellularCode)
				}
			} else if !claimCodeRE.MatchString(code) {
				t.Errorf("claim_code %q is not 63 base64 characters", code)
			}
			if seen[code] && tt.cellularCode == "" {
				t.Errorf("claim code %q issued twice", code)
			}
			seen[code] = true
			ids, _ := m["device_ids"].([]any)
			var got []string
			for _, id := range ids {
				got = append(got, id.(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.deviceIDs, ",") || ids == nil {
				t.Errorf("device_ids %v, want %v", m["device_ids"], tt.deviceIDs)
			}
			cc := takeCode(t, w, code, now)
			user := tt.user
			if user == "member" {
				u, _ := w.Store.UserByUsername(context.Background(), memberName)
				user = u.ID
			}
			if cc.UserID != user || cc.CustomerID != tt.customer || cc.ProductID != tt.product {
				t.Errorf("stored user %q customer %q product %d, want %q %q %d",
					cc.UserID, cc.CustomerID, cc.ProductID, user, tt.customer, tt.product)
			}
			if want := w.Clock.Now().Add(24 * time.Hour); !cc.ExpiresAt.Equal(want) {
				t.Errorf("expires %v, want %v", cc.ExpiresAt, want)
			}
		})
	}
	w.TB = t

	// Codes expire after 24 hours; a newer code for the same SIM replaces
	// the pending one.
	create := func(token, body string) string {
		r := w.bodyReq("POST", "/v1/device_claims", body)
		r.Token = token
		resp := w.Do(r)
		if resp.Status != 200 {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		return resp.String(t, "claim_code")
	}
	code := create(w.ownerToken, "")
	if _, err := w.Store.TakeClaimCode(context.Background(), auth.HashToken(code), w.Clock.Now().Add(24*time.Hour+time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("code taken after 24 h: %v", err)
	}
	create(w.ownerToken, `{"iccid":"8900000000000000001"}`)
	create(w.otherToken, `{"iccid":"8900000000000000001"}`)
	if cc := takeCode(t, w, "8900000000000000001", w.Clock.Now()); cc.UserID != w.other.ID {
		t.Errorf("SIM code belongs to %q, want the latest requester %q", cc.UserID, w.other.ID)
	}
}

// belongsElsewhere is the claim conflict body; particle-cli searches it
// for "That belongs to someone else."
const belongsElsewhere = `{"ok":false,"errors":["That belongs to someone else. To request a transfer add ?request_transfer=true to the URL."]}`

// TestClaimDevice covers POST /v1/devices
// (docs/particle-api.md#claiming-a-device-by-id).
func TestClaimDevice(t *testing.T) {
	w := controlWorld(t)
	const (
		free     = "ee00000000000000000000e1" // unowned, in no product, offline
		fleetOff = "ee00000000000000000000e2" // unowned, in widget, offline
		gadget   = "ee00000000000000000000e3" // unowned, in gadget
	)
	addDevices(t, w.Store, []deviceFixture{{id: free}, {id: fleetOff, productID: w.product.ID}, {id: gadget, productID: w.otherProduct.ID}})
	claim := func(token, body string) apitest.Req {
		r := w.bodyReq("POST", "/v1/devices", body)
		r.Token = token
		return r
	}
	claimed := func(id, owner string, online bool) string {
		c := "false"
		if online {
			c = "true"
		}
		return `{"ok":true,"id":"` + id + `","user_id":"` + owner + `","connected":` + c + `}`
	}
	w.Run(t, []apitest.Scenario{
		{Name: "unowned and offline (JS)", Req: claim(w.ownerToken, `{"id":"`+free+`"}`), Status: 200,
			Want: claimed(free, w.owner.ID, false)},
		{Name: "already yours", Req: claim(w.ownerToken, `{"id":"`+free+`"}`), Status: 200, Want: claimed(free, w.owner.ID, false)},
		{Name: "already yours, online, upper case (CLI-legacy form)", Req: claim(w.ownerToken, "id="+strings.ToUpper(ctlLamp)),
			Status: 200, Want: claimed(ctlLamp, w.owner.ID, true)},
		{Name: "someone else's", Req: claim(w.otherToken, `{"id":"`+free+`"}`), Status: 403, Want: belongsElsewhere},
		{Name: "someone else's, transfer in the body", Req: claim(w.otherToken, `{"id":"`+free+`","request_transfer":true}`),
			Status: 200, Want: `{"ok":true,"transfer_id":"<hex24>"}`},
		{Name: "someone else's, transfer in the query (as the message says)",
			Req: func() apitest.Req {
				r := claim(w.otherToken, "id="+ctlLamp)
				r.Path += "?request_transfer=true"
				return r
			}(), Status: 200, Want: `{"ok":true,"transfer_id":"<hex24>"}`},
		{Name: "a customer's device", Req: claim(w.ownerToken, `{"id":"`+ctlPorch+`"}`), Status: 403, Want: belongsElsewhere},
		{Name: "unknown ID", Req: claim(w.ownerToken, `{"id":"ee00000000000000000000ff"}`), Status: 404,
			Want: `{"ok":false,"error":"device not found"}`},
		{Name: "not an ID", Req: claim(w.ownerToken, `{"id":"kitchen"}`), Status: 404, Want: `{"ok":false,"error":"device not found"}`},
		{Name: "no ID", Req: claim(w.ownerToken, `{}`), Status: 400,
			Want: `{"ok":false,"error":"id is required: the ID of the device to claim"}`},
		{Name: "JS provisionDevice", Req: claim(w.ownerToken, `{"product_id":1}`), Status: 400,
			Want: `{"ok":false,"error":"Creating device IDs is not supported: send id, the ID of an existing device"}`},
		{Name: "product device, user off the team", Req: claim(w.otherToken, `{"id":"`+fleetOff+`"}`), Status: 403, Want: belongsElsewhere},
		{Name: "customer, device outside its product", Req: claim(w.customerToken, `{"id":"`+gadget+`"}`), Status: 403,
			Want: `{"ok":false,"error":"Permission Denied","info":"A customer can claim only devices of its own product"}`},
		{Name: "customer, unowned device of its product", Req: claim(w.customerToken, `{"id":"`+fleetOff+`"}`), Status: 200,
			Want: claimed(fleetOff, w.customer.ID, false)},
		{Name: "team member, unowned product device", Req: claim(w.ownerToken, `{"id":"`+ctlFleet+`"}`), Status: 200,
			Want: claimed(ctlFleet, w.owner.ID, true)},
		{Name: "other user, unowned device of its own product", Req: claim(w.otherToken, `{"id":"`+gadget+`"}`), Status: 200,
			Want: claimed(gadget, w.other.ID, false)},
		{Name: "product token", Req: claim(w.productToken, `{"id":"`+free+`"}`), Status: 403,
			Want: `{"ok":false,"error":"Permission Denied"}`},
	})
	ctx := context.Background()
	for id, want := range map[string][2]string{
		free:     {w.owner.ID, ""},
		ctlLamp:  {w.owner.ID, ""},
		fleetOff: {"", w.customer.ID},
		ctlFleet: {w.owner.ID, ""},
		gadget:   {w.other.ID, ""},
	} {
		d, err := w.Store.DeviceByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.OwnerID != want[0] || d.CustomerID != want[1] {
			t.Errorf("%s owned by %q/%q, want %q/%q", id, d.OwnerID, d.CustomerID, want[0], want[1])
		}
	}
	assertReloads(t, w, free, fleetOff, ctlFleet, gadget)

	// Claiming named the devices that had no name (docs/api.md, Device
	// names); a named one kept its name. The name then works as the ID.
	generated := regexp.MustCompile(`^[a-z]+_[a-z]+$`)
	for _, id := range []string{free, fleetOff, ctlFleet, gadget} {
		d, err := w.Store.DeviceByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !generated.MatchString(d.Name) {
			t.Errorf("claimed device %s: name %q; want a generated name", id, d.Name)
		}
		if id != free {
			continue
		}
		r := w.Do(apitest.Req{Method: "GET", Path: "/v1/devices/" + d.Name, Token: w.ownerToken})
		if got, _ := r.Map(t)["name"].(string); r.Status != 200 || got != d.Name || r.Map(t)["id"] != free {
			t.Errorf("GET by generated name %q: %d %s", d.Name, r.Status, r.Body)
		}
	}
	if d, err := w.Store.DeviceByID(ctx, ctlLamp); err != nil || d.Name != "Lamp" {
		t.Errorf("named device after a claim: %v, %v; want the name Lamp kept", d, err)
	}

	// The claimed device is listed, and claim codes report it.
	r := w.Do(apitest.Req{Method: "GET", Path: "/v1/devices/" + free, Token: w.ownerToken})
	if r.Status != 200 {
		t.Errorf("claimed device: status %d", r.Status)
	}
	r = w.Do(apitest.Req{Method: "POST", Path: "/v1/device_claims", Token: w.customerToken, Form: url.Values{}})
	if ids := r.Map(t)["device_ids"].([]any); len(ids) != 2 {
		t.Errorf("customer's device_ids %v, want porch and the claimed device", ids)
	}
}
