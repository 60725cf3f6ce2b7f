package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// ptr returns a pointer to a copy of t.
func ptr(t time.Time) *time.Time { return &t }

var tokenTests = []test{
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, tc := range []struct {
			name    string
			tok     store.Token
			expires *time.Time // input; the stored value is at(offset)
			want    *time.Time
		}{
			{"user, never expires", store.Token{Hash: "h-user", Kind: store.KindUser, UserID: "0123456789abcdef01234567",
				ClientID: "particle-cli"}, nil, nil},
			{"customer", store.Token{Hash: "h-customer", Kind: store.KindCustomer, CustomerID: "abcdefabcdefabcdefabcdef",
				ProductID: 10001, ClientID: "app-1234", Scope: "a b"}, ptr(base.Add(90 * 24 * time.Hour)), ptr(at(90 * 24 * time.Hour))},
			{"product", store.Token{Hash: "h-product", Kind: store.KindProduct, ProductID: 10002,
				ClientID: "prod-0001", Scope: "*:*"}, ptr(base.Add(-time.Hour)), ptr(at(-time.Hour))},
		} {
			tok := tc.tok
			tok.ExpiresAt = tc.expires
			tok.CreatedAt = base.Add(time.Minute)
			must(t, s.CreateToken(ctx, &tok))
			want := tc.tok
			want.ExpiresAt = tc.want
			want.CreatedAt = at(time.Minute)
			got, err := s.TokenByHash(ctx, tc.tok.Hash)
			must(t, err)
			checkEqual(t, "TokenByHash("+tc.name+")", got, &want)
		}
		before := time.Now()
		must(t, s.CreateToken(ctx, &store.Token{Hash: "h-now", Kind: store.KindUser, UserID: "u"}))
		got, err := s.TokenByHash(ctx, "h-now")
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
		if got.ExpiresAt != nil {
			t.Errorf("ExpiresAt = %v; want nil", got.ExpiresAt)
		}
	}},
	{"ConflictAndNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addToken(t, s, "dup", store.Token{UserID: "u"})
		wantErr(t, "CreateToken(same hash)", s.CreateToken(ctx, &store.Token{Hash: "dup", Kind: store.KindUser}), store.ErrConflict)
		r := &store.RefreshToken{Hash: "rdup", AccessHash: "dup", Kind: store.KindUser, UserID: "u", ExpiresAt: at(time.Hour)}
		must(t, s.CreateRefreshToken(ctx, r))
		r2 := *r
		wantErr(t, "CreateRefreshToken(same hash)", s.CreateRefreshToken(ctx, &r2), store.ErrConflict)
		_, err := s.TokenByHash(ctx, "missing")
		wantErr(t, "TokenByHash", err, store.ErrNotFound)
		wantErr(t, "DeleteToken", s.DeleteToken(ctx, "missing"), store.ErrNotFound)
		_, err = s.TakeRefreshToken(ctx, "missing")
		wantErr(t, "TakeRefreshToken", err, store.ErrNotFound)
	}},
	{"TokensByUser", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mk := func(hash, user string, offset time.Duration) store.Token {
			tok := store.Token{Hash: hash, Kind: store.KindUser, UserID: user, ClientID: "c", CreatedAt: base.Add(offset)}
			must(t, s.CreateToken(ctx, &tok))
			tok.CreatedAt = at(offset)
			return tok
		}
		// Hash order differs from creation order; ties break on hash.
		late := mk("m-late", "user-a", 2*time.Hour)
		early := mk("z-early", "user-a", time.Hour)
		tieB := mk("b-tie", "user-a", 3*time.Hour)
		tieA := mk("a-tie", "user-a", 3*time.Hour)
		mk("other", "user-b", 0)
		addToken(t, s, "customer", store.Token{Kind: store.KindCustomer, CustomerID: "user-a", ProductID: 1})
		got, err := s.TokensByUser(ctx, "user-a")
		must(t, err)
		checkList(t, "TokensByUser", got, []store.Token{early, late, tieA, tieB})
		got, err = s.TokensByUser(ctx, "nobody")
		must(t, err)
		checkList(t, "TokensByUser(nobody)", got, nil)
	}},
	{"DeleteToken", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a := addToken(t, s, "a", store.Token{UserID: "u"})
		b := addToken(t, s, "b", store.Token{UserID: "u"})
		addRefresh(t, s, "ra1", a)
		addRefresh(t, s, "ra2", a) // two refresh tokens issued with one access token
		addRefresh(t, s, "rb", b)
		must(t, s.DeleteToken(ctx, "a"))
		wantErr(t, "DeleteToken(again)", s.DeleteToken(ctx, "a"), store.ErrNotFound)
		checkPresence(t, "token", tokenExists, s, map[string]bool{"a": false, "b": true})
		checkPresence(t, "refresh token", refreshExists, s, map[string]bool{"ra1": false, "ra2": false, "rb": true})
	}},
	{"DeleteBySubject", func(t *testing.T, s store.Store) {
		for _, tc := range []struct {
			name   string
			delete func(s store.Store) ([]string, error)
			gone   []string // access hashes removed; refresh "r"+hash goes too
		}{
			{"DeleteTokensByUser", func(s store.Store) ([]string, error) { return s.DeleteTokensByUser(t.Context(), "user-a") },
				[]string{"ua1", "ua2"}},
			{"DeleteTokensByCustomer", func(s store.Store) ([]string, error) { return s.DeleteTokensByCustomer(t.Context(), "cust-a") },
				[]string{"ca1", "ca2"}},
			{"DeleteTokensByClient", func(s store.Store) ([]string, error) { return s.DeleteTokensByClient(t.Context(), "client-x") },
				[]string{"ua1", "ub1", "ca1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				all := map[string]store.Token{
					"ua1": {Kind: store.KindUser, UserID: "user-a", ClientID: "client-x"},
					"ua2": {Kind: store.KindUser, UserID: "user-a", ClientID: "client-y"},
					"ub1": {Kind: store.KindUser, UserID: "user-b", ClientID: "client-x"},
					"ca1": {Kind: store.KindCustomer, CustomerID: "cust-a", ProductID: 7, ClientID: "client-x"},
					"ca2": {Kind: store.KindCustomer, CustomerID: "cust-a", ProductID: 7, ClientID: "client-y"},
					"cb1": {Kind: store.KindCustomer, CustomerID: "cust-b", ProductID: 7, ClientID: "client-y"},
					"p1":  {Kind: store.KindProduct, ProductID: 7, ClientID: "client-y"},
				}
				for hash, proto := range all {
					tok := addToken(t, s, hash, proto)
					addRefresh(t, s, "r"+hash, tok)
				}
				// A refresh token with the subject but no live access token.
				orphan := all[tc.gone[0]]
				orphan.Hash = "gone-already"
				addRefresh(t, s, "orphan", &orphan)

				got, err := tc.delete(s)
				must(t, err)
				checkStrings(t, tc.name, got, tc.gone)
				wantTokens, wantRefresh := map[string]bool{}, map[string]bool{"orphan": false}
				for hash := range all {
					wantTokens[hash], wantRefresh["r"+hash] = true, true
				}
				for _, hash := range tc.gone {
					wantTokens[hash], wantRefresh["r"+hash] = false, false
				}
				checkPresence(t, "token", tokenExists, s, wantTokens)
				checkPresence(t, "refresh token", refreshExists, s, wantRefresh)

				again, err := tc.delete(s)
				must(t, err)
				checkStrings(t, tc.name+" again", again, nil)
				// Clean up for the next case, which shares the store.
				for hash := range all {
					_ = s.DeleteToken(t.Context(), hash)
				}
			})
		}
		// Empty subjects match nothing, not the tokens of other kinds.
		addToken(t, s, "cust-token", store.Token{Kind: store.KindCustomer, CustomerID: "c", ProductID: 1})
		addToken(t, s, "user-token", store.Token{Kind: store.KindUser, UserID: "u"})
		addToken(t, s, "no-client", store.Token{Kind: store.KindUser, UserID: "u2"})
		ctx := t.Context()
		for _, del := range []func(string) ([]string, error){
			func(id string) ([]string, error) { return s.DeleteTokensByUser(ctx, id) },
			func(id string) ([]string, error) { return s.DeleteTokensByCustomer(ctx, id) },
		} {
			got, err := del("")
			must(t, err)
			checkStrings(t, "delete by empty subject", got, nil)
		}
		checkPresence(t, "token", tokenExists, s, map[string]bool{"cust-token": true, "user-token": true, "no-client": true})
	}},
	{"RefreshRoundTripAndSingleUse", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		in := store.RefreshToken{
			Hash: "refresh", AccessHash: "access", Kind: store.KindCustomer, CustomerID: "cust",
			ProductID: 10001, ClientID: "app-0001", Scope: "customers:create",
			ExpiresAt: base.Add(14 * 24 * time.Hour), CreatedAt: base,
		}
		r := in
		must(t, s.CreateRefreshToken(ctx, &r))
		want := in
		want.ExpiresAt, want.CreatedAt = at(14*24*time.Hour), at(0)
		got, err := s.TakeRefreshToken(ctx, "refresh")
		must(t, err)
		checkEqual(t, "TakeRefreshToken", got, &want)
		_, err = s.TakeRefreshToken(ctx, "refresh")
		wantErr(t, "TakeRefreshToken(again)", err, store.ErrNotFound)

		before := time.Now()
		must(t, s.CreateRefreshToken(ctx, &store.RefreshToken{Hash: "r2", Kind: store.KindUser, UserID: "u", ExpiresAt: at(time.Hour)}))
		got, err = s.TakeRefreshToken(ctx, "r2")
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
	}},
	{"TakeRefreshTokenConcurrent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 20
		for round := range 3 {
			must(t, s.CreateRefreshToken(ctx, &store.RefreshToken{
				Hash: "contended", Kind: store.KindUser, UserID: "u", ExpiresAt: at(time.Hour),
			}))
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				mu       sync.Mutex
				wins     int
				notFound int
			)
			for range n {
				wg.Go(func() {
					<-start
					r, err := s.TakeRefreshToken(ctx, "contended")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && r.Hash == "contended":
						wins++
					case errors.Is(err, store.ErrNotFound):
						notFound++
					default:
						t.Errorf("round %d: TakeRefreshToken = %+v, %v", round, r, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins != 1 || notFound != n-1 {
				t.Errorf("round %d: %d wins and %d not-found; want 1 and %d", round, wins, notFound, n-1)
			}
		}
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := base.Add(10 * time.Hour)
		past, future := base.Add(9*time.Hour), base.Add(11*time.Hour)
		// Access tokens: expired, live, never expiring, expiring exactly now.
		addToken(t, s, "t-expired", store.Token{UserID: "u", ExpiresAt: &past})
		addToken(t, s, "t-live", store.Token{UserID: "u", ExpiresAt: &future})
		addToken(t, s, "t-forever", store.Token{UserID: "u"})
		addToken(t, s, "t-now", store.Token{UserID: "u", ExpiresAt: ptr(now)})
		for hash, exp := range map[string]time.Time{"r-expired": past, "r-live": future, "r-expired-2": base} {
			must(t, s.CreateRefreshToken(ctx, &store.RefreshToken{Hash: hash, Kind: store.KindUser, UserID: "u", ExpiresAt: exp}))
		}
		addChallenge(t, s, "c-expired", "u", past)
		addChallenge(t, s, "c-live", "u", future)

		n, err := s.DeleteExpired(ctx, now)
		must(t, err)
		if n != 4 {
			t.Errorf("DeleteExpired = %d; want 4 (1 access, 2 refresh, 1 challenge)", n)
		}
		checkPresence(t, "token", tokenExists, s, map[string]bool{"t-expired": false, "t-live": true, "t-forever": true, "t-now": true})
		checkPresence(t, "refresh token", refreshExists, s, map[string]bool{"r-expired": false, "r-expired-2": false, "r-live": true})
		checkPresence(t, "challenge", challengeExists, s, map[string]bool{"c-expired": false, "c-live": true})
		n, err = s.DeleteExpired(ctx, now)
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteExpired again = %d; want 0", n)
		}
	}},
}
