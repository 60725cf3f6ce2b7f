package auth

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

func TestTokenErrors(t *testing.T) {
	f := newFixture(t)
	badReq := func(desc string) *Error { return &Error{Status: 400, Code: "invalid_request", Description: desc} }
	badClient := func(desc string) *Error { return &Error{Status: 400, Code: "invalid_client", Description: desc} }
	badGrant := func(desc string) *Error { return &Error{Status: 400, Code: "invalid_grant", Description: desc} }
	cc := func(id, secret, scope string) TokenRequest {
		return TokenRequest{GrantType: GrantClientCredentials, ClientID: id, ClientSecret: secret, ClientSecretSet: true, Scope: scope}
	}
	pw := func(mod func(*TokenRequest)) TokenRequest {
		r := passwordReq("particle", "particle", userEmail, userPassword)
		mod(&r)
		return r
	}
	unknownRefresh := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		req  TokenRequest
		want *Error
	}{
		{"no grant type", TokenRequest{ClientID: "particle", ClientSecretSet: true}, badReq("Invalid or missing grant_type parameter")},
		{"unknown grant type", TokenRequest{GrantType: "implicit", ClientID: "particle", ClientSecretSet: true}, ErrBadGrantType},
		{"no client id", pw(func(r *TokenRequest) { r.ClientID = "" }), badClient("Invalid or missing client_id parameter")},
		{"huge client id", pw(func(r *TokenRequest) { r.ClientID = strings.Repeat("x", 500) }), badClient("Invalid or missing client_id parameter")},
		{"no client secret", pw(func(r *TokenRequest) { r.ClientSecretSet = false; r.ClientSecret = "" }), badClient("Missing client_secret parameter")},
		{"no username", pw(func(r *TokenRequest) { r.Username = "" }), badClient(`Missing parameters. "username" and "password" are required`)},
		{"no password", pw(func(r *TokenRequest) { r.Password = "" }), badClient(`Missing parameters. "username" and "password" are required`)},
		{"wrong password", pw(func(r *TokenRequest) { r.Password = "nope" }), badGrant("User credentials are invalid")},
		{"unknown user", pw(func(r *TokenRequest) { r.Username = "nobody@example.com" }), ErrBadUserCreds},
		{"registered client, wrong secret", passwordReq(f.userClient.ID, "wrong", userEmail, userPassword), badClient("Client credentials are invalid")},
		{"product client, developer credentials", passwordReq(f.productClient.ID, f.productSecret, userEmail, userPassword), ErrBadUserCreds},
		{"product client, wrong customer password", passwordReq(f.productClient.ID, f.productSecret, customerEmail, "nope"), ErrBadUserCreds},
		{"product client, shadow customer", passwordReq(f.productClient.ID, f.productSecret, shadowEmail, "anything"), ErrBadUserCreds},
		{"negative expires_in", pw(func(r *TokenRequest) { r.ExpiresIn = ptr(int64(-1)) }), badReq(`Invalid "expires_in" parameter`)},
		{"absurd expires_in", pw(func(r *TokenRequest) { r.ExpiresIn = ptr(int64(1) << 62) }), badReq(`Invalid "expires_in" parameter`)},
		{"expires_at in the past", pw(func(r *TokenRequest) { r.ExpiresAt = ptr(f.clock.Now().Add(-time.Second)) }), badReq(`Invalid "expires_at" parameter`)},
		{"absurd expires_at", pw(func(r *TokenRequest) { r.ExpiresAt = ptr(f.clock.Now().AddDate(500, 0, 0)) }), badReq(`Invalid "expires_at" parameter`)},
		{"client credentials, unknown client", cc("particle", "particle", ""), ErrBadClient},
		{"client credentials, wrong secret", cc(f.productClient.ID, f.userSecret, ""), ErrBadClient},
		{"client credentials, customers:create client", cc(f.createOnlyClient.ID, f.createOnlySecret, ""), &Error{Status: 400, Code: "invalid_scope", Description: "The client is not allowed to request this scope"}},
		{"client credentials, customers:create client asks for a customer", cc(f.createOnlyClient.ID, f.createOnlySecret, "customer="+customerEmail), ErrInvalidScope},
		{"client credentials, unknown scope", cc(f.productClient.ID, f.productSecret, "devices:list"), ErrInvalidScope},
		{"client credentials, empty customer", cc(f.productClient.ID, f.productSecret, "customer="), ErrInvalidScope},
		{"client credentials, user client asks for a customer", cc(f.userClient.ID, f.userSecret, "customer="+customerEmail), ErrInvalidScope},
		{"client credentials, unknown customer", cc(f.productClient.ID, f.productSecret, "customer=nobody@example.com"), badGrant("Customer not found")},
		{"refresh, no token", TokenRequest{GrantType: GrantRefreshToken, ClientID: "particle", ClientSecretSet: true}, badReq(`No "refresh_token" parameter`)},
		{"refresh, unknown token", TokenRequest{GrantType: GrantRefreshToken, ClientID: "particle", ClientSecretSet: true, RefreshToken: unknownRefresh}, badGrant("Invalid refresh token")},
		{"refresh, malformed token", TokenRequest{GrantType: GrantRefreshToken, ClientID: "particle", ClientSecretSet: true, RefreshToken: "xyz"}, badGrant("Invalid refresh token")},
		{"refresh, wrong client secret", TokenRequest{GrantType: GrantRefreshToken, ClientID: f.userClient.ID, ClientSecret: "x", ClientSecretSet: true, RefreshToken: unknownRefresh}, ErrBadClient},
		{"mfa otp, nothing", TokenRequest{GrantType: GrantMFAOTP, ClientID: "particle", ClientSecretSet: true}, badReq("You must provide otp and mfa token.")},
		{"mfa otp, no otp", TokenRequest{GrantType: GrantMFAOTP, ClientID: "particle", ClientSecretSet: true, MFAToken: unknownRefresh}, ErrInvalidReqOTP},
		{"mfa otp, unknown mfa token", TokenRequest{GrantType: GrantMFAOTP, ClientID: "particle", ClientSecretSet: true, MFAToken: unknownRefresh, OTP: "123456"}, badGrant("Invalid OTP code")},
		{"recovery, nothing", TokenRequest{GrantType: GrantRecoveryCode, ClientID: "particle", ClientSecretSet: true}, badReq("You must provide recovery code and mfa token.")},
		{"recovery, unknown mfa token", TokenRequest{GrantType: GrantRecoveryCode, ClientID: "particle", ClientSecretSet: true, MFAToken: unknownRefresh, RecoveryCode: "abcde-fghij"}, badGrant("Invalid recovery code")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := f.svc.Token(f.ctx, tt.req)
			if resp != nil {
				t.Fatalf("resp = %+v; want nil", resp)
			}
			wantError(t, err, tt.want)
		})
	}
	if strings.Contains(f.logs.String(), userPassword) {
		t.Error("a password reached the log")
	}
}

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name                     string
		req                      TokenRequest
		kind, clientID, username string
	}{
		{"unregistered client, any secret", passwordReq("particle-cli", "whatever", userEmail, userPassword), store.KindUser, "particle-cli", userEmail},
		{"unregistered client, empty secret", passwordReq("CLI2", "", userEmail, userPassword), store.KindUser, "CLI2", userEmail},
		{"username case and spaces", passwordReq("particle", "particle", " DEV@Example.com", userPassword), store.KindUser, "particle", userEmail},
		{"user client", passwordReq(f.userClient.ID, f.userSecret, userEmail, userPassword), store.KindUser, f.userClient.ID, userEmail},
		{"product client logs a customer in", passwordReq(f.productClient.ID, f.productSecret, customerEmail, customerPassword), store.KindCustomer, f.productClient.ID, customerEmail},
		{"customers:create client logs a customer in", passwordReq(f.createOnlyClient.ID, f.createOnlySecret, customerEmail, customerPassword), store.KindCustomer, f.createOnlyClient.ID, customerEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.token(t, tt.req)
			if resp.TokenType != "bearer" || !ValidTokenFormat(resp.AccessToken) || !ValidTokenFormat(resp.RefreshToken) {
				t.Fatalf("resp = %+v", resp)
			}
			if resp.ExpiresIn != int64(DefaultLifetime/time.Second) || resp.Scope != "" {
				t.Errorf("expires_in, scope = %d, %q; want %d, \"\"", resp.ExpiresIn, resp.Scope, int64(DefaultLifetime/time.Second))
			}
			p := f.authenticate(t, resp.AccessToken)
			if p.Kind != tt.kind || p.ClientID != tt.clientID || p.Username != tt.username {
				t.Errorf("principal = %s %s %s; want %s %s %s", p.Kind, p.ClientID, p.Username, tt.kind, tt.clientID, tt.username)
			}
			switch tt.kind {
			case store.KindUser:
				if p.UserID != f.user.ID {
					t.Errorf("UserID = %q; want %q", p.UserID, f.user.ID)
				}
			case store.KindCustomer:
				if p.CustomerID != f.customer.ID || p.ProductID != f.product.ID {
					t.Errorf("customer, product = %q, %d; want %q, %d", p.CustomerID, p.ProductID, f.customer.ID, f.product.ID)
				}
			}
			if p.TokenHash != HashToken(resp.AccessToken) {
				t.Errorf("TokenHash = %q", p.TokenHash)
			}
			if want := f.clock.Now().Add(DefaultLifetime); p.ExpiresAt == nil || !p.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v; want %v", p.ExpiresAt, want)
			}
		})
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name      string
		client    *store.Client
		secret    string
		scope     string
		wantKind  string
		wantScope string
	}{
		{"user client acts for its owner", f.userClient, f.userSecret, "", store.KindUser, ""},
		{"product client gets a product token", f.productClient, f.productSecret, "", store.KindProduct, ""},
		{"explicit full scope", f.productClient, f.productSecret, ScopeFull, store.KindProduct, ""},
		{"customer scope", f.productClient, f.productSecret, "customer=" + customerEmail, store.KindCustomer, "customer=" + customerEmail},
		{"shadow customer scope", f.productClient, f.productSecret, "customer=" + shadowEmail, store.KindCustomer, "customer=" + shadowEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.token(t, TokenRequest{GrantType: GrantClientCredentials, ClientID: tt.client.ID,
				ClientSecret: tt.secret, ClientSecretSet: true, Scope: tt.scope, ExpiresIn: ptr(int64(3600))})
			if resp.Scope != tt.wantScope || resp.ExpiresIn != 3600 || resp.RefreshToken == "" {
				t.Errorf("resp = %+v; want scope %q, expires_in 3600, a refresh token", resp, tt.wantScope)
			}
			p := f.authenticate(t, resp.AccessToken)
			if p.Kind != tt.wantKind || p.Scope != tt.wantScope || p.ClientID != tt.client.ID {
				t.Fatalf("principal = %+v; want kind %s scope %q", p, tt.wantKind, tt.wantScope)
			}
			switch tt.wantKind {
			case store.KindUser:
				if p.UserID != f.user.ID || p.Username != userEmail {
					t.Errorf("user = %q %q", p.UserID, p.Username)
				}
			case store.KindProduct:
				if p.ProductID != f.product.ID || p.UserID != "" || p.CustomerID != "" {
					t.Errorf("product principal = %+v", p)
				}
			case store.KindCustomer:
				if p.ProductID != f.product.ID || p.CustomerID == "" || "customer="+p.Username != tt.wantScope {
					t.Errorf("customer principal = %+v", p)
				}
			}
		})
	}
	// The second grant of a client is served from the secret cache; a
	// wrong secret must still fail after a success.
	_, err := f.svc.Token(f.ctx, TokenRequest{GrantType: GrantClientCredentials, ClientID: f.productClient.ID,
		ClientSecret: f.productSecret + "x", ClientSecretSet: true})
	wantError(t, err, ErrBadClient)
}

