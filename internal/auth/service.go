package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
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
	// Limits bounds failed credential checks and concurrent hashing
	// (zero fields: defaults).
	Limits Limits
}

// Defaults applied by New to zero Config fields.
const (
	defaultCacheTTL         = 60 * time.Second
	defaultCacheSize        = 100000
	defaultMFATokenLifetime = 5 * time.Minute
	defaultIssuer           = "Wick"

	// secretCacheTTL and secretCacheSize bound the client-secret
	// verification cache. A hit still requires the stored client to exist
	// with the same secret hash, so the TTL only bounds memory.
	secretCacheTTL  = 5 * time.Minute
	secretCacheSize = 10000
)

// Service authenticates requests and issues tokens. It is safe for
// concurrent use.
type Service struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	cache   *tokenCache  // nil when caching is disabled
	secrets *secretCache // nil when caching is disabled

	dummyOnce sync.Once
	dummyHash string // a hash of a random password, for unknown users

	guard    *guard             // wrong credentials per address and account
	gate     *hashGate          // argon2id hashes at once
	otpFails *ratelimit.Lockout // wrong codes per mfa_token

	// recoveryMu serialises recovery-code use within this process, so that
	// one code cannot be spent twice by concurrent requests.
	recoveryMu sync.Mutex
}

// New returns a Service over st. A nil log discards.
func New(cfg Config, st store.Store, log *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hasher == nil {
		cfg.Hasher = DefaultHasher()
	}
	if cfg.Issuer == "" {
		cfg.Issuer = defaultIssuer
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = defaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = defaultCacheSize
	}
	if cfg.MFATokenLifetime <= 0 {
		cfg.MFATokenLifetime = defaultMFATokenLifetime
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	lim := cfg.Limits
	s := &Service{
		cfg:      cfg,
		store:    st,
		log:      log,
		guard:    newGuard(lim, cfg.Now),
		gate:     newHashGate(lim.HashConcurrency, lim.HashQueue, lim.HashWait),
		otpFails: ratelimit.NewLockout(max(lim.OTPAttempts, 1), cfg.MFATokenLifetime, lim.Keys),
	}
	if cfg.CacheTTL > 0 {
		s.cache = newTokenCache(cfg.CacheTTL, cfg.CacheSize)
		s.secrets = newSecretCache(secretCacheTTL, secretCacheSize)
	}
	return s
}

// now returns the configured clock's time.
func (s *Service) now() time.Time { return s.cfg.Now() }

// Authenticate resolves an access token to its Principal, from the cache
// when possible. Failures are ErrTokenMissing (empty token), ErrTokenInvalid
// or ErrTokenExpired; a malformed token is refused without a database read.
// The Principal is the caller's own copy.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	if !ValidTokenFormat(token) {
		return nil, ErrTokenInvalid
	}
	now := s.now()
	var buf [tokenLen]byte // hashing a copy on the stack saves an allocation
	copy(buf[:], token)
	key := sha256.Sum256(buf[:])
	if s.cache != nil {
		if p, ok := s.cache.get(key, now); ok {
			if p.ExpiresAt != nil && !now.Before(*p.ExpiresAt) {
				return nil, ErrTokenExpired
			}
			cp := *p
			return &cp, nil
		}
	}
	var gen uint64
	if s.cache != nil {
		gen = s.cache.generation()
	}
	p, err := s.loadPrincipal(ctx, HashToken(token))
	if err != nil {
		return nil, err
	}
	if p.ExpiresAt != nil && !now.Before(*p.ExpiresAt) {
		return nil, ErrTokenExpired
	}
	if s.cache != nil {
		s.cache.put(key, p, now, gen)
	}
	cp := *p
	return &cp, nil
}

