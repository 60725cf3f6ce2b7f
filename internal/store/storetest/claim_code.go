package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// addClaimCode creates a claim code of proto's owner expiring at expires.
func addClaimCode(t *testing.T, s store.Store, hash string, proto store.ClaimCode, expires time.Time) *store.ClaimCode {
	t.Helper()
	c := proto
	c.Hash, c.ExpiresAt = hash, expires
	must(t, s.CreateClaimCode(t.Context(), &c))
	return &c
}

// claimCodeExists reports whether the claim code exists and is live at
// base, without using it up.
func claimCodeExists(t *testing.T, s store.Store, hash string) bool {
	t.Helper()
	_, err := s.ClaimCodeByHash(t.Context(), hash, base)
	return exists(t, "ClaimCodeByHash("+hash+")", err)
}

var claimCodeTests = []test{
	{"RoundTripAndSingleUse", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, want := range []store.ClaimCode{
			{Hash: "user-code", UserID: "0123456789abcdef01234567", ExpiresAt: at(24 * time.Hour), CreatedAt: at(0)},
			{Hash: "customer-code", CustomerID: "abcdefabcdefabcdefabcdef", ProductID: 10001,
				ExpiresAt: at(time.Hour), CreatedAt: at(time.Second)},
			{Hash: "team-code", UserID: "0123456789abcdef01234567", ProductID: 10002,
				ExpiresAt: at(time.Hour), CreatedAt: at(0)},
		} {
			c := want
			c.ExpiresAt = base.Add(want.ExpiresAt.Sub(at(0)))
			c.CreatedAt = base.Add(want.CreatedAt.Sub(at(0)))
			must(t, s.CreateClaimCode(ctx, &c))
			got, err := s.TakeClaimCode(ctx, want.Hash, base.Add(time.Minute))
			must(t, err)
			checkEqual(t, "TakeClaimCode("+want.Hash+")", got, &want)
			_, err = s.TakeClaimCode(ctx, want.Hash, base.Add(time.Minute))
			wantErr(t, "TakeClaimCode(again)", err, store.ErrNotFound)
		}
		before := time.Now()
		must(t, s.CreateClaimCode(ctx, &store.ClaimCode{Hash: "now", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}))
		got, err := s.TakeClaimCode(ctx, "now", time.Now())
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
	}},
	{"LookUpWithoutUsingUp", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := store.ClaimCode{Hash: "peek", CustomerID: "abcdefabcdefabcdefabcdef", ProductID: 10001,
			ExpiresAt: at(time.Hour), CreatedAt: at(time.Second)}
		c := want
		c.ExpiresAt, c.CreatedAt = base.Add(time.Hour), base.Add(time.Second)
		must(t, s.CreateClaimCode(ctx, &c))
		for _, tc := range []struct {
			name string
			hash string
			now  time.Time
			want error
		}{
			{"live", "peek", base, nil},
			{"again: a look-up does not use the code up", "peek", base.Add(time.Minute), nil},
			{"at its expiry instant", "peek", base.Add(time.Hour), nil},
			{"after its expiry", "peek", at(time.Hour).Add(time.Millisecond), store.ErrNotFound},
			{"unknown", "nope", base, store.ErrNotFound},
		} {
			got, err := s.ClaimCodeByHash(ctx, tc.hash, tc.now)
			if tc.want != nil {
				wantErr(t, "ClaimCodeByHash("+tc.name+")", err, tc.want)
				continue
			}
			must(t, err)
			checkEqual(t, "ClaimCodeByHash("+tc.name+")", got, &want)
		}
		// An expired look-up deletes nothing: the take still sees it live
		// before its expiry.
		got, err := s.TakeClaimCode(ctx, "peek", base)
		must(t, err)
		checkEqual(t, "TakeClaimCode(after look-ups)", got, &want)
		_, err = s.ClaimCodeByHash(ctx, "peek", base)
		wantErr(t, "ClaimCodeByHash(taken)", err, store.ErrNotFound)
	}},
	{"ConflictAndNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addClaimCode(t, s, "dup", store.ClaimCode{UserID: "u"}, at(time.Hour))
		err := s.CreateClaimCode(ctx, &store.ClaimCode{Hash: "dup", CustomerID: "c", ExpiresAt: at(time.Hour)})
		wantErr(t, "CreateClaimCode(same hash)", err, store.ErrConflict)
		_, err = s.TakeClaimCode(ctx, "missing", base)
		wantErr(t, "TakeClaimCode(missing)", err, store.ErrNotFound)
		// The failed create did not replace the first owner.
		c, err := s.TakeClaimCode(ctx, "dup", base)
		must(t, err)
		if c.UserID != "u" || c.CustomerID != "" {
			t.Errorf("claim code owner = user %q customer %q; want the first, u", c.UserID, c.CustomerID)
		}
	}},
	{"Expiry", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		exp := base.Add(time.Hour)
		addClaimCode(t, s, "expired", store.ClaimCode{UserID: "u"}, exp)
		_, err := s.TakeClaimCode(ctx, "expired", exp.Add(time.Millisecond))
		wantErr(t, "TakeClaimCode(expired)", err, store.ErrNotFound)
		// The expired code went with the attempt.
		_, err = s.TakeClaimCode(ctx, "expired", base)
		wantErr(t, "TakeClaimCode(expired, before its expiry)", err, store.ErrNotFound)

		// A code is live up to its expiry instant, at stored precision.
		addClaimCode(t, s, "at-expiry", store.ClaimCode{UserID: "u"}, exp)
		_, err = s.TakeClaimCode(ctx, "at-expiry", at(time.Hour).Add(500*time.Microsecond))
		must(t, err)
	}},
	{"TakeConcurrent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 20
		addClaimCode(t, s, "contended", store.ClaimCode{UserID: "u"}, at(time.Hour))
		var (
			wg             sync.WaitGroup
			start          = make(chan struct{})
			mu             sync.Mutex
			wins, notFound int
		)
		for range n {
			wg.Go(func() {
				<-start
				c, err := s.TakeClaimCode(ctx, "contended", base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && c.Hash == "contended":
					wins++
				case errors.Is(err, store.ErrNotFound):
					notFound++
				default:
					t.Errorf("TakeClaimCode = %+v, %v", c, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || notFound != n-1 {
			t.Errorf("%d wins and %d not-found; want 1 and %d", wins, notFound, n-1)
		}
	}},
	{"DeleteByOwner", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for hash, c := range map[string]store.ClaimCode{
			"u1-a": {UserID: "user-1"}, "u1-b": {UserID: "user-1", ProductID: 10001},
			"u2":   {UserID: "user-2"},
			"c1-a": {CustomerID: "customer-1", ProductID: 10001}, "c1-b": {CustomerID: "customer-1", ProductID: 10001},
			"c1-c": {CustomerID: "customer-1", ProductID: 10001},
			"c2":   {CustomerID: "customer-2", ProductID: 10001},
		} {
			addClaimCode(t, s, hash, c, at(time.Hour))
		}
		for _, tc := range []struct {
			name string
			del  func() (int, error)
			want int
		}{
			{"DeleteClaimCodesByUser(user-1)", func() (int, error) { return s.DeleteClaimCodesByUser(ctx, "user-1") }, 2},
			{"DeleteClaimCodesByUser(user-1) again", func() (int, error) { return s.DeleteClaimCodesByUser(ctx, "user-1") }, 0},
			{"DeleteClaimCodesByUser(\"\")", func() (int, error) { return s.DeleteClaimCodesByUser(ctx, "") }, 0},
			{"DeleteClaimCodesByCustomer(customer-1)", func() (int, error) { return s.DeleteClaimCodesByCustomer(ctx, "customer-1") }, 3},
			{"DeleteClaimCodesByCustomer(\"\")", func() (int, error) { return s.DeleteClaimCodesByCustomer(ctx, "") }, 0},
		} {
			n, err := tc.del()
			must(t, err)
			if n != tc.want {
				t.Errorf("%s = %d; want %d", tc.name, n, tc.want)
			}
		}
		checkPresence(t, "claim code", claimCodeExists, s, map[string]bool{
			"u1-a": false, "u1-b": false, "u2": true, "c1-a": false, "c1-b": false, "c1-c": false, "c2": true,
		})
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := base.Add(10 * time.Hour)
		addClaimCode(t, s, "expired-1", store.ClaimCode{UserID: "u"}, base.Add(9*time.Hour))
		addClaimCode(t, s, "expired-2", store.ClaimCode{CustomerID: "c"}, base)
		addClaimCode(t, s, "at-now", store.ClaimCode{UserID: "u"}, now)
		addClaimCode(t, s, "live", store.ClaimCode{UserID: "u"}, base.Add(11*time.Hour))
		addToken(t, s, "t-expired", store.Token{UserID: "u", ExpiresAt: ptr(base)})
		n, err := s.DeleteExpired(ctx, now)
		must(t, err)
		if n != 3 {
			t.Errorf("DeleteExpired = %d; want 3 (2 claim codes, 1 token)", n)
		}
		checkPresence(t, "claim code", claimCodeExists, s, map[string]bool{
			"expired-1": false, "expired-2": false, "at-now": true, "live": true,
		})
	}},
}
