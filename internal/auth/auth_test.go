package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/internal/testproc"
)

// testKey is the sealing key of test services.
var testKey = bytes.Repeat([]byte{0x42}, 32)

// fakeClock is an adjustable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore counts the store reads that Authenticate may make, to prove
// that cache hits do not reach the database.
type countingStore struct {
	store.Store
	tokenByHash atomic.Int64
}

func (c *countingStore) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	c.tokenByHash.Add(1)
	return c.Store.TokenByHash(ctx, hash)
}

// lockedBuffer is a buffer safe for concurrent writes.
type lockedBuffer = testproc.Log

// Fixture credentials.
const (
	userPassword     = "correct horse battery staple"
	customerPassword = "customer secret pass"
	userEmail        = "dev@example.com"
	customerEmail    = "jane@example.com"
	shadowEmail      = "shadow@example.com"
)

// fixture is a Service over a fresh SQLite database with one user, one
// product, customers and clients.
type fixture struct {
	svc   *Service
	st    *countingStore
	clock *fakeClock
	logs  *lockedBuffer
	ctx   context.Context

	user     *store.User
	product  *store.Product
	customer *store.Customer
	shadow   *store.Customer

	userClient, productClient, createOnlyClient *store.Client
	userSecret, productSecret, createOnlySecret string
}

// newFixture builds a fixture; tune may adjust the Config before New.
func newFixture(t testing.TB, tune ...func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{st: &countingStore{Store: db}, clock: newFakeClock(), logs: &lockedBuffer{}, ctx: ctx}
	cfg := Config{Now: f.clock.Now, SecretKey: testKey, Issuer: "Wick", Hasher: TestHasher()}
	for _, fn := range tune {
		fn(&cfg)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.svc = New(cfg, f.st, log)

	hash := func(pw string) string {
		h, err := f.svc.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	f.user = &store.User{Username: userEmail, PasswordHash: hash(userPassword)}
	if err := db.CreateUser(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	f.product = &store.Product{Slug: "widget", Name: "Widget", PlatformID: 6, OwnerID: f.user.ID}
	if err := db.CreateProduct(ctx, f.product, f.user.Username); err != nil {
		t.Fatal(err)
	}
	f.customer = &store.Customer{ProductID: f.product.ID, Email: customerEmail, PasswordHash: hash(customerPassword)}
	if err := db.CreateCustomer(ctx, f.customer); err != nil {
		t.Fatal(err)
	}
	f.shadow = &store.Customer{ProductID: f.product.ID, Email: shadowEmail}
	if err := db.CreateCustomer(ctx, f.shadow); err != nil {
		t.Fatal(err)
	}
	client := func(id, scope, owner string, product int64) (*store.Client, string) {
		secret, h, err := f.svc.NewClientSecret()
		if err != nil {
			t.Fatal(err)
		}
		c := &store.Client{ID: id, Name: id, Type: store.ClientInstalled, Scope: scope, SecretHash: h, OwnerID: owner, ProductID: product}
		if err := db.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c, secret
	}
	f.userClient, f.userSecret = client("myapp-1234", "", f.user.ID, 0)
	f.productClient, f.productSecret = client("widget-5678", "", "", f.product.ID)
	f.createOnlyClient, f.createOnlySecret = client("widget-9999", ScopeCustomersCreate, "", f.product.ID)
	return f
}

// token runs a grant and fails the test on error.
func (f *fixture) token(t testing.TB, req TokenRequest) *TokenResponse {
	t.Helper()
	resp, err := f.svc.Token(f.ctx, req)
	if err != nil {
		t.Fatalf("Token(%s): %v", req.GrantType, err)
	}
	return resp
}

// login runs a password grant for the fixture user through an unregistered
// client.
func (f *fixture) login(t testing.TB) *TokenResponse {
	t.Helper()
	return f.token(t, passwordReq("particle-cli", "particle-cli", userEmail, userPassword))
}

// authenticate resolves a token and fails the test on error.
func (f *fixture) authenticate(t testing.TB, token string) *Principal {
	t.Helper()
	p, err := f.svc.Authenticate(f.ctx, token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
}

// passwordReq builds a password grant request.
func passwordReq(clientID, secret, username, password string) TokenRequest {
	return TokenRequest{GrantType: GrantPassword, ClientID: clientID, ClientSecret: secret, ClientSecretSet: true,
		Username: username, Password: password}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// wantError fails unless err is an *Error with the given status, code and
// description.
func wantError(t testing.TB, err error, want *Error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v; want *Error %d %s %q", err, want.Status, want.Code, want.Description)
	}
	if e.Status != want.Status || e.Code != want.Code || e.Description != want.Description {
		t.Fatalf("err = %d %s %q; want %d %s %q", e.Status, e.Code, e.Description, want.Status, want.Code, want.Description)
	}
}
