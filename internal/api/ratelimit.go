package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
)

// limiter allows limit events per fixed window per key (ratelimit.Window:
// sharded, memory bounded by maxKeys, a new key evicts the least recently
// used one in constant time; or ratelimit.SharedWindow, the same counted
// across a cluster). A nil *limiter allows everything.
type limiter struct{ w windowLimit }

// windowLimit is what ratelimit.Window and ratelimit.SharedWindow share.
type windowLimit interface {
	Allow(key string, now time.Time) (ok bool, retry time.Duration)
	Len() int
}

// newLimiter returns a limiter, or nil (no limit) when limit is negative.
func newLimiter(limit int, window time.Duration, maxKeys int) *limiter {
	w := ratelimit.NewWindow(limit, window, maxKeys)
	if w == nil {
		return nil
	}
	return &limiter{w: w}
}

// newClusterLimiter returns a limiter whose counts add up across the
// servers sharing rates under name (docs/scaling.md, Limits), or this
// server's own limiter (newLimiter) when rates is nil; nil (no limit) when
// limit is negative.
func newClusterLimiter(rates *ratelimit.Shared, name string, limit int, window time.Duration, maxKeys int) *limiter {
	if rates == nil {
		return newLimiter(limit, window, maxKeys)
	}
	w := rates.Window(name, limit, window, maxKeys)
	if w == nil {
		return nil
	}
	return &limiter{w: w}
}

// allow counts one event for key at now and reports whether it is within
// the limit; if not, retry is how long until the window resets.
func (l *limiter) allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.w.Allow(key, now)
}

// size reports how many keys are tracked (for tests).
func (l *limiter) size() int {
	if l == nil {
		return 0
	}
	return l.w.Len()
}

// DefaultTrustedProxies are the proxy addresses trusted when
// Config.TrustProxy is set without Config.TrustedProxies: loopback and
// private (RFC 1918, RFC 4193) ranges.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
}

// proxySet is the set of proxy addresses whose X-Forwarded-For additions
// are believed. An empty set trusts nothing.
type proxySet []netip.Prefix

// contains reports whether addr is a trusted proxy.
func (ps proxySet) contains(addr netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientIP returns the rate-limit key of a request's client: its IP
// address, IPv6 addresses reduced to their /64.
//
// The connection's peer is the client unless it is a trusted proxy. Then
// X-Forwarded-For (every such header, in order) is read from the right,
// skipping addresses of trusted proxies: the first untrusted address is
// the client, because only the hops our own proxies appended can be
// believed; anything to its left was written by the client. When every
// hop is trusted the leftmost is used; a malformed hop ends the walk at
// the last good address (docs/security.md, Behind a proxy). A peer that is
// not an IP address gets the key "peer:" + its address.
func clientIP(r *http.Request, proxies proxySet) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		// Not an IP connection (tests, unix sockets): one shared key, never
		// empty, because an empty address is not counted by auth.
		return "peer:" + host
	}
	peer = peer.Unmap().WithZone("")
	client := peer
	if len(proxies) > 0 && proxies.contains(peer) {
		hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
		for i := len(hops) - 1; i >= 0; i-- {
			addr, err := netip.ParseAddr(hops[i])
			if err != nil {
				break
			}
			client = addr.Unmap().WithZone("")
			if !proxies.contains(client) {
				break
			}
		}
	}
	return ipKey(client)
}

// forwardedHops splits X-Forwarded-For header values into trimmed hops,
// leftmost first.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	return hops
}

// ipKey is the limiter key of an address: IPv4 as is, IPv6 by its /64 (one
// subscriber usually holds a whole /64).
func ipKey(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
