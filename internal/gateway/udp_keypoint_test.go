package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"
)

// TestKeyPoint: the key cache's index is the key's uncompressed point for a
// P-256 key, and nothing for other keys.
func TestKeyPoint(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p256.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  *ecdsa.PublicKey
		ok   bool
	}{
		{"P-256", &p256.PublicKey, true},
		{"nil", nil, false},
		{"P-384", &p384.PublicKey, false},
		{"no coordinates", &ecdsa.PublicKey{Curve: elliptic.P256()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, ok := keyPoint(tt.pub)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && !bytes.Equal(pt[:], want) {
				t.Fatalf("point %x, want %x", pt, want)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { keyPoint(&p256.PublicKey) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// BenchmarkUDPLookupKeyHit is the device key check of a handshake whose
// key is in the cache, as lookupKey runs it twice per Gen 3 handshake. The
// cache holds the key under its point and its SubjectPublicKeyInfo, so the
// benchmark also runs against the index before keyPoint.
func BenchmarkUDPLookupKeyHit(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	e := keyEntry{id: "device", ok: true, at: time.Now()}
	u := &udpServer{keys: map[string]keyEntry{string(der): e, string(pt): e}}
	b.ReportAllocs()
	for b.Loop() {
		if got, err := u.lookupKey(&k.PublicKey); err != nil || !got.ok {
			b.Fatal(err)
		}
	}
}
