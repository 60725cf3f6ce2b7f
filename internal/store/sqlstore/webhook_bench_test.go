package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// BenchmarkAddWebhookDeliveries measures the delivery engine's log writes:
// batches of 256 entries over 16 hooks, each hook's log pruned to 1000, on
// a SQLite file and (with WICK_TEST_POSTGRES_URL) on PostgreSQL. It reports
// entries per second.
func BenchmarkAddWebhookDeliveries(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		db := openSQLiteFile(b)
		defer db.Close()
		benchAddDeliveries(b, db)
	})
	b.Run("postgres", func(b *testing.B) {
		db := openPostgresSchema(b)
		defer db.Close()
		benchAddDeliveries(b, db)
	})
}

// benchAddDeliveries runs the benchmark body on db.
func benchAddDeliveries(b *testing.B, db *DB) {
	ctx := b.Context()
	const hooks, batchSize, keep = 16, 256, 1000
	ids := make([]string, hooks)
	for i := range ids {
		w := &store.Webhook{IntegrationType: store.IntegrationWebhook, UserID: "u", Event: "e",
			Settings: store.WebhookSettings{URL: "http://127.0.0.1/", RequestType: "POST"}}
		if err := db.CreateWebhook(ctx, w); err != nil {
			b.Fatal(err)
		}
		ids[i] = w.ID
	}
	batch := make([]*store.WebhookDelivery, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = &store.WebhookDelivery{WebhookID: ids[n%hooks], EventID: uint64(n), EventName: "temp",
				DeviceID: "0123456789abcdef01234567", Attempt: 1, At: time.Now(), Method: "POST",
				URL: "http://127.0.0.1:9000/in", Status: 200, Latency: time.Millisecond, Response: fmt.Sprint(n)}
		}
		if err := db.AddWebhookDeliveries(ctx, batch, keep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "entries/s")
}
