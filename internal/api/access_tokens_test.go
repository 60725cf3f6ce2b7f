package api_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
)

// TestAccessTokens covers docs/particle-api.md#managing-access-tokens.
func TestAccessTokens(t *testing.T) {
	w := newWorld(t, api.Config{})
	session := w.login(ownerName, ownerPass, "user", "client_secret_here")
	if session.Status != 200 {
		t.Fatal(session.Status)
	}
	// A never-expiring token, as "particle token create --never-expires" makes.
	r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: url.Values{"grant_type": {"password"},
		"username": {ownerName}, "password": {ownerPass}, "client_id": {"user"}, "client_secret": {"x"}, "expires_in": {"0"}}})
	neverToken := r.String(t, "access_token")
	otherCount := len(w.Do(apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: otherName, BasicPass: otherPass}).Body)

	w.Run(t, []apitest.Scenario{
		{Name: "list needs Basic", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens", Token: w.ownerToken},
			Status: 401, Want: `{"ok":false,"errors":["Username and password are required"]}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if r.Header.Get("WWW-Authenticate") == "" {
					tb.Error("no WWW-Authenticate")
				}
			}},
		{Name: "list with bad password", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: ownerName, BasicPass: "nope"},
			Status: 401, Want: `{"ok":false,"errors":["Bad password"]}`},
		{Name: "list", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: ownerName, BasicPass: ownerPass},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				// owner, victim, the session and the never-expiring one; not
				// the expired or revoked tokens. Equal creation times leave
				// the order open, so compare by token.
				var list []map[string]any
				if err := json.Unmarshal(r.Body, &list); err != nil {
					tb.Fatal(err)
				}
				got := map[string]string{}
				for _, e := range list {
					b, _ := json.Marshal(e)
					got[e["token"].(string)] = string(b)
				}
				want := map[string]string{
					auth.HashToken(w.ownerToken)[:12]:                       `{"token":"<string>","expires_at":"<iso>","client":"apitest"}`,
					auth.HashToken(w.victimToken)[:12]:                      `{"token":"<string>","expires_at":"<iso>","client":"apitest"}`,
					auth.HashToken(session.String(tb, "access_token"))[:12]: `{"token":"<string>","expires_at":"<iso>","client":"user"}`,
					auth.HashToken(neverToken)[:12]:                         `{"token":"<string>","expires_at":null,"client":"user"}`,
				}
				if len(got) != len(want) {
					tb.Errorf("got %d tokens, want %d: %s", len(got), len(want), r.Body)
				}
				for k, v := range want {
					apitest.MatchJSON(tb, []byte(got[k]), v)
				}
			}},
		{Name: "current", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: w.ownerToken},
			Status: 200, Want: `{"expires_at":"<iso>","client":"apitest","client_id":"apitest","scopes":[],"orgs":[]}`},
		{Name: "current never expires", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: neverToken},
			Status: 200, Want: `{"expires_at":null,"client":"user","client_id":"user","scopes":[],"orgs":[]}`},
		{Name: "current API user", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: w.apiUserToken},
			Status: 200, Want: `{"expires_at":null,"client":"api-user","client_id":"api-user",
				"scopes":["customers:list","products:get","clients:list"],"orgs":[]}`},
		{Name: "revoke with wrong Basic credentials", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/" + w.victimToken,
			BasicUser: ownerName, BasicPass: "nope"}, Status: 401, Want: `{"ok":false,"errors":["Bad password"]}`},
		{Name: "victim survives a bad Basic revoke", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.victimToken}, Status: 200},
		{Name: "revoke by value without credentials", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/" + w.victimToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "victim is dead", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.victimToken}, Status: 401},
		{Name: "revoke again", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/" + w.victimToken},
			Status: 404, Want: `{"ok":false,"error":"Token not found"}`},
		{Name: "revoke garbage", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/not-a-token"},
			Status: 404, Want: `{"ok":false,"error":"Token not found"}`},
		{Name: "revoke with CLI-legacy Bearer null", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/" + neverToken,
			Token: "null"}, Status: 200},
		{Name: "logout", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/current", Token: session.String(t, "access_token")},
			Status: 200, Want: `{"ok":true}`},
		{Name: "logged out", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: session.String(t, "access_token")},
			Status: 401},
		{Name: "revoke all", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens", Token: w.ownerToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "caller revoked too", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}, Status: 401},
		{Name: "owner has none left", Req: apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: ownerName, BasicPass: ownerPass},
			Status: 200, Want: `[]`},
		{Name: "other user untouched", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.otherToken}, Status: 200},
		{Name: "customer revokes its own", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens", Token: w.customerToken},
			Status: 200},
		{Name: "customer revoked", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.customerToken}, Status: 401},
		{Name: "other customer untouched", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.otherCustToken}, Status: 200},
	})
	if n := len(w.Do(apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: otherName, BasicPass: otherPass}).Body); n != otherCount {
		t.Errorf("other user's token list changed")
	}
	// A product token's current view.
	r = w.Do(apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: w.productToken})
	apitest.MatchJSON(t, r.Body, `{"expires_at":"<iso>","client":"`+w.fullClient+`","client_id":"`+w.fullClient+`","scopes":[],"orgs":[]}`)
}
