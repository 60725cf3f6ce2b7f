package api_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/auth"
)

// apiCall sends method path with token and decodes the JSON answer into out
// (when not nil); it returns the status.
func (w *signInWorld) apiCall(t *testing.T, method, path, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// grantList is the answer of GET /v1/user/grants.
type grantList []struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	Product    string `json:"product"`
	Scopes     []struct {
		Scope       string `json:"scope"`
		Description string `json:"description"`
	} `json:"scopes"`
}

// TestAuthorizeRememberedConsent: the first sign-in asks, the second (in a
// fresh browser) goes straight back to the client after the password;
// prompt=consent asks again; a request for more scope asks again; revoking
// the grant in the account revokes the tokens and brings the page back.
func TestAuthorizeRememberedConsent(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	exchange := func(code, verifier string) string {
		t.Helper()
		st, tok := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", verifier, "client_id", szWebClient)
		if st != 200 {
			t.Fatalf("exchange: %d %v", st, tok)
		}
		return tok["access_token"].(string)
	}
	login := func(q url.Values) *page {
		t.Helper()
		b := w.browser(t)
		p := b.get(q)
		wantStep(t, p, "login")
		return b.submit(p, "username", szUser, "password", szPass)
	}

	v1, c1 := pkce(t)
	p := login(authorizeQuery(szWebClient, szWebRedir, c1))
	wantStep(t, p, "consent")
	first := exchange(codeFrom(t, p.by.submit(p, "action", "allow"), http.StatusSeeOther, szWebRedir), v1)

	// Second sign-in: no consent page.
	v2, c2 := pkce(t)
	p = login(authorizeQuery(szWebClient, szWebRedir, c2))
	second := exchange(codeFrom(t, p, http.StatusSeeOther, szWebRedir), v2)
	if st, name := w.whoami(t, second); st != 200 || name != szUser {
		t.Fatalf("token of the remembered sign-in: %d %q", st, name)
	}

	// prompt=consent asks again.
	_, c3 := pkce(t)
	q := authorizeQuery(szWebClient, szWebRedir, c3)
	q.Set("prompt", "consent")
	wantStep(t, login(q), "consent")

	// The account lists the grant in plain words.
	var list grantList
	if st := w.apiCall(t, "GET", "/v1/user/grants", first, &list); st != 200 || len(list) != 1 ||
		list[0].ClientID != szWebClient || list[0].ClientName != "Lamp App" || len(list[0].Scopes) != 1 ||
		list[0].Scopes[0].Scope != auth.ScopeFull || list[0].Scopes[0].Description == "" {
		t.Fatalf("GET /v1/user/grants = %d %+v", st, list)
	}
	// Another user sees none of it and cannot delete it.
	other := w.env.CreateUser("other@example.com", "other-password-1")
	otherTok := w.env.Issue(auth.Issue{Kind: "user", UserID: other.ID, ClientID: "particle"})
	var none grantList
	if st := w.apiCall(t, "GET", "/v1/user/grants", otherTok, &none); st != 200 || len(none) != 0 {
		t.Errorf("another user's grants = %d %+v, want none", st, none)
	}
	if st := w.apiCall(t, "DELETE", "/v1/user/grants/"+szWebClient, otherTok, nil); st != http.StatusNotFound {
		t.Errorf("another user's DELETE = %d, want 404", st)
	}

	// Revoking: both tokens of the client die, the grant is gone, and the
	// next sign-in asks again.
	cli := w.env.Issue(auth.Issue{Kind: "user", UserID: w.user.ID, ClientID: "particle"})
	if st := w.apiCall(t, "DELETE", "/v1/user/grants/"+szWebClient, cli, nil); st != 200 {
		t.Fatalf("DELETE /v1/user/grants = %d", st)
	}
	for _, tok := range []string{first, second} {
		if st, _ := w.whoami(t, tok); st != http.StatusUnauthorized {
			t.Errorf("token of the revoked client: GET /v1/user = %d, want 401", st)
		}
	}
	if st, _ := w.whoami(t, cli); st != 200 {
		t.Errorf("the CLI token was revoked too: %d", st)
	}
	if st := w.apiCall(t, "DELETE", "/v1/user/grants/"+szWebClient, cli, nil); st != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", st)
	}
	_, c4 := pkce(t)
	wantStep(t, login(authorizeQuery(szWebClient, szWebRedir, c4)), "consent")
}

