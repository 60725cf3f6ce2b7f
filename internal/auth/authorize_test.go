package auth

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const testRedirect = "https://app.example.com/cb"

// webClients adds a user web client and a product web client to f and
// returns their secrets.
func webClients(t *testing.T, f *fixture) (userWeb, productWeb *store.Client, userSecret string) {
	t.Helper()
	mk := func(id, owner string, product int64) (*store.Client, string) {
		secret, h, err := f.svc.NewClientSecret()
		if err != nil {
			t.Fatal(err)
		}
		c := &store.Client{ID: id, Name: id, Type: store.ClientWeb, RedirectURI: testRedirect, SecretHash: h, OwnerID: owner, ProductID: product}
		if err := f.st.CreateClient(f.ctx, c); err != nil {
			t.Fatal(err)
		}
		return c, secret
	}
	userWeb, userSecret = mk("web-0001", f.user.ID, 0)
	productWeb, _ = mk("shop-0001", "", f.product.ID)
	return userWeb, productWeb, userSecret
}

// codeFor runs the sign-in of username at client through the service and
// returns the code and the verifier it is bound to.
func codeFor(t *testing.T, f *fixture, client *store.Client, username, password string) (code, verifier string) {
	t.Helper()
	verifier = strings.Repeat("v", 20) + strings.Repeat("Z", 23) + client.ID
	q := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {testRedirect},
		"state": {"s"}, "code_challenge": {S256(verifier)}, "code_challenge_method": {"S256"}}
	a, err := f.svc.CheckAuthorize(f.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.svc.AuthorizeLogin(f.ctx, a, "cookie-1", username, password)
	if err != nil || in.Ticket == "" {
		t.Fatalf("AuthorizeLogin = %+v, %v", in, err)
	}
	to, err := f.svc.Approve(f.ctx, a, "cookie-1", in.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(to)
	if err != nil || u.Query().Get("state") != "s" {
		t.Fatalf("redirect %q, %v", to, err)
	}
	return u.Query().Get("code"), verifier
}

func codeReq(client, code, verifier string) TokenRequest {
	return TokenRequest{GrantType: GrantAuthorizationCode, ClientID: client, Code: code, RedirectURI: testRedirect, CodeVerifier: verifier}
}

func TestAuthorizationCodeGrant(t *testing.T) {
	f := newFixture(t)
	userWeb, productWeb, userSecret := webClients(t, f)

	t.Run("user, public", func(t *testing.T) {
		code, v := codeFor(t, f, userWeb, userEmail, userPassword)
		resp := f.token(t, codeReq(userWeb.ID, code, v))
		if resp.RefreshToken != "" || resp.ExpiresIn != int64(DefaultLifetime/time.Second) {
			t.Errorf("public exchange = %+v; want no refresh token, the default lifetime", resp)
		}
		p, err := f.svc.Authenticate(f.ctx, resp.AccessToken)
		if err != nil || p.Kind != store.KindUser || p.UserID != f.user.ID || p.ClientID != userWeb.ID {
			t.Fatalf("principal %+v, %v", p, err)
		}
	})
	t.Run("customer, product client", func(t *testing.T) {
		code, v := codeFor(t, f, productWeb, customerEmail, customerPassword)
		p, err := f.svc.Authenticate(f.ctx, f.token(t, codeReq(productWeb.ID, code, v)).AccessToken)
		if err != nil || p.Kind != store.KindCustomer || p.CustomerID != f.customer.ID || p.ProductID != f.product.ID {
			t.Fatalf("principal %+v, %v", p, err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name string
			mod  func(r *TokenRequest)
			want *Error
		}{
			{"no code", func(r *TokenRequest) { r.Code = "" }, errMissingCode},
			{"no verifier", func(r *TokenRequest) { r.CodeVerifier = "" }, errMissingVerifier},
			{"no redirect", func(r *TokenRequest) { r.RedirectURI = "" }, errMissingRedirect},
			{"malformed code", func(r *TokenRequest) { r.Code = "x" }, errBadCode},
			{"unknown client", func(r *TokenRequest) { r.ClientID = "nope" }, ErrBadClient},
			{"wrong secret", func(r *TokenRequest) { r.ClientSecret, r.ClientSecretSet = "x", true }, ErrBadClient},
			{"other client", func(r *TokenRequest) { r.ClientID = productWeb.ID }, errCodeClient},
			{"other redirect", func(r *TokenRequest) { r.RedirectURI = testRedirect + "?" }, errCodeRedirect},
			{"wrong verifier", func(r *TokenRequest) { r.CodeVerifier = strings.Repeat("a", 43) }, errBadVerifier},
			{"verifier with bad characters", func(r *TokenRequest) { r.CodeVerifier += "+" }, errBadVerifier},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, v := codeFor(t, f, userWeb, userEmail, userPassword)
				req := codeReq(userWeb.ID, code, v)
				tt.mod(&req)
				resp, err := f.svc.Token(f.ctx, req)
				if resp != nil {
					t.Fatalf("resp = %+v", resp)
				}
				wantError(t, err, tt.want)
			})
		}
	})
	t.Run("expired", func(t *testing.T) {
		code, v := codeFor(t, f, userWeb, userEmail, userPassword)
		f.clock.Advance(AuthCodeLifetime)
		_, err := f.svc.Token(f.ctx, codeReq(userWeb.ID, code, v))
		wantError(t, err, errExpiredCode)
	})
	t.Run("deleted user", func(t *testing.T) {
		code, v := codeFor(t, f, productWeb, customerEmail, customerPassword)
		if err := f.st.DeleteCustomer(f.ctx, f.customer.ID); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Token(f.ctx, codeReq(productWeb.ID, code, v))
		wantError(t, err, errBadCode)
	})
	t.Run("replay revokes refreshed tokens too", func(t *testing.T) {
		code, v := codeFor(t, f, userWeb, userEmail, userPassword)
		req := codeReq(userWeb.ID, code, v)
		req.ClientSecret, req.ClientSecretSet = userSecret, true
		first := f.token(t, req)
		if first.RefreshToken == "" {
			t.Fatal("a confidential client got no refresh token")
		}
		refreshed := f.token(t, TokenRequest{GrantType: GrantRefreshToken, ClientID: userWeb.ID, ClientSecret: userSecret,
			ClientSecretSet: true, RefreshToken: first.RefreshToken})
		other := f.token(t, passwordReq("particle", "particle", userEmail, userPassword))
		_, err := f.svc.Token(f.ctx, req)
		wantError(t, err, errUsedCode)
		for name, tok := range map[string]string{"exchanged": first.AccessToken, "refreshed": refreshed.AccessToken} {
			if _, err := f.svc.Authenticate(f.ctx, tok); !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("%s token after the replay: %v; want revoked", name, err)
			}
		}
		if _, err := f.svc.Authenticate(f.ctx, other.AccessToken); err != nil {
			t.Errorf("another client's token was revoked too: %v", err)
		}
	})
}

