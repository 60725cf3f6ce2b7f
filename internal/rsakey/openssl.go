//go:build openssl && cgo

package rsakey

/*
#cgo LDFLAGS: -lcrypto
#include <stdlib.h>
#include <openssl/opensslv.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/err.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/params.h>
#endif

// wick_errstr copies the oldest queued OpenSSL error into buf and clears
// this thread's queue (goroutines move between threads; nothing may stay).
static void wick_errstr(char *buf, size_t len) {
	unsigned long e = ERR_get_error();
	if (buf != NULL && len > 0) {
		buf[0] = 0;
		if (e != 0) ERR_error_string_n(e, buf, len);
	}
	ERR_clear_error();
}

// wick_load parses a PKCS#1 RSAPrivateKey DER.
static EVP_PKEY *wick_load(const unsigned char *der, long len, char *errbuf, size_t errlen) {
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
	wick_errstr(errbuf, errlen);
	return k;
}

// wick_ctx_new returns a context for decryption (sign == 0) or signing
// (sign != 0) with PKCS#1 v1.5 padding and no digest, or NULL. OpenSSL 3.2
// and later answer a bad decryption padding with a synthetic plaintext
// ("implicit rejection"); it is turned off so that a bad block fails here
// as it does in crypto/rsa.
static EVP_PKEY_CTX *wick_ctx_new(EVP_PKEY *pkey, int sign) {
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx == NULL) goto fail;
	if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0) goto fail;
	if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) goto fail;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (!sign) {
		unsigned int zero = 0;
		OSSL_PARAM params[2];
		params[0] = OSSL_PARAM_construct_uint("implicit-rejection", &zero);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_PKEY_CTX_set_params(ctx, params) <= 0) goto fail;
	}
#endif
	wick_errstr(NULL, 0);
	return ctx;
fail:
	EVP_PKEY_CTX_free(ctx);
	wick_errstr(NULL, 0);
	return NULL;
}

// wick_decrypt does PKCS#1 v1.5 decryption and returns the plaintext
// length, or -1.
static int wick_decrypt(EVP_PKEY_CTX *ctx, const unsigned char *in, size_t inlen,
                        unsigned char *out, size_t outcap) {
	size_t outlen = outcap;
	int ok = EVP_PKEY_decrypt(ctx, out, &outlen, in, inlen) > 0;
	wick_errstr(NULL, 0);
	return ok ? (int)outlen : -1;
}

// wick_sign makes a PKCS#1 v1.5 type-1 signature of the raw input (no
// digest, no DigestInfo) and returns its length, or -1.
static int wick_sign(EVP_PKEY_CTX *ctx, const unsigned char *in, size_t inlen,
                     unsigned char *out, size_t outcap, char *errbuf, size_t errlen) {
	size_t outlen = outcap;
	int ok = EVP_PKEY_sign(ctx, out, &outlen, in, inlen) > 0;
	wick_errstr(errbuf, errlen);
	return ok ? (int)outlen : -1;
}
*/
import "C"

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"github.com/wick-cloud/wick/protocol"
)

// Implementation names what Load returns in this build.
const Implementation = NameOpenSSL

const (
	// errLen is the size of the buffers OpenSSL error strings are copied into.
	errLen = 256
	// maxIdleCtx bounds the idle contexts kept per operation.
	maxIdleCtx = 64
)

// opensslKey is an RSA private key held by libcrypto. One EVP_PKEY is
// shared; an operation borrows an EVP_PKEY_CTX that no other goroutine
// uses meanwhile (made for it, or reused from an earlier operation: making
// one costs about 8% of an RSA-2048 operation), so the key is safe for
// concurrent use.
type opensslKey struct {
	st   *opensslState
	pub  *rsa.PublicKey
	size int
}

// opensslState is the C memory of a key, freed by a cleanup once the key
// is unreachable.
type opensslState struct {
	pkey         *C.EVP_PKEY
	decrypt, sig ctxPool
}

// ctxPool keeps idle contexts of one operation.
type ctxPool struct {
	sign bool
	mu   sync.Mutex
	idle []*C.EVP_PKEY_CTX // guarded by mu
}

// get returns an idle context or a new one; nil if OpenSSL fails.
func (p *ctxPool) get(pkey *C.EVP_PKEY) *C.EVP_PKEY_CTX {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ctx := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return ctx
	}
	p.mu.Unlock()
	sign := C.int(0)
	if p.sign {
		sign = 1
	}
	return C.wick_ctx_new(pkey, sign)
}

