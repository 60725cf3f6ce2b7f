package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// namesSeed seeds the device-name generators of these tests: a generator
// made from it proposes the same candidates as the store's.
const namesSeed = 42

// seededNames returns a generator that repeats the store's candidates.
func seededNames() *store.DeviceNames { return store.NewDeviceNames(rand.NewPCG(namesSeed, namesSeed)) }

// candidates returns the first n candidates the store will propose, one
// per attempt.
func candidates(n int) []string {
	g := seededNames()
	out := make([]string, n)
	for i := range out {
		out[i] = g.Name(i)
	}
	return out
}

// namingDialects returns openers of a store that names devices from
// seededNames: SQLite always, PostgreSQL when WICK_TEST_POSTGRES_URL is set.
func namingDialects(t *testing.T) map[string]func(t *testing.T) *DB {
	open := func(t *testing.T, dsn string) *DB {
		db, err := Open(context.Background(), dsn, nil, WithDeviceNames(seededNames()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	m := map[string]func(t *testing.T) *DB{
		"sqlite": func(t *testing.T) *DB { return open(t, "sqlite:"+filepath.Join(t.TempDir(), "wick.db")) },
	}
	if os.Getenv(postgresEnv) != "" {
		m["postgres"] = func(t *testing.T) *DB { return open(t, freshSchema(t)) }
	}
	return m
}

// TestClaimDeviceNameCollisions takes the first candidates of the store's
// generator for the owner's other devices, so the claim must move on to
// the next one, or run out.
func TestClaimDeviceNameCollisions(t *testing.T) {
	want := candidates(store.NameAttempts)
	tests := []struct {
		name     string
		taken    int    // the first taken candidates, by another device of the owner
		wantName string // "" expects ErrConflict
	}{
		{"free first candidate", 0, want[0]},
		{"first taken", 1, want[1]},
		{"plain candidates taken: a numbered one", store.PlainNameAttempts, want[store.PlainNameAttempts]},
		{"all taken", store.NameAttempts, ""},
	}
	for dialect, open := range namingDialects(t) {
		for _, tt := range tests {
			t.Run(dialect+"/"+tt.name, func(t *testing.T) {
				ctx := t.Context()
				db := open(t)
				target := "aa0000000000000000000001"
				if _, err := db.ProvisionDevice(ctx, target, store.KeyRSA, []byte{1}, 0); err != nil {
					t.Fatal(err)
				}
				for i := range tt.taken {
					id := fmt.Sprintf("bb%022x", i)
					if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, []byte{1}, 0); err != nil {
						t.Fatal(err)
					}
					// Another device of the owner already has candidate i,
					// in upper case: names clash ignoring case.
					d := &store.Device{ID: id, OwnerID: "user-1", Name: strings.ToUpper(want[i])}
					if err := db.UpdateDevice(ctx, d); err != nil {
						t.Fatal(err)
					}
				}
				d, err := db.ClaimDevice(ctx, target, "user-1", "")
				if tt.wantName == "" {
					if !errors.Is(err, store.ErrConflict) {
						t.Fatalf("ClaimDevice = %v, %v; want ErrConflict", d, err)
					}
					got, err := db.DeviceByID(ctx, target)
					if err != nil {
						t.Fatal(err)
					}
					if got.OwnerID != "" || got.Name != "" {
						t.Errorf("after a failed claim: owner %q name %q; want unchanged", got.OwnerID, got.Name)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.Name != tt.wantName || d.OwnerID != "user-1" {
					t.Errorf("claimed: name %q owner %q; want %q, user-1", d.Name, d.OwnerID, tt.wantName)
				}
			})
		}
	}
}

// TestOpenNamesOwnedDevices checks that a database holding owned devices
// without names, as one written before names were generated, has them
// named when it is opened again.
func TestOpenNamesOwnedDevices(t *testing.T) {
	ctx := t.Context()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "wick.db")
	db, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "cc0000000000000000000001"
	if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, []byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	// The old claim: an owner and no name.
	if _, err := db.w.ExecContext(ctx, `UPDATE devices SET owner_id = 'user-1' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, dsn, nil, WithDeviceNames(seededNames()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.DeviceByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := candidates(1)[0]; d.Name != want || d.OwnerID != "user-1" {
		t.Errorf("after reopening: name %q owner %q; want %q, user-1", d.Name, d.OwnerID, want)
	}
}

// BenchmarkProvisionAndClaim measures registering a new device and
// claiming it, which names it, for an owner that already has some
// devices. Past about 11,000 devices every two-word name is taken, so a
// claim tries store.PlainNameAttempts taken names before a numbered one:
// the "owner of 12000" case shows that worst case. One op is one
// ProvisionDevice and one ClaimDevice.
func BenchmarkProvisionAndClaim(b *testing.B) {
	for _, owned := range []int{0, 12000} {
		b.Run(fmt.Sprintf("owner of %d", owned), func(b *testing.B) {
			benchDialects(b, func(b *testing.B, db *DB) {
				ctx := b.Context()
				key := make([]byte, 162)
				for i := range owned {
					id := fmt.Sprintf("e00fce69%016x", i)
					if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, key, 0); err != nil {
						b.Fatal(err)
					}
					if _, err := db.ClaimDevice(ctx, id, "bench-owner", ""); err != nil {
						b.Fatal(err)
					}
				}
				i := 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					id := fmt.Sprintf("e00fce6a%016x", i)
					i++
					if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, key, 0); err != nil {
						b.Fatal(err)
					}
					if _, err := db.ClaimDevice(ctx, id, "bench-owner", ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