// loadPrincipal reads the token with that hash and its subject's name.
func (s *Service) loadPrincipal(ctx context.Context, hash string) (*Principal, error) {
	t, err := s.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrTokenInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("auth: authenticate: %w", err)
	}
	p := &Principal{
		Kind:       t.Kind,
		UserID:     t.UserID,
		CustomerID: t.CustomerID,
		ProductID:  t.ProductID,
		ClientID:   t.ClientID,
		Scope:      t.Scope,
		TokenHash:  t.Hash,
		ExpiresAt:  t.ExpiresAt,
	}
	switch t.Kind {
	case store.KindUser:
		u, err := s.store.UserByID(ctx, t.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrTokenInvalid
		}
		if err != nil {
			return nil, fmt.Errorf("auth: authenticate: %w", err)
		}
		p.Username = u.Username
	case store.KindCustomer:
		c, err := s.store.CustomerByID(ctx, t.CustomerID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrTokenInvalid
		}
		if err != nil {
			return nil, fmt.Errorf("auth: authenticate: %w", err)
		}
		p.Username = c.Email
	case store.KindProduct:
	default:
		return nil, ErrTokenInvalid
	}
	return p, nil
}

// IssueToken mints an access token (and refresh token) without a grant.
func (s *Service) IssueToken(ctx context.Context, is Issue) (*TokenResponse, error) {
	switch {
	case is.Kind == store.KindUser && is.UserID != "":
	case is.Kind == store.KindCustomer && is.CustomerID != "" && is.ProductID > 0:
	case is.Kind == store.KindProduct && is.ProductID > 0:
	default:
		return nil, fmt.Errorf("auth: issue: incomplete %q subject", is.Kind)
	}
	if is.Lifetime < 0 || is.Lifetime > maxLifetime {
		return nil, fmt.Errorf("auth: issue: bad lifetime %v", is.Lifetime)
	}
	now := s.now()
	var expiry *time.Time
	if is.Lifetime > 0 {
		at := now.Add(is.Lifetime)
		expiry = &at
	}
	sub := subject{
		kind:       is.Kind,
		userID:     is.UserID,
		customerID: is.CustomerID,
		productID:  is.ProductID,
		clientID:   is.ClientID,
		scope:      is.Scope,
	}
	return s.mint(ctx, "issue", sub, now, expiry, is.Refresh)
}

// RevokeToken deletes one access token given its plain value, and drops it
// from the cache. It returns store.ErrNotFound (wrapped) for unknown tokens.
func (s *Service) RevokeToken(ctx context.Context, token string) error {
	if !ValidTokenFormat(token) {
		return fmt.Errorf("auth: revoke token: %w", store.ErrNotFound)
	}
	return s.RevokeHash(ctx, HashToken(token))
}

// RevokeHash deletes one access token by hash and drops it from the cache.
func (s *Service) RevokeHash(ctx context.Context, hash string) error {
	err := s.store.DeleteToken(ctx, hash)
	s.dropCached(hash) // also after a failure: the row may be gone anyway
	if err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	return nil
}

// RevokeUser deletes every token of a user and drops them from the cache.
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	hashes, err := s.store.DeleteTokensByUser(ctx, userID)
	s.dropCached(hashes...)
	if err != nil {
		return fmt.Errorf("auth: revoke user tokens: %w", err)
	}
	return nil
}

// RevokeCustomer deletes every token of a customer and drops them.
func (s *Service) RevokeCustomer(ctx context.Context, customerID string) error {
	hashes, err := s.store.DeleteTokensByCustomer(ctx, customerID)
	s.dropCached(hashes...)
	if err != nil {
		return fmt.Errorf("auth: revoke customer tokens: %w", err)
	}
	return nil
}

// RevokeClient deletes every token minted by a client and drops them, and
// forgets the client's cached secret verifications. Call it when a client is
// deleted.
func (s *Service) RevokeClient(ctx context.Context, clientID string) error {
	if s.secrets != nil {
		s.secrets.dropClient(clientID)
	}
	hashes, err := s.store.DeleteTokensByClient(ctx, clientID)
	s.dropCached(hashes...)
	if err != nil {
		return fmt.Errorf("auth: revoke client tokens: %w", err)
	}
	return nil
}

// dropCached removes token hashes from the cache. It always bumps the cache
// generation, so a concurrent load cannot re-insert what was just revoked.
func (s *Service) dropCached(hashes ...string) {
	if s.cache != nil {
		s.cache.drop(hashes...)
	}
}

