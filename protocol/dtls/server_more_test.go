package dtls

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestServerHandshakeIgnoresNoise(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
	hs, flight := startHandshake(t, s, d)
	recs := d.clientFlight(flight)
	other := netip.MustParseAddrPort("198.51.100.1:5684")
	wrongCID := bytes.Clone(recs[4])
	wrongCID[11] ^= 0xff // first CID byte
	tampered := bytes.Clone(recs[4])
	tampered[len(tampered)-1] ^= 1
	badFragment := d.record(TypeHandshake, []byte{byte(HandshakeCertificate), 0, 0, 9, 0, 2, 0, 0, 0, 0, 0, 20})
	for _, tc := range []struct {
		name  string
		addr  netip.AddrPort
		dgram []byte
	}{
		{"garbage", testAddr, []byte("not a record at all")},
		{"bad fragment", testAddr, badFragment},
		{"alert", testAddr, d.record(TypeAlert, []byte{2, 40})},
		{"other address", other, recs[0]},
		{"Finished with another CID", testAddr, wrongCID},
		{"tampered Finished", testAddr, tampered},
	} {
		if out, done, err := hs.HandleDatagram(t0, tc.addr, tc.dgram); err != nil || done || out != nil {
			t.Fatalf("%s: out %d done %v err %v", tc.name, len(out), done, err)
		}
	}
	out, done, err := feedServer(t, hs, recs...)
	if err != nil || !done {
		t.Fatalf("after noise: done %v err %v", done, err)
	}
	if err := d.finish(out[0]); err != nil {
		t.Fatal(err)
	}
}

func TestServerHandshakeRefusesPlaintextFinished(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
	hs, flight := startHandshake(t, s, d)
	recs := d.clientFlight(flight)
	plain := d.record(TypeHandshake, d.finMsg)
	if _, _, err := feedServer(t, hs, recs[0], recs[1], recs[2], plain); !errors.Is(err, ErrUnexpectedMessage) {
		t.Fatalf("plaintext Finished: %v", err)
	}
}

func TestSessionOpenRefuses(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
	hs, flight := startHandshake(t, s, d)
	if _, done, err := feedServer(t, hs, d.clientFlight(flight)...); err != nil || !done {
		t.Fatal(done, err)
	}
	sess := hs.Session()
	good := d.seal(TypeApplicationData, []byte("data"))
	noCID, err := d.write.Seal(nil, TypeApplicationData, 1, 99, nil, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	otherCID, err := d.write.Seal(nil, TypeApplicationData, 1, 98, bytes.Repeat([]byte{0xee}, CIDLen), []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	epoch2, err := d.write.Seal(nil, TypeApplicationData, 2, 97, d.serverCID, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name  string
		dgram []byte
		want  error
	}{
		{"no CID", noCID, ErrNotForSession},
		{"other CID", otherCID, ErrNotForSession},
		{"epoch 2", epoch2, ErrNotForSession},
		{"tampered", tampered, ErrBadRecordMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, _, err := ParseRecord(tc.dgram)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := sess.Open(nil, &rec); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	// The tampered copy did not poison the window: the genuine record opens.
	rec, _, _ := ParseRecord(good)
	if got, _, err := sess.Open(nil, &rec); err != nil || string(got) != "data" {
		t.Fatalf("%q %v", got, err)
	}
}

// FuzzServerHandleClientHello feeds arbitrary first datagrams: nothing
// panics, and without a valid cookie nothing is signed.
func FuzzServerHandleClientHello(f *testing.F) {
	devKey := mustP256(f)
	s := newTestServer(f, devKey)
	d := newTestDevice(f, devKey, &s.cfg.Key.PublicKey, nil)
	f.Add(d.hello(nil))
	f.Add(d.hello(bytes.Repeat([]byte{1}, CookieLen)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		before := s.signs
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, data)
		if hs != nil || s.signs != before {
			t.Fatal("a handshake from a datagram without a valid cookie")
		}
		if err == nil && len(out) != 1 {
			t.Fatalf("%d datagrams, want one HelloVerifyRequest", len(out))
		}
	})
}

// TestServerHandshakeRefusesX509 checks that a device that negotiated raw
// public keys cannot send an X.509 Certificate, even when the config allows
// X.509 for interop tests (that applies only to ClientHellos without raw
// public keys).
func TestServerHandshakeRefusesX509(t *testing.T) {
	devKey := mustP256(t)
	chain := CertificateChain{Certificates: [][]byte{selfSigned(t, devKey, "device")}}
	for _, allow := range []bool{false, true} {
		s := newTestServer(t, devKey)
		s.cfg.AllowX509 = allow
		s.cfg.Certificate = chain.Certificates[0]
		d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
		d.certBody = chain.Marshal()
		hs, flight := startHandshake(t, s, d)
		_, done, err := feedServer(t, hs, d.clientFlight(flight)...)
		if err == nil || errors.Is(err, ErrUnknownDeviceKey) || done {
			t.Fatalf("AllowX509 %v: X.509 Certificate after a Gen 3 ClientHello: done %v err %v", allow, done, err)
		}
	}
}
