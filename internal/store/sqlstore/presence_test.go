package sqlstore

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// TestApplyPresence checks that a batch applies its updates in order in
// one transaction: an online then its offline, an offline of a session
// that is not the device's, last-heard times that never go back, and an
// unknown device skipped.
func TestApplyPresence(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		const a, b = "e00fce6800000000000000c1", "e00fce6800000000000000c2"
		for _, id := range []string{a, b} {
			if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, make([]byte, 162), 0); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		applied, err := db.ApplyPresence(ctx, []store.PresenceUpdate{
			{DeviceID: a, Online: &store.DeviceSession{Node: "n", SessionID: "a1", IP: "192.0.2.1", At: t0, PlatformID: 6}},
			{DeviceID: b, Online: &store.DeviceSession{Node: "n", SessionID: "b1", At: t0}},
			{DeviceID: a, OfflineSession: "a1", OfflineAt: t0.Add(time.Minute)},
			{DeviceID: b, OfflineSession: "old", OfflineAt: t0.Add(time.Minute), LastHeard: t0.Add(2 * time.Minute)},
			{DeviceID: b, LastHeard: t0.Add(time.Second)},
			{DeviceID: "e00fce6800000000000000ff", Online: &store.DeviceSession{Node: "n", SessionID: "x"}, LastHeard: t0},
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{false, false, true, false, false, false}; len(applied) != len(want) || applied[2] != true || applied[3] != false {
			t.Fatalf("applied = %v; want %v", applied, want)
		}
		da, _ := db.DeviceByID(ctx, a)
		db2, _ := db.DeviceByID(ctx, b)
		if da.Online || da.SessionID != "" || da.LastIP != "192.0.2.1" || da.PlatformID != 6 ||
			da.LastHeard == nil || !da.LastHeard.Equal(t0.Add(time.Minute)) {
			t.Errorf("device a: online %v session %q ip %q platform %d heard %v", da.Online, da.SessionID, da.LastIP, da.PlatformID, da.LastHeard)
		}
		if !db2.Online || db2.SessionID != "b1" || db2.LastHeard == nil || !db2.LastHeard.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("device b: online %v session %q heard %v", db2.Online, db2.SessionID, db2.LastHeard)
		}
	})
}

// BenchmarkApplyPresence: a batch of onlines of 256 of 10,000 devices,
// half with a product, in one ApplyPresence (a resumption wave writes
// these), per device. On a SQLite file.
func BenchmarkApplyPresence(b *testing.B) {
	db := openSQLiteFile(b)
	ctx := b.Context()
	const n, batch = 10000, 256
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e00fce68%016x", i)
		if _, err := db.ProvisionDevice(ctx, ids[i], store.KeyRSA, make([]byte, 162), 0); err != nil {
			b.Fatal(err)
		}
	}
	ups := make([]store.PresenceUpdate, batch)
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		for i := range ups {
			s := &store.DeviceSession{Node: "n", SessionID: strconv.Itoa(k), IP: "192.0.2.1", PlatformID: 12}
			if k%2 == 0 {
				s.ProductVersion = 3
			}
			ups[i] = store.PresenceUpdate{DeviceID: ids[k%n], Online: s}
			k++
		}
		if _, err := db.ApplyPresence(ctx, ups); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(k), "ns/device")
}
