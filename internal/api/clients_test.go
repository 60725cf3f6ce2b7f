package api_test

import (
	"regexp"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

var clientIDPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*-\d{4}$`)

// TestClients covers /v1/clients and /v1/products/{p}/clients
// (docs/particle-api.md#oauth-clients).
func TestClients(t *testing.T) {
	w := newWorld(t, api.Config{})
	var created map[string]any
	post := func(path string, body map[string]any) apitest.Req {
		return apitest.Req{Method: "POST", Path: path, Token: w.ownerToken, JSON: body}
	}
	w.Run(t, []apitest.Scenario{
		{Name: "create installed", Req: post("/v1/clients", map[string]any{"name": "My Cool App!"}),
			Status: 200, Want: `{"ok":true,"client":{"id":"<string>","name":"My Cool App!","type":"installed","secret":"<hex40>"}}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				created = r.Map(tb)["client"].(map[string]any)
				id := created["id"].(string)
				if !clientIDPattern.MatchString(id) || id[:len("my-cool-app-")] != "my-cool-app-" {
					tb.Errorf("client id %q", id)
				}
			}},
		{Name: "create web", Req: post("/v1/clients", map[string]any{"name": "Site", "type": "web",
			"redirect_uri": "https://example.com/cb", "scope": "*:*"}),
			Status: 200, Want: `{"ok":true,"client":{"id":"<string>","name":"Site","type":"web","secret":"<hex40>",
				"redirect_uri":"https://example.com/cb","scope":"*:*"}}`},
		{Name: "list has no secrets", Req: apitest.Req{Method: "GET", Path: "/v1/clients", Token: w.ownerToken},
			Status: 200, Want: `{"ok":true,"clients":[
				{"id":"mine-5000","name":"mine-5000","type":"installed"},
				{"id":"<string>","name":"My Cool App!","type":"installed"},
				{"id":"<string>","name":"Site","type":"web","redirect_uri":"https://example.com/cb","scope":"*:*"}]}`},
		{Name: "other user sees only theirs", Req: apitest.Req{Method: "GET", Path: "/v1/clients", Token: w.otherToken},
			Status: 200, Want: `{"ok":true,"clients":[]}`},
		{Name: "name required", Req: post("/v1/clients", map[string]any{"type": "installed"}),
			Status: 400, Want: `{"ok":false,"error":"name is required"}`},
		{Name: "bad type", Req: post("/v1/clients", map[string]any{"name": "x", "type": "desktop"}),
			Status: 400, Want: `{"ok":false,"error":"type must be installed or web"}`},
		{Name: "web needs redirect", Req: post("/v1/clients", map[string]any{"name": "x", "type": "web"}),
			Status: 400, Want: `{"ok":false,"error":"redirect_uri is required for web clients"}`},
		{Name: "relative redirect", Req: post("/v1/clients", map[string]any{"name": "x", "type": "web", "redirect_uri": "/cb"}),
			Status: 400, Want: `{"ok":false,"error":"redirect_uri must be an absolute http or https URL"}`},
		{Name: "javascript redirect", Req: post("/v1/clients", map[string]any{"name": "x", "type": "web", "redirect_uri": "javascript:alert(1)"}),
			Status: 400, Want: `{"ok":false,"error":"redirect_uri must be an absolute http or https URL"}`},
		{Name: "bad scope", Req: post("/v1/clients", map[string]any{"name": "x", "scope": "devices:list"}),
			Status: 400, Want: `{"ok":false,"error":"scope may only contain customers:create, create_customer or *:*"}`},
		{Name: "update", Req: apitest.Req{Method: "PUT", Path: "/v1/clients/mine-5000", Token: w.ownerToken,
			Form: form("name", "Renamed", "scope", "customers:create")},
			Status: 200, Want: `{"ok":true,"client":{"id":"mine-5000","name":"Renamed","type":"installed","scope":"customers:create"}}`},
		{Name: "scope none clears", Req: apitest.Req{Method: "PUT", Path: "/v1/clients/mine-5000", Token: w.ownerToken,
			JSON: map[string]any{"scope": "none"}},
			Status: 200, Want: `{"ok":true,"client":{"id":"mine-5000","name":"Renamed","type":"installed"}}`},
		{Name: "empty name refused", Req: apitest.Req{Method: "PUT", Path: "/v1/clients/mine-5000", Token: w.ownerToken,
			JSON: map[string]any{"name": " "}},
			Status: 400, Want: `{"ok":false,"error":"name is required"}`},
		{Name: "a product client is not a user client", Req: apitest.Req{Method: "PUT", Path: "/v1/clients/" + w.fullClient,
			Token: w.ownerToken, JSON: map[string]any{"name": "x"}},
			Status: 404, Want: `{"ok":false,"error":"Client not found"}`},
		{Name: "unknown client", Req: apitest.Req{Method: "DELETE", Path: "/v1/clients/nope-0000", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Client not found"}`},
	})

	// The secret from creation works, once the client is deleted it and
	// its tokens do not.
	id, secret := created["id"].(string), created["secret"].(string)
	r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "client_credentials"),
		BasicUser: id, BasicPass: secret})
	if r.Status != 200 {
		t.Fatalf("client credentials: %d %s", r.Status, r.Body)
	}
	tok := r.String(t, "access_token")
	if r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/clients/" + id, Token: w.ownerToken}); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: tok}); r.Status != 401 {
		t.Errorf("token of a deleted client: %d", r.Status)
	}
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "client_credentials"),
		BasicUser: id, BasicPass: secret})
	apitest.MatchJSON(t, r.Body, `{"error":"invalid_client","error_description":"Client credentials are invalid"}`)
}

