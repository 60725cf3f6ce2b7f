package webhook

import (
	"testing"
	"time"
)

// TestThrottleRules drives the per-host throttle with a fake clock.
func TestThrottleRules(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at    time.Duration
		host  string
		ok    bool   // outcome to record (when !check)
		check bool   // only check allow
		allow bool   // expected allow (check steps)
		fell  bool   // expected fellAsleep (record steps)
		note  string // what the step shows
	}
	cfg := ThrottleConfig{Window: time.Minute, MinErrors: 3, Resume: 5 * time.Second}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"errors below MinErrors never sleep", []step{
			{at: 0, host: "a"}, {at: 1, host: "a"},
			{at: 2, host: "a", check: true, allow: true},
		}},
		{"MinErrors errors with no success sleep, then resume after Resume", []step{
			{at: 0, host: "a"}, {at: 1, host: "a"}, {at: 2, host: "a", fell: true},
			{at: 3, host: "a", check: true, allow: false, note: "asleep"},
			{at: 2 + 5*time.Second - 1, host: "a", check: true, allow: false, note: "just before Resume"},
			{at: 2 + 5*time.Second, host: "a", check: true, allow: true, note: "Resume after the last error"},
			{at: 3, host: "b", check: true, allow: true, note: "other hosts unaffected"},
		}},
		{"successes outnumbering errors keep the host awake", []step{
			{at: 0, host: "a", ok: true}, {at: 1, host: "a", ok: true}, {at: 2, host: "a", ok: true}, {at: 3, host: "a", ok: true},
			{at: 4, host: "a"}, {at: 5, host: "a"}, {at: 6, host: "a"},
			{at: 7, host: "a", check: true, allow: true, note: "3 errors, 4 successes"},
			{at: 8, host: "a"}, {at: 9, host: "a", fell: true, note: "5 errors > 4 successes"},
			{at: 10, host: "a", check: true, allow: false},
		}},
		{"an error while asleep pushes the wake-up out", []step{
			{at: 0, host: "a"}, {at: 1, host: "a"}, {at: 2, host: "a", fell: true},
			{at: 4 * time.Second, host: "a", note: "in-flight request fails"},
			{at: 2 + 5*time.Second, host: "a", check: true, allow: false},
			{at: 9 * time.Second, host: "a", check: true, allow: true},
		}},
		{"after waking, one more error sleeps again while errors still outnumber", []step{
			{at: 0, host: "a"}, {at: 1, host: "a"}, {at: 2, host: "a", fell: true},
			{at: 6 * time.Second, host: "a", check: true, allow: true},
			{at: 6 * time.Second, host: "a", fell: true},
			{at: 7 * time.Second, host: "a", check: true, allow: false},
		}},
		{"old errors age out of the window", []step{
			{at: 0, host: "a"}, {at: 1, host: "a"},
			{at: 61 * time.Second, host: "a", note: "previous bucket gone"},
			{at: 62 * time.Second, host: "a", check: true, allow: true},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := newThrottle(cfg)
			for i, s := range c.steps {
				if s.check {
					if got := th.allow(s.host, at(s.at)); got != s.allow {
						t.Errorf("step %d (%s): allow(%s) = %v; want %v", i, s.note, s.host, got, s.allow)
					}
					continue
				}
				if fell := th.record(s.host, s.ok, at(s.at)); fell != s.fell {
					t.Errorf("step %d (%s): record(%s, ok=%v) fellAsleep = %v; want %v", i, s.note, s.host, s.ok, fell, s.fell)
				}
			}
		})
	}
}

func TestThrottleSkipDelays(t *testing.T) {
	th := newThrottle(ThrottleConfig{})
	for _, c := range []struct {
		skips int
		d     time.Duration
		ok    bool
	}{{1, 30 * time.Second, true}, {2, time.Minute, true}, {3, 0, false}, {0, 0, false}} {
		if d, ok := th.skipDelay(c.skips); d != c.d || ok != c.ok {
			t.Errorf("skipDelay(%d) = %v, %v; want %v, %v", c.skips, d, ok, c.d, c.ok)
		}
	}
}

func TestThrottleSweep(t *testing.T) {
	t0 := time.Now()
	th := newThrottle(ThrottleConfig{MinErrors: 1, Resume: time.Hour})
	th.record("awake", true, t0)
	th.record("asleep", false, t0)
	th.sweep(t0.Add(2 * time.Minute))
	if _, ok := th.hosts["awake"]; ok {
		t.Error("idle awake host kept")
	}
	if _, ok := th.hosts["asleep"]; !ok {
		t.Error("sleeping host forgotten")
	}
	if s := th.sleeping(t0.Add(time.Minute)); len(s) != 1 || s[0] != "asleep" {
		t.Errorf("sleeping = %v", s)
	}
}
