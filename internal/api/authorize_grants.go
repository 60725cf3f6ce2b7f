package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Remembered consents of the browser sign-in, as their owner sees them
// (docs/authentication.md, Remembered consent), and the authorization
// server's metadata (RFC 8414).

// grantJSON is one remembered consent in GET /v1/user/grants.
type grantJSON struct {
	ClientID   string       `json:"client_id"`
	ClientName string       `json:"client_name"`
	Product    string       `json:"product,omitempty"`
	Scopes     []scopeEntry `json:"scopes"`
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// scopeEntry is a scope with its plain-words description.
type scopeEntry struct {
	Scope       string `json:"scope"`
	Description string `json:"description"`
}

// handleListGrants is GET /v1/user/grants: the applications the user (or
// customer) allowed through the browser sign-in, with the scopes in plain
// words.
func (s *server) handleListGrants(rq *request) error {
	list, err := s.auth.Grants(rq.ctx, rq.principal)
	if err != nil {
		return err
	}
	out := make([]grantJSON, 0, len(list))
	for _, g := range list {
		j := grantJSON{ClientID: g.ClientID, ClientName: g.ClientName, Product: g.Product,
			CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC(), Scopes: []scopeEntry{}}
		for _, sc := range g.Scopes {
			j.Scopes = append(j.Scopes, scopeEntry{Scope: sc, Description: auth.ScopeWords(sc, rq.principal.Kind)})
		}
		out = append(out, j)
	}
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleDeleteGrant is DELETE /v1/user/grants/{client}: the consent is
// forgotten and every token that client holds for the caller is revoked.
func (s *server) handleDeleteGrant(rq *request) error {
	err := s.auth.RevokeGrant(rq.ctx, rq.principal, rq.r.PathValue("client"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "No such connected application")
	}
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true})
}

// handleAuthServerMetadata is GET /.well-known/oauth-authorization-server
// (RFC 8414 §3): what an OAuth library needs to sign users in here without
// configuration. The issuer is the server's base URL as withIssuer
// computes it, the same value the sign-in's redirects carry in iss.
// There is no revocation_endpoint: Wick's token revocation is Particle's
// DELETE /v1/access_tokens/current, not RFC 7009's.
func (s *server) handleAuthServerMetadata(rq *request) error {
	iss := s.issuer(rq)
	rq.w.Header().Set("Cache-Control", "public, max-age=3600")
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/oauth/authorize",
		"token_endpoint":                                 iss + "/oauth/token",
		"response_types_supported":                       []string{auth.ResponseTypeCode},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{auth.GrantAuthorizationCode, auth.GrantRefreshToken, auth.GrantPassword, auth.GrantClientCredentials},
		"code_challenge_methods_supported":               []string{auth.CodeChallengeS256},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                               auth.ScopeNames(),
		"authorization_response_iss_parameter_supported": true,
		"service_documentation":                          iss + "/console/",
	})
}

// issuer is this server's base URL as the browser or client reached it:
// Config.PublicURL when its host is the request's (its scheme is then
// right behind a TLS proxy too), otherwise the request's own scheme and
// host (a default public URL such as http://:8080 names no host a client
// can use).
func (s *server) issuer(rq *request) string {
	iss := strings.TrimRight(s.cfg.PublicURL, "/")
	if u, err := url.Parse(iss); err != nil || u.Host != rq.r.Host {
		scheme := "http"
		if rq.r.TLS != nil || strings.HasPrefix(iss, "https:") {
			scheme = "https"
		}
		iss = scheme + "://" + rq.r.Host
	}
	return iss
}
