package api_test

import (
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

// productObject is the expected product object of
// docs/particle-api.md#products.
func productObject(id int64, name, slug, owner string, platform int) string {
	return `{"id":` + itoa(id) + `,"platform_id":` + itoa(int64(platform)) + `,"name":"` + name + `","slug":"` + slug +
		`","description":"","subscription_id":null,"mb_limit":null,"user":"` + owner + `","org":null,"groups":[],` +
		`"settings":{"location":{},"known_application":{"opt_in":true},"quarantine":false},"requires_activation_codes":false}`
}

// TestProducts covers docs/particle-api.md#products.
func TestProducts(t *testing.T) {
	w := newWorld(t, api.Config{})
	post := func(body map[string]any) apitest.Req {
		return apitest.Req{Method: "POST", Path: "/v1/user/products", Token: w.ownerToken, JSON: body}
	}
	widget := productObject(w.product.ID, "widget", "widget", ownerName, 12)
	w.Run(t, []apitest.Scenario{
		{Name: "get by slug", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.ownerToken},
			Status: 200, Want: `{"product":` + widget + `}`},
		{Name: "get by id with a product token", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + itoa(w.product.ID), Token: w.productToken},
			Status: 200, Want: `{"product":` + widget + `}`},
		{Name: "not found", Req: apitest.Req{Method: "GET", Path: "/v1/products/99999", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Product not found"}`},
		{Name: "huge id", Req: apitest.Req{Method: "GET", Path: "/v1/products/99999999999999999999999", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Product not found"}`},
		{Name: "not a member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "another product's token", Req: apitest.Req{Method: "GET", Path: "/v1/products/gadget", Token: w.productToken},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "list", Req: apitest.Req{Method: "GET", Path: "/v1/user/products", Token: w.ownerToken},
			Status: 200, Want: `{"products":[` + widget + `]}`},
		{Name: "create nested", Req: post(map[string]any{"product": map[string]any{"name": "My Product", "platform_id": 10,
			"description": "A thing", "settings": map[string]any{"location": map[string]any{"opt_in": false}}}}),
			Status: 200, Want: `{"product":{"id":"<number>","platform_id":10,"name":"My Product","slug":"my-product",
				"description":"A thing","subscription_id":null,"mb_limit":null,"user":"owner@example.com","org":null,"groups":[],
				"settings":{"location":{"opt_in":false},"known_application":{"opt_in":true},"quarantine":false},
				"requires_activation_codes":false}}`},
		{Name: "create flat, slug taken", Req: post(map[string]any{"name": "Widget", "platform_id": "12"}),
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if got := r.Map(tb)["product"].(map[string]any)["slug"]; got != "widget-2" {
					tb.Errorf("slug = %v, want widget-2", got)
				}
			}},
		{Name: "all-digit name", Req: apitest.Req{Method: "POST", Path: "/v1/user/products", Token: w.ownerToken,
			Form: form("name", "1234", "platform_id", "6")},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if got := r.Map(tb)["product"].(map[string]any)["slug"]; got != "product-1234" {
					tb.Errorf("slug = %v, want product-1234", got)
				}
			}},
		{Name: "reachable by its new slug", Req: apitest.Req{Method: "GET", Path: "/v1/products/product-1234", Token: w.ownerToken},
			Status: 200},
		{Name: "name required", Req: post(map[string]any{"product": map[string]any{"platform_id": 6}}),
			Status: 400, Want: `{"ok":false,"error":"name is required"}`},
		{Name: "platform required", Req: post(map[string]any{"name": "x"}),
			Status: 400, Want: `{"ok":false,"error":"platform_id is required and must be a positive integer"}`},
		{Name: "platform must be a number", Req: post(map[string]any{"name": "x", "platform_id": "photon"}),
			Status: 400, Want: `{"ok":false,"error":"platform_id is required and must be a positive integer"}`},
		{Name: "settings must be an object", Req: post(map[string]any{"name": "x", "platform_id": 6, "settings": "on"}),
			Status: 400, Want: `{"ok":false,"error":"settings must be an object"}`},
		{Name: "listed, both routes", Req: apitest.Req{Method: "GET", Path: "/v1/products", Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if n := len(r.Map(tb)["products"].([]any)); n != 4 {
					tb.Errorf("%d products, want 4", n)
				}
			}},
		{Name: "other user's list", Req: apitest.Req{Method: "GET", Path: "/v1/products", Token: w.otherToken},
			Status: 200, Want: `{"products":[` + productObject(w.otherProduct.ID, "gadget", "gadget", otherName, 12) + `]}`},
	})
}

// TestTeam covers docs/particle-api.md#teams, API users included.
func TestTeam(t *testing.T) {
	w := newWorld(t, api.Config{})
	team := func(token string) apitest.Req {
		return apitest.Req{Method: "GET", Path: "/v1/products/widget/team", Token: token}
	}
	invite := func(body map[string]any) apitest.Req {
		return apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w.ownerToken, JSON: body}
	}
	var botName, botToken, inviteToken string
	w.Run(t, []apitest.Scenario{
		{Name: "list", Req: team(w.ownerToken), Status: 200, Want: `{"ok":true,"team":[
			{"_id":"` + w.owner.ID + `","username":"owner@example.com","role":{"id":"owner","name":"Owner"}},
			{"_id":"dev@example.com","username":"dev@example.com","role":{"id":"developer","name":"Developer"}},
			{"_id":"<hex24>","username":"` + w.apiUserName + `","role":{"id":"developer","name":"Developer"},"is_programmatic":true}]}`},
		{Name: "invite", Req: invite(map[string]any{"username": "Other@Example.com"}),
			Status: 200, Want: `{"ok":true,"invited":{"username":"other@example.com","role":{"id":"administrator","name":"Administrator"},
				"pending":true,"expires_at":"<iso>"},"invite_token":"<hex40>"}`,
			Check: func(tb testing.TB, r *apitest.Resp) { inviteToken = r.String(tb, "invite_token") }},
		{Name: "pending invitee is not a member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken},
			Status: 403},
		{Name: "accept", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept", Token: w.otherToken,
			JSON: map[string]any{"token": &inviteToken}}, Status: 200},
		{Name: "invited member manages the product", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken},
			Status: 200},
		{Name: "invite twice", Req: invite(map[string]any{"username": "other@example.com"}),
			Status: 400, Want: `{"ok":false,"error":"User is already a team member"}`},
		{Name: "invite with role", Req: invite(map[string]any{"username": "support@example.com", "role": "support"}),
			Status: 200},
		{Name: "bad role", Req: invite(map[string]any{"username": "x@example.com", "role": "Owner"}),
			Status: 400, Want: `{"ok":false,"error":"role must be Administrator, Developer, Support or View-only"}`},
		{Name: "bad username", Req: invite(map[string]any{"username": "not an email"}),
			Status: 400, Want: `{"ok":false,"error":"username must be an email address"}`},
		{Name: "remove the owner", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/owner@example.com", Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"The product owner cannot be removed from the team"}`},
		{Name: "remove a non-member", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/nobody@example.com", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"User is not a team member"}`},
		{Name: "remove", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/other@example.com", Token: w.ownerToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "removed member is out", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken},
			Status: 403},
		{Name: "API user needs scopes", Req: invite(map[string]any{"friendly_name": "CI Bot"}),
			Status: 400, Want: `{"ok":false,"error":"scopes are required"}`},
		{Name: "API user needs a name", Req: invite(map[string]any{"scopes": []string{"customers:list"}}),
			Status: 400, Want: `{"ok":false,"error":"friendly_name is required"}`},
		{Name: "API user scope syntax", Req: invite(map[string]any{"friendly_name": "x", "scopes": []string{"*:*"}}),
			Status: 400, Want: `{"ok":false,"error":"Invalid scope"}`},
		{Name: "create API user", Req: invite(map[string]any{"friendly_name": "CI Bot",
			"scopes": []string{"customers:list", "teams.users:list"}}),
			Status: 200, Want: `{"ok":true,"created":{"username":"<string>","is_programmatic":true,"tokens":[{"token":"<hex40>"}]}}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				c := r.Map(tb)["created"].(map[string]any)
				botName = c["username"].(string)
				botToken = c["tokens"].([]any)[0].(map[string]any)["token"].(string)
				if !strings.HasPrefix(botName, "ci-bot+") || !strings.HasSuffix(botName, "@"+api.APIUserDomain) {
					tb.Errorf("API user name %q", botName)
				}
			}},
	})
	w.Run(t, []apitest.Scenario{
		{Name: "API user lists customers", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/customers", Token: botToken},
			Status: 200},
		{Name: "API user lists the team", Req: team(botToken), Status: 200},
		{Name: "API user cannot create customers", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/customers", Token: botToken,
			Form: form("email", "z@example.com", "password", "zzzzzzzz")},
			Status: 400, Want: `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`},
		{Name: "API user cannot read its profile", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: botToken},
			Status: 400, Want: `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`},
		{Name: "API user outside its product", Req: apitest.Req{Method: "GET", Path: "/v1/products/gadget/customers", Token: botToken},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "API user sees its token", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: botToken},
			Status: 200, Want: `{"expires_at":null,"client":"api-user","client_id":"api-user","scopes":["customers:list","teams.users:list"],"orgs":[]}`},
		{Name: "team shows the API user", Req: team(w.ownerToken), Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
			found := false
			for _, m := range r.Map(tb)["team"].([]any) {
				mm := m.(map[string]any)
				if mm["username"] == botName && mm["is_programmatic"] == true {
					found = true
				}
			}
			if !found {
				tb.Errorf("API user %s not listed: %s", botName, r.Body)
			}
		}},
		{Name: "remove the API user", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/" + botName, Token: w.ownerToken},
			Status: 200},
		{Name: "its token died with it", Req: team(botToken), Status: 401},
	})
}

// TestAPIUserCannotEscalate checks that an API user allowed to invite
// cannot grant scopes it lacks.
func TestAPIUserCannotEscalate(t *testing.T) {
	w := newWorld(t, api.Config{})
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w.ownerToken,
		JSON: map[string]any{"friendly_name": "Inviter", "scopes": "teams.users:invite customers:list"}})
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	inviter := r.Map(t)["created"].(map[string]any)["tokens"].([]any)[0].(map[string]any)["token"].(string)
	w.Run(t, []apitest.Scenario{
		{Name: "grant a held scope", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: inviter,
			JSON: map[string]any{"friendly_name": "Reader", "scopes": []string{"customers:list"}}}, Status: 200},
		{Name: "grant a scope it lacks", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: inviter,
			JSON: map[string]any{"friendly_name": "Admin", "scopes": []string{"customers:list", "clients:create"}}},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
		{Name: "invite a human (invite scope held)", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: inviter,
			JSON: map[string]any{"username": "human@example.com"}}, Status: 200},
	})
}
