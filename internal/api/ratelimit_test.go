package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
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

// TestTokenLockout: wrong passwords from one address lock it out of the
// token endpoint, even for the right password, until the lockout ends.
func TestTokenLockout(t *testing.T) {
	w := newWorldOpts(t, apitest.Options{Limits: auth.Limits{IPFailures: 3, IPLockout: 10 * time.Minute}})
	for range 3 {
		if r := w.login(ownerName, "wrong", "particle", "particle"); r.Status != 400 {
			t.Fatalf("failed login: %d", r.Status)
		}
	}
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 600)
	// Another IP is not locked; token routes still work for this one.
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

// TestBasicRoutesShareTheLockout: the Basic-auth routes count wrong
// passwords like the token endpoint, so they are no way around it.
func TestBasicRoutesShareTheLockout(t *testing.T) {
	w := newWorldOpts(t, apitest.Options{Limits: auth.Limits{IPFailures: 4}})
	list := apitest.Req{Method: "GET", Path: "/v1/access_tokens", BasicUser: ownerName, BasicPass: "wrong"}
	del := apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/" + strings.Repeat("ab", 20), BasicUser: ownerName, BasicPass: "wrong"}
	for i, rq := range []apitest.Req{list, del, list, del} {
		if r := w.Do(rq); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i, r.Status, r.Body)
		}
	}
	list.BasicPass, del.BasicPass = ownerPass, ownerPass
	assertLimited(t, w.Do(list), 1800)
	assertLimited(t, w.Do(del), 1800)
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 1800)
}

// TestOtherAccountSuccessKeepsTheCount: logging into one's own account
// does not clear the failures an address made against another.
func TestOtherAccountSuccessKeepsTheCount(t *testing.T) {
	w := newWorldOpts(t, apitest.Options{Limits: auth.Limits{IPFailures: 6}})
	for round := range 3 {
		for range 2 {
			if r := w.login(ownerName, "wrong", "particle", "particle"); r.Status != 400 {
				t.Fatalf("round %d: guess: %d %s", round, r.Status, r.Body)
			}
		}
		if round < 2 {
			if r := w.login(otherName, otherPass, "particle", "particle"); r.Status != 200 {
				t.Fatalf("round %d: own login: %d %s", round, r.Status, r.Body)
			}
		}
	}
	assertLimited(t, w.login(ownerName, ownerPass, "particle", "particle"), 1800)
}

// TestAccountLimitAcrossAddresses: guesses spread over many addresses
// lock the account (docs/security.md, Passwords, second factors and
// lockout).
func TestAccountLimitAcrossAddresses(t *testing.T) {
	w := newWorld(t, api.Config{})
	guesses := 0
	for ip := range 20 {
		for range 9 {
			r := w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", RemoteAddr: "198.51.100." + strconv.Itoa(ip) + ":1000",
				Form: form("grant_type", "password", "username", ownerName, "password", "guess", "client_id", "particle", "client_secret", "particle")})
			if r.Status == 429 {
				if guesses != auth.DefaultAccountFailures {
					t.Fatalf("429 after %d guesses; want %d", guesses, auth.DefaultAccountFailures)
				}
				return
			}
			if r.Status != 400 {
				t.Fatalf("guess: %d %s", r.Status, r.Body)
			}
			guesses++
		}
	}
	t.Fatalf("%d guesses from 20 addresses and no 429", guesses)
}

// TestCancelledLoginIsNotAFailure: requests cut off by their client do not
// count as wrong passwords.
func TestCancelledLoginIsNotAFailure(t *testing.T) {
	w := newWorldOpts(t, apitest.Options{Limits: auth.Limits{IPFailures: 3}})
	body := form("grant_type", "password", "username", ownerName, "password", ownerPass,
		"client_id", "particle", "client_secret", "particle").Encode()
	for range 16 {
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		w.Handler.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
	}
	if r := w.login(ownerName, ownerPass, "particle", "particle"); r.Status != 200 {
		t.Fatalf("login after 16 cancelled ones: %d %s", r.Status, r.Body)
	}
}

