package api_test

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/mail"
	"github.com/wick-cloud/wick/internal/mail/mailtest"
	"github.com/wick-cloud/wick/internal/testproc"
)

// userObject is the expected GET /v1/user body of an account without
// profile or MFA.
func userObject(username string, noPassword bool) string {
	np := "false"
	if noPassword {
		np = "true"
	}
	return `{"username":"` + username + `","subscription_ids":[],
		"account_info":{"first_name":"","last_name":"","business_account":false},
		"mfa":{"enabled":false},"wifi_device_count":0,"cellular_device_count":0,"tos":0,
		"memberships":[],"scim_provisioned":false,"no_password":` + np + `}`
}

// TestSignup covers POST /v1/users with sign-up open.
func TestSignup(t *testing.T) {
	w := newWorld(t, api.Config{Signup: true})
	signup := func(f url.Values) apitest.Req { return apitest.Req{Method: "POST", Path: "/v1/users", Form: f} }
	w.Run(t, []apitest.Scenario{
		{Name: "JSON with account info", Req: apitest.Req{Method: "POST", Path: "/v1/users", JSON: map[string]any{
			"username": " Ada@Example.com ", "password": "analytical", "account_info": map[string]any{"first_name": "Ada"},
			"utm": map[string]any{"source": "x"}}},
			Status: 200, Want: `{"ok":true}`},
		{Name: "form with brackets", Req: signup(form("username", "grace@example.com", "password", "compiler!",
			"account_info[last_name]", "Hopper", "account_info[business_account]", "true")), Status: 200, Want: `{"ok":true}`},
		{Name: "duplicate, any case", Req: signup(form("username", "ADA@example.com", "password", "whatever1")),
			Status: 400, Want: `{"ok":false,"errors":["user with the username already exists"]}`},
		{Name: "missing password", Req: signup(form("username", "x@example.com")),
			Status: 400, Want: `{"ok":false,"errors":["username and password required"]}`},
		{Name: "missing everything", Req: apitest.Req{Method: "POST", Path: "/v1/users"},
			Status: 400, Want: `{"ok":false,"errors":["username and password required"]}`},
		{Name: "not an e-mail", Req: signup(form("username", "ada", "password", "analytical")),
			Status: 400, Want: `{"ok":false,"errors":["username must be an email address"]}`},
		{Name: "display name is not an address", Req: signup(form("username", "Ada <ada2@example.com>", "password", "analytical")),
			Status: 400, Want: `{"ok":false,"errors":["username must be an email address"]}`},
		{Name: "short password", Req: signup(form("username", "bob@example.com", "password", "short")),
			Status: 400, Want: `{"ok":false,"errors":["password must be at least 8 characters"]}`},
	})
	r := w.login("ada@example.com", "analytical", "particle", "particle")
	if r.Status != 200 {
		t.Fatalf("login after sign-up: %d %s", r.Status, r.Body)
	}
	r = w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: r.String(t, "access_token")})
	apitest.MatchJSON(t, r.Body, strings.Replace(userObject("ada@example.com", false), `"first_name":""`, `"first_name":"Ada"`, 1))
	r = w.login("grace@example.com", "compiler!", "particle", "particle")
	r = w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: r.String(t, "access_token")})
	apitest.MatchJSON(t, r.Body, strings.Replace(userObject("grace@example.com", false),
		`"last_name":"","business_account":false`, `"last_name":"Hopper","business_account":true`, 1))
}

