package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// grantRefreshToken trades a refresh token for a new access and refresh
// pair for the same subject and scope. The refresh token is single use: it
// is taken from the store atomically, so of two concurrent uses only one
// succeeds.
//
// The client must be the one the refresh token was issued to. A registered
// client proves itself with its secret; an unregistered client id (the
// password grant accepts any) is accepted with any secret, but only for
// user tokens, so that the tokens of a deleted product client cannot be
// refreshed without its secret.
func (s *Service) grantRefreshToken(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	c, err := s.clientForGrant(ctx, req)
	if err != nil {
		return nil, err
	}
	if req.RefreshToken == "" {
		return nil, errMissingRefresh
	}
	if !ValidTokenFormat(req.RefreshToken) {
		return nil, errInvalidRefresh
	}
	expiry, err := requestExpiry(now, req.ExpiresIn, req.ExpiresAt)
	if err != nil {
		return nil, err
	}
	rt, err := s.store.TakeRefreshToken(ctx, HashToken(req.RefreshToken))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidRefresh
	}
	if err != nil {
		return nil, fmt.Errorf("auth: refresh: %w", err)
	}
	if rt.ClientID != req.ClientID || (c == nil && rt.Kind != store.KindUser) {
		// Not this client's token: put it back, so that presenting a
		// stolen refresh token without the client's secret does not
		// destroy it for its rightful holder.
		if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
			return nil, fmt.Errorf("auth: refresh: restore token: %w", err)
		}
		return nil, errInvalidRefresh
	}
	if !now.Before(rt.ExpiresAt) {
		return nil, errExpiredRefresh
	}
	sub := subject{
		kind:       rt.Kind,
		userID:     rt.UserID,
		customerID: rt.CustomerID,
		productID:  rt.ProductID,
		clientID:   rt.ClientID,
		scope:      rt.Scope,
	}
	return s.mint(ctx, req.GrantType, sub, now, expiry, true)
}
