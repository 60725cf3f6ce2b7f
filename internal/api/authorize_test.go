package api_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Fixtures of the browser sign-in tests.
const (
	szUser       = "dev@example.com"
	szPass       = "dev-password-1"
	szCustomer   = "cu@example.com"
	szCustPass   = "customer-pass-1"
	szWebRedir   = "https://app.example.com/callback"
	szShopRedir  = "http://127.0.0.1:8099/signed-in?shop=1"
	szState      = "st-Ä 1/2&x"
	szWebClient  = "webapp-0001"
	szShopClient = "shop-0001"
)

// signInWorld is an API behind a real HTTP server, with a developer, a
// user web client, a product with a customer and a product web client.
type signInWorld struct {
	env        *apitest.Env
	srv        *httptest.Server
	user       *store.User
	webSecret  string
	shopSecret string
}

func newSignInWorld(t *testing.T, lim auth.Limits) *signInWorld {
	t.Helper()
	env := apitest.New(t, apitest.Options{InMemory: true, Limits: lim})
	w := &signInWorld{env: env}
	w.user = env.CreateUser(szUser, szPass)
	owner := env.CreateUser("owner@example.com", "owner-password-1")
	w.webSecret = env.CreateClient(&store.Client{ID: szWebClient, Name: "Lamp App", Type: store.ClientWeb,
		RedirectURI: szWebRedir, OwnerID: owner.ID})
	p := env.CreateProduct(owner, "widget")
	w.shopSecret = env.CreateClient(&store.Client{ID: szShopClient, Name: "Widget Home", Type: store.ClientWeb,
		RedirectURI: szShopRedir, ProductID: p.ID})
	env.CreateClient(&store.Client{ID: "installed-0001", Type: store.ClientInstalled, RedirectURI: szWebRedir, OwnerID: owner.ID})
	env.CreateClient(&store.Client{ID: "creator-0001", Type: store.ClientWeb, RedirectURI: szWebRedir,
		ProductID: p.ID, Scope: auth.ScopeCustomersCreate})
	env.CreateCustomer(p.ID, szCustomer, szCustPass)
	w.srv = httptest.NewServer(env.Handler)
	t.Cleanup(w.srv.Close)
	return w
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t *testing.T
	w *signInWorld
	c *http.Client
}

func (w *signInWorld) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, w: w, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is a response with the hidden fields of its form.
type page struct {
	status int
	header http.Header
	body   string
	fields url.Values
	by     *browser // the browser that fetched it
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &page{status: resp.StatusCode, header: resp.Header, body: string(body), fields: url.Values{}, by: b}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		p.fields.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return p
}

