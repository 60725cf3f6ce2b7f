package auth

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

func TestAuthenticateCache(t *testing.T) {
	f := newFixture(t)
	resp := f.login(t)
	for range 3 {
		if p := f.authenticate(t, resp.AccessToken); p.UserID != f.user.ID || p.Username != userEmail {
			t.Fatalf("principal = %+v", p)
		}
	}
	if n := f.st.tokenByHash.Load(); n != 1 {
		t.Fatalf("TokenByHash calls = %d; want 1", n)
	}
	// Callers cannot corrupt the cached Principal.
	p := f.authenticate(t, resp.AccessToken)
	p.UserID = "mallory"
	if p := f.authenticate(t, resp.AccessToken); p.UserID != f.user.ID {
		t.Fatalf("cached principal was modified through a returned copy")
	}
	// The entry lives CacheTTL.
	f.clock.Advance(defaultCacheTTL)
	f.authenticate(t, resp.AccessToken)
	if n := f.st.tokenByHash.Load(); n != 2 {
		t.Fatalf("TokenByHash calls after the TTL = %d; want 2", n)
	}
}

func TestAuthenticateFormat(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		token string
		want  *Error
	}{
		{"empty", "", ErrTokenMissing},
		{"short", "abc123", ErrTokenInvalid},
		{"upper case", strings.Repeat("AB", 20), ErrTokenInvalid},
		{"41 chars", strings.Repeat("a", 41), ErrTokenInvalid},
		{"non-hex", strings.Repeat("g", 40), ErrTokenInvalid},
		{"null", "null", ErrTokenInvalid},
		{"well-formed but unknown", strings.Repeat("0", 40), ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Authenticate(f.ctx, tt.token)
			wantError(t, err, tt.want)
		})
	}
	// Only the well-formed token reached the store.
	if n := f.st.tokenByHash.Load(); n != 1 {
		t.Errorf("TokenByHash calls = %d; want 1", n)
	}
}

func TestValidTokenFormat(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{strings.Repeat("0123456789abcdef", 3)[:40], true},
		{strings.Repeat("f", 40), true},
		{strings.Repeat("f", 39), false},
		{strings.Repeat("F", 40), false},
		{strings.Repeat("f", 39) + " ", false},
		{strings.Repeat("f", 39) + "\x00", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidTokenFormat(tt.in); got != tt.want {
			t.Errorf("ValidTokenFormat(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
	tok, err := NewToken()
	if err != nil || !ValidTokenFormat(tok) {
		t.Errorf("NewToken() = %q, %v", tok, err)
	}
	if tok2, _ := NewToken(); tok2 == tok {
		t.Error("NewToken repeated itself")
	}
	const want = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3" // sha256("123")
	if got := HashToken("123"); got != want {
		t.Errorf("HashToken(123) = %s; want %s", got, want)
	}
}

func TestRevokeDropsCache(t *testing.T) {
	f := newFixture(t)
	custLogin := func() string {
		return f.token(t, passwordReq(f.productClient.ID, f.productSecret, customerEmail, customerPassword)).AccessToken
	}
	clientToken := func() string {
		return f.token(t, TokenRequest{GrantType: GrantClientCredentials, ClientID: f.userClient.ID,
			ClientSecret: f.userSecret, ClientSecretSet: true}).AccessToken
	}
	tests := []struct {
		name   string
		mint   func() string
		revoke func(token string) error
	}{
		{"RevokeToken", func() string { return f.login(t).AccessToken }, func(tok string) error { return f.svc.RevokeToken(f.ctx, tok) }},
		{"RevokeHash", func() string { return f.login(t).AccessToken }, func(tok string) error { return f.svc.RevokeHash(f.ctx, HashToken(tok)) }},
		{"RevokeUser", func() string { return f.login(t).AccessToken }, func(string) error { return f.svc.RevokeUser(f.ctx, f.user.ID) }},
		{"RevokeCustomer", custLogin, func(string) error { return f.svc.RevokeCustomer(f.ctx, f.customer.ID) }},
		{"RevokeClient", clientToken, func(string) error { return f.svc.RevokeClient(f.ctx, f.userClient.ID) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.mint()
			f.authenticate(t, tok)
			f.authenticate(t, tok) // a cache hit
			if err := tt.revoke(tok); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			before := f.st.tokenByHash.Load()
			if _, err := f.svc.Authenticate(f.ctx, tok); err != ErrTokenInvalid {
				t.Fatalf("Authenticate after revoke = %v; want ErrTokenInvalid", err)
			}
			if f.st.tokenByHash.Load() != before+1 {
				t.Error("the revoked token was answered from the cache")
			}
		})
	}
	if err := f.svc.RevokeToken(f.ctx, strings.Repeat("1", 40)); !strings.Contains(err.Error(), store.ErrNotFound.Error()) {
		t.Errorf("RevokeToken(unknown) = %v; want ErrNotFound", err)
	}
	if err := f.svc.RevokeToken(f.ctx, "bad"); err == nil {
		t.Error("RevokeToken(malformed) succeeded")
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CacheTTL = -1 })
	resp := f.login(t)
	for range 3 {
		f.authenticate(t, resp.AccessToken)
	}
	if n := f.st.tokenByHash.Load(); n != 3 {
		t.Errorf("TokenByHash calls = %d; want 3 without a cache", n)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(time.Minute, 8)
	now := time.Unix(1000, 0)
	for i := range 100 {
		c.put(sha256.Sum256([]byte{byte(i)}), &Principal{UserID: "u"}, now, c.generation())
		if c.len() > 8 {
			t.Fatalf("cache holds %d entries; bound is 8", c.len())
		}
	}
	// The newest entry survives insertion.
	if _, ok := c.get(sha256.Sum256([]byte{99}), now); !ok {
		t.Error("the entry just put is missing")
	}
	// Stale entries go first when room is needed.
	later := now.Add(2 * time.Minute)
	c.put(sha256.Sum256([]byte("fresh")), &Principal{}, later, c.generation())
	if c.len() != 1 {
		t.Errorf("len = %d after evicting stale entries; want 1", c.len())
	}
}

func TestTokenCacheRevokeRace(t *testing.T) {
	// A load that started before a drop must not insert what it read.
	c := newTokenCache(time.Minute, 8)
	key := sha256.Sum256([]byte("tok"))
	now := time.Unix(1000, 0)
	gen := c.generation()
	c.drop(HashToken("tok"))
	c.put(key, &Principal{}, now, gen)
	if _, ok := c.get(key, now); ok {
		t.Error("a stale load was cached after a drop")
	}
	c.put(key, &Principal{}, now, c.generation())
	c.drop(HashToken("tok"), "not hex", "")
	if _, ok := c.get(key, now); ok {
		t.Error("drop left the entry")
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	f := newFixture(b)
	tok := f.login(b).AccessToken
	f.authenticate(b, tok)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Authenticate(f.ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := f.st.tokenByHash.Load(); n != 1 {
		b.Fatalf("TokenByHash calls = %d; want 1", n)
	}
}
