package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// listDialects runs fn against a fresh SQLite file and, when
// WICK_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func listDialects(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db := openSQLiteFile(t)
		defer db.Close()
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db := openPostgresSchema(t)
		defer db.Close()
		fn(t, db)
	})
}

// ownerVersion returns the row version of device id in its user's list,
// or -1 when the list lacks it.
func ownerVersion(t *testing.T, db *DB, userID, id string) int64 {
	t.Helper()
	list, err := db.DeviceVersionsByOwner(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range list {
		if v.ID == id {
			return v.Version
		}
	}
	return -1
}

// TestDeviceRowVersionChangesOnEveryWrite checks that each write to a
// device, whatever the method, gives it a new row version, which is what
// the API's device-list cache relies on for freshness.
func TestDeviceRowVersionChangesOnEveryWrite(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		u := &store.User{Username: "list@example.com", PasswordHash: "h"}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		const id = "e00fce6800000000000000a1"
		key := make([]byte, 162)
		if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, key, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimDevice(ctx, id, u.ID, ""); err != nil {
			t.Fatal(err)
		}
		seen := map[int64]string{}
		last := ownerVersion(t, db, u.ID, id)
		if last < 0 {
			t.Fatal("claimed device missing from its owner's version list")
		}
		seen[last] = "claim"
		writes := []struct {
			name  string
			write func(ctx context.Context) error
		}{
			{"rename", func(ctx context.Context) error {
				d, err := db.DeviceByID(ctx, id)
				if err != nil {
					return err
				}
				d.Name = "kettle"
				return db.UpdateDevice(ctx, d)
			}},
			{"notes", func(ctx context.Context) error {
				d, err := db.DeviceByID(ctx, id)
				if err != nil {
					return err
				}
				d.Notes = "in the kitchen"
				return db.UpdateDevice(ctx, d)
			}},
			{"same values again", func(ctx context.Context) error {
				d, err := db.DeviceByID(ctx, id)
				if err != nil {
					return err
				}
				return db.UpdateDevice(ctx, d)
			}},
			{"online", func(ctx context.Context) error {
				_, err := db.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n1", SessionID: "s1", PlatformID: 6})
				return err
			}},
			{"describe", func(ctx context.Context) error {
				return db.SetDeviceDescribe(ctx, id, store.Describe{
					Parts: store.DescribeApplication, Functions: []string{"led"},
					Variables: map[string]string{"temp": "double"},
				})
			}},
			{"subscriptions", func(ctx context.Context) error {
				return db.SetDeviceSubscriptions(ctx, id, []store.Subscription{{Prefix: "x", Scope: store.ScopeMine}})
			}},
			{"touch", func(ctx context.Context) error {
				return db.TouchDevices(ctx, map[string]time.Time{id: time.Now().Add(time.Second)})
			}},
			{"firmware updates", func(ctx context.Context) error {
				return db.SetFirmwareUpdatesEnabled(ctx, id, false)
			}},
			{"offline", func(ctx context.Context) error {
				_, err := db.SetDeviceOffline(ctx, id, "s1", time.Now())
				return err
			}},
			{"online again", func(ctx context.Context) error {
				_, err := db.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n2", SessionID: "s2", PlatformID: 6})
				return err
			}},
			{"batched presence", func(ctx context.Context) error {
				_, err := db.ApplyPresence(ctx, []store.PresenceUpdate{
					{DeviceID: id, OfflineSession: "s2"},
					{DeviceID: id, Online: &store.DeviceSession{Node: "n2", SessionID: "s3", PlatformID: 6},
						LastHeard: time.Now().Add(2 * time.Second)},
				})
				return err
			}},
			{"node reset", func(ctx context.Context) error {
				// After the handshake's millisecond: a reset spares sessions
				// that started at its time or later.
				_, err := db.ResetNode(ctx, "n2", time.Now().Add(time.Second))
				return err
			}},
		}
		stamps := map[store.DeviceListStamp]string{}
		stampOf := func(step string) {
			t.Helper()
			st, exact, err := db.DeviceListStampByOwner(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if exact != (db.dialect != dialectPostgres) {
				t.Fatalf("%s: stamp exact = %v on %v", step, exact, db.dialect)
			}
			if !exact {
				return
			}
			if prev, dup := stamps[st]; dup {
				t.Fatalf("%s: list stamp %+v repeats the one after %s", step, st, prev)
			}
			stamps[st] = step
		}
		stampOf("claim")
		for _, w := range writes {
			if err := w.write(ctx); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			stampOf(w.name)
			v := ownerVersion(t, db, u.ID, id)
			if prev, dup := seen[v]; dup {
				t.Fatalf("%s: row version %d unchanged since %s", w.name, v, prev)
			}
			seen[v] = w.name
			got, err := db.DevicesByIDs(ctx, []string{id, "e00fce68000000000000ffff"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != id || got[0].Version != v {
				t.Fatalf("%s: DevicesByIDs = %+v; want %s at version %d", w.name, got, id, v)
			}
		}

		// Unclaiming drops it from the list; deleting and provisioning the
		// same ID again never brings back an old version.
		if err := db.UnclaimDevice(ctx, id); err != nil {
			t.Fatal(err)
		}
		if v := ownerVersion(t, db, u.ID, id); v != -1 {
			t.Fatalf("unclaimed device still listed at version %d", v)
		}
		stampOf("unclaim")
		if err := db.DeleteDevice(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, key, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimDevice(ctx, id, u.ID, ""); err != nil {
			t.Fatal(err)
		}
		if v := ownerVersion(t, db, u.ID, id); v < 0 || seen[v] != "" {
			t.Fatalf("reprovisioned device at version %d (seen before: %q)", v, seen[v])
		}
		stampOf("claim after reprovisioning")
	})
}

// TestDeviceVersionsOrderAndBatches checks that the version lists follow
// the order of DevicesByOwner and that DevicesByIDs spans several
// queries.
func TestDeviceVersionsOrderAndBatches(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		u := &store.User{Username: "order@example.com", PasswordHash: "h"}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		n := idsPerQuery + 7
		key := make([]byte, 162)
		ids := make([]string, n)
		base := time.Now().Add(-time.Hour)
		for i := range ids {
			ids[i] = "e00fce68" + string(rune('a'+i%6)) + "000000000" + itoa6(i)
			if _, err := db.ProvisionDevice(ctx, ids[i], store.KeyRSA, key, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ClaimDevice(ctx, ids[i], u.ID, ""); err != nil {
				t.Fatal(err)
			}
			if i%3 != 0 { // a third never connected
				at := base.Add(time.Duration(i%50) * time.Second)
				if _, err := db.SetDeviceOnline(ctx, ids[i], store.DeviceSession{Node: "n", SessionID: "s", PlatformID: 6, At: at}); err != nil {
					t.Fatal(err)
				}
			}
		}
		full, err := db.DevicesByOwner(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := db.DeviceVersionsByOwner(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != len(full) || len(vs) != n {
			t.Fatalf("%d versions, %d devices; want %d", len(vs), len(full), n)
		}
		for i := range vs {
			if vs[i].ID != full[i].ID {
				t.Fatalf("entry %d: version list has %s, DevicesByOwner %s", i, vs[i].ID, full[i].ID)
			}
		}
		got, err := db.DevicesByIDs(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("DevicesByIDs returned %d devices; want %d", len(got), n)
		}
		if list, err := db.DeviceVersionsByCustomer(ctx, ""); err != nil || list != nil {
			t.Fatalf("versions of no customer = %v, %v", list, err)
		}
	})
}

// itoa6 formats i in six decimal digits.
func itoa6(i int) string {
	b := []byte("000000")
	for j := 5; j >= 0 && i > 0; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}
