package api

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkLimiterFull measures one allow on a limiter holding its maximum
// of 100,000 keys, each request from a new key (an attacker with many
// addresses): the case that must stay O(1).
func BenchmarkLimiterFull(b *testing.B) {
	const keys = 100000
	t0 := time.Unix(1000, 0)
	l := newLimiter(10, time.Minute, keys)
	for i := range keys {
		l.allow("k"+strconv.Itoa(i), t0)
	}
	names := make([]string, 1<<16)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.allow(names[i&(len(names)-1)]+strconv.Itoa(i>>16), t0)
	}
}
