package dtls

import (
	"testing"
)

// BenchmarkServerHandshake measures the server's CPU for one full Gen 3
// handshake: the cookie round, the first flight (ephemeral key and one
// signature), and the device's flight (one verification, ECDH, key
// schedule, both Finished). The device driver's work runs with the timer
// stopped.
func BenchmarkServerHandshake(b *testing.B) {
	devKey := mustP256(b)
	s := newTestServer(b, devKey)
	s.cfg.Signer = nil
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		d := newTestDevice(b, devKey, &s.cfg.Key.PublicKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		first := d.hello(nil)
		b.StartTimer()
		out, _, err := s.cfg.HandleClientHello(t0, testAddr, first)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		second := d.hello(d.cookie(out[0]))
		b.StartTimer()
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, second)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		recs := d.clientFlight(out[0])
		b.StartTimer()
		for _, r := range recs {
			if _, _, err := hs.HandleDatagram(t0, testAddr, r); err != nil {
				b.Fatal(err)
			}
		}
		if hs.Session() == nil {
			b.Fatal("no session")
		}
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
