package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// Config tunes a Service. The zero value is usable: defaults apply.
type Config struct {
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// SecretKey seals TOTP secrets at rest (32 bytes, from the data
	// directory). Required for MFA.
	SecretKey []byte
	// Issuer names the TOTP issuer shown in authenticator apps ("Wick").
	Issuer string
	// Hasher hashes passwords and client secrets; nil means DefaultHasher().
	Hasher *Hasher
	// CacheTTL bounds how long a verified token is trusted without a
	// database read (default 60s; it only matters when several processes
	// share a database and one of them revokes). Negative disables caching.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens (default 100000).
	CacheSize int
	// MFATokenLifetime is the life of an mfa_token (default 5 minutes).
	MFATokenLifetime time.Duration
}

// Service authenticates requests and issues tokens. It is safe for
// concurrent use.
type Service struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
}

// New returns a Service over st.
func New(cfg Config, st store.Store, log *slog.Logger) *Service {
	return &Service{cfg: cfg, store: st, log: log}
}

// Token runs one grant of POST /oauth/token (spec §2.1). Failures are *Error.
func (s *Service) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	panic("auth: not implemented")
}

// Authenticate resolves an access token to its Principal, from the cache
// when possible. Failures are ErrTokenInvalid or ErrTokenExpired.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	panic("auth: not implemented")
}

// IssueToken mints an access token (and refresh token) without a grant.
func (s *Service) IssueToken(ctx context.Context, is Issue) (*TokenResponse, error) {
	panic("auth: not implemented")
}

// RevokeToken deletes one access token given its plain value, and drops it
// from the cache. It returns store.ErrNotFound (wrapped) for unknown tokens.
func (s *Service) RevokeToken(ctx context.Context, token string) error {
	panic("auth: not implemented")
}

// RevokeHash deletes one access token by hash and drops it from the cache.
func (s *Service) RevokeHash(ctx context.Context, hash string) error {
	panic("auth: not implemented")
}

// RevokeUser deletes every token of a user and drops them from the cache.
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	panic("auth: not implemented")
}

// RevokeCustomer deletes every token of a customer and drops them.
func (s *Service) RevokeCustomer(ctx context.Context, customerID string) error {
	panic("auth: not implemented")
}

// RevokeClient deletes every token minted by a client and drops them.
func (s *Service) RevokeClient(ctx context.Context, clientID string) error {
	panic("auth: not implemented")
}

// CheckUserPassword returns the user whose username and password match, or
// ErrBadUserCreds. It costs one password hash even for unknown users, so
// timing does not reveal which usernames exist.
func (s *Service) CheckUserPassword(ctx context.Context, username, password string) (*store.User, error) {
	panic("auth: not implemented")
}

// CheckClient returns the registered client whose id and secret match, or
// ErrBadClient.
func (s *Service) CheckClient(ctx context.Context, id, secret string) (*store.Client, error) {
	panic("auth: not implemented")
}

// HashPassword hashes a password (or client secret) with the configured
// Hasher.
func (s *Service) HashPassword(password string) (string, error) {
	panic("auth: not implemented")
}

// CheckPassword reports, in constant time, whether password matches hash.
func (s *Service) CheckPassword(hash, password string) bool {
	panic("auth: not implemented")
}

// NewClientSecret returns a fresh 40-hex client secret and its hash.
func (s *Service) NewClientSecret() (secret, hash string, err error) {
	panic("auth: not implemented")
}

// BeginMFA starts TOTP enrolment for a user (GET /v1/user/mfa-enable).
func (s *Service) BeginMFA(ctx context.Context, u *store.User) (*Enrollment, error) {
	panic("auth: not implemented")
}

// ConfirmMFA finishes enrolment with the first code from the authenticator
// (POST /v1/user/mfa-enable) and returns the one-time recovery codes.
// A wrong code is ErrInvalidOTP.
func (s *Service) ConfirmMFA(ctx context.Context, u *store.User, mfaToken, otp string) ([]string, error) {
	panic("auth: not implemented")
}

// DisableMFA turns MFA off after checking the user's current password.
func (s *Service) DisableMFA(ctx context.Context, u *store.User, password string) error {
	panic("auth: not implemented")
}

// CheckOTP reports whether otp is the user's current TOTP code.
func (s *Service) CheckOTP(u *store.User, otp string) bool {
	panic("auth: not implemented")
}

// BeginPasswordReset creates a single-use reset token for the user (valid one
// hour) and returns it. Unknown users get ("", nil) so callers cannot tell.
func (s *Service) BeginPasswordReset(ctx context.Context, username string) (string, error) {
	panic("auth: not implemented")
}

// FinishPasswordReset sets a new password with a reset token and revokes the
// user's tokens.
func (s *Service) FinishPasswordReset(ctx context.Context, token, password string) error {
	panic("auth: not implemented")
}
