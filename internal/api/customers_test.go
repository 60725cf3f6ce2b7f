package api_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

const tokenBody = `{"token_type":"bearer","access_token":"<hex40>","expires_in":7776000,"refresh_token":"<hex40>"}`

// TestCreateCustomer covers the three modes of POST
// /v1/products/{p}/customers and their errors (docs/particle-api.md#customers).
func TestCreateCustomer(t *testing.T) {
	w := newWorld(t, api.Config{})
	path := "/v1/products/widget/customers"
	withClient := func(id, secret string, kv ...string) apitest.Req {
		return apitest.Req{Method: "POST", Path: path, BasicUser: id, BasicPass: secret, Form: form(kv...)}
	}
	noStore := func(tb testing.TB, r *apitest.Resp) {
		if r.Header.Get("Cache-Control") != "no-store" {
			tb.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
		}
	}
	w.Run(t, []apitest.Scenario{
		{Name: "shadow customer, Basic", Req: withClient(w.fullClient, w.fullSecret, "email", "abu@example.com", "no_password", "true"),
			Status: 201, Want: tokenBody, Check: noStore},
		{Name: "password customer, client fields as JS sends", Req: apitest.Req{Method: "POST", Path: path, Form: form(
			"email", "mobile@example.com", "password", "mobile-pass", "grant_type", "client_credentials",
			"client_id", w.createClient, "client_secret", w.createSecret)},
			Status: 201, Want: tokenBody},
		{Name: "JSON body, custom lifetime", Req: apitest.Req{Method: "POST", Path: path, BasicUser: w.createClient, BasicPass: w.createSecret,
			JSON: map[string]any{"email": "json@example.com", "password": "json-password", "expires_in": 600}},
			Status: 201, Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":600,"refresh_token":"<hex40>"}`},
		{Name: "never-expiring customer token", Req: withClient(w.fullClient, w.fullSecret, "email", "forever@example.com",
			"no_password", "1", "expires_in", "0"),
			Status: 201, Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":0}`},
		{Name: "exists", Req: withClient(w.fullClient, w.fullSecret, "email", "abu@example.com", "no_password", "true"),
			Status: 400, Want: `{"error":"customer_exists","error_description":"Customer already exists"}`},
		{Name: "same e-mail in another product is fine", Req: apitest.Req{Method: "POST", Path: "/v1/products/gadget/customers",
			BasicUser: w.otherClient, BasicPass: w.otherSecret, Form: form("email", "abu@example.com", "no_password", "true")},
			Status: 201},
		{Name: "client of another product", Req: withClient(w.otherClient, w.otherSecret, "email", "x@example.com", "no_password", "true"),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
		{Name: "user-owned client", Req: withClient(w.userClient, w.userSecret, "email", "x@example.com", "no_password", "true"),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
		{Name: "wrong secret", Req: withClient(w.fullClient, "wrong", "email", "x@example.com", "no_password", "true"),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
		{Name: "missing email", Req: withClient(w.fullClient, w.fullSecret, "password", "whatever-pass"),
			Status: 400, Want: `{"error":"invalid_request","error_description":"email is required"}`},
		{Name: "missing password", Req: withClient(w.fullClient, w.fullSecret, "email", "x@example.com"),
			Status: 400, Want: `{"error":"invalid_request","error_description":"password is required unless no_password is true"}`},
		{Name: "short password", Req: withClient(w.fullClient, w.fullSecret, "email", "x@example.com", "password", "short"),
			Status: 400, Want: `{"error":"invalid_request","error_description":"password must be at least 8 characters"}`},
		{Name: "bad expires_in", Req: withClient(w.fullClient, w.fullSecret, "email", "x@example.com", "no_password", "true", "expires_in", "x"),
			Status: 400},
		{Name: "no credentials at all", Req: apitest.Req{Method: "POST", Path: path, Form: form("email", "x@example.com", "password", "xxxxxxxx")},
			Status: 400, Want: `{"error":"invalid_client","error_description":"Invalid or missing client_id parameter"}`},
		{Name: "client id without secret", Req: apitest.Req{Method: "POST", Path: path, Form: form("email", "x@example.com",
			"password", "xxxxxxxx", "client_id", w.fullClient)},
			Status: 400, Want: `{"error":"invalid_client","error_description":"Missing client_secret parameter"}`},
		{Name: "unknown product", Req: apitest.Req{Method: "POST", Path: "/v1/products/nope/customers", BasicUser: w.fullClient,
			BasicPass: w.fullSecret, Form: form("email", "x@example.com", "no_password", "true")},
			Status: 404, Want: `{"ok":false,"error":"Product not found"}`},
		{Name: "team member token", Req: apitest.Req{Method: "POST", Path: path, Token: w.ownerToken,
			JSON: map[string]any{"email": "team-made@example.com", "password": "team-password"}},
			Status: 201, Want: tokenBody},
		{Name: "product token by numeric id", Req: apitest.Req{Method: "POST", Path: "/v1/products/" + itoa(w.product.ID) + "/customers",
			Token: w.productToken, JSON: map[string]any{"email": "prod-made@example.com", "no_password": true}},
			Status: 201, Want: tokenBody},
		{Name: "customer token refused", Req: apitest.Req{Method: "POST", Path: path, Token: w.customerToken,
			JSON: map[string]any{"email": "x@example.com", "password": "xxxxxxxx"}},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "outsider token refused", Req: apitest.Req{Method: "POST", Path: path, Token: w.otherToken,
			JSON: map[string]any{"email": "x@example.com", "password": "xxxxxxxx"}},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
	})

	// The created customers are real: log in through a product client.
	if r := w.login("mobile@example.com", "mobile-pass", w.createClient, w.createSecret); r.Status != 200 {
		t.Errorf("customer login: %d %s", r.Status, r.Body)
	}
	if r := w.login("team-made@example.com", "team-password", w.fullClient, w.fullSecret); r.Status != 200 {
		t.Errorf("team-made customer login: %d %s", r.Status, r.Body)
	}
	// A shadow customer has no password to log in with.
	if r := w.login("abu@example.com", "", w.fullClient, w.fullSecret); r.Status != 400 {
		t.Errorf("shadow login: %d", r.Status)
	}
}

// TestImplicitCustomer covers the browser flow for web clients.
func TestImplicitCustomer(t *testing.T) {
	w := newWorld(t, api.Config{})
	implicit := func(clientID string, kv ...string) apitest.Req {
		return apitest.Req{Method: "POST", Path: "/v1/products/widget/customers",
			Form: form(append([]string{"client_id", clientID, "response_type", "token"}, kv...)...)}
	}
	r := w.Do(implicit(w.webClient, "email", "browser@example.com", "password", "browser-pass"))
	if r.Status != 302 {
		t.Fatalf("implicit: %d %s", r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	base, frag, _ := strings.Cut(loc, "#")
	if base != webRedirect {
		t.Fatalf("Location = %q", loc)
	}
	vals, err := url.ParseQuery(frag)
	if err != nil || vals.Get("token_type") != "bearer" || vals.Get("expires_in") != "7776000" || len(vals.Get("access_token")) != 40 {
		t.Fatalf("fragment %q", frag)
	}
	if vals.Has("refresh_token") {
		t.Errorf("implicit flow leaked a refresh token")
	}
	me := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: vals.Get("access_token")})
	apitest.MatchJSON(t, me.Body, userObject("browser@example.com", false))

	// Errors after the client checks out go back to the client.
	r = w.Do(implicit(w.webClient, "email", "browser@example.com", "password", "browser-pass"))
	if r.Status != 302 || !strings.HasSuffix(r.Header.Get("Location"), "#error=customer_exists&error_description=Customer+already+exists") {
		t.Errorf("duplicate: %d %q", r.Status, r.Header.Get("Location"))
	}
	r = w.Do(implicit(w.webClient, "email", "nopass@example.com", "no_password", "true"))
	if r.Status != 302 || !strings.Contains(r.Header.Get("Location"), "#error=invalid_request") {
		t.Errorf("implicit shadow customer: %d %q", r.Status, r.Header.Get("Location"))
	}
	// Client errors are never redirected.
	w.Run(t, []apitest.Scenario{
		{Name: "installed client", Req: implicit(w.createClient, "email", "x@example.com", "password", "xxxxxxxx"),
			Status: 400, Want: `{"error":"unauthorized_client","error_description":"The client may not use the implicit flow: it must be a web client of this product"}`},
		{Name: "unknown client", Req: implicit("nope-0000", "email", "x@example.com", "password", "xxxxxxxx"),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
		{Name: "web client of another product", Req: apitest.Req{Method: "POST", Path: "/v1/products/gadget/customers",
			Form: form("client_id", w.webClient, "response_type", "token", "email", "x@example.com", "password", "xxxxxxxx")},
			Status: 400},
	})
}

// TestManageCustomers covers listing, password changes and deletion.
func TestManageCustomers(t *testing.T) {
	w := newWorld(t, api.Config{})
	for i := 0; i < 30; i++ {
		w.CreateCustomer(w.product.ID, fmt.Sprintf("c%02d@example.com", i), "")
	}
	list := func(q string) apitest.Req {
		return apitest.Req{Method: "GET", Path: "/v1/products/widget/customers" + q, Token: w.ownerToken}
	}
	w.Run(t, []apitest.Scenario{
		{Name: "first page", Req: list("?per_page=2"), Status: 200, Want: `{"customers":[
			{"id":"` + w.customer.ID + `","username":"jane@example.com","devices":[]},
			{"id":"<hex24>","username":"c00@example.com","devices":[]}],
			"devices":[],"meta":{"total_pages":16,"page":1,"per_page":2,"total":31}}`},
		{Name: "perPage spelling, page 2", Req: list("?perPage=10&page=2"), Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
			m := r.Map(tb)
			cs := m["customers"].([]any)
			if len(cs) != 10 || cs[0].(map[string]any)["username"] != "c09@example.com" {
				tb.Errorf("page 2: %s", r.Body)
			}
			apitest.MatchJSON(tb, mustJSON(m["meta"]), `{"total_pages":4,"page":2,"per_page":10,"total":31}`)
		}},
		{Name: "default page size, clamped", Req: list("?per_page=1000&page=x"), Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
			apitest.MatchJSON(tb, mustJSON(r.Map(tb)["meta"]), `{"total_pages":1,"page":1,"per_page":100,"total":31}`)
		}},
		{Name: "past the end", Req: list("?page=9"), Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
			if n := len(r.Map(tb)["customers"].([]any)); n != 0 {
				tb.Errorf("%d customers past the end", n)
			}
		}},
		{Name: "set password", Req: apitest.Req{Method: "PUT", Path: "/v1/products/widget/customers/c00@example.com",
			Token: w.productToken, JSON: map[string]any{"password": "now-has-one"}}, Status: 200, Want: `{"ok":true}`},
		{Name: "password required", Req: apitest.Req{Method: "PUT", Path: "/v1/products/widget/customers/c00@example.com",
			Token: w.productToken, JSON: map[string]any{}}, Status: 400, Want: `{"ok":false,"error":"password is required"}`},
		{Name: "unknown customer", Req: apitest.Req{Method: "PUT", Path: "/v1/products/widget/customers/zz@example.com",
			Token: w.ownerToken, JSON: map[string]any{"password": "whatever-pass"}},
			Status: 404, Want: `{"ok":false,"error":"Customer not found"}`},
		{Name: "other product's customer is not ours", Req: apitest.Req{Method: "DELETE",
			Path: "/v1/products/gadget/customers/jane@example.com", Token: w.ownerToken}, Status: 403},
		{Name: "delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/customers/jane%40example.com", Token: w.ownerToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "deleted customer's token", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.customerToken}, Status: 401},
		{Name: "delete again", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/customers/jane@example.com", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Customer not found"}`},
		{Name: "the other product's Jane is untouched", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.otherCustToken},
			Status: 200},
	})
	if r := w.login("c00@example.com", "now-has-one", w.fullClient, w.fullSecret); r.Status != 200 {
		t.Errorf("login with the set password: %d %s", r.Status, r.Body)
	}
	if _, err := w.Store.CustomerByEmail(context.Background(), w.product.ID, customerEmail); err == nil {
		t.Error("customer still stored")
	}
}
