//go:build openssl && cgo

package p256

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestVerifyECDHManyKeysConcurrently checks crypt's device-key map under
// the load of a storm: more device keys than it holds (so that it empties
// itself while other goroutines use keys from it), several goroutines at
// once, the SubjectPublicKeyInfo passed in a buffer that is overwritten
// after each call. Every good signature must verify and every wrong one
// must not.
func TestVerifyECDHManyKeysConcurrently(t *testing.T) {
	if !initOnce() {
		t.Fatal("no P-256 group")
	}
	c := &crypt{}
	type dev struct {
		key  *ecdsa.PrivateKey
		spki []byte
	}
	n := maxDeviceKeys + 500
	if testing.Short() {
		n = 600
	}
	devs := make([]dev, n)
	for i := range devs {
		k := mustKey(t)
		spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = dev{k, spki}
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 128)
			for i := w; i < 3*n; i += workers {
				d := devs[(i*7919)%n]
				digest := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
				sig, err := ecdsa.SignASN1(rand.Reader, d.key, digest[:])
				if err != nil {
					t.Error(err)
					return
				}
				wrong := i%5 == 0
				if wrong {
					digest[0] ^= 1
				}
				eph, err := c.GenerateECDHE()
				if err != nil {
					t.Error(err)
					return
				}
				spki := buf[:copy(buf, d.spki)]
				verified, secret, err := c.VerifyECDH(spki, &d.key.PublicKey, digest[:], sig, eph, peer.PublicKey().Bytes())
				for j := range buf {
					buf[j] = byte(i)
				}
				if err != nil || verified == wrong {
					t.Errorf("call %d: verified %v (wrong digest %v), err %v", i, verified, wrong, err)
					return
				}
				want, err := dtls.ECDHSharedSecret(peer, eph.PublicKey())
				if err != nil || !bytes.Equal(secret, want) {
					t.Errorf("call %d: secret differs from Go's", i)
					return
				}
			}
		})
	}
	wg.Wait()
}