func (b *browser) get(q url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.w.srv.URL+"/oauth/authorize?"+q.Encode(), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.w.srv.URL+"/oauth/authorize", strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit posts the page's form with its hidden fields and extra pairs.
func (b *browser) submit(p *page, kv ...string) *page {
	b.t.Helper()
	f := url.Values{}
	for k, v := range p.fields {
		f[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return b.post(f)
}

// pkce returns a fresh code verifier and its S256 challenge.
func pkce(t *testing.T) (verifier, challenge string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	return verifier, auth.S256(verifier)
}

// authorizeQuery is a valid authorization request for client.
func authorizeQuery(client, redirect, challenge string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect},
		"state": {szState}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
}

// wantStep fails unless p is the page of step with status 200.
func wantStep(t *testing.T, p *page, step string) {
	t.Helper()
	if p.status != http.StatusOK || p.fields.Get("step") != step {
		t.Fatalf("want the %s page; got %d step %q: %s", step, p.status, p.fields.Get("step"), p.body)
	}
}

// codeFrom checks a redirect to redirect with state and returns its code.
func codeFrom(t *testing.T, p *page, status int, redirect string) string {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	loc, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	base := *loc
	base.RawQuery = ""
	want, _ := url.Parse(redirect)
	want.RawQuery = ""
	if base.String() != want.String() {
		t.Fatalf("redirected to %s, want %s", loc, redirect)
	}
	for k, v := range mustParseURL(t, redirect).Query() {
		if q.Get(k) != v[0] {
			t.Errorf("the registered query %s=%s was lost: %s", k, v[0], loc)
		}
	}
	if q.Get("state") != szState {
		t.Errorf("state = %q, want %q", q.Get("state"), szState)
	}
	if q.Get("error") != "" {
		t.Fatalf("error redirect: %s", loc)
	}
	if q.Get("iss") == "" {
		t.Errorf("no iss in %s", loc)
	}
	return q.Get("code")
}

func mustParseURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signIn runs the sign-in of a browser up to the code.
func (b *browser) signIn(client, redirect, challenge, username, password string) string {
	b.t.Helper()
	p := b.get(authorizeQuery(client, redirect, challenge))
	wantStep(b.t, p, "login")
	p = b.submit(p, "username", username, "password", password)
	if p.status == http.StatusSeeOther {
		// A consent remembered from an earlier sign-in skips the page.
		return codeFrom(b.t, p, http.StatusSeeOther, redirect)
	}
	wantStep(b.t, p, "consent")
	return codeFrom(b.t, b.submit(p, "action", "allow"), http.StatusSeeOther, redirect)
}

// exchange posts the code to /oauth/token and returns the status and body.
func (w *signInWorld) exchange(t *testing.T, kv ...string) (int, map[string]any) {
	t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	resp, err := http.PostForm(w.srv.URL+"/oauth/token", f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

// whoami returns the status of GET /v1/user with token and its username.
func (w *signInWorld) whoami(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+"/v1/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	name, _ := m["username"].(string)
	return resp.StatusCode, name
}

func TestAuthorizeUserSignIn(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	b := w.browser(t)
	verifier, challenge := pkce(t)

	p := b.get(authorizeQuery(szWebClient, szWebRedir, challenge))
	wantStep(t, p, "login")
	for k, want := range map[string]string{
		"X-Frame-Options":             "DENY",
		"Cache-Control":               "no-store",
		"Referrer-Policy":             "no-referrer",
		"Access-Control-Allow-Origin": "",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' https://app.example.com"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if !strings.Contains(p.body, "Lamp App") {
		t.Error("the sign-in page does not name the client")
	}
	cookie := p.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/oauth/authorize"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on plain http", cookie)
	}

	p = b.submit(p, "username", szUser, "password", "wrong-password")
	if p.status != http.StatusUnauthorized || p.fields.Get("step") != "login" || !strings.Contains(p.body, `role="alert"`) {
		t.Fatalf("wrong password: %d %s", p.status, p.body)
	}
	if !strings.Contains(p.body, `value="`+szUser+`"`) {
		t.Error("the e-mail was not kept after a wrong password")
	}
	p = b.submit(p, "username", szUser, "password", szPass)
	wantStep(t, p, "consent")
	if !strings.Contains(p.body, "Allow Lamp App?") || !strings.Contains(p.body, szUser) {
		t.Errorf("consent page does not name the client and the account: %s", p.body)
	}
	allowed := b.submit(p, "action", "allow")
	code := codeFrom(t, allowed, http.StatusSeeOther, szWebRedir)
	if !auth.ValidTokenFormat(code) {
		t.Fatalf("code %q", code)
	}
	if iss := mustParseURL(t, allowed.header.Get("Location")).Query().Get("iss"); iss != w.srv.URL {
		t.Errorf("iss = %q, want %q (RFC 9207)", iss, w.srv.URL)
	}

	// A public client: no secret, no refresh token.
	status, tok := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", verifier, "client_id", szWebClient)
	if status != 200 || tok["token_type"] != "bearer" || tok["expires_in"] != float64(auth.DefaultLifetime/time.Second) {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	if _, ok := tok["refresh_token"]; ok {
		t.Errorf("a public client got a refresh token: %v", tok)
	}
	access := tok["access_token"].(string)
	if st, name := w.whoami(t, access); st != 200 || name != szUser {
		t.Fatalf("GET /v1/user = %d %q", st, name)
	}

	// A replay is refused and revokes what the code gave.
	status, body := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", verifier, "client_id", szWebClient)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", status, body)
	}
	if st, _ := w.whoami(t, access); st != http.StatusUnauthorized {
		t.Errorf("token of a replayed code still works: %d", st)
	}
}

func TestAuthorizeConfidentialClient(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	verifier, challenge := pkce(t)
	code := w.browser(t).signIn(szWebClient, szWebRedir, challenge, szUser, szPass)
	status, body := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", verifier,
		"client_id", szWebClient, "client_secret", "0000000000000000000000000000000000000000")
	if status != 400 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", status, body)
	}
	// The wrong secret was refused before the code was looked at.
	status, tok := w.exchange(t, "code", code, "redirect_uri", szWebRedir, "code_verifier", verifier,
		"client_id", szWebClient, "client_secret", w.webSecret, "expires_in", "3600")
	if status != 200 || tok["expires_in"] != float64(3600) || !auth.ValidTokenFormat(tok["refresh_token"].(string)) {
		t.Fatalf("confidential exchange: %d %v", status, tok)
	}
}

