package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// addUser creates a user with the given username and returns it as stored.
func addUser(t *testing.T, s store.Store, username string) *store.User {
	t.Helper()
	u := &store.User{
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		AccountInfo:  store.AccountInfo{FirstName: "First " + username},
	}
	must(t, s.CreateUser(t.Context(), u))
	return u
}

// addProduct creates a product with the given slug, owned by owner.
func addProduct(t *testing.T, s store.Store, slug string, owner *store.User) *store.Product {
	t.Helper()
	p := &store.Product{Slug: slug, Name: "Product " + slug, PlatformID: 12, OwnerID: owner.ID}
	must(t, s.CreateProduct(t.Context(), p, owner.Username))
	return p
}

// addCustomer creates a customer of productID.
func addCustomer(t *testing.T, s store.Store, productID int64, email string) *store.Customer {
	t.Helper()
	c := &store.Customer{ProductID: productID, Email: email, PasswordHash: "hash-" + email}
	must(t, s.CreateCustomer(t.Context(), c))
	return c
}

// addClient creates an OAuth client.
func addClient(t *testing.T, s store.Store, id, ownerID string, productID int64) *store.Client {
	t.Helper()
	c := &store.Client{
		ID: id, Name: "client " + id, Type: store.ClientInstalled,
		SecretHash: "secret-" + id, OwnerID: ownerID, ProductID: productID,
	}
	must(t, s.CreateClient(t.Context(), c))
	return c
}

// addToken creates an access token; the subject fields come from proto.
func addToken(t *testing.T, s store.Store, hash string, proto store.Token) *store.Token {
	t.Helper()
	tok := proto
	tok.Hash = hash
	if tok.Kind == "" {
		tok.Kind = store.KindUser
	}
	must(t, s.CreateToken(t.Context(), &tok))
	return &tok
}

// addRefresh creates a refresh token for access token a, expiring a day
// after base.
func addRefresh(t *testing.T, s store.Store, hash string, a *store.Token) *store.RefreshToken {
	t.Helper()
	r := &store.RefreshToken{
		Hash: hash, AccessHash: a.Hash, Kind: a.Kind, UserID: a.UserID,
		CustomerID: a.CustomerID, ProductID: a.ProductID, ClientID: a.ClientID,
		Scope: a.Scope, ExpiresAt: at(24 * time.Hour),
	}
	must(t, s.CreateRefreshToken(t.Context(), r))
	return r
}

// addChallenge creates a challenge of userID expiring at expires.
func addChallenge(t *testing.T, s store.Store, hash, userID string, expires time.Time) *store.Challenge {
	t.Helper()
	c := &store.Challenge{
		Hash: hash, Purpose: store.ChallengeMFALogin, UserID: userID,
		Data: []byte(`{"n":1}`), ExpiresAt: expires,
	}
	must(t, s.CreateChallenge(t.Context(), c))
	return c
}

// tokenExists reports whether TokenByHash finds hash, failing the test on
// errors other than store.ErrNotFound.
func tokenExists(t *testing.T, s store.Store, hash string) bool {
	t.Helper()
	_, err := s.TokenByHash(t.Context(), hash)
	return exists(t, "TokenByHash("+hash+")", err)
}

// refreshExists reports whether the refresh token exists. It takes the
// token and puts it back, since Tokens has no read-only lookup for it.
func refreshExists(t *testing.T, s store.Store, hash string) bool {
	t.Helper()
	r, err := s.TakeRefreshToken(t.Context(), hash)
	if !exists(t, "TakeRefreshToken("+hash+")", err) {
		return false
	}
	must(t, s.CreateRefreshToken(t.Context(), r))
	return true
}

// challengeExists reports whether the mfa-login challenge exists.
func challengeExists(t *testing.T, s store.Store, hash string) bool {
	t.Helper()
	_, err := s.ChallengeByHash(t.Context(), hash, store.ChallengeMFALogin)
	return exists(t, "ChallengeByHash("+hash+")", err)
}

// exists turns a lookup error into found / not found.
func exists(t *testing.T, what string, err error) bool {
	t.Helper()
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		return false
	}
	t.Fatalf("%s: %v", what, err)
	return false
}

// checkPresence fails the test unless each key's presence matches want.
func checkPresence(t *testing.T, kind string, present func(*testing.T, store.Store, string) bool, s store.Store, want map[string]bool) {
	t.Helper()
	for key, w := range want {
		if got := present(t, s, key); got != w {
			t.Errorf("%s %s present = %v; want %v", kind, key, got, w)
		}
	}
}

// seq returns name-1 ... name-n.
func seq(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", name, i+1)
	}
	return out
}
