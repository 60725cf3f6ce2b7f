package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// TestLimiterDisabled: the window itself is tested in internal/ratelimit;
// here only the wrapper's nil limiter, which lets everything through.
func TestLimiterDisabled(t *testing.T) {
	var disabled *limiter = newLimiter(-1, time.Minute, 10)
	if ok, _ := disabled.allow("x", time.Unix(1000, 0)); !ok || disabled != nil {
		t.Error("a negative limit must disable the limiter")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(5, time.Minute, 128) // 64 shards of 2 keys
	for i := 0; i < 1000; i++ {
		l.allow(fmt.Sprint("key", i), t0)
		if n := l.size(); n > 128 {
			t.Fatalf("%d keys tracked, limit 128", n)
		}
	}
}

func TestClientIP(t *testing.T) {
	private := proxySet(DefaultTrustedProxies)
	explicit := proxySet{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		remote  string
		xff     []string
		proxies proxySet
		want    string
	}{
		{"192.0.2.1:1234", nil, nil, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"203.0.113.9"}, nil, "192.0.2.1"},
		// An untrusted peer's header is ignored.
		{"192.0.2.1:1234", []string{"203.0.113.9"}, private, "192.0.2.1"},
		// The rightmost address not of a trusted proxy is the client.
		{"10.0.0.1:1234", []string{"203.0.113.9"}, private, "203.0.113.9"},
		{"10.0.0.1:1234", []string{"6.6.6.6, 203.0.113.9"}, private, "203.0.113.9"},
		{"10.0.0.1:1234", []string{"6.6.6.6, 203.0.113.9, 10.0.0.2"}, private, "203.0.113.9"},
		{"10.0.0.1:1234", []string{"6.6.6.6", "203.0.113.9, 10.0.0.2"}, private, "203.0.113.9"},
		{"10.0.0.1:1234", []string{" 203.0.113.9 "}, private, "203.0.113.9"},
		// Every hop trusted: the leftmost.
		{"10.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, private, "10.0.0.3"},
		// A malformed hop ends the walk at the last good address.
		{"10.0.0.1:1234", []string{"garbage"}, private, "10.0.0.1"},
		{"10.0.0.1:1234", []string{"203.0.113.9, garbage, 10.0.0.2"}, private, "10.0.0.2"},
		{"10.0.0.1:1234", []string{"203.0.113.9, garbage"}, private, "10.0.0.1"},
		{"[::1]:80", []string{"2001:db8:1:2::7"}, private, "2001:db8:1:2::/64"},
		// Explicit proxies only.
		{"10.0.0.1:1234", []string{"203.0.113.9"}, explicit, "10.0.0.1"},
		{"198.51.100.4:1", []string{"203.0.113.9, 10.0.0.1"}, explicit, "10.0.0.1"},
		{"[2001:db8:ffff::1]:1", []string{"[::ffff:203.0.113.9]", "::ffff:203.0.113.9"}, explicit, "203.0.113.9"},
		{"[2001:db8:1:2:3:4:5:6]:443", nil, nil, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.5]:80", nil, nil, "192.0.2.5"},
		{"[fe80::1%eth0]:80", nil, nil, "fe80::/64"},
		{"pipe", nil, private, "peer:pipe"},
		{":", nil, private, "peer:"},
		{"", []string{"203.0.113.9"}, private, "peer:"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIP(r, tt.proxies); got != tt.want {
			t.Errorf("clientIP(%q, %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// FuzzClientIP: any header and peer give a key without panicking, and an
// untrusted peer's key never depends on the header.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "203.0.113.9, 10.0.0.2")
	f.Add("[::1]:1", "::1, ::1, garbage,,")
	f.Add("192.0.2.1:1", "1.2.3.4")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := clientIP(r, proxySet(DefaultTrustedProxies))
		if got == "" {
			t.Errorf("empty key for %q", remote)
		}
		bare := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if host, _, err := net.SplitHostPort(remote); err == nil {
			if a, err := netip.ParseAddr(host); err == nil && !proxySet(DefaultTrustedProxies).contains(a.Unmap().WithZone("")) {
				if want := clientIP(bare, nil); got != want {
					t.Errorf("untrusted peer %q: key %q depends on the header (want %q)", remote, got, want)
				}
			}
		}
	})
}
