package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/wick-cloud/wick/internal/store"
)

// TOTP parameters: the Google Authenticator defaults every app supports.
// A skew of one period accepts the previous and next code as well.
var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Enrolment and recovery-code parameters.
const (
	mfaEnrollLifetime = 15 * time.Minute // time to scan the QR code and type a code
	recoveryCodeCount = 10
	recoveryCodeChars = 10 // 50 bits each, shown as two groups of five
)

// recoveryEncoding spells recovery codes in lower-case letters and digits
// without the look-alikes l, o, 0 and 1.
var recoveryEncoding = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// MFA errors beside ErrInvalidOTP and ErrInvalidReqOTP.
var (
	// ErrMFAEnabled reports an enrolment attempt by a user who has MFA on.
	ErrMFAEnabled = errorf(http.StatusBadRequest, "invalid_request", "Multifactor authentication is already enabled")
	// ErrMFAUnavailable reports a server without a 32-byte secret key.
	ErrMFAUnavailable = errorf(http.StatusServiceUnavailable, "server_error", "Multifactor authentication is not configured on this server")
)

// mfaEnrollData is the Data of an mfa-enroll challenge.
type mfaEnrollData struct {
	Secret []byte `json:"secret"` // the TOTP secret, sealed for the user
}

// BeginMFA starts TOTP enrolment for a user (GET /v1/user/mfa-enable).
func (s *Service) BeginMFA(ctx context.Context, u *store.User) (*Enrollment, error) {
	if len(s.cfg.SecretKey) != sealKeyLen {
		return nil, ErrMFAUnavailable
	}
	if u.MFAEnabled {
		return nil, ErrMFAEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      s.cfg.Issuer,
		AccountName: u.Username,
		Period:      totpOpts.Period,
		Digits:      totpOpts.Digits,
		Algorithm:   totpOpts.Algorithm,
		Rand:        rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	sealed, err := Seal(s.cfg.SecretKey, []byte(key.Secret()), []byte(u.ID))
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	data, err := json.Marshal(mfaEnrollData{Secret: sealed})
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	token, err := NewToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.store.CreateChallenge(ctx, &store.Challenge{
		Hash:      HashToken(token),
		Purpose:   store.ChallengeMFAEnroll,
		UserID:    u.ID,
		Data:      data,
		ExpiresAt: now.Add(mfaEnrollLifetime),
		CreatedAt: now,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	return &Enrollment{MFAToken: token, QRURL: key.URL(), Secret: key.Secret()}, nil
}

// ConfirmMFA finishes enrolment with the first code from the authenticator
// (POST /v1/user/mfa-enable) and returns the one-time recovery codes.
// A wrong code is ErrInvalidOTP.
func (s *Service) ConfirmMFA(ctx context.Context, u *store.User, mfaToken, otp string) ([]string, error) {
	if len(s.cfg.SecretKey) != sealKeyLen {
		return nil, ErrMFAUnavailable
	}
	if mfaToken == "" || otp == "" {
		return nil, ErrInvalidReqOTP
	}
	now := s.now()
	ch, err := s.liveChallenge(ctx, mfaToken, store.ChallengeMFAEnroll, now)
	if err != nil {
		return nil, err
	}
	if ch == nil || ch.UserID != u.ID {
		return nil, ErrInvalidOTP
	}
	var data mfaEnrollData
	if err := json.Unmarshal(ch.Data, &data); err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: bad challenge data: %w", err)
	}
	secret, err := Open(s.cfg.SecretKey, data.Secret, []byte(u.ID))
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	step, ok := matchStep(otp, string(secret), now)
	if !ok {
		s.wrongCode(ctx, ch.Hash)
		return nil, ErrInvalidOTP
	}
	if err := s.consumeChallenge(ctx, ch.Hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrInvalidOTP
		}
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	fresh, err := s.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	if fresh.MFAEnabled {
		return nil, ErrMFAEnabled
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	fresh.MFAEnabled = true
	fresh.MFASecret = data.Secret
	fresh.MFARecoveryHashes = hashes
	fresh.UpdatedAt = now
	if err := s.store.UpdateUser(ctx, fresh); err != nil {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	// The enrolment code must not log in again (RFC 6238, section 5.2).
	if err := s.store.UseMFAStep(ctx, fresh.ID, step); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("auth: mfa enrol: %w", err)
	}
	*u = *fresh
	s.log.InfoContext(ctx, "auth: mfa enabled", "user_id", u.ID)
	return codes, nil
}

// DisableMFA turns MFA off after checking the user's current password
// (VerifyUserPassword). A wrong password is ErrBadUserCreds.
func (s *Service) DisableMFA(ctx context.Context, u *store.User, password string) error {
	fresh, err := s.store.UserByID(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("auth: mfa disable: %w", err)
	}
	if err := s.VerifyUserPassword(ctx, fresh, password); err != nil {
		return err
	}
	fresh.MFAEnabled = false
	fresh.MFASecret = nil
	fresh.MFARecoveryHashes = nil
	fresh.UpdatedAt = s.now()
	if err := s.store.UpdateUser(ctx, fresh); err != nil {
		return fmt.Errorf("auth: mfa disable: %w", err)
	}
	*u = *fresh
	s.log.InfoContext(ctx, "auth: mfa disabled", "user_id", u.ID)
	return nil
}

// CheckOTP checks a user's TOTP code as a second factor: nil when it is
// right and its time step newer than any the user spent before (a code
// works once, RFC 6238 section 5.2), ErrInvalidOTP when not. A wrong or
// replayed code counts against the client address and the account; a
// locked-out one is a *LimitError.
func (s *Service) CheckOTP(ctx context.Context, u *store.User, otp string) error {
	acct := userAccount(u.Username)
	if err := s.guard.check(ctx, acct); err != nil {
		return err
	}
	ok, err := s.spendOTP(ctx, u, otp)
	if err != nil {
		return err
	}
	if !ok {
		s.guard.fail(ctx, acct)
		return ErrInvalidOTP
	}
	s.guard.succeed(ctx, acct)
	return nil
}

// spendOTP reports whether otp is a current code of the user whose time
// step was never used, and records the step as used.
func (s *Service) spendOTP(ctx context.Context, u *store.User, otp string) (bool, error) {
	if !u.MFAEnabled || len(u.MFASecret) == 0 || len(s.cfg.SecretKey) != sealKeyLen {
		return false, nil
	}
	secret, err := Open(s.cfg.SecretKey, u.MFASecret, []byte(u.ID))
	if err != nil {
		s.log.Warn("auth: cannot open the TOTP secret", "user_id", u.ID, "err", err)
		return false, nil
	}
	step, ok := matchStep(otp, string(secret), s.now())
	if !ok {
		return false, nil
	}
	err = s.store.UseMFAStep(ctx, u.ID, step)
	if errors.Is(err, store.ErrConflict) {
		s.log.InfoContext(ctx, "auth: a used TOTP code was replayed", "user_id", u.ID)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: otp: %w", err)
	}
	return true, nil
}

// matchStep finds the time step (Unix time / period) whose code is code,
// among the current one and totpOpts.Skew on either side, comparing every
// candidate in constant time.
func matchStep(code, secret string, t time.Time) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != int(totpOpts.Digits) {
		return 0, false
	}
	period := int64(totpOpts.Period)
	now := t.Unix() / period
	for d := -int64(totpOpts.Skew); d <= int64(totpOpts.Skew); d++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((now+d)*period, 0).UTC(), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, ok = now+d, true
		}
	}
	return step, ok
}

