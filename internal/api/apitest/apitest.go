// Package apitest runs API scenarios in tests: an Env wires the real API
// handler to a temporary SQLite store, a real auth.Service with cheap
// hashing, and a fake clock; Do sends one request through ServeHTTP; and
// MatchJSON compares a response body with an expected JSON document in
// which placeholders such as "<hex40>" stand for generated values.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// Clock is a settable clock safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Epoch is the time every Env's clock starts at.
var Epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Options tune New. The zero value is usable.
type Options struct {
	// Config is passed to api.New; its Now is replaced by the Env clock
	// when nil.
	Config api.Config
	// Limits tunes the auth service's failure and hashing limits (zero:
	// auth's defaults).
	Limits auth.Limits
	// WrapStore, when set, wraps the store handed to the API and to auth
	// (to count or fail calls).
	WrapStore func(store.Store) store.Store
	// Log receives the API's and auth's logs; nil discards.
	Log *slog.Logger
	// InMemory uses a private in-memory SQLite database instead of a file
	// in a temporary directory: much faster (no fsync) for tests that
	// build many Envs.
	InMemory bool
	// DSN, when set, opens that store instead of SQLite (such as a
	// PostgreSQL schema for benchmarks).
	DSN string
	// Devices reaches devices for the API; nil gives the Env a fresh
	// FakeDevices (Env.Devices).
	Devices api.DeviceCaller
	// NoDevices leaves api.Deps.Devices nil, as a server without a
	// gateway runs.
	NoDevices bool
	// Bus is the event bus handed to the API (api.Deps.Bus); nil leaves
	// the event routes without delivery. bustest.New opens an embedded
	// one.
	Bus *bus.Bus
	// Webhooks is the webhook delivery engine handed to the API
	// (api.Deps.Webhooks); nil leaves the API without one.
	Webhooks api.WebhookRunner
	// Mail sends the API's e-mail (api.Deps.Mail); nil sends none.
	Mail api.Mailer
	// Image, when set, starts the SQLite database from this image of
	// another Env's database (Env.DB.Snapshot) instead of an empty
	// migrated one, so that a test needing many identical seeded worlds
	// seeds one and copies it. Pass that Env's SecretKey and move the
	// clock to its time as well, for a faithful copy.
	Image []byte
	// SecretKey is the auth service's key (32 bytes); nil draws a random
	// one (Env.SecretKey).
	SecretKey []byte
}

// Env is one API under test with its dependencies.
type Env struct {
	TB      testing.TB
	Store   store.Store // the store the API uses (wrapped, if WrapStore)
	DB      *sqlstore.DB
	Auth    *auth.Service
	Clock   *Clock
	Devices *FakeDevices // the API's DeviceCaller; nil with Options.Devices or NoDevices
	Bus     *bus.Bus     // Options.Bus
	Handler http.Handler
	// SecretKey is the auth service's key (Options.SecretKey).
	SecretKey []byte
}

// New builds an Env over a fresh SQLite database: a file in a temporary
// directory, or in memory with Options.InMemory.
func New(tb testing.TB, opts Options) *Env {
	tb.Helper()
	dsn := "sqlite::memory:"
	if !opts.InMemory {
		// Not tb.TempDir: its name comes from the test name, and a '#' or
		// '?' there is not a valid SQLite DSN path.
		dir, err := os.MkdirTemp("", "wick-apitest-")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		dsn = "sqlite:" + filepath.Join(dir, "wick.db")
	}
	if opts.DSN != "" {
		dsn = opts.DSN
	}
	// Start SQLite from the image of a migrated database instead of
	// applying every migration again (snapshot.go), or from Image.
	img := opts.Image
	if img == nil && strings.HasPrefix(dsn, "sqlite:") {
		img = migratedImage(tb)
	}
	var openOpts []sqlstore.Option
	switch {
	case dsn == "sqlite::memory:":
		openOpts = append(openOpts, sqlstore.WithSnapshot(img))
	case strings.HasPrefix(dsn, "sqlite:"):
		if err := os.WriteFile(strings.TrimPrefix(dsn, "sqlite:"), img, 0o600); err != nil {
			tb.Fatal(err)
		}
	case img != nil:
		tb.Fatalf("apitest: Image needs an SQLite store, not %s", dsn)
	}
	db, err := sqlstore.Open(context.Background(), dsn, nil, openOpts...)
	if err != nil {
		tb.Fatalf("apitest: open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	var st store.Store = db
	if opts.WrapStore != nil {
		st = opts.WrapStore(db)
	}
	clock := NewClock(Epoch)
	key := opts.SecretKey
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			tb.Fatal(err)
		}
	}
	svc := auth.New(auth.Config{Hasher: auth.TestHasher(), SecretKey: key, Now: clock.Now, Limits: opts.Limits}, st, opts.Log)
	cfg := opts.Config
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	var fake *FakeDevices
	devices := opts.Devices
	if devices == nil && !opts.NoDevices {
		fake = NewFakeDevices()
		devices = fake
	}
	return &Env{
		TB:      tb,
		Store:   st,
		DB:      db,
		Auth:    svc,
		Clock:   clock,
		Devices: fake,
		Bus:     opts.Bus,
		Handler: api.New(cfg, api.Deps{Store: st, Auth: svc, Devices: devices, Bus: opts.Bus, Webhooks: opts.Webhooks, Mail: opts.Mail}, opts.Log),

		SecretKey: key,
	}
}

