package netguard

import (
	"errors"
	"net/netip"
)

// ErrForbidden is wrapped by every error that refuses a destination: an
// address, a host name or a redirect target that policy does not allow.
var ErrForbidden = errors.New("netguard: destination forbidden")

// ErrInvalidURL is wrapped by every error about a URL's shape: it does
// not parse, has the wrong scheme, no host, user info or a bad port.
var ErrInvalidURL = errors.New("netguard: invalid URL")

// guardError carries a readable message ("netguard: address 10.0.0.1 is
// private") and unwraps to one of the sentinels.
type guardError struct {
	msg  string
	kind error
}

func (e *guardError) Error() string { return "netguard: " + e.msg }
func (e *guardError) Unwrap() error { return e.kind }

func forbidden(msg string) error { return &guardError{msg: msg, kind: ErrForbidden} }
func invalid(msg string) error   { return &guardError{msg: msg, kind: ErrInvalidURL} }

// Policy says which destinations outbound requests may reach. The zero
// value is strict.
type Policy struct {
	// AllowPrivate permits loopback, private (RFC 1918, ULA), carrier-grade
	// NAT and the other non-global special-purpose ranges. It never
	// permits link-local, cloud-metadata, unspecified, multicast or
	// broadcast addresses.
	AllowPrivate bool
}

// Kinds of address refused whatever the policy.
const (
	kindMetadata    = "a cloud metadata service"
	kindUnspecified = "unspecified"
	kindLinkLocal   = "link-local"
	kindMulticast   = "multicast"
	kindBroadcast   = "broadcast"
)

// Kinds of address refused unless Policy.AllowPrivate.
const (
	kindLoopback      = "loopback"
	kindPrivate       = "private"
	kindCGNAT         = "carrier-grade NAT"
	kindBenchmarking  = "benchmarking"
	kindDocumentation = "documentation"
	kindReserved      = "reserved"
)

// metadataAddrs are cloud instance-metadata endpoints outside the
// link-local range (which is refused as a whole anyway).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud (inside 100.64/10)
	netip.MustParseAddr("168.63.129.16"),   // Azure WireServer (a public-looking address)
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud (legacy)
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6 (inside ULA)
	netip.MustParseAddr("fd20:ce::254"),    // GCP metadata over IPv6 (inside ULA)
}

// rangeKind names a special-purpose range from the IANA IPv4 and IPv6
// special-purpose address registries that is not globally reachable.
type rangeKind struct {
	prefix netip.Prefix
	kind   string
}

// privateRanges are refused unless Policy.AllowPrivate. Loopback, and
// IPv6 outside 2000::/3, are checked separately.
var privateRanges = []rangeKind{
	{netip.MustParsePrefix("0.0.0.0/8"), kindReserved}, // "this network"
	{netip.MustParsePrefix("10.0.0.0/8"), kindPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), kindCGNAT},
	{netip.MustParsePrefix("172.16.0.0/12"), kindPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), kindReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), kindDocumentation},
	{netip.MustParsePrefix("192.88.99.0/24"), kindReserved}, // 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), kindPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), kindBenchmarking},
	{netip.MustParsePrefix("198.51.100.0/24"), kindDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), kindDocumentation},
	{netip.MustParsePrefix("240.0.0.0/4"), kindReserved},
	{netip.MustParsePrefix("64:ff9b:1::/48"), kindPrivate}, // local-use NAT64
	{netip.MustParsePrefix("100::/64"), kindReserved},      // discard-only
	{netip.MustParsePrefix("2001:2::/48"), kindBenchmarking},
	{netip.MustParsePrefix("2001:10::/28"), kindReserved}, // ORCHID
	{netip.MustParsePrefix("2001:20::/28"), kindReserved}, // ORCHIDv2
	{netip.MustParsePrefix("2001:db8::/32"), kindDocumentation},
	{netip.MustParsePrefix("3fff::/20"), kindDocumentation},
	{netip.MustParsePrefix("5f00::/16"), kindReserved}, // SRv6 SIDs
	{netip.MustParsePrefix("fc00::/7"), kindPrivate},   // unique local
	{netip.MustParsePrefix("fec0::/10"), kindReserved}, // site-local, deprecated
}

var (
	broadcast = netip.MustParseAddr("255.255.255.255")
	globalV6  = netip.MustParsePrefix("2000::/3")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
	v4Compat  = netip.MustParsePrefix("::/96")
)

// CheckAddr refuses addresses outbound requests must not reach. Always
// refused: the invalid zero Addr, unspecified, link-local, multicast,
// broadcast and known cloud-metadata addresses. Refused unless
// AllowPrivate: loopback, RFC 1918, carrier-grade NAT, unique-local and
// the other non-global special-purpose ranges, and any IPv6 address
// outside 2000::/3. IPv4 addresses embedded in IPv6 (mapped, compatible,
// NAT64, 6to4, Teredo) are unwrapped and checked too. The error wraps
// ErrForbidden.
func (p Policy) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return forbidden("invalid address")
	}
	ip = ip.WithZone("")
	kind, always := classify(ip)
	if kind == "" {
		for _, inner := range embedded(ip) {
			if k, a := classify(inner); k != "" && (a || !p.AllowPrivate) {
				return forbidden("address " + ip.String() + " is " + k + " (embeds " + inner.String() + ")")
			}
		}
		return nil
	}
	if always || !p.AllowPrivate {
		return forbidden("address " + ip.String() + " is " + kind)
	}
	return nil
}

// classify returns the kind of a special address ("" for a global one)
// and whether it is refused whatever the policy. IPv4-mapped addresses
// are classified by the IPv4 address they carry.
func classify(ip netip.Addr) (kind string, always bool) {
	ip = ip.Unmap()
	for _, m := range metadataAddrs {
		if ip == m {
			return kindMetadata, true
		}
	}
	switch {
	case ip.IsUnspecified():
		return kindUnspecified, true
	case ip.IsLinkLocalUnicast():
		return kindLinkLocal, true
	case ip.IsMulticast():
		return kindMulticast, true
	case ip == broadcast:
		return kindBroadcast, true
	case ip.IsLoopback():
		return kindLoopback, false
	}
	for _, r := range privateRanges {
		if r.prefix.Contains(ip) {
			return r.kind, false
		}
	}
	if ip.Is6() && !globalV6.Contains(ip) && len(embedded(ip)) == 0 {
		return kindReserved, false
	}
	return "", false
}

// embedded returns the IPv4 addresses an IPv6 address carries in the
// NAT64 (64:ff9b::/96), 6to4 (2002::/16), Teredo (2001::/32: server and
// obfuscated client) and deprecated IPv4-compatible (::/96) forms.
// Mapped addresses (::ffff:0:0/96) are handled by classify itself.
func embedded(ip netip.Addr) []netip.Addr {
	if !ip.Is6() || ip.Is4In6() {
		return nil
	}
	b := ip.As16()
	v4 := func(s []byte) netip.Addr { return netip.AddrFrom4([4]byte{s[0], s[1], s[2], s[3]}) }
	switch {
	case nat64.Contains(ip), v4Compat.Contains(ip):
		return []netip.Addr{v4(b[12:16])}
	case sixToFour.Contains(ip):
		return []netip.Addr{v4(b[2:6])}
	case teredo.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(b[4:8]), netip.AddrFrom4(client)}
	}
	return nil
}
