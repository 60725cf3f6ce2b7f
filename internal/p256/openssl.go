//go:build openssl && cgo

package p256

/*
#cgo LDFLAGS: -lcrypto
#cgo CFLAGS: -Wno-deprecated-declarations
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/err.h>

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
*/
import "C"

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
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
// signature and self-tests it. The other operations stay with Go: called
// through EC_KEY from this process, OpenSSL's verification, ECDH and key
// generation made whole handshakes slower than crypto/ecdsa's and
// crypto/ecdh's (docs/dtls.md#speed).
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
