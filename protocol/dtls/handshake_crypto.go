package dtls

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"sync"
)

// ErrBadSignature means an ECDSA signature in a handshake message does not
// verify.
var ErrBadSignature = errors.New("dtls: handshake signature does not verify")

// ParseDevicePublicKey parses the SubjectPublicKeyInfo of a raw-public-key
// Certificate (RFC 7250) and accepts only an ECDSA key on P-256.
func ParseDevicePublicKey(spki []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("dtls: device public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("dtls: device public key is not ECDSA P-256")
	}
	return pub, nil
}

// serverKeyExchangeDigest is SHA-256(client_random ‖ server_random ‖ params),
// the digest a ServerKeyExchange signature covers (RFC 8422 §5.4).
func serverKeyExchangeDigest(clientRandom, serverRandom *[RandomLen]byte, ske *ServerKeyExchange) []byte {
	d := serverKeyExchangeSum(clientRandom, serverRandom, ske)
	return d[:]
}

// serverKeyExchangeSum is serverKeyExchangeDigest as an array, hashed from
// a stack buffer when the point is of a usual size.
func serverKeyExchangeSum(clientRandom, serverRandom *[RandomLen]byte, ske *ServerKeyExchange) [sha256.Size]byte {
	var buf [2*RandomLen + 4 + 2*66 + 1]byte // up to a P-521-sized point
	if len(ske.PublicKey) > len(buf)-2*RandomLen-4 {
		h := sha256.New()
		h.Write(clientRandom[:])
		h.Write(serverRandom[:])
		h.Write(ske.Params())
		var d [sha256.Size]byte
		h.Sum(d[:0])
		return d
	}
	b := append(append(buf[:0], clientRandom[:]...), serverRandom[:]...)
	return sha256.Sum256(ske.appendParams(b))
}

// SignServerKeyExchange signs ske's ECDHE parameters together with both
// hello randoms with the server's P-256 key, filling in SignatureAlgorithm
// (ecdsa_secp256r1_sha256) and an ASN.1 Signature. rand is the entropy
// source of a hedged signature; nil signs deterministically (RFC 6979), as
// the server does: the signed parameters already hold the server's fresh
// random and ephemeral key, so no message is ever signed twice, and it
// costs a quarter less CPU than Go's hedged signing (docs/dtls.md#speed).
func SignServerKeyExchange(rand io.Reader, key *ecdsa.PrivateKey, clientRandom, serverRandom *[RandomLen]byte, ske *ServerKeyExchange) error {
	if key == nil || key.Curve != elliptic.P256() {
		return errors.New("dtls: server key is not ECDSA P-256")
	}
	digest := serverKeyExchangeSum(clientRandom, serverRandom, ske)
	var sig []byte
	var err error
	if rand == nil {
		sig, err = key.Sign(nil, digest[:], crypto.SHA256)
	} else {
		sig, err = ecdsa.SignASN1(rand, key, digest[:])
	}
	if err != nil {
		return fmt.Errorf("dtls: sign server key exchange: %w", err)
	}
	ske.SignatureAlgorithm, ske.Signature = SigECDSASecp256r1SHA256, sig
	return nil
}

// VerifyServerKeyExchange checks ske's signature with the server's public key,
// as a device does with its pinned server key.
func VerifyServerKeyExchange(pub *ecdsa.PublicKey, clientRandom, serverRandom *[RandomLen]byte, ske *ServerKeyExchange) error {
	if ske.SignatureAlgorithm != SigECDSASecp256r1SHA256 {
		return fmt.Errorf("dtls: server key exchange: signature algorithm %#04x not supported", ske.SignatureAlgorithm)
	}
	if !ecdsa.VerifyASN1(pub, serverKeyExchangeDigest(clientRandom, serverRandom, ske), ske.Signature) {
		return ErrBadSignature
	}
	return nil
}

// VerifyCertificateVerify checks the device's CertificateVerify signature
// against transcriptHash, the SHA-256 hash of every handshake message before
// the CertificateVerify (each in unfragmented form, see HandshakeMessage.Raw).
func VerifyCertificateVerify(pub *ecdsa.PublicKey, transcriptHash []byte, cv *CertificateVerify) error {
	if cv.SignatureAlgorithm != SigECDSASecp256r1SHA256 {
		return fmt.Errorf("dtls: certificate verify: signature algorithm %#04x not supported", cv.SignatureAlgorithm)
	}
	if len(transcriptHash) != sha256.Size {
		return errors.New("dtls: certificate verify: transcript hash is not SHA-256")
	}
	if !ecdsa.VerifyASN1(pub, transcriptHash, cv.Signature) {
		return ErrBadSignature
	}
	return nil
}

// ECDHSharedSecret returns the ECDHE pre-master secret: the x coordinate of
// priv times the peer's uncompressed P-256 point. Points off the curve, the
// identity and compressed encodings are refused.
func ECDHSharedSecret(priv *ecdh.PrivateKey, peerPoint []byte) ([]byte, error) {
	if priv == nil || priv.Curve() != ecdh.P256() {
		return nil, errors.New("dtls: ECDH key is not P-256")
	}
	peer, err := ecdh.P256().NewPublicKey(peerPoint)
	if err != nil {
		return nil, fmt.Errorf("dtls: peer ECDH point: %w", err)
	}
	secret, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("dtls: ECDH: %w", err)
	}
	return secret, nil
}

