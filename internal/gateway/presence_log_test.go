package gateway

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recordHandler keeps the records it is given, at every level.
type recordHandler struct {
	mu  sync.Mutex
	got []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
	return nil
}

// count returns the records at level whose message is msg.
func (h *recordHandler) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.got {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// attr returns attribute key of the last record whose message is msg.
func (h *recordHandler) attr(msg, key string) slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v slog.Value
	for _, r := range h.got {
		if r.Message == msg {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == key {
					v = a.Value
				}
				return true
			})
		}
	}
	return v
}

func TestPresenceLogAllow(t *testing.T) {
	var p presenceLog
	t0 := time.Unix(1000, 0)
	tests := []struct {
		at   time.Time
		n    int
		want int // allowed of n
	}{
		{t0, presenceLogBurst + 5, presenceLogBurst},
		{t0.Add(500 * time.Millisecond), 3, 0}, // same second: the burst is spent
		{t0.Add(time.Second), 3, 3},            // a new second
		{t0.Add(3 * time.Second), presenceLogBurst * 2, presenceLogBurst},
	}
	for i, tc := range tests {
		got := 0
		for range tc.n {
			if p.allow(tc.at) {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("step %d: %d of %d allowed, want %d", i, got, tc.n, tc.want)
		}
	}
}

func TestPresenceLogSummary(t *testing.T) {
	h := &recordHandler{}
	p := presenceLog{log: slog.New(h)}
	const online, offline = 300, 7
	for range online {
		p.note(presenceOnline, "gateway: device online", "device", "x")
	}
	for range offline {
		p.note(presenceOffline, "gateway: device offline", "device", "x")
	}
	info := h.count(slog.LevelInfo, "gateway: device online") + h.count(slog.LevelInfo, "gateway: device offline")
	debug := h.count(slog.LevelDebug, "gateway: device online") + h.count(slog.LevelDebug, "gateway: device offline")
	// The lines may span a change of second: at most two bursts at info.
	if info < presenceLogBurst || info > 2*presenceLogBurst || info+debug != online+offline {
		t.Fatalf("%d info and %d debug lines for %d devices; want %d–%d at info, the rest at debug",
			info, debug, online+offline, presenceLogBurst, 2*presenceLogBurst)
	}
	p.summary(presenceLogEvery)
	const msg = "gateway: devices online and offline"
	if h.count(slog.LevelInfo, msg) != 1 {
		t.Fatal("no summary after lines logged at debug only")
	}
	if got := h.attr(msg, "online").Int64(); got != online {
		t.Fatalf("summary online = %d, want %d", got, online)
	}
	if got := h.attr(msg, "offline").Int64(); got != offline {
		t.Fatalf("summary offline = %d, want %d", got, offline)
	}
	if got := h.attr(msg, "debug_only").Int64(); got != int64(debug) {
		t.Fatalf("summary debug_only = %d, want %d", got, debug)
	}
	// A period whose lines were all logged at info has no summary.
	h2 := &recordHandler{}
	p2 := presenceLog{log: slog.New(h2)}
	p2.note(presenceOnline, "gateway: device online", "device", "y")
	p2.summary(presenceLogEvery)
	if h2.count(slog.LevelInfo, msg) != 0 {
		t.Fatal("summary of a period with nothing at debug only")
	}
}
