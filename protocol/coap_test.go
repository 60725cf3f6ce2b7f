package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestMessageDecodeCases(t *testing.T) {
	for _, tc := range coapCases {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := m.Decode(tc.wire); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("Decode\n got  %+v\n want %+v", m, tc.want)
			}
			if got := Classify(&m); got != tc.kind {
				t.Fatalf("Classify = %s, want %s", got, tc.kind)
			}
			if tc.check != nil {
				tc.check(t, &m)
			}
		})
	}
}

func TestMessageEncodeCases(t *testing.T) {
	for _, tc := range coapCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.want.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if !tc.lenient && !bytes.Equal(got, tc.wire) {
				t.Fatalf("AppendBinary\n got  %x\n want %x", got, tc.wire)
			}
			var back Message
			if err := back.Decode(got); err != nil || !reflect.DeepEqual(back, tc.want) {
				t.Fatalf("re-decode = %+v, %v; want %+v", back, err, tc.want)
			}
		})
	}
}

func TestCatalogueBuildersMatchWire(t *testing.T) {
	for _, tc := range coapCases {
		if tc.build == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.build()
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			got, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(got, tc.wire) {
				t.Fatalf("constructor wire\n got  %x\n want %x", got, tc.wire)
			}
		})
	}
}

func TestMessageDecodeErrors(t *testing.T) {
	for _, tc := range badCoapCases {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := m.Decode(tc.wire); !errors.Is(err, tc.err) {
				t.Fatalf("Decode(%x) error = %v, want %v", tc.wire, err, tc.err)
			}
		})
	}
}

func TestMessageDecodeDoesNotAllocate(t *testing.T) {
	var m Message
	m.Options = make([]Option, 0, 8)
	for _, tc := range coapCases {
		allocs := testing.AllocsPerRun(100, func() {
			if err := m.Decode(tc.wire); err != nil {
				t.Fatal(err)
			}
			_ = Classify(&m)
		})
		if allocs != 0 {
			t.Errorf("%s: Decode+Classify allocates %.1f times, want 0", tc.name, allocs)
		}
	}
}

func TestMessageEncodeDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 2048)
	for _, tc := range coapCases {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := tc.want.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: AppendBinary allocates %.1f times, want 0", tc.name, allocs)
		}
	}
}

func TestMessageEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		err  error
	}{
		{"token_9", Message{Token: make([]byte, 9)}, ErrTokenLength},
		{"options_unsorted", Message{Options: []Option{{Number: 15}, {Number: 11}}}, ErrOptionOrder},
		{"option_too_long", Message{Options: []Option{{Number: 11, Value: make([]byte, maxOptionLen+1)}}}, ErrOptionTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.AppendBinary(nil); !errors.Is(err, tc.err) {
				t.Fatalf("AppendBinary error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestOptionExtendedBoundaries(t *testing.T) {
	// Option lengths and deltas at each nibble boundary survive a round trip
	// and use the documented extension form.
	for _, n := range []int{0, 12, 13, 268, 269, 270, 1000, maxOptionLen} {
		m := Message{Type: Confirmable, Code: CodeGET, ID: 1,
			Options: []Option{{Number: OptionNumber(min(n, maxOptionNumber)), Value: bytes.Repeat([]byte{'x'}, n)}}}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		wantNibble := byte(n)
		switch {
		case n >= 269:
			wantNibble = 14
		case n >= 13:
			wantNibble = 13
		}
		if got := b[4] & 0x0F; got != wantNibble {
			t.Errorf("n=%d: length nibble %d, want %d", n, got, wantNibble)
		}
		var back Message
		if err := back.Decode(b); err != nil || !reflect.DeepEqual(back.Options, m.Options) {
			t.Fatalf("n=%d: round trip = %v, %v", n, back.Options[0].Number, err)
		}
	}
}

func TestAddOptionKeepsOrder(t *testing.T) {
	var m Message
	m.AddOption(OptionURIQuery, []byte("q1"))
	m.AddOption(OptionURIPath, []byte("a"))
	m.AddOption(OptionMaxAge, []byte{1})
	m.AddOption(OptionURIPath, []byte("b"))
	m.AddOption(OptionURIQuery, []byte("q2"))
	m.AddOption(OptionETag, []byte{9})
	var got []string
	for _, o := range m.Options {
		got = append(got, string(o.Value))
	}
	want := []string{"\x09", "a", "b", "\x01", "q1", "q2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("option order %q, want %q", got, want)
	}
	if _, err := m.AppendBinary(nil); err != nil {
		t.Fatal(err)
	}
}

func TestPathName(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		kind   byte
		want   string
		wantOK bool
	}{
		{"letter_and_name", []Option{path("E"), path("a/b")}, 'E', "a/b", true},
		{"split", []Option{path("e"), path("a"), path("b")}, 'e', "a/b", true},
		{"collider", []Option{path("e/a/b")}, 'e', "a/b", true},
		{"collider_plus_more", []Option{path("e/a"), path("b")}, 'e', "a/b", true},
		{"letter_only", []Option{path("t")}, 't', "", true},
		{"long_first", []Option{path("event"), path("x")}, 'e', "", false},
		{"no_path", []Option{query([]byte("u"))}, 0, "", false},
		{"empty_first", []Option{path("")}, 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Message{Options: tc.opts}
			if k := m.PathKind(); k != tc.kind {
				t.Errorf("PathKind = %q, want %q", k, tc.kind)
			}
			got, ok := m.PathName()
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("PathName = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestUint(t *testing.T) {
	tests := []struct {
		v    uint32
		wire string
	}{{0, ""}, {1, "01"}, {255, "ff"}, {256, "0100"}, {3600, "0e10"}, {1 << 16, "010000"}, {1<<24 - 1, "ffffff"}, {1 << 24, "01000000"}, {0xFFFFFFFF, "ffffffff"}}
	for _, tc := range tests {
		if got := AppendUint(nil, tc.v); !bytes.Equal(got, hexb(tc.wire)) {
			t.Errorf("AppendUint(%d) = %x, want %s", tc.v, got, tc.wire)
		}
		if got, err := ParseUint(hexb(tc.wire)); err != nil || got != tc.v {
			t.Errorf("ParseUint(%s) = %d, %v", tc.wire, got, err)
		}
	}
	if got, _ := ParseUint(hexb("000e10")); got != 3600 {
		t.Errorf("ParseUint with leading zero = %d, want 3600", got)
	}
	if _, err := ParseUint(hexb("0102030405")); !errors.Is(err, ErrUintTooLong) {
		t.Errorf("ParseUint(5 bytes) error = %v", err)
	}
}

func TestCodeAndTypeStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{CodeContent.String(), "2.05"}, {CodeBadRequest.String(), "4.00"}, {CodeServiceUnavailable.String(), "5.03"},
		{NewCode(2, 31).String(), "2.31"}, {Confirmable.String(), "CON"}, {Reset.String(), "RST"},
		{KindTimeRequest.String(), "time-request"}, {Kind(200).String(), "Kind(200)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if !CodeGET.IsRequest() || CodeEmpty.IsRequest() || !CodeNotFound.IsResponse() || CodeNotFound.IsSuccess() {
		t.Error("code class predicates are wrong")
	}
}
