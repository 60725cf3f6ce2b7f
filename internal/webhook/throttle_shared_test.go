package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/netguard"
)

// TestThrottleShareRules: a sleeping host is shared once per Resume/2, a
// shared sleep extends but never shortens this process's, and notes that
// are expired or beyond what this configuration would set are ignored.
func TestThrottleShareRules(t *testing.T) {
	cfg := ThrottleConfig{MinErrors: 2, Resume: 10 * time.Second}
	th := newThrottle(cfg)
	t0 := time.Unix(1_800_000_000, 0)
	if _, ok := th.share("h", t0); ok {
		t.Fatal("shared an unknown host")
	}
	th.record("h", false, t0)
	th.record("h", false, t0)
	until, ok := th.share("h", t0)
	if !ok || !until.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("share after falling asleep = %v %v", until, ok)
	}
	th.record("h", false, t0.Add(time.Second))
	if _, ok := th.share("h", t0.Add(time.Second)); ok {
		t.Error("shared again within Resume/2")
	}
	if _, ok := th.share("h", t0.Add(6*time.Second)); !ok {
		t.Error("not shared again after Resume/2")
	}

	other := newThrottle(cfg)
	other.sleepUntil("h", t0.Add(5*time.Second), t0)
	if other.allow("h", t0.Add(4*time.Second)) || !other.allow("h", t0.Add(5*time.Second)) {
		t.Error("shared sleep not applied as given")
	}
	other.sleepUntil("h", t0.Add(2*time.Second), t0) // earlier: kept the later one
	if other.allow("h", t0.Add(4*time.Second)) {
		t.Error("a shared note shortened the sleep")
	}
	other.sleepUntil("x", t0.Add(-time.Second), t0)
	other.sleepUntil("y", t0.Add(time.Hour), t0)
	if !other.allow("x", t0) || !other.allow("y", t0) {
		t.Error("an expired or out-of-range note put a host to sleep")
	}
	if _, ok := other.share("h", t0.Add(time.Second)); ok {
		t.Error("re-shared a sleep heard from another process")
	}
}

// TestThrottleSharedBetweenEngines: two engines on one bus (two servers);
// a host one of them puts to sleep sleeps for the other too.
func TestThrottleSharedBetweenEngines(t *testing.T) {
	cfg := testConfig()
	cfg.Throttle = ThrottleConfig{MinErrors: 3, Resume: 30 * time.Second}
	h := newHarness(t, cfg, harnessOpts{ring: true})
	e2, err := New(cfg, Deps{Store: newMemStore(), Bus: h.bus, Outbound: netguard.Policy{AllowPrivate: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e2.Stop(ctx)
	}()
	now := time.Now()
	for range 3 {
		h.eng.thr.record("down.example.com", false, now)
		h.eng.shareSleep("down.example.com")
	}
	if h.eng.thr.allow("down.example.com", now) {
		t.Fatal("the host did not fall asleep on the first engine")
	}
	deadline := time.Now().Add(5 * time.Second)
	for e2.thr.allow("down.example.com", time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("the second engine never heard that the host sleeps")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !e2.thr.allow("up.example.com", time.Now()) {
		t.Error("another host sleeps on the second engine")
	}
}
