package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// grantMFAOTP finishes a password grant interrupted by mfa_required with the
// user's current TOTP code. The token gets the client id and lifetime of the
// interrupted request. A wrong code leaves the mfa_token usable (up to
// Limits.OTPAttempts times); a right one consumes it. A code is accepted
// once: its time step is recorded (CheckOTP).
func (s *Service) grantMFAOTP(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	if req.MFAToken == "" || req.OTP == "" {
		return nil, ErrInvalidReqOTP
	}
	check := func(u *store.User) (bool, error) { return s.spendOTP(ctx, u, req.OTP) }
	return s.finishMFA(ctx, req, now, ErrInvalidOTP, check, nil)
}

// grantRecoveryCode is grantMFAOTP with a one-time recovery code in place
// of the TOTP code; the code is spent.
func (s *Service) grantRecoveryCode(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	if req.MFAToken == "" || req.RecoveryCode == "" {
		return nil, errInvalidReqRecover
	}
	s.recoveryMu.Lock()
	defer s.recoveryMu.Unlock()
	check, spend := s.recoveryFactor(ctx, req.RecoveryCode, now)
	return s.finishMFA(ctx, req, now, ErrInvalidRecoveryCode, check, spend)
}

// recoveryFactor returns the check and spend functions of passSecondFactor
// for a recovery code. The caller holds recoveryMu.
func (s *Service) recoveryFactor(ctx context.Context, code string, now time.Time) (check func(*store.User) (bool, error), spend func(*store.User) error) {
	hash := hashRecoveryCode(code)
	check = func(u *store.User) (bool, error) {
		_, ok := takeRecoveryHash(u.MFARecoveryHashes, hash)
		return ok && u.MFAEnabled, nil
	}
	spend = func(u *store.User) error {
		u.MFARecoveryHashes, _ = takeRecoveryHash(u.MFARecoveryHashes, hash)
		u.UpdatedAt = now
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return fmt.Errorf("auth: recovery code: %w", err)
		}
		s.log.InfoContext(ctx, "auth: recovery code used", "user_id", u.ID, "left", len(u.MFARecoveryHashes))
		return nil
	}
	return check, spend
}

// finishMFA checks the request's client, passes the second factor
// (passSecondFactor) and mints the user token with the client id and
// lifetime of the interrupted password grant.
func (s *Service) finishMFA(ctx context.Context, req *TokenRequest, now time.Time, bad *Error,
	check func(*store.User) (bool, error), spend func(*store.User) error) (*TokenResponse, error) {
	if _, err := s.clientForGrant(ctx, req); err != nil {
		return nil, err
	}
	u, data, err := s.passSecondFactor(ctx, req.MFAToken, "", now, bad, check, spend)
	if err != nil {
		return nil, err
	}
	expiry, err := requestExpiry(now, data.ExpiresIn, data.ExpiresAt)
	if err != nil {
		return nil, err
	}
	sub := subject{kind: store.KindUser, userID: u.ID, clientID: data.ClientID}
	return s.mint(ctx, req.GrantType, sub, now, expiry, true)
}

// passSecondFactor loads the mfa-login challenge of mfaToken and its user,
// runs check (which reports whether the second factor is right), consumes
// the challenge and runs spend (if any). When clientID is set the challenge
// must have been made for that client. Unknown, expired or used mfa_tokens,
// another client's and wrong codes are bad. Wrong codes count against the
// client address and the account (a *LimitError once locked out); a right
// one resets the account's count.
func (s *Service) passSecondFactor(ctx context.Context, mfaToken, clientID string, now time.Time, bad *Error,
	check func(*store.User) (bool, error), spend func(*store.User) error) (*store.User, *mfaLoginData, error) {
	ch, err := s.liveChallenge(ctx, mfaToken, store.ChallengeMFALogin, now)
	if err != nil {
		return nil, nil, err
	}
	if ch == nil {
		return nil, nil, bad
	}
	var data mfaLoginData
	if err := json.Unmarshal(ch.Data, &data); err != nil {
		return nil, nil, fmt.Errorf("auth: mfa: bad challenge data: %w", err)
	}
	if clientID != "" && data.ClientID != clientID {
		return nil, nil, bad
	}
	u, err := s.store.UserByID(ctx, ch.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, bad
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: mfa: %w", err)
	}
	// Consume the challenge only after a right answer, but before acting
	// on it, so that a racing second use fails.
	acct := userAccount(u.Username)
	if err := s.guard.check(ctx, acct); err != nil {
		return nil, nil, err
	}
	ok, err := check(u)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		s.guard.fail(ctx, acct)
		s.wrongCode(ctx, ch.Hash)
		return nil, nil, bad
	}
	if err := s.consumeChallenge(ctx, ch.Hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, bad
		}
		return nil, nil, fmt.Errorf("auth: mfa: %w", err)
	}
	if spend != nil {
		if err := spend(u); err != nil {
			return nil, nil, err
		}
	}
	s.guard.succeed(ctx, acct)
	return u, &data, nil
}
