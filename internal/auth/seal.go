package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealed layout: version (1 byte, sealVersion) | nonce (12 bytes) |
// AES-256-GCM ciphertext and 16-byte tag.
const (
	sealVersion = 1
	sealKeyLen  = 32
)

// ErrSealKey reports a sealing key that is not 32 bytes long.
var ErrSealKey = errors.New("auth: the secret key must be 32 bytes")

// ErrSealed reports sealed data that is corrupt, was tampered with, or was
// sealed under another key or for another owner.
var ErrSealed = errors.New("auth: sealed data is invalid")

// Seal encrypts plaintext with AES-256-GCM under key (32 bytes) and binds it
// to additionalData (for example the owner's ID), which Open must be given
// again.
func Seal(key, plaintext, additionalData []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("auth: seal nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, additionalData), nil
}

// Open decrypts data made by Seal with the same key and additionalData. Any
// mismatch or tampering is ErrSealed.
func Open(key, sealed, additionalData []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(sealed) < 1+ns+aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrSealed
	}
	plain, err := aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additionalData)
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != sealKeyLen {
		return nil, ErrSealKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("auth: seal: %w", err)
	}
	return aead, nil
}
