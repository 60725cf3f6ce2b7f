package dtls

import (
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
