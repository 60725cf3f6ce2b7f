package api_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// TestTokenEndpoint covers POST /oauth/token
// (docs/particle-api.md#the-token-endpoint).
func TestTokenEndpoint(t *testing.T) {
	w := newWorld(t, api.Config{})
	noStore := func(tb testing.TB, r *apitest.Resp) {
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
			tb.Errorf("cache headers: %v", r.Header)
		}
	}
	tok := func(f url.Values) apitest.Req { return apitest.Req{Method: "POST", Path: "/oauth/token", Form: f} }
	login := func(extra ...string) url.Values {
		return form(append([]string{"grant_type", "password", "username", ownerName, "password", ownerPass,
			"client_id", "particle", "client_secret", "particle"}, extra...)...)
	}
	future := apitest.Epoch.Add(2*time.Hour + 90*time.Minute).Format(time.RFC3339)
	w.Run(t, []apitest.Scenario{
		{Name: "password grant", Req: tok(login()), Status: 200, Check: noStore,
			Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":7776000,"refresh_token":"<hex40>"}`},
		{Name: "username is case-insensitive", Req: tok(form("grant_type", "password", "username", "Owner@Example.COM",
			"password", ownerPass, "client_id", "CLI2", "client_secret", "client_secret_here")), Status: 200},
		{Name: "Bearer header ignored", Req: apitest.Req{Method: "POST", Path: "/oauth/token", Form: login(),
			Header: http.Header{"Authorization": {"Bearer undefined"}}}, Status: 200},
		{Name: "JSON body", Req: apitest.Req{Method: "POST", Path: "/oauth/token", JSON: map[string]any{
			"grant_type": "password", "username": ownerName, "password": ownerPass,
			"client_id": "particle-api", "client_secret": "particle-api", "expires_in": 3600}},
			Status: 200, Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":3600,"refresh_token":"<hex40>"}`},
		{Name: "never expires", Req: tok(login("expires_in", "0")), Status: 200,
			Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":0}`},
		{Name: "expires_at", Req: tok(login("expires_at", future)), Status: 200,
			Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":5400,"refresh_token":"<hex40>"}`},
		{Name: "bad expires_in", Req: tok(login("expires_in", "soon")), Status: 400,
			Want: `{"error":"invalid_request","error_description":"Invalid \"expires_in\" parameter"}`},
		{Name: "negative expires_in", Req: tok(login("expires_in", "-5")), Status: 400,
			Want: `{"error":"invalid_request","error_description":"Invalid \"expires_in\" parameter"}`},
		{Name: "bad expires_at", Req: tok(login("expires_at", "tomorrow")), Status: 400,
			Want: `{"error":"invalid_request","error_description":"Invalid \"expires_at\" parameter"}`},
		{Name: "bad password", Req: tok(form("grant_type", "password", "username", ownerName, "password", "nope",
			"client_id", "particle", "client_secret", "particle")), Status: 400,
			Want: `{"error":"invalid_grant","error_description":"User credentials are invalid"}`},
		{Name: "missing password", Req: tok(form("grant_type", "password", "username", ownerName,
			"client_id", "particle", "client_secret", "particle")), Status: 400,
			Want: `{"error":"invalid_client","error_description":"Missing parameters. \"username\" and \"password\" are required"}`},
		{Name: "unknown grant", Req: tok(form("grant_type", "implicit", "client_id", "particle", "client_secret", "particle")),
			Status: 400, Want: `{"error":"invalid_request","error_description":"Invalid or missing grant_type parameter"}`},
		{Name: "missing client", Req: tok(form("grant_type", "password", "username", ownerName, "password", ownerPass)),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Invalid or missing client_id parameter"}`},
		{Name: "missing secret", Req: tok(form("grant_type", "password", "username", ownerName, "password", ownerPass,
			"client_id", "particle")),
			Status: 400, Want: `{"error":"invalid_client","error_description":"Missing client_secret parameter"}`},
		{Name: "user client credentials in Basic", Req: apitest.Req{Method: "POST", Path: "/oauth/token",
			Form: form("grant_type", "client_credentials"), BasicUser: w.userClient, BasicPass: w.userSecret},
			Status: 200, Want: `{"token_type":"bearer","access_token":"<hex40>","expires_in":7776000,"refresh_token":"<hex40>"}`},
		{Name: "wrong client secret", Req: apitest.Req{Method: "POST", Path: "/oauth/token",
			Form: form("grant_type", "client_credentials"), BasicUser: w.userClient, BasicPass: "wrong"},
			Status: 400, Want: `{"error":"invalid_client","error_description":"Client credentials are invalid"}`},
		{Name: "product token", Req: tok(form("grant_type", "client_credentials", "client_id", w.fullClient, "client_secret", w.fullSecret)),
			Status: 200},
		{Name: "customers:create client cannot mint", Req: tok(form("grant_type", "client_credentials",
			"client_id", w.createClient, "client_secret", w.createSecret)), Status: 400,
			Want: `{"error":"invalid_scope","error_description":"The client is not allowed to request this scope"}`},
		{Name: "customer login through the product client", Req: tok(form("grant_type", "password", "username", customerEmail,
			"password", customerPass, "client_id", w.createClient, "client_secret", w.createSecret)), Status: 200},
		{Name: "customer token for another product's customer", Req: tok(form("grant_type", "client_credentials",
			"scope", "customer=nobody@example.com", "client_id", w.fullClient, "client_secret", w.fullSecret)), Status: 400,
			Want: `{"error":"invalid_grant","error_description":"Customer not found"}`},
	})

	// The user-client token acts for the owner.
	r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "client_credentials"),
		BasicUser: w.userClient, BasicPass: w.userSecret})
	me := w.Do(apitest.Req{Method: "GET", Path: "/v1/user/identify", Token: r.String(t, "access_token")})
	apitest.MatchJSON(t, me.Body, `{"id":"`+w.owner.ID+`","email":"owner@example.com"}`)

	// Refresh: a new pair; the old refresh token is spent.
	r = w.Do(tok(login()))
	refresh := r.String(t, "refresh_token")
	r2 := w.Do(tok(form("grant_type", "refresh_token", "refresh_token", refresh, "client_id", "particle", "client_secret", "particle")))
	if r2.Status != 200 || r2.String(t, "access_token") == r.String(t, "access_token") {
		t.Fatalf("refresh: %d %s", r2.Status, r2.Body)
	}
	r3 := w.Do(tok(form("grant_type", "refresh_token", "refresh_token", refresh, "client_id", "particle", "client_secret", "particle")))
	apitest.MatchJSON(t, r3.Body, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`)
}

// enableMFA enrols the owner in MFA through the API and returns the TOTP
// secret and the recovery codes.
func enableMFA(t *testing.T, w *world, token string) (secret string, codes []any) {
	t.Helper()
	r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user/mfa-enable", Token: token})
	apitest.MatchJSON(t, r.Body, `{"mfa_token":"<hex40>","qr_url":"<string>","secret":"<string>"}`)
	en := r.Map(t)
	secret = en["secret"].(string)
	bad := w.Do(apitest.Req{Method: "POST", Path: "/v1/user/mfa-enable", Token: token,
		JSON: map[string]any{"mfa_token": en["mfa_token"], "otp": "000000"}})
	if bad.Status != 400 {
		t.Fatalf("wrong otp: %d %s", bad.Status, bad.Body)
	}
	code, err := totp.GenerateCode(secret, w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = w.Do(apitest.Req{Method: "POST", Path: "/v1/user/mfa-enable", Token: token,
		JSON: map[string]any{"mfa_token": en["mfa_token"], "otp": code, "invalidate_tokens": true}})
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	m := r.Map(t)
	if m["enrolled"] != true {
		t.Fatalf("confirm: %s", r.Body)
	}
	codes, _ = m["tokens"].([]any)
	if len(codes) == 0 {
		t.Fatalf("no recovery codes: %s", r.Body)
	}
	return secret, codes
}

// TestMFA covers enrolment (docs/particle-api.md#mfa-enrolment), the
// mfa_required login and the OTP grant, Basic+otp listing, and disabling.
func TestMFA(t *testing.T) {
	w := newWorld(t, api.Config{})
	secret, _ := enableMFA(t, w, w.ownerToken)

	// invalidate_tokens kept the caller's token and revoked the others.
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}); r.Status != 200 ||
		r.Map(t)["mfa"].(map[string]any)["enabled"] != true {
		t.Fatalf("user after enrolment: %d %s", r.Status, r.Body)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: w.victimToken}); r.Status != 401 {
		t.Errorf("other token survived invalidate_tokens: %d", r.Status)
	}

	r := w.login(ownerName, ownerPass, "particle", "particle")
	if r.Status != 403 {
		t.Fatalf("login with MFA: %d %s", r.Status, r.Body)
	}
	apitest.MatchJSON(t, r.Body, `{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"<hex40>"}`)
	mfaToken := r.String(t, "mfa_token")
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "urn:custom:mfa-otp",
		"mfa_token", mfaToken, "client_id", "particle", "client_secret", "particle")})
	apitest.MatchJSON(t, r.Body, `{"error":"invalid_request","error_description":"You must provide otp and mfa token."}`)
	// The enrolment code was spent: it does not log in again.
	code, _ := totp.GenerateCode(secret, w.Clock.Now())
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "urn:custom:mfa-otp",
		"mfa_token", mfaToken, "otp", code, "client_id", "particle", "client_secret", "particle")})
	apitest.MatchJSON(t, r.Body, `{"error":"invalid_grant","error_description":"Invalid OTP code"}`)
	w.Clock.Advance(time.Minute)
	code, _ = totp.GenerateCode(secret, w.Clock.Now())
	r = w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: form("grant_type", "urn:custom:mfa-otp",
		"mfa_token", mfaToken, "otp", code, "client_id", "particle", "client_secret", "particle")})
	if r.Status != 200 {
		t.Fatalf("otp grant: %d %s", r.Status, r.Body)
	}

	// Basic listing needs the otp.
	list := apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: ownerName, BasicPass: ownerPass}
	if r := w.Do(list); r.Status != 403 {
		t.Errorf("list without otp: %d %s", r.Status, r.Body)
	}
	list.Path = "/v1/access_tokens?otp=000000"
	if r := w.Do(list); r.Status != 401 {
		t.Errorf("list with wrong otp: %d %s", r.Status, r.Body)
	}
	list.Path = "/v1/access_tokens?otp=" + code
	if r := w.Do(list); r.Status != 401 {
		t.Errorf("list with the otp the grant spent: %d %s", r.Status, r.Body)
	}
	w.Clock.Advance(time.Minute)
	code, _ = totp.GenerateCode(secret, w.Clock.Now())
	list.Path = "/v1/access_tokens?otp=" + code
	if r := w.Do(list); r.Status != 200 {
		t.Errorf("list with otp: %d %s", r.Status, r.Body)
	}
	if r := w.Do(list); r.Status != 401 {
		t.Errorf("list with the same otp again (replay): %d %s", r.Status, r.Body)
	}

	w.Run(t, []apitest.Scenario{
		{Name: "enable twice", Req: apitest.Req{Method: "GET", Path: "/v1/user/mfa-enable", Token: w.ownerToken},
			Status: 400, Want: `{"error":"invalid_request","error_description":"Multifactor authentication is already enabled"}`},
		{Name: "disable needs password", Req: apitest.Req{Method: "PUT", Path: "/v1/user/mfa-disable", Token: w.ownerToken,
			JSON: map[string]any{}}, Status: 400, Want: `{"ok":false,"error":"current_password is required"}`},
		{Name: "disable with wrong password", Req: apitest.Req{Method: "PUT", Path: "/v1/user/mfa-disable", Token: w.ownerToken,
			JSON: map[string]any{"current_password": "nope"}}, Status: 400,
			Want: `{"error":"invalid_grant","error_description":"User credentials are invalid"}`},
		{Name: "disable", Req: apitest.Req{Method: "PUT", Path: "/v1/user/mfa-disable", Token: w.ownerToken,
			JSON: map[string]any{"current_password": ownerPass}}, Status: 200, Want: `{"ok":true}`},
		{Name: "disable again", Req: apitest.Req{Method: "PUT", Path: "/v1/user/mfa-disable", Token: w.ownerToken,
			JSON: map[string]any{"current_password": ownerPass}}, Status: 400,
			Want: `{"ok":false,"error":"Multifactor authentication is not enabled"}`},
	})
	if r := w.login(ownerName, ownerPass, "particle", "particle"); r.Status != 200 {
		t.Errorf("login after disabling MFA: %d %s", r.Status, r.Body)
	}
}
