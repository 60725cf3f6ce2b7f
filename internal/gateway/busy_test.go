package gateway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// TestBusyDevice: a device that stops answering calls ends up with
// protocol.MaxOutstandingTokens calls in flight. Further calls are refused
// at once with ErrBusy (the API's 429), locally and through the bus, and
// are not counted as failures; pings still reach it (they hold no token)
// and the device stays online (docs/security.md, "Busy devices").
func TestBusyDevice(t *testing.T) {
	cfg := testConfig()
	cfg.CallTimeout = 10 * time.Second
	w := newWorld(t, cfg)
	_, id := simDevice(t, w, 60)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range protocol.MaxOutstandingTokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.g.CallFunction(ctx, id, "slow", "")
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "calls in flight", func() bool {
		s := w.g.lookup(id)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tokens.Outstanding() == protocol.MaxOutstandingTokens
	})
	failed := w.g.Stats().CallsFailed

	start := time.Now()
	_, err := w.g.CallFunction(context.Background(), id, "led", "on")
	if !errors.Is(err, ErrBusy) || !errors.Is(err, bus.ErrDeviceBusy) {
		t.Fatalf("call to a busy device: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	if _, err := w.g.GetVariable(context.Background(), id, "temp"); !errors.Is(err, ErrBusy) {
		t.Errorf("variable of a busy device: %v, want ErrBusy", err)
	}
	// Through the bus, as another process's API would call.
	r, err := w.g.remote(context.Background(), id, bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "on"})
	if !errors.Is(err, ErrBusy) || r.Status != 429 {
		t.Errorf("remote call to a busy device: %+v, %v; want status 429, ErrBusy", r, err)
	}
	if err := w.g.Ping(context.Background(), id); err != nil {
		t.Errorf("ping of a busy device: %v", err)
	}
	if !w.g.Online(id) || !w.device(deviceID(60)).Online {
		t.Error("busy device went offline")
	}
	st := w.g.Stats()
	if st.CallsBusy < 3 || st.CallsFailed != failed {
		t.Errorf("CallsBusy %d, CallsFailed %d → %d; want >= 3 busy, no new failures", st.CallsBusy, failed, st.CallsFailed)
	}

	// Once the calls end, the device takes calls again.
	cancel()
	wg.Wait()
	if v, err := w.g.CallFunction(context.Background(), id, "led", "on"); err != nil || v != 1 {
		t.Errorf("call after the busy spell: %d, %v", v, err)
	}
}

// TestPendingPingsBounded: pings hold no token, but a session keeps at
// most maxPendingPings of them waiting.
func TestPendingPingsBounded(t *testing.T) {
	w := newWorld(t, testConfig())
	_, id := simDevice(t, w, 61)
	s := w.g.lookup(id)
	s.mu.Lock()
	s.pings = maxPendingPings
	s.mu.Unlock()
	if err := w.g.Ping(context.Background(), id); !errors.Is(err, ErrBusy) {
		t.Errorf("ping beyond the limit: %v, want ErrBusy", err)
	}
	s.mu.Lock()
	s.pings = 0
	s.mu.Unlock()
	if err := w.g.Ping(context.Background(), id); err != nil {
		t.Errorf("ping: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pings != 0 || s.tokens.Outstanding() != 0 {
		t.Errorf("after a ping: %d pings, %d tokens outstanding", s.pings, s.tokens.Outstanding())
	}
}
