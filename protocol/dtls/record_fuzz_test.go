package dtls

import (
	"bytes"
	"testing"
)

// FuzzParseRecord feeds arbitrary datagrams to ParseRecord: it must not
// panic, must consume exactly header plus body, and a parsed header must
// write back to the same bytes.
func FuzzParseRecord(f *testing.F) {
	f.Add(mustHex("16fefd0000000000000001000301020317fefd0001000000000002000100"))
	f.Add(mustHex("15fefd00010000000000070002aabb"))
	f.Add(mustHex("16fefd00000000000000010003aabb"))
	f.Add(mustHex("17fefd0001000000000001ffff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParsed(t, b)
	})
}

// FuzzParseCIDRecord is FuzzParseRecord for connection-ID records: the
// first byte is forced to type 25 or 253 so the fuzzer explores the CID
// layout.
func FuzzParseCIDRecord(f *testing.F) {
	f.Add(false, mustHex("19fefd0001000000000010c1d00001020304050002aabb"))
	f.Add(true, mustHex("fdfefd0001000000000010c1d00001020304050000"))
	f.Add(false, mustHex("19fefd0001000000000010c1d000010203"))
	f.Fuzz(func(t *testing.T, move bool, b []byte) {
		if len(b) > 0 {
			b[0] = byte(TypeCID)
			if move {
				b[0] = byte(TypeMoveSession)
			}
		}
		r, ok := checkParsed(t, b)
		if ok && len(r.Header.CID) != CIDLen {
			t.Fatalf("CID record with %d-byte CID", len(r.Header.CID))
		}
	})
}

// checkParsed parses b and checks the invariants of a parsed record.
func checkParsed(t *testing.T, b []byte) (Record, bool) {
	r, rest, err := ParseRecord(b)
	if err != nil {
		if len(rest) != len(b) {
			t.Fatalf("error %v but consumed input", err)
		}
		return r, false
	}
	if len(r.Raw)+len(rest) != len(b) || len(r.Body) != int(r.Header.Length) {
		t.Fatalf("lengths: raw %d body %d rest %d of %d", len(r.Raw), len(r.Body), len(rest), len(b))
	}
	enc, err := AppendHeader(nil, &r.Header)
	if err != nil {
		t.Fatalf("parsed header does not encode: %v", err)
	}
	if !bytes.Equal(append(enc, r.Body...), r.Raw) {
		t.Fatalf("round trip %x != %x", enc, r.Raw)
	}
	return r, true
}

// FuzzParseInner checks ParseInner on arbitrary plaintext and that
// AppendInner output always parses back.
func FuzzParseInner(f *testing.F) {
	f.Add(mustHex("68656c6c6f17000000000000000000"), byte(23))
	f.Add([]byte{}, byte(21))
	f.Add(mustHex("000000"), byte(22))
	f.Fuzz(func(t *testing.T, b []byte, typ byte) {
		content, ct, err := ParseInner(b)
		if err == nil {
			if ct == 0 || len(content) >= len(b) || b[len(content)] != byte(ct) {
				t.Fatalf("ParseInner(%x) = %x, %d", b, content, ct)
			}
		}
		if typ == 0 {
			return
		}
		inner := AppendInner(nil, b, ContentType(typ))
		if len(inner)%PaddingGranularity != 0 {
			t.Fatalf("inner length %d not padded", len(inner))
		}
		got, gt, err := ParseInner(inner)
		if err != nil || gt != ContentType(typ) || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x %d %v", b, got, gt, err)
		}
	})
}
