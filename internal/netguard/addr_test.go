package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Verdicts of a policy for an address or URL.
const (
	ok      = ""        // allowed by both policies
	private = "private" // refused by the strict policy, allowed with AllowPrivate
	never   = "never"   // refused by both
	bad     = "invalid" // an ErrInvalidURL, whatever the policy
)

// addrCases are addresses and the verdict for them; want, when set, is
// a substring of the strict policy's error.
var addrCases = []struct {
	addr, verdict, want string
}{
	// Global unicast.
	{"8.8.8.8", ok, ""},
	{"1.1.1.1", ok, ""},
	{"93.184.215.14", ok, ""},
	{"100.63.255.255", ok, ""},
	{"100.128.0.0", ok, ""},
	{"172.15.255.255", ok, ""},
	{"172.32.0.0", ok, ""},
	{"192.169.0.1", ok, ""},
	{"198.20.0.1", ok, ""},
	{"223.255.255.255", ok, ""},
	{"2606:4700:4700::1111", ok, ""},
	{"2001:4860:4860::8888", ok, ""},
	{"::ffff:8.8.8.8", ok, ""},
	{"64:ff9b::808:808", ok, ""}, // NAT64 of 8.8.8.8
	{"2002:808:808::1", ok, ""},  // 6to4 of 8.8.8.8
	{"::808:808", ok, ""},        // IPv4-compatible 8.8.8.8
	{"fe80::1%eth0", never, "link-local"},

	// Refused always.
	{"0.0.0.0", never, "address 0.0.0.0 is unspecified"},
	{"::", never, "unspecified"},
	{"169.254.0.1", never, "link-local"},
	{"169.254.169.254", never, "address 169.254.169.254 is a cloud metadata service"},
	{"169.254.170.2", never, "link-local"}, // ECS task metadata
	{"fe80::1", never, "link-local"},
	{"febf:ffff::1", never, "link-local"},
	{"100.100.100.200", never, "cloud metadata"},
	{"168.63.129.16", never, "cloud metadata"},
	{"192.0.0.192", never, "cloud metadata"},
	{"fd00:ec2::254", never, "cloud metadata"},
	{"fd20:ce::254", never, "cloud metadata"},
	{"224.0.0.1", never, "multicast"},
	{"239.255.255.250", never, "multicast"},
	{"ff02::1", never, "multicast"},
	{"ff0e::1", never, "multicast"},
	{"255.255.255.255", never, "broadcast"},
	{"::ffff:169.254.169.254", never, "cloud metadata"},
	{"::ffff:0.0.0.0", never, "unspecified"},
	{"::ffff:224.0.0.1", never, "multicast"},
	{"64:ff9b::a9fe:a9fe", never, "address 64:ff9b::a9fe:a9fe is a cloud metadata service (embeds 169.254.169.254)"},
	{"2002:a9fe:a9fe::", never, "embeds 169.254.169.254"},
	{"::a9fe:a9fe", never, "embeds 169.254.169.254"},
	{"2001:0:a9fe:a9fe::", never, "embeds 169.254.169.254"},           // Teredo server
	{"2001:0:808:808:0:0:5601:5601", never, "embeds 169.254.169.254"}, // Teredo client, obfuscated

	// Refused unless AllowPrivate.
	{"127.0.0.1", private, "address 127.0.0.1 is loopback"},
	{"127.255.255.254", private, "loopback"},
	{"::1", private, "loopback"},
	{"::ffff:127.0.0.1", private, "loopback"},
	{"::ffff:7f00:1", private, "loopback"},
	{"64:ff9b::7f00:1", private, "embeds 127.0.0.1"},
	{"2002:7f00:1::", private, "embeds 127.0.0.1"},
	{"::7f00:1", private, "embeds 127.0.0.1"},
	{"2001:0:808:808::80ff:fffe", private, "embeds 127.0.0.1"}, // Teredo client
	{"10.0.0.1", private, "address 10.0.0.1 is private"},
	{"10.255.255.255", private, "private"},
	{"172.16.0.1", private, "private"},
	{"172.31.255.255", private, "private"},
	{"192.168.1.1", private, "private"},
	{"::ffff:10.0.0.1", private, "private"},
	{"::ffff:192.168.0.1", private, "private"},
	{"2002:c0a8:101::1", private, "embeds 192.168.1.1"},
	{"100.64.0.1", private, "carrier-grade NAT"},
	{"100.127.255.255", private, "carrier-grade NAT"},
	{"198.18.0.1", private, "benchmarking"},
	{"198.19.255.255", private, "benchmarking"},
	{"0.1.2.3", private, "reserved"},
	{"192.0.0.8", private, "reserved"},
	{"192.0.2.1", private, "documentation"},
	{"198.51.100.7", private, "documentation"},
	{"203.0.113.9", private, "documentation"},
	{"192.88.99.1", private, "reserved"},
	{"240.0.0.1", private, "reserved"},
	{"255.255.255.254", private, "reserved"},
	{"fc00::1", private, "private"},
	{"fd12:3456:789a::1", private, "private"},
	{"fec0::1", private, "reserved"},
	{"64:ff9b:1::1", private, "private"},
	{"100::1", private, "reserved"},
	{"2001:2::1", private, "benchmarking"},
	{"2001:10::1", private, "reserved"},
	{"2001:20::1", private, "reserved"},
	{"2001:db8::1", private, "documentation"},
	{"3fff::1", private, "documentation"},
	{"5f00::1", private, "reserved"},
	{"4000::1", private, "reserved"},
	{"::2:0:0:1", private, "reserved"},
	{"e000::1", private, "reserved"},
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range addrCases {
		ip := netip.MustParseAddr(tc.addr)
		strict := Policy{}.CheckAddr(ip)
		loose := Policy{AllowPrivate: true}.CheckAddr(ip)
		switch tc.verdict {
		case ok:
			if strict != nil || loose != nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want both allowed", tc.addr, strict, loose)
			}
		case private:
			if strict == nil || loose != nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want refused, allowed", tc.addr, strict, loose)
			}
		case never:
			if strict == nil || loose == nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want both refused", tc.addr, strict, loose)
			}
		}
		if strict != nil {
			if !errors.Is(strict, ErrForbidden) || errors.Is(strict, ErrInvalidURL) {
				t.Errorf("%s: %v does not wrap ErrForbidden alone", tc.addr, strict)
			}
			if !strings.HasPrefix(strict.Error(), "netguard: ") || !strings.Contains(strict.Error(), tc.want) {
				t.Errorf("%s: error %q; want it to contain %q", tc.addr, strict, tc.want)
			}
		}
	}
}

func TestCheckAddrZero(t *testing.T) {
	for _, p := range []Policy{{}, {AllowPrivate: true}} {
		if err := p.CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbidden) {
			t.Errorf("%+v: zero Addr: %v; want ErrForbidden", p, err)
		}
	}
}

func BenchmarkCheckAddr(b *testing.B) {
	p := Policy{}
	addrs := []netip.Addr{
		netip.MustParseAddr("93.184.215.14"),
		netip.MustParseAddr("2606:4700:4700::1111"),
		netip.MustParseAddr("10.0.0.1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = p.CheckAddr(addrs[i%len(addrs)])
	}
}
