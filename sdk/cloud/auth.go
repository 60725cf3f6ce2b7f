package cloud

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Token is an answer of the token endpoint, POST /oauth/token.
type Token struct {
	// TokenType is "bearer".
	TokenType string `json:"token_type"`
	// AccessToken is the token to send.
	AccessToken string `json:"access_token"`
	// ExpiresIn is the lifetime in seconds, 0 meaning never.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshToken, when not empty, gives a new pair through Refresh.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the token's scope when the server names it (the browser
	// sign-in's tokens: exactly what the user granted).
	Scope string `json:"scope,omitempty"`
}

// TokenOptions are the optional parameters of the token endpoint.
type TokenOptions struct {
	// ClientID and ClientSecret name the OAuth client (sent as HTTP
	// Basic); empty means DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// ExpiresIn, when not nil, asks for this lifetime; 0 means a token
	// that never expires (and gets no refresh token).
	ExpiresIn *time.Duration
}

// credentials returns the client ID and secret of o, or the defaults.
func (o *TokenOptions) credentials() (id, secret string) {
	if o == nil || o.ClientID == "" {
		return DefaultClientID, DefaultClientSecret
	}
	return o.ClientID, o.ClientSecret
}

// tokenGrant posts form to /oauth/token with o's client and lifetime.
func (c *Client) tokenGrant(ctx context.Context, form url.Values, o *TokenOptions) (*Token, error) {
	if o != nil && o.ExpiresIn != nil {
		form.Set("expires_in", strconv.FormatInt(int64(*o.ExpiresIn/time.Second), 10))
	}
	id, secret := o.credentials()
	var t Token
	err := c.do(ctx, call{method: "POST", path: "/oauth/token", form: form, basic: [2]string{id, secret}}, &t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Login is the password grant: a user's (or, with a product's client, a
// customer's) username and password for a token. An account with
// two-step authentication answers an error for which IsMFARequired
// returns the mfa_token to pass to LoginMFA.
func (c *Client) Login(ctx context.Context, username, password string, o *TokenOptions) (*Token, error) {
	return c.tokenGrant(ctx, url.Values{"grant_type": {"password"},
		"username": {username}, "password": {password}}, o)
}

// LoginMFA finishes a login interrupted by mfa_required with the one-time
// password otp of the account's authenticator app.
func (c *Client) LoginMFA(ctx context.Context, mfaToken, otp string, o *TokenOptions) (*Token, error) {
	return c.tokenGrant(ctx, url.Values{"grant_type": {"urn:custom:mfa-otp"},
		"mfa_token": {mfaToken}, "otp": {otp}}, o)
}

// Refresh exchanges a refresh token for a new pair; o must name the client
// that got it. The used refresh token is revoked.
func (c *Client) Refresh(ctx context.Context, refreshToken string, o *TokenOptions) (*Token, error) {
	return c.tokenGrant(ctx, url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {refreshToken}}, o)
}

// ClientCredentials is the client_credentials grant of a product's OAuth
// client (o must name it): a product token, or with scope
// "customer=EMAIL" a token of that customer.
func (c *Client) ClientCredentials(ctx context.Context, scope string, o *TokenOptions) (*Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return c.tokenGrant(ctx, form, o)
}

// TokenInfo is one entry of ListTokens: the token's hash prefix, not the
// token itself, which the server does not store.
type TokenInfo struct {
	// Token is the first characters of the token's hash.
	Token string `json:"token"`
	// ExpiresAt is the ISO-8601 expiry, nil for never.
	ExpiresAt *string `json:"expires_at"`
	// Client is the OAuth client that got the token.
	Client string `json:"client"`
}

// ListTokens is GET /v1/access_tokens: the active tokens of the user
// whose username and password are given (HTTP Basic).
func (c *Client) ListTokens(ctx context.Context, username, password string) ([]TokenInfo, error) {
	var out []TokenInfo
	err := c.do(ctx, call{method: "GET", path: "/v1/access_tokens", basic: [2]string{username, password}}, &out)
	return out, err
}

// CurrentToken is the answer of GetCurrentToken.
type CurrentToken struct {
	// ExpiresAt is the ISO-8601 expiry, nil for never.
	ExpiresAt *string `json:"expires_at"`
	// Client is the OAuth client that got the token.
	Client string `json:"client"`
	// ClientID is the same client's ID.
	ClientID string `json:"client_id"`
	// Scopes are the token's scopes (API users).
	Scopes []string `json:"scopes"`
	// Orgs are the organizations of the token (always empty in Wick).
	Orgs []string `json:"orgs"`
}

// GetCurrentToken is GET /v1/access_tokens/current: what the server knows
// of the calling token.
func (c *Client) GetCurrentToken(ctx context.Context) (*CurrentToken, error) {
	var out CurrentToken
	if err := c.do(ctx, call{method: "GET", path: "/v1/access_tokens/current"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteToken is DELETE /v1/access_tokens/{token}: it revokes token, whose
// possession is the proof.
func (c *Client) DeleteToken(ctx context.Context, token string) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/access_tokens/" + pathEscape(token), noAuth: true}, nil)
}

// Logout is DELETE /v1/access_tokens/current: it revokes the calling
// token.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/access_tokens/current"}, nil)
}

// DeleteAllTokens is DELETE /v1/access_tokens: every token of the caller,
// the calling one included.
func (c *Client) DeleteAllTokens(ctx context.Context) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/access_tokens"}, nil)
}

// MFAEnrollment is the answer of BeginMFA.
type MFAEnrollment struct {
	// MFAToken identifies the enrolment; ConfirmMFA sends it back.
	MFAToken string `json:"mfa_token"`
	// QRURL is the otpauth:// URL an authenticator app scans.
	QRURL string `json:"qr_url"`
	// Secret is the TOTP secret (base32) for manual entry.
	Secret string `json:"secret"`
}

// BeginMFA is GET /v1/user/mfa-enable: it starts turning on two-step
// authentication for the calling user.
func (c *Client) BeginMFA(ctx context.Context) (*MFAEnrollment, error) {
	var out MFAEnrollment
	if err := c.do(ctx, call{method: "GET", path: "/v1/user/mfa-enable"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfirmMFA is POST /v1/user/mfa-enable: a first one-time password
// turns two-step authentication on. It returns the recovery codes.
func (c *Client) ConfirmMFA(ctx context.Context, mfaToken, otp string) ([]string, error) {
	var out struct {
		Tokens []string `json:"tokens"`
	}
	err := c.do(ctx, call{method: "POST", path: "/v1/user/mfa-enable",
		form: url.Values{"mfa_token": {mfaToken}, "otp": {otp}}}, &out)
	return out.Tokens, err
}

// DisableMFA is PUT /v1/user/mfa-disable: it turns two-step
// authentication off, given the account's password.
func (c *Client) DisableMFA(ctx context.Context, currentPassword string) error {
	return c.do(ctx, call{method: "PUT", path: "/v1/user/mfa-disable",
		form: url.Values{"current_password": {currentPassword}}}, nil)
}
