package cloud

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestKeyAlgorithm(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	for _, tt := range []struct {
		name string
		pem  []byte
		want string
	}{
		{"rsa spki", spki(&rk.PublicKey), "rsa"},
		{"rsa pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}), "rsa"},
		{"p-256", spki(&ek.PublicKey), "ecc"},
		{"not pem", []byte("MIIB..."), ""},
		{"bad der", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), ""},
	} {
		if got := KeyAlgorithm(tt.pem); got != tt.want {
			t.Errorf("%s: KeyAlgorithm = %q, want %q", tt.name, got, tt.want)
		}
	}
}
