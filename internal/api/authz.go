package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// policy is who may call a route (docs/particle-api.md#credentials,
// docs/particle-api.md#customers).
type policy uint8

const (
	// public routes check no credentials.
	public policy = iota
	// basicUser routes need HTTP Basic username:password of a user, plus
	// the otp parameter when the user has MFA on.
	basicUser
	// anyToken routes take a user, customer or product token.
	anyToken
	// userOrCustomer routes take a user or customer token.
	userOrCustomer
	// userOnly routes take a user token.
	userOnly
	// team routes take a token of a team member of product {p}, or a
	// product token of {p}. Customers are refused.
	team
	// customerCreate is POST /v1/products/{p}/customers: client
	// credentials, a team token, or the implicit flow; the handler decides.
	customerCreate
)

// scopeAny marks a route that API users (scoped user tokens) may call
// whatever their scopes.
const scopeAny = "*"

// bearerToken extracts an access token (docs/particle-api.md#credentials): the
// Authorization Bearer header wins, then the access_token query parameter, then
// the access_token body field.
func bearerToken(r *http.Request, p params) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if t := strings.TrimSpace(h[7:]); t != "" {
			return t
		}
	}
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	return p.str("access_token")
}

// authorize checks the route's policy and fills rq.principal, rq.user and
// rq.product.
func (s *server) authorize(rq *request) error {
	rt := rq.route
	switch rt.policy {
	case public, customerCreate:
		return nil
	case basicUser:
		return s.authorizeBasicUser(rq)
	}
	if err := s.authenticateToken(rq); err != nil {
		return err
	}
	p := rq.principal
	switch rt.policy {
	case userOrCustomer:
		if p.Kind == store.KindProduct {
			return errForbidden
		}
	case userOnly:
		if p.Kind != store.KindUser {
			return errForbidden
		}
	case team:
		if p.Kind == store.KindCustomer {
			return errForbidden
		}
	}
	if err := checkScope(p, rt.scope); err != nil {
		return err
	}
	if rt.policy == team {
		if rt.teamRead && s.deferTeam(rq) {
			return nil // checked with the handler's first read (grantTeam) or by resolveTeam
		}
		return s.authorizeTeam(rq)
	}
	return nil
}

// authenticateToken resolves the request's access token.
func (s *server) authenticateToken(rq *request) error {
	tok := bearerToken(rq.r, rq.params)
	if tok == "" {
		return auth.ErrTokenMissing
	}
	p, err := s.auth.Authenticate(rq.ctx, tok)
	if err != nil {
		return err
	}
	rq.principal = p
	return nil
}

// restricted reports whether a principal is an API user: a user token
// carrying scopes other than the full scope.
func restricted(p *auth.Principal) bool {
	if p.Kind != store.KindUser {
		return false
	}
	for _, sc := range strings.Fields(p.Scope) {
		if sc != auth.ScopeFull {
			return true
		}
	}
	return false
}

// checkScope lets an API user through only to routes whose scope it holds.
func checkScope(p *auth.Principal, scope string) error {
	if !restricted(p) || scope == scopeAny {
		return nil
	}
	if scope != "" {
		for _, sc := range strings.Fields(p.Scope) {
			if sc == scope {
				return nil
			}
		}
	}
	return errAPIUser
}

// authorizeTeam resolves {p} and checks that the principal may manage it.
// A user's check is one store statement when the store has TeamAccess
// (authorizeTeamAccess).
func (s *server) authorizeTeam(rq *request) error {
	if ta, ok := s.store.(store.TeamAccess); ok && rq.principal.Kind == store.KindUser && rq.user == nil {
		return s.authorizeTeamAccess(rq, ta)
	}
	prod, err := s.productFromPath(rq)
	if err != nil {
		return err
	}
	if err := s.checkTeam(rq, prod); err != nil {
		return err
	}
	rq.product = prod
	return nil
}

// authorizeTeamAccess is authorizeTeam for a user token: it reads the
// product of {p}, whether the token's user still exists and whether the
// user is on the product's team in one statement, and answers as
// productFromPath and checkTeam do (an unknown product first, then an
// account that is gone, then a user off the team). Nothing of it is
// cached: a user removed from a team is refused from the next request on,
// on every node. rq.user stays unset; currentUser reads it if a handler
// needs it.
func (s *server) authorizeTeamAccess(rq *request, ta store.TeamAccess) error {
	var (
		a   *store.ProductAccess
		err error
	)
	ref, ok := productRef(rq)
	if !ok {
		return errProductNotFound
	}
	if ref.Slug != "" {
		a, err = ta.ProductAccessBySlug(rq.ctx, ref.Slug, rq.principal.UserID)
	} else {
		a, err = ta.ProductAccessByID(rq.ctx, ref.ID, rq.principal.UserID)
	}
	return grantTeam(rq, a, err)
}

