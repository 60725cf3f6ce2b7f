package webhook

import (
	"sync"
	"time"
)

// SleepingMessage is the hook-error data published when an attempt is
// skipped because its target host is sleeping
// (docs/particle-api.md#retries-and-throttling).
const SleepingMessage = "Sleeping, too many errors, please wait and try again"

// ThrottleConfig tunes the per-host throttle
// (docs/particle-api.md#retries-and-throttling). Zero fields take the defaults.
type ThrottleConfig struct {
	// Window is the span over which a host's successes and errors are
	// counted: two buckets of Window/2, so the count covers the last
	// Window/2 to Window. Default 60 s.
	Window time.Duration
	// MinErrors is how many errors the window must hold, besides
	// outnumbering the successes, before the host sleeps. Default 10.
	MinErrors int
	// Resume is how long a host sleeps after its most recent error: it
	// wakes after Resume without errors. Default 5 s.
	Resume time.Duration
	// SkipDelays are the delays of an attempt skipped while its host
	// sleeps: after the first skip, after the second, ...; a job skipped
	// once more is dropped. Default 30 s, 1 min.
	SkipDelays []time.Duration
	// NoticeEvery rate-limits the "Sleeping" hook-error (and its delivery
	// log entry) to one per hook per NoticeEvery. Default 10 s.
	NoticeEvery time.Duration
}

func (c *ThrottleConfig) setDefaults() {
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.MinErrors <= 0 {
		c.MinErrors = 10
	}
	if c.Resume <= 0 {
		c.Resume = 5 * time.Second
	}
	if c.SkipDelays == nil {
		c.SkipDelays = []time.Duration{30 * time.Second, time.Minute}
	}
	if c.NoticeEvery <= 0 {
		c.NoticeEvery = 10 * time.Second
	}
}

// throttle tracks the outcome of requests per target host name and puts a
// host to sleep when its errors outnumber its successes. It is in-memory
// and per process. Every method takes the current time, so tests drive it
// with a fake clock.
type throttle struct {
	cfg ThrottleConfig

	mu    sync.Mutex
	hosts map[string]*hostState // guarded by mu
}

type hostState struct {
	start      time.Time // start of the current bucket
	cur, prev  tally
	sleepUntil time.Time // the host sleeps while now < sleepUntil
	seen       time.Time // last outcome recorded
	sharedAt   time.Time // when this process last told the others the host sleeps
}

type tally struct{ ok, err int }

func newThrottle(cfg ThrottleConfig) *throttle {
	cfg.setDefaults()
	return &throttle{cfg: cfg, hosts: make(map[string]*hostState)}
}

// allow reports whether an attempt to host may be sent now (false while
// the host sleeps).
func (t *throttle) allow(host string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.hosts[host]
	return s == nil || !now.Before(s.sleepUntil)
}

// record counts one outcome for host. It reports whether this error put
// an awake host to sleep.
func (t *throttle) record(host string, ok bool, now time.Time) (fellAsleep bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.hosts[host]
	if s == nil {
		s = &hostState{start: now}
		t.hosts[host] = s
	}
	s.rotate(now, t.cfg.Window/2)
	s.seen = now
	if ok {
		s.cur.ok++
		return false
	}
	s.cur.err++
	errs, oks := s.cur.err+s.prev.err, s.cur.ok+s.prev.ok
	asleep := now.Before(s.sleepUntil)
	if asleep || errs >= t.cfg.MinErrors && errs > oks {
		// Every further error while asleep pushes the wake-up out:
		// sending resumes after Resume without errors.
		s.sleepUntil = now.Add(t.cfg.Resume)
		return !asleep
	}
	return false
}

// rotate moves to a new bucket every half window.
func (s *hostState) rotate(now time.Time, half time.Duration) {
	el := now.Sub(s.start)
	if el < half {
		return
	}
	if el >= 2*half {
		s.prev = tally{}
	} else {
		s.prev = s.cur
	}
	s.cur = tally{}
	s.start = now
}

// share reports whether the other processes should be told that host
// sleeps, and until when: when it sleeps and they were not told in the
// last Resume/2 (so a host erroring on while asleep costs a message per
// Resume/2, not one per error).
func (t *throttle) share(host string, now time.Time) (until time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.hosts[host]
	if s == nil || !now.Before(s.sleepUntil) || now.Sub(s.sharedAt) < t.cfg.Resume/2 {
		return time.Time{}, false
	}
	s.sharedAt = now
	return s.sleepUntil, true
}

// sleepUntil puts host to sleep until until, as another process decided;
// a later wake-up this process decided is kept.
func (t *throttle) sleepUntil(host string, until, now time.Time) {
	if !now.Before(until) || until.Sub(now) > 10*t.cfg.Resume {
		return // expired, or not a throttle this configuration would set
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.hosts[host]
	if s == nil {
		s = &hostState{start: now, seen: now}
		t.hosts[host] = s
	}
	if until.After(s.sleepUntil) {
		s.sleepUntil = until
		s.sharedAt = now // heard from another process: no need to repeat it
	}
}

// sweep forgets hosts that are awake and had no outcome for a window.
func (t *throttle) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, s := range t.hosts {
		if now.Sub(s.seen) > t.cfg.Window && !now.Before(s.sleepUntil) {
			delete(t.hosts, h)
		}
	}
}

// sleeping lists the hosts asleep at now.
func (t *throttle) sleeping(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for h, s := range t.hosts {
		if now.Before(s.sleepUntil) {
			out = append(out, h)
		}
	}
	return out
}

// skipDelay returns the delay after the skip that brings a job to skips
// skips, and false when such a job is to be dropped instead.
func (t *throttle) skipDelay(skips int) (time.Duration, bool) {
	if skips < 1 || skips > len(t.cfg.SkipDelays) {
		return 0, false
	}
	return t.cfg.SkipDelays[skips-1], true
}
