package netguard

import (
	"errors"
	"strings"
	"testing"
)

// urlCases are configured webhook URLs and the verdict for them; want,
// when set, is a substring of the strict policy's error.
var urlCases = []struct {
	url, verdict, want string
}{
	// Plain public URLs.
	{"https://example.com/hook", ok, ""},
	{"http://example.com", ok, ""},
	{"HtTpS://Example.COM:8443/a?b=c#d", ok, ""},
	{"https://example.com:/x", ok, ""},
	{"https://example.com.", ok, ""},
	{"https://93.184.215.14/", ok, ""},
	{"https://[2606:4700:4700::1111]:443/", ok, ""},
	{"https://1e100.net/", ok, ""},
	{"https://123.example.com/", ok, ""},
	{"https://bücher.example/", ok, ""},
	{"https://example.com/%7B%7Bx%7D%7D", ok, ""},

	// Shape.
	{"", bad, "scheme"},
	{"example.com/hook", bad, "scheme"},
	{"ftp://example.com/", bad, `scheme "ftp" is not http or https`},
	{"file:///etc/passwd", bad, "scheme"},
	{"gopher://127.0.0.1:25/", bad, "scheme"},
	{"javascript:alert(1)", bad, "scheme"},
	{"http:example.com", bad, "no host"},
	{"http:///path", bad, "no host"},
	{"http://:80/", bad, "no host"},
	{"http://user:pass@example.com/", bad, "user info"},
	{"http://example.com@10.0.0.1/", bad, "user info"},
	{"http://@example.com/", bad, "user info"},
	{"http://example.com:0/", bad, "port 0 is out of range"},
	{"http://example.com:65536/", bad, "out of range"},
	{"http://example.com:99999999999999999999/", bad, "out of range"},
	{"http://example.com:+80/", bad, "invalid port"},
	{"http://a b/", bad, "invalid character"},
	{"http://127.0.0.%31/", bad, "escape"},
	{"http://::1/", bad, "invalid port"},
	{"http://example.com\\@10.0.0.1/", bad, "userinfo"},
	{"http://.", bad, "not a name"},
	{" http://example.com/", bad, ""},
	{"http://exa\nmple.com/", bad, ""},

	// Literal addresses go through CheckAddr.
	{"http://127.0.0.1/", private, "address 127.0.0.1 is loopback"},
	{"http://127.0.0.1:8080/x", private, "loopback"},
	{"http://[::1]:8080/", private, "loopback"},
	{"http://[::ffff:127.0.0.1]/", private, "loopback"},
	{"http://[::ffff:7f00:1]/", private, "loopback"},
	{"http://10.1.2.3/", private, "private"},
	{"http://192.168.0.10:8123/api", private, "private"},
	{"http://100.64.1.1/", private, "carrier-grade NAT"},
	{"http://[fd00::1]/", private, "private"},
	{"http://169.254.169.254/latest/meta-data/", never, "cloud metadata"},
	{"http://[::ffff:169.254.169.254]/", never, "cloud metadata"},
	{"http://[fd00:ec2::254]/", never, "cloud metadata"},
	{"http://100.100.100.200/latest/meta-data/", never, "cloud metadata"},
	{"http://[fe80::1%25en0]:80/", never, "link-local"},
	{"http://0.0.0.0:8080/", never, "unspecified"},
	{"http://[::]/", never, "unspecified"},
	{"http://224.0.0.1/", never, "multicast"},
	{"http://255.255.255.255/", never, "broadcast"},

	// Numbers that resolvers read as IPv4 (inet_aton, WHATWG).
	{"http://2130706433/", never, "non-canonical IPv4"},
	{"http://0x7f000001/", never, "non-canonical IPv4"},
	{"http://0x7f.1/", never, "non-canonical IPv4"},
	{"http://0177.0.0.1/", never, "non-canonical IPv4"},
	{"http://127.1/", never, "non-canonical IPv4"},
	{"http://127.0.0.01/", never, "non-canonical IPv4"},
	{"http://0x7F.0X0.0.1/", never, "non-canonical IPv4"},
	{"http://017700000001/", never, "non-canonical IPv4"},
	{"http://2852039166/", never, "non-canonical IPv4"}, // 169.254.169.254
	{"http://1.2.3.4.5/", never, "non-canonical IPv4"},
	{"http://example.0x1f/", never, "non-canonical IPv4"},
	{"http://0x/", never, "non-canonical IPv4"},
	{"http://1/", never, "non-canonical IPv4"},

	// Host names.
	{"http://metadata.google.internal/computeMetadata/v1/", never, "cloud metadata"},
	{"http://METADATA.google.internal./", never, "cloud metadata"},
	{"http://metadata/", never, "cloud metadata"},
	{"http://metadata.goog/", never, "cloud metadata"},
	{"http://instance-data/latest/", never, "cloud metadata"},
	{"http://instance-data.ec2.internal/", never, "cloud metadata"},
	{"http://localhost/", private, `host "localhost" is loopback`},
	{"http://LocalHost.:3000/", private, "loopback"},
	{"http://api.localhost/", private, "loopback"},
	{"http://printer.local/", private, "private"},
	{"http://nas.home.arpa/", private, "private"},
	{"http://db.internal/", private, "private"},
	{"http://ip-10-0-0-1.ec2.internal/", private, "private"},
	{"http://db/", private, "without a dot"},
	{"http://localhost.example.com/", ok, ""},
	{"http://internal.example.com/", ok, ""},
	{"http://example.local.com/", ok, ""},

	// Templates: the templated part is accepted, the rest is checked.
	{"https://{{host}}/hook", ok, ""},
	{"https://{{{host}}}/hook", ok, ""},
	{"https://{{sub}}.example.com/{{PARTICLE_EVENT_NAME}}", ok, ""},
	{"https://example.com/{{a}}?x={{b}}#{{c}}", ok, ""},
	{"https://example.com/{{#x}}/y{{/x}}", ok, ""},
	{"https://10.0.0.{{n}}/", ok, ""},
	{"https://{{h}}:{{p}}/", ok, ""},
	{"https://example.com:{{port}}/", ok, ""},
	{"https://example.com:8{{p}}/", ok, ""},
	{"https://127.0.0.1:{{port}}/", private, "loopback"},
	{"https://169.254.169.254/{{path}}", never, "cloud metadata"},
	{"https://metadata.google.internal/{{x}}", never, "cloud metadata"},
	{"https://localhost/?q={{x}}", private, "loopback"},
	{"https://example.com:0{{x}}/", ok, ""},
	{"https://example.com:{{a}}{{b}}{{c}}{{d}}{{e}}{{f}}/", ok, ""},
	{"{{scheme}}://example.com/", bad, "scheme must be written out"},
	{"http{{s}}://example.com/", bad, "scheme must be written out"},
	{"{{url}}", bad, "scheme must be written out"},
	{"https://{{user}}@example.com/", bad, "user info"},
	{"https://{{user}}:{{pass}}@{{host}}/", bad, "user info"},
	{"https://{{host/", bad, "unclosed template"},
	{"https://{{{host}}/", bad, "unclosed template"},
	{"https://example.com:{{p}}x/", bad, "invalid port"},
}

