package dtls

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"runtime"
	"slices"
	"testing"
)

// BenchmarkServerHandshake measures the server's CPU for one full Gen 3
// handshake: the cookie round, the first flight (ephemeral key and one
// signature), and the device's flight (one verification, ECDH, key
// schedule, both Finished). The device driver's work runs with the timer
// stopped. Beside ns/op (wall time) it reports server-handshakes/cpu-s:
// handshakes per second of process CPU time spent in the server's calls,
// the measure `openssl speed` uses (docs/dtls.md, Speed).
func BenchmarkServerHandshake(b *testing.B) {
	devKey := mustP256(b)
	s := newTestServer(b, devKey)
	s.cfg.Signer = nil
	var cpu, n int64
	b.ReportAllocs()
	for b.Loop() {
		n++
		b.StopTimer()
		d := newTestDevice(b, devKey, &s.cfg.Key.PublicKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		first := d.hello(nil)
		b.StartTimer()
		c0 := cpuNow()
		out, _, err := s.cfg.HandleClientHello(t0, testAddr, first)
		cpu += cpuNow() - c0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		second := d.hello(d.cookie(out[0]))
		b.StartTimer()
		c0 = cpuNow()
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, second)
		cpu += cpuNow() - c0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		recs := d.clientFlight(out[0])
		b.StartTimer()
		c0 = cpuNow()
		for _, r := range recs {
			if _, _, err := hs.HandleDatagram(t0, testAddr, r); err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuNow() - c0
		if hs.Session() == nil {
			b.Fatal("no session")
		}
	}
	if cpu > 0 {
		b.ReportMetric(float64(n)/(float64(cpu)/1e9), "server-handshakes/cpu-s")
	}
}

// BenchmarkServerHelloVerifyRequest measures what a ClientHello without a
// valid cookie costs the server: parsing and one cookie MAC per secret.
func BenchmarkServerHelloVerifyRequest(b *testing.B) {
	devKey := mustP256(b)
	s := newTestServer(b, devKey)
	d := newTestDevice(b, devKey, &s.cfg.Key.PublicKey, []byte{})
	hello := d.hello(nil)
	b.ReportAllocs()
	for b.Loop() {
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, hello)
		if err != nil || hs != nil || len(out) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerHandshakeOverhead measures what a full server handshake
// costs beside its four P-256 operations: parsing, cookies, hashing, the key
// schedule, record protection and allocation. The signature, the ephemeral
// key, the ECDH derivation and the verification are replaced by fixed
// answers (the devices use one fixed ephemeral key so that the server's
// fixed shared secret is the right one). As in internal/p256's benchmark,
// each phase runs for a batch of devices at once, after a collection of the
// devices' garbage, and only the server's phases are timed with the
// process CPU clock: server-overhead-µs/cpu is what docs/dtls.md, Speed,
// adds to the P-256 operations.
func BenchmarkServerHandshakeOverhead(b *testing.B) {
	devKey := mustP256(b)
	srvEph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	devEph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	secret, err := ECDHSharedSecret(srvEph, devEph.PublicKey().Bytes())
	if err != nil {
		b.Fatal(err)
	}
	s := newTestServer(b, devKey)
	digest := sha256.Sum256(nil)
	sig, err := ecdsa.SignASN1(rand.Reader, s.cfg.Key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	s.cfg.Signer = fixedSigner{s.cfg.Key, sig}
	s.cfg.Crypto = fixedCrypto{fixedECDHE{srvEph.PublicKey().Bytes(), secret}}
	s.cfg.Keys = &KeyCache{}
	s.cfg.DeviceKey = func(pub *ecdsa.PublicKey) bool { return pub.Equal(&devKey.PublicKey) }
	const batch = 50
	var cpu, n int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		devs := make([]*testDevice, batch)
		in := make([][]byte, batch)
		for i := range devs {
			devs[i] = newTestDevice(b, devKey, &s.cfg.Key.PublicKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
			devs[i].eph, devs[i].skipSKE = devEph, true
			in[i] = devs[i].hello(nil)
		}
		out := make([][]byte, batch)
		hss := make([]*ServerHandshake, batch)
		timed := func(f func(i int)) {
			runtime.GC()
			b.StartTimer()
			c0 := cpuNow()
			for i := range batch {
				f(i)
			}
			cpu += cpuNow() - c0
			b.StopTimer()
		}
		hello := func(i int) {
			o, hs, err := s.cfg.HandleClientHello(t0, testAddr, in[i])
			if err != nil || len(o) != 1 {
				b.Fatal(err)
			}
			out[i], hss[i] = o[0], hs
		}
		timed(hello)
		for i, d := range devs {
			in[i] = d.hello(d.cookie(out[i]))
		}
		timed(hello)
		recs := make([][]byte, batch)
		for i, d := range devs {
			recs[i] = bytes.Join(d.clientFlight(out[i]), nil)
		}
		timed(func(i int) {
			o, done, err := hss[i].HandleDatagram(t0, testAddr, recs[i])
			if err != nil || !done || len(o) != 1 {
				b.Fatal(err, done)
			}
			out[i] = o[0]
		})
		for i, d := range devs {
			if err := d.finish(out[i]); err != nil {
				b.Fatal(err)
			}
		}
		n += batch
		b.StartTimer()
	}
	if n > 0 {
		b.ReportMetric(float64(cpu)/1e3/float64(n), "server-overhead-µs/cpu")
	}
}

// fixedSigner answers every signature request with sig.
type fixedSigner struct {
	*ecdsa.PrivateKey
	sig []byte
}

func (f fixedSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return slices.Clone(f.sig), nil
}

// fixedCrypto hands out one fixed ephemeral key and accepts every signature.
type fixedCrypto struct{ k fixedECDHE }

func (f fixedCrypto) GenerateECDHE() (ECDHEKey, error)                    { return f.k, nil }
func (fixedCrypto) Verify(_ []byte, _ *ecdsa.PublicKey, _, _ []byte) bool { return true }

// fixedECDHE is an ephemeral key whose shared secret is known in advance.
type fixedECDHE struct{ pub, secret []byte }

func (f fixedECDHE) PublicKey() []byte                   { return f.pub }
func (f fixedECDHE) SharedSecret([]byte) ([]byte, error) { return slices.Clone(f.secret), nil }
