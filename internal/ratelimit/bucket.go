package ratelimit

import (
	"math"
	"time"
)

// Buckets is a keyed token-bucket limiter: each key holds up to a burst of
// tokens, refilled by one every interval, and an event takes one. A nil
// *Buckets allows everything.
type Buckets struct {
	burst    float64
	interval time.Duration
	t        *table[bucketState]
}

// bucketState is one key's tokens left at time at.
type bucketState struct {
	tokens float64
	at     time.Time
	seen   bool
}

// NewBuckets returns a limiter of burst events refilled one per interval
// per key, tracking at most about maxKeys keys, or nil (no limit) when
// burst is negative. Evicting a key only lets it start with a full bucket.
func NewBuckets(burst int, interval time.Duration, maxKeys int) *Buckets {
	if burst < 0 {
		return nil
	}
	return &Buckets{burst: float64(burst), interval: interval, t: newTable[bucketState](maxKeys)}
}

// Allow takes a token for key at now. When none is left it reports false
// and how long until one is.
func (b *Buckets) Allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if b == nil {
		return true, 0
	}
	b.t.update(key, true, func(s *bucketState) bool {
		if !s.seen {
			*s = bucketState{tokens: b.burst, at: now, seen: true}
		}
		if elapsed := now.Sub(s.at); elapsed > 0 {
			s.tokens = math.Min(b.burst, s.tokens+float64(elapsed)/float64(b.interval))
			s.at = now
		}
		if s.tokens < 1 {
			retry = time.Duration((1 - s.tokens) * float64(b.interval))
			return false
		}
		s.tokens--
		ok = true
		return false
	})
	return ok, retry
}

// Len reports how many keys are tracked.
func (b *Buckets) Len() int {
	if b == nil {
		return 0
	}
	return b.t.len()
}
