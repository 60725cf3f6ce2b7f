package api

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// The browser sign-in pages of GET and POST /oauth/authorize
// (docs/authentication.md, Browser sign-in). auth decides; this file
// renders: the sign-in form, the one-time-code form, the consent page and
// the error page, all plain HTML forms without scripts. Every form carries
// an anti-CSRF token bound to a cookie of this browser; pages cannot be
// framed and are never cached.

//go:embed authorize.html
var authorizeFS embed.FS

// authorizePages are the parsed templates of authorize.html.
var authorizePages = template.Must(template.ParseFS(authorizeFS, "authorize.html"))

// authorizeCookie names the cookie that binds the sign-in forms to one
// browser; it is sent only to /oauth/authorize.
const (
	authorizeCookie     = "wick_authorize"
	authorizeCookiePath = "/oauth/authorize"
)

// Form names: each step's form has its own token.
const (
	stepLogin   = "login"
	stepOTP     = "otp"
	stepConsent = "consent"
)

// authorizePage is the data of every template.
type authorizePage struct {
	Nonce     string
	Step      string
	Title     string
	Error     string
	Hidden    []hiddenField
	ClientID  string
	App       string // the client's name
	Product   string // the product's name, for customer sign-in
	Username  string
	Redirect  string // the origin the browser goes back to
	Full      bool   // the consent grants full access to a developer account
	StartOver string // a link to start the sign-in again
	// Scopes are the requested scopes in plain words; Choose shows them
	// as boxes to untick (several narrow scopes).
	Scopes []scopeLine
	Choose bool
}

// scopeLine is one requested scope on the consent page.
type scopeLine struct{ Name, Words string }

// hiddenField is one hidden input of a form.
type hiddenField struct{ Name, Value string }

// handleAuthorize is GET /oauth/authorize: it validates the request and
// shows the sign-in form, or refuses it (RFC 6749 §4.1.2.1): back to the
// client when its redirect URI is verified, on an error page otherwise.
func (s *server) handleAuthorize(rq *request) error {
	binding := s.formCookie(rq, true)
	a, err := s.auth.CheckAuthorize(rq.ctx, paramValues(rq.params))
	if err != nil {
		return s.authorizeRefused(rq, err, http.StatusFound)
	}
	return s.renderAuthorize(rq, http.StatusOK, a, binding, stepLogin, "", nil)
}

