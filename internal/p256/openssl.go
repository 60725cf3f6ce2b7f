//go:build openssl && cgo

package p256

/*
#cgo LDFLAGS: -lcrypto
#cgo CFLAGS: -Wno-deprecated-declarations
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/err.h>
#include <openssl/bn.h>

// The EC_KEY functions are deprecated in OpenSSL 3.0 but present in 1.1.1
// and every 3.x; they skip the provider lookups of the EVP layer.

// wick_group is P-256, made once (wick_init) and only read after.
static EC_GROUP *wick_group;

static int wick_init(void) {
	wick_group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	ERR_clear_error();
	return wick_group != NULL;
}

// wick_keygen makes an ephemeral key and writes its uncompressed point
// (65 bytes) to pub; NULL on failure.
static EC_KEY *wick_keygen(unsigned char *pub) {
	EC_KEY *k = EC_KEY_new();
	if (k == NULL || !EC_KEY_set_group(k, wick_group) || !EC_KEY_generate_key(k)) goto fail;
	if (EC_POINT_point2oct(wick_group, EC_KEY_get0_public_key(k), POINT_CONVERSION_UNCOMPRESSED, pub, 65, NULL) != 65) goto fail;
	ERR_clear_error();
	return k;
fail:
	EC_KEY_free(k);
	ERR_clear_error();
	return NULL;
}

// wick_keygen_loop makes and frees n keys; 1 if every one succeeded.
static int wick_keygen_loop(int n) {
	unsigned char pub[65];
	for (int i = 0; i < n; i++) {
		EC_KEY *k = wick_keygen(pub);
		if (k == NULL) return 0;
		EC_KEY_free(k);
	}
	return 1;
}

// wick_priv parses a SEC 1 ECPrivateKey; NULL on failure.
static EC_KEY *wick_priv(const unsigned char *der, long len) {
	const unsigned char *p = der;
	EC_KEY *k = d2i_ECPrivateKey(NULL, &p, len);
	ERR_clear_error();
	return k;
}

// wick_sign signs a 32-byte digest; it returns the ASN.1 length or -1.
static int wick_sign(EC_KEY *k, const unsigned char *digest, unsigned char *sig, size_t cap) {
	unsigned int n = 0;
	if ((size_t)ECDSA_size(k) > cap || ECDSA_sign(0, digest, 32, sig, &n, k) != 1) n = 0;
	ERR_clear_error();
	return n == 0 ? -1 : (int)n;
}
// wick_pub makes a verification key from an uncompressed point (65
// bytes); NULL when it is not a point of the curve.
static EC_KEY *wick_pub(const unsigned char *pt) {
	EC_KEY *k = EC_KEY_new();
	EC_POINT *p = EC_POINT_new(wick_group);
	if (k == NULL || p == NULL || !EC_KEY_set_group(k, wick_group) ||
		EC_POINT_oct2point(wick_group, p, pt, 65, NULL) != 1 || !EC_KEY_set_public_key(k, p)) {
		EC_KEY_free(k);
		k = NULL;
	}
	EC_POINT_free(p);
	ERR_clear_error();
	return k;
}

// wick_verify_ecdh checks an ASN.1 signature of a 32-byte digest with dev
// (bit 1 of the result) and writes the x coordinate of scalar (32 bytes,
// big-endian) times peer (an uncompressed point, 65 bytes, which
// oct2point checks is on the curve) to out (bit 2): the CertificateVerify
// and the ECDH derivation of a handshake in one call from Go.
static int wick_verify_ecdh(EC_KEY *dev, const unsigned char *digest, const unsigned char *sig, int siglen,
		const unsigned char *scalar, const unsigned char *peer, unsigned char *out) {
	int r = ECDSA_verify(0, digest, 32, sig, siglen, dev) == 1;
	BN_CTX *ctx = BN_CTX_new();
	EC_POINT *p = EC_POINT_new(wick_group), *q = EC_POINT_new(wick_group);
	BIGNUM *k = BN_secure_new(), *x = BN_new();
	if (ctx != NULL && p != NULL && q != NULL && k != NULL && x != NULL && BN_bin2bn(scalar, 32, k) != NULL) {
		BN_set_flags(k, BN_FLG_CONSTTIME);
		if (EC_POINT_oct2point(wick_group, p, peer, 65, ctx) == 1 &&
			EC_POINT_mul(wick_group, q, NULL, p, k, ctx) == 1 && !EC_POINT_is_at_infinity(wick_group, q) &&
			EC_POINT_get_affine_coordinates(wick_group, q, x, NULL, ctx) == 1 && BN_bn2binpad(x, out, 32) == 32)
			r |= 2;
	}
	BN_clear_free(k);
	BN_free(x);
	EC_POINT_clear_free(q);
	EC_POINT_free(p);
	BN_CTX_free(ctx);
	ERR_clear_error();
	return r;
}
*/
import "C"

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// Implementation names what Configure installs in this build.
const Implementation = NameOpenSSL