func TestAuthorizeCustomerSignIn(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	b := w.browser(t)
	verifier, challenge := pkce(t)
	p := b.get(authorizeQuery(szShopClient, szShopRedir, challenge))
	wantStep(t, p, "login")
	if !strings.Contains(p.body, "widget account") {
		t.Errorf("the customer sign-in does not name the product: %s", p.body)
	}
	// A developer is no customer of the product.
	p = b.submit(p, "username", szUser, "password", szPass)
	if p.status != http.StatusUnauthorized {
		t.Fatalf("developer at a product client: %d", p.status)
	}
	p = b.submit(p, "username", szCustomer, "password", szCustPass)
	wantStep(t, p, "consent")
	code := codeFrom(t, b.submit(p, "action", "allow"), http.StatusSeeOther, szShopRedir)
	status, tok := w.exchange(t, "code", code, "redirect_uri", szShopRedir, "code_verifier", verifier, "client_id", szShopClient)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	p2, err := w.env.Auth.Authenticate(context.Background(), tok["access_token"].(string))
	if err != nil || p2.Kind != store.KindCustomer || p2.Username != szCustomer || p2.ClientID != szShopClient {
		t.Fatalf("customer token: %+v %v", p2, err)
	}
}

func TestAuthorizeMFA(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	ctx := context.Background()
	en, err := w.env.Auth.BeginMFA(ctx, w.user)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := totp.GenerateCode(en.Secret, w.env.Clock.Now())
	recovery, err := w.env.Auth.ConfirmMFA(ctx, w.user, en.MFAToken, first)
	if err != nil {
		t.Fatal(err)
	}
	w.env.Clock.Advance(time.Minute) // the enrolment code's step is spent

	b := w.browser(t)
	verifier, challenge := pkce(t)
	p := b.get(authorizeQuery(szWebClient, szWebRedir, challenge))
	p = b.submit(p, "username", szUser, "password", szPass)
	wantStep(t, p, "otp")
	if p.fields.Get("mfa_token") == "" {
		t.Fatal("no mfa token on the code form")
	}
	p = b.submit(p, "otp", "000000")
	if p.status != http.StatusUnauthorized || p.fields.Get("step") != "otp" || !strings.Contains(p.body, "not right") {
		t.Fatalf("wrong code: %d %s", p.status, p.body)
	}
	code, _ := totp.GenerateCode(en.Secret, w.env.Clock.Now())
	p = b.submit(p, "otp", code)
	wantStep(t, p, "consent")
	c := codeFrom(t, b.submit(p, "action", "allow"), http.StatusSeeOther, szWebRedir)
	if status, tok := w.exchange(t, "code", c, "redirect_uri", szWebRedir, "code_verifier", verifier, "client_id", szWebClient); status != 200 {
		t.Fatalf("exchange: %d %v", status, tok)
	}

	// A recovery code works in the same field, once.
	p = b.get(authorizeQuery(szWebClient, szWebRedir, challenge))
	p = b.submit(p, "username", szUser, "password", szPass)
	wantStep(t, p, "otp")
	p = b.submit(p, "otp", recovery[0])
	// The consent given above is remembered: the second factor leads
	// straight back to the client.
	codeFrom(t, p, http.StatusSeeOther, szWebRedir)
}

