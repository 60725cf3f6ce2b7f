package dtls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/netip"
	"sync"
	"testing"
)

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// unsignedSKE returns a signing key and a ServerKeyExchange of a fresh
// ephemeral P-256 key, not yet signed.
func unsignedSKE(t testing.TB) (*ecdsa.PrivateKey, ServerKeyExchange) {
	t.Helper()
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mustP256(t), ServerKeyExchange{NamedCurve: GroupSecp256r1, PublicKey: eph.PublicKey().Bytes()}
}

func TestSignServerKeyExchange(t *testing.T) {
	key, ske := unsignedSKE(t)
	var cr, sr [RandomLen]byte
	cr[0], sr[0] = 1, 2
	if err := SignServerKeyExchange(rand.Reader, key, &cr, &sr, &ske); err != nil {
		t.Fatal(err)
	}
	if ske.SignatureAlgorithm != SigECDSASecp256r1SHA256 {
		t.Fatalf("algorithm %#x", ske.SignatureAlgorithm)
	}
	var back ServerKeyExchange
	if err := back.Unmarshal(ske.Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := VerifyServerKeyExchange(&key.PublicKey, &cr, &sr, &back); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(pub **ecdsa.PublicKey, cr, sr *[RandomLen]byte, s *ServerKeyExchange)
	}{
		{"other key", func(pub **ecdsa.PublicKey, _, _ *[RandomLen]byte, _ *ServerKeyExchange) {
			*pub = &mustP256(t).PublicKey
		}},
		{"client random", func(_ **ecdsa.PublicKey, cr, _ *[RandomLen]byte, _ *ServerKeyExchange) { cr[5] ^= 1 }},
		{"server random", func(_ **ecdsa.PublicKey, _, sr *[RandomLen]byte, _ *ServerKeyExchange) { sr[31] ^= 1 }},
		{"curve", func(_ **ecdsa.PublicKey, _, _ *[RandomLen]byte, s *ServerKeyExchange) { s.NamedCurve = 0x1d }},
		{"algorithm", func(_ **ecdsa.PublicKey, _, _ *[RandomLen]byte, s *ServerKeyExchange) { s.SignatureAlgorithm = 0x0401 }},
		{"signature", func(_ **ecdsa.PublicKey, _, _ *[RandomLen]byte, s *ServerKeyExchange) {
			s.Signature = append([]byte(nil), s.Signature...)
			s.Signature[len(s.Signature)-1] ^= 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, c, s, m := &key.PublicKey, cr, sr, back
			tt.mutate(&pub, &c, &s, &m)
			if err := VerifyServerKeyExchange(pub, &c, &s, &m); err == nil {
				t.Fatal("verified")
			}
		})
	}
	if err := SignServerKeyExchange(rand.Reader, nil, &cr, &sr, &ske); err == nil {
		t.Fatal("signed with no key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err := SignServerKeyExchange(rand.Reader, p384, &cr, &sr, &ske); err == nil {
		t.Fatal("signed with a P-384 key")
	}
}

// TestSignServerKeyExchangeDeterministic: with no reader (the server's
// way) the signature is RFC 6979's, the same for the same parameters and
// another for other ones, and verifies like a hedged one.
func TestSignServerKeyExchangeDeterministic(t *testing.T) {
	key, unsigned := unsignedSKE(t)
	var cr, sr [RandomLen]byte
	cr[0], sr[0] = 1, 2
	sign := func(sr [RandomLen]byte) ServerKeyExchange {
		t.Helper()
		ske := unsigned
		if err := SignServerKeyExchange(nil, key, &cr, &sr, &ske); err != nil {
			t.Fatal(err)
		}
		if err := VerifyServerKeyExchange(&key.PublicKey, &cr, &sr, &ske); err != nil {
			t.Fatal(err)
		}
		return ske
	}
	a, b := sign(sr), sign(sr)
	if !bytes.Equal(a.Signature, b.Signature) {
		t.Fatal("two signatures of the same parameters differ")
	}
	sr[31] ^= 1
	if c := sign(sr); bytes.Equal(a.Signature, c.Signature) {
		t.Fatal("another server random, the same signature")
	}
}

func TestVerifyCertificateVerify(t *testing.T) {
	key := mustP256(t)
	sum := sha256.Sum256([]byte("transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	cv := CertificateVerify{SignatureAlgorithm: SigECDSASecp256r1SHA256, Signature: sig}
	if err := VerifyCertificateVerify(&key.PublicKey, sum[:], &cv); err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("other"))
	if err := VerifyCertificateVerify(&key.PublicKey, other[:], &cv); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other transcript: %v", err)
	}
	if err := VerifyCertificateVerify(&key.PublicKey, sum[:20], &cv); err == nil {
		t.Fatal("short hash accepted")
	}
	cv.SignatureAlgorithm = 0x0503
	if err := VerifyCertificateVerify(&key.PublicKey, sum[:], &cv); err == nil {
		t.Fatal("ecdsa_secp384r1_sha384 accepted")
	}
}

func TestParseDevicePublicKey(t *testing.T) {
	p256 := mustP256(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der := func(k any) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := der(&p256.PublicKey)
	if len(good) != 91 {
		t.Fatalf("P-256 SPKI is %d bytes, want 91", len(good))
	}
	tests := []struct {
		name string
		spki []byte
		ok   bool
	}{
		{"P-256", good, true},
		{"P-384", der(&p384.PublicKey), false},
		{"Ed25519", der(edPub), false},
		{"truncated", good[:80], false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseDevicePublicKey(tt.spki)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if tt.ok && !k.Equal(&p256.PublicKey) {
				t.Fatal("different key")
			}
		})
	}
}

func TestECDHSharedSecret(t *testing.T) {
	a, _ := ecdh.P256().GenerateKey(rand.Reader)
	b, _ := ecdh.P256().GenerateKey(rand.Reader)
	s1, err := ECDHSharedSecret(a, b.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ECDHSharedSecret(b, a.PublicKey().Bytes())
	if err != nil || !bytes.Equal(s1, s2) || len(s1) != 32 {
		t.Fatalf("secrets differ or wrong size: %x %x %v", s1, s2, err)
	}
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	offCurve := b.PublicKey().Bytes()
	offCurve[64] ^= 1
	tests := []struct {
		name  string
		priv  *ecdh.PrivateKey
		point []byte
	}{
		{"off curve", a, offCurve},
		{"compressed", a, append([]byte{2}, b.PublicKey().Bytes()[1:33]...)},
		{"identity", a, []byte{0}},
		{"empty", a, nil},
		{"X25519 key", x25519, b.PublicKey().Bytes()},
		{"nil key", nil, b.PublicKey().Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ECDHSharedSecret(tt.priv, tt.point); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCookies(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, CookieSecretLen)
	c, err := NewCookies(secret)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort("192.0.2.7:5684")
	ch := &ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8}, CompressionMethods: []byte{0}}
	ch.Random[0] = 9
	cookie := c.Make(addr, ch)
	if len(cookie) != CookieLen {
		t.Fatalf("cookie of %d bytes", len(cookie))
	}
	with := *ch
	with.Cookie = cookie
	if !c.Verify(addr, &with) {
		t.Fatal("own cookie refused")
	}
	// The same client on the IPv4-mapped IPv6 form of its address is the same client.
	if !c.Verify(netip.MustParseAddrPort("[::ffff:192.0.2.7]:5684"), &with) {
		t.Fatal("IPv4-mapped address refused")
	}
	tests := []struct {
		name   string
		addr   netip.AddrPort
		mutate func(*ClientHello)
	}{
		{"other port", netip.MustParseAddrPort("192.0.2.7:5685"), func(*ClientHello) {}},
		{"other address", netip.MustParseAddrPort("192.0.2.8:5684"), func(*ClientHello) {}},
		{"other random", addr, func(h *ClientHello) { h.Random[1] = 1 }},
		{"other suites", addr, func(h *ClientHello) { h.CipherSuites = []uint16{0xc02b} }},
		{"other extensions", addr, func(h *ClientHello) { h.Extensions = []Extension{{Type: 1}} }},
		{"flipped cookie", addr, func(h *ClientHello) { h.Cookie = append([]byte(nil), h.Cookie...); h.Cookie[3] ^= 1 }},
		{"short cookie", addr, func(h *ClientHello) { h.Cookie = h.Cookie[:16] }},
		{"no cookie", addr, func(h *ClientHello) { h.Cookie = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := with
			tt.mutate(&h)
			if c.Verify(tt.addr, &h) {
				t.Fatal("accepted")
			}
		})
	}

	// After one rotation the old cookie still works; after two it does not.
	if err := c.Rotate(bytes.Repeat([]byte{2}, CookieSecretLen)); err != nil {
		t.Fatal(err)
	}
	if !c.Verify(addr, &with) {
		t.Fatal("cookie from the previous secret refused")
	}
	fresh := with
	fresh.Cookie = c.Make(addr, ch)
	if bytes.Equal(fresh.Cookie, cookie) || !c.Verify(addr, &fresh) {
		t.Fatal("rotation did not change the cookie, or the new one is refused")
	}
	if err := c.Rotate(bytes.Repeat([]byte{3}, CookieSecretLen)); err != nil {
		t.Fatal(err)
	}
	if c.Verify(addr, &with) {
		t.Fatal("cookie from two secrets ago accepted")
	}
	if _, err := NewCookies(secret[:5]); err == nil {
		t.Fatal("short secret accepted")
	}
	if err := c.Rotate(nil); err == nil {
		t.Fatal("empty rotation accepted")
	}
}

func TestCookiesConcurrentRotate(t *testing.T) {
	c, _ := NewCookies(make([]byte, CookieSecretLen))
	addr := netip.MustParseAddrPort("127.0.0.1:1")
	ch := &ClientHello{CipherSuites: []uint16{1}, CompressionMethods: []byte{0}}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				if i == 0 {
					_ = c.Rotate(bytes.Repeat([]byte{byte(j)}, CookieSecretLen))
					continue
				}
				h := *ch
				h.Cookie = c.Make(addr, ch)
				_ = c.Verify(addr, &h)
			}
		})
	}
	wg.Wait()
}
