package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

var (
	errCustomerExists = &auth.Error{Status: http.StatusBadRequest, Code: "customer_exists",
		Description: "Customer already exists"}
	errCustomerEmail = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_request",
		Description: "email is required"}
	errCustomerPassword = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_request",
		Description: "password is required unless no_password is true"}
	errMissingSecret = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_client",
		Description: "Missing client_secret parameter"}
	errNotImplicitClient = &auth.Error{Status: http.StatusBadRequest, Code: "unauthorized_client",
		Description: "The client may not use the implicit flow: it must be a web client of this product"}
	errCustomerNotFound = errorf(http.StatusNotFound, "Customer not found")
)

// Pagination defaults (docs/particle-api.md#pagination).
const (
	defaultPerPage = 25
	maxPerPage     = 100
)

// customerInput is the validated body of a customer creation.
type customerInput struct {
	email    string
	password string // "" for a shadow customer
	lifetime time.Duration
}

// readCustomerInput validates email, password / no_password and
// expires_in. Customer identifiers are kept as given (trimmed): they need
// not be e-mail addresses.
func (s *server) readCustomerInput(p params, allowNoPassword bool) (customerInput, error) {
	in := customerInput{email: strings.TrimSpace(p.str("email")), lifetime: auth.DefaultLifetime}
	if in.email == "" || len(in.email) > 254 || strings.IndexFunc(in.email, unicode.IsControl) >= 0 {
		return in, errCustomerEmail
	}
	if !(allowNoPassword && p.isTrue("no_password")) {
		in.password = p.str("password")
		if in.password == "" {
			return in, errCustomerPassword
		}
		if msg := s.checkNewPassword(in.password); msg != "" {
			return in, &auth.Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: msg}
		}
	}
	secs, found, err := p.integer("expires_in")
	if err != nil || secs < 0 || secs > int64(100*365*24*time.Hour/time.Second) {
		return in, errBadExpiresIn
	}
	if found {
		in.lifetime = time.Duration(secs) * time.Second
	}
	return in, nil
}

// createCustomer stores the customer and mints its first token; the
// customer is removed again if no token can be issued.
func (s *server) createCustomer(rq *request, prod *store.Product, in customerInput, clientID string, refresh bool) (*auth.TokenResponse, error) {
	c := &store.Customer{ProductID: prod.ID, Email: in.email}
	if in.password != "" {
		hash, err := s.auth.HashPassword(in.password)
		if err != nil {
			return nil, err
		}
		c.PasswordHash = hash
	}
	if err := s.store.CreateCustomer(rq.ctx, c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errCustomerExists
		}
		return nil, err
	}
	tok, err := s.auth.IssueToken(rq.ctx, auth.Issue{
		Kind:       store.KindCustomer,
		CustomerID: c.ID,
		ProductID:  prod.ID,
		ClientID:   clientID,
		Lifetime:   in.lifetime,
		Refresh:    refresh && in.lifetime > 0,
	})
	if err != nil {
		_ = s.store.DeleteCustomer(rq.ctx, c.ID)
		return nil, err
	}
	return tok, nil
}

// handleCreateCustomer is POST /v1/products/{p}/customers in its three
// modes (docs/particle-api.md#customers): product client credentials (Basic or
// client_secret), a team member's or product token, or the implicit browser
// flow (client_id of a web client and response_type=token).
func (s *server) handleCreateCustomer(rq *request) error {
	prod, err := s.productFromPath(rq)
	if err != nil {
		return err
	}
	p := rq.params
	_, _, basic := rq.r.BasicAuth()
	switch {
	case basic || p.has("client_secret"):
		return s.createCustomerWithClient(rq, prod)
	case bearerToken(rq.r, p) != "":
		return s.createCustomerWithToken(rq, prod)
	case p.str("client_id") != "" && p.str("response_type") == "token":
		return s.createCustomerImplicit(rq, prod)
	case p.str("client_id") != "":
		return errMissingSecret
	}
	return errMissingClient
}

func (s *server) createCustomerWithClient(rq *request, prod *store.Product) error {
	id, secret, _ := clientCredentials(rq)
	if id == "" {
		return errMissingClient
	}
	c, err := s.auth.CheckClient(rq.ctx, id, secret)
	if err != nil {
		return err
	}
	if c.ProductID != prod.ID {
		return auth.ErrBadClient
	}
	in, err := s.readCustomerInput(rq.params, true)
	if err != nil {
		return err
	}
	tok, err := s.createCustomer(rq, prod, in, c.ID, true)
	if err != nil {
		return err
	}
	return writeToken(rq.w, http.StatusCreated, tok)
}

func (s *server) createCustomerWithToken(rq *request, prod *store.Product) error {
	if err := s.authenticateToken(rq); err != nil {
		return err
	}
	if rq.principal.Kind == store.KindCustomer {
		return errForbidden
	}
	if err := checkScope(rq.principal, scopeCustomersCreate); err != nil {
		return err
	}
	if err := s.checkTeam(rq, prod); err != nil {
		return err
	}
	in, err := s.readCustomerInput(rq.params, true)
	if err != nil {
		return err
	}
	tok, err := s.createCustomer(rq, prod, in, rq.principal.ClientID, true)
	if err != nil {
		return err
	}
	return writeToken(rq.w, http.StatusCreated, tok)
}