// put keeps ctx for reuse after a successful operation; after a failed
// one, or with enough idle contexts, it frees it.
func (p *ctxPool) put(ctx *C.EVP_PKEY_CTX, ok bool) {
	if ok {
		p.mu.Lock()
		if len(p.idle) < maxIdleCtx {
			p.idle = append(p.idle, ctx)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	C.EVP_PKEY_CTX_free(ctx)
}

// free releases every idle context.
func (p *ctxPool) free() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ctx := range p.idle {
		C.EVP_PKEY_CTX_free(ctx)
	}
	p.idle = nil
}

var _ protocol.ServerKey = (*opensslKey)(nil)

// load moves priv into libcrypto and checks the result against priv.
func load(priv *rsa.PrivateKey) (protocol.ServerKey, error) {
	der := x509.MarshalPKCS1PrivateKey(priv)
	defer clear(der)
	var errbuf [errLen]C.char
	pkey := C.wick_load((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)), &errbuf[0], errLen)
	if pkey == nil {
		return nil, fmt.Errorf("rsakey: openssl: load key: %s", C.GoString(&errbuf[0]))
	}
	pub := priv.PublicKey
	st := &opensslState{pkey: pkey, sig: ctxPool{sign: true}}
	k := &opensslKey{st: st, pub: &pub, size: pub.Size()}
	runtime.AddCleanup(k, func(st *opensslState) {
		st.decrypt.free()
		st.sig.free()
		C.EVP_PKEY_free(st.pkey)
	}, st)
	if err := k.selfTest(priv); err != nil {
		return nil, err
	}
	return k, nil
}

// selfTest checks one signature against crypto/rsa's and one decryption
// of a block crypto/rsa encrypted.
func (k *opensslKey) selfTest(priv *rsa.PrivateKey) error {
	msg := []byte("wick rsakey self-test: 20B")[:20]
	want, err := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), msg)
	if err != nil {
		return fmt.Errorf("rsakey: self-test: crypto/rsa sign: %w", err)
	}
	got, err := k.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("rsakey: self-test: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("rsakey: self-test: openssl signature differs from crypto/rsa's")
	}
	//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, msg)
	if err != nil {
		return fmt.Errorf("rsakey: self-test: crypto/rsa encrypt: %w", err)
	}
	plain, err := k.Decrypt(nil, ct, nil)
	if err != nil || !bytes.Equal(plain, msg) {
		return fmt.Errorf("rsakey: self-test: openssl decryption failed (%v)", err)
	}
	return nil
}

// implementation names the key for Name.
func (k *opensslKey) implementation() string { return NameOpenSSL }

// Public returns the *rsa.PublicKey.
func (k *opensslKey) Public() crypto.PublicKey { return k.pub }

// Decrypt does PKCS#1 v1.5 decryption, like (*rsa.PrivateKey).Decrypt with
// nil opts or a zero rsa.PKCS1v15DecryptOptions; other options are refused.
// Any failure is rsa.ErrDecryption. rand is unused: OpenSSL blinds with its
// own generator.
func (k *opensslKey) Decrypt(_ io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	switch o := opts.(type) {
	case nil:
	case *rsa.PKCS1v15DecryptOptions:
		if o.SessionKeyLen != 0 {
			return nil, errors.New("rsakey: openssl: SessionKeyLen is not supported")
		}
	default:
		return nil, fmt.Errorf("rsakey: openssl: decrypt options %T are not supported", opts)
	}
	if len(msg) != k.size {
		return nil, rsa.ErrDecryption
	}
	ctx := k.st.decrypt.get(k.st.pkey)
	if ctx == nil {
		return nil, rsa.ErrDecryption
	}
	out := make([]byte, k.size)
	n := C.wick_decrypt(ctx, (*C.uchar)(unsafe.Pointer(&msg[0])), C.size_t(len(msg)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(len(out)))
	k.st.decrypt.put(ctx, n >= 0)
	runtime.KeepAlive(k)
	if n < 0 || int(n) > len(out) {
		return nil, rsa.ErrDecryption
	}
	return out[:n], nil
}

// Sign makes a PKCS#1 v1.5 signature of digest without a DigestInfo
// prefix, like (*rsa.PrivateKey).Sign with crypto.Hash(0); the result is
// byte-identical to rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), digest).
// Other options (a hash, PSS) are refused. rand is unused.
func (k *opensslKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != 0 {
		return nil, errors.New("rsakey: openssl: only raw PKCS#1 v1.5 signatures (crypto.Hash(0)) are supported")
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("rsakey: openssl: PSS is not supported")
	}
	if len(digest)+11 > k.size {
		return nil, rsa.ErrMessageTooLong
	}
	in := digest
	if len(in) == 0 {
		in = make([]byte, 1) // a valid pointer; the length passed stays 0
	}
	ctx := k.st.sig.get(k.st.pkey)
	if ctx == nil {
		return nil, errors.New("rsakey: openssl: sign: no context")
	}
	out := make([]byte, k.size)
	var errbuf [errLen]C.char
	n := C.wick_sign(ctx, (*C.uchar)(unsafe.Pointer(&in[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &errbuf[0], errLen)
	k.st.sig.put(ctx, n >= 0)
	runtime.KeepAlive(k)
	if n < 0 {
		return nil, fmt.Errorf("rsakey: openssl: sign: %s", C.GoString(&errbuf[0]))
	}
	if int(n) != k.size {
		return nil, fmt.Errorf("rsakey: openssl: sign: %d-byte signature, want %d", n, k.size)
	}
	return out, nil
}
