package store

import (
	"context"
	"time"
)

// AuthCodeRetention is how long Tokens.DeleteExpired keeps an authorization
// code after it expired, so that a replay soon after expiry is still
// recognised as one (and revokes what the code issued).
const AuthCodeRetention = time.Hour

// AuthCode is an OAuth 2.0 authorization code (RFC 6749 §4.1) issued by the
// browser sign-in at GET /oauth/authorize, stored only by the SHA-256 hex
// hash of its value. It is bound to the client, the exact redirect URI and
// the PKCE code challenge (RFC 7636, S256) it was issued for, and carries
// the subject the token exchanged for it will act for.
type AuthCode struct {
	Hash          string
	ClientID      string
	RedirectURI   string
	CodeChallenge string // base64url SHA-256 of the code verifier
	Kind          string // KindUser or KindCustomer
	UserID        string // KindUser
	CustomerID    string // KindCustomer
	ProductID     int64  // KindCustomer
	Scope         string
	// AccessHash is the hash of the access token the code was exchanged
	// for; empty until then.
	AccessHash string
	// UsedAt is when the code was presented at the token endpoint; nil
	// while unused. A code is exchanged at most once.
	UsedAt    *time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
}

// AuthCodes holds authorization codes.
type AuthCodes interface {
	// CreateAuthCode inserts c, setting CreatedAt when zero. It fails with
	// ErrConflict if the hash exists.
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// UseAuthCode marks the code used at now, atomically, and returns it
	// (with UsedAt set). Of two concurrent uses only one succeeds: a code
	// already used is returned as it is stored together with an error
	// wrapping ErrConflict, so that the caller can revoke what it issued.
	// An unknown code is ErrNotFound. Expiry is the caller's to check.
	UseAuthCode(ctx context.Context, hash string, now time.Time) (*AuthCode, error)
	// SetAuthCodeToken records the hash of the access token minted from a
	// used code. It fails with ErrNotFound if the code is absent.
	SetAuthCodeToken(ctx context.Context, hash, accessHash string) error
}
