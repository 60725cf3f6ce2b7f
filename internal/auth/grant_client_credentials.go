package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// customerScopePrefix starts the scope that asks for a customer token.
const customerScopePrefix = "customer="

// grantClientCredentials mints a token for a registered client: its owner's
// token (user client), a product token (product client, no scope) or a
// customer token (product client, scope "customer=EMAIL").
func (s *Service) grantClientCredentials(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	c, err := s.CheckClient(ctx, req.ClientID, req.ClientSecret)
	if err != nil {
		return nil, err
	}
	if scopeOnlyCreatesCustomers(c.Scope) {
		return nil, ErrInvalidScope
	}
	expiry, err := requestExpiry(now, req.ExpiresIn, req.ExpiresAt)
	if err != nil {
		return nil, err
	}
	scope := strings.TrimSpace(req.Scope)
	var sub subject
	switch {
	case scope == "" || scope == ScopeFull:
		switch {
		case c.ProductID != 0:
			sub = subject{kind: store.KindProduct, productID: c.ProductID, clientID: c.ID}
		case c.OwnerID != "":
			sub = subject{kind: store.KindUser, userID: c.OwnerID, clientID: c.ID}
		default:
			return nil, ErrBadClient
		}
	case strings.HasPrefix(scope, customerScopePrefix) && c.ProductID != 0:
		email := strings.TrimPrefix(scope, customerScopePrefix)
		if email == "" {
			return nil, ErrInvalidScope
		}
		cu, err := s.store.CustomerByEmail(ctx, c.ProductID, email)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errCustomerNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("auth: client credentials: %w", err)
		}
		sub = subject{
			kind:       store.KindCustomer,
			customerID: cu.ID,
			productID:  cu.ProductID,
			clientID:   c.ID,
			scope:      customerScopePrefix + cu.Email,
		}
	default:
		return nil, ErrInvalidScope
	}
	return s.mint(ctx, req.GrantType, sub, now, expiry, true)
}