// createCustomerImplicit answers with a redirect to the client's
// registered redirect_uri, the token (or the error) in the fragment.
// Client errors are not redirected: the URI is not trusted yet.
func (s *server) createCustomerImplicit(rq *request, prod *store.Product) error {
	c, err := s.store.ClientByID(rq.ctx, rq.params.str("client_id"))
	if errors.Is(err, store.ErrNotFound) {
		return auth.ErrBadClient
	}
	if err != nil {
		return err
	}
	if c.ProductID != prod.ID || c.Type != store.ClientWeb || c.RedirectURI == "" {
		return errNotImplicitClient
	}
	frag := url.Values{}
	in, err := s.readCustomerInput(rq.params, false)
	var tok *auth.TokenResponse
	if err == nil {
		tok, err = s.createCustomer(rq, prod, in, c.ID, false)
	}
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			return err
		}
		frag.Set("error", ae.Code)
		frag.Set("error_description", ae.Description)
	} else {
		frag.Set("access_token", tok.AccessToken)
		frag.Set("token_type", "bearer")
		frag.Set("expires_in", strconv.FormatInt(tok.ExpiresIn, 10))
	}
	target := c.RedirectURI + "#" + frag.Encode()
	rq.w.Header().Set("Cache-Control", "no-store")
	rq.w.Header().Set("Location", target)
	return writeJSON(rq.w, http.StatusFound, map[string]any{"ok": err == nil, "location": target})
}

// writeToken sends a token body with the no-cache headers of RFC 6749.
func writeToken(w http.ResponseWriter, status int, tok *auth.TokenResponse) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if tok.TokenType == "" {
		tok.TokenType = "bearer"
	}
	return writeJSON(w, status, tok)
}

// customerJSON is one entry of GET /v1/products/{p}/customers.
type customerJSON struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Devices  []string `json:"devices"`
}

// pageParams reads page and per_page (or perPage), clamped to sane values.
func pageParams(p params) store.Page {
	page := store.Page{Number: 1, Size: defaultPerPage}
	if n, found, err := p.integer("page"); err == nil && found && n > 0 && n < 1<<31 {
		page.Number = int(n)
	}
	key := "per_page"
	if !p.has(key) {
		key = "perPage"
	}
	if n, found, err := p.integer(key); err == nil && found && n > 0 {
		page.Size = int(min(n, maxPerPage))
	}
	return page
}

// handleListCustomers is GET /v1/products/{p}/customers.
func (s *server) handleListCustomers(rq *request) error {
	page := pageParams(rq.params)
	list, total, err := s.store.ListCustomers(rq.ctx, rq.product.ID, page)
	if err != nil {
		return err
	}
	out := make([]customerJSON, 0, len(list))
	for _, c := range list {
		out = append(out, customerJSON{ID: c.ID, Username: c.Email, Devices: []string{}})
	}
	pages := (total + page.Size - 1) / page.Size
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"customers": out,
		"devices":   []any{},
		"meta": map[string]int{
			"total_pages": pages, "page": page.Number, "per_page": page.Size, "total": total,
		},
	})
}

// pathCustomer loads {email} of the route's product.
func (s *server) pathCustomer(rq *request) (*store.Customer, error) {
	c, err := s.store.CustomerByEmail(rq.ctx, rq.product.ID, strings.TrimSpace(rq.r.PathValue("email")))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errCustomerNotFound
	}
	return c, err
}

// handleUpdateCustomer is PUT /v1/products/{p}/customers/{email}
// {password}.
func (s *server) handleUpdateCustomer(rq *request) error {
	pw := rq.params.str("password")
	if pw == "" {
		return errorf(http.StatusBadRequest, "password is required")
	}
	if msg := s.checkNewPassword(pw); msg != "" {
		return errorf(http.StatusBadRequest, msg)
	}
	c, err := s.pathCustomer(rq)
	if err != nil {
		return err
	}
	if c.PasswordHash, err = s.auth.HashPassword(pw); err != nil {
		return err
	}
	c.UpdatedAt = rq.now
	if err := s.store.UpdateCustomer(rq.ctx, c); err != nil {
		return fmt.Errorf("api: update customer: %w", err)
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleDeleteCustomer is DELETE /v1/products/{p}/customers/{email}: the
// customer's tokens are revoked first.
func (s *server) handleDeleteCustomer(rq *request) error {
	c, err := s.pathCustomer(rq)
	if err != nil {
		return err
	}
	if err := s.auth.RevokeCustomer(rq.ctx, c.ID); err != nil {
		return err
	}
	s.accessChanged(rq.ctx, accessNotice{CustomerID: c.ID})
	if err := s.store.DeleteCustomer(rq.ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}
