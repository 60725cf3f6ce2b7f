package dtls

import (
	"bytes"
	"testing"
)

// benchCipher returns a Cipher and a 100-byte CoAP-sized payload.
func benchCipher(b *testing.B) (*Cipher, []byte) {
	c, err := NewCipher(bytes.Repeat([]byte{7}, KeyLen), []byte{1, 2, 3, 4})
	if err != nil {
		b.Fatal(err)
	}
	return c, bytes.Repeat([]byte{0x42}, 100)
}

// BenchmarkSeal100 seals a 100-byte record as the server does (no CID).
func BenchmarkSeal100(b *testing.B) {
	c, content := benchCipher(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(content)))
	for i := 0; b.Loop(); i++ {
		if _, err := c.Seal(buf[:0], TypeApplicationData, 1, uint64(i), nil, content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen100CID opens a 100-byte connection-ID record as the server
// receives them from a device.
func BenchmarkOpen100CID(b *testing.B) {
	c, content := benchCipher(b)
	raw, err := c.Seal(nil, TypeApplicationData, 1, 42, []byte{1, 2, 3, 4, 5, 6, 7, 8}, content)
	if err != nil {
		b.Fatal(err)
	}
	r, _, err := ParseRecord(raw)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		if _, _, err := c.Open(out[:0], &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRecord splits a CID record off a datagram.
func BenchmarkParseRecord(b *testing.B) {
	c, content := benchCipher(b)
	raw, err := c.Seal(nil, TypeApplicationData, 1, 42, []byte{1, 2, 3, 4, 5, 6, 7, 8}, content)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRecord(raw); err != nil {
			b.Fatal(err)
		}
	}
}
