package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestLimiterWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(2, time.Minute, 100)
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
		ok, retry := l.allow(tt.key, t0.Add(tt.at))
		if ok != tt.ok || retry != tt.wantRetry {
			t.Errorf("%d: allow(%s, +%v) = %v, %v; want %v, %v", i, tt.key, tt.at, ok, retry, tt.ok, tt.wantRetry)
		}
	}
	var disabled *limiter = newLimiter(-1, time.Minute, 10)
	if ok, _ := disabled.allow("x", t0); !ok || disabled != nil {
		t.Error("a negative limit must disable the limiter")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(5, time.Minute, 100)
	for i := 0; i < 1000; i++ {
		l.allow(fmt.Sprint("key", i), t0)
		if n := l.size(); n > 100 {
			t.Fatalf("%d keys tracked, limit 100", n)
		}
	}
	// Once the window passes, old keys are swept.
	l.allow("late", t0.Add(2*time.Minute))
	if n := l.size(); n != 1 {
		t.Errorf("%d keys after the sweep, want 1", n)
	}
}

func TestLockout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLockout(3, 10*time.Minute, 100)
	l.fail("ip", t0)
	l.fail("ip", t0)
	if locked, _ := l.locked("ip", t0); locked {
		t.Fatal("locked after 2 failures")
	}
	l.fail("ip", t0)
	if locked, retry := l.locked("ip", t0.Add(time.Minute)); !locked || retry != 9*time.Minute {
		t.Fatalf("locked = %v, %v; want true, 9m", locked, retry)
	}
	// A success during the lockout does not lift it.
	l.succeed("ip", t0.Add(time.Minute))
	if locked, _ := l.locked("ip", t0.Add(2*time.Minute)); !locked {
		t.Error("success lifted the lockout")
	}
	if locked, _ := l.locked("ip", t0.Add(10*time.Minute)); locked {
		t.Error("still locked after the lockout")
	}
	// Old failures are forgotten.
	l.fail("slow", t0)
	l.fail("slow", t0.Add(time.Minute))
	l.fail("slow", t0.Add(20*time.Minute))
	if locked, _ := l.locked("slow", t0.Add(20*time.Minute)); locked {
		t.Error("failures spread over the lockout period locked the key")
	}
	// Memory stays bounded.
	for i := 0; i < 1000; i++ {
		l.fail(fmt.Sprint("k", i), t0)
	}
	if n := len(l.strikes); n > 100 {
		t.Errorf("%d keys tracked, limit 100", n)
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"192.0.2.1:1234", "", false, "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.9", false, "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.9, 10.0.0.1", true, "203.0.113.9"},
		{"192.0.2.1:1234", " 203.0.113.9 ", true, "203.0.113.9"},
		{"192.0.2.1:1234", "garbage", true, "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", false, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.5]:80", "", false, "192.0.2.5"},
		{"[fe80::1%eth0]:80", "", false, "fe80::/64"},
		{"pipe", "", false, "pipe"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := clientIP(r, tt.trust); got != tt.want {
			t.Errorf("clientIP(%q, %q, %v) = %q, want %q", tt.remote, tt.xff, tt.trust, got, tt.want)
		}
	}
}
