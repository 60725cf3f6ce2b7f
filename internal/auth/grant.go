package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// maxLifetime bounds a requested token lifetime (about 100 years); longer
// requests are refused rather than overflowing time arithmetic. Ask for
// expires_in=0 for a token that never expires.
const maxLifetime = 100 * 365 * 24 * time.Hour

// maxClientIDLen bounds the client_id recorded for unregistered clients.
const maxClientIDLen = 128

// Errors of the token endpoint beside those in auth.go.
var (
	errMissingClientID   = errorf(http.StatusBadRequest, "invalid_client", "Invalid or missing client_id parameter")
	errMissingSecret     = errorf(http.StatusBadRequest, "invalid_client", "Missing client_secret parameter")
	errMissingUserCreds  = errorf(http.StatusBadRequest, "invalid_client", `Missing parameters. "username" and "password" are required`)
	errMissingRefresh    = errorf(http.StatusBadRequest, "invalid_request", `No "refresh_token" parameter`)
	errInvalidRefresh    = errorf(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
	errExpiredRefresh    = errorf(http.StatusBadRequest, "invalid_grant", "Refresh token has expired")
	errCustomerNotFound  = errorf(http.StatusBadRequest, "invalid_grant", "Customer not found")
	errBadExpiresIn      = errorf(http.StatusBadRequest, "invalid_request", `Invalid "expires_in" parameter`)
	errBadExpiresAt      = errorf(http.StatusBadRequest, "invalid_request", `Invalid "expires_at" parameter`)
	errInvalidReqRecover = errorf(http.StatusBadRequest, "invalid_request", "You must provide recovery code and mfa token.")
)

// ErrInvalidRecoveryCode reports a wrong or already used recovery code, or
// an unknown or expired mfa_token, in the recovery-code grant.
var ErrInvalidRecoveryCode = errorf(http.StatusBadRequest, "invalid_grant", "Invalid recovery code")

// subject is whom a token is minted for.
type subject struct {
	kind       string
	userID     string
	customerID string
	productID  int64
	clientID   string
	scope      string
}

// logAttrs describes the subject for the log (no secrets).
func (sub subject) logAttrs() []any {
	a := []any{"kind", sub.kind, "client_id", sub.clientID}
	switch sub.kind {
	case store.KindUser:
		a = append(a, "user_id", sub.userID)
	case store.KindCustomer:
		a = append(a, "customer_id", sub.customerID, "product_id", sub.productID)
	case store.KindProduct:
		a = append(a, "product_id", sub.productID)
	}
	return a
}

// Token runs one grant of POST /oauth/token
// (docs/particle-api.md#the-token-endpoint). Failures are *Error.
func (s *Service) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	var grant func(context.Context, *TokenRequest, time.Time) (*TokenResponse, error)
	switch req.GrantType {
	case GrantPassword:
		grant = s.grantPassword
	case GrantClientCredentials:
		grant = s.grantClientCredentials
	case GrantRefreshToken:
		grant = s.grantRefreshToken
	case GrantMFAOTP:
		grant = s.grantMFAOTP
	case GrantRecoveryCode:
		grant = s.grantRecoveryCode
	case GrantAuthorizationCode:
		grant = s.grantAuthorizationCode
	default:
		return nil, s.failed(ctx, &req, ErrBadGrantType)
	}
	if req.ClientID == "" || len(req.ClientID) > maxClientIDLen {
		return nil, s.failed(ctx, &req, errMissingClientID)
	}
	// Public clients (a page in a browser) exchange codes without a
	// secret: PKCE stands in for it.
	if !req.ClientSecretSet && req.GrantType != GrantAuthorizationCode {
		return nil, s.failed(ctx, &req, errMissingSecret)
	}
	resp, err := grant(ctx, &req, s.now())
	if err != nil {
		return nil, s.failed(ctx, &req, err)
	}
	return resp, nil
}

// failed logs a failed grant and returns err. OAuth errors are logged at
// Info (mfa_required at Debug: it is a normal step), others at Error.
func (s *Service) failed(ctx context.Context, req *TokenRequest, err error) error {
	attrs := []any{"grant", req.GrantType, "client_id", req.ClientID}
	if req.Username != "" {
		attrs = append(attrs, "username", req.Username)
	}
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code == "mfa_required":
		s.log.DebugContext(ctx, "auth: mfa required", attrs...)
	case errors.As(err, &e):
		s.log.InfoContext(ctx, "auth: grant refused", append(attrs, "error", e.Code, "reason", e.Description)...)
	default:
		s.log.ErrorContext(ctx, "auth: grant failed", append(attrs, "err", err)...)
	}
	return err
}

