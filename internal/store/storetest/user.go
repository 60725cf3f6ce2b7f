package storetest

import (
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// hexID matches the 24 lower-case hex characters of user and customer IDs.
var hexID = regexp.MustCompile(`^[0-9a-f]{24}$`)

var userTests = []test{
	{"CreateAssignsIDAndTimes", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		before := time.Now()
		u := &store.User{Username: "a@example.com", PasswordHash: "h"}
		must(t, s.CreateUser(ctx, u))
		after := time.Now()
		if !hexID.MatchString(u.ID) {
			t.Errorf("ID = %q; want 24 lower-case hex characters", u.ID)
		}
		got, err := s.UserByID(ctx, u.ID)
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, after)
		checkStamped(t, "UpdatedAt", got.UpdatedAt, before, after)
		u2 := &store.User{Username: "b@example.com", PasswordHash: "h"}
		must(t, s.CreateUser(ctx, u2))
		if u2.ID == u.ID {
			t.Errorf("two users got the same ID %q", u.ID)
		}
	}},
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, tc := range []struct {
			user             store.User
			created, updated time.Duration
		}{
			{user: store.User{ID: "0123456789abcdef01234567", Username: "plain@example.com", PasswordHash: "$argon2id$plain"},
				created: 0, updated: time.Hour},
			{user: store.User{
				Username: "full@example.com", PasswordHash: "$argon2id$full",
				AccountInfo: store.AccountInfo{
					FirstName: "Zoë", LastName: "O'Brien", CompanyName: "Acme; \"Ltd\"", BusinessAccount: true,
				},
				Verified:          true,
				MFAEnabled:        true,
				MFASecret:         []byte{0, 1, 2, 0xfe, 0xff, 0},
				MFARecoveryHashes: []string{"aa11", "bb22", "cc33"},
			}, created: -48 * time.Hour, updated: -47 * time.Hour},
		} {
			u := tc.user
			u.CreatedAt = base.Add(tc.created) // sub-millisecond, not UTC
			u.UpdatedAt = base.Add(tc.updated)
			must(t, s.CreateUser(ctx, &u))
			if tc.user.ID != "" && u.ID != tc.user.ID {
				t.Errorf("ID = %q; want the given %q", u.ID, tc.user.ID)
			}
			want := tc.user
			want.ID, want.Version = u.ID, 1 // a new row's version
			want.CreatedAt, want.UpdatedAt = at(tc.created), at(tc.updated)
			got, err := s.UserByID(ctx, u.ID)
			must(t, err)
			checkEqual(t, "UserByID", got, &want)
			got, err = s.UserByUsername(ctx, want.Username)
			must(t, err)
			checkEqual(t, "UserByUsername", got, &want)
		}
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := addUser(t, s, "dup@example.com")
		err := s.CreateUser(ctx, &store.User{Username: "dup@example.com", PasswordHash: "x"})
		wantErr(t, "CreateUser(same username)", err, store.ErrConflict)
		err = s.CreateUser(ctx, &store.User{ID: u.ID, Username: "other@example.com", PasswordHash: "x"})
		wantErr(t, "CreateUser(same ID)", err, store.ErrConflict)
		n, err := s.CountUsers(ctx)
		must(t, err)
		if n != 1 {
			t.Errorf("CountUsers = %d after conflicts; want 1", n)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addUser(t, s, "present@example.com")
		_, err := s.UserByID(ctx, "ffffffffffffffffffffffff")
		wantErr(t, "UserByID", err, store.ErrNotFound)
		_, err = s.UserByUsername(ctx, "absent@example.com")
		wantErr(t, "UserByUsername", err, store.ErrNotFound)
		err = s.UpdateUser(ctx, &store.User{ID: "ffffffffffffffffffffffff", Username: "x@example.com", PasswordHash: "x"})
		wantErr(t, "UpdateUser", err, store.ErrNotFound)
		err = s.DeleteUser(ctx, "ffffffffffffffffffffffff")
		wantErr(t, "DeleteUser", err, store.ErrNotFound)
	}},
	{"Update", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := &store.User{
			Username: "old@example.com", PasswordHash: "old", MFAEnabled: true,
			MFASecret: []byte("sealed"), MFARecoveryHashes: []string{"r1"},
		}
		must(t, s.CreateUser(ctx, u))
		orig, err := s.UserByID(ctx, u.ID)
		must(t, err)
		other := addUser(t, s, "other@example.com")

		want := store.User{
			ID: u.ID, Username: "new@example.com", PasswordHash: "new",
			AccountInfo: store.AccountInfo{FirstName: "F", LastName: "L", CompanyName: "C", BusinessAccount: true},
			Verified:    true,
			CreatedAt:   orig.CreatedAt,
			UpdatedAt:   at(time.Minute),
		}
		upd := want
		upd.CreatedAt = at(-time.Hour) // not mutable: ignored
		must(t, s.UpdateUser(ctx, &upd))
		got, err := s.UserByID(ctx, u.ID)
		must(t, err)
		want.Version = 2 // one update since created (upd had no version: unchecked)
		checkEqual(t, "after update (MFA cleared)", got, &want)
		if _, err := s.UserByUsername(ctx, "old@example.com"); err == nil {
			t.Error("UserByUsername(old name) still finds the user")
		}

		// MFA on again, with a new secret and codes.
		want.MFAEnabled, want.MFASecret, want.MFARecoveryHashes = true, []byte{9, 0, 8}, []string{"x1", "x2"}
		want.UpdatedAt = at(2 * time.Minute)
		upd = want // version 2, as read: checked, and current
		must(t, s.UpdateUser(ctx, &upd))
		want.Version = 3
		got, err = s.UserByID(ctx, u.ID)
		must(t, err)
		checkEqual(t, "after update (MFA enabled)", got, &want)

		// A zero UpdatedAt becomes now.
		upd = want
		upd.UpdatedAt = time.Time{}
		before := time.Now()
		must(t, s.UpdateUser(ctx, &upd))
		got, err = s.UserByID(ctx, u.ID)
		must(t, err)
		checkStamped(t, "UpdatedAt", got.UpdatedAt, before, time.Now())
		if got.Version != 4 || upd.Version != 4 {
			t.Errorf("version after a checked update = %d (stored), %d (record); want 4", got.Version, upd.Version)
		}
		want.Version = upd.Version

		// A username clash changes nothing.
		clash := want
		clash.Username = other.Username
		clash.PasswordHash = "changed"
		wantErr(t, "UpdateUser(clash)", s.UpdateUser(ctx, &clash), store.ErrConflict)
		got, err = s.UserByID(ctx, u.ID)
		must(t, err)
		if got.Username != want.Username || got.PasswordHash != want.PasswordHash {
			t.Errorf("after a failed update: %q %q; want %q %q", got.Username, got.PasswordHash, want.Username, want.PasswordHash)
		}
	}},
	{"DeleteCascades", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		gone := addUser(t, s, "gone@example.com")
		kept := addUser(t, s, "kept@example.com")
		p1 := addProduct(t, s, "p-one", kept)
		p2 := addProduct(t, s, "p-two", gone)
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p1.ID, Username: gone.Username, Role: store.RoleDeveloper}))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p2.ID, Username: kept.Username, Role: store.RoleSupport}))

		addClient(t, s, "gone-1111", gone.ID, 0)
		addClient(t, s, "kept-2222", kept.ID, 0)
		addClient(t, s, "prod-3333", "", p2.ID)
		gt := addToken(t, s, "tok-gone", store.Token{UserID: gone.ID, ClientID: "gone-1111"})
		kt := addToken(t, s, "tok-kept", store.Token{UserID: kept.ID, ClientID: "gone-1111"})
		addRefresh(t, s, "ref-gone", gt)
		addRefresh(t, s, "ref-kept", kt)
		addChallenge(t, s, "ch-gone", gone.ID, at(time.Hour))
		addChallenge(t, s, "ch-kept", kept.ID, at(time.Hour))

		must(t, s.DeleteUser(ctx, gone.ID))

		if _, err := s.UserByID(ctx, gone.ID); err == nil {
			t.Error("deleted user still found")
		}
		wantErr(t, "DeleteUser again", s.DeleteUser(ctx, gone.ID), store.ErrNotFound)
		if _, err := s.UserByID(ctx, kept.ID); err != nil {
			t.Errorf("other user: %v", err)
		}
		for id, want := range map[string]bool{"gone-1111": false, "kept-2222": true, "prod-3333": true} {
			_, err := s.ClientByID(ctx, id)
			if got := exists(t, "ClientByID", err); got != want {
				t.Errorf("client %s present = %v; want %v", id, got, want)
			}
		}
		checkPresence(t, "token", tokenExists, s, map[string]bool{"tok-gone": false, "tok-kept": true})
		checkPresence(t, "refresh token", refreshExists, s, map[string]bool{"ref-gone": false, "ref-kept": true})
		checkPresence(t, "challenge", challengeExists, s, map[string]bool{"ch-gone": false, "ch-kept": true})

		team1, err := s.TeamMembers(ctx, p1.ID)
		must(t, err)
		team2, err := s.TeamMembers(ctx, p2.ID)
		must(t, err)
		if len(team1) != 1 || team1[0].Username != kept.Username {
			t.Errorf("team of p1 = %+v; want only %s", team1, kept.Username)
		}
		if len(team2) != 1 || team2[0].Username != kept.Username {
			t.Errorf("team of p2 = %+v; want only %s", team2, kept.Username)
		}
		// The product the deleted user owned stays.
		if _, err := s.ProductByID(ctx, p2.ID); err != nil {
			t.Errorf("product of deleted user: %v", err)
		}
	}},
	{"Count", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		count := func(want int) {
			t.Helper()
			n, err := s.CountUsers(ctx)
			must(t, err)
			if n != want {
				t.Errorf("CountUsers = %d; want %d", n, want)
			}
		}
		count(0)
		var ids []string
		for _, name := range []string{"a@x.io", "b@x.io", "c@x.io"} {
			ids = append(ids, addUser(t, s, name).ID)
		}
		count(3)
		must(t, s.DeleteUser(ctx, ids[1]))
		count(2)
	}},
	{"ConcurrentCreates", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				u := &store.User{Username: seq("user", n)[i] + "@example.com", PasswordHash: "h"}
				errs[i] = s.CreateUser(ctx, u)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		got, err := s.CountUsers(ctx)
		must(t, err)
		if got != n {
			t.Errorf("CountUsers = %d; want %d", got, n)
		}
	}},
	{"UseMFAStep", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := addUser(t, s, "steps@example.com")
		// Steps are spent in order; an equal or older one is a replay,
		// and UpdateUser never rolls the record back.
		steps := []struct {
			step int64
			want error
		}{
			{59000000, nil},
			{59000000, store.ErrConflict},
			{58999999, store.ErrConflict},
			{59000001, nil},
			{59000003, nil},
			{59000002, store.ErrConflict},
		}
		for _, st := range steps {
			wantErr(t, "UseMFAStep", s.UseMFAStep(ctx, u.ID, st.step), st.want)
			if st.step == 59000001 {
				got, err := s.UserByID(ctx, u.ID)
				must(t, err)
				must(t, s.UpdateUser(ctx, got))
			}
		}
		wantErr(t, "UseMFAStep(missing user)", s.UseMFAStep(ctx, "ffffffffffffffffffffffff", 1), store.ErrNotFound)
		// Concurrent spends of one step: exactly one wins.
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.UseMFAStep(ctx, u.ID, 59000010) == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d concurrent spends of one step succeeded; want 1", wins)
		}
	}},
}