// handleAuthorizePost is POST /oauth/authorize: the answer to one of the
// forms, named by its step field.
func (s *server) handleAuthorizePost(rq *request) error {
	p := rq.params
	step := p.str("step")
	binding := s.formCookie(rq, false)
	if !s.auth.CheckFormToken(binding, step, p.str("csrf_token")) {
		s.log.InfoContext(rq.ctx, "api: authorize form refused: bad or missing form token", "ip", rq.ip)
		return s.authorizeError(rq, http.StatusForbidden, nil, "This form expired or was not sent from this page",
			"Go back to the application and start the sign-in again.")
	}
	a, err := s.auth.CheckAuthorize(rq.ctx, paramValues(p))
	if err != nil {
		return s.authorizeRefused(rq, err, http.StatusSeeOther)
	}
	switch step {
	case stepLogin:
		username := strings.TrimSpace(p.str("username"))
		in, err := s.auth.AuthorizeLogin(rq.ctx, a, binding, username, p.str("password"))
		if err != nil {
			// The form comes back with the e-mail kept.
			return s.signInFailed(rq, a, binding, stepLogin, err, &auth.SignIn{Username: username})
		}
		return s.signedIn(rq, a, binding, in)
	case stepOTP:
		mfa := p.str("mfa_token")
		in, err := s.auth.AuthorizeOTP(rq.ctx, a, binding, mfa, p.str("otp"))
		if err != nil {
			return s.signInFailed(rq, a, binding, stepOTP, err, &auth.SignIn{MFAToken: mfa, Username: p.str("username")})
		}
		return s.signedIn(rq, a, binding, in)
	case stepConsent:
		var granted []string // nil: everything asked for
		if chooseScopes(a) {
			granted = append([]string{}, paramValues(p)["grant_scope"]...)
		}
		if p.str("action") != "allow" || (granted != nil && len(granted) == 0) {
			rq.w.Header().Set("Location", s.withIssuer(rq, a.Deny().RedirectURL()))
			rq.w.WriteHeader(http.StatusSeeOther)
			return nil
		}
		to, err := s.auth.Approve(rq.ctx, a, binding, p.str("ticket"), granted)
		if errors.Is(err, auth.ErrScopeNotRequested) {
			return s.authorizeError(rq, http.StatusBadRequest, nil, "Those permissions were not asked for",
				"Go back to the application and start the sign-in again.")
		}
		if err != nil {
			return s.signInFailed(rq, a, binding, stepLogin, err, nil)
		}
		// 303: the browser follows with a GET and never re-posts the
		// form to the client (RFC 9700 §4.12).
		rq.w.Header().Set("Location", s.withIssuer(rq, to))
		rq.w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	return s.authorizeError(rq, http.StatusBadRequest, nil, "Unknown sign-in step", "")
}

// signedIn shows the next page after a right password or code: the
// one-time-code form, or the consent page.
func (s *server) signedIn(rq *request, a *auth.Authorization, binding string, in *auth.SignIn) error {
	if in.MFAToken != "" {
		return s.renderAuthorize(rq, http.StatusOK, a, binding, stepOTP, "", in)
	}
	// A consent given before that covers this request skips the page
	// (docs/authentication.md, Remembered consent); the 303 is the same
	// as after the consent form.
	to, ok, err := s.auth.RememberedConsent(rq.ctx, a, binding, in.Ticket)
	if err != nil {
		return s.signInFailed(rq, a, binding, stepLogin, err, nil)
	}
	if ok {
		rq.w.Header().Set("Location", s.withIssuer(rq, to))
		rq.w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	return s.renderAuthorize(rq, http.StatusOK, a, binding, stepConsent, "", in)
}

// signInFailed shows the form of step again with what went wrong. A sign-in
// that expired goes back to the password form.
func (s *server) signInFailed(rq *request, a *auth.Authorization, binding, step string, err error, in *auth.SignIn) error {
	var (
		le  *auth.LimitError
		ae  *auth.Error
		msg string
	)
	status := http.StatusUnauthorized
	defer func() {
		s.log.InfoContext(rq.ctx, "api: browser sign-in refused", "client_id", a.Client.ID, "step", step,
			"status", status, "ip", rq.ip, "err", err)
	}()
	switch {
	case errors.As(err, &le):
		status = le.Status
		secs := max(int64((le.RetryAfter+time.Second-1)/time.Second), 1)
		rq.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		msg = "Too many failed attempts. Try again in " + humanDuration(le.RetryAfter) + "."
		if le.Status == http.StatusServiceUnavailable {
			msg = "The server is busy. Try again in a moment."
		}
	case errors.Is(err, auth.ErrSignInExpired):
		step, in, status = stepLogin, nil, http.StatusBadRequest
		msg = "Your sign-in expired. Sign in again."
	case errors.As(err, &ae) && step == stepOTP:
		msg = "That code is not right. Try the current code from your authenticator app."
	case errors.As(err, &ae):
		msg = "The e-mail or password is not right."
	default:
		return s.authorizeError(rq, http.StatusInternalServerError, err, "Something went wrong", "Try again in a moment.")
	}
	return s.renderAuthorize(rq, status, a, binding, step, msg, in)
}

// renderAuthorize renders one step's page for a valid request.
func (s *server) renderAuthorize(rq *request, status int, a *auth.Authorization, binding, step, msg string, in *auth.SignIn) error {
	page := authorizePage{
		Step:     step,
		Error:    msg,
		ClientID: a.Client.ID,
		App:      a.Client.Name,
		Redirect: origin(a.RedirectURI),
		Full:     a.Product == nil && len(a.Scopes) == 1 && a.Scopes[0] == auth.ScopeFull,
		Choose:   chooseScopes(a),
	}
	kind := store.KindUser
	if a.Product != nil {
		kind = store.KindCustomer
	}
	for _, sc := range a.Scopes {
		page.Scopes = append(page.Scopes, scopeLine{Name: sc, Words: auth.ScopeWords(sc, kind)})
	}
	if a.Product != nil {
		page.Product = a.Product.Name
	}
	hidden := []hiddenField{{"step", step}, {"csrf_token", s.auth.FormToken(binding, step)}}
	for _, name := range []string{"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method", "prompt"} {
		if v := a.Request.Values().Get(name); v != "" {
			hidden = append(hidden, hiddenField{name, v})
		}
	}
	if in != nil {
		page.Username = in.Username
		switch step {
		case stepOTP:
			hidden = append(hidden, hiddenField{"mfa_token", in.MFAToken}, hiddenField{"username", in.Username})
		case stepConsent:
			hidden = append(hidden, hiddenField{"ticket", in.Ticket})
		}
	}
	page.Hidden = hidden
	switch step {
	case stepOTP:
		page.Title = "Two-step verification"
	case stepConsent:
		page.Title = "Allow " + a.Client.Name + "?"
	default:
		page.Title = "Sign in to " + a.Client.Name
	}
	return s.writePage(rq, status, page, page.Redirect)
}

// chooseScopes reports whether the consent page lets the user untick
// scopes: a developer's sign-in asking for more than one narrow scope.
func chooseScopes(a *auth.Authorization) bool {
	return a.Product == nil && len(a.Scopes) > 1
}

// authorizeRefused answers a request CheckAuthorize refused: a redirect to
// the client (status 302 after a GET, 303 after a POST) when allowed,
// the error page otherwise.
func (s *server) authorizeRefused(rq *request, err error, redirectStatus int) error {
	var ae *auth.AuthorizeError
	if !errors.As(err, &ae) {
		return s.authorizeError(rq, http.StatusInternalServerError, err, "Something went wrong", "Try again in a moment.")
	}
	if ae.Redirect {
		rq.w.Header().Del("Access-Control-Allow-Origin")
		rq.w.Header().Set("Location", s.withIssuer(rq, ae.RedirectURL()))
		rq.w.WriteHeader(redirectStatus)
		return nil
	}
	return s.authorizeError(rq, http.StatusBadRequest, nil, "This sign-in link is not valid",
		ae.Description+" ("+ae.Code+"). Tell the developer of the application that sent you here.")
}

// authorizeError renders the error page; err, if any, is logged.
func (s *server) authorizeError(rq *request, status int, err error, title, detail string) error {
	if err != nil {
		s.log.ErrorContext(rq.ctx, "api: authorize", "err", err)
	}
	return s.writePage(rq, status, authorizePage{Step: "error", Title: title, Error: detail}, "")
}

// writePage writes a page with the headers of the sign-in: no framing
// (frame-ancestors, X-Frame-Options), no scripts, styles only with this
// answer's nonce, forms only to Wick and to the client's origin (where the
// consent form's answer redirects), no caching, no Referer, and no CORS.
func (s *server) writePage(rq *request, status int, page authorizePage, formOrigin string) error {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	page.Nonce = base64.RawStdEncoding.EncodeToString(nonce[:])
	h := rq.w.Header()
	h.Del("Access-Control-Allow-Origin")
	formAction := "'self'"
	if formOrigin != "" {
		formAction += " " + formOrigin
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+page.Nonce+"'; img-src data:; form-action "+
		formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := authorizePages.ExecuteTemplate(&b, "page", page); err != nil {
		return err
	}
	rq.w.WriteHeader(status)
	_, err := rq.w.Write([]byte(b.String()))
	return err
}

// withIssuer adds iss, this server's base URL (issuer), to an answer for
// the client (RFC 9207), so that a client signing users in at several
// servers can tell which one answered (mix-up attacks, RFC 9700 §4.4).
func (s *server) withIssuer(rq *request, location string) string {
	return location + "&iss=" + url.QueryEscape(s.issuer(rq))
}

// formCookie returns this browser's form cookie. With create, a browser
// without one gets a new one; without, a missing cookie is "" (and no form
// token matches it).
func (s *server) formCookie(rq *request, create bool) string {
	if c, err := rq.r.Cookie(authorizeCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	if !create {
		return ""
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(rq.w, &http.Cookie{
		Name:     authorizeCookie,
		Value:    v,
		Path:     authorizeCookiePath,
		HttpOnly: true,
		Secure:   rq.r.TLS != nil || strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https:"),
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

// paramValues turns the request's parameters back into url.Values: a list
// stays a list (a repeated parameter), scalars become one string.
func paramValues(p params) url.Values {
	v := url.Values{}
	for k := range p {
		if l, ok := p[k].([]any); ok {
			for _, e := range l {
				v.Add(k, scalarString(e))
			}
			continue
		}
		v.Set(k, p.str(k))
	}
	return v
}

// origin returns scheme://host of an absolute URL, or "".
func origin(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	// The origin goes into a Content-Security-Policy header: nothing but
	// host characters.
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return ""
		}
	}
	return u.Scheme + "://" + u.Host
}

// humanDuration spells a wait in whole minutes, or seconds under one.
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(max(int((d+time.Second-1)/time.Second), 1)) + " seconds"
	}
	m := int((d + time.Minute - 1) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}
