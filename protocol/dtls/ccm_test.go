package dtls

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

// ccmVector is one line of testdata/ccm8_records.txt, made with mbedTLS by
// testdata/gen/gen.sh.
type ccmVector struct {
	name    string
	key, iv []byte
	epoch   uint16
	seq     uint64
	cid     []byte // nil without a connection ID
	typ     ContentType
	content []byte
	record  []byte
}

// loadCCMVectors reads the golden records.
func loadCCMVectors(t testing.TB) []ccmVector {
	t.Helper()
	var out []ccmVector
	for _, f := range readVectors(t, "ccm8_records.txt") {
		if len(f) != 9 {
			t.Fatalf("bad vector line %q", f)
		}
		epoch, err1 := strconv.ParseUint(f[3], 10, 16)
		seq, err2 := strconv.ParseUint(f[4], 10, 64)
		typ, err3 := strconv.ParseUint(f[6], 10, 8)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		v := ccmVector{name: f[0], key: unhex(t, f[1]), iv: unhex(t, f[2]), epoch: uint16(epoch), seq: seq,
			typ: ContentType(typ), content: unhex(t, f[7]), record: unhex(t, f[8])}
		if f[5] != "-" {
			v.cid = unhex(t, f[5])
		}
		out = append(out, v)
	}
	return out
}

// TestSealGolden checks Seal byte for byte against records made by mbedTLS.
func TestSealGolden(t *testing.T) {
	for _, v := range loadCCMVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			c, err := NewCipher(v.key, v.iv)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("prefix")
			got, err := c.Seal(prefix, v.typ, v.epoch, v.seq, v.cid, v.content)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:len(prefix)], []byte("prefix")) || !bytes.Equal(got[len(prefix):], v.record) {
				t.Fatalf("Seal =\n%x\nwant\n%x", got[len(prefix):], v.record)
			}
		})
	}
}

// TestOpenGolden opens the mbedTLS records, also with the CID record's type
// byte replaced by TypeMoveSession (which must authenticate the same way).
func TestOpenGolden(t *testing.T) {
	for _, v := range loadCCMVectors(t) {
		variants := map[string][]byte{"": v.record}
		if v.cid != nil {
			moved := bytes.Clone(v.record)
			moved[0] = byte(TypeMoveSession)
			variants["/move-session"] = moved
		}
		for suffix, raw := range variants {
			t.Run(v.name+suffix, func(t *testing.T) {
				c, err := NewCipher(v.key, v.iv)
				if err != nil {
					t.Fatal(err)
				}
				r, rest, err := ParseRecord(raw)
				if err != nil || len(rest) != 0 {
					t.Fatalf("ParseRecord: %v, %d bytes left", err, len(rest))
				}
				if r.Header.Epoch != v.epoch || r.Header.Seq != v.seq || !bytes.Equal(r.Header.CID, v.cid) {
					t.Fatalf("header = %+v", r.Header)
				}
				got, typ, err := c.Open([]byte("x"), &r)
				if err != nil {
					t.Fatal(err)
				}
				if typ != v.typ || !bytes.Equal(got, append([]byte("x"), v.content...)) {
					t.Fatalf("Open = %x type %v, want %x type %v", got[1:], typ, v.content, v.typ)
				}
			})
		}
	}
}

// TestOpenRejects flips every bit of a golden CID record, truncates it and
// uses the wrong key: each must fail with ErrBadRecordMAC (or a parse error
// for header bytes that change the layout), never succeed.
func TestOpenRejects(t *testing.T) {
	var v ccmVector
	for _, x := range loadCCMVectors(t) {
		if x.name == "cid-appdata-48" {
			v = x
		}
	}
	if v.record == nil {
		t.Fatal("vector cid-appdata-48 missing")
	}
	c, err := NewCipher(v.key, v.iv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(v.record) * 8 {
		raw := bytes.Clone(v.record)
		raw[i/8] ^= 1 << (i % 8)
		r, _, err := ParseRecord(raw)
		if err != nil {
			continue // the header no longer parses: rejected earlier
		}
		if _, _, err := c.Open(nil, &r); err == nil {
			t.Fatalf("flipping bit %d of byte %d still opens", i%8, i/8)
		}
	}
	r, _, err := ParseRecord(v.record)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCipher(make([]byte, KeyLen), v.iv)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = other.Open(nil, &r)
	if !errors.Is(err, ErrBadRecordMAC) {
		t.Fatalf("wrong key: err = %v", err)
	}
	if err.Error() != "dtls: bad record MAC" {
		t.Fatalf("error text %q", err)
	}
	for _, n := range []int{0, 1, Overhead - 1} {
		short := r
		short.Body = r.Body[:n]
		if _, _, err := c.Open(nil, &short); !errors.Is(err, ErrBadRecordMAC) {
			t.Fatalf("body of %d bytes: err = %v", n, err)
		}
	}
}

// TestOpenAllZeroInner rejects a CID record whose inner plaintext has no
// content type even though it authenticates.
func TestOpenAllZeroInner(t *testing.T) {
	c, err := NewCipher(make([]byte, KeyLen), make([]byte, ImplicitIVLen))
	if err != nil {
		t.Fatal(err)
	}
	// Seal 16 zero bytes as a CID record's inner plaintext by hand.
	cid := mustHex("0102030405060708")
	h := Header{Type: TypeCID, Version: Version, Epoch: 1, Seq: 9, CID: cid, Length: 16 + Overhead}
	raw, err := AppendHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9}
	raw = append(raw, nonce[ImplicitIVLen:]...)
	var ad [HeaderLen + CIDLen + 1]byte
	raw = c.aead.Seal(raw, nonce, make([]byte, 16), additionalData(&ad, &h, 16))
	r, _, err := ParseRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Open(nil, &r); !errors.Is(err, ErrNoContentType) {
		t.Fatalf("err = %v, want ErrNoContentType", err)
	}
}

