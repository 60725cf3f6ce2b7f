package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
)

// Errors of lifetime parameters (node-oauth2-server shape).
var (
	errBadExpiresIn = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_request",
		Description: `Invalid "expires_in" parameter`}
	errBadExpiresAt = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_request",
		Description: `Invalid "expires_at" parameter`}
)

// handleToken is POST /oauth/token (docs/api.md). Bearer headers are
// ignored. Wrong credentials are counted by auth's limits (auth.Limits),
// against the client address set on the request's context.
func (s *server) handleToken(rq *request) error {
	h := rq.w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")

	p := rq.params
	req := auth.TokenRequest{
		GrantType:    p.str("grant_type"),
		Username:     strings.TrimSpace(p.str("username")),
		Password:     p.str("password"),
		Scope:        p.str("scope"),
		RefreshToken: p.str("refresh_token"),
		MFAToken:     p.str("mfa_token"),
		OTP:          strings.TrimSpace(p.str("otp")),
		RecoveryCode: strings.TrimSpace(p.str("recovery_code")),
		Code:         strings.TrimSpace(p.str("code")),
		RedirectURI:  p.str("redirect_uri"),
		CodeVerifier: strings.TrimSpace(p.str("code_verifier")),
	}
	req.ClientID, req.ClientSecret, req.ClientSecretSet = clientCredentials(rq)
	var err error
	if req.ExpiresIn, req.ExpiresAt, err = lifetimeParams(p); err != nil {
		return err
	}
	resp, err := s.auth.Token(rq.ctx, req)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, resp)
}

// clientCredentials returns the OAuth client credentials of a request:
// HTTP Basic wins over the client_id and client_secret fields.
func clientCredentials(rq *request) (id, secret string, secretSet bool) {
	if id, secret, ok := rq.r.BasicAuth(); ok {
		return id, secret, true
	}
	return rq.params.str("client_id"), rq.params.str("client_secret"), rq.params.has("client_secret")
}

// lifetimeParams parses expires_in (seconds, 0 = never) and expires_at
// (ISO-8601).
func lifetimeParams(p params) (in *int64, at *time.Time, err error) {
	if n, found, err := p.integer("expires_in"); err != nil || n < 0 {
		return nil, nil, errBadExpiresIn
	} else if found {
		in = &n
	}
	if s := strings.TrimSpace(p.str("expires_at")); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, nil, errBadExpiresAt
		}
		at = &t
	}
	return in, at, nil
}