// newRecoveryCodes returns fresh recovery codes and their hashes.
func newRecoveryCodes() (codes, hashes []string, err error) {
	raw := make([]byte, recoveryCodeChars*5/8)
	for range recoveryCodeCount {
		if _, err := rand.Read(raw); err != nil {
			return nil, nil, fmt.Errorf("auth: recovery codes: %w", err)
		}
		c := recoveryEncoding.EncodeToString(raw)
		codes = append(codes, c[:5]+"-"+c[5:])
		hashes = append(hashes, hashRecoveryCode(c))
	}
	return codes, hashes, nil
}

// hashRecoveryCode returns the SHA-256 hex of a recovery code, ignoring
// case, spaces and dashes.
func hashRecoveryCode(code string) string {
	code = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(code))
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// takeRecoveryHash removes hash from hashes if present, comparing every
// entry in constant time.
func takeRecoveryHash(hashes []string, hash string) ([]string, bool) {
	found := -1
	for i, h := range hashes {
		if subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return hashes, false
	}
	out := make([]string, 0, len(hashes)-1)
	out = append(out, hashes[:found]...)
	return append(out, hashes[found+1:]...), true
}

// liveChallenge returns the unexpired challenge of that purpose for a plain
// token, or nil when there is none. An expired challenge is deleted.
func (s *Service) liveChallenge(ctx context.Context, token, purpose string, now time.Time) (*store.Challenge, error) {
	if !ValidTokenFormat(token) {
		return nil, nil
	}
	hash := HashToken(token)
	ch, err := s.store.ChallengeByHash(ctx, hash, purpose)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: challenge: %w", err)
	}
	if !now.Before(ch.ExpiresAt) {
		_ = s.consumeChallenge(ctx, hash)
		return nil, nil
	}
	return ch, nil
}

// wrongCode counts a wrong code against a challenge and destroys the
// challenge after Limits.OTPAttempts, bounding guesses per mfa_token. With
// Limits.Shared the count is also kept in a shared counter, so that codes
// tried on several servers of a cluster add up (docs/scaling.md, Limits).
func (s *Service) wrongCode(ctx context.Context, hash string) {
	now := s.now()
	locked := s.otpFails.Fail(hash, now)
	if c := s.cfg.Limits.Shared; c != nil && !locked {
		n, _, err := c.AddCounter(ctx, "otp/fail/"+hash, now, s.cfg.MFATokenLifetime)
		locked = err == nil && n >= int64(max(s.cfg.Limits.OTPAttempts, 1))
	}
	if !locked {
		return
	}
	if err := s.consumeChallenge(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(ctx, "auth: cannot delete a challenge", "err", err)
	}
	s.log.InfoContext(ctx, "auth: too many wrong codes; mfa token destroyed")
}
