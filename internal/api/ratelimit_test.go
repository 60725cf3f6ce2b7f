package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

// assertLimited checks a 429 with the spec's body and a Retry-After of
// want seconds.
func assertLimited(t *testing.T, r *apitest.Resp, want int) {
	t.Helper()
	if r.Status != 429 {
		t.Fatalf("status %d, want 429; body %s", r.Status, r.Body)
	}
	apitest.MatchJSON(t, r.Body, `{"error":"rate_limited","error_description":"Too many requests"}`)
	if got, _ := strconv.Atoi(r.Header.Get("Retry-After")); got != want {
		t.Errorf("Retry-After = %q, want %d", r.Header.Get("Retry-After"), want)
	}
}

func TestGlobalRateLimit(t *testing.T) {
	w := newWorld(t, api.Config{GlobalRate: 3, GlobalWindow: time.Minute})
	get := apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}
	for i := 0; i < 3; i++ {
		if r := w.Do(get); r.Status != 200 {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	w.Clock.Advance(20 * time.Second)
	assertLimited(t, w.Do(get), 40)
	// Unknown routes count too; other clients do not share the window.
	assertLimited(t, w.Do(apitest.Req{Method: "GET", Path: "/nope"}), 40)
	other := get
	other.RemoteAddr = "198.51.100.7:555"
	if r := w.Do(other); r.Status != 200 {
		t.Errorf("another IP: %d", r.Status)
	}
	w.Clock.Advance(40 * time.Second)
	if r := w.Do(get); r.Status != 200 {
		t.Errorf("after the window: %d", r.Status)
	}
}

func TestTokenRateLimit(t *testing.T) {
	w := newWorld(t, api.Config{TokenRate: 2, TokenWindow: time.Minute})
	for i := 0; i < 2; i++ {
		if r := w.login(ownerName, ownerPass, "particle", "particle"); r.Status != 200 {
			t.Fatalf("login %d: %d", i, r.Status)
		}
	}
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 60)
	// Other routes are not limited by the token window.
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}); r.Status != 200 {
		t.Errorf("other route: %d", r.Status)
	}
}

func TestTokenLockout(t *testing.T) {
	w := newWorld(t, api.Config{TokenFailures: 3, TokenLockout: 10 * time.Minute})
	fail := func() {
		t.Helper()
		if r := w.login(ownerName, "wrong", "particle", "particle"); r.Status != 400 {
			t.Fatalf("failed login: %d", r.Status)
		}
	}
	// A success resets the count of consecutive failures.
	fail()
	fail()
	if r := w.login(ownerName, ownerPass, "particle", "particle"); r.Status != 200 {
		t.Fatalf("login: %d", r.Status)
	}
	fail()
	fail()
	fail() // third in a row: locked
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 600)
	// Another IP is not locked; other routes still work for this one.
	r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", RemoteAddr: "[2001:db8::1]:443", Form: form(
		"grant_type", "password", "username", ownerName, "password", ownerPass, "client_id", "particle", "client_secret", "particle")})
	if r.Status != 200 {
		t.Errorf("other IP: %d", r.Status)
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}); r.Status != 200 {
		t.Errorf("other route: %d", r.Status)
	}
	w.Clock.Advance(9 * time.Minute)
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 60)
	w.Clock.Advance(time.Minute)
	if r := w.login(ownerName, ownerPass, "particle", "particle"); r.Status != 200 {
		t.Errorf("after the lockout: %d %s", r.Status, r.Body)
	}
}

func TestSensitiveRateLimit(t *testing.T) {
	w := newWorld(t, api.Config{SensitiveRate: 2, SensitiveWindow: time.Minute})
	reset := apitest.Req{Method: "POST", Path: "/v1/user/password-reset", JSON: map[string]any{"username": ownerName}}
	if r := w.Do(reset); r.Status != 200 {
		t.Fatal(r.Status)
	}
	// DELETE /v1/user shares the window (and fails on the password).
	if r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/user", Token: w.ownerToken, JSON: map[string]any{"password": "x"}}); r.Status != 400 {
		t.Fatal(r.Status)
	}
	assertLimited(t, w.Do(reset), 60)
	assertLimited(t, w.Do(apitest.Req{Method: "PUT", Path: "/v1/user/password-reset", JSON: map[string]any{}}), 60)
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}); r.Status != 200 {
		t.Errorf("other route: %d", r.Status)
	}
}

func TestTrustProxy(t *testing.T) {
	for _, trust := range []bool{false, true} {
		w := newWorld(t, api.Config{GlobalRate: 1, TrustProxy: trust})
		req := func(xff string) apitest.Req {
			return apitest.Req{Method: "GET", Path: "/v1/nope", Header: http.Header{"X-Forwarded-For": {xff}}}
		}
		w.Do(req("203.0.113.1"))
		r := w.Do(req("203.0.113.2, 10.0.0.1"))
		if want := map[bool]int{false: 429, true: 404}[trust]; r.Status != want {
			t.Errorf("TrustProxy=%v: second client got %d, want %d", trust, r.Status, want)
		}
		// A garbage header falls back to the connection address, shared
		// by the next garbage request.
		w.Do(req("not-an-ip"))
		if r := w.Do(req("also-not-an-ip")); r.Status != 429 {
			t.Errorf("TrustProxy=%v: garbage header: %d", trust, r.Status)
		}
	}
}