func TestAuthorizationCodeConcurrentExchange(t *testing.T) {
	f := newFixture(t)
	userWeb, _, _ := webClients(t, f)
	code, v := codeFor(t, f, userWeb, userEmail, userPassword)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.svc.Token(f.ctx, codeReq(userWeb.ID, code, v))
			mu.Lock()
			defer mu.Unlock()
			if err == nil && resp.AccessToken != "" {
				wins++
			} else if !errors.Is(err, errUsedCode) {
				t.Errorf("loser: %v; want %v", err, errUsedCode)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d exchanges of one code succeeded; want 1", wins)
	}
}

func TestFormTokens(t *testing.T) {
	f := newFixture(t)
	tok := f.svc.FormToken("cookie", "login")
	for _, tt := range []struct {
		binding, form, token string
		ok                   bool
	}{
		{"cookie", "login", tok, true},
		{"cookie", "consent", tok, false},
		{"other", "login", tok, false},
		{"", "login", f.svc.FormToken("", "login"), false},
		{"cookie", "login", "", false},
		{"cookie", "login", tok[:len(tok)-1], false},
	} {
		if got := f.svc.CheckFormToken(tt.binding, tt.form, tt.token); got != tt.ok {
			t.Errorf("CheckFormToken(%q, %q, %q) = %v; want %v", tt.binding, tt.form, tt.token, got, tt.ok)
		}
	}
	noKey := newFixture(t, func(c *Config) { c.SecretKey = nil })
	if noKey.svc.CheckFormToken("cookie", "login", noKey.svc.FormToken("cookie", "login")) {
		t.Error("form tokens accepted without a secret key")
	}
	_, err := noKey.svc.CheckAuthorize(noKey.ctx, url.Values{"client_id": {"x"}})
	var ae *AuthorizeError
	if !errors.As(err, &ae) || ae.Code != "server_error" || ae.Redirect {
		t.Errorf("CheckAuthorize without a key: %v", err)
	}
}

