package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkWindowFull measures Allow on a limiter holding its maximum of
// 100,000 keys, every event from a new key: the case that must stay O(1).
func BenchmarkWindowFull(b *testing.B) {
	const keys = 100000
	t0 := time.Unix(1000, 0)
	w := NewWindow(10, time.Minute, keys)
	for i := range keys {
		w.Allow("k"+strconv.Itoa(i), t0)
	}
	names := keyNames("n", 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.Allow(names[i&(len(names)-1)], t0)
	}
}

// BenchmarkWindowParallel measures Allow from all cores on a full limiter.
func BenchmarkWindowParallel(b *testing.B) {
	const keys = 100000
	t0 := time.Unix(1000, 0)
	w := NewWindow(10, time.Minute, keys)
	names := keyNames("n", 1<<18)
	for _, n := range names[:keys] {
		w.Allow(n, t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Allow(names[i&(len(names)-1)], t0)
			i += 7
		}
	})
}

// BenchmarkSharedWindowAllow measures the per-request cost of a
// cluster-wide limit on the request path (the store round trip is once
// per sync interval, not per request; see BenchmarkAddCounts in
// internal/store/sqlstore).
func BenchmarkSharedWindowAllow(b *testing.B) {
	s := NewShared(&memCounts{}, SharedConfig{})
	w := s.Window("global", 1<<40, time.Minute, 100000)
	benchAddrAllow(b, w.Allow, func() { s.Sync(context.Background()) })
}

// BenchmarkWindowAllowBaseline is the per-node Window on the same keys,
// the baseline of BenchmarkSharedWindowAllow.
func BenchmarkWindowAllowBaseline(b *testing.B) {
	w := NewWindow(1<<40, time.Minute, 100000)
	benchAddrAllow(b, w.Allow, nil)
}

// keyNames returns n keys: prefix followed by 0 to n-1.
func keyNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = prefix + strconv.Itoa(i)
	}
	return names
}

// benchAddrAllow runs allow round 1024 addresses at one instant, calling
// sync (if set) every 4096 requests.
func benchAddrAllow(b *testing.B, allow func(key string, now time.Time) (bool, time.Duration), sync func()) {
	t0 := time.Unix(1_800_000_000, 0)
	names := keyNames("203.0.113.", 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		allow(names[i&(len(names)-1)], t0)
		if sync != nil && i&4095 == 0 {
			sync()
		}
	}
}