// TestAuthorizeScopes: narrow scopes are listed in plain words with boxes
// to untick; the token carries exactly what was kept; a later request for
// a scope not granted asks again, one within the grant does not.
func TestAuthorizeScopes(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	b := w.browser(t)
	v, c := pkce(t)
	q := authorizeQuery(szWebClient, szWebRedir, c)
	q.Set("scope", "products:list devices:list devices.function:call")
	p := b.get(q)
	wantStep(t, p, "login")
	p = b.submit(p, "username", szUser, "password", szPass)
	wantStep(t, p, "consent")
	for _, want := range []string{
		`name="grant_scope" value="devices:list" checked`,
		`name="grant_scope" value="devices.function:call" checked`,
		html.EscapeString(auth.ScopeWords("devices.function:call", "user")),
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	// Keep two of three.
	f := url.Values{}
	for k, vals := range p.fields {
		f[k] = vals
	}
	f.Set("action", "allow")
	f["grant_scope"] = []string{"devices:list", "products:list"}
	code := codeFrom(t, b.post(f), http.StatusSeeOther, szWebRedir)
	st, tok := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", v, "client_id", szWebClient)
	if st != 200 || tok["scope"] != "devices:list products:list" {
		t.Fatalf("exchange: %d %v; want scope \"devices:list products:list\"", st, tok)
	}
	access := tok["access_token"].(string)
	// The token is an API user's: product routes of its scopes only.
	if st := w.apiCall(t, "GET", "/v1/products", access, nil); st != 200 {
		t.Errorf("GET /v1/products with products:list = %d", st)
	}
	// Refused as for any API user without the scope (Particle answers 400).
	if st := w.apiCall(t, "GET", "/v1/clients", access, nil); st != http.StatusBadRequest {
		t.Errorf("GET /v1/clients without clients:list = %d, want 400", st)
	}
	var list grantList
	w.apiCall(t, "GET", "/v1/user/grants", w.env.Issue(auth.Issue{Kind: "user", UserID: w.user.ID, ClientID: "particle"}), &list)
	var got []string
	for _, g := range list {
		for _, sc := range g.Scopes {
			got = append(got, sc.Scope)
		}
	}
	if !slices.Equal(got, []string{"devices:list", "products:list"}) {
		t.Errorf("remembered scopes = %v", got)
	}

	// Within the grant: no page. Beyond it: the page again.
	for _, tt := range []struct {
		scope   string
		consent bool
	}{
		{"devices:list", false},
		{"products:list devices:list", false},
		{"devices.function:call", true},
		{"", true}, // full access
	} {
		b := w.browser(t)
		_, c := pkce(t)
		q := authorizeQuery(szWebClient, szWebRedir, c)
		if tt.scope != "" {
			q.Set("scope", tt.scope)
		}
		p := b.get(q)
		p = b.submit(p, "username", szUser, "password", szPass)
		if tt.consent {
			wantStep(t, p, "consent")
		} else {
			codeFrom(t, p, http.StatusSeeOther, szWebRedir)
		}
	}

	// Unticking everything is a denial.
	b = w.browser(t)
	_, c = pkce(t)
	q = authorizeQuery(szWebClient, szWebRedir, c)
	q.Set("scope", "customers:list teams.users:list")
	p = b.get(q)
	p = b.submit(p, "username", szUser, "password", szPass)
	wantStep(t, p, "consent")
	p = b.submit(p, "action", "allow")
	if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || !strings.Contains(loc, "error=access_denied") {
		t.Errorf("nothing ticked: %d %s, want access_denied", p.status, loc)
	}
}

// TestAuthServerMetadata checks RFC 8414's document: the issuer is the
// server's base URL (the iss of the redirects) and the endpoints hang off it.
func TestAuthServerMetadata(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	resp, err := http.Get(w.srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Issuer        string   `json:"issuer"`
		Authorization string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		Revocation    *string  `json:"revocation_endpoint"`
		ResponseTypes []string `json:"response_types_supported"`
		GrantTypes    []string `json:"grant_types_supported"`
		Challenge     []string `json:"code_challenge_methods_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Scopes        []string `json:"scopes_supported"`
		ISSParam      bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Issuer != w.srv.URL || m.Authorization != w.srv.URL+"/oauth/authorize" || m.Token != w.srv.URL+"/oauth/token" {
		t.Errorf("issuer and endpoints: %+v", m)
	}
	if m.Revocation != nil {
		t.Errorf("revocation_endpoint %q: Wick has no RFC 7009 endpoint", *m.Revocation)
	}
	if !slices.Equal(m.ResponseTypes, []string{"code"}) || !slices.Equal(m.Challenge, []string{"S256"}) || !m.ISSParam {
		t.Errorf("response types %v, challenge methods %v, iss %v", m.ResponseTypes, m.Challenge, m.ISSParam)
	}
	for _, g := range []string{"authorization_code", "refresh_token"} {
		if !slices.Contains(m.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", m.GrantTypes, g)
		}
	}
	if slices.Contains(m.GrantTypes, "implicit") {
		t.Error("implicit listed")
	}
	if !slices.Contains(m.AuthMethods, "none") || !slices.Contains(m.AuthMethods, "client_secret_basic") {
		t.Errorf("token_endpoint_auth_methods_supported = %v", m.AuthMethods)
	}
	if !slices.Contains(m.Scopes, auth.ScopeFull) || !slices.Contains(m.Scopes, "devices.function:call") {
		t.Errorf("scopes_supported = %v", m.Scopes)
	}
	// The issuer's own sign-in redirects carry the same iss.
	b := w.browser(t)
	_, c := pkce(t)
	p := b.get(authorizeQuery(szWebClient, szWebRedir, c))
	p = b.submit(p, "username", szUser, "password", szPass)
	p = b.submit(p, "action", "allow")
	if iss := mustParseURL(t, p.header.Get("Location")).Query().Get("iss"); iss != m.Issuer {
		t.Errorf("redirect iss %q, metadata issuer %q", iss, m.Issuer)
	}
}
