package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestUserUpdateTwoWriters plays two servers (two handles on one database)
// that read the same user and change different fields: the second write
// fails with store.ErrStale instead of undoing the first, and redoing it on
// a fresh read keeps both changes.
func TestUserUpdateTwoWriters(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*DB, *DB)
	}{
		{"sqlite", func(t *testing.T) (*DB, *DB) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "wick.db")
			a, err := Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			return a, b
		}},
		{"postgres", func(t *testing.T) (*DB, *DB) {
			dsn := freshSchema(t)
			a, err := Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			return a, b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := tc.open(t)
			defer a.Close()
			defer b.Close()
			u := &store.User{Username: "two@example.com", PasswordHash: "old"}
			if err := a.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if u.Version != 1 {
				t.Fatalf("created user has version %d; want 1", u.Version)
			}
			onA, err := a.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			onB, err := b.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			onA.PasswordHash = "new" // node A: password reset
			if err := a.UpdateUser(ctx, onA); err != nil {
				t.Fatal(err)
			}
			if onA.Version != 2 {
				t.Errorf("version after update = %d; want 2", onA.Version)
			}
			onB.AccountInfo.FirstName = "Ada" // node B: account info, from the old read
			if err := b.UpdateUser(ctx, onB); !errors.Is(err, store.ErrStale) {
				t.Fatalf("stale update: %v; want ErrStale", err)
			}
			again, err := b.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if again.PasswordHash != "new" {
				t.Fatalf("the stale write undid the password change: %q", again.PasswordHash)
			}
			again.AccountInfo.FirstName = "Ada"
			if err := b.UpdateUser(ctx, again); err != nil {
				t.Fatal(err)
			}
			final, err := a.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if final.PasswordHash != "new" || final.AccountInfo.FirstName != "Ada" || final.Version != 3 {
				t.Errorf("final user %+v; want both changes at version 3", final)
			}
			// An unversioned update (a record built by hand) still applies.
			final.Version = 0
			final.AccountInfo.LastName = "Lovelace"
			if err := a.UpdateUser(ctx, final); err != nil {
				t.Fatal(err)
			}
			gone := &store.User{ID: "000000000000000000000000", Username: "x@example.com", Version: 1}
			if err := a.UpdateUser(ctx, gone); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("update of an absent user: %v; want ErrNotFound", err)
			}
		})
	}
}