func TestAuthorizeRefusals(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	_, challenge := pkce(t)
	with := func(mod func(q url.Values)) url.Values {
		q := authorizeQuery(szWebClient, szWebRedir, challenge)
		mod(q)
		return q
	}
	tests := []struct {
		name  string
		q     url.Values
		page  bool   // an error page, no redirect
		error string // the error sent back to the client
	}{
		{"no client", with(func(q url.Values) { q.Del("client_id") }), true, ""},
		{"unknown client", with(func(q url.Values) { q.Set("client_id", "nope-0000") }), true, ""},
		{"other redirect", with(func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/callback") }), true, ""},
		{"redirect with a trailing slash", with(func(q url.Values) { q.Set("redirect_uri", szWebRedir+"/") }), true, ""},
		{"redirect with a query", with(func(q url.Values) { q.Set("redirect_uri", szWebRedir+"?a=1") }), true, ""},
		{"redirect in other case", with(func(q url.Values) { q.Set("redirect_uri", strings.ToUpper(szWebRedir)) }), true, ""},
		{"redirect prefix", with(func(q url.Values) { q.Set("redirect_uri", "https://app.example.com/") }), true, ""},
		{"repeated client", with(func(q url.Values) { q.Add("client_id", szShopClient) }), true, ""},
		{"implicit", with(func(q url.Values) { q.Set("response_type", "token") }), false, "unsupported_response_type"},
		{"no response type", with(func(q url.Values) { q.Del("response_type") }), false, "invalid_request"},
		{"hybrid", with(func(q url.Values) { q.Set("response_type", "code token") }), false, "unsupported_response_type"},
		{"no challenge", with(func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }), false, "invalid_request"},
		{"plain method", with(func(q url.Values) { q.Set("code_challenge_method", "plain") }), false, "invalid_request"},
		{"no method", with(func(q url.Values) { q.Del("code_challenge_method") }), false, "invalid_request"},
		{"short challenge", with(func(q url.Values) { q.Set("code_challenge", "abc") }), false, "invalid_request"},
		{"repeated state", with(func(q url.Values) { q.Add("state", "x") }), false, "invalid_request"},
		{"unknown scope", with(func(q url.Values) { q.Set("scope", "devices:list devices:frobnicate") }), false, "invalid_scope"},
		{"customer narrow scope", with(func(q url.Values) {
			q.Set("client_id", szShopClient)
			q.Set("redirect_uri", szShopRedir)
			q.Set("scope", "devices:list")
		}), false, "invalid_scope"},
		{"prompt none", with(func(q url.Values) { q.Set("prompt", "none") }), false, "login_required"},
		{"unknown prompt", with(func(q url.Values) { q.Set("prompt", "sometimes") }), false, "invalid_request"},
		{"installed client", with(func(q url.Values) { q.Set("client_id", "installed-0001") }), false, "unauthorized_client"},
		{"customers:create client", with(func(q url.Values) { q.Set("client_id", "creator-0001") }), false, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := w.browser(t).get(tt.q)
			if tt.page {
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" ||
					!strings.HasPrefix(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, "not valid") {
					t.Fatalf("want an error page; got %d %v %s", p.status, p.header, p.body)
				}
				return
			}
			if p.status != http.StatusFound {
				t.Fatalf("want a redirect; got %d %s", p.status, p.body)
			}
			loc := mustParseURL(t, p.header.Get("Location"))
			if !(strings.HasPrefix(loc.String(), szWebRedir+"?") || strings.HasPrefix(loc.String(), szShopRedir+"&")) || loc.Query().Get("error") != tt.error ||
				loc.Query().Get("state") != szState || loc.Query().Get("code") != "" {
				t.Fatalf("redirect %s; want error %s with the state", loc, tt.error)
			}
		})
	}
	// The registered redirect is used when the request names none.
	p := w.browser(t).get(with(func(q url.Values) { q.Del("redirect_uri") }))
	wantStep(t, p, "login")
}