// TestProductClients covers the product variant and what its clients can
// do.
func TestProductClients(t *testing.T) {
	w := newWorld(t, api.Config{})
	var secret, id string
	w.Run(t, []apitest.Scenario{
		{Name: "list", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/clients", Token: w.productToken},
			Status: 200, Want: `{"ok":true,"clients":[
				{"id":"widget-full-1000","name":"widget-full-1000","type":"installed"},
				{"id":"widget-app-2000","name":"widget-app-2000","type":"installed","scope":"customers:create"},
				{"id":"widget-web-3000","name":"widget-web-3000","type":"web","redirect_uri":"https://app.example.com/setup","scope":"customers:create"}]}`},
		{Name: "create with legacy scope", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/clients", Token: w.ownerToken,
			Form: form("name", "Phone", "scope", "create_customer")},
			Status: 200, Want: `{"ok":true,"client":{"id":"<string>","name":"Phone","type":"installed","secret":"<hex40>","scope":"create_customer"}}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				c := r.Map(tb)["client"].(map[string]any)
				id, secret = c["id"].(string), c["secret"].(string)
			}},
		{Name: "another product's client is not found", Req: apitest.Req{Method: "PUT",
			Path: "/v1/products/widget/clients/" + w.otherClient, Token: w.ownerToken, JSON: map[string]any{"name": "x"}},
			Status: 404, Want: `{"ok":false,"error":"Client not found"}`},
		{Name: "product by numeric ID", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + itoa(w.product.ID) + "/clients",
			Token: w.ownerToken}, Status: 200},
	})
	// The new customers-only client creates customers but mints nothing.
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/products/widget/customers", BasicUser: id, BasicPass: secret,
		Form: form("email", "phone-user@example.com", "password", "phone-password")})
	if r.Status != 201 {
		t.Fatalf("create customer: %d %s", r.Status, r.Body)
	}
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
		Form: form("grant_type", "client_credentials")})
	if r.Status != 400 || r.String(t, "error") != "invalid_scope" {
		t.Errorf("scoped client credentials: %d %s", r.Status, r.Body)
	}
	// Deleting a product client revokes the customer tokens it minted.
	custTok := w.login("phone-user@example.com", "phone-password", id, secret).String(t, "access_token")
	if r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/products/widget/clients/" + id, Token: w.ownerToken}); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: custTok}); r.Status != 401 {
		t.Errorf("customer token of a deleted client: %d", r.Status)
	}
}