// Req describes one request. Exactly one of JSON, Form and Body is used
// as the body, in that order of preference.
type Req struct {
	Method string
	Path   string // with the query string, if any
	// JSON is marshalled as an application/json body when non-nil.
	JSON any
	// Form is sent as an application/x-www-form-urlencoded body when
	// non-nil.
	Form url.Values
	// Body is sent raw with ContentType.
	Body        string
	ContentType string
	// Token is sent as "Authorization: Bearer Token" when non-empty.
	Token string
	// BasicUser and BasicPass are sent as HTTP Basic when BasicUser is set.
	BasicUser, BasicPass string
	Header               http.Header
	// RemoteAddr defaults to 192.0.2.1:1234.
	RemoteAddr string
	// Raw admits a text/plain answer (?format=raw) besides JSON.
	Raw bool
}

// Resp is a recorded response.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// Map decodes the body as a JSON object, failing the test otherwise.
func (r *Resp) Map(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("apitest: body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// String returns the body's top-level field key as a string ("" if absent).
func (r *Resp) String(tb testing.TB, key string) string {
	tb.Helper()
	s, _ := r.Map(tb)[key].(string)
	return s
}

// Do sends r through the handler and records the response. Every non-204
// response must be JSON with a JSON Content-Type, or a 200 event stream,
// or (under /oauth/authorize) an HTML page or a redirect;
// Do fails the test otherwise. An event stream (text/event-stream) is cut
// at its first flush, as by a client that goes away once it has the
// headers and ":ok": Do cancels the request's context there and returns
// when the handler has.
func (e *Env) Do(r Req) *Resp {
	e.TB.Helper()
	var body []byte
	ct := r.ContentType
	switch {
	case r.JSON != nil:
		b, err := json.Marshal(r.JSON)
		if err != nil {
			e.TB.Fatal(err)
		}
		body, ct = b, "application/json"
	case r.Form != nil:
		body, ct = []byte(r.Form.Encode()), "application/x-www-form-urlencoded"
	default:
		body = []byte(r.Body)
	}
	req := httptest.NewRequest(r.Method, r.Path, bytes.NewReader(body))
	if len(body) == 0 {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	if r.BasicUser != "" {
		req.SetBasicAuth(r.BasicUser, r.BasicPass)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	if r.RemoteAddr != "" {
		req.RemoteAddr = r.RemoteAddr
	}
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	e.Handler.ServeHTTP(streamCutter{rec, cancel}, req.WithContext(ctx))
	resp := &Resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if r.Raw && resp.Status == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return resp
	}
	if resp.Status == http.StatusOK && isEventStream(resp.Header) {
		return resp
	}
	if strings.HasPrefix(r.Path, "/oauth/authorize") &&
		(strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Location") != "") {
		return resp // the browser sign-in answers with pages and redirects
	}
	if resp.Status != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			e.TB.Errorf("apitest: %s %s: status %d with Content-Type %q, want JSON", r.Method, r.Path, resp.Status, ct)
		}
		if !json.Valid(resp.Body) {
			e.TB.Errorf("apitest: %s %s: status %d with invalid JSON body %q", r.Method, r.Path, resp.Status, resp.Body)
		}
	} else if len(resp.Body) != 0 {
		e.TB.Errorf("apitest: %s %s: 204 with a body %q", r.Method, r.Path, resp.Body)
	}
	return resp
}

// streamCutter records a response and cancels the request at the first
// flush of an event stream.
type streamCutter struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

// Flush records the flush and ends an event stream's request.
func (w streamCutter) Flush() {
	w.ResponseRecorder.Flush()
	if isEventStream(w.Header()) {
		w.cancel()
	}
}

// isEventStream reports whether the response is Server-Sent Events.
func isEventStream(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
}

// Scenario is one request and what must come back.
type Scenario struct {
	Name string
	Req  Req
	// Status is the expected status code.
	Status int
	// Want, when set, is the exact expected JSON body (see MatchJSON).
	Want string
	// Check, when set, runs further assertions.
	Check func(tb testing.TB, r *Resp)
}

// Run runs the scenarios in order, as subtests, on one Env: a scenario
// sees the effects of those before it.
func (e *Env) Run(t *testing.T, scenarios []Scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			outer := e.TB
			e.TB = t
			defer func() { e.TB = outer }()
			r := e.Do(sc.Req)
			if r.Status != sc.Status {
				t.Errorf("%s %s: status %d, want %d; body %s", sc.Req.Method, sc.Req.Path, r.Status, sc.Status, r.Body)
			}
			if sc.Want != "" {
				MatchJSON(t, r.Body, sc.Want)
			}
			if sc.Check != nil {
				sc.Check(t, r)
			}
		})
	}
}

