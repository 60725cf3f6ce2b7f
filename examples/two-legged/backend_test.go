package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/server/servertest"
	"github.com/wick-cloud/wick/sdk/cloud"
)

// browser is an HTTP client with its own cookie jar.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// call sends a request (body as JSON when not "") and decodes the JSON
// answer.
func (b *browser) call(method, path, body string) (int, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// mustCall is call that fails the test unless the status is want.
func (b *browser) mustCall(method, path, body string, want int) map[string]any {
	b.t.Helper()
	status, out := b.call(method, path, body)
	if status != want {
		b.t.Fatalf("%s %s = %d %v; want %d", method, path, status, out, want)
	}
	return out
}

// sessionToken is the only session's token (the test looks inside the
// server to check that log-out revokes it).
func sessionToken(t *testing.T, b *Backend, email string) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sessions {
		if s.email == email {
			return s.token
		}
	}
	t.Fatalf("no session for %s", email)
	return ""
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestTwoLeggedFlow runs the guide's whole flow against a real Wick server
// and a simulated device: sign-up with a shadow customer, log-out
// revoking the token, log-in with a fresh customer-scoped token, a claim
// code that the device reports during setup, the device in the
// customer's list, and log-out again.
func TestTwoLeggedFlow(t *testing.T) {
	w := servertest.Start(t)
	owner := w.Login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := owner.CreateProduct(ctx, cloud.NewProduct{Name: "Lamp", PlatformID: 6})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := owner.CreateClient(ctx, prod.Slug, cloud.NewClient{Name: "lamp back end"})
	if err != nil {
		t.Fatal(err)
	}
	users, err := OpenUsers("")
	if err != nil {
		t.Fatal(err)
	}
	be := NewBackend(Config{API: w.API, Product: prod.Slug, ClientID: cl.ID, ClientSecret: cl.Secret}, users, quiet())
	srv := httptest.NewServer(be.Handler())
	defer srv.Close()
	alice := newBrowser(t, srv.URL)

	// The page holds no secret.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(pg), cl.Secret) || strings.Contains(string(pg), cl.ID) {
		t.Fatalf("GET / = %d; the page must not hold the client's credentials", resp.StatusCode)
	}

	// Sign-up: a user here, a shadow customer there, and a session.
	alice.mustCall("GET", "/api/me", "", 401)
	out := alice.mustCall("POST", "/api/signup", `{"email":"Alice@Example.com","password":"alice-secret-1"}`, 201)
	if out["email"] != "alice@example.com" {
		t.Fatalf("signup = %v", out)
	}
	alice.mustCall("POST", "/api/signup", `{"email":"alice@example.com","password":"other-secret-2"}`, 409)
	if out := alice.mustCall("GET", "/api/me", "", 200); out["email"] != "alice@example.com" {
		t.Fatalf("me = %v", out)
	}
	customers, _, err := owner.ListCustomers(ctx, prod.Slug, cloud.Page{})
	if err != nil || !slices.ContainsFunc(customers, func(c cloud.Customer) bool { return c.Username == "alice@example.com" }) {
		t.Fatalf("ListCustomers = %+v, %v; want alice's shadow customer", customers, err)
	}
	// The shadow customer has no password: logging in to the cloud with
	// the back end's password fails.
	if _, err := cloud.New(w.API, "").Login(ctx, "alice@example.com", "alice-secret-1", &cloud.TokenOptions{ClientID: cl.ID, ClientSecret: cl.Secret}); err == nil {
		t.Error("the shadow customer accepted the back end's password")
	}
	signupToken := sessionToken(t, be, "alice@example.com")
	alice.mustCall("POST", "/api/logout", "", 200)
	if _, err := cloud.New(w.API, signupToken).ListDevices(ctx); !cloud.IsUnauthorized(err) {
		t.Fatalf("sign-up token after log-out: %v; want 401", err)
	}

	// Log-in: wrong passwords and unknown users are refused alike.
	for _, body := range []string{
		`{"email":"alice@example.com","password":"wrong-password"}`,
		`{"email":"nobody@example.com","password":"alice-secret-1"}`,
	} {
		if out := alice.mustCall("POST", "/api/login", body, 401); out["error"] != "wrong e-mail address or password" {
			t.Errorf("login %s = %v", body, out)
		}
	}
	alice.mustCall("POST", "/api/login", `{"email":"alice@example.com","password":"alice-secret-1"}`, 200)
	token := sessionToken(t, be, "alice@example.com")
	if token == signupToken {
		t.Fatal("log-in reused the sign-up token")
	}
	cur, err := cloud.New(w.API, token).GetUser(ctx)
	if err != nil || cur.Username != "alice@example.com" {
		t.Fatalf("customer token acts for %+v, %v", cur, err)
	}

	// Device setup: a claim code for alice, reported by a device that
	// the developer provisioned into the product.
	out = alice.mustCall("POST", "/api/claim-code", "", 200)
	code, _ := out["claim_code"].(string)
	if code == "" {
		t.Fatalf("claim-code = %v", out)
	}
	if out := alice.mustCall("GET", "/api/devices", "", 200); len(out["devices"].([]any)) != 0 {
		t.Fatalf("devices before setup = %v", out)
	}
	id := w.StartDevice(t, servertest.Device{Token: owner.Token, Product: prod.Slug, ClaimCode: code})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := alice.mustCall("GET", "/api/devices", "", 200)
		devs := out["devices"].([]any)
		if len(devs) == 1 {
			d := devs[0].(map[string]any)
			if d["id"] != id || d["name"] == "" {
				t.Fatalf("devices = %v; want %s with a name", out, id)
			}
			if d["online"] == true {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s not in alice's list: %v", id, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d, err := owner.GetProductDevice(ctx, prod.Slug, id)
	if err != nil || d.Owner == nil || *d.Owner != "alice@example.com" || d.ProductID != prod.ID {
		t.Fatalf("GetProductDevice = %+v, %v; want alice's device in the product", d, err)
	}

	// Log-out revokes the token: the cloud refuses it, and the back end
	// no longer knows the session.
	if out := alice.mustCall("POST", "/api/logout", "", 200); out["revoked"] != true {
		t.Fatalf("logout = %v", out)
	}
	if _, err := cloud.New(w.API, token).ListDevices(ctx); !cloud.IsUnauthorized(err) {
		t.Fatalf("customer token after log-out: %v; want 401", err)
	}
	alice.mustCall("GET", "/api/devices", "", 401)
	alice.mustCall("POST", "/api/claim-code", "", 401)
	alice.mustCall("POST", "/api/logout", "", 401)
}

// TestSignupRolledBack checks that a sign-up the cloud refuses (here: a
// wrong client secret) leaves no user behind, and that a token revoked
// behind the back end's back ends the session.
func TestSignupRolledBack(t *testing.T) {
	w := servertest.Start(t)
	owner := w.Login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := owner.CreateProduct(ctx, cloud.NewProduct{Name: "Lamp", PlatformID: 6})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := owner.CreateClient(ctx, prod.Slug, cloud.NewClient{Name: "lamp back end"})
	if err != nil {
		t.Fatal(err)
	}
	users, _ := OpenUsers("")
	bad := httptest.NewServer(NewBackend(Config{API: w.API, Product: prod.Slug, ClientID: cl.ID, ClientSecret: "wrong"}, users, quiet()).Handler())
	defer bad.Close()
	if out := newBrowser(t, bad.URL).mustCall("POST", "/api/signup", `{"email":"bob@example.com","password":"bob-secret-1"}`, 502); out["ok"] != false {
		t.Fatalf("signup with a wrong secret = %v", out)
	}
	be := NewBackend(Config{API: w.API, Product: prod.Slug, ClientID: cl.ID, ClientSecret: cl.Secret}, users, quiet())
	good := httptest.NewServer(be.Handler())
	defer good.Close()
	bob := newBrowser(t, good.URL)
	bob.mustCall("POST", "/api/login", `{"email":"bob@example.com","password":"bob-secret-1"}`, 401)
	bob.mustCall("POST", "/api/signup", `{"email":"bob@example.com","password":"bob-secret-1"}`, 201)

	if err := cloud.New(w.API, sessionToken(t, be, "bob@example.com")).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if out := bob.mustCall("GET", "/api/devices", "", 401); !strings.Contains(out["error"].(string), "log in again") {
		t.Fatalf("devices with a revoked token = %v", out)
	}
	bob.mustCall("GET", "/api/me", "", 401)
}

// TestBadRequests checks the back end's answers to bad input; none of
// them reaches the cloud (its URL is unreachable).
func TestBadRequests(t *testing.T) {
	users, _ := OpenUsers("")
	be := NewBackend(Config{API: "http://127.0.0.1:1", Product: "p", ClientID: "id", ClientSecret: "s"}, users, quiet())
	srv := httptest.NewServer(be.Handler())
	defer srv.Close()
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		errPart                               string
	}{
		{"signup form", "POST", "/api/signup", "application/x-www-form-urlencoded", "email=a@b.c&password=12345678", 400, "must be JSON"},
		{"signup bad json", "POST", "/api/signup", "application/json", `{"email":`, 400, "JSON object"},
		{"signup bad email", "POST", "/api/signup", "application/json", `{"email":"nope","password":"12345678"}`, 400, "e-mail address"},
		{"signup short password", "POST", "/api/signup", "application/json", `{"email":"a@b.c","password":"1234"}`, 400, "password must have"},
		{"signup huge body", "POST", "/api/signup", "application/json", `{"email":"` + strings.Repeat("a", 2*maxBody) + `"}`, 400, "JSON object"},
		{"login bad email", "POST", "/api/login", "application/json", `{"email":"x","password":"12345678"}`, 401, "wrong e-mail"},
		{"devices no cookie", "GET", "/api/devices", "", "", 401, "not logged in"},
		{"claim code no cookie", "POST", "/api/claim-code", "", "", 401, "not logged in"},
		{"logout no cookie", "POST", "/api/logout", "", "", 401, "not logged in"},
		{"wrong method", "GET", "/api/signup", "", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			req.AddCookie(&http.Cookie{Name: "x", Value: "y"})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.errPart) {
				t.Errorf("%s %s = %d %s; want %d with %q", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.errPart)
			}
		})
	}
	// An unknown session cookie is not a session.
	req, _ := http.NewRequest("GET", srv.URL+"/api/me", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "forged"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("forged session = %d; want 401", resp.StatusCode)
	}
}

// TestSessionExpires checks that a session ends with its token.
func TestSessionExpires(t *testing.T) {
	users, _ := OpenUsers("")
	be := NewBackend(Config{API: "http://127.0.0.1:1"}, users, quiet())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	be.now = func() time.Time { return now }
	rec := httptest.NewRecorder()
	be.startSession(rec, "a@b.c", &cloud.Token{AccessToken: "t", ExpiresIn: 60})
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie = %+v; want HttpOnly and SameSite=Strict", cookie)
	}
	h := be.Handler()
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{59 * time.Second, 200}, {60 * time.Second, 401}, {0, 401}} {
		now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(c.after)
		req := httptest.NewRequest("GET", "/api/me", nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("after %v: %d; want %d", c.after, rec.Code, c.want)
		}
	}
}
