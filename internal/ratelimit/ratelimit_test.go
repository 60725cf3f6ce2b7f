package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewWindow(2, time.Minute, 100)
	tests := []struct {
		at        time.Duration
		key       string
		ok        bool
		wantRetry time.Duration
	}{
		{0, "a", true, 0},
		{time.Second, "a", true, 0},
		{2 * time.Second, "a", false, 58 * time.Second},
		{2 * time.Second, "b", true, 0},
		{59 * time.Second, "a", false, time.Second},
		{time.Minute, "a", true, 0}, // a new window
		{time.Minute, "a", true, 0},
		{time.Minute, "a", false, time.Minute},
	}
	for i, tt := range tests {
		ok, retry := w.Allow(tt.key, t0.Add(tt.at))
		if ok != tt.ok || retry != tt.wantRetry {
			t.Errorf("%d: Allow(%s, +%v) = %v, %v; want %v, %v", i, tt.key, tt.at, ok, retry, tt.ok, tt.wantRetry)
		}
	}
	if NewWindow(-1, time.Minute, 10) != nil {
		t.Error("a negative limit must disable the limiter")
	}
	var disabled *Window
	if ok, _ := disabled.Allow("x", t0); !ok || disabled.Len() != 0 {
		t.Error("a nil Window must allow everything")
	}
}

func TestWindowBoundedMemory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct{ maxKeys, want int }{
		{100, 128}, // rounded up to whole shards of 2
		{shardCount * 10, shardCount * 10},
		{1, shardCount},
	}
	for _, tt := range tests {
		w := NewWindow(5, time.Minute, tt.maxKeys)
		for i := range 20 * tt.want {
			w.Allow("key"+strconv.Itoa(i), t0)
		}
		if n := w.Len(); n > tt.want {
			t.Errorf("maxKeys %d: %d keys tracked, want at most %d", tt.maxKeys, n, tt.want)
		}
	}
}

func TestWindowEvictsLeastRecentlyUsed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewWindow(1, time.Minute, shardCount) // one key per shard
	w.Allow("busy", t0)
	// Find a key sharing busy's shard and touch it: busy is evicted and
	// may start afresh, which is the only effect eviction ever has.
	other := ""
	for i := 0; other == ""; i++ {
		k := "k" + strconv.Itoa(i)
		if w.t.shard(k) == w.t.shard("busy") {
			other = k
		}
	}
	if ok, _ := w.Allow("busy", t0); ok {
		t.Fatal("second event of busy allowed")
	}
	w.Allow(other, t0)
	if ok, _ := w.Allow("busy", t0); !ok {
		t.Error("busy was not evicted by a newer key of its shard")
	}
}

func TestLockout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := NewLockout(3, 10*time.Minute, 100)
	steps := []struct {
		at         time.Duration
		op         string // fail, reset, check
		key        string
		wantLocked bool
	}{
		{0, "fail", "ip", false},
		{0, "fail", "ip", false},
		{0, "check", "ip", false},
		{0, "fail", "ip", true},
		{time.Minute, "check", "ip", true},
		{10 * time.Minute, "check", "ip", false},
		// Failures older than the period are forgotten.
		{0, "fail", "slow", false},
		{time.Minute, "fail", "slow", false},
		{20 * time.Minute, "fail", "slow", false},
		{20 * time.Minute, "check", "slow", false},
		// Reset lifts a lockout.
		{0, "fail", "r", false},
		{0, "fail", "r", false},
		{0, "fail", "r", true},
		{0, "reset", "r", false},
		{0, "check", "r", false},
		{0, "fail", "r", false},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		var got bool
		switch s.op {
		case "fail":
			got = l.Fail(s.key, now)
		case "reset":
			l.Reset(s.key)
		case "check":
			got, _ = l.Locked(s.key, now)
		}
		if got != s.wantLocked {
			t.Errorf("%d: %s %s at +%v: locked %v, want %v", i, s.op, s.key, s.at, got, s.wantLocked)
		}
	}
	if _, retry := l.Locked("ip", t0.Add(time.Minute)); retry != 9*time.Minute {
		t.Errorf("retry = %v, want 9m", retry)
	}
	var disabled *Lockout = NewLockout(0, time.Minute, 10)
	if disabled.Fail("x", t0) || disabled != nil {
		t.Error("max 0 must disable the lockout")
	}
}

func TestRecent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRecent(time.Hour, 100)
	r.Add("a", t0)
	tests := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", 59 * time.Minute, true},
		{"b", 0, false},
		{"a", time.Hour, false},
		{"a", 0, false}, // expired entries are dropped when seen
	}
	for _, tt := range tests {
		if got := r.Has(tt.key, t0.Add(tt.at)); got != tt.want {
			t.Errorf("Has(%s, +%v) = %v, want %v", tt.key, tt.at, got, tt.want)
		}
	}
}

// TestConcurrent exercises every shard from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewWindow(1000, time.Minute, 1000)
	l := NewLockout(5, time.Minute, 1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := strconv.Itoa((g*7919 + i) % 3000)
				w.Allow(k, t0)
				l.Fail(k, t0)
				l.Locked(k, t0)
				if i%10 == 0 {
					l.Reset(k)
				}
			}
		}()
	}
	wg.Wait()
	if w.Len() > 1024 || l.Len() > 1024 {
		t.Errorf("tracked %d and %d keys, bound about 1000", w.Len(), l.Len())
	}
}

func TestBuckets(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBuckets(2, time.Second, 100)
	steps := []struct {
		key   string
		at    time.Duration
		ok    bool
		retry time.Duration
	}{
		{"a", 0, true, 0},
		{"a", 0, true, 0},
		{"a", 0, false, time.Second},
		{"a", 500 * time.Millisecond, false, 500 * time.Millisecond},
		{"a", time.Second, true, 0},
		{"b", time.Second, true, 0},
		{"a", 5 * time.Second, true, 0}, // refilled to the burst, not beyond
		{"a", 5 * time.Second, true, 0},
		{"a", 5 * time.Second, false, time.Second},
	}
	for i, s := range steps {
		ok, retry := b.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || retry != s.retry {
			t.Errorf("step %d (%s at %v): %v %v, want %v %v", i, s.key, s.at, ok, retry, s.ok, s.retry)
		}
	}
	for i := range 1000 {
		b.Allow("k"+strconv.Itoa(i), t0)
	}
	if n := b.Len(); n > 128 {
		t.Errorf("%d keys tracked, want at most 128", n)
	}
	if NewBuckets(-1, time.Second, 1) != nil {
		t.Error("a negative burst must disable the limiter")
	}
	var disabled *Buckets
	if ok, _ := disabled.Allow("x", t0); !ok {
		t.Error("a nil Buckets must allow everything")
	}
}
