package rsakey

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

// The benchmarks run each operation with crypto/rsa ("go") and, in the
// openssl build, with the OpenSSL key, for `openssl speed rsa2048`:
//
//	go test -run '^$' -bench . ./internal/rsakey/
//	go test -tags openssl -run '^$' -bench . ./internal/rsakey/
//
// Beside ns/op (wall time) they report operations per CPU-second of the
// process (user + system, every thread), the measure `openssl speed` uses
// (it divides by CPU time unless given -elapsed), so that the comparison
// holds on a machine other work shares.

// reportRate adds name/s (wall time) and name/cpu-s (process CPU time
// since cpu0, a cpuTime value) for b.N operations.
func reportRate(b *testing.B, name string, cpu0 float64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), name+"/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu, name+"/cpu-s")
	}
}

// BenchmarkDecrypt is one RSA-2048 PKCS#1 v1.5 decryption (the device hello).
func BenchmarkDecrypt(b *testing.B) {
	priv := testKey(b, "server")
	//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, make([]byte, 214))
	if err != nil {
		b.Fatal(err)
	}
	for _, impl := range implementations(b) {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := impl.key.Decrypt(nil, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, "ops", cpu0)
		})
	}
}

// BenchmarkSign is one RSA-2048 raw PKCS#1 v1.5 signature of a 20-byte HMAC.
func BenchmarkSign(b *testing.B) {
	h := hmac20(0)
	for _, impl := range implementations(b) {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := impl.key.Sign(nil, h, crypto.Hash(0)); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, "ops", cpu0)
		})
	}
}

// BenchmarkHandshakeCrypto is the server's cryptography per device
// connection through protocol: OpenDeviceHello (RSA-2048 decryption),
// CheckOfferedKey and SealSessionKeys (RSA-1024 encryption, HMAC-SHA1,
// RSA-2048 signature), on one goroutine.
func BenchmarkHandshakeCrypto(b *testing.B) {
	nonce, block, device := handshakeInput(b)
	for _, impl := range implementations(b) {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if err := serverHandshakeCrypto(impl.key, nonce, block, device); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, "handshakes", cpu0)
		})
	}
}

// BenchmarkHandshakeCryptoParallel is BenchmarkHandshakeCrypto on every
// core (GOMAXPROCS goroutines sharing one key): handshakes/s is the
// gateway's ceiling, to set beside `openssl speed -multi N rsa2048`.
func BenchmarkHandshakeCryptoParallel(b *testing.B) {
	nonce, block, device := handshakeInput(b)
	for _, impl := range implementations(b) {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := serverHandshakeCrypto(impl.key, nonce, block, device); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b, "handshakes", cpu0)
		})
	}
}

// handshakeInput is a device hello sealed to the server test key.
func handshakeInput(b *testing.B) (nonce, block []byte, device *rsa.PrivateKey) {
	priv := testKey(b, "server")
	device = testKey(b, "device")
	spki, err := protocol.MarshalPublicKeyDER(&device.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	nonce = bytes.Repeat([]byte{0x42}, protocol.NonceSize)
	block, err = protocol.SealDeviceHello(&priv.PublicKey, nonce, protocol.DeviceID{1}, spki)
	if err != nil {
		b.Fatal(err)
	}
	return nonce, block, device
}

// serverHandshakeCrypto is the server's share of one handshake.
func serverHandshakeCrypto(key protocol.ServerKey, nonce, block []byte, device *rsa.PrivateKey) error {
	h, err := protocol.OpenDeviceHello(key, nonce, block)
	if err != nil {
		return err
	}
	if err := protocol.CheckOfferedKey(&device.PublicKey, h.PublicKeyDER); err != nil {
		return err
	}
	_, _, err = protocol.SealSessionKeys(nil, key, &device.PublicKey)
	return err
}
