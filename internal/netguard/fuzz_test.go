package netguard

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckURL checks that CheckURL never panics and keeps its
// invariants: whatever the strict policy accepts, AllowPrivate accepts;
// an accepted URL without templates parses with an http(s) scheme and a
// host, and a literal IP host in it passes CheckAddr.
func FuzzCheckURL(f *testing.F) {
	for _, tc := range urlCases {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		strict := Policy{}.CheckURL(raw)
		loose := Policy{AllowPrivate: true}.CheckURL(raw)
		if strict == nil && loose != nil {
			t.Fatalf("%q: strict accepts, AllowPrivate refuses: %v", raw, loose)
		}
		if loose != nil || strings.Contains(raw, "{{") {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("%q accepted with scheme %q, host %q, user %v", raw, u.Scheme, u.Hostname(), u.User)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if err := (Policy{AllowPrivate: true}).CheckAddr(ip); err != nil {
				t.Fatalf("%q accepted but its address is refused: %v", raw, err)
			}
			if strict == nil {
				if err := (Policy{}).CheckAddr(ip); err != nil {
					t.Fatalf("%q accepted strictly but its address is refused: %v", raw, err)
				}
			}
		}
	})
}

// FuzzCheckAddr checks that CheckAddr never panics on any 16 bytes, read
// as IPv6 and, for the last four, as IPv4, and that strict is stricter.
func FuzzCheckAddr(f *testing.F) {
	for _, tc := range addrCases {
		b := netip.MustParseAddr(tc.addr).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		for _, ip := range []netip.Addr{netip.AddrFrom16([16]byte(b)), netip.AddrFrom4([4]byte(b[12:]))} {
			if (Policy{}).CheckAddr(ip) == nil && (Policy{AllowPrivate: true}).CheckAddr(ip) != nil {
				t.Fatalf("%s: strict accepts, AllowPrivate refuses", ip)
			}
		}
	})
}
