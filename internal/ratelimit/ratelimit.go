package ratelimit

import "time"

// Window allows Limit events per fixed window per key. A nil *Window
// allows everything.
type Window struct {
	limit  int
	window time.Duration
	t      *table[bucket]
}

// bucket is one key's current window.
type bucket struct {
	start time.Time
	n     int
}

// NewWindow returns a limiter of limit events per window per key tracking
// at most about maxKeys keys, or nil (no limit) when limit is negative.
// Evicting a key only lets it start afresh.
func NewWindow(limit int, window time.Duration, maxKeys int) *Window {
	if limit < 0 {
		return nil
	}
	return &Window{limit: limit, window: window, t: newTable[bucket](maxKeys)}
}

// Allow counts one event for key at now and reports whether it is within
// the limit; if not, retry is how long until the key's window ends.
func (w *Window) Allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if w == nil {
		return true, 0
	}
	ok = true
	w.t.update(key, true, func(b *bucket) bool {
		if b.n == 0 || now.Sub(b.start) >= w.window || now.Before(b.start) {
			*b = bucket{start: now}
		}
		b.n++
		if b.n > w.limit {
			ok, retry = false, b.start.Add(w.window).Sub(now)
		}
		return false
	})
	return ok, retry
}

// Len reports how many keys are tracked.
func (w *Window) Len() int {
	if w == nil {
		return 0
	}
	return w.t.len()
}

// Lockout locks a key out for a while once it has failed Max times within
// that while: failures are counted from the first one of a period, and a
// period ends Duration after its first failure. A nil *Lockout never locks.
type Lockout struct {
	max int
	dur time.Duration
	t   *table[strike]
}

// strike is one key's failure record.
type strike struct {
	first time.Time // first failure of the counting period
	fails int
	until time.Time // locked out until
}

// NewLockout returns a lockout that locks a key for dur after max failures
// within dur, tracking at most about maxKeys keys, or nil (never locks)
// when max is negative or zero.
func NewLockout(max int, dur time.Duration, maxKeys int) *Lockout {
	if max <= 0 {
		return nil
	}
	return &Lockout{max: max, dur: dur, t: newTable[strike](maxKeys)}
}

// Locked reports whether key is locked out at now, and for how long.
func (l *Lockout) Locked(key string, now time.Time) (locked bool, retry time.Duration) {
	if l == nil {
		return false, 0
	}
	l.t.update(key, false, func(s *strike) bool {
		if now.Before(s.until) {
			locked, retry = true, s.until.Sub(now)
		}
		return false
	})
	return locked, retry
}

// Fail records a failure of key at now and reports whether key is now
// locked out.
func (l *Lockout) Fail(key string, now time.Time) (locked bool) {
	if l == nil {
		return false
	}
	l.t.update(key, true, func(s *strike) bool {
		if s.fails == 0 || now.Sub(s.first) >= l.dur || now.Before(s.first) {
			s.first, s.fails = now, 0
		}
		s.fails++
		if s.fails >= l.max {
			s.until = now.Add(l.dur)
			s.first, s.fails = time.Time{}, 0
		}
		locked = now.Before(s.until)
		return false
	})
	return locked
}

// Reset forgets key's failures and lifts its lockout.
func (l *Lockout) Reset(key string) {
	if l != nil {
		l.t.remove(key)
	}
}

// Len reports how many keys are tracked.
func (l *Lockout) Len() int {
	if l == nil {
		return 0
	}
	return l.t.len()
}

// Recent remembers keys for a while (for example, the addresses an account
// last logged in from). A nil *Recent remembers nothing.
type Recent struct {
	ttl time.Duration
	t   *table[time.Time]
}

// NewRecent returns a set remembering each key for ttl after it was last
// added, holding at most about maxKeys keys.
func NewRecent(ttl time.Duration, maxKeys int) *Recent {
	return &Recent{ttl: ttl, t: newTable[time.Time](maxKeys)}
}

// Add remembers key from now.
func (r *Recent) Add(key string, now time.Time) {
	if r == nil {
		return
	}
	r.t.update(key, true, func(at *time.Time) bool { *at = now; return false })
}

// Has reports whether key was added less than the ttl before now.
func (r *Recent) Has(key string, now time.Time) bool {
	if r == nil {
		return false
	}
	found := false
	r.t.update(key, false, func(at *time.Time) bool {
		found = now.Sub(*at) < r.ttl
		return !found
	})
	return found
}
