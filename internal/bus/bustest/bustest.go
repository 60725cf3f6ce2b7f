// Package bustest holds test helpers for code that uses the event bus: an
// embedded bus closed with the test, and helpers that await events.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// New opens an embedded bus (without JetStream unless cfg.JetStreamDir is
// set) and closes it when the test ends.
func New(t testing.TB, cfg bus.Config) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("bustest: open bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bustest: close bus: %v", err)
		}
	})
	return b
}

// Subscribe subscribes with a buffer of buf and closes the subscription
// when the test ends.
func Subscribe(t testing.TB, b *bus.Bus, f bus.Filter, buf int, opts ...bus.SubscribeOption) *bus.Subscription {
	t.Helper()
	s, err := b.Subscribe(f, buf, opts...)
	if err != nil {
		t.Fatalf("bustest: subscribe %+v: %v", f, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Collect reads n events from s, failing the test if they do not arrive
// within timeout.
func Collect(t testing.TB, s *bus.Subscription, n int, timeout time.Duration) []bus.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make([]bus.Event, 0, n)
	for len(out) < n {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("bustest: got %d of %d events: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// Until reads events from s until one satisfies stop, returning every event
// read before it (not the stopping one). It fails the test after timeout.
func Until(t testing.TB, s *bus.Subscription, timeout time.Duration, stop func(bus.Event) bool) []bus.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []bus.Event
	for {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("bustest: stop event not seen after %d events: %v", len(out), err)
		}
		if stop(e) {
			return out
		}
		out = append(out, e)
	}
}

// ExpectNone fails the test if s delivers an event within d.
func ExpectNone(t testing.TB, s *bus.Subscription, d time.Duration) {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if ok {
			t.Fatalf("bustest: unexpected event %q (id %d)", e.Name, e.ID)
		}
	case <-time.After(d):
	}
}