func TestLifetimes(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	tests := []struct {
		name        string
		expiresIn   *int64
		expiresAt   *time.Time
		wantIn      int64
		wantRefresh bool
	}{
		{"default", nil, nil, 7776000, true},
		{"expires_in", ptr(int64(3600)), nil, 3600, true},
		{"never", ptr(int64(0)), nil, 0, false},
		{"expires_at", nil, ptr(now.Add(2 * time.Hour)), 7200, true},
		{"expires_at wins", ptr(int64(0)), ptr(now.Add(90 * time.Second)), 90, true},
		{"expires_at rounds up", nil, ptr(now.Add(1500 * time.Millisecond)), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := passwordReq("particle", "particle", userEmail, userPassword)
			req.ExpiresIn, req.ExpiresAt = tt.expiresIn, tt.expiresAt
			resp := f.token(t, req)
			if resp.ExpiresIn != tt.wantIn || (resp.RefreshToken != "") != tt.wantRefresh {
				t.Errorf("expires_in = %d, refresh %q; want %d, refresh %v", resp.ExpiresIn, resp.RefreshToken, tt.wantIn, tt.wantRefresh)
			}
			p := f.authenticate(t, resp.AccessToken)
			if (p.ExpiresAt == nil) != (tt.wantIn == 0) {
				t.Errorf("ExpiresAt = %v", p.ExpiresAt)
			}
		})
	}
}