func TestAuthorizeExchangeRefusals(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	verifier, challenge := pkce(t)
	otherVerifier, _ := pkce(t)
	b := w.browser(t)
	ok := []string{"redirect_uri", szWebRedir, "code_verifier", verifier, "client_id", szWebClient}
	set := func(kv []string, k, v string) []string {
		out := append([]string(nil), kv...)
		for i := 0; i+1 < len(out); i += 2 {
			if out[i] == k {
				out[i+1] = v
				return out
			}
		}
		return append(out, k, v)
	}
	tests := []struct {
		name      string
		kv        []string
		status    int
		error     string
		burnsCode bool
	}{
		{"missing code", set(ok, "code", ""), 400, "invalid_request", false},
		{"missing verifier", set(ok, "code_verifier", ""), 400, "invalid_request", false},
		{"missing redirect", set(ok, "redirect_uri", ""), 400, "invalid_request", false},
		{"missing client", set(ok, "client_id", ""), 400, "invalid_client", false},
		{"unknown client", set(ok, "client_id", "nope-0000"), 400, "invalid_client", false},
		{"wrong verifier", set(ok, "code_verifier", otherVerifier), 400, "invalid_grant", true},
		{"malformed verifier", set(ok, "code_verifier", "short"), 400, "invalid_grant", true},
		{"wrong redirect", set(ok, "redirect_uri", szWebRedir+"/"), 400, "invalid_grant", true},
		{"other client's code", set(ok, "client_id", szShopClient), 400, "invalid_grant", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := b.signIn(szWebClient, szWebRedir, challenge, szUser, szPass)
			kv := tt.kv
			if tt.name != "missing code" {
				kv = set(kv, "code", code)
			}
			status, body := w.exchange(t, kv...)
			if status != tt.status || body["error"] != tt.error || body["access_token"] != nil {
				t.Fatalf("got %d %v; want %d %s", status, body, tt.status, tt.error)
			}
			// A code shown with a wrong binding is spent; one refused
			// before it was looked at still works.
			status, _ = w.exchange(t, set(ok, "code", code)...)
			if got := status != 200; got != tt.burnsCode {
				t.Errorf("code spent = %v, want %v", got, tt.burnsCode)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		code := b.signIn(szWebClient, szWebRedir, challenge, szUser, szPass)
		w.env.Clock.Advance(auth.AuthCodeLifetime)
		status, body := w.exchange(t, set(ok, "code", code)...)
		if status != 400 || body["error_description"] != "Authorization code has expired" {
			t.Fatalf("expired code: %d %v", status, body)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		status, body := w.exchange(t, set(ok, "code", strings.Repeat("ab", 20))...)
		if status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("unknown code: %d %v", status, body)
		}
	})
}

func TestAuthorizeForms(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{})
	_, challenge := pkce(t)
	q := authorizeQuery(szWebClient, szWebRedir, challenge)
	b := w.browser(t)
	login := b.get(q)
	wantStep(t, login, "login")

	refused := func(t *testing.T, p *page) {
		t.Helper()
		if p.status != http.StatusForbidden || p.fields.Get("step") != "" || p.header.Get("Location") != "" {
			t.Fatalf("want the form refused; got %d %s", p.status, p.body)
		}
	}
	t.Run("no form token", func(t *testing.T) {
		f := url.Values{}
		for k, v := range login.fields {
			f[k] = v
		}
		f.Del("csrf_token")
		f.Set("username", szUser)
		f.Set("password", szPass)
		refused(t, b.post(f))
	})
	t.Run("no cookie", func(t *testing.T) {
		// Another browser (a forged cross-site form) has no cookie.
		refused(t, w.browser(t).submit(login, "username", szUser, "password", szPass))
	})
	t.Run("other browser's cookie", func(t *testing.T) {
		other := w.browser(t)
		other.get(q)
		refused(t, other.submit(login, "username", szUser, "password", szPass))
	})
	t.Run("token of another step", func(t *testing.T) {
		refused(t, b.submit(login, "step", "consent", "action", "allow"))
	})
	t.Run("ticket of another browser", func(t *testing.T) {
		consent := b.submit(login, "username", szUser, "password", szPass)
		wantStep(t, consent, "consent")
		other := w.browser(t)
		theirs := other.submit(other.get(q), "username", szUser, "password", szPass)
		wantStep(t, theirs, "consent")
		p := b.submit(consent, "action", "allow", "ticket", theirs.fields.Get("ticket"))
		if p.status != http.StatusBadRequest || p.fields.Get("step") != "login" {
			t.Fatalf("foreign ticket: %d %s", p.status, p.body)
		}
	})
	t.Run("ticket for another request", func(t *testing.T) {
		consent := b.submit(login, "username", szUser, "password", szPass)
		_, other := pkce(t)
		p := b.submit(consent, "action", "allow", "code_challenge", other)
		if p.status != http.StatusBadRequest || p.fields.Get("step") != "login" {
			t.Fatalf("ticket moved to another challenge: %d %s", p.status, p.body)
		}
	})
	t.Run("deny", func(t *testing.T) {
		consent := b.submit(login, "username", szUser, "password", szPass)
		p := b.submit(consent, "action", "deny")
		loc := mustParseURL(t, p.header.Get("Location"))
		if p.status != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != szState {
			t.Fatalf("deny: %d %s", p.status, loc)
		}
	})
}

