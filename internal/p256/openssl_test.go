//go:build openssl && cgo

package p256

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestVerifyECDH checks the one call into libcrypto against Go: the
// verdict and the secret of good and bad inputs, inputs that go to Go
// instead, and calls from several goroutines on one device key.
func TestVerifyECDH(t *testing.T) {
	if !initOnce() {
		t.Fatal("no P-256 group")
	}
	c := &crypt{}
	dev := mustKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&dev.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, dev, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("another transcript"))
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point := peer.PublicKey().Bytes()
	offCurve := bytes.Clone(point)
	offCurve[64] ^= 1
	compressed := elliptic.MarshalCompressed(elliptic.P256(), dev.X, dev.Y) //nolint:staticcheck // a wire encoding
	for _, tc := range []struct {
		name         string
		digest       []byte
		point        []byte
		wantVerified bool
		wantErr      bool
	}{
		{"good", digest[:], point, true, false},
		{"wrong digest", other[:], point, false, false},
		{"point off the curve", digest[:], offCurve, true, true},
		{"compressed point (Go's path)", digest[:], compressed, true, true},
		{"short digest (Go's path)", digest[:20], point, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eph, err := c.GenerateECDHE()
			if err != nil {
				t.Fatal(err)
			}
			verified, secret, err := c.VerifyECDH(spki, &dev.PublicKey, tc.digest, sig, eph, tc.point)
			if verified != tc.wantVerified || (err != nil) != tc.wantErr {
				t.Fatalf("verified %v err %v, want %v and an error %v", verified, err, tc.wantVerified, tc.wantErr)
			}
			if err != nil {
				return
			}
			want, err := dtls.ECDHSharedSecret(peer, eph.PublicKey())
			if err != nil || !bytes.Equal(secret, want) {
				t.Fatalf("secret %x, Go's %x (%v)", secret, want, err)
			}
		})
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				eph, err := c.GenerateECDHE()
				if err != nil {
					t.Error(err)
					return
				}
				if ok, _, err := c.VerifyECDH(spki, &dev.PublicKey, digest[:], sig, eph, point); !ok || err != nil {
					t.Errorf("concurrent call: verified %v, %v", ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(c.keys) != 1 {
		t.Errorf("%d device keys held, want 1", len(c.keys))
	}
}