func TestCheckURL(t *testing.T) {
	for _, tc := range urlCases {
		strict := Policy{}.CheckURL(tc.url)
		loose := Policy{AllowPrivate: true}.CheckURL(tc.url)
		switch tc.verdict {
		case ok:
			if strict != nil || loose != nil {
				t.Errorf("%q: strict %v, AllowPrivate %v; want both allowed", tc.url, strict, loose)
			}
		case private:
			if strict == nil || loose != nil {
				t.Errorf("%q: strict %v, AllowPrivate %v; want refused, allowed", tc.url, strict, loose)
			}
		case never:
			if strict == nil || loose == nil {
				t.Errorf("%q: strict %v, AllowPrivate %v; want both refused", tc.url, strict, loose)
			}
		case bad:
			if !errors.Is(strict, ErrInvalidURL) || !errors.Is(loose, ErrInvalidURL) {
				t.Errorf("%q: strict %v, AllowPrivate %v; want ErrInvalidURL from both", tc.url, strict, loose)
			}
		}
		if strict == nil {
			continue
		}
		if tc.verdict != bad && !errors.Is(strict, ErrForbidden) {
			t.Errorf("%q: %v does not wrap ErrForbidden", tc.url, strict)
		}
		if !strings.HasPrefix(strict.Error(), "netguard: ") || !strings.Contains(strict.Error(), tc.want) {
			t.Errorf("%q: error %q; want it to contain %q", tc.url, strict, tc.want)
		}
	}
}

func TestMaskTemplates(t *testing.T) {
	for _, tc := range []struct{ in, masked, marks string }{
		{"abc", "abc", ""},
		{"a{{x}}b", "a1b", "010"},
		{"{{{x}}}{{y}}", "11", "11"},
		{"{{}}", "1", "1"},
		{"}}{{a}}}", "}}1}", "0010"},
	} {
		masked, isTmpl, err := maskTemplates(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var marks strings.Builder
		for _, b := range isTmpl {
			marks.WriteByte("01"[map[bool]int{false: 0, true: 1}[b]])
		}
		if masked != tc.masked || marks.String() != tc.marks {
			t.Errorf("%q: masked %q marks %q; want %q %q", tc.in, masked, marks.String(), tc.masked, tc.marks)
		}
	}
}