// CheckUserPassword returns the user whose username and password match, or
// ErrBadUserCreds. It costs one password hash even for unknown users, so
// timing does not reveal which usernames exist. A wrong password counts
// against the client address (WithClientAddr) and the account; either
// being locked out is a *LimitError before any hash, as is a full hash
// queue (ErrBusy). A right one resets the account's count, unless the user
// has MFA on: then only the second factor completes the login.
func (s *Service) CheckUserPassword(ctx context.Context, username, password string) (*store.User, error) {
	acct := userAccount(username)
	if err := s.guard.check(ctx, acct); err != nil {
		return nil, err
	}
	u, err := s.store.UserByUsername(ctx, normalizeUsername(username))
	if errors.Is(err, store.ErrNotFound) {
		if err := s.spendHash(ctx, password); err != nil {
			return nil, err
		}
		s.guard.fail(ctx, acct)
		return nil, ErrBadUserCreds
	}
	if err != nil {
		return nil, fmt.Errorf("auth: check password: %w", err)
	}
	ok, err := s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.guard.fail(ctx, acct)
		return nil, ErrBadUserCreds
	}
	if !u.MFAEnabled {
		s.guard.succeed(ctx, acct)
	}
	return u, nil
}

// VerifyUserPassword checks the current password of a signed-in user (a
// password change, account deletion) under the same limits as a login:
// ErrBadUserCreds when wrong, a *LimitError when locked out or busy.
func (s *Service) VerifyUserPassword(ctx context.Context, u *store.User, password string) error {
	acct := userAccount(u.Username)
	if err := s.guard.check(ctx, acct); err != nil {
		return err
	}
	ok, err := s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		s.guard.fail(ctx, acct)
		return ErrBadUserCreds
	}
	return nil
}

// verify checks password against a stored hash: a fast secret hash
// directly, an argon2id hash through the hash gate. It fails only with
// ErrBusy or the context's error.
func (s *Service) verify(ctx context.Context, encoded, password string) (bool, error) {
	if isSecretHash(encoded) {
		return verifySecretHash(encoded, password), nil
	}
	if err := s.gate.acquire(ctx); err != nil {
		return false, err
	}
	defer s.gate.release()
	return VerifyPassword(encoded, password), nil
}

// spendHash verifies password against a dummy hash made with the configured
// parameters, so a lookup that failed costs as much as one that succeeded.
func (s *Service) spendHash(ctx context.Context, password string) error {
	s.dummyOnce.Do(func() {
		t, err := NewToken()
		if err == nil {
			s.dummyHash, err = s.cfg.Hasher.Hash(t)
		}
		if err != nil {
			s.log.Warn("auth: dummy hash failed", "err", err)
		}
	})
	_, err := s.verify(ctx, s.dummyHash, password)
	return err
}

// HashStats reports the argon2id hashes running, waiting and refused.
func (s *Service) HashStats() HashStats { return s.gate.snapshot() }

// CheckClient returns the registered client whose id and secret match, or
// ErrBadClient. A wrong secret or unknown id counts against the client
// address.
func (s *Service) CheckClient(ctx context.Context, id, secret string) (*store.Client, error) {
	if err := s.guard.check(ctx, ""); err != nil {
		return nil, err
	}
	c, err := s.lookupClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		s.guard.fail(ctx, "")
		return nil, ErrBadClient
	}
	if err := s.verifyClientSecret(ctx, c, secret); err != nil {
		return nil, err
	}
	return c, nil
}

// lookupClient returns the registered client with that id, or nil when no
// client has it.
func (s *Service) lookupClient(ctx context.Context, id string) (*store.Client, error) {
	if id == "" {
		return nil, nil
	}
	c, err := s.store.ClientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: client %q: %w", id, err)
	}
	return c, nil
}

// verifyClientSecret checks secret against the client's hash in constant
// time, remembering successes for a while. A wrong secret is ErrBadClient
// and counts against the client address. Secrets hashed with argon2id by
// earlier versions still verify (through the hash gate).
func (s *Service) verifyClientSecret(ctx context.Context, c *store.Client, secret string) error {
	now := s.now()
	if s.secrets != nil && s.secrets.ok(c.ID, secret, c.SecretHash, now) {
		return nil
	}
	if err := s.guard.check(ctx, ""); err != nil {
		return err
	}
	ok, err := s.verify(ctx, c.SecretHash, secret)
	if err != nil {
		return err
	}
	if !ok {
		s.guard.fail(ctx, "")
		return ErrBadClient
	}
	if s.secrets != nil {
		s.secrets.add(c.ID, secret, c.SecretHash, now)
	}
	return nil
}

