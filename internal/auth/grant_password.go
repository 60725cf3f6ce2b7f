package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// mfaLoginData is the Data of an mfa-login challenge: what the OTP step
// needs to finish the password grant it interrupted.
type mfaLoginData struct {
	ClientID  string     `json:"client_id"`
	ExpiresIn *int64     `json:"expires_in,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// grantPassword logs a developer in (unregistered or user-owned client) or a
// customer of the client's product (product client).
func (s *Service) grantPassword(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	if req.Username == "" || req.Password == "" {
		return nil, errMissingUserCreds
	}
	c, err := s.clientForGrant(ctx, req)
	if err != nil {
		return nil, err
	}
	expiry, err := requestExpiry(now, req.ExpiresIn, req.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if c != nil && c.ProductID != 0 {
		cu, err := s.checkCustomerPassword(ctx, c.ProductID, req.Username, req.Password)
		if err != nil {
			return nil, err
		}
		sub := subject{kind: store.KindCustomer, customerID: cu.ID, productID: cu.ProductID, clientID: c.ID}
		return s.mint(ctx, req.GrantType, sub, now, expiry, true)
	}
	u, err := s.CheckUserPassword(ctx, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled {
		return nil, s.requireMFA(ctx, u, req, now)
	}
	sub := subject{kind: store.KindUser, userID: u.ID, clientID: req.ClientID}
	return s.mint(ctx, req.GrantType, sub, now, expiry, true)
}

// checkCustomerPassword returns the product's customer whose e-mail and
// password match, or ErrBadUserCreds. Shadow customers (no password) cannot
// log in. Like CheckUserPassword it always costs one hash and counts
// failures against the client address and the customer.
func (s *Service) checkCustomerPassword(ctx context.Context, productID int64, email, password string) (*store.Customer, error) {
	acct := customerAccount(productID, email)
	if err := s.guard.check(ctx, acct); err != nil {
		return nil, err
	}
	cu, err := s.store.CustomerByEmail(ctx, productID, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth: customer login: %w", err)
	}
	var ok bool
	if err != nil || cu.PasswordHash == "" {
		err = s.spendHash(ctx, password)
	} else {
		ok, err = s.verify(ctx, cu.PasswordHash, password)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		s.guard.fail(ctx, acct)
		return nil, ErrBadUserCreds
	}
	s.guard.succeed(ctx, acct)
	return cu, nil
}

// requireMFA stores an mfa-login challenge remembering the client and the
// requested lifetime, and returns the 403 mfa_required error carrying its
// mfa_token.
func (s *Service) requireMFA(ctx context.Context, u *store.User, req *TokenRequest, now time.Time) error {
	token, err := NewToken()
	if err != nil {
		return err
	}
	data, err := json.Marshal(mfaLoginData{ClientID: req.ClientID, ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return fmt.Errorf("auth: mfa token: %w", err)
	}
	err = s.store.CreateChallenge(ctx, &store.Challenge{
		Hash:      HashToken(token),
		Purpose:   store.ChallengeMFALogin,
		UserID:    u.ID,
		Data:      data,
		ExpiresAt: now.Add(s.cfg.MFATokenLifetime),
		CreatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("auth: mfa token: %w", err)
	}
	return &Error{
		Status:      http.StatusForbidden,
		Code:        "mfa_required",
		Description: "Multifactor authentication required",
		MFAToken:    token,
	}
}