// maxSig is the largest ASN.1 ECDSA P-256 signature.
const maxSig = 72

var initOnce = sync.OnceValue(func() bool { return C.wick_init() == 1 })

// configure moves cfg.Key into libcrypto for the ServerKeyExchange
// signature and, unless cfg.Crypto is set, installs crypt, which checks
// the CertificateVerify and derives the ECDH secret in one call into
// libcrypto; both are self-tested against Go. Key generation stays with
// Go. Called one operation at a time from this process, OpenSSL's
// verification, ECDH and key generation made whole handshakes slower than
// Go's: each call into C costs several µs beside the same work in one C
// loop (docs/dtls.md#speed).
func configure(cfg *dtls.ServerConfig) error {
	if !initOnce() {
		return errors.New("p256: openssl: no P-256 group")
	}
	s, err := newSigner(cfg.Key)
	if err != nil {
		return err
	}
	if err := selfTest(cfg.Key, s); err != nil {
		return err
	}
	cfg.Signer = s
	if cfg.Crypto == nil {
		c := &crypt{}
		if err := c.selfTest(); err != nil {
			return err
		}
		cfg.Crypto = c
	}
	return nil
}

// crypt is a dtls.ServerCrypto and dtls.VerifyingECDH: ephemeral keys from
// Go's crypto/ecdh (as fast as libcrypto's from here), the device's
// CertificateVerify and the ECDH derivation in one call into libcrypto,
// whose verification is faster than Go's; one call instead of two halves
// the cost of crossing into C (docs/dtls.md#speed).
type crypt struct {
	mu   sync.Mutex
	keys map[string]*ecKey // device verification keys by SubjectPublicKeyInfo
}

// maxDeviceKeys bounds crypt's device keys; the map empties itself when full.
const maxDeviceKeys = dtls.DefaultKeyCacheSize

// ephKey is an ephemeral key from crypto/ecdh whose scalar crypt passes to C.
type ephKey struct{ k *ecdh.PrivateKey }

func (e *ephKey) PublicKey() []byte { return e.k.PublicKey().Bytes() }

func (e *ephKey) SharedSecret(peer []byte) ([]byte, error) { return dtls.ECDHSharedSecret(e.k, peer) }

// GenerateECDHE returns a crypto/ecdh key.
func (c *crypt) GenerateECDHE() (dtls.ECDHEKey, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &ephKey{k}, nil
}

// Verify checks with Go (the server calls VerifyECDH instead).
func (c *crypt) Verify(_ []byte, pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(pub, digest, sig)
}

// VerifyECDH checks the signature and derives the secret in one call into
// libcrypto. Inputs it cannot pass to C go to Go's crypto instead.
func (c *crypt) VerifyECDH(spki []byte, pub *ecdsa.PublicKey, digest, sig []byte, eph dtls.ECDHEKey, peer []byte) (bool, []byte, error) {
	e, ok := eph.(*ephKey)
	var dev *ecKey
	if ok && len(digest) == sha256.Size && len(sig) > 0 && len(peer) == 65 && peer[0] == 4 {
		dev = c.deviceKey(spki, pub)
	}
	if dev == nil {
		verified := ecdsa.VerifyASN1(pub, digest, sig)
		secret, err := eph.SharedSecret(peer)
		return verified, secret, err
	}
	scalar := e.k.Bytes()
	var out [32]byte
	r := C.wick_verify_ecdh(dev.k, (*C.uchar)(unsafe.Pointer(&digest[0])), (*C.uchar)(unsafe.Pointer(&sig[0])), C.int(len(sig)),
		(*C.uchar)(unsafe.Pointer(&scalar[0])), (*C.uchar)(unsafe.Pointer(&peer[0])), (*C.uchar)(unsafe.Pointer(&out[0])))
	runtime.KeepAlive(dev)
	clear(scalar)
	if r&2 == 0 {
		return r&1 != 0, nil, errors.New("p256: openssl: ECDH: the device's point is not on the curve")
	}
	return r&1 != 0, out[:], nil
}

