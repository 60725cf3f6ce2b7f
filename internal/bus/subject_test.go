package bus

import (
	"strings"
	"testing"
)

var escapeCases = []struct{ in, want string }{
	{"", "~"},
	{"0123456789abcdef01234567", "0123456789abcdef01234567"},
	{"api", "api"},
	{"particle-internal", "particle-internal"},
	{"a_b-C", "a_b-C"},
	{"a.b", "a~2eb"},
	{"*", "~2a"},
	{">", "~3e"},
	{"~", "~7e"},
	{"a b\tc", "a~20b~09c"},
	{"temp/x", "temp~2fx"},
	{"é", "~c3~a9"},
	{"\x00", "~00"},
}

func TestEscapeToken(t *testing.T) {
	for _, tt := range escapeCases {
		got := EscapeToken(tt.in)
		if got != tt.want {
			t.Errorf("EscapeToken(%q) = %q; want %q", tt.in, got, tt.want)
		}
		back, ok := UnescapeToken(got)
		if !ok || back != tt.in {
			t.Errorf("UnescapeToken(%q) = %q, %v; want %q", got, back, ok, tt.in)
		}
	}
	for _, bad := range []string{"", "a.b", "~", "~2", "~zz", "~41", "~2E", "a*"} {
		if bad == "~" {
			continue // the empty string's token
		}
		if s, ok := UnescapeToken(bad); ok {
			t.Errorf("UnescapeToken(%q) = %q, true; want false", bad, s)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = EscapeToken("0123456789abcdef01234567") }); n != 0 {
		t.Errorf("EscapeToken of a device ID allocates %v times; want 0", n)
	}
}

// FuzzEscapeToken checks that every escaped string is one valid subject
// token and that escaping is reversible.
func FuzzEscapeToken(f *testing.F) {
	for _, tt := range escapeCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EscapeToken(s)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("EscapeToken(%q) = %q: not a valid subject token", s, tok)
		}
		back, ok := UnescapeToken(tok)
		if !ok || back != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, back, ok)
		}
		// Unescaping arbitrary input never panics, and what it accepts is canonical.
		if u, ok := UnescapeToken(s); ok && EscapeToken(u) != s {
			t.Fatalf("UnescapeToken(%q) = %q, but that escapes to %q", s, u, EscapeToken(u))
		}
	})
}

func TestParseTail(t *testing.T) {
	tests := []struct {
		in   string
		want meta
		ok   bool
	}{
		{"pub.7.u.c.d", meta{public: true, product: "7", user: "u", customer: "c", device: "d"}, true},
		{"priv.0.~.~.api", meta{product: "0", user: "~", customer: "~", device: "api"}, true},
		{"xx.0.u.c.d", meta{}, false},
		{"pub.0.u.c", meta{}, false},
		{"pub.0.u.c.d.e", meta{}, false},
		{"pub..u.c.d", meta{}, false},
		{"", meta{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTail(tt.in)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseTail(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	e := Event{Public: true, ProductID: 12, UserID: "a.b", DeviceID: "api"}
	m := metaOf(&e)
	if got, ok := parseTail(m.tail()); !ok || got != m {
		t.Errorf("parseTail(tail(%+v)) = %+v, %v", m, got, ok)
	}
}

func TestFilterSubject(t *testing.T) {
	tests := []struct {
		f    Filter
		want string
	}{
		{Filter{}, "w.live.*.*.*.*.*"},
		{Filter{UserID: "u1"}, "w.live.*.*.u1.*.*"},
		{Filter{CustomerID: "c1", NamePrefix: "x.y"}, "w.live.*.*.*.c1.*"},
		{Filter{ProductID: 9, DeviceID: "d.1"}, "w.live.*.9.*.*.d~2e1"},
		{Filter{PublicOnly: true}, "w.live.pub.*.*.*.*"},
		{Filter{UserID: "u1", AlsoPublic: true}, "w.live.>"},
	}
	s := newSubjects("w")
	for _, tt := range tests {
		m := compile(tt.f)
		if got := m.subject(s.live); got != tt.want {
			t.Errorf("subject(%+v) = %q; want %q", tt.f, got, tt.want)
		}
	}
}
