package sqlstore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
)

// TestCounters checks the shared counters in both dialects: windows,
// expiry, set/delete and, on PostgreSQL, two handles (two servers) adding
// at once without losing a count.
func TestCounters(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*DB, *DB)
	}{
		{"sqlite", func(t *testing.T) (*DB, *DB) { db := openSQLiteFile(t); return db, db }},
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
			t.Cleanup(func() { b.Close() })
			return a, b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := tc.open(t)
			defer a.Close()
			t0 := time.UnixMilli(1_800_000_000_000)
			if n, exp, err := a.Counter(ctx, "k", t0); err != nil || n != 0 || !exp.IsZero() {
				t.Fatalf("absent counter = %d %v %v", n, exp, err)
			}
			for i := 1; i <= 3; i++ {
				n, exp, err := a.AddCounter(ctx, "k", t0.Add(time.Duration(i)*time.Second), time.Minute)
				if err != nil || n != int64(i) || !exp.Equal(t0.Add(time.Second+time.Minute)) {
					t.Fatalf("add %d = %d %v %v; want %d, window from the first", i, n, exp, err, i)
				}
			}
			later := t0.Add(2 * time.Minute)
			if n, _, _ := a.Counter(ctx, "k", later); n != 0 {
				t.Errorf("expired counter reads %d", n)
			}
			if n, exp, err := a.AddCounter(ctx, "k", later, time.Minute); err != nil || n != 1 || !exp.Equal(later.Add(time.Minute)) {
				t.Errorf("add after expiry = %d %v %v; want a new window", n, exp, err)
			}
			if err := a.SetCounter(ctx, "lock", 7, later.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n, exp, err := b.Counter(ctx, "lock", later); err != nil || n != 7 || !exp.Equal(later.Add(time.Hour)) {
				t.Errorf("set counter read back = %d %v %v", n, exp, err)
			}
			if err := a.DeleteCounter(ctx, "lock"); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := b.Counter(ctx, "lock", later); n != 0 {
				t.Error("deleted counter still counts")
			}
			if n, err := a.DeleteExpiredCounters(ctx, later.Add(2*time.Minute)); err != nil || n != 1 {
				t.Errorf("DeleteExpiredCounters = %d, %v; want 1", n, err)
			}
			// Two servers counting one key at once lose nothing.
			const each = 20
			var wg sync.WaitGroup
			for _, db := range []*DB{a, b} {
				for range 2 {
					wg.Go(func() {
						for range each {
							if _, _, err := db.AddCounter(ctx, "race", t0, time.Hour); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			if n, _, err := a.Counter(ctx, "race", t0); err != nil || n != 4*each {
				t.Errorf("concurrent count = %d, %v; want %d", n, err, 4*each)
			}
		})
	}
}

// BenchmarkAddCounter measures the cost a shared limit adds to a request:
// one upsert round trip (docs/scaling.md, Limits).
func BenchmarkAddCounter(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"sqlite", func(b *testing.B) *DB { return openSQLiteFile(b) }},
		{"postgres", func(b *testing.B) *DB { return openPostgresSchema(b) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := tc.open(b)
			defer db.Close()
			ctx := context.Background()
			now := time.Now()
			var seq atomic.Int64
			for _, op := range []struct {
				name string
				run  func(key string) error
			}{
				{"add-one-key", func(string) error { _, _, err := db.AddCounter(ctx, "bench", now, time.Hour); return err }},
				{"add-own-key", func(k string) error { _, _, err := db.AddCounter(ctx, k, now, time.Hour); return err }},
				{"read", func(k string) error { _, _, err := db.Counter(ctx, k, now); return err }},
			} {
				b.Run(op.name, func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						key := "bench-" + strconv.FormatInt(seq.Add(1), 10)
						for pb.Next() {
							if err := op.run(key); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// TestAddCounts checks the batched add of the cluster rate limits in both
// dialects: sums, repeated keys, the later expiry kept, more keys than one
// statement takes.
func TestAddCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t testing.TB) *DB
	}{
		{"sqlite", openSQLiteFile},
		{"postgres", openPostgresSchema},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			t0 := time.UnixMilli(1_800_000_000_000)
			got, err := db.AddCounts(ctx, []ratelimit.CountAdd{{Key: "a", N: 3, Expires: t0}, {Key: "b", N: 1, Expires: t0}, {Key: "a", N: 2, Expires: t0.Add(time.Second)}})
			if err != nil || got["a"] != 5 || got["b"] != 1 || len(got) != 2 {
				t.Fatalf("AddCounts = %v %v; want a=5 b=1", got, err)
			}
			got, err = db.AddCounts(ctx, []ratelimit.CountAdd{{Key: "a", N: 4, Expires: t0}})
			if err != nil || got["a"] != 9 {
				t.Fatalf("second add = %v %v; want a=9", got, err)
			}
			if n, exp, _ := db.Counter(ctx, "a", t0); n != 9 || !exp.Equal(t0.Add(time.Second)) {
				t.Errorf("counter a = %d until %v; want 9 until the later expiry", n, exp)
			}
			if tc.name == "sqlite" {
				return // one node never syncs; chunks matter for PostgreSQL's arrays
			}
			var many []ratelimit.CountAdd
			for i := range addCountsChunk + 7 {
				many = append(many, ratelimit.CountAdd{Key: "k" + strconv.Itoa(i), N: int64(i), Expires: t0})
			}
			got, err = db.AddCounts(ctx, many)
			if err != nil || len(got) != len(many) || got["k"+strconv.Itoa(addCountsChunk+6)] != addCountsChunk+6 {
				t.Errorf("AddCounts of %d keys: %d totals, %v", len(many), len(got), err)
			}
		})
	}
}

// TestSharedRateLimitPostgres: two nodes' limiters (ratelimit.Shared) over
// two handles on one PostgreSQL schema hold one limit for a client that
// spreads its requests over both: at least the limit, at most the limit
// plus what one node counts between syncs.
func TestSharedRateLimitPostgres(t *testing.T) {
	dsn := freshSchema(t)
	const limit, perSync = 100, 10
	clock := time.Now().Truncate(time.Hour).Add(time.Minute)
	now := func() time.Time { return clock }
	var nodes []*ratelimit.SharedWindow
	var syncs []*ratelimit.Shared
	for range 2 {
		db, err := Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s := ratelimit.NewShared(db, ratelimit.SharedConfig{Now: now})
		syncs = append(syncs, s)
		nodes = append(nodes, s.Window("global", limit, time.Hour, 1000))
	}
	admitted := 0
	for i := range 400 {
		if ok, _ := nodes[i%2].Allow("203.0.113.7", clock); ok {
			admitted++
		}
		if i%(2*perSync) == 2*perSync-1 {
			for _, s := range syncs {
				if err := s.Sync(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if admitted < limit || admitted > limit+perSync {
		t.Errorf("admitted %d over 2 nodes; want %d..%d", admitted, limit, limit+perSync)
	}
	a, _ := Open(context.Background(), dsn, nil)
	defer a.Close()
	key := "rate/global/" + strconv.FormatInt(clock.Truncate(time.Hour).UnixMilli(), 10) + "/203.0.113.7"
	if n, _, err := a.Counter(context.Background(), key, clock); err != nil || n != int64(admitted) {
		t.Errorf("shared counter = %d %v; want the %d admitted", n, err, admitted)
	}
}

// BenchmarkAddCounts measures one sync of the cluster rate limits on
// PostgreSQL (one statement, one commit) with 1, 100 and 1,000 active
// keys: the store's cost per sync interval per node, whatever the request
// rate. Skipped without PostgreSQL.
func BenchmarkAddCounts(b *testing.B) {
	db := openPostgresSchema(b)
	defer db.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, keys := range []int{1, 100, 1000} {
		adds := make([]ratelimit.CountAdd, keys)
		for i := range adds {
			adds[i] = ratelimit.CountAdd{Key: "rate/bench/" + strconv.Itoa(i), N: 3, Expires: exp}
		}
		b.Run(strconv.Itoa(keys)+"-keys", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.AddCounts(ctx, adds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