func TestAuthorizeTicket(t *testing.T) {
	f := newFixture(t)
	userWeb, productWeb, _ := webClients(t, f)
	_, v := codeFor(t, f, userWeb, userEmail, userPassword)
	q := url.Values{"response_type": {"code"}, "client_id": {userWeb.ID}, "code_challenge": {S256(v)}, "code_challenge_method": {"S256"}}
	a, err := f.svc.CheckAuthorize(f.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.svc.AuthorizeLogin(f.ctx, a, "cookie-1", userEmail, userPassword)
	if err != nil {
		t.Fatal(err)
	}
	q2 := url.Values{}
	for k, vs := range q {
		q2[k] = vs
	}
	q2.Set("client_id", productWeb.ID)
	b, err := f.svc.CheckAuthorize(f.ctx, q2)
	if err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{
		"other cookie": func() error { _, err := f.svc.Approve(f.ctx, a, "cookie-2", in.Ticket, nil); return err },
		"other client": func() error { _, err := f.svc.Approve(f.ctx, b, "cookie-1", in.Ticket, nil); return err },
		"tampered": func() error {
			_, err := f.svc.Approve(f.ctx, a, "cookie-1", in.Ticket[:len(in.Ticket)-2]+"AA", nil)
			return err
		},
		"not base64url": func() error { _, err := f.svc.Approve(f.ctx, a, "cookie-1", "!!", nil); return err },
		"expired": func() error {
			f.clock.Advance(AuthorizeTicketLifetime)
			_, err := f.svc.Approve(f.ctx, a, "cookie-1", in.Ticket, nil)
			return err
		},
	} {
		if err := try(); !errors.Is(err, ErrSignInExpired) {
			t.Errorf("%s: %v; want ErrSignInExpired", name, err)
		}
	}
}

// BenchmarkAuthorizationCode measures one code's life after the password:
// consent (a sealed ticket opened, the code stored) and its exchange (the
// code used, the token minted and recorded), on SQLite.
func BenchmarkAuthorizationCode(b *testing.B) {
	f := newFixture(b)
	_, h, err := f.svc.NewClientSecret()
	if err != nil {
		b.Fatal(err)
	}
	c := &store.Client{ID: "web-0001", Name: "web", Type: store.ClientWeb, RedirectURI: testRedirect, SecretHash: h, OwnerID: f.user.ID}
	if err := f.st.CreateClient(f.ctx, c); err != nil {
		b.Fatal(err)
	}
	verifier := strings.Repeat("v", 43)
	a, err := f.svc.CheckAuthorize(f.ctx, url.Values{"response_type": {"code"}, "client_id": {c.ID},
		"code_challenge": {S256(verifier)}, "code_challenge_method": {"S256"}})
	if err != nil {
		b.Fatal(err)
	}
	in, err := f.svc.AuthorizeLogin(f.ctx, a, "cookie", userEmail, userPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		to, err := f.svc.Approve(f.ctx, a, "cookie", in.Ticket, nil)
		if err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(to)
		if _, err := f.svc.Token(f.ctx, codeReq(c.ID, u.Query().Get("code"), verifier)); err != nil {
			b.Fatal(err)
		}
	}
}