// CookieLen is the length of the HelloVerifyRequest cookies Wick issues.
const CookieLen = 32

// CookieSecretLen is the length of a cookie secret.
const CookieSecretLen = 32

// Cookies issues and checks stateless HelloVerifyRequest cookies: an
// HMAC-SHA256 over the client's address and port and the ClientHello fields
// other than the cookie, keyed with a secret the caller rotates. A cookie
// made under the previous secret is still accepted, so rotation never
// rejects a client in the middle of its handshake. It is safe for
// concurrent use.
type Cookies struct {
	mu       sync.RWMutex
	current  *cookieKey
	previous *cookieKey // nil before the first rotation
}

// cookieKey is one cookie secret with a pool of MAC states keyed with it,
// so that a cookie costs no new HMAC.
type cookieKey struct {
	secret [CookieSecretLen]byte
	macs   sync.Pool // of *cookieMACState
}

// cookieMACState is a keyed HMAC, a buffer for the ClientHello bytes and
// one for the MAC (a local one would escape into the hash.Hash call).
type cookieMACState struct {
	h   hash.Hash
	buf []byte
	sum [CookieLen]byte
}

func newCookieKey(secret []byte) *cookieKey {
	k := &cookieKey{}
	copy(k.secret[:], secret)
	return k
}

// NewCookies returns a cookie issuer keyed with secret (CookieSecretLen
// random bytes).
func NewCookies(secret []byte) (*Cookies, error) {
	if len(secret) != CookieSecretLen {
		return nil, fmt.Errorf("dtls: cookie secret must be %d bytes", CookieSecretLen)
	}
	return &Cookies{current: newCookieKey(secret)}, nil
}

// Rotate makes secret the current key and keeps the old one for checking.
func (c *Cookies) Rotate(secret []byte) error {
	if len(secret) != CookieSecretLen {
		return fmt.Errorf("dtls: cookie secret must be %d bytes", CookieSecretLen)
	}
	k := newCookieKey(secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.previous, c.current = c.current, k
	return nil
}

// Make returns the cookie for a ClientHello from addr.
func (c *Cookies) Make(addr netip.AddrPort, ch *ClientHello) []byte {
	return c.mac(make([]byte, 0, CookieLen), addr, ch)
}

// mac appends the cookie for a ClientHello from addr to dst.
func (c *Cookies) mac(dst []byte, addr netip.AddrPort, ch *ClientHello) []byte {
	c.mu.RLock()
	key := c.current
	c.mu.RUnlock()
	return key.mac(dst, addr, ch)
}

// Verify reports, in constant time with respect to the cookie's contents,
// whether ch carries the cookie Make would return for it from addr under the
// current or the previous secret.
func (c *Cookies) Verify(addr netip.AddrPort, ch *ClientHello) bool {
	if len(ch.Cookie) != CookieLen {
		return false
	}
	c.mu.RLock()
	cur, prev := c.current, c.previous
	c.mu.RUnlock()
	ok := cur.check(addr, ch)
	if prev != nil {
		ok = prev.check(addr, ch) || ok
	}
	return ok
}

// check reports, in constant time, whether ch's cookie is the one mac
// makes for it from addr.
func (k *cookieKey) check(addr netip.AddrPort, ch *ClientHello) bool {
	st := k.state()
	ok := hmac.Equal(ch.Cookie, k.macWith(st, st.sum[:0], addr, ch))
	k.macs.Put(st)
	return ok
}

// state takes a MAC state from the pool, or makes one.
func (k *cookieKey) state() *cookieMACState {
	st, _ := k.macs.Get().(*cookieMACState)
	if st == nil {
		st = &cookieMACState{h: hmac.New(sha256.New, k.secret[:])}
	}
	return st
}

// mac appends HMAC-SHA256(secret, addr ‖ port ‖ ClientHello without its
// cookie) to dst. Every variable-length field is length-prefixed by its
// wire form, so distinct inputs cannot collide.
func (k *cookieKey) mac(dst []byte, addr netip.AddrPort, ch *ClientHello) []byte {
	st := k.state()
	dst = k.macWith(st, dst, addr, ch)
	k.macs.Put(st)
	return dst
}

// macWith is mac with the MAC state st.
func (k *cookieKey) macWith(st *cookieMACState, dst []byte, addr netip.AddrPort, ch *ClientHello) []byte {
	a := addr.Addr().Unmap().As16()
	b := append(st.buf[:0], a[:]...)
	b = binary.BigEndian.AppendUint16(b, addr.Port())
	b = ch.appendTo(b, nil)
	st.h.Reset()
	st.h.Write(b)
	dst = st.h.Sum(dst)
	if cap(b) <= 1024 {
		st.buf = b
	}
	return dst
}
