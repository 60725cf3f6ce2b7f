package benchmark

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear over microseconds: values below
// 2·histSub are exact, larger ones fall in one of histSub buckets per power
// of two, so a quantile read from it is within 1/histSub (1.6%) of the
// truth. Recording is one atomic add, safe from any number of goroutines.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub // every uint64 has a bucket
)

// histogram counts latencies. The zero value is empty and ready.
type histogram struct {
	counts [histBuckets]atomic.Int64
	total  atomic.Int64
	sumUS  atomic.Int64 // sum of the recorded values in µs
	maxNS  atomic.Int64 // largest recorded value, exact
}

// bucketOf returns the bucket of v microseconds.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2·histSub)
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// bucketRange returns the smallest and largest value (µs) of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return m << shift, (m+1)<<shift - 1
}

// record adds one latency; negative values (clock steps) count as zero.
func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	us := uint64(d / time.Microsecond)
	h.counts[bucketOf(us)].Add(1)
	h.total.Add(1)
	h.sumUS.Add(int64(us))
	for {
		m := h.maxNS.Load()
		if int64(d) <= m || h.maxNS.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// snapshot is a point-in-time copy of a histogram, for quantiles and for
// the difference between two moments.
type snapshot struct {
	counts [histBuckets]int64
	total  int64
	sumUS  int64
	maxNS  int64
}

// snapshot copies h. Concurrent records may land in the copy or not.
func (h *histogram) snapshot() *snapshot {
	s := &snapshot{total: h.total.Load(), sumUS: h.sumUS.Load(), maxNS: h.maxNS.Load()}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	return s
}

// since returns the records of s that came after prev (prev may be nil).
// The maximum of the difference is the largest bucket's upper bound, as
// the exact maximum of an interval is not kept.
func (s *snapshot) since(prev *snapshot) *snapshot {
	if prev == nil {
		return s
	}
	d := &snapshot{total: s.total - prev.total, sumUS: s.sumUS - prev.sumUS}
	for i := range s.counts {
		d.counts[i] = s.counts[i] - prev.counts[i]
		if d.counts[i] > 0 {
			_, hi := bucketRange(i)
			d.maxNS = int64(hi) * int64(time.Microsecond)
		}
	}
	return d
}

// quantile returns the q-quantile (0 < q ≤ 1): the middle of the bucket
// holding the ceil(q·n)-th smallest value, capped at the maximum. Zero
// when empty.
func (s *snapshot) quantile(q float64) time.Duration {
	if s.total <= 0 {
		return 0
	}
	rank := int64(q*float64(s.total) + 0.999999)
	rank = min(max(rank, 1), s.total)
	var seen int64
	for i, c := range s.counts {
		if seen += c; seen >= rank {
			lo, hi := bucketRange(i)
			mid := time.Duration((lo+hi)/2) * time.Microsecond
			if s.maxNS > 0 {
				mid = min(mid, time.Duration(s.maxNS))
			}
			return mid
		}
	}
	return time.Duration(s.maxNS)
}

// mean returns the average latency, zero when empty.
func (s *snapshot) mean() time.Duration {
	if s.total <= 0 {
		return 0
	}
	return time.Duration(s.sumUS/s.total) * time.Microsecond
}

// latency summarizes s in milliseconds.
func (s *snapshot) latency() Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{
		Count: s.total,
		P50:   ms(s.quantile(0.50)),
		P90:   ms(s.quantile(0.90)),
		P99:   ms(s.quantile(0.99)),
		P999:  ms(s.quantile(0.999)),
		Max:   ms(time.Duration(s.maxNS)),
		Mean:  ms(s.mean()),
	}
}