// productRef returns the product of the {p} path parameter: all digits
// is a numeric ID, anything else a slug; ok is false for a number too
// large to be an ID (no such product).
func productRef(rq *request) (ref store.ProductRef, ok bool) {
	p := rq.r.PathValue("p")
	if !isDigits(p) {
		return store.ProductRef{Slug: p}, true
	}
	id, err := strconv.ParseInt(p, 10, 64)
	return store.ProductRef{ID: id}, err == nil
}

// deferTeam defers a user token's team check on a route whose handler
// reads it together with its first store read (route.teamRead, a store
// with ProductDevicePageAccess): on PostgreSQL the check then shares the
// page's round trip. It sets rq.teamPending and reports whether it did;
// rq.product stays nil until the handler calls grantTeam with the access
// read or resolveTeam, and the handler answers a refusal exactly as
// authorizeTeamAccess would have, before anything else.
func (s *server) deferTeam(rq *request) bool {
	if _, ok := s.store.(store.ProductDevicePageAccess); !ok || rq.principal.Kind != store.KindUser || rq.user != nil {
		return false
	}
	if _, ok := s.store.(store.TeamAccess); !ok {
		return false
	}
	rq.teamPending = true
	return true
}

// resolveTeam runs a deferred team check on its own (authorizeTeam); it
// does nothing when none is pending.
func (s *server) resolveTeam(rq *request) error {
	if !rq.teamPending {
		return nil
	}
	rq.teamPending = false
	return s.authorizeTeam(rq)
}

// grantTeam answers a user's team check from the access read (or its
// error) as productFromPath and checkTeam do: an unknown product first,
// then an account that is gone, then a user off the team. It sets
// rq.product when access is granted and ends a deferred check either way.
func grantTeam(rq *request, a *store.ProductAccess, err error) error {
	rq.teamPending = false
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errProductNotFound
	case err != nil:
		return err
	case !a.UserExists:
		return auth.ErrTokenInvalid
	case !a.Member:
		return errForbidden
	}
	rq.product = &a.Product
	return nil
}

// checkTeam reports errForbidden unless the principal is a team member of
// prod or a product token of prod.
func (s *server) checkTeam(rq *request, prod *store.Product) error {
	p := rq.principal
	switch p.Kind {
	case store.KindProduct:
		if p.ProductID == prod.ID {
			return nil
		}
	case store.KindUser:
		u, err := s.currentUser(rq)
		if err != nil {
			return err
		}
		_, err = s.store.TeamMember(rq.ctx, prod.ID, u.Username)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return errForbidden
}

// productFromPath resolves the {p} path parameter: all digits is a
// numeric ID, anything else a slug.
func (s *server) productFromPath(rq *request) (*store.Product, error) {
	return s.lookupProduct(rq, rq.r.PathValue("p"))
}

func (s *server) lookupProduct(rq *request, idOrSlug string) (*store.Product, error) {
	var (
		prod *store.Product
		err  error
	)
	if isDigits(idOrSlug) {
		id, perr := strconv.ParseInt(idOrSlug, 10, 64)
		if perr != nil {
			return nil, errProductNotFound
		}
		prod, err = s.store.ProductByID(rq.ctx, id)
	} else {
		prod, err = s.store.ProductBySlug(rq.ctx, idOrSlug)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProductNotFound
	}
	return prod, err
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// currentUser loads the account of a user principal once per request. A
// token whose account is gone is an invalid token.
func (s *server) currentUser(rq *request) (*store.User, error) {
	if rq.user != nil {
		return rq.user, nil
	}
	if rq.principal == nil || rq.principal.Kind != store.KindUser {
		return nil, errForbidden
	}
	u, err := s.store.UserByID(rq.ctx, rq.principal.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, auth.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	rq.user = u
	return u, nil
}

// Basic-credential failures (spark-server wording).
var (
	errBasicMissing = &Error{Status: http.StatusUnauthorized, List: []string{"Username and password are required"}}
	errBadPassword  = &Error{Status: http.StatusUnauthorized, List: []string{"Bad password"}}
	errBasicOTP     = &Error{Status: http.StatusUnauthorized, List: []string{"Invalid OTP code"}}
	errBasicMFA     = &auth.Error{Status: http.StatusForbidden, Code: "mfa_required",
		Description: "Multifactor authentication required: send the otp parameter"}
)

// authorizeBasicUser checks HTTP Basic user credentials (and the otp
// parameter for MFA users) under the same failure limits as
// POST /oauth/token (auth.Limits): a locked-out address or account gets
// 429 before any password is hashed.
func (s *server) authorizeBasicUser(rq *request) error {
	name, password, ok := rq.r.BasicAuth()
	if !ok || name == "" {
		rq.w.Header().Set("WWW-Authenticate", `Basic realm="wick"`)
		return errBasicMissing
	}
	u, err := s.auth.CheckUserPassword(rq.ctx, strings.ToLower(strings.TrimSpace(name)), password)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			return errBadPassword
		}
		return err
	}
	if u.MFAEnabled {
		otp := rq.params.str("otp")
		if otp == "" {
			return errBasicMFA
		}
		if err := s.auth.CheckOTP(rq.ctx, u, otp); err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				return errBasicOTP
			}
			return err
		}
	}
	rq.user = u
	return nil
}
