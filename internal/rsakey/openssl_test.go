//go:build openssl && cgo

package rsakey

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// TestOpenSSLOptions: the OpenSSL key does the handshake's two operations
// only and refuses any other scheme rather than do it differently.
func TestOpenSSLOptions(t *testing.T) {
	priv, k := loaded(t)
	if _, ok := k.(*rsa.PrivateKey); ok || Name(k) != NameOpenSSL {
		t.Fatalf("Load in the openssl build gave %T (%s)", k, Name(k))
	}
	//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, hmac20(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
	}{
		{"sign_sha256", func() error { _, err := k.Sign(nil, make([]byte, 32), crypto.SHA256); return err }},
		{"sign_pss", func() error { _, err := k.Sign(nil, hmac20(1), &rsa.PSSOptions{}); return err }},
		{"sign_nil_opts", func() error { _, err := k.Sign(nil, hmac20(1), nil); return err }},
		{"decrypt_oaep", func() error { _, err := k.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256}); return err }},
		{"decrypt_session_key_len", func() error {
			_, err := k.Decrypt(nil, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 20})
			return err
		}},
	}
	for _, tc := range tests {
		if err := tc.op(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