// Fixtures.

// stamp returns the clock's time and advances the clock by a millisecond,
// so that fixtures made in a row have distinct creation times and list in
// the order they were made.
func (e *Env) stamp() time.Time {
	t := e.Clock.Now()
	e.Clock.Advance(time.Millisecond)
	return t
}

// CreateUser stores a user with that password.
func (e *Env) CreateUser(username, password string) *store.User {
	e.TB.Helper()
	hash, err := e.Auth.HashPassword(password)
	if err != nil {
		e.TB.Fatal(err)
	}
	u := &store.User{Username: username, PasswordHash: hash, Verified: true, CreatedAt: e.stamp()}
	if err := e.Store.CreateUser(context.Background(), u); err != nil {
		e.TB.Fatalf("apitest: create user: %v", err)
	}
	return u
}

// Issue mints a token and returns its value.
func (e *Env) Issue(is auth.Issue) string {
	e.TB.Helper()
	resp, err := e.Auth.IssueToken(context.Background(), is)
	if err != nil {
		e.TB.Fatalf("apitest: issue token: %v", err)
	}
	return resp.AccessToken
}

// UserToken mints a 90-day token for u.
func (e *Env) UserToken(u *store.User) string {
	return e.Issue(auth.Issue{Kind: store.KindUser, UserID: u.ID, ClientID: "apitest", Lifetime: auth.DefaultLifetime})
}

// CreateProduct stores a product owned by u.
func (e *Env) CreateProduct(u *store.User, slug string) *store.Product {
	e.TB.Helper()
	p := &store.Product{Slug: slug, Name: slug, PlatformID: 12, OwnerID: u.ID, Settings: []byte("{}"), CreatedAt: e.stamp()}
	if err := e.Store.CreateProduct(context.Background(), p, u.Username); err != nil {
		e.TB.Fatalf("apitest: create product: %v", err)
	}
	return p
}

// CreateClient stores c with a fresh secret and returns the secret.
func (e *Env) CreateClient(c *store.Client) string {
	e.TB.Helper()
	secret, hash, err := e.Auth.NewClientSecret()
	if err != nil {
		e.TB.Fatal(err)
	}
	c.SecretHash = hash
	if c.Type == "" {
		c.Type = store.ClientInstalled
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = e.stamp()
	}
	if err := e.Store.CreateClient(context.Background(), c); err != nil {
		e.TB.Fatalf("apitest: create client: %v", err)
	}
	return secret
}

// CreateCustomer stores a customer of the product; an empty password
// makes a shadow customer.
func (e *Env) CreateCustomer(productID int64, email, password string) *store.Customer {
	e.TB.Helper()
	c := &store.Customer{ProductID: productID, Email: email, CreatedAt: e.stamp()}
	if password != "" {
		hash, err := e.Auth.HashPassword(password)
		if err != nil {
			e.TB.Fatal(err)
		}
		c.PasswordHash = hash
	}
	if err := e.Store.CreateCustomer(context.Background(), c); err != nil {
		e.TB.Fatalf("apitest: create customer: %v", err)
	}
	return c
}
