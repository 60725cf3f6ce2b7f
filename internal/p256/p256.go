// Package p256 gives the Gen 3 DTLS handshake (protocol/dtls, docs/dtls.md)
// the fastest P-256 arithmetic the build has.
//
// A full server handshake costs one ECDSA signature (ServerKeyExchange), one
// ECDSA verification (the device's CertificateVerify), one ephemeral key
// generation and one ECDH derivation. The default build leaves them to Go's
// crypto/ecdsa and crypto/ecdh and needs no cgo. Built with `-tags openssl`
// (and cgo, the release build), Configure hands the signature to the
// system's libcrypto (OpenSSL 1.1.1 or 3.x), whose ECDSA signing is faster
// than Go's, and the verification with the ECDH derivation, in one call
// (dtls.VerifyingECDH); key generation stays with Go, which is as fast
// from this process. docs/dtls.md#speed has the figures beside `openssl
// speed ecdsap256 ecdhp256`.
package p256

import (
	"errors"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// Implementation names returned by Implementation.
const (
	// NameGo is Go's crypto/ecdsa and crypto/ecdh.
	NameGo = "go"
	// NameOpenSSL is libcrypto, in the openssl build.
	NameOpenSSL = "openssl"
)

// Configure sets cfg.Signer to this build's fastest signer for cfg.Key
// (Implementation names it): in the default build it leaves cfg alone, so
// that Go's crypto is used; in the openssl build it moves the key into
// libcrypto and checks a signature with Go before returning. cfg.Key must
// be set.
func Configure(cfg *dtls.ServerConfig) error {
	if cfg == nil || cfg.Key == nil {
		return errors.New("p256: server config has no key")
	}
	return configure(cfg)
}
