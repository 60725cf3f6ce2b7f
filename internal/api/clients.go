package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

var (
	errClientNotFound  = errorf(http.StatusNotFound, "Client not found")
	errClientName      = errorf(http.StatusBadRequest, "name is required")
	errClientType      = errorf(http.StatusBadRequest, "type must be installed or web")
	errClientRedirect  = errorf(http.StatusBadRequest, "redirect_uri is required for web clients")
	errClientRedirectU = errorf(http.StatusBadRequest, "redirect_uri must be an absolute http or https URL")
	errClientScope     = errorf(http.StatusBadRequest, "scope may only contain customers:create, create_customer or *:*")
)

// clientJSON is an OAuth client as the API shows it; Secret is set only
// in the answer to its creation.
type clientJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Secret      string `json:"secret,omitempty"`
	RedirectURI string `json:"redirect_uri,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

func toClientJSON(c *store.Client) clientJSON {
	return clientJSON{ID: c.ID, Name: c.Name, Type: c.Type, RedirectURI: c.RedirectURI, Scope: c.Scope}
}

// handleListClients is GET /v1/clients and /v1/products/{p}/clients.
func (s *server) handleListClients(rq *request) error {
	var (
		list []store.Client
		err  error
	)
	if rq.product != nil {
		list, err = s.store.ClientsByProduct(rq.ctx, rq.product.ID)
	} else {
		list, err = s.store.ClientsByOwner(rq.ctx, rq.principal.UserID)
	}
	if err != nil {
		return err
	}
	out := make([]clientJSON, 0, len(list))
	for i := range list {
		out = append(out, toClientJSON(&list[i]))
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "clients": out})
}

// handleCreateClient is POST /v1/clients and /v1/products/{p}/clients.
// The secret is in this answer only; the store keeps its hash.
func (s *server) handleCreateClient(rq *request) error {
	p := rq.params
	c := &store.Client{Name: strings.TrimSpace(p.str("name")), Type: strings.TrimSpace(p.str("type"))}
	if c.Name == "" {
		return errClientName
	}
	if c.Type == "" {
		c.Type = store.ClientInstalled
	}
	if c.Type != store.ClientInstalled && c.Type != store.ClientWeb {
		return errClientType
	}
	c.RedirectURI = strings.TrimSpace(p.str("redirect_uri"))
	if err := checkRedirectURI(c.Type, c.RedirectURI); err != nil {
		return err
	}
	var err error
	if c.Scope, err = parseClientScope(strings.Join(p.list("scope"), " ")); err != nil {
		return err
	}
	if rq.product != nil {
		c.ProductID = rq.product.ID
	} else {
		c.OwnerID = rq.principal.UserID
	}
	secret, hash, err := s.auth.NewClientSecret()
	if err != nil {
		return err
	}
	c.SecretHash = hash
	for attempt := 0; ; attempt++ {
		c.ID = slugify(c.Name, "client") + "-" + randomDigits(4)
		err = s.store.CreateClient(rq.ctx, c)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt == 20 {
			return fmt.Errorf("api: create client: %w", err)
		}
	}
	out := toClientJSON(c)
	out.Secret = secret
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "client": out})
}

// handleUpdateClient is PUT /v1/clients/{client} and the product variant:
// name, scope ("none" clears it) and redirect_uri.
func (s *server) handleUpdateClient(rq *request) error {
	c, err := s.ownedClient(rq)
	if err != nil {
		return err
	}
	p := rq.params
	if p.has("name") {
		if c.Name = strings.TrimSpace(p.str("name")); c.Name == "" {
			return errClientName
		}
	}
	if p.has("scope") {
		if c.Scope, err = parseClientScope(strings.Join(p.list("scope"), " ")); err != nil {
			return err
		}
	}
	if p.has("redirect_uri") {
		c.RedirectURI = strings.TrimSpace(p.str("redirect_uri"))
	}
	if err := checkRedirectURI(c.Type, c.RedirectURI); err != nil {
		return err
	}
	if err := s.store.UpdateClient(rq.ctx, c); err != nil {
		return fmt.Errorf("api: update client: %w", err)
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "client": toClientJSON(c)})
}

// handleDeleteClient is DELETE /v1/clients/{client} and the product
// variant: it revokes the client's tokens, then deletes it (204).
func (s *server) handleDeleteClient(rq *request) error {
	c, err := s.ownedClient(rq)
	if err != nil {
		return err
	}
	if err := s.auth.RevokeClient(rq.ctx, c.ID); err != nil {
		return err
	}
	s.accessChanged(rq.ctx, accessNotice{ClientID: c.ID})
	if err := s.store.DeleteClient(rq.ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// ownedClient loads {client} if it belongs to the route's product or, on
// user routes, to the calling user; otherwise it is not found.
func (s *server) ownedClient(rq *request) (*store.Client, error) {
	c, err := s.store.ClientByID(rq.ctx, rq.r.PathValue("client"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errClientNotFound
	}
	if err != nil {
		return nil, err
	}
	if rq.product != nil {
		if c.ProductID != rq.product.ID {
			return nil, errClientNotFound
		}
	} else if c.ProductID != 0 || c.OwnerID != rq.principal.UserID {
		return nil, errClientNotFound
	}
	return c, nil
}

// checkRedirectURI requires an absolute http(s) URL for web clients, and
// a valid one whenever given.
func checkRedirectURI(typ, uri string) error {
	if uri == "" {
		if typ == store.ClientWeb {
			return errClientRedirect
		}
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return errClientRedirectU
	}
	return nil
}

// parseClientScope validates a space-separated client scope. Empty and
// "none" mean no restriction (stored as "").
func parseClientScope(raw string) (string, error) {
	var out []string
	seen := map[string]bool{}
	for _, sc := range strings.Fields(raw) {
		switch sc {
		case "none":
			continue
		case auth.ScopeCustomersCreate, auth.ScopeCustomersCreateLegacy, auth.ScopeFull:
		default:
			return "", errClientScope
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// slugify lower-cases name and joins its runs of letters and digits with
// "-", at most 40 characters; an empty result becomes fallback.
func slugify(name, fallback string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 40 {
				break
			}
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return fallback
	}
	return b.String()
}

// randomDigits returns n decimal digits from crypto/rand.
func randomDigits(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			panic("api: crypto/rand: " + err.Error())
		}
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}
