package dtls

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ServerCrypto does the P-256 work of a server handshake other than the
// ServerKeyExchange signature (ServerConfig.Key or Signer): the ephemeral
// ECDHE key and the check of the device's CertificateVerify. A nil
// ServerConfig.Crypto means Go's crypto/ecdh and crypto/ecdsa; the openssl
// build's (internal/p256) also implements VerifyingECDH
// (docs/dtls.md#speed). Implementations must be safe for concurrent use.
type ServerCrypto interface {
	// GenerateECDHE returns a new ephemeral P-256 key.
	GenerateECDHE() (ECDHEKey, error)
	// Verify reports whether sig, an ASN.1 ECDSA signature, signs the
	// SHA-256 digest with the device key pub, whose SubjectPublicKeyInfo
	// DER is spki (the same key; an implementation may key a cache by it).
	Verify(spki []byte, pub *ecdsa.PublicKey, digest, sig []byte) bool
}

// VerifyingECDH is what a ServerCrypto may also implement to check the
// device's CertificateVerify and derive the ECDH secret in one call: the
// server then defers the derivation from the ClientKeyExchange to the
// CertificateVerify that follows it in the same flight. For an
// implementation in C it halves the crossings per handshake
// (docs/dtls.md#speed).
type VerifyingECDH interface {
	// VerifyECDH reports, as Verify does, whether sig signs digest with pub
	// (spki is its SubjectPublicKeyInfo), and returns the x coordinate of
	// eph's key times peer, an uncompressed P-256 point, refusing points
	// off the curve, the identity and other encodings with an error. eph
	// was made by the same ServerCrypto's GenerateECDHE.
	VerifyECDH(spki []byte, pub *ecdsa.PublicKey, digest, sig []byte, eph ECDHEKey, peer []byte) (verified bool, secret []byte, err error)
}

// ECDHEKey is the ephemeral P-256 key of one handshake.
type ECDHEKey interface {
	// PublicKey returns the key's uncompressed point (65 bytes).
	PublicKey() []byte
	// SharedSecret returns the x coordinate of the key times peer, an
	// uncompressed P-256 point; it refuses points off the curve, the
	// identity and other encodings.
	SharedSecret(peer []byte) ([]byte, error)
}

// goCrypto is ServerCrypto on Go's crypto/ecdh and crypto/ecdsa.
type goCrypto struct{ rand io.Reader }

func (g goCrypto) GenerateECDHE() (ECDHEKey, error) {
	k, err := ecdh.P256().GenerateKey(g.rand)
	if err != nil {
		return nil, err
	}
	return goECDHE{k}, nil
}

func (goCrypto) Verify(_ []byte, pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(pub, digest, sig)
}

// goECDHE is an ECDHEKey from crypto/ecdh.
type goECDHE struct{ k *ecdh.PrivateKey }

func (g goECDHE) PublicKey() []byte { return g.k.PublicKey().Bytes() }

func (g goECDHE) SharedSecret(peer []byte) ([]byte, error) { return ECDHSharedSecret(g.k, peer) }

// defaultCrypto is Go's crypto with crypto/rand, made once so that a
// handshake does not box a new goCrypto.
var defaultCrypto ServerCrypto = goCrypto{cryptorand.Reader}

// crypto returns the configured ServerCrypto or Go's.
func (c *ServerConfig) crypto() ServerCrypto {
	switch {
	case c.Crypto != nil:
		return c.Crypto
	case c.Rand == nil:
		return defaultCrypto
	}
	return goCrypto{c.Rand}
}

// DefaultKeyCacheSize is the number of parsed device keys a KeyCache holds
// when its size is zero.
const DefaultKeyCacheSize = 4096

// KeyCache keeps device public keys already parsed, by their
// SubjectPublicKeyInfo bytes, so that a device that handshakes again (a
// fleet after a restart, a device that lost its session) costs no second
// parse. It holds at most Size keys and empties itself when full. It is safe
// for concurrent use; the zero value is ready.
type KeyCache struct {
	// Size bounds the keys held; zero means DefaultKeyCacheSize.
	Size int

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
}

// Parse returns the P-256 key of spki as ParseDevicePublicKey does, from
// the cache when it was parsed before. Keys that do not parse are not kept.
func (kc *KeyCache) Parse(spki []byte) (*ecdsa.PublicKey, error) {
	if kc == nil {
		return ParseDevicePublicKey(spki)
	}
	kc.mu.Lock()
	pub := kc.keys[string(spki)]
	kc.mu.Unlock()
	if pub != nil {
		return pub, nil
	}
	pub, err := ParseDevicePublicKey(spki)
	if err != nil {
		return nil, err
	}
	size := kc.Size
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	kc.mu.Lock()
	if kc.keys == nil || len(kc.keys) >= size {
		kc.keys = make(map[string]*ecdsa.PublicKey)
	}
	kc.keys[string(spki)] = pub
	kc.mu.Unlock()
	return pub, nil
}

// errNoKey is the error of a server config without a signing key.
var errNoKey = errors.New("dtls: server config has no key")

// verifyCertificateVerify checks cv with the configured crypto.
func (c *ServerConfig) verifyCertificateVerify(spki []byte, pub *ecdsa.PublicKey, transcriptHash []byte, cv *CertificateVerify) error {
	if cv.SignatureAlgorithm != SigECDSASecp256r1SHA256 {
		return fmt.Errorf("dtls: certificate verify: signature algorithm %#04x not supported", cv.SignatureAlgorithm)
	}
	if !c.crypto().Verify(spki, pub, transcriptHash, cv.Signature) {
		return ErrBadSignature
	}
	return nil
}
