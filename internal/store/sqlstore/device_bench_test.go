package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// benchDialects runs fn against a fresh SQLite file and, when
// WICK_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func benchDialects(b *testing.B, fn func(b *testing.B, db *DB)) {
	b.Run("sqlite", func(b *testing.B) {
		db := openSQLiteFile(b)
		defer db.Close()
		fn(b, db)
	})
	b.Run("postgres", func(b *testing.B) {
		db := openPostgresSchema(b)
		defer db.Close()
		fn(b, db)
	})
}

// seedDevices provisions n online devices with a describe and returns
// their IDs.
func seedDevices(b *testing.B, db *DB, n int) []string {
	b.Helper()
	ctx := b.Context()
	key := make([]byte, 162) // an RSA-1024 SPKI is 162 bytes
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e00fce68%016x", i)
		if _, err := db.ProvisionDevice(ctx, ids[i], store.KeyRSA, key, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SetDeviceOnline(ctx, ids[i], store.DeviceSession{Node: "bench", SessionID: "s", PlatformID: 6}); err != nil {
			b.Fatal(err)
		}
		err := db.SetDeviceDescribe(ctx, ids[i], store.Describe{
			Parts:     store.DescribeApplication | store.DescribeSystem,
			Functions: []string{"led"}, SystemVersion: "3.3.1",
			Variables: map[string]string{"temp": "double", "count": "int32", "label": "string", "on": "bool"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// BenchmarkTouchDevices measures the gateway's periodic flush of last-heard
// times for 1,000 connected devices; one op is one batch.
func BenchmarkTouchDevices(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		ids := seedDevices(b, db, n)
		batch := make(map[string]time.Time, n)
		t0 := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			i++
			at := t0.Add(time.Duration(i) * time.Second) // always later: every row changes
			for _, id := range ids {
				batch[id] = at
			}
			if err := db.TouchDevices(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/device")
	})
}

// BenchmarkDeviceByID measures the lookup behind every device API request
// and every handshake.
func BenchmarkDeviceByID(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		ids := seedDevices(b, db, n)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := db.DeviceByID(b.Context(), ids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