// HashPassword hashes a password with the configured Hasher, through the
// hash gate (ErrBusy when it stays full).
func (s *Service) HashPassword(password string) (string, error) {
	if err := s.gate.acquire(context.Background()); err != nil {
		return "", err
	}
	defer s.gate.release()
	return s.cfg.Hasher.Hash(password)
}

// CheckPassword reports, in constant time, whether password matches hash.
// It waits for the hash gate like every check and reports false when the
// gate stays full. Prefer VerifyUserPassword, which is rate limited.
func (s *Service) CheckPassword(hash, password string) bool {
	ok, err := s.verify(context.Background(), hash, password)
	return err == nil && ok
}

// NewClientSecret returns a fresh 40-hex client secret and its fast hash
// (HashSecret).
func (s *Service) NewClientSecret() (secret, hash string, err error) {
	secret, err = NewToken()
	if err != nil {
		return "", "", err
	}
	return secret, HashSecret(secret), nil
}

// passwordResetLifetime is how long a password-reset token is valid.
const passwordResetLifetime = time.Hour

// ErrInvalidResetToken reports an unknown, used or expired password-reset
// token.
var ErrInvalidResetToken = errorf(http.StatusBadRequest, "invalid_grant", "Password reset token is invalid or has expired")

// ErrMissingPassword reports an empty new password.
var ErrMissingPassword = errorf(http.StatusBadRequest, "invalid_request", "Missing password")

// BeginPasswordReset creates a single-use reset token for the user (valid one
// hour) and returns it. Unknown users get ("", nil) so callers cannot tell.
func (s *Service) BeginPasswordReset(ctx context.Context, username string) (string, error) {
	u, err := s.store.UserByUsername(ctx, normalizeUsername(username))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("auth: password reset: %w", err)
	}
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.store.CreateChallenge(ctx, &store.Challenge{
		Hash:      HashToken(token),
		Purpose:   store.ChallengePasswordReset,
		UserID:    u.ID,
		Data:      []byte("{}"),
		ExpiresAt: now.Add(passwordResetLifetime),
		CreatedAt: now,
	})
	if err != nil {
		return "", fmt.Errorf("auth: password reset: %w", err)
	}
	s.log.InfoContext(ctx, "auth: password reset requested", "user_id", u.ID)
	return token, nil
}

// FinishPasswordReset sets a new password with a reset token and revokes the
// user's tokens.
func (s *Service) FinishPasswordReset(ctx context.Context, token, password string) error {
	if password == "" {
		return ErrMissingPassword
	}
	if !ValidTokenFormat(token) {
		return ErrInvalidResetToken
	}
	hash := HashToken(token)
	ch, err := s.store.ChallengeByHash(ctx, hash, store.ChallengePasswordReset)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return fmt.Errorf("auth: password reset: %w", err)
	}
	if !s.now().Before(ch.ExpiresAt) {
		_ = s.store.DeleteChallenge(ctx, hash)
		return ErrInvalidResetToken
	}
	if err := s.consumeChallenge(ctx, hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidResetToken
		}
		return fmt.Errorf("auth: password reset: %w", err)
	}
	u, err := s.store.UserByID(ctx, ch.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return fmt.Errorf("auth: password reset: %w", err)
	}
	if u.PasswordHash, err = s.HashPassword(password); err != nil {
		return err
	}
	u.UpdatedAt = s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("auth: password reset: %w", err)
	}
	s.log.InfoContext(ctx, "auth: password reset", "user_id", u.ID)
	return s.RevokeUser(ctx, u.ID)
}

// consumeChallenge deletes a challenge; store.ErrNotFound means someone else
// consumed it first.
func (s *Service) consumeChallenge(ctx context.Context, hash string) error {
	s.otpFails.Reset(hash)
	return s.store.DeleteChallenge(ctx, hash)
}
