package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// BenchmarkRecentDTLSSessions measures the start sweep's listing
// (docs/device-protocol.md, "The start sweep"): one iteration pages through
// every saved session of WICK_BENCH_DTLS_SESSIONS (default 10,000) offline
// devices, 256 a page, as the gateway does at start. Reported: the time per
// session listed. WICK_TEST_POSTGRES_URL runs it on PostgreSQL too.
func BenchmarkRecentDTLSSessions(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("WICK_BENCH_DTLS_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	b.Run("sqlite", func(b *testing.B) { benchRecent(b, openSQLiteFile(b), n) })
	if os.Getenv("WICK_TEST_POSTGRES_URL") != "" {
		b.Run("postgres", func(b *testing.B) { benchRecent(b, openPostgresSchema(b), n) })
	}
}

func benchRecent(b *testing.B, db *DB, n int) {
	ctx := context.Background()
	now := time.Now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		dev, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO devices (id, key_algorithm, created_at, updated_at)
			VALUES (?, 'ecc', ?, ?)`))
		if err != nil {
			return err
		}
		defer dev.Close()
		ses, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO dtls_sessions (cid, device_id, state, addr, updated_at)
			VALUES (?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer ses.Close()
		state := make([]byte, 300)
		for i := range n {
			id := fmt.Sprintf("%024x", i)
			if _, err := dev.ExecContext(ctx, id, toMS(now), toMS(now)); err != nil {
				return err
			}
			cid := []byte(fmt.Sprintf("%08x", i))
			at := now.Add(-time.Duration(i%2700) * time.Second) // spread over 45 min
			if _, err := ses.ExecContext(ctx, cid, id, state, "192.0.2.1:40000", toMS(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	listed := 0
	for range b.N {
		var after *store.DTLSSession
		for {
			page, err := db.RecentDTLSSessions(ctx, now.Add(-47*time.Minute), after, 256)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			listed += len(page)
			after = &page[len(page)-1]
		}
	}
	if listed != n*b.N {
		b.Fatalf("listed %d; want %d", listed, n*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(listed), "ns/session")
}
