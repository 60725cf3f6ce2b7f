package api_test

import (
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

// setUpProduct creates a product and a client of it through the API, as a
// developer does once, and returns the product slug and the client's
// credentials.
func setUpProduct(t *testing.T, w *world, clientBody map[string]any) (slug, id, secret string) {
	t.Helper()
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/user/products", Token: w.ownerToken,
		JSON: map[string]any{"product": map[string]any{"name": "Smart Bulb", "platform_id": 12}}})
	if r.Status != 200 {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	slug = r.Map(t)["product"].(map[string]any)["slug"].(string)
	r = w.Do(apitest.Req{Method: "POST", Path: "/v1/products/" + slug + "/clients", Token: w.ownerToken, JSON: clientBody})
	if r.Status != 200 {
		t.Fatalf("create client: %d %s", r.Status, r.Body)
	}
	c := r.Map(t)["client"].(map[string]any)
	return slug, c["id"].(string), c["secret"].(string)
}

// TestTwoLeggedFlow follows two-legged authentication (the README's
// walk-through, docs/particle-api.md#customers) up to devices: a server-side client makes a shadow customer, mints customer
// tokens, refreshes and revokes them.
func TestTwoLeggedFlow(t *testing.T) {
	w := newWorld(t, api.Config{})
	slug, id, secret := setUpProduct(t, w, map[string]any{"name": "Two-Legged Server", "type": "installed"})
	const email = "abu@agrabahmonkeys.com"

	// Step 3: the shadow customer, with the access token in the answer.
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/products/" + slug + "/customers", BasicUser: id, BasicPass: secret,
		Form: form("email", email, "no_password", "true")})
	if r.Status != 201 {
		t.Fatalf("create customer: %d %s", r.Status, r.Body)
	}
	apitest.MatchJSON(t, r.Body, tokenBody)

	// Step 7: a fresh customer-scoped token per login.
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
		Form: form("grant_type", "client_credentials", "scope", "customer="+email)})
	apitest.MatchJSON(t, r.Body, `{"token_type":"bearer","access_token":"<hex40>","expires_in":7776000,
		"refresh_token":"<hex40>","scope":"customer=abu@agrabahmonkeys.com"}`)
	custToken, refresh := r.String(t, "access_token"), r.String(t, "refresh_token")

	w.Run(t, []apitest.Scenario{
		{Name: "customer token reads its profile", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: custToken},
			Status: 200, Want: userObject(email, true)},
		{Name: "customer token is not the team", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + slug + "/customers", Token: custToken},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "customer token carries its scope", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: custToken},
			Status: 200, Want: `{"expires_at":"<iso>","client":"` + id + `","client_id":"` + id + `",
				"scopes":["customer=abu@agrabahmonkeys.com"],"orgs":[]}`},
		{Name: "unknown customer", Req: apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
			Form: form("grant_type", "client_credentials", "scope", "customer=nobody@example.com")},
			Status: 400, Want: `{"error":"invalid_grant","error_description":"Customer not found"}`},
	})

	// Refresh, as the README's curl does; the old refresh token is spent.
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
		Form: form("grant_type", "refresh_token", "refresh_token", refresh)})
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	fresh := r.String(t, "access_token")
	if r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
		Form: form("grant_type", "refresh_token", "refresh_token", refresh)}); r.Status != 400 {
		t.Errorf("refresh token reused: %d", r.Status)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: fresh}); r.Status != 200 {
		t.Errorf("refreshed token: %d", r.Status)
	}
	// The customer logs out; the server later deletes the shadow customer.
	if r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/current", Token: fresh}); r.Status != 200 {
		t.Errorf("logout: %d", r.Status)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: fresh}); r.Status != 401 {
		t.Errorf("revoked token: %d", r.Status)
	}
	if r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/products/" + slug + "/customers/" + email, Token: w.ownerToken}); r.Status != 200 {
		t.Errorf("delete customer: %d %s", r.Status, r.Body)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: custToken}); r.Status != 401 {
		t.Errorf("token of a deleted customer: %d", r.Status)
	}
}

// TestSimpleAuthFlow follows simple authentication
// (docs/particle-api.md#customers): an app
// holding a customers:create client signs customers up and logs them in,
// and can do nothing else with the client.
func TestSimpleAuthFlow(t *testing.T) {
	w := newWorld(t, api.Config{})
	slug, id, secret := setUpProduct(t, w, map[string]any{"name": "Bulb App", "scope": "customers:create"})
	const email = "lightbulb-fan@example.com"

	// Sign-up in the app: JS createCustomer posts the client's fields.
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/products/" + slug + "/customers", Form: form(
		"email", email, "password", "glow-in-the-dark", "grant_type", "client_credentials",
		"client_id", id, "client_secret", secret)})
	if r.Status != 201 {
		t.Fatalf("create customer: %d %s", r.Status, r.Body)
	}
	// Later logins go through the same client.
	r = w.login(email, "glow-in-the-dark", id, secret)
	if r.Status != 200 {
		t.Fatalf("customer login: %d %s", r.Status, r.Body)
	}
	custToken := r.String(t, "access_token")
	w.Run(t, []apitest.Scenario{
		{Name: "customer profile", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: custToken},
			Status: 200, Want: userObject(email, false)},
		{Name: "wrong customer password", Req: apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "password",
			"username", email, "password", "nope", "client_id", id, "client_secret", secret)},
			Status: 400, Want: `{"error":"invalid_grant","error_description":"User credentials are invalid"}`},
		{Name: "the developer cannot log in through the product client", Req: apitest.Req{Method: "POST", Path: "/oauth/token",
			Form: form("grant_type", "password", "username", ownerName, "password", ownerPass, "client_id", id, "client_secret", secret)},
			Status: 400},
		// The scoped client is refused everything else.
		{Name: "no product token", Req: apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
			Form: form("grant_type", "client_credentials")},
			Status: 400, Want: `{"error":"invalid_scope","error_description":"The client is not allowed to request this scope"}`},
		{Name: "no customer-scoped token", Req: apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: id, BasicPass: secret,
			Form: form("grant_type", "client_credentials", "scope", "customer="+email)},
			Status: 400, Want: `{"error":"invalid_scope","error_description":"The client is not allowed to request this scope"}`},
		{Name: "no customer listing", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + slug + "/customers", BasicUser: id, BasicPass: secret},
			Status: 400, Want: `{"error":"invalid_request","error_description":"The access token was not found"}`},
		{Name: "no client management", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + slug + "/clients",
			Form: form("client_id", id, "client_secret", secret)}, Status: 400},
		{Name: "no token listing", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: id, BasicPass: secret},
			Status: 401},
		{Name: "no customer management for the customer", Req: apitest.Req{Method: "DELETE",
			Path: "/v1/products/" + slug + "/customers/" + email, Token: custToken}, Status: 403},
		{Name: "no creating customers in another product", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/customers",
			BasicUser: id, BasicPass: secret, Form: form("email", "x@example.com", "password", "xxxxxxxx")},
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
	})
}
