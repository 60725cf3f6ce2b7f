package dtls

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"testing"
)

// BenchmarkClientHelloUnmarshal decodes OpenSSL's second ClientHello (the
// one carrying the cookie) from testdata/openssl-handshake.txt.
func BenchmarkClientHelloUnmarshal(b *testing.B) {
	var body []byte
	for _, m := range loadCapture(b) {
		h, bd, _, err := ParseHandshakeFragment(m.raw)
		if err == nil && h.Type == HandshakeClientHello {
			body = bd // the last one has the cookie
		}
	}
	if body == nil {
		b.Fatal("no ClientHello captured")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var ch ClientHello
		if err := ch.Unmarshal(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignServerKeyExchange signs one ServerKeyExchange, the ECDSA
// operation a verified ClientHello costs the server.
func BenchmarkSignServerKeyExchange(b *testing.B) {
	key, ske := unsignedSKE(b)
	var cr, sr [RandomLen]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := SignServerKeyExchange(rand.Reader, key, &cr, &sr, &ske); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCookieVerify checks a cookie, the work a spoofed or replayed
// ClientHello costs the server before any signature.
func BenchmarkCookieVerify(b *testing.B) {
	c, err := NewCookies(make([]byte, CookieSecretLen))
	if err != nil {
		b.Fatal(err)
	}
	_ = c.Rotate(make([]byte, CookieSecretLen))
	ch := &ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8}, CompressionMethods: []byte{0}}
	addr := netip.MustParseAddrPort("198.51.100.4:40000")
	ch.Cookie = c.Make(addr, ch)
	b.ReportAllocs()
	for b.Loop() {
		if !c.Verify(addr, ch) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkVerifyCertificateVerify checks a device's CertificateVerify, the
// second public-key operation of every full handshake.
func BenchmarkVerifyCertificateVerify(b *testing.B) {
	key := mustP256(b)
	sum := sha256.Sum256([]byte("transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	cv := CertificateVerify{SignatureAlgorithm: SigECDSASecp256r1SHA256, Signature: sig}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyCertificateVerify(&key.PublicKey, sum[:], &cv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDHSharedSecret computes the pre-master secret from the
// device's point, the third public-key operation of a full handshake.
func BenchmarkECDHSharedSecret(b *testing.B) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	point := peer.PublicKey().Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ECDHSharedSecret(priv, point); err != nil {
			b.Fatal(err)
		}
	}
}
