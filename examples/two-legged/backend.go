package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// Config is what the back end needs to act for its product.
type Config struct {
	// API is the Wick (or Particle) API base URL.
	API string
	// Product is the product's ID or slug.
	Product string
	// ClientID and ClientSecret are the product's OAuth client (type
	// installed/two-legged); they never leave this server.
	ClientID, ClientSecret string
	// SecureCookie marks the session cookie Secure (serve over HTTPS).
	SecureCookie bool
}

// sessionCookie names the cookie holding a session ID.
const sessionCookie = "session"

// maxBody caps the size of a request body.
const maxBody = 4 << 10

// callTimeout bounds one call to the cloud.
const callTimeout = 30 * time.Second

// session is one logged-in browser: the customer and its current
// customer-scoped token, which stays on the server.
type session struct {
	email   string
	token   string
	expires time.Time // zero: the token does not expire
}

// Backend is the two-legged back end: its own users, a shadow customer
// for each of them, and sessions holding the customers' tokens.
type Backend struct {
	cfg   Config
	users *Users
	cloud *cloud.Client // no token: client credentials authenticate
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	sessions map[string]session
}

// NewBackend returns a back end acting for cfg.Product with users as its
// user table.
func NewBackend(cfg Config, users *Users, log *slog.Logger) *Backend {
	return &Backend{
		cfg:      cfg,
		users:    users,
		cloud:    cloud.New(cfg.API, ""),
		log:      log,
		now:      time.Now,
		sessions: map[string]session{},
	}
}

func (b *Backend) creds() *cloud.TokenOptions {
	return &cloud.TokenOptions{ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret}
}

// Handler serves the back end's JSON API:
//
//	POST /api/signup     {"email","password"}: a user and its shadow customer; logs in
//	POST /api/login      {"email","password"}: a fresh customer-scoped token in a new session
//	POST /api/logout     revokes the session's token and ends the session
//	POST /api/claim-code a claim code for the customer's device setup
//	GET  /api/devices    the customer's devices
//	GET  /api/me         the session's customer
//
// Answers are JSON: {"ok":true,…} or {"ok":false,"error":"…"}.
func (b *Backend) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("POST /api/signup", b.signup)
	mux.HandleFunc("POST /api/login", b.login)
	mux.HandleFunc("POST /api/logout", b.withSession(b.logout))
	mux.HandleFunc("POST /api/claim-code", b.withSession(b.claimCode))
	mux.HandleFunc("GET /api/devices", b.withSession(b.devices))
	mux.HandleFunc("GET /api/me", b.withSession(func(w http.ResponseWriter, r *http.Request, id string, s session) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "email": s.email})
	}))
	return mux
}

// credentials reads {"email","password"} from a JSON body. Requiring JSON
// also keeps plain cross-site forms out (they cannot send it without a
// CORS preflight).
func credentials(r *http.Request) (email, password string, err error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return "", "", errors.New("the body must be JSON (Content-Type: application/json)")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return "", "", errors.New("the body must be a JSON object with email and password")
	}
	return in.Email, in.Password, nil
}

