package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// countingStore counts the reads an authenticated request could make.
type countingStore struct {
	store.Store
	reads *atomic.Int64
}

func (c countingStore) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	c.reads.Add(1)
	return c.Store.TokenByHash(ctx, hash)
}

func (c countingStore) UserByID(ctx context.Context, id string) (*store.User, error) {
	c.reads.Add(1)
	return c.Store.UserByID(ctx, id)
}

// benchEnv returns an Env whose store counts reads, and a user token.
func benchEnv(tb testing.TB) (*apitest.Env, string, *atomic.Int64) {
	reads := new(atomic.Int64)
	e := apitest.New(tb, apitest.Options{
		Config:    api.Config{GlobalRate: -1},
		WrapStore: func(s store.Store) store.Store { return countingStore{Store: s, reads: reads} },
	})
	u := e.CreateUser("bench@example.com", "bench-password")
	return e, e.Issue(auth.Issue{Kind: store.KindUser, UserID: u.ID, ClientID: "bench", Lifetime: auth.DefaultLifetime}), reads
}

// TestAuthenticatedRequestHitsCache checks that a repeated token check
// reads nothing from the store.
func TestAuthenticatedRequestHitsCache(t *testing.T) {
	e, tok, reads := benchEnv(t)
	for i := 0; i < 3; i++ {
		if r := e.Do(apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: tok}); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		if i == 0 {
			reads.Store(0)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d store reads on cached requests, want 0", n)
	}
}

// BenchmarkAuthenticatedRequest measures GET /v1/access_tokens/current
// through the whole handler with a valid, cached token.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	e, tok, reads := benchEnv(b)
	req := httptest.NewRequest("GET", "/v1/access_tokens/current", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.RemoteAddr = "192.0.2.1:1234"
	warm := httptest.NewRecorder()
	e.Handler.ServeHTTP(warm, req)
	if warm.Code != http.StatusOK {
		b.Fatalf("status %d", warm.Code)
	}
	reads.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		e.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.StopTimer()
	if n := reads.Load(); n != 0 {
		b.Errorf("%d store reads during the benchmark, want 0 (auth cache missed)", n)
	}
}
