package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/store"
)

// The browser sign-in: the OAuth 2.0 authorization-code flow
// (RFC 6749 §4.1) with PKCE (RFC 7636), following the OAuth 2.0 security
// best current practice (RFC 9700): PKCE with S256 for every client, exact
// redirect-URI matching, single-use short-lived codes, no implicit grant.
// The API renders the pages; this file holds what they decide
// (docs/authentication.md, Browser sign-in).

// Parameters and lifetimes of the authorization-code flow.
const (
	// ResponseTypeCode is the only response_type Wick accepts.
	ResponseTypeCode = "code"
	// CodeChallengeS256 is the only code_challenge_method Wick accepts.
	CodeChallengeS256 = "S256"

	// AuthCodeLifetime is how long an authorization code can be
	// exchanged: long enough for a slow mobile network and a server-side
	// exchange with a retry, short enough that a code leaked through a
	// log, the browser history or a Referer header is useless soon after.
	// RFC 6749 §4.1.2 allows at most ten minutes.
	AuthCodeLifetime = 2 * time.Minute
	// AuthorizeTicketLifetime bounds the time between signing in and
	// answering the consent page.
	AuthorizeTicketLifetime = 10 * time.Minute

	// maxAuthorizeParam bounds each parameter of an authorization request.
	maxAuthorizeParam = 2048
)

// Errors of the authorization endpoint (RFC 6749 §4.1.2.1) and of the
// code exchange (RFC 6749 §5.2).
var (
	errMissingCode     = errorf(400, "invalid_request", `Missing "code" parameter`)
	errMissingVerifier = errorf(400, "invalid_request", `Missing "code_verifier" parameter`)
	errMissingRedirect = errorf(400, "invalid_request", `Missing "redirect_uri" parameter`)
	errBadCode         = errorf(400, "invalid_grant", "Invalid authorization code")
	errExpiredCode     = errorf(400, "invalid_grant", "Authorization code has expired")
	errUsedCode        = errorf(400, "invalid_grant", "Authorization code was already used")
	errCodeRedirect    = errorf(400, "invalid_grant", "redirect_uri does not match the authorization request")
	errCodeClient      = errorf(400, "invalid_grant", "Authorization code was issued to another client")
	errBadVerifier     = errorf(400, "invalid_grant", "code_verifier does not match the code challenge")
	// ErrSignInExpired reports an mfa step or consent ticket that is
	// unknown, expired, used or made for another request: the browser
	// starts over at the sign-in form.
	ErrSignInExpired = errorf(400, "invalid_request", "The sign-in expired; sign in again")
)

// AuthorizeError is a refusal of an authorization request. When Redirect is
// set the client and its redirect URI are valid, and the error goes back to
// the client (RedirectURL); otherwise the browser is shown the error and
// never sent to an unverified address (RFC 6749 §4.1.2.1).
type AuthorizeError struct {
	Code        string
	Description string
	Redirect    bool
	RedirectURI string
	State       string
}

func (e *AuthorizeError) Error() string {
	return fmt.Sprintf("auth: authorize: %s: %s", e.Code, e.Description)
}

// RedirectURL is the client's redirect URI with error, error_description
// and state added to its query.
func (e *AuthorizeError) RedirectURL() string {
	v := url.Values{"error": {e.Code}, "error_description": {e.Description}}
	if e.State != "" {
		v.Set("state", e.State)
	}
	return addQuery(e.RedirectURI, v)
}

// AuthorizeRequest is the parameter set of GET /oauth/authorize.
type AuthorizeRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	State               string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	// Prompt is OpenID Connect's prompt parameter, which many OAuth
	// libraries send: "consent" shows the consent page even when the
	// consent is remembered; "none" is refused with login_required (Wick
	// keeps no sign-in session).
	Prompt string
}

// authorizeParams are the parameters an authorization request may carry
// once each (RFC 6749 §3.1).
var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method", "prompt"}