// requestExpiry resolves the requested lifetime at now: expiresAt wins, else
// expiresIn (0 = never, returned as nil), else DefaultLifetime.
func requestExpiry(now time.Time, expiresIn *int64, expiresAt *time.Time) (*time.Time, error) {
	switch {
	case expiresAt != nil:
		d := expiresAt.Sub(now)
		if d <= 0 || d > maxLifetime {
			return nil, errBadExpiresAt
		}
		at := *expiresAt
		return &at, nil
	case expiresIn != nil:
		n := *expiresIn
		if n < 0 || n > int64(maxLifetime/time.Second) {
			return nil, errBadExpiresIn
		}
		if n == 0 {
			return nil, nil
		}
		at := now.Add(time.Duration(n) * time.Second)
		return &at, nil
	default:
		at := now.Add(DefaultLifetime)
		return &at, nil
	}
}

// secondsUntil returns the whole seconds from now to at, rounded up so that
// an expiring token never reports 0 ("never").
func secondsUntil(now, at time.Time) int64 {
	d := at.Sub(now)
	if d <= 0 {
		return 1
	}
	return int64((d + time.Second - 1) / time.Second)
}

// mint stores a new access token for sub expiring at expiry (nil = never)
// and, when refresh is set and the token expires, a refresh token that
// outlives it by RefreshGrace.
func (s *Service) mint(ctx context.Context, via string, sub subject, now time.Time, expiry *time.Time, refresh bool) (*TokenResponse, error) {
	access, err := NewToken()
	if err != nil {
		return nil, err
	}
	t := &store.Token{
		Hash:       HashToken(access),
		Kind:       sub.kind,
		UserID:     sub.userID,
		CustomerID: sub.customerID,
		ProductID:  sub.productID,
		ClientID:   sub.clientID,
		Scope:      sub.scope,
		ExpiresAt:  expiry,
		CreatedAt:  now,
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, fmt.Errorf("auth: store token: %w", err)
	}
	resp := &TokenResponse{TokenType: "bearer", AccessToken: access, Scope: sub.scope}
	if expiry != nil {
		resp.ExpiresIn = secondsUntil(now, *expiry)
		if refresh {
			rt, err := NewToken()
			if err != nil {
				return nil, err
			}
			err = s.store.CreateRefreshToken(ctx, &store.RefreshToken{
				Hash:       HashToken(rt),
				AccessHash: t.Hash,
				Kind:       sub.kind,
				UserID:     sub.userID,
				CustomerID: sub.customerID,
				ProductID:  sub.productID,
				ClientID:   sub.clientID,
				Scope:      sub.scope,
				ExpiresAt:  expiry.Add(RefreshGrace),
				CreatedAt:  now,
			})
			if err != nil {
				return nil, fmt.Errorf("auth: store refresh token: %w", err)
			}
			resp.RefreshToken = rt
		}
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "auth: token issued", append([]any{"via", via, "expires_in", resp.ExpiresIn}, sub.logAttrs()...)...)
	}
	return resp, nil
}

// clientForGrant resolves the request's client for grants that accept
// unregistered client ids: it returns nil for an unregistered id, the client
// for a registered one whose secret matches, and ErrBadClient otherwise.
func (s *Service) clientForGrant(ctx context.Context, req *TokenRequest) (*store.Client, error) {
	c, err := s.lookupClient(ctx, req.ClientID)
	if err != nil || c == nil {
		return nil, err
	}
	if err := s.verifyClientSecret(ctx, c, req.ClientSecret); err != nil {
		return nil, err
	}
	return c, nil
}

// normalizeUsername lower-cases and trims a username (an e-mail address).
func normalizeUsername(u string) string {
	return strings.ToLower(strings.TrimSpace(u))
}

// scopeOnlyCreatesCustomers reports whether a client scope allows nothing but
// creating customers.
func scopeOnlyCreatesCustomers(scope string) bool {
	fields := strings.Fields(scope)
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		if f != ScopeCustomersCreate && f != ScopeCustomersCreateLegacy {
			return false
		}
	}
	return true
}