// signup creates the user, then its shadow customer: a customer of the
// product without a password, created with the client's credentials. The
// customer's first token starts a session. When the cloud refuses, the
// user is removed again, so that the two tables agree.
func (b *Backend) signup(w http.ResponseWriter, r *http.Request) {
	email, password, err := credentials(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	email, err = b.users.Add(email, password)
	switch {
	case errors.Is(err, errUserExists):
		writeError(w, http.StatusConflict, err)
		return
	case errors.Is(err, errBadEmail), errors.Is(err, errBadPassword):
		writeError(w, http.StatusBadRequest, err)
		return
	case err != nil:
		b.log.Error("sign-up", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("two-legged: could not save the user"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	tok, err := b.cloud.CreateCustomer(ctx, b.cfg.Product, cloud.NewCustomer{Email: email, NoPassword: true}, b.creds())
	if err != nil {
		b.log.Warn("shadow customer", "email", email, "err", err)
		if rerr := b.users.Remove(email); rerr != nil {
			b.log.Error("undo sign-up", "email", email, "err", rerr)
		}
		writeError(w, http.StatusBadGateway, errors.New("two-legged: the cloud refused the new customer"))
		return
	}
	b.startSession(w, email, tok)
	writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "email": email})
}

// login checks the password against the user table and mints a fresh
// customer-scoped token: the client_credentials grant with scope
// customer=EMAIL.
func (b *Backend) login(w http.ResponseWriter, r *http.Request) {
	email, password, err := credentials(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	email, err = b.users.Verify(email, password)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	tok, err := b.cloud.ClientCredentials(ctx, "customer="+email, b.creds())
	if err != nil {
		b.log.Warn("customer token", "email", email, "err", err)
		writeError(w, http.StatusBadGateway, errors.New("two-legged: the cloud refused a token for this customer"))
		return
	}
	b.startSession(w, email, tok)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "email": email})
}

// startSession keeps tok for email under a new session ID and sets the
// cookie.
func (b *Backend) startSession(w http.ResponseWriter, email string, tok *cloud.Token) {
	s := session{email: email, token: tok.AccessToken}
	if tok.ExpiresIn > 0 {
		s.expires = b.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	id := newSessionID()
	b.mu.Lock()
	b.sessions[id] = s
	b.mu.Unlock()
	c := &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: b.cfg.SecureCookie}
	if !s.expires.IsZero() {
		c.Expires = s.expires
	}
	http.SetCookie(w, c)
}

// withSession passes the request's live session to h, or answers 401.
func (b *Backend) withSession(h func(http.ResponseWriter, *http.Request, string, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			writeError(w, http.StatusUnauthorized, errors.New("two-legged: not logged in"))
			return
		}
		b.mu.Lock()
		s, ok := b.sessions[c.Value]
		if ok && !s.expires.IsZero() && !b.now().Before(s.expires) {
			delete(b.sessions, c.Value)
			ok = false
		}
		b.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, errors.New("two-legged: not logged in"))
			return
		}
		h(w, r, c.Value, s)
	}
}

// customer returns a client acting with the session's token.
func (b *Backend) customer(s session) *cloud.Client { return b.cloud.WithToken(s.token) }

// cloudFailed answers for a failed customer call: a token the cloud no
// longer accepts ends the session.
func (b *Backend) cloudFailed(w http.ResponseWriter, id string, what string, err error) {
	if cloud.IsUnauthorized(err) {
		b.endSession(id)
		writeError(w, http.StatusUnauthorized, errors.New("two-legged: the session's token was refused; log in again"))
		return
	}
	b.log.Warn(what, "err", err)
	writeError(w, http.StatusBadGateway, errors.New("two-legged: "+what+" failed"))
}

func (b *Backend) endSession(id string) {
	b.mu.Lock()
	delete(b.sessions, id)
	b.mu.Unlock()
}

// logout revokes the session's token (DELETE /v1/access_tokens/current)
// and ends the session even if the cloud cannot be reached.
func (b *Backend) logout(w http.ResponseWriter, r *http.Request, id string, s session) {
	b.endSession(id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: b.cfg.SecureCookie})
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	if err := b.customer(s).Logout(ctx); err != nil && !cloud.IsUnauthorized(err) {
		b.log.Warn("revoke token", "email", s.email, "err", err)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "revoked": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "revoked": true})
}

// claimCode creates a claim code for the customer on the product's
// route, POST /v1/products/{product}/device_claims: the device that
// reports it during setup joins the product and becomes the customer's.
func (b *Backend) claimCode(w http.ResponseWriter, r *http.Request, id string, s session) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	code, err := b.customer(s).CreateClaimCode(ctx, b.cfg.Product)
	if err != nil {
		b.cloudFailed(w, id, "claim code", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "claim_code": code.ClaimCode})
}

// deviceJSON is one device as the back end shows it.
type deviceJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Online bool   `json:"online"`
}

// devices lists the customer's devices.
func (b *Backend) devices(w http.ResponseWriter, r *http.Request, id string, s session) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	list, err := b.customer(s).ListDevices(ctx)
	if err != nil {
		b.cloudFailed(w, id, "device list", err)
		return
	}
	out := make([]deviceJSON, 0, len(list))
	for _, d := range list {
		dj := deviceJSON{ID: d.ID, Online: d.Online}
		if d.Name != nil {
			dj.Name = *d.Name
		}
		out = append(out, dj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "devices": out})
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]any{"ok": false, "error": strings.TrimPrefix(err.Error(), "two-legged: ")})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
