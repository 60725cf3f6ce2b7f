package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// authCodeTests cover store.AuthCodes: the round trip of every field,
// single use under concurrency with the replay reported as ErrConflict,
// the token recorded for revocation, and retention past expiry.
var authCodeTests = []test{
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, want := range []store.AuthCode{
			{Hash: "code-user", ClientID: "web-1234", RedirectURI: "https://app.example.com/cb?x=1",
				CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Kind: store.KindUser,
				UserID: "0123456789abcdef01234567", Scope: "*:*", ExpiresAt: at(2 * time.Minute), CreatedAt: at(0)},
			{Hash: "code-customer", ClientID: "shop-0001", RedirectURI: "http://127.0.0.1:9000/",
				CodeChallenge: "c", Kind: store.KindCustomer, CustomerID: "abcdefabcdefabcdefabcdef",
				ProductID: 10001, ExpiresAt: at(time.Minute), CreatedAt: at(time.Second)},
		} {
			c := want
			c.ExpiresAt = base.Add(want.ExpiresAt.Sub(at(0)))
			c.CreatedAt = base.Add(want.CreatedAt.Sub(at(0)))
			must(t, s.CreateAuthCode(ctx, &c))
			checkEqual(t, "CreateAuthCode normalised "+want.Hash, &c, &want)
			got, err := s.UseAuthCode(ctx, want.Hash, base.Add(3*time.Second))
			must(t, err)
			want.UsedAt = ptr(at(3 * time.Second))
			checkEqual(t, "UseAuthCode("+want.Hash+")", got, &want)
		}
		wantErr(t, "CreateAuthCode(same hash)", s.CreateAuthCode(ctx, &store.AuthCode{Hash: "code-user",
			ClientID: "c", Kind: store.KindUser, ExpiresAt: at(time.Minute)}), store.ErrConflict)
		before := time.Now()
		c := store.AuthCode{Hash: "now", ClientID: "c", Kind: store.KindUser, UserID: "u", ExpiresAt: at(time.Minute)}
		must(t, s.CreateAuthCode(ctx, &c))
		got, err := s.UseAuthCode(ctx, "now", base)
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
	}},
	{"SingleUse", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.UseAuthCode(ctx, "missing", base)
		wantErr(t, "UseAuthCode(missing)", err, store.ErrNotFound)
		wantErr(t, "SetAuthCodeToken(missing)", s.SetAuthCodeToken(ctx, "missing", "x"), store.ErrNotFound)

		must(t, s.CreateAuthCode(ctx, &store.AuthCode{Hash: "once", ClientID: "c", Kind: store.KindUser,
			UserID: "u", ExpiresAt: at(time.Minute)}))
		const n = 8
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			wins      int
			conflicts int
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.UseAuthCode(ctx, "once", base.Add(time.Duration(i)*time.Millisecond))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict) && c != nil && c.Hash == "once" && c.UsedAt != nil:
					conflicts++
				default:
					t.Errorf("UseAuthCode = %+v, %v", c, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != n-1 {
			t.Fatalf("wins = %d, conflicts = %d; want 1 and %d", wins, conflicts, n-1)
		}
		must(t, s.SetAuthCodeToken(ctx, "once", "access-hash"))
		c, err := s.UseAuthCode(ctx, "once", base.Add(time.Hour))
		wantErr(t, "UseAuthCode(replay)", err, store.ErrConflict)
		if c == nil || c.AccessHash != "access-hash" {
			t.Fatalf("replayed code = %+v; want the recorded access hash", c)
		}
		if c.UsedAt == nil || c.UsedAt.After(at(time.Second)) {
			t.Errorf("UsedAt = %v; want the first use, not the replay", c.UsedAt)
		}
	}},
	{"DeleteExpiredKeepsRecent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := base.Add(24 * time.Hour)
		for hash, exp := range map[string]time.Time{
			"long-gone":    now.Add(-store.AuthCodeRetention - time.Second),
			"just-expired": now.Add(-time.Minute),
			"live":         now.Add(time.Minute),
		} {
			must(t, s.CreateAuthCode(ctx, &store.AuthCode{Hash: hash, ClientID: "c", Kind: store.KindUser,
				UserID: "u", ExpiresAt: exp}))
		}
		n, err := s.DeleteExpired(ctx, now)
		must(t, err)
		if n != 1 {
			t.Errorf("DeleteExpired = %d; want 1", n)
		}
		for hash, present := range map[string]bool{"long-gone": false, "just-expired": true, "live": true} {
			_, err := s.UseAuthCode(ctx, hash, now)
			if got := !errors.Is(err, store.ErrNotFound); got != present {
				t.Errorf("code %s present = %v (%v); want %v", hash, got, err, present)
			}
		}
	}},
}
