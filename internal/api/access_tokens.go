package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

var errTokenNotFound = errorf(http.StatusNotFound, "Token not found")

// tokenHashPrefix is how many hex characters of a token's SHA-256 hash
// GET /v1/access_tokens shows in place of the token, which is not stored.
const tokenHashPrefix = 12

// tokenJSON is one entry of GET /v1/access_tokens.
type tokenJSON struct {
	Token     string  `json:"token"`
	ExpiresAt *string `json:"expires_at"`
	Client    string  `json:"client"`
}

// handleListTokens is GET /v1/access_tokens: the user's active tokens,
// each named by the first characters of its hash.
func (s *server) handleListTokens(rq *request) error {
	toks, err := s.store.TokensByUser(rq.ctx, rq.user.ID)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, 0, len(toks))
	for _, t := range toks {
		if t.ExpiresAt != nil && !rq.now.Before(*t.ExpiresAt) {
			continue
		}
		h := t.Hash
		if len(h) > tokenHashPrefix {
			h = h[:tokenHashPrefix]
		}
		out = append(out, tokenJSON{Token: h, ExpiresAt: isoTimePtr(t.ExpiresAt), Client: t.ClientID})
	}
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleDeleteAllTokens is DELETE /v1/access_tokens: every token of the
// caller, the calling one included.
func (s *server) handleDeleteAllTokens(rq *request) error {
	p := rq.principal
	var err error
	if p.Kind == store.KindCustomer {
		err = s.auth.RevokeCustomer(rq.ctx, p.CustomerID)
	} else {
		err = s.auth.RevokeUser(rq.ctx, p.UserID)
	}
	if err != nil {
		return err
	}
	s.accessChanged(rq.ctx, accessNotice{UserID: p.UserID, CustomerID: p.CustomerID})
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// currentTokenJSON is the body of GET /v1/access_tokens/current.
type currentTokenJSON struct {
	ExpiresAt *string  `json:"expires_at"`
	Client    string   `json:"client"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	Orgs      []string `json:"orgs"`
}

// handleCurrentToken is GET /v1/access_tokens/current. It reads nothing
// but the authenticated principal.
func (s *server) handleCurrentToken(rq *request) error {
	p := rq.principal
	scopes := strings.Fields(p.Scope)
	if scopes == nil {
		scopes = []string{}
	}
	return writeJSON(rq.w, http.StatusOK, currentTokenJSON{
		ExpiresAt: isoTimePtr(p.ExpiresAt),
		Client:    p.ClientID,
		ClientID:  p.ClientID,
		Scopes:    scopes,
		Orgs:      []string{},
	})
}

// handleDeleteCurrentToken is DELETE /v1/access_tokens/current (logout).
func (s *server) handleDeleteCurrentToken(rq *request) error {
	if err := s.auth.RevokeHash(rq.ctx, rq.principal.TokenHash); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.accessChanged(rq.ctx, accessNotice{TokenHashes: []string{rq.principal.TokenHash}})
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleDeleteToken is DELETE /v1/access_tokens/{token}. Possession of the
// token is the proof: particle-cli sends no credentials
// (docs/particle-api.md#managing-access-tokens). Basic credentials, when sent
// anyway, must be right (401 "Bad password" if not).
func (s *server) handleDeleteToken(rq *request) error {
	if _, _, ok := rq.r.BasicAuth(); ok {
		if err := s.authorizeBasicUser(rq); err != nil {
			return err
		}
	}
	err := s.auth.RevokeToken(rq.ctx, rq.r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) {
		return errTokenNotFound
	}
	if err != nil {
		return err
	}
	s.accessChanged(rq.ctx, accessNotice{TokenHashes: []string{auth.HashToken(rq.r.PathValue("token"))}})
	return writeJSON(rq.w, http.StatusOK, okBody)
}
