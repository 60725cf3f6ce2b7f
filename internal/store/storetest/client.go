package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var clientTests = []test{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, want := range []store.Client{
			{ID: "cli-1234", Name: "CLI", Type: store.ClientInstalled, SecretHash: "$argon2id$a",
				OwnerID: "0123456789abcdef01234567", CreatedAt: at(0)},
			{ID: "web-app-0042", Name: "Web app", Type: store.ClientWeb, RedirectURI: "https://example.com/cb?x=1",
				Scope: "customers:create", SecretHash: "$argon2id$b", ProductID: 10001, CreatedAt: at(time.Second)},
		} {
			c := want
			c.CreatedAt = base.Add(want.CreatedAt.Sub(at(0)))
			must(t, s.CreateClient(ctx, &c))
			got, err := s.ClientByID(ctx, want.ID)
			must(t, err)
			want.Version = 1 // a new row's version
			checkEqual(t, "ClientByID", got, &want)
		}
		before := time.Now()
		must(t, s.CreateClient(ctx, &store.Client{ID: "now-0001", Name: "n", Type: store.ClientInstalled}))
		got, err := s.ClientByID(ctx, "now-0001")
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
	}},
	{"ConflictAndNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addClient(t, s, "dup-0001", "u1", 0)
		err := s.CreateClient(ctx, &store.Client{ID: "dup-0001", Name: "again", Type: store.ClientWeb})
		wantErr(t, "CreateClient(same ID)", err, store.ErrConflict)
		_, err = s.ClientByID(ctx, "missing-0000")
		wantErr(t, "ClientByID", err, store.ErrNotFound)
		err = s.UpdateClient(ctx, &store.Client{ID: "missing-0000", Name: "x"})
		wantErr(t, "UpdateClient", err, store.ErrNotFound)
		wantErr(t, "DeleteClient", s.DeleteClient(ctx, "missing-0000"), store.ErrNotFound)
	}},
	{"StaleUpdate", func(t *testing.T, s store.Store) {
		addClient(t, s, "cli-0001", "user-a", 0)
		checkStaleUpdate(t, func(ctx context.Context) (string, int64, error) {
			c, err := s.ClientByID(ctx, "cli-0001")
			if err != nil {
				return "", 0, err
			}
			return c.Name, c.Version, nil
		}, func(ctx context.Context, name string, version int64) (int64, error) {
			c, err := s.ClientByID(ctx, "cli-0001")
			if err != nil {
				return 0, err
			}
			c.Name, c.Version = name, version
			err = s.UpdateClient(ctx, c)
			return c.Version, err
		})
	}},
	{"Lists", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mk := func(id, owner string, product int64, offset time.Duration) store.Client {
			c := store.Client{ID: id, Name: id, Type: store.ClientInstalled, OwnerID: owner, ProductID: product, CreatedAt: base.Add(offset)}
			must(t, s.CreateClient(ctx, &c))
			c.CreatedAt = at(offset)
			return c
		}
		u2 := mk("u-late-0002", "user-a", 0, 2*time.Hour)
		u1 := mk("u-early-0001", "user-a", 0, time.Hour)
		ub := mk("b-0003", "user-b", 0, 0)
		p2 := mk("p-late-0004", "", 10001, 3*time.Hour)
		p1 := mk("p-early-0005", "", 10001, time.Minute)
		pq := mk("q-0006", "", 10002, 0)
		for _, tc := range []struct {
			name string
			list func() ([]store.Client, error)
			want []store.Client
		}{
			{"ClientsByOwner(user-a)", func() ([]store.Client, error) { return s.ClientsByOwner(ctx, "user-a") }, []store.Client{u1, u2}},
			{"ClientsByOwner(user-b)", func() ([]store.Client, error) { return s.ClientsByOwner(ctx, "user-b") }, []store.Client{ub}},
			{"ClientsByOwner(nobody)", func() ([]store.Client, error) { return s.ClientsByOwner(ctx, "nobody") }, nil},
			{"ClientsByOwner(empty)", func() ([]store.Client, error) { return s.ClientsByOwner(ctx, "") }, nil},
			{"ClientsByProduct(10001)", func() ([]store.Client, error) { return s.ClientsByProduct(ctx, 10001) }, []store.Client{p1, p2}},
			{"ClientsByProduct(10002)", func() ([]store.Client, error) { return s.ClientsByProduct(ctx, 10002) }, []store.Client{pq}},
			{"ClientsByProduct(none)", func() ([]store.Client, error) { return s.ClientsByProduct(ctx, 10003) }, nil},
			{"ClientsByProduct(0)", func() ([]store.Client, error) { return s.ClientsByProduct(ctx, 0) }, nil},
		} {
			got, err := tc.list()
			must(t, err)
			checkList(t, tc.name, got, tc.want)
		}
	}},
	{"UpdateAndDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := addClient(t, s, "app-0001", "user-a", 0)
		orig, err := s.ClientByID(ctx, c.ID)
		must(t, err)
		// Only Name, Scope and RedirectURI change.
		must(t, s.UpdateClient(ctx, &store.Client{
			ID: c.ID, Name: "Renamed", Scope: "customers:create", RedirectURI: "https://example.com/new",
			Type: store.ClientWeb, SecretHash: "other", OwnerID: "user-b", ProductID: 5, CreatedAt: base,
		}))
		got, err := s.ClientByID(ctx, c.ID)
		must(t, err)
		want := *orig
		want.Name, want.Scope, want.RedirectURI = "Renamed", "customers:create", "https://example.com/new"
		want.Version = 2 // the update had no Version: unchecked, but counted
		checkEqual(t, "after update", got, &want)

		addToken(t, s, "tok-of-app", store.Token{UserID: "user-a", ClientID: c.ID})
		must(t, s.DeleteClient(ctx, c.ID))
		_, err = s.ClientByID(ctx, c.ID)
		wantErr(t, "ClientByID(deleted)", err, store.ErrNotFound)
		wantErr(t, "DeleteClient(again)", s.DeleteClient(ctx, c.ID), store.ErrNotFound)
		if !tokenExists(t, s, "tok-of-app") {
			t.Error("DeleteClient removed a token it minted; only DeleteTokensByClient should")
		}
	}},
}