// TestUser covers GET/PUT/DELETE /v1/user and the small user routes.
func TestUser(t *testing.T) {
	w := newWorld(t, api.Config{})
	shadow := w.CreateCustomer(w.product.ID, "shadow-1", "")
	shadowToken := w.Issue(issueCustomer(w, shadow.ID))
	put := func(token string, body map[string]any) apitest.Req {
		return apitest.Req{Method: "PUT", Path: "/v1/user", Token: token, JSON: body}
	}
	w.Run(t, []apitest.Scenario{
		{Name: "get", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken},
			Status: 200, Want: userObject(ownerName, false)},
		{Name: "customer view", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.customerToken},
			Status: 200, Want: userObject(customerEmail, false)},
		{Name: "shadow customer view", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: shadowToken},
			Status: 200, Want: userObject("shadow-1", true)},
		{Name: "identify", Req: apitest.Req{Method: "GET", Path: "/v1/user/identify?tracking=1", Token: w.ownerToken},
			Status: 200, Want: `{"id":"` + w.owner.ID + `","email":"owner@example.com"}`},
		{Name: "orgs", Req: apitest.Req{Method: "GET", Path: "/v1/orgs", Token: w.ownerToken},
			Status: 200, Want: `{"organizations":[]}`},
		{Name: "org products", Req: apitest.Req{Method: "GET", Path: "/v1/orgs/acme/products", Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Organization not found"}`},
		{Name: "verify", Req: apitest.Req{Method: "POST", Path: "/v1/user/verify", JSON: map[string]any{"token": "t"}},
			Status: 200, Want: `{"ok":true}`},
		{Name: "verify without token", Req: apitest.Req{Method: "POST", Path: "/v1/user/verify"},
			Status: 400, Want: `{"ok":false,"error":"token is required"}`},
		{Name: "nothing to do", Req: put(w.ownerToken, map[string]any{"foo": 1}),
			Status: 400, Want: `{"ok":false,"error":"Nothing to do?"}`},
		{Name: "account info", Req: put(w.ownerToken, map[string]any{"account_info": map[string]any{
			"first_name": "Ada", "company_name": "Engines", "business_account": "1"}}),
			Status: 200, Want: `{"ok":true,"message":"User's account info updated."}`},
		{Name: "account info shown", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				apitest.MatchJSON(tb, mustJSON(r.Map(tb)["account_info"]),
					`{"first_name":"Ada","last_name":"","company_name":"Engines","business_account":true}`)
			}},
		{Name: "rename without password", Req: put(w.ownerToken, map[string]any{"username": "ada@example.com"}),
			Status: 400, Want: `{"ok":false,"error":"current_password is required"}`},
		{Name: "rename with wrong password", Req: put(w.ownerToken, map[string]any{"username": "ada@example.com", "current_password": "x"}),
			Status: 400, Want: `{"ok":false,"error":"Current password is incorrect"}`},
		{Name: "rename to a taken name", Req: put(w.ownerToken, map[string]any{"username": otherName, "current_password": ownerPass}),
			Status: 400, Want: `{"ok":false,"error":"user with the username already exists"}`},
		{Name: "rename to a non-address", Req: put(w.ownerToken, map[string]any{"username": "ada", "current_password": ownerPass}),
			Status: 400, Want: `{"ok":false,"error":"username must be an email address"}`},
		{Name: "rename", Req: put(w.ownerToken, map[string]any{"username": "Ada@Example.com", "current_password": ownerPass}),
			Status: 200, Want: `{"ok":true,"message":"User's username updated."}`},
		{Name: "still on the team after renaming", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if got := r.Map(tb)["product"].(map[string]any)["user"]; got != "ada@example.com" {
					tb.Errorf("product user = %v", got)
				}
			}},
		{Name: "short new password", Req: put(w.ownerToken, map[string]any{"password": "short", "current_password": ownerPass}),
			Status: 400, Want: `{"ok":false,"error":"password must be at least 8 characters"}`},
		{Name: "new password, invalidating other tokens", Req: put(w.ownerToken, map[string]any{
			"password": "brand-new-pass", "current_password": ownerPass, "invalidate_tokens": true}),
			Status: 200, Want: `{"ok":true,"message":"User's password updated."}`},
		{Name: "caller's token kept", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}, Status: 200},
		{Name: "other token revoked", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.victimToken}, Status: 401},
		{Name: "delete needs password", Req: apitest.Req{Method: "DELETE", Path: "/v1/user", Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"password is required"}`},
		{Name: "delete with old password", Req: apitest.Req{Method: "DELETE", Path: "/v1/user", Token: w.ownerToken,
			JSON: map[string]any{"password": ownerPass}},
			Status: 400, Want: `{"ok":false,"error":"Password is incorrect"}`},
		{Name: "delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/user", Token: w.ownerToken,
			JSON: map[string]any{"password": "brand-new-pass"}},
			Status: 200, Want: `{"ok":true,"message":"User's account has been deleted."}`},
		{Name: "token gone with the account", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}, Status: 401},
	})
	if r := w.login("ada@example.com", "brand-new-pass", "particle", "particle"); r.Status != 400 {
		t.Errorf("login after deletion: %d", r.Status)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// syncBuffer is a buffer safe for concurrent writes.
type syncBuffer = testproc.Log

// TestPasswordReset covers POST and PUT /v1/user/password-reset: the
// token reaches the account's mailbox (an SMTP server on 127.0.0.1), and
// never the log, at any level.
func TestPasswordReset(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	relay := mailtest.New(t, mailtest.Options{})
	sender, err := mail.New(mail.Config{Addr: relay.Addr(), From: "wick@example.com", TLS: mail.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldOpts(t, apitest.Options{Log: log, Mail: sender})
	resetToken := func() string {
		msgs := relay.Wait(t, 1, 10*time.Second)
		m := msgs[len(msgs)-1]
		if m.To != ownerName || m.Header.Get("Subject") != "Reset your password" {
			t.Fatalf("mail to %q: %v", m.To, m.Header)
		}
		return regexp.MustCompile(`token=([0-9a-f]{40})`).FindStringSubmatch(m.Body)[1]
	}
	w.Run(t, []apitest.Scenario{
		{Name: "unknown user looks the same", Req: apitest.Req{Method: "POST", Path: "/v1/user/password-reset",
			JSON: map[string]any{"username": "nobody@example.com"}},
			Status: 200, Want: `{"ok":true,"message":"Password reset email sent."}`},
		{Name: "missing username", Req: apitest.Req{Method: "POST", Path: "/v1/user/password-reset"},
			Status: 400, Want: `{"ok":false,"error":"username is required"}`},
		{Name: "request", Req: apitest.Req{Method: "POST", Path: "/v1/user/password-reset",
			Form: form("username", "OWNER@example.com")},
			Status: 200, Want: `{"ok":true,"message":"Password reset email sent."}`},
	})
	tok := resetToken()
	if len(tok) != 40 {
		t.Fatalf("no reset token in the log:\n%s", logs.String())
	}
	w.Run(t, []apitest.Scenario{
		{Name: "wrong token", Req: apitest.Req{Method: "PUT", Path: "/v1/user/password-reset",
			JSON: map[string]any{"token": strings.Repeat("0", 40), "password": "reset-password"}},
			Status: 400, Want: `{"error":"invalid_grant","error_description":"Password reset token is invalid or has expired"}`},
		{Name: "short password", Req: apitest.Req{Method: "PUT", Path: "/v1/user/password-reset",
			JSON: map[string]any{"token": tok, "password": "short"}},
			Status: 400, Want: `{"ok":false,"error":"password must be at least 8 characters"}`},
		{Name: "missing fields", Req: apitest.Req{Method: "PUT", Path: "/v1/user/password-reset"},
			Status: 400, Want: `{"ok":false,"error":"token and password are required"}`},
		{Name: "reset", Req: apitest.Req{Method: "PUT", Path: "/v1/user/password-reset",
			JSON: map[string]any{"token": tok, "password": "reset-password"}},
			Status: 200, Want: `{"ok":true}`},
		{Name: "single use", Req: apitest.Req{Method: "PUT", Path: "/v1/user/password-reset",
			JSON: map[string]any{"token": tok, "password": "reset-password-2"}},
			Status: 400},
		{Name: "old tokens revoked", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}, Status: 401},
	})
	if r := w.login(ownerName, "reset-password", "particle", "particle"); r.Status != 200 {
		t.Errorf("login with the new password: %d %s", r.Status, r.Body)
	}
	if n := len(relay.Messages()); n != 1 {
		t.Errorf("%d e-mails; want 1 (none for the unknown address)", n)
	}
	if strings.Contains(logs.String(), tok) {
		t.Errorf("the reset token is in the log:\n%s", logs.String())
	}
}
