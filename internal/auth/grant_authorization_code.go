package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// grantAuthorizationCode exchanges an authorization code from the browser
// sign-in (authorize.go) for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).
//
// The code is taken from the store atomically, so it works once; it must be
// unexpired, issued to this client, for this exact redirect_uri, and the
// code_verifier must hash to its challenge. A code presented a second time
// is refused and the tokens issued from it are revoked (RFC 6749 §4.1.2):
// someone else had it.
//
// A web client that sends its secret (a server-side app) is authenticated
// and also gets a refresh token; one that sends none is a public client (a
// page in a browser, which cannot keep a secret) and gets only the access
// token: PKCE binds the code to the browser that started the sign-in.
func (s *Service) grantAuthorizationCode(ctx context.Context, req *TokenRequest, now time.Time) (*TokenResponse, error) {
	if req.Code == "" {
		return nil, errMissingCode
	}
	if req.RedirectURI == "" {
		return nil, errMissingRedirect
	}
	if req.CodeVerifier == "" {
		return nil, errMissingVerifier
	}
	c, err := s.lookupClient(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		if err := s.guard.check(ctx, ""); err != nil {
			return nil, err
		}
		s.guard.fail(ctx, "")
		return nil, ErrBadClient
	}
	confidential := req.ClientSecretSet && req.ClientSecret != ""
	if confidential {
		if err := s.verifyClientSecret(ctx, c, req.ClientSecret); err != nil {
			return nil, err
		}
	}
	if !ValidTokenFormat(req.Code) {
		return nil, errBadCode
	}
	code, err := s.store.UseAuthCode(ctx, HashToken(req.Code), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadCode
	case errors.Is(err, store.ErrConflict) && code != nil:
		s.revokeReplayedCode(ctx, code)
		return nil, errUsedCode
	case err != nil:
		return nil, fmt.Errorf("auth: authorization code: %w", err)
	}
	if !now.Before(code.ExpiresAt) {
		return nil, errExpiredCode
	}
	if code.ClientID != c.ID {
		return nil, errCodeClient
	}
	if req.RedirectURI != code.RedirectURI {
		return nil, errCodeRedirect
	}
	if !validVerifier(req.CodeVerifier) ||
		subtle.ConstantTimeCompare([]byte(S256(req.CodeVerifier)), []byte(code.CodeChallenge)) != 1 {
		return nil, errBadVerifier
	}
	if err := s.codeSubjectExists(ctx, code); err != nil {
		return nil, err
	}
	expiry, err := requestExpiry(now, req.ExpiresIn, req.ExpiresAt)
	if err != nil {
		return nil, err
	}
	sub := subject{kind: code.Kind, userID: code.UserID, customerID: code.CustomerID,
		productID: code.ProductID, clientID: c.ID, scope: code.Scope}
	resp, err := s.mint(ctx, req.GrantType, sub, now, expiry, confidential)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetAuthCodeToken(ctx, code.Hash, HashToken(resp.AccessToken)); err != nil {
		return nil, fmt.Errorf("auth: authorization code: %w", err)
	}
	return resp, nil
}

// codeSubjectExists refuses a code whose user or customer was deleted since.
func (s *Service) codeSubjectExists(ctx context.Context, code *store.AuthCode) error {
	var err error
	switch code.Kind {
	case store.KindUser:
		_, err = s.store.UserByID(ctx, code.UserID)
	case store.KindCustomer:
		_, err = s.store.CustomerByID(ctx, code.CustomerID)
	default:
		return errBadCode
	}
	if errors.Is(err, store.ErrNotFound) {
		return errBadCode
	}
	if err != nil {
		return fmt.Errorf("auth: authorization code: %w", err)
	}
	return nil
}

// revokeReplayedCode revokes the access token (and its refresh token)
// issued from a code presented again and, for a user, every token the same
// client obtained for that user since the code was issued (the refreshed
// ones). A replay races the first exchange only in the instant between the
// code's use and the token's recording; that token is then left to expire.
func (s *Service) revokeReplayedCode(ctx context.Context, code *store.AuthCode) {
	s.log.WarnContext(ctx, "auth: authorization code replayed; revoking its tokens",
		"client_id", code.ClientID, "kind", code.Kind, "user_id", code.UserID, "customer_id", code.CustomerID)
	if code.AccessHash != "" {
		if err := s.RevokeHash(ctx, code.AccessHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "auth: revoke replayed code's token", "err", err)
		}
	}
	if code.Kind != store.KindUser {
		return
	}
	toks, err := s.store.TokensByUser(ctx, code.UserID)
	if err != nil {
		s.log.ErrorContext(ctx, "auth: revoke replayed code's tokens", "err", err)
		return
	}
	for _, t := range toks {
		if t.ClientID == code.ClientID && !t.CreatedAt.Before(code.CreatedAt) {
			if err := s.RevokeHash(ctx, t.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.ErrorContext(ctx, "auth: revoke replayed code's tokens", "err", err)
			}
		}
	}
}
