package ratelimit

import (
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
	names := make([]string, 1<<20)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i)
	}
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
	names := make([]string, 1<<18)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i)
	}
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
