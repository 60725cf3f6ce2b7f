// Package auth implements Wick's credentials: the OAuth2 grants of
// POST /oauth/token, access and refresh tokens, scopes, TOTP multi-factor
// authentication, and password and client-secret hashing.
//
// Tokens are 40 lower-case hex characters from crypto/rand and are stored
// only as SHA-256 hashes; passwords only as argon2id hashes; client secrets
// (160 random bits) as SHA-256 (older ones as argon2id); TOTP secrets only
// sealed with the server key. Every comparison of a secret is constant
// time. Authenticate caches verified tokens in memory so that an
// authenticated request does not touch the database; revoking a token
// through this package drops it from the cache.
//
// Every check of a password, client secret, TOTP or recovery code counts
// wrong answers per client address (WithClientAddr) and per account, and
// refuses locked-out ones with a *LimitError before hashing; argon2id
// hashes run at most Limits.HashConcurrency at once (guard.go, hashgate.go;
// docs/security.md, Passwords, second factors and lockout).
//
// The browser sign-in of web clients (GET /oauth/authorize: the
// authorization-code flow with PKCE, authorize.go) decides here what the
// API's pages show, and its codes are exchanged by the authorization_code
// grant (docs/authentication.md#browser-sign-in).
//
// The wire contract is docs/particle-api.md#tokens (the OAuth library
// Particle uses: error codes and texts are kept verbatim).
package auth

import (
	"fmt"
	"net/http"
	"time"
)

// DefaultLifetime is the lifetime of an access token when the request names
// none: 90 days.
const DefaultLifetime = 90 * 24 * time.Hour

// RefreshGrace is how long a refresh token outlives its access token.
const RefreshGrace = 14 * 24 * time.Hour

// Grant types accepted by Service.Token.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantMFAOTP            = "urn:custom:mfa-otp"
	GrantRecoveryCode      = "urn:custom:recovery-code"
	// GrantAuthorizationCode exchanges a code of the browser sign-in
	// (GET /oauth/authorize) with its PKCE code_verifier.
	GrantAuthorizationCode = "authorization_code"
)

// Scope names with a meaning to Wick.
const (
	// ScopeCustomersCreate restricts an OAuth client to creating customers
	// (and logging them in); "create_customer" is its legacy spelling.
	ScopeCustomersCreate       = "customers:create"
	ScopeCustomersCreateLegacy = "create_customer"
	// ScopeFull is the explicit spelling of "no restriction".
	ScopeFull = "*:*"
)

// Error is an OAuth2-shaped failure: the API renders it as
// {"error": Code, "error_description": Description} (plus "mfa_token" when
// set) with HTTP status Status.
type Error struct {
	Status      int
	Code        string
	Description string
	MFAToken    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("auth: %s: %s", e.Code, e.Description)
}

// errorf builds an *Error.
func errorf(status int, code, description string) *Error {
	return &Error{Status: status, Code: code, Description: description}
}

// Errors that the API and tests compare against by Code and Description.
// They are values, not sentinels: compare with errors.As and the fields.
var (
	ErrTokenMissing  = errorf(http.StatusBadRequest, "invalid_request", "The access token was not found")
	ErrTokenInvalid  = errorf(http.StatusUnauthorized, "invalid_token", "The access token provided is invalid.")
	ErrTokenExpired  = errorf(http.StatusUnauthorized, "invalid_token", "The access token provided has expired.")
	ErrBadUserCreds  = errorf(http.StatusBadRequest, "invalid_grant", "User credentials are invalid")
	ErrBadClient     = errorf(http.StatusBadRequest, "invalid_client", "Client credentials are invalid")
	ErrBadGrantType  = errorf(http.StatusBadRequest, "invalid_request", "Invalid or missing grant_type parameter")
	ErrInvalidOTP    = errorf(http.StatusBadRequest, "invalid_grant", "Invalid OTP code")
	ErrInvalidScope  = errorf(http.StatusBadRequest, "invalid_scope", "The client is not allowed to request this scope")
	ErrInvalidReqOTP = errorf(http.StatusBadRequest, "invalid_request", "You must provide otp and mfa token.")
)

// TokenRequest is the parsed body of POST /oauth/token. The API fills it from
// the form (or JSON) body and the Basic header; Service.Token validates it.
type TokenRequest struct {
	GrantType    string
	ClientID     string
	ClientSecret string
	// ClientSecretSet distinguishes an empty secret from an absent one.
	ClientSecretSet bool
	Username        string
	Password        string
	Scope           string
	RefreshToken    string
	MFAToken        string
	OTP             string
	RecoveryCode    string
	// Code, RedirectURI and CodeVerifier are the authorization_code grant's.
	Code         string
	RedirectURI  string
	CodeVerifier string
	// ExpiresIn is the requested lifetime in seconds; nil means the default,
	// 0 means never.
	ExpiresIn *int64
	// ExpiresAt is the requested expiry instant; it wins over ExpiresIn.
	ExpiresAt *time.Time
}

// TokenResponse is the body of a successful token grant. ExpiresIn is 0 and
// RefreshToken empty for a token that never expires.
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Principal is who an authenticated request acts for, resolved from an
// access token.
type Principal struct {
	Kind       string // store.KindUser, store.KindCustomer or store.KindProduct
	UserID     string // KindUser
	Username   string // KindUser: the user's e-mail; KindCustomer: the customer's e-mail
	CustomerID string // KindCustomer
	ProductID  int64  // KindCustomer, KindProduct
	ClientID   string
	Scope      string // space-separated; empty means full access for the kind
	TokenHash  string
	ExpiresAt  *time.Time
}

// Issue describes a token to mint directly (not through a grant): the
// customer token returned by POST /v1/products/:p/customers, for example.
type Issue struct {
	Kind       string
	UserID     string
	CustomerID string
	ProductID  int64
	ClientID   string
	Scope      string
	// Lifetime of the access token; 0 means never expires (and no refresh
	// token is issued).
	Lifetime time.Duration
	// Refresh asks for a refresh token beside an expiring access token.
	Refresh bool
}

// Enrollment is the answer to GET /v1/user/mfa-enable.
type Enrollment struct {
	MFAToken string `json:"mfa_token"`
	QRURL    string `json:"qr_url"`
	Secret   string `json:"secret"`
}
