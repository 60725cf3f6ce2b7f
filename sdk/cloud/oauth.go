package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"time"
)

// The browser sign-in from a Go program's side (docs/authentication.md,
// Browser sign-in): building the authorization URL with PKCE, exchanging
// the code, the remembered consents and the server's metadata.

// NewPKCE returns a fresh PKCE code verifier (32 random bytes, base64url)
// and its code challenge by RFC 7636's S256 method.
func NewPKCE() (verifier, challenge string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// AuthorizeURL is the address of the server's sign-in page for a web
// client: response_type=code with the S256 challenge, state, and scope
// (space-separated; "" asks for full access).
func (c *Client) AuthorizeURL(clientID, redirectURI, state, challenge, scope string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if scope != "" {
		q.Set("scope", scope)
	}
	return strings.TrimRight(c.BaseURL, "/") + "/oauth/authorize?" + q.Encode()
}

// ExchangeCode is the authorization_code grant: the code the sign-in page
// sent to redirectURI, with the PKCE verifier, for a token. o names the
// web client; without a secret it is a public client and gets no refresh
// token. The token's Scope says what the user granted.
func (c *Client) ExchangeCode(ctx context.Context, code, redirectURI, verifier string, o *TokenOptions) (*Token, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	if o != nil && o.ClientID != "" && o.ClientSecret == "" {
		// A public client: its ID in the form, no Basic credentials.
		form.Set("client_id", o.ClientID)
		var t Token
		if err := c.do(ctx, call{method: "POST", path: "/oauth/token", form: form, noAuth: true}, &t); err != nil {
			return nil, err
		}
		return &t, nil
	}
	return c.tokenGrant(ctx, form, o)
}

// ScopeDescription is a scope with its plain-words description.
type ScopeDescription struct {
	// Scope is the scope's name, such as "devices:list" or "*:*".
	Scope string `json:"scope"`
	// Description says what it allows, as the consent page does.
	Description string `json:"description"`
}

// Grant is a consent the browser sign-in remembers for the caller.
type Grant struct {
	// ClientID and ClientName name the application.
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	// Product is the client's product name, "" for a developer's client.
	Product string `json:"product"`
	// Scopes are the granted scopes.
	Scopes []ScopeDescription `json:"scopes"`
	// CreatedAt and UpdatedAt are when it was first given and last widened.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Grants is GET /v1/user/grants: the applications the caller (a user or a
// customer) allowed through the browser sign-in.
func (c *Client) Grants(ctx context.Context) ([]Grant, error) {
	var out []Grant
	if err := c.do(ctx, call{method: "GET", path: "/v1/user/grants"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeGrant is DELETE /v1/user/grants/{clientID}: the consent is
// forgotten and every token the client holds for the caller is revoked.
func (c *Client) RevokeGrant(ctx context.Context, clientID string) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/user/grants/" + pathEscape(clientID)}, nil)
}

// AuthServerMetadata is the server's OAuth metadata (RFC 8414).
type AuthServerMetadata struct {
	// Issuer is the server's base URL, the iss of its sign-in redirects.
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is the sign-in page.
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	// TokenEndpoint is POST /oauth/token.
	TokenEndpoint string `json:"token_endpoint"`
	// RevocationEndpoint is an RFC 7009 endpoint; Wick has none.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// ResponseTypesSupported is ["code"].
	ResponseTypesSupported []string `json:"response_types_supported"`
	// GrantTypesSupported lists the token endpoint's grants.
	GrantTypesSupported []string `json:"grant_types_supported"`
	// CodeChallengeMethodsSupported is ["S256"].
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
	// TokenEndpointAuthMethodsSupported lists how clients authenticate.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// ScopesSupported lists the scopes a sign-in may ask for.
	ScopesSupported []string `json:"scopes_supported"`
}

// GetAuthServerMetadata is GET /.well-known/oauth-authorization-server.
func (c *Client) GetAuthServerMetadata(ctx context.Context) (*AuthServerMetadata, error) {
	var m AuthServerMetadata
	if err := c.do(ctx, call{method: "GET", path: "/.well-known/oauth-authorization-server", noAuth: true}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