// deviceKey returns the libcrypto key of pub, made once per
// SubjectPublicKeyInfo; nil when libcrypto refuses it.
func (c *crypt) deviceKey(spki []byte, pub *ecdsa.PublicKey) *ecKey {
	c.mu.Lock()
	k := c.keys[string(spki)]
	c.mu.Unlock()
	if k != nil {
		return k
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil
	}
	var pt [65]byte
	pt[0] = 4
	pub.X.FillBytes(pt[1:33])
	pub.Y.FillBytes(pt[33:])
	ck := C.wick_pub((*C.uchar)(unsafe.Pointer(&pt[0])))
	if ck == nil {
		return nil
	}
	k = newECKey(ck)
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxDeviceKeys {
		c.keys = make(map[string]*ecKey)
	}
	c.keys[string(spki)] = k
	c.mu.Unlock()
	return k
}

// selfTest checks VerifyECDH against Go: a good and a bad signature, and
// the secret of both sides.
func (c *crypt) selfTest() error {
	dev, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(&dev.PublicKey)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("wick p256 verify self-test"))
	sig, err := ecdsa.SignASN1(rand.Reader, dev, digest[:])
	if err != nil {
		return err
	}
	eph, err := c.GenerateECDHE()
	if err != nil {
		return err
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	want, err := dtls.ECDHSharedSecret(peer, eph.PublicKey())
	if err != nil {
		return err
	}
	ok, secret, err := c.VerifyECDH(spki, &dev.PublicKey, digest[:], sig, eph, peer.PublicKey().Bytes())
	if err != nil || !ok || string(secret) != string(want) {
		return fmt.Errorf("p256: openssl: verify/ECDH self-test: verified %v, secret agrees %v: %v", ok, string(secret) == string(want), err)
	}
	digest[0] ^= 1
	if ok, _, _ := c.VerifyECDH(spki, &dev.PublicKey, digest[:], sig, eph, peer.PublicKey().Bytes()); ok {
		return errors.New("p256: openssl: verify self-test: a wrong digest verified")
	}
	return nil
}

// ecKey owns one C EC_KEY, freed by a cleanup once the ecKey is
// unreachable.
type ecKey struct{ k *C.EC_KEY }

func newECKey(k *C.EC_KEY) *ecKey {
	e := &ecKey{k: k}
	runtime.AddCleanup(e, func(k *C.EC_KEY) { C.EC_KEY_free(k) }, k)
	return e
}

// signer is the server key in libcrypto: a crypto.Signer of SHA-256
// digests. Signing borrows one of a few copies of the key, so that signatures
// on several goroutines do not share an EC_KEY.
type signer struct {
	pub  *ecdsa.PublicKey
	der  []byte // SEC 1 DER, to make copies
	mu   sync.Mutex
	idle []*ecKey
}

func newSigner(priv *ecdsa.PrivateKey) (*signer, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("p256: server key is not P-256")
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("p256: server key: %w", err)
	}
	pub := priv.PublicKey
	return &signer{pub: &pub, der: der}, nil
}

// Public returns the *ecdsa.PublicKey.
func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest with OpenSSL's ECDSA (its own nonces; rand is
// unused) and returns an ASN.1 signature.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != sha256.Size {
		return nil, errors.New("p256: openssl: sign wants a SHA-256 digest")
	}
	k, err := s.get()
	if err != nil {
		return nil, err
	}
	sig := make([]byte, maxSig)
	n := C.wick_sign(k.k, (*C.uchar)(unsafe.Pointer(&digest[0])), (*C.uchar)(unsafe.Pointer(&sig[0])), C.size_t(len(sig)))
	s.put(k)
	if n < 0 {
		return nil, errors.New("p256: openssl: sign failed")
	}
	return sig[:n], nil
}

func (s *signer) get() (*ecKey, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		k := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return k, nil
	}
	s.mu.Unlock()
	k := C.wick_priv((*C.uchar)(unsafe.Pointer(&s.der[0])), C.long(len(s.der)))
	if k == nil {
		return nil, errors.New("p256: openssl: load server key")
	}
	return newECKey(k), nil
}

func (s *signer) put(k *ecKey) {
	s.mu.Lock()
	if len(s.idle) < 2*runtime.GOMAXPROCS(0) {
		s.idle = append(s.idle, k)
	}
	s.mu.Unlock()
}

// selfTest checks libcrypto against Go: a signature Go verifies.
func selfTest(priv *ecdsa.PrivateKey, s *signer) error {
	digest := sha256.Sum256([]byte("wick p256 self-test"))
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("p256: self-test: %w", err)
	}
	if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
		return errors.New("p256: self-test: Go refuses OpenSSL's signature")
	}
	return nil
}

// keygens makes and frees n ephemeral keys in one call into libcrypto; the
// benchmarks price OpenSSL's key generation with it (`openssl speed` has no
// such figure).
func keygens(n int) bool { return initOnce() && C.wick_keygen_loop(C.int(n)) == 1 }