func TestAuthorizeLockout(t *testing.T) {
	w := newSignInWorld(t, auth.Limits{IPFailures: 3})
	_, challenge := pkce(t)
	b := w.browser(t)
	p := b.get(authorizeQuery(szWebClient, szWebRedir, challenge))
	for i := 0; i < 3; i++ {
		p = b.submit(p, "username", szUser, "password", "wrong-password")
		if p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, p.status)
		}
	}
	// Locked out, even with the right password, and at /oauth/token too.
	p = b.submit(p, "username", szUser, "password", szPass)
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed attempts") {
		t.Fatalf("locked out: %d %v %s", p.status, p.header, p.body)
	}
	resp, err := http.PostForm(w.srv.URL+"/oauth/token", url.Values{"grant_type": {"password"}, "username": {szUser},
		"password": {szPass}, "client_id": {"particle"}, "client_secret": {"particle"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("POST /oauth/token after the sign-in lockout: %d", resp.StatusCode)
	}
}

func TestAuthorizeSecureCookie(t *testing.T) {
	env := apitest.New(t, apitest.Options{InMemory: true, Config: api.Config{PublicURL: "https://wick.example.com"}})
	owner := env.CreateUser("owner@example.com", "owner-password-1")
	env.CreateClient(&store.Client{ID: szWebClient, Type: store.ClientWeb, RedirectURI: szWebRedir, OwnerID: owner.ID})
	_, challenge := pkce(t)
	r := env.Do(apitest.Req{Method: "GET", Path: "/oauth/authorize?" + authorizeQuery(szWebClient, szWebRedir, challenge).Encode()})
	if r.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
	refused := env.Do(apitest.Req{Method: "GET", Path: "/oauth/authorize?client_id=" + szWebClient})
	// The request reached another host than the public URL's: iss names
	// the host the browser used, with the public URL's scheme.
	if loc := refused.Header.Get("Location"); !strings.HasSuffix(loc, "&iss=https%3A%2F%2Fexample.com") {
		t.Errorf("Location %q: want iss https://example.com", loc)
	}
	cookie := r.Header.Get("Set-Cookie")
	for _, want := range []string{"Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s behind an https public URL", cookie, want)
		}
	}
}

// BenchmarkAuthorizePage measures GET /oauth/authorize, the sign-in page
// anyone can ask for without credentials: request checks, one client read,
// a form token and the page's template.
func BenchmarkAuthorizePage(b *testing.B) {
	env := apitest.New(b, apitest.Options{InMemory: true, Config: api.Config{GlobalRate: -1}})
	owner := env.CreateUser("owner@example.com", "owner-password-1")
	env.CreateClient(&store.Client{ID: szWebClient, Name: "Lamp App", Type: store.ClientWeb, RedirectURI: szWebRedir, OwnerID: owner.ID})
	q := url.Values{"response_type": {"code"}, "client_id": {szWebClient}, "redirect_uri": {szWebRedir}, "state": {szState},
		"code_challenge": {auth.S256(strings.Repeat("v", 43))}, "code_challenge_method": {"S256"}}
	path := "/oauth/authorize?" + q.Encode()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		env.Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