// TestSealErrors checks Seal's refusals and that dst is left as it was.
func TestSealErrors(t *testing.T) {
	c, err := NewCipher(make([]byte, KeyLen), make([]byte, ImplicitIVLen))
	if err != nil {
		t.Fatal(err)
	}
	cid := mustHex("0102030405060708")
	tests := []struct {
		name    string
		typ     ContentType
		seq     uint64
		cid     []byte
		content []byte
		want    error
	}{
		{"seq overflow", TypeApplicationData, MaxSeq + 1, nil, nil, ErrSeqOverflow},
		{"short cid", TypeApplicationData, 1, []byte{1, 2, 3}, nil, ErrBadCID},
		{"too large", TypeApplicationData, 1, nil, make([]byte, MaxFragmentLen), ErrRecordTooLarge},
		{"type zero in a cid record", 0, 1, cid, nil, ErrBadContentType},
		{"cid type as content", TypeCID, 1, cid, nil, ErrBadContentType},
		{"move session type as content", TypeMoveSession, 1, nil, nil, ErrBadContentType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := c.Seal(dst, tt.typ, 1, tt.seq, tt.cid, tt.content)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if string(out) != "keep" {
				t.Fatalf("dst = %q", out)
			}
		})
	}
	for _, kl := range [][2]int{{15, 4}, {16, 3}, {32, 4}} {
		if _, err := NewCipher(make([]byte, kl[0]), make([]byte, kl[1])); err == nil {
			t.Errorf("NewCipher(%d-byte key, %d-byte IV) succeeded", kl[0], kl[1])
		}
	}
}

// TestSealOpenRoundTrip seals and opens records of every size up to two
// padding blocks, with and without a CID.
func TestSealOpenRoundTrip(t *testing.T) {
	key := mustHex("000102030405060708090a0b0c0d0e0f")
	c, err := NewCipher(key, []byte{9, 8, 7, 6})
	if err != nil {
		t.Fatal(err)
	}
	for _, cid := range [][]byte{nil, mustHex("0001020304050607")} {
		for n := range 40 {
			content := bytes.Repeat([]byte{byte(n)}, n)
			raw, err := c.Seal(nil, TypeApplicationData, 1, uint64(n), cid, content)
			if err != nil {
				t.Fatal(err)
			}
			r, rest, err := ParseRecord(raw)
			if err != nil || len(rest) != 0 {
				t.Fatalf("n=%d: %v", n, err)
			}
			got, typ, err := c.Open(nil, &r)
			if err != nil || typ != TypeApplicationData || !bytes.Equal(got, content) {
				t.Fatalf("n=%d cid=%x: Open = %x %v %v", n, cid, got, typ, err)
			}
		}
	}
}

// TestCipherConcurrent seals and opens from several goroutines at once on
// one Cipher (run with -race).
func TestCipherConcurrent(t *testing.T) {
	c, err := NewCipher(make([]byte, KeyLen), []byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	cid := mustHex("0102030405060708")
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 200 {
				content := []byte{byte(g), byte(i)}
				raw, err := c.Seal(nil, TypeApplicationData, 1, uint64(g*1000+i), cid, content)
				if err != nil {
					errs <- err
					return
				}
				r, _, err := ParseRecord(raw)
				if err != nil {
					errs <- err
					return
				}
				got, _, err := c.Open(nil, &r)
				if err != nil || !bytes.Equal(got, content) {
					errs <- errors.Join(err, errors.New("content differs"))
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