// TestHashConcurrencyBound: a burst of wrong Basic passwords never runs
// more argon2id hashes at once than the bound; the excess is told to come
// back (503 with Retry-After) instead of allocating.
func TestHashConcurrencyBound(t *testing.T) {
	const bound, callers = 2, 48
	w := newWorldOpts(t, apitest.Options{Limits: auth.Limits{IPFailures: -1, AccountFailures: -1,
		HashConcurrency: bound, HashQueue: 2, HashWait: time.Minute}})
	// A costly hash (8 MiB) so that the requests overlap.
	slow, err := (&auth.Hasher{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}).Hash(ownerPass)
	if err != nil {
		t.Fatal(err)
	}
	w.owner.PasswordHash = slow
	if err := w.Store.UpdateUser(t.Context(), w.owner); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req := httptest.NewRequest("GET", "/v1/access_tokens", nil)
			req.RemoteAddr = "192.0.2." + strconv.Itoa(i) + ":1"
			req.SetBasicAuth(ownerName, "wrong")
			rec := httptest.NewRecorder()
			w.Handler.ServeHTTP(rec, req)
			if rec.Code == 503 && rec.Header().Get("Retry-After") != "1" {
				t.Errorf("503 with Retry-After %q", rec.Header().Get("Retry-After"))
			}
			mu.Lock()
			counts[rec.Code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	st := w.Auth.HashStats()
	if st.Peak > bound {
		t.Errorf("%d hashes ran at once; bound %d", st.Peak, bound)
	}
	if counts[401]+counts[503] != callers || counts[503] == 0 || uint64(counts[503]) != st.Rejected {
		t.Errorf("answers %v, stats %+v; want 401s and some 503s", counts, st)
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

// TestTrustProxy: behind trusted proxies the client is the rightmost
// address they did not add; whatever the client wrote to its left is
// ignored.
func TestTrustProxy(t *testing.T) {
	tests := []struct {
		name   string
		cfg    api.Config
		remote string
		xff    [2]string // two clients' headers
		same   bool      // whether they share a limit key
	}{
		{"no trust: XFF ignored", api.Config{}, "10.0.0.5:1", [2]string{"203.0.113.1", "203.0.113.2"}, true},
		{"spoofed left hops", api.Config{TrustProxy: true}, "10.0.0.5:1", [2]string{"1.1.1.1, 203.0.113.9", "2.2.2.2, 203.0.113.9"}, true},
		{"real clients differ", api.Config{TrustProxy: true}, "10.0.0.5:1", [2]string{"203.0.113.1", "203.0.113.2"}, false},
		{"proxy chain skipped", api.Config{TrustProxy: true}, "127.0.0.1:1", [2]string{"203.0.113.1, 10.1.1.1", "203.0.113.2, 10.1.1.1"}, false},
		{"untrusted peer", api.Config{TrustProxy: true}, "192.0.2.1:1", [2]string{"203.0.113.1", "203.0.113.2"}, true},
		{"garbage falls back", api.Config{TrustProxy: true}, "10.0.0.5:1", [2]string{"not-an-ip", "also-not"}, true},
		{"explicit proxies", api.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "192.0.2.1:1",
			[2]string{"203.0.113.1, 10.0.0.1", "203.0.113.2, 10.0.0.1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.GlobalRate = 1
			w := newWorld(t, cfg)
			req := func(xff string) apitest.Req {
				return apitest.Req{Method: "GET", Path: "/v1/nope", RemoteAddr: tt.remote, Header: http.Header{"X-Forwarded-For": {xff}}}
			}
			w.Do(req(tt.xff[0]))
			r := w.Do(req(tt.xff[1]))
			if want := map[bool]int{true: 429, false: 404}[tt.same]; r.Status != want {
				t.Errorf("second client got %d, want %d", r.Status, want)
			}
		})
	}
}

// TestBasicOTPReplayAndCap: on the Basic-auth routes a TOTP code works
// once, and wrong codes are counted like wrong passwords.
func TestBasicOTPReplayAndCap(t *testing.T) {
	w := newWorld(t, api.Config{})
	secret, _ := enableMFA(t, w, w.ownerToken)
	w.Clock.Advance(time.Minute)
	code, _ := totp.GenerateCode(secret, w.Clock.Now())
	list := apitest.Req{Method: "GET", Path: "/v1/access_tokens?otp=" + code, BasicUser: ownerName, BasicPass: ownerPass}
	if r := w.Do(list); r.Status != 200 {
		t.Fatalf("first use: %d %s", r.Status, r.Body)
	}
	if r := w.Do(list); r.Status != 401 {
		t.Errorf("the same code again: %d, want 401", r.Status)
	}
	list.Path = "/v1/access_tokens?otp=000000"
	for range 30 {
		w.Do(list)
	}
	w.Clock.Advance(time.Minute)
	code, _ = totp.GenerateCode(secret, w.Clock.Now())
	list.Path = "/v1/access_tokens?otp=" + code
	assertLimited(t, w.Do(list), 1740)
}