func TestNeverExpiringToken(t *testing.T) {
	f := newFixture(t)
	req := passwordReq("particle", "particle", userEmail, userPassword)
	req.ExpiresIn = ptr(int64(0))
	resp := f.token(t, req)
	f.clock.Advance(50 * 365 * 24 * time.Hour)
	if p := f.authenticate(t, resp.AccessToken); p.ExpiresAt != nil {
		t.Errorf("ExpiresAt = %v; want nil", p.ExpiresAt)
	}
}

func TestExpiry(t *testing.T) {
	// A long cache TTL keeps the entry cached past the token's expiry: the
	// expiry must be checked on hits too.
	f := newFixture(t, func(c *Config) { c.CacheTTL = time.Hour })
	req := passwordReq("particle", "particle", userEmail, userPassword)
	req.ExpiresIn = ptr(int64(60))
	resp := f.token(t, req)
	f.authenticate(t, resp.AccessToken)
	f.clock.Advance(59 * time.Second)
	f.authenticate(t, resp.AccessToken)
	f.clock.Advance(time.Second)
	_, err := f.svc.Authenticate(f.ctx, resp.AccessToken)
	wantError(t, err, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "The access token provided has expired."})
	if n := f.st.tokenByHash.Load(); n != 1 {
		t.Errorf("TokenByHash calls = %d; want 1 (the later checks are cache hits)", n)
	}

	// Without the cache the store's copy is checked the same way.
	g := newFixture(t, func(c *Config) { c.CacheTTL = -1 })
	resp = g.token(t, req)
	g.clock.Advance(time.Minute)
	_, err = g.svc.Authenticate(g.ctx, resp.AccessToken)
	wantError(t, err, ErrTokenExpired)
}