// Values returns the request as parameters, for hidden form fields and
// links; empty ones are left out.
func (r AuthorizeRequest) Values() url.Values {
	v := url.Values{}
	for _, kv := range [...][2]string{
		{"response_type", r.ResponseType}, {"client_id", r.ClientID}, {"redirect_uri", r.RedirectURI},
		{"state", r.State}, {"scope", r.Scope}, {"code_challenge", r.CodeChallenge},
		{"code_challenge_method", r.CodeChallengeMethod}, {"prompt", r.Prompt},
	} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// ParseAuthorizeRequest reads an authorization request's parameters. It
// always fills the request with the first value of each, so that the
// caller can still find the client and its redirect URI, and returns an
// invalid_request *AuthorizeError (Redirect not yet decided) when a
// parameter is repeated, too long, not UTF-8 or holds control characters.
// Unknown parameters are ignored (RFC 6749 §3.1).
func ParseAuthorizeRequest(v url.Values) (AuthorizeRequest, error) {
	var (
		r   AuthorizeRequest
		bad string
	)
	for _, name := range authorizeParams {
		vals := v[name]
		if len(vals) == 0 {
			continue
		}
		val := vals[0]
		switch {
		case len(vals) > 1:
			bad = fmt.Sprintf("%s is repeated", name)
		case len(val) > maxAuthorizeParam:
			bad, val = fmt.Sprintf("%s is too long", name), ""
		case !utf8.ValidString(val) || strings.ContainsFunc(val, isControl):
			bad, val = fmt.Sprintf("%s holds invalid characters", name), ""
		}
		switch name {
		case "response_type":
			r.ResponseType = val
		case "client_id":
			r.ClientID = val
		case "redirect_uri":
			r.RedirectURI = val
		case "state":
			r.State = val
		case "scope":
			r.Scope = val
		case "code_challenge":
			r.CodeChallenge = val
		case "code_challenge_method":
			r.CodeChallengeMethod = val
		case "prompt":
			r.Prompt = val
		}
	}
	if bad != "" {
		return r, &AuthorizeError{Code: "invalid_request", Description: bad}
	}
	return r, nil
}

// isControl reports the characters no parameter may hold.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validChallenge reports whether c is an S256 code challenge: the
// unpadded base64url encoding of 32 bytes (RFC 7636 §4.2).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// validVerifier reports whether v is a code verifier: 43 to 128 unreserved
// characters (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// S256 returns the code challenge of a verifier: the unpadded base64url
// SHA-256 of its ASCII bytes (RFC 7636 §4.2).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Authorization is a valid authorization request with its client (and the
// client's product, for a product client whose customers sign in).
type Authorization struct {
	Request AuthorizeRequest
	Client  *store.Client
	Product *store.Product // nil for a user client
	// RedirectURI is the registered URI the answer goes to.
	RedirectURI string
	// Scopes is the requested scope set, sorted: ["*:*"] for full access
	// (also when no scope was asked for).
	Scopes []string
	// ForceConsent is prompt=consent: ask even when remembered.
	ForceConsent bool
}

// CheckAuthorize validates an authorization request. Problems with the
// client or redirect URI are an *AuthorizeError without Redirect; every
// later problem one with Redirect (RFC 6749 §4.1.2.1): an unsupported
// response_type (the implicit grant "token" included), a missing or non-S256
// PKCE challenge (RFC 9700 §2.1.1), an unknown scope (or, for a product's
// customers, one other than full access), a prompt Wick cannot honour, or
// a client that is not a web client.
func (s *Service) CheckAuthorize(ctx context.Context, v url.Values) (*Authorization, error) {
	req, parseErr := ParseAuthorizeRequest(v)
	if len(s.cfg.SecretKey) != sealKeyLen {
		return nil, &AuthorizeError{Code: "server_error", Description: "The browser sign-in is not configured on this server"}
	}
	if req.ClientID == "" {
		return nil, &AuthorizeError{Code: "invalid_request", Description: "Missing client_id parameter"}
	}
	if len(v["client_id"]) > 1 || len(v["redirect_uri"]) > 1 {
		// Which client, or where to? Nobody can be told.
		var ae *AuthorizeError
		errors.As(parseErr, &ae)
		return nil, ae
	}
	c, err := s.lookupClient(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &AuthorizeError{Code: "invalid_client", Description: "Unknown client"}
	}
	if c.RedirectURI == "" {
		return nil, &AuthorizeError{Code: "invalid_request", Description: "The client has no registered redirect_uri"}
	}
	// Exact string comparison (RFC 9700 §2.1); an absent redirect_uri means
	// the registered one.
	if req.RedirectURI != "" && req.RedirectURI != c.RedirectURI {
		return nil, &AuthorizeError{Code: "invalid_request", Description: "redirect_uri does not match the registered one"}
	}
	refuse := func(code, desc string) error {
		return &AuthorizeError{Code: code, Description: desc, Redirect: true, RedirectURI: c.RedirectURI, State: req.State}
	}
	if parseErr != nil {
		var ae *AuthorizeError
		errors.As(parseErr, &ae)
		return nil, refuse(ae.Code, ae.Description)
	}
	switch req.ResponseType {
	case ResponseTypeCode:
	case "":
		return nil, refuse("invalid_request", "Missing response_type parameter")
	case "token":
		return nil, refuse("unsupported_response_type", "The implicit grant is not supported; use response_type=code with PKCE")
	default:
		return nil, refuse("unsupported_response_type", "Only response_type=code is supported")
	}
	if c.Type != store.ClientWeb || scopeOnlyCreatesCustomers(c.Scope) {
		return nil, refuse("unauthorized_client", "This client may not use the browser sign-in")
	}
	if req.CodeChallenge == "" {
		return nil, refuse("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256")
	}
	if req.CodeChallengeMethod != CodeChallengeS256 {
		return nil, refuse("invalid_request", "code_challenge_method must be S256")
	}
	if !validChallenge(req.CodeChallenge) {
		return nil, refuse("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier")
	}
	scopes, unknown := parseScopeSet(req.Scope)
	if unknown != "" {
		return nil, refuse("invalid_scope", "Unknown scope "+strconv.Quote(unknown))
	}
	if c.ProductID != 0 && !slices.Equal(scopes, []string{ScopeFull}) {
		return nil, refuse("invalid_scope", "A product's customers sign in with full customer access (*:*) only")
	}
	force := false
	for _, pr := range strings.Fields(req.Prompt) {
		switch pr {
		case "consent":
			force = true
		case "login", "select_account":
			// Every sign-in asks for the password: nothing to do.
		case "none":
			return nil, refuse("login_required", "Wick keeps no sign-in session: the user must sign in")
		default:
			return nil, refuse("invalid_request", "Unknown prompt value "+strconv.Quote(pr))
		}
	}
	a := &Authorization{Request: req, Client: c, RedirectURI: c.RedirectURI, Scopes: scopes, ForceConsent: force}
	if c.ProductID != 0 {
		p, err := s.store.ProductByID(ctx, c.ProductID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, refuse("unauthorized_client", "The client's product no longer exists")
		}
		if err != nil {
			return nil, fmt.Errorf("auth: authorize: %w", err)
		}
		a.Product = p
	}
	return a, nil
}

// Deny is the access_denied answer to the client when the user declines.
func (a *Authorization) Deny() *AuthorizeError {
	return &AuthorizeError{Code: "access_denied", Description: "The user denied the request",
		Redirect: true, RedirectURI: a.RedirectURI, State: a.Request.State}
}

// SignIn is the outcome of a sign-in step: either a second factor is
// needed (MFAToken) or the account is known (Ticket, for the consent page).
type SignIn struct {
	// MFAToken asks for the one-time code of Username's authenticator.
	MFAToken string
	// Ticket is the sealed proof of sign-in the consent form carries.
	Ticket string
	// Username is the signed-in e-mail, for the pages.
	Username string
}

// ticket is what a consent ticket seals: the signed-in subject and the
// request it answers, bound to the browser's form cookie.
type ticket struct {
	Kind       string    `json:"k"`
	UserID     string    `json:"u,omitempty"`
	CustomerID string    `json:"c,omitempty"`
	ProductID  int64     `json:"p,omitempty"`
	Username   string    `json:"n"`
	ClientID   string    `json:"cl"`
	Redirect   string    `json:"r"`
	Challenge  string    `json:"ch"`
	Scope      string    `json:"s,omitempty"`
	Binding    string    `json:"b"`
	Expires    time.Time `json:"e"`
}

// ticketAAD separates consent tickets from every other sealed value.
const ticketAAD = "wick/authorize/ticket/v1"

// AuthorizeLogin checks the credentials typed into the sign-in page: a
// developer's for a user client, a customer's of the client's product for a
// product client. binding is the browser's form cookie. Failures are
// ErrBadUserCreds or a *LimitError (the same limits as POST /oauth/token).
func (s *Service) AuthorizeLogin(ctx context.Context, a *Authorization, binding, username, password string) (*SignIn, error) {
	if username == "" || password == "" {
		return nil, ErrBadUserCreds
	}
	now := s.now()
	if a.Product != nil {
		cu, err := s.checkCustomerPassword(ctx, a.Product.ID, strings.TrimSpace(username), password)
		if err != nil {
			return nil, err
		}
		return s.newTicket(a, binding, subject{kind: store.KindCustomer, customerID: cu.ID, productID: cu.ProductID}, cu.Email, now)
	}
	u, err := s.CheckUserPassword(ctx, username, password)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled {
		err := s.requireMFA(ctx, u, &TokenRequest{ClientID: a.Client.ID}, now)
		var ae *Error
		if errors.As(err, &ae) && ae.MFAToken != "" {
			return &SignIn{MFAToken: ae.MFAToken, Username: u.Username}, nil
		}
		return nil, err
	}
	return s.newTicket(a, binding, subject{kind: store.KindUser, userID: u.ID}, u.Username, now)
}

// AuthorizeOTP finishes a sign-in interrupted for the second factor, with a
// TOTP code or, when code is not six digits, a recovery code. A wrong code
// is ErrInvalidOTP (the step may be retried until Limits.OTPAttempts); an
// unknown, expired or used mfa token is ErrSignInExpired.
func (s *Service) AuthorizeOTP(ctx context.Context, a *Authorization, binding, mfaToken, code string) (*SignIn, error) {
	now := s.now()
	code = strings.TrimSpace(code)
	if ch, err := s.liveChallenge(ctx, mfaToken, store.ChallengeMFALogin, now); err != nil {
		return nil, err
	} else if ch == nil {
		return nil, ErrSignInExpired
	}
	check := func(u *store.User) (bool, error) { return s.spendOTP(ctx, u, code) }
	var spend func(*store.User) error
	if !isOTPShape(code) {
		s.recoveryMu.Lock()
		defer s.recoveryMu.Unlock()
		check, spend = s.recoveryFactor(ctx, code, now)
	}
	u, _, err := s.passSecondFactor(ctx, mfaToken, a.Client.ID, now, ErrInvalidOTP, check, spend)
	if err != nil {
		return nil, err
	}
	return s.newTicket(a, binding, subject{kind: store.KindUser, userID: u.ID}, u.Username, now)
}

// isOTPShape reports whether code looks like a TOTP code (six digits).
func isOTPShape(code string) bool {
	if len(code) != int(totpOpts.Digits) {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// newTicket seals the consent ticket of a signed-in subject.
func (s *Service) newTicket(a *Authorization, binding string, sub subject, username string, now time.Time) (*SignIn, error) {
	t := ticket{
		Kind: sub.kind, UserID: sub.userID, CustomerID: sub.customerID, ProductID: sub.productID,
		Username: username, ClientID: a.Client.ID, Redirect: a.RedirectURI,
		Challenge: a.Request.CodeChallenge, Scope: strings.TrimSpace(a.Request.Scope),
		Binding: bindingHash(binding), Expires: now.Add(AuthorizeTicketLifetime),
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("auth: authorize: %w", err)
	}
	sealed, err := Seal(s.cfg.SecretKey, raw, []byte(ticketAAD))
	if err != nil {
		return nil, fmt.Errorf("auth: authorize: %w", err)
	}
	return &SignIn{Ticket: base64.RawURLEncoding.EncodeToString(sealed), Username: username}, nil
}

// openTicket returns the ticket if it is genuine, unexpired, made in this
// browser and for this very request; otherwise ErrSignInExpired.
func (s *Service) openTicket(a *Authorization, binding, sealed string, now time.Time) (*ticket, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, ErrSignInExpired
	}
	plain, err := Open(s.cfg.SecretKey, raw, []byte(ticketAAD))
	if err != nil {
		return nil, ErrSignInExpired
	}
	var t ticket
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, ErrSignInExpired
	}
	if !now.Before(t.Expires) ||
		subtle.ConstantTimeCompare([]byte(t.Binding), []byte(bindingHash(binding))) != 1 ||
		t.ClientID != a.Client.ID || t.Redirect != a.RedirectURI ||
		t.Challenge != a.Request.CodeChallenge || t.Scope != strings.TrimSpace(a.Request.Scope) {
		return nil, ErrSignInExpired
	}
	return &t, nil
}

// Approve answers the consent page's "Allow": it remembers the consent
// (the union with what the subject granted the client before), issues an
// authorization code for the ticket's subject carrying exactly the granted
// scopes, and returns the client's redirect URI with code and state.
// granted is the part of a.Scopes the user kept ticked; nil means all of
// them. A bad ticket is ErrSignInExpired; granted empty or outside the
// request is ErrScopeNotRequested.
func (s *Service) Approve(ctx context.Context, a *Authorization, binding, sealedTicket string, granted []string) (string, error) {
	now := s.now()
	t, err := s.openTicket(a, binding, sealedTicket, now)
	if err != nil {
		return "", err
	}
	if granted == nil {
		granted = a.Scopes
	}
	granted, _ = parseScopeSet(strings.Join(granted, " "))
	if len(granted) == 0 || !scopeCovers(a.Scopes, granted) {
		return "", ErrScopeNotRequested
	}
	g := &store.OAuthGrant{Kind: t.Kind, SubjectID: t.subjectID(), ClientID: t.ClientID}
	if old, err := s.store.OAuthGrant(ctx, g.Kind, g.SubjectID, g.ClientID); err == nil {
		g.Scope = strings.Join(scopeUnion(strings.Fields(old.Scope), granted), " ")
	} else if errors.Is(err, store.ErrNotFound) {
		g.Scope = strings.Join(granted, " ")
	} else {
		return "", fmt.Errorf("auth: authorize: %w", err)
	}
	if err := s.store.SaveOAuthGrant(ctx, g); err != nil {
		return "", fmt.Errorf("auth: authorize: remember consent: %w", err)
	}
	return s.issueCode(ctx, a, t, granted, now)
}

// ErrScopeNotRequested refuses a consent that grants nothing or more than
// the application asked for.
var ErrScopeNotRequested = errorf(400, "invalid_scope", "Choose at least one of the requested permissions")

// RememberedConsent is called after a sign-in step: when the subject of
// the ticket granted the client every requested scope before and the
// request does not say prompt=consent, it issues the code at once and
// returns the redirect URI (ok true), so the consent page is skipped. The
// sign-in itself (password, one-time code) is never skipped.
func (s *Service) RememberedConsent(ctx context.Context, a *Authorization, binding, sealedTicket string) (string, bool, error) {
	if a.ForceConsent {
		return "", false, nil
	}
	now := s.now()
	t, err := s.openTicket(a, binding, sealedTicket, now)
	if err != nil {
		return "", false, err
	}
	g, err := s.store.OAuthGrant(ctx, t.Kind, t.subjectID(), t.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("auth: authorize: %w", err)
	}
	if !scopeCovers(strings.Fields(g.Scope), a.Scopes) {
		return "", false, nil
	}
	to, err := s.issueCode(ctx, a, t, a.Scopes, now)
	if err != nil {
		return "", false, err
	}
	s.log.InfoContext(ctx, "auth: consent remembered", "client_id", t.ClientID, "kind", t.Kind)
	return to, true, nil
}

// subjectID is the user's or the customer's ID.
func (t *ticket) subjectID() string {
	if t.Kind == store.KindCustomer {
		return t.CustomerID
	}
	return t.UserID
}

// issueCode stores a new authorization code for the ticket's subject with
// the scopes granted and returns the client's redirect URI with it.
func (s *Service) issueCode(ctx context.Context, a *Authorization, t *ticket, granted []string, now time.Time) (string, error) {
	code, err := NewToken()
	if err != nil {
		return "", err
	}
	err = s.store.CreateAuthCode(ctx, &store.AuthCode{
		Hash:          HashToken(code),
		ClientID:      t.ClientID,
		RedirectURI:   t.Redirect,
		CodeChallenge: t.Challenge,
		Kind:          t.Kind,
		UserID:        t.UserID,
		CustomerID:    t.CustomerID,
		ProductID:     t.ProductID,
		Scope:         strings.Join(granted, " "),
		ExpiresAt:     now.Add(AuthCodeLifetime),
		CreatedAt:     now,
	})
	if err != nil {
		return "", fmt.Errorf("auth: authorize: store code: %w", err)
	}
	s.log.InfoContext(ctx, "auth: authorization code issued", "client_id", t.ClientID, "kind", t.Kind,
		"user_id", t.UserID, "customer_id", t.CustomerID)
	v := url.Values{"code": {code}}
	if a.Request.State != "" {
		v.Set("state", a.Request.State)
	}
	return addQuery(t.Redirect, v), nil
}

// addQuery appends v to the query of uri, keeping the query it has.
func addQuery(uri string, v url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + v.Encode()
}

// bindingHash is what a ticket keeps of the form cookie.
func bindingHash(binding string) string {
	sum := sha256.Sum256([]byte("wick/authorize/binding\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// formKey derives the key of form tokens from the server's secret key.
func (s *Service) formKey() []byte {
	m := hmac.New(sha256.New, s.cfg.SecretKey)
	m.Write([]byte("wick/authorize/form-token/v1"))
	return m.Sum(nil)
}

// FormToken returns the anti-CSRF token of one form (named by form) for the
// browser whose form cookie is binding: an HMAC under a key derived from the
// server's secret key. A page from another origin can neither read the
// cookie nor compute the token.
func (s *Service) FormToken(binding, form string) string {
	m := hmac.New(sha256.New, s.formKey())
	m.Write([]byte(form))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckFormToken reports, in constant time, whether token is the form
// token of form for binding. An empty binding or token never matches.
func (s *Service) CheckFormToken(binding, form, token string) bool {
	if binding == "" || token == "" || len(s.cfg.SecretKey) != sealKeyLen {
		return false
	}
	return hmac.Equal([]byte(token), []byte(s.FormToken(binding, form)))
}

// Grant is one remembered consent as its subject sees it.
type Grant struct {
	ClientID   string
	ClientName string
	Product    string // the client's product name; "" for a user client
	Scopes     []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Grants lists the consents the principal (a user or a customer) gave
// through the browser sign-in, newest change first.
func (s *Service) Grants(ctx context.Context, p *Principal) ([]Grant, error) {
	kind, id := grantSubject(p)
	if kind == "" {
		return nil, nil
	}
	list, err := s.store.OAuthGrantsBySubject(ctx, kind, id)
	if err != nil {
		return nil, fmt.Errorf("auth: grants: %w", err)
	}
	out := make([]Grant, 0, len(list))
	for _, g := range list {
		gr := Grant{ClientID: g.ClientID, Scopes: strings.Fields(g.Scope), CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
		if c, err := s.store.ClientByID(ctx, g.ClientID); err == nil {
			gr.ClientName = c.Name
			if c.ProductID != 0 {
				if p, err := s.store.ProductByID(ctx, c.ProductID); err == nil {
					gr.Product = p.Name
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("auth: grants: %w", err)
		}
		out = append(out, gr)
	}
	return out, nil
}

// RevokeGrant forgets the principal's consent to clientID and revokes every
// token that client obtained for the principal (RFC 9700 §4.14: refresh
// tokens included), so that the application loses access at once and its
// next sign-in asks again. store.ErrNotFound (wrapped) if there is none.
func (s *Service) RevokeGrant(ctx context.Context, p *Principal, clientID string) error {
	kind, id := grantSubject(p)
	if kind == "" {
		return fmt.Errorf("auth: revoke grant: %w", store.ErrNotFound)
	}
	hashes, err := s.store.DeleteOAuthGrant(ctx, kind, id, clientID)
	s.dropCached(hashes...)
	if err != nil {
		return fmt.Errorf("auth: revoke grant: %w", err)
	}
	s.log.InfoContext(ctx, "auth: consent revoked", "client_id", clientID, "kind", kind, "tokens", len(hashes))
	return nil
}

// grantSubject is the kind and ID a principal's grants are kept under; ""
// for principals that never sign in through the browser (product tokens).
func grantSubject(p *Principal) (kind, id string) {
	switch p.Kind {
	case store.KindUser:
		return store.KindUser, p.UserID
	case store.KindCustomer:
		return store.KindCustomer, p.CustomerID
	}
	return "", ""
}
