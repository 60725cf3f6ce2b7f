package dtls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// mustHex decodes a hex constant of a test table.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestParseRecord parses plain and CID records, several in one datagram, and
// rejects malformed ones.
func TestParseRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Header
		body    string
		rest    string
		wantErr error
	}{
		{
			name: "plain handshake",
			in:   "16fefd0000000000000001" + "0003" + "010203",
			want: Header{Type: TypeHandshake, Version: Version, Seq: 1, Length: 3},
			body: "010203",
		},
		{
			name: "cid record as seen from a device",
			in:   "19fefd0001000000000010c1d0000102030405" + "0002" + "aabb",
			want: Header{Type: TypeCID, Version: Version, Epoch: 1, Seq: 0x10, CID: mustHex("c1d0000102030405"), Length: 2},
			body: "aabb",
		},
		{
			name: "move session record",
			in:   "fdfefd0001000000000010c1d0000102030405" + "0000",
			want: Header{Type: TypeMoveSession, Version: Version, Epoch: 1, Seq: 0x10, CID: mustHex("c1d0000102030405")},
		},
		{
			name: "two records in a datagram",
			in:   "17fefd0001ffffffffffff0001aa" + "15fefd0001000000000001000102",
			want: Header{Type: TypeApplicationData, Version: Version, Epoch: 1, Seq: MaxSeq, Length: 1},
			body: "aa",
			rest: "15fefd0001000000000001000102",
		},
		{name: "empty", in: "", wantErr: ErrShortRecord},
		{name: "short header", in: "16fefd000000000000000100", wantErr: ErrShortRecord},
		{name: "short body", in: "16fefd00000000000000010003aabb", wantErr: ErrShortRecord},
		{name: "short cid header", in: "19fefd0001000000000010c1d000010203", wantErr: ErrShortRecord},
		{name: "cid header without length", in: "19fefd0001000000000010c1d000010203040500", wantErr: ErrShortRecord},
		{name: "tls 1.2 version", in: "16030300000000000000010000", wantErr: ErrBadVersion},
		{
			name: "dtls 1.0 version of a first client hello",
			in:   "16feff00000000000000000001" + "01",
			want: Header{Type: TypeHandshake, Version: VersionDTLS10, Length: 1},
			body: "01",
		},
		{name: "dtls 1.3 version", in: "16fefc00000000000000010000", wantErr: ErrBadVersion},
		{name: "too large", in: "17fefd0001000000000001ffff", wantErr: ErrRecordTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			r, rest, err := ParseRecord(mustHex(in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := r.Header
			if h.Type != tt.want.Type || h.Version != tt.want.Version || h.Epoch != tt.want.Epoch ||
				h.Seq != tt.want.Seq || !bytes.Equal(h.CID, tt.want.CID) || h.Length != tt.want.Length {
				t.Fatalf("header = %+v, want %+v", h, tt.want)
			}
			if !bytes.Equal(r.Body, mustHex(tt.body)) || !bytes.Equal(rest, mustHex(tt.rest)) {
				t.Fatalf("body %x rest %x, want %s and %s", r.Body, rest, tt.body, tt.rest)
			}
			if want := len(in)/2 - len(tt.rest)/2; len(r.Raw) != want {
				t.Fatalf("len(Raw) = %d, want %d", len(r.Raw), want)
			}
			// Writing the header back gives the input bytes.
			enc, err := AppendHeader(nil, &h)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(enc, r.Body...), r.Raw) {
				t.Fatalf("AppendHeader round trip = %x, want %x", enc, r.Raw)
			}
			if h.Len() != len(enc) {
				t.Fatalf("Len() = %d, encoded %d", h.Len(), len(enc))
			}
		})
	}
}

// TestAppendHeaderErrors checks the header writer's refusals.
func TestAppendHeaderErrors(t *testing.T) {
	cid := mustHex("0102030405060708")
	tests := []struct {
		name string
		h    Header
		want error
	}{
		{"seq over 48 bits", Header{Type: TypeApplicationData, Version: Version, Seq: MaxSeq + 1}, ErrSeqOverflow},
		{"cid type without cid", Header{Type: TypeCID, Version: Version}, ErrBadCID},
		{"cid on plain type", Header{Type: TypeApplicationData, Version: Version, CID: cid}, ErrBadCID},
		{"short cid", Header{Type: TypeCID, Version: Version, CID: cid[:4]}, ErrBadCID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{0xee}
			out, err := AppendHeader(dst, &tt.h)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(out, dst) {
				t.Fatalf("dst changed on error: %x", out)
			}
		})
	}
}

// TestInner checks the inner plaintext of CID records: padding to 16 bytes
// and the real type as the last non-zero byte.
func TestInner(t *testing.T) {
	tests := []struct {
		name    string
		content string
		typ     ContentType
		want    string
	}{
		{"empty alert", "", TypeAlert, "15" + "000000000000000000000000000000"},
		{"15 bytes fill a block", "000102030405060708090a0b0c0d0e", TypeApplicationData, "000102030405060708090a0b0c0d0e17"},
		{"16 bytes need a second block", "000102030405060708090a0b0c0d0e0f", TypeApplicationData,
			"000102030405060708090a0b0c0d0e0f17" + "000000000000000000000000000000"},
		{"content ending in zeros", "aa0000", TypeHandshake, "aa000016" + "000000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendInner(nil, mustHex(tt.content), tt.typ)
			if !bytes.Equal(got, mustHex(tt.want)) {
				t.Fatalf("AppendInner = %x, want %s", got, tt.want)
			}
			content, typ, err := ParseInner(got)
			if err != nil || typ != tt.typ || !bytes.Equal(content, mustHex(tt.content)) {
				t.Fatalf("ParseInner = %x, %v, %v", content, typ, err)
			}
		})
	}
	for _, in := range []string{"", "00", "00000000"} {
		if _, _, err := ParseInner(mustHex(in)); !errors.Is(err, ErrNoContentType) {
			t.Errorf("ParseInner(%q) err = %v, want ErrNoContentType", in, err)
		}
	}
	// Unpadded inner plaintext is accepted too.
	if c, typ, err := ParseInner(mustHex("aabb17")); err != nil || typ != TypeApplicationData || len(c) != 2 {
		t.Errorf("ParseInner(unpadded) = %x, %v, %v", c, typ, err)
	}
}

// TestContentTypeString names the types and numbers the rest.
func TestContentTypeString(t *testing.T) {
	for typ, want := range map[ContentType]string{
		TypeChangeCipherSpec: "change_cipher_spec", TypeAlert: "alert", TypeHandshake: "handshake",
		TypeApplicationData: "application_data", TypeCID: "tls12_cid", TypeMoveSession: "move_session",
		99: "content_type(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(typ), got, want)
		}
	}
}
