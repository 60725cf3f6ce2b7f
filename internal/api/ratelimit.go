package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limiter allows limit events per fixed window per key. Memory is bounded
// by maxKeys: expired windows are swept once per window, and when the map
// is still full an arbitrary key is evicted (which only ever lets that key
// start afresh). A nil *limiter allows everything.
type limiter struct {
	limit   int
	window  time.Duration
	maxKeys int

	mu        sync.Mutex
	buckets   map[string]bucket // guarded by mu
	nextSweep time.Time         // guarded by mu
}

// bucket is one key's current window.
type bucket struct {
	start time.Time
	n     int
}

// newLimiter returns a limiter, or nil (no limit) when limit is negative.
func newLimiter(limit int, window time.Duration, maxKeys int) *limiter {
	if limit < 0 {
		return nil
	}
	return &limiter{limit: limit, window: window, maxKeys: maxKeys, buckets: map[string]bucket{}}
}

// allow counts one event for key at now and reports whether it is within
// the limit; if not, retry is how long until the window resets.
func (l *limiter) allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, found := l.buckets[key]
	if !found || now.Sub(b.start) >= l.window || now.Before(b.start) {
		if !found && len(l.buckets) >= l.maxKeys {
			l.evictOne()
		}
		b = bucket{start: now}
	}
	b.n++
	l.buckets[key] = b
	if b.n > l.limit {
		return false, b.start.Add(l.window).Sub(now)
	}
	return true, 0
}

// sweep drops expired windows, at most once per window. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	if now.Before(l.nextSweep) && len(l.buckets) < l.maxKeys {
		return
	}
	for k, b := range l.buckets {
		if now.Sub(b.start) >= l.window {
			delete(l.buckets, k)
		}
	}
	l.nextSweep = now.Add(l.window)
}

// evictOne removes an arbitrary key. Called with mu held.
func (l *limiter) evictOne() {
	for k := range l.buckets {
		delete(l.buckets, k)
		return
	}
}

// size reports how many keys are tracked (for tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// lockout locks a key out for a duration after max consecutive failures.
// A nil *lockout never locks.
type lockout struct {
	max     int
	dur     time.Duration
	maxKeys int

	mu      sync.Mutex
	strikes map[string]strike // guarded by mu
}

// strike is one key's failure record.
type strike struct {
	fails int
	last  time.Time // last failure
	until time.Time // locked out until
}

// newLockout returns a lockout, or nil when max is negative.
func newLockout(max int, dur time.Duration, maxKeys int) *lockout {
	if max < 0 {
		return nil
	}
	return &lockout{max: max, dur: dur, maxKeys: maxKeys, strikes: map[string]strike{}}
}

// locked reports whether key is locked out at now, and for how long.
func (l *lockout) locked(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, found := l.strikes[key]
	if found && now.Before(s.until) {
		return true, s.until.Sub(now)
	}
	return false, 0
}

// fail records a failure of key at now.
func (l *lockout) fail(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, found := l.strikes[key]
	if !found && len(l.strikes) >= l.maxKeys {
		l.sweep(now)
	}
	// Failures older than the lockout period are forgotten.
	if found && now.Sub(s.last) >= l.dur {
		s.fails = 0
	}
	s.fails++
	s.last = now
	if s.fails >= l.max {
		s.fails, s.until = 0, now.Add(l.dur)
	}
	l.strikes[key] = s
}

// succeed clears key's failures (but not a running lockout).
func (l *lockout) succeed(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, found := l.strikes[key]; found && !now.Before(s.until) {
		delete(l.strikes, key)
	}
}

// sweep drops records that neither lock nor count any more, then evicts
// arbitrary ones while full. Called with mu held.
func (l *lockout) sweep(now time.Time) {
	for k, s := range l.strikes {
		if !now.Before(s.until) && now.Sub(s.last) >= l.dur {
			delete(l.strikes, k)
		}
	}
	for k := range l.strikes {
		if len(l.strikes) < l.maxKeys {
			break
		}
		delete(l.strikes, k)
	}
}

// clientIP returns the rate-limit key of a request's client: its IP
// address, IPv6 addresses reduced to their /64. With trustProxy the first
// X-Forwarded-For address is used when it parses.
func clientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if addr, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return ipKey(addr)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return ipKey(addr)
	}
	return host
}

func ipKey(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
