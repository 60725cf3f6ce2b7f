package dtls

import (
	"bytes"
	"errors"
	"testing"
)

func TestHandshakeHeaderRoundTrip(t *testing.T) {
	h := HandshakeHeader{Type: HandshakeClientHello, Length: 0x0194, MessageSeq: 2, FragmentOffset: 0x10, FragmentLength: 0x20}
	b := AppendHandshakeHeader(nil, h)
	want := []byte{1, 0, 1, 0x94, 0, 2, 0, 0, 0x10, 0, 0, 0x20}
	if !bytes.Equal(b, want) {
		t.Fatalf("header = % x, want % x", b, want)
	}
	frag := bytes.Repeat([]byte{7}, 0x20)
	got, f, rest, err := ParseHandshakeFragment(append(append(b, frag...), 9))
	if err != nil || got != h || !bytes.Equal(f, frag) || !bytes.Equal(rest, []byte{9}) {
		t.Fatalf("parse = %+v % x % x %v", got, f, rest, err)
	}
}

func TestParseHandshakeFragmentErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", []byte{1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}},
		{"short body", []byte{1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2}},
		{"fragment past length", []byte{1, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 4, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := ParseHandshakeFragment(tt.in); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, _, _, err := ParseHandshakeFragment(nil); !errors.Is(err, ErrHandshakeShort) {
		t.Fatalf("err = %v, want ErrHandshakeShort", err)
	}
}

// feed parses every fragment in frags and adds it to r.
func feed(t *testing.T, r *Reassembler, frags ...[]byte) error {
	t.Helper()
	for _, b := range frags {
		h, f, rest, err := ParseHandshakeFragment(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("parse: %v (rest %d)", err, len(rest))
		}
		if err := r.Add(h, f); err != nil {
			return err
		}
	}
	return nil
}

func TestReassemblerFragmentsOutOfOrder(t *testing.T) {
	body := make([]byte, 300)
	for i := range body {
		body[i] = byte(i)
	}
	frags, err := FragmentHandshake(HandshakeCertificate, 3, body, 100)
	if err != nil || len(frags) != 3 {
		t.Fatalf("fragments: %d %v", len(frags), err)
	}
	r := NewReassembler(3)
	if err := feed(t, r, frags[2], frags[0]); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Next(); ok {
		t.Fatal("complete before the middle fragment")
	}
	// A retransmitted, identical overlap is fine.
	if err := feed(t, r, frags[0], frags[1]); err != nil {
		t.Fatal(err)
	}
	m, ok := r.Next()
	if !ok || m.Type != HandshakeCertificate || m.Seq != 3 || !bytes.Equal(m.Body, body) {
		t.Fatalf("next = %+v %v", m, ok)
	}
	if !bytes.Equal(m.Raw(), AppendHandshake(nil, HandshakeCertificate, 3, body)) {
		t.Fatal("raw form differs from the unfragmented message")
	}
	if r.NextSeq() != 4 {
		t.Fatalf("next seq %d", r.NextSeq())
	}
	// Old retransmissions are ignored.
	if err := feed(t, r, frags[1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Next(); ok {
		t.Fatal("old message handed out again")
	}
}

func TestReassemblerInOrderFlight(t *testing.T) {
	r := NewReassembler(0)
	// Later message first: held until the earlier one completes.
	if err := feed(t, r, AppendHandshake(nil, HandshakeServerHelloDone, 1, nil), AppendHandshake(nil, HandshakeServerHello, 0, []byte{1, 2})); err != nil {
		t.Fatal(err)
	}
	for i, want := range []HandshakeType{HandshakeServerHello, HandshakeServerHelloDone} {
		m, ok := r.Next()
		if !ok || m.Type != want || m.Seq != uint16(i) {
			t.Fatalf("message %d = %+v %v", i, m, ok)
		}
	}
}

func TestReassemblerRefuses(t *testing.T) {
	hdr := func(typ HandshakeType, length uint32, seq uint16, off uint32, frag []byte) []byte {
		return append(AppendHandshakeHeader(nil, HandshakeHeader{Type: typ, Length: length, MessageSeq: seq,
			FragmentOffset: off, FragmentLength: uint32(len(frag))}), frag...)
	}
	tests := []struct {
		name  string
		r     *Reassembler
		frags [][]byte
	}{
		{"overlap disagrees", &Reassembler{}, [][]byte{hdr(1, 4, 0, 0, []byte{1, 2}), hdr(1, 4, 0, 1, []byte{3, 3})}},
		{"type changes", &Reassembler{}, [][]byte{hdr(1, 4, 0, 0, []byte{1, 2}), hdr(2, 4, 0, 2, []byte{3, 4})}},
		{"length changes", &Reassembler{}, [][]byte{hdr(1, 4, 0, 0, []byte{1, 2}), hdr(1, 5, 0, 2, []byte{3, 4})}},
		{"too long", &Reassembler{MaxMessageLen: 3}, [][]byte{hdr(1, 4, 0, 0, []byte{1})}},
		{"default too long", &Reassembler{}, [][]byte{hdr(1, DefaultMaxMessageLen+1, 0, 0, []byte{1})}},
		{"too far ahead", &Reassembler{MaxAhead: 2}, [][]byte{hdr(1, 1, 3, 0, []byte{1})}},
		{"too many fragments", &Reassembler{MaxFragments: 2}, [][]byte{
			hdr(1, 4, 0, 0, []byte{1}), hdr(1, 4, 0, 1, []byte{2}), hdr(1, 4, 0, 2, []byte{3})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := feed(t, tt.r, tt.frags...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	r := &Reassembler{}
	if err := r.Add(HandshakeHeader{Type: 1, Length: 4, FragmentLength: 3}, []byte{1}); err == nil {
		t.Fatal("accepted a fragment whose length disagrees with its header")
	}
}

func TestFragmentHandshakeEmptyBody(t *testing.T) {
	frags, err := FragmentHandshake(HandshakeServerHelloDone, 5, nil, 10)
	if err != nil || len(frags) != 1 || !bytes.Equal(frags[0], AppendHandshake(nil, HandshakeServerHelloDone, 5, nil)) {
		t.Fatalf("frags = %x %v", frags, err)
	}
	if _, err := FragmentHandshake(HandshakeServerHelloDone, 5, nil, 0); err == nil {
		t.Fatal("fragment size 0 accepted")
	}
}
