// Package rsakey provides the server's RSA private-key operations for the
// device handshake (docs/particle-protocol.md#tcp-handshake) in the fastest
// implementation the build has.
//
// The Gen 2 TCP handshake costs the server two RSA-2048 private-key
// operations per device connection: PKCS#1 v1.5 decryption of the device
// hello and a raw PKCS#1 v1.5 type-1 signature of a 20-byte HMAC. The
// default build uses Go's crypto/rsa and needs no cgo. Built with
// `-tags openssl` (and cgo), Load returns a key backed by the system's
// libcrypto (OpenSSL 1.1.1 or 3.x), which does the same operations with
// the same bytes about three times faster; OpenSSL does its own blinding.
// That is the release build (`make release`): Go's constant-time RSA
// reaches about 30% of `openssl speed rsa2048` on the reference machine,
// libcrypto about 90% (docs/operations.md#faster-device-handshakes).
package rsakey

import (
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/wick-cloud/wick/protocol"
)

// Implementation names returned by Name.
const (
	// NameGo is Go's crypto/rsa (*rsa.PrivateKey).
	NameGo = "go"
	// NameOpenSSL is the libcrypto-backed key of the openssl build.
	NameOpenSSL = "openssl"
)

// Load returns priv as a protocol.ServerKey in the fastest implementation
// this build has (Implementation names it): priv itself in the default
// build, an OpenSSL-backed key with `-tags openssl`. It validates priv,
// precomputes its CRT values and, for OpenSSL, checks that a signature and
// a decryption agree with priv before returning. The result is safe for
// concurrent use.
func Load(priv *rsa.PrivateKey) (protocol.ServerKey, error) {
	if priv == nil {
		return nil, errors.New("rsakey: no key")
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("rsakey: invalid key: %w", err)
	}
	priv.Precompute()
	return load(priv)
}

// Name returns the implementation behind k: NameGo for an *rsa.PrivateKey,
// NameOpenSSL for a key from the openssl build's Load, and "other" for any
// other protocol.ServerKey.
func Name(k protocol.ServerKey) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return NameGo
	case interface{ implementation() string }:
		return k.implementation()
	}
	return "other"
}