func TestRefreshRotation(t *testing.T) {
	f := newFixture(t)
	first := f.login(t)
	refresh := func(clientID, secret, rt string) (*TokenResponse, error) {
		return f.svc.Token(f.ctx, TokenRequest{GrantType: GrantRefreshToken, ClientID: clientID, ClientSecret: secret,
			ClientSecretSet: true, RefreshToken: rt})
	}

	// Another client id cannot use it, and the attempt does not burn it.
	_, err := refresh("particle", "particle-cli", first.RefreshToken)
	wantError(t, err, errInvalidRefresh)

	second, err := refresh("particle-cli", "anything", first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken || second.RefreshToken == "" {
		t.Fatalf("refresh returned old tokens: %+v", second)
	}
	if second.ExpiresIn != int64(DefaultLifetime/time.Second) {
		t.Errorf("expires_in = %d", second.ExpiresIn)
	}
	p := f.authenticate(t, second.AccessToken)
	if p.Kind != store.KindUser || p.UserID != f.user.ID || p.ClientID != "particle-cli" {
		t.Errorf("principal = %+v", p)
	}
	// The old access token stays valid until it expires; the old refresh
	// token is spent.
	f.authenticate(t, first.AccessToken)
	_, err = refresh("particle-cli", "anything", first.RefreshToken)
	wantError(t, err, errInvalidRefresh)

	// A requested lifetime applies to the new pair.
	third, err := f.svc.Token(f.ctx, TokenRequest{GrantType: GrantRefreshToken, ClientID: "particle-cli",
		ClientSecretSet: true, RefreshToken: second.RefreshToken, ExpiresIn: ptr(int64(120))})
	if err != nil || third.ExpiresIn != 120 {
		t.Fatalf("refresh with expires_in: %+v, %v", third, err)
	}

	// A refresh token outlives its access token by RefreshGrace, then dies.
	f.clock.Advance(120*time.Second + RefreshGrace - time.Second)
	if _, err := f.svc.Authenticate(f.ctx, third.AccessToken); err != ErrTokenExpired {
		t.Errorf("Authenticate(expired) = %v", err)
	}
	fourth, err := refresh("particle-cli", "", third.RefreshToken)
	if err != nil {
		t.Fatalf("refresh within grace: %v", err)
	}
	f.clock.Advance(DefaultLifetime + RefreshGrace)
	_, err = refresh("particle-cli", "", fourth.RefreshToken)
	wantError(t, err, &Error{Status: 400, Code: "invalid_grant", Description: "Refresh token has expired"})
}

func TestRefreshRegisteredClients(t *testing.T) {
	f := newFixture(t)
	cust := f.token(t, passwordReq(f.productClient.ID, f.productSecret, customerEmail, customerPassword))
	refresh := func(clientID, secret, rt string) (*TokenResponse, error) {
		return f.svc.Token(f.ctx, TokenRequest{GrantType: GrantRefreshToken, ClientID: clientID, ClientSecret: secret,
			ClientSecretSet: true, RefreshToken: rt})
	}
	_, err := refresh(f.productClient.ID, "wrong", cust.RefreshToken)
	wantError(t, err, ErrBadClient)
	_, err = refresh(f.userClient.ID, f.userSecret, cust.RefreshToken)
	wantError(t, err, errInvalidRefresh)
	next, err := refresh(f.productClient.ID, f.productSecret, cust.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	p := f.authenticate(t, next.AccessToken)
	if p.Kind != store.KindCustomer || p.CustomerID != f.customer.ID || p.ProductID != f.product.ID {
		t.Errorf("principal = %+v", p)
	}

	// Once the client is gone its id is unregistered, but its customer
	// tokens still cannot be refreshed without a secret.
	cc := f.token(t, TokenRequest{GrantType: GrantClientCredentials, ClientID: f.productClient.ID,
		ClientSecret: f.productSecret, ClientSecretSet: true, Scope: "customer=" + customerEmail})
	if err := f.st.DeleteClient(f.ctx, f.productClient.ID); err != nil {
		t.Fatal(err)
	}
	_, err = refresh(f.productClient.ID, "guess", cc.RefreshToken)
	wantError(t, err, errInvalidRefresh)
}

func TestRefreshConcurrentUse(t *testing.T) {
	f := newFixture(t)
	first := f.login(t)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		errs []error
	)
	for range n {
		wg.Go(func() {
			_, err := f.svc.Token(f.ctx, TokenRequest{GrantType: GrantRefreshToken, ClientID: "particle-cli",
				ClientSecretSet: true, RefreshToken: first.RefreshToken})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d refreshes succeeded; want exactly 1 (errors: %v)", ok, errs)
	}
	for _, err := range errs {
		wantError(t, err, errInvalidRefresh)
	}
}

func TestIssueToken(t *testing.T) {
	f := newFixture(t)
	resp, err := f.svc.IssueToken(f.ctx, Issue{Kind: store.KindCustomer, CustomerID: f.customer.ID, ProductID: f.product.ID,
		ClientID: f.productClient.ID, Lifetime: DefaultLifetime, Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.RefreshToken == "" || resp.ExpiresIn != int64(DefaultLifetime/time.Second) {
		t.Errorf("resp = %+v", resp)
	}
	if p := f.authenticate(t, resp.AccessToken); p.Kind != store.KindCustomer || p.Username != customerEmail {
		t.Errorf("principal = %+v", p)
	}

	resp, err = f.svc.IssueToken(f.ctx, Issue{Kind: store.KindUser, UserID: f.user.ID, ClientID: "api-user", Scope: "devices:list", Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.RefreshToken != "" || resp.ExpiresIn != 0 || resp.Scope != "devices:list" {
		t.Errorf("never-expiring resp = %+v", resp)
	}

	bad := []Issue{
		{Kind: store.KindUser},
		{Kind: store.KindCustomer, CustomerID: f.customer.ID},
		{Kind: store.KindProduct},
		{Kind: "robot", UserID: f.user.ID},
		{Kind: store.KindUser, UserID: f.user.ID, Lifetime: -time.Second},
	}
	for _, is := range bad {
		if _, err := f.svc.IssueToken(f.ctx, is); err == nil {
			t.Errorf("IssueToken(%+v) succeeded", is)
		}
	}
}

func TestCheckClient(t *testing.T) {
	f := newFixture(t)
	if c, err := f.svc.CheckClient(f.ctx, f.userClient.ID, f.userSecret); err != nil || c.ID != f.userClient.ID {
		t.Fatalf("CheckClient = %v, %v", c, err)
	}
	for _, tc := range []struct{ id, secret string }{
		{f.userClient.ID, f.productSecret},
		{f.userClient.ID, ""},
		{"nope-0000", f.userSecret},
		{"", ""},
	} {
		if _, err := f.svc.CheckClient(f.ctx, tc.id, tc.secret); err != ErrBadClient {
			t.Errorf("CheckClient(%q, %q) = %v; want ErrBadClient", tc.id, tc.secret, err)
		}
	}
	if !f.svc.secrets.ok(f.userClient.ID, f.userSecret, f.userClient.SecretHash, f.clock.Now()) {
		t.Error("a verified secret was not cached")
	}
	if err := f.svc.RevokeClient(f.ctx, f.userClient.ID); err != nil {
		t.Fatal(err)
	}
	if f.svc.secrets.ok(f.userClient.ID, f.userSecret, f.userClient.SecretHash, f.clock.Now()) {
		t.Error("RevokeClient kept the cached secret")
	}
	// A cached verification counts only for the hash it was made against.
	f.svc.secrets.add("x-1", "s", "hash-a", f.clock.Now())
	if f.svc.secrets.ok("x-1", "s", "hash-b", f.clock.Now()) {
		t.Error("cached secret matched a different hash")
	}
}

func TestCheckUserPasswordSpendsHashForUnknownUsers(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.CheckUserPassword(f.ctx, "ghost@example.com", "pw"); err != ErrBadUserCreds {
		t.Fatalf("err = %v", err)
	}
	p, err := parsePHC(f.svc.dummyHash)
	if err != nil {
		t.Fatalf("no dummy hash was computed: %v", err)
	}
	h := TestHasher()
	if p.time != h.Time || p.memory != h.MemoryKiB || p.threads != h.Threads {
		t.Errorf("dummy hash params = %+v; want the configured hasher's", p)
	}
	u, err := f.svc.CheckUserPassword(f.ctx, userEmail, userPassword)
	if err != nil || u.ID != f.user.ID {
		t.Fatalf("CheckUserPassword = %v, %v", u, err)
	}
}
