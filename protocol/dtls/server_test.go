package dtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// startHandshake runs the cookie exchange and returns the handshake and the
// server's first flight.
func startHandshake(t *testing.T, s *testServer, d *testDevice) (*ServerHandshake, []byte) {
	t.Helper()
	out, hs, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(nil))
	if err != nil || hs != nil || len(out) != 1 {
		t.Fatalf("first ClientHello: out %d, hs %v, err %v", len(out), hs, err)
	}
	out, hs, err = s.cfg.HandleClientHello(t0, testAddr, d.hello(d.cookie(out[0])))
	if err != nil || hs == nil || len(out) != 1 {
		t.Fatalf("second ClientHello: out %d, hs %v, err %v", len(out), hs, err)
	}
	return hs, out[0]
}

// feedServer sends datagrams in order and returns the last output and done.
func feedServer(t *testing.T, hs *ServerHandshake, dgrams ...[]byte) ([][]byte, bool, error) {
	t.Helper()
	var out [][]byte
	var done bool
	for _, d := range dgrams {
		o, dn, err := hs.HandleDatagram(t0, testAddr, d)
		if err != nil {
			return nil, false, err
		}
		out = append(out, o...)
		done = dn
	}
	return out, done, nil
}

func TestServerHandshakeFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		cid  []byte
	}{
		{"device CID", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"no device CID", []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devKey := mustP256(t)
			s := newTestServer(t, devKey)
			d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, tc.cid)
			hs, flight := startHandshake(t, s, d)
			out, done, err := feedServer(t, hs, d.clientFlight(flight)...)
			if err != nil || !done || len(out) != 1 {
				t.Fatalf("client flight: out %d, done %v, err %v", len(out), done, err)
			}
			if err := d.finish(out[0]); err != nil {
				t.Fatal(err)
			}
			sess := hs.Session()
			if sess == nil || !sess.DeviceKey.Equal(&devKey.PublicKey) || !bytes.Equal(sess.ServerCID, d.serverCID) {
				t.Fatalf("session %+v", sess)
			}
			if len(tc.cid) == 0 && sess.ClientCID != nil {
				t.Fatalf("ClientCID %x, want none", sess.ClientCID)
			}
			// Application data both ways.
			rec, _, err := ParseRecord(d.seal(TypeApplicationData, []byte("ping")))
			if err != nil {
				t.Fatal(err)
			}
			got, typ, err := sess.Open(nil, &rec)
			if err != nil || typ != TypeApplicationData || string(got) != "ping" {
				t.Fatalf("Open: %q %v %v", got, typ, err)
			}
			if _, _, err := sess.Open(nil, &rec); !errors.Is(err, ErrNotForSession) {
				t.Fatalf("replayed record: %v", err)
			}
			dgram, err := sess.Seal(nil, []byte("pong"))
			if err != nil {
				t.Fatal(err)
			}
			_, app, err := d.open(dgram)
			if err != nil || len(app) != 1 || string(app[0]) != "pong" {
				t.Fatalf("device open: %q %v", app, err)
			}
			if s.signs != 1 {
				t.Fatalf("%d signatures, want 1", s.signs)
			}
		})
	}
}

func TestServerHandshakeFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		known   bool
		mutate  func(*testDevice)
		wantErr error
		alert   AlertDescription
	}{
		{"unknown key", false, nil, ErrUnknownDeviceKey, AlertAccessDenied},
		{"bad CertificateVerify", true, func(d *testDevice) { d.corruptCV = true }, ErrBadCertificateVerify, AlertDecryptError},
		{"bad Finished", true, func(d *testDevice) { d.corruptFin = true }, ErrBadFinished, AlertDecryptError},
		{"X.509 Certificate", true, func(d *testDevice) {
			d.certBody = (&CertificateChain{Certificates: [][]byte{selfSigned(t, d.key, "device")}}).Marshal()
		}, errBadDeviceCertificate, AlertBadCertificate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devKey := mustP256(t)
			s := newTestServer(t)
			if tc.known {
				s = newTestServer(t, devKey)
			}
			d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
			if tc.mutate != nil {
				tc.mutate(d)
			}
			hs, flight := startHandshake(t, s, d)
			if hs.Alert() != nil {
				t.Fatal("alert before any failure")
			}
			_, done, err := feedServer(t, hs, d.clientFlight(flight)...)
			if !errors.Is(err, tc.wantErr) || done {
				t.Fatalf("err %v done %v, want %v", err, done, tc.wantErr)
			}
			rec, rest, err := ParseRecord(hs.Alert())
			if err != nil || len(rest) != 0 || rec.Header.Type != TypeAlert || rec.Header.Epoch != 0 ||
				!bytes.Equal(rec.Body, []byte{alertLevelFatal, byte(tc.alert)}) {
				t.Fatalf("alert record %+v %x: %v", rec.Header, rec.Body, err)
			}
			if hs.Session() != nil {
				t.Fatal("session after failure")
			}
			if _, ok := hs.NextTimeout(); ok {
				t.Fatal("timer armed after failure")
			}
			if _, _, err := hs.HandleDatagram(t0, testAddr, nil); !errors.Is(err, tc.wantErr) {
				t.Fatalf("after failure: %v", err)
			}
		})
	}
}

func TestServerHandshakeReorderAndDuplicates(t *testing.T) {
	devKey := mustP256(t)
	for _, tc := range []struct {
		name  string
		order []int // indices into the client's five records
	}{
		{"reversed", []int{4, 3, 2, 1, 0}},
		{"finished first", []int{4, 0, 1, 2, 3}},
		{"duplicated", []int{0, 0, 1, 1, 2, 3, 3, 4}},
		{"one datagram", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, devKey)
			d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, []byte{8, 7, 6, 5, 4, 3, 2, 1})
			hs, flight := startHandshake(t, s, d)
			recs := d.clientFlight(flight)
			var dgrams [][]byte
			if tc.order == nil {
				dgrams = [][]byte{bytes.Join(recs, nil)}
			}
			for _, i := range tc.order {
				dgrams = append(dgrams, recs[i])
			}
			out, done, err := feedServer(t, hs, dgrams...)
			if err != nil || !done || len(out) == 0 {
				t.Fatalf("out %d done %v err %v", len(out), done, err)
			}
			if err := d.finish(out[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestServerHandshakeReusedBuffer feeds every datagram through one buffer
// that is overwritten after each call, as a socket loop does: the server
// must keep nothing that aliases a datagram (whole messages are handled
// without a copy).
func TestServerHandshakeReusedBuffer(t *testing.T) {
	devKey := mustP256(t)
	for _, tc := range []struct {
		name  string
		order []int // indices into the client's five records; nil: one datagram
	}{
		{"in order", []int{0, 1, 2, 3, 4}},
		{"reversed", []int{4, 3, 2, 1, 0}},
		{"certificate last", []int{1, 2, 3, 4, 0}},
		{"one datagram", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, devKey)
			d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, []byte{8, 7, 6, 5, 4, 3, 2, 1})
			hs, flight := startHandshake(t, s, d)
			recs := d.clientFlight(flight)
			dgrams := [][]byte{bytes.Join(recs, nil)}
			if tc.order != nil {
				dgrams = nil
				for _, i := range tc.order {
					dgrams = append(dgrams, recs[i])
				}
			}
			buf := make([]byte, 2048)
			var out [][]byte
			done := false
			for _, dg := range dgrams {
				n := copy(buf, dg)
				o, dn, err := hs.HandleDatagram(t0, testAddr, buf[:n])
				if err != nil {
					t.Fatal(err)
				}
				for i := range buf {
					buf[i] = 0xa5
				}
				out, done = append(out, o...), dn
			}
			if !done || len(out) == 0 {
				t.Fatalf("done %v, %d datagrams out", done, len(out))
			}
			if err := d.finish(out[len(out)-1]); err != nil {
				t.Fatal(err)
			}
			spki, err := x509.MarshalPKIXPublicKey(&devKey.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(hs.devSPKI, spki) || !hs.Session().DeviceKey.Equal(&devKey.PublicKey) {
				t.Fatal("the handshake kept a device key from the overwritten buffer")
			}
		})
	}
}

// goVerifyingECDH is Go's crypto with the combined call of VerifyingECDH,
// so that the deferred derivation is tested without cgo.
type goVerifyingECDH struct {
	goCrypto
	calls *int
}

func (g goVerifyingECDH) VerifyECDH(spki []byte, pub *ecdsa.PublicKey, digest, sig []byte, eph ECDHEKey, peer []byte) (bool, []byte, error) {
	*g.calls++
	secret, err := eph.SharedSecret(peer)
	return g.Verify(spki, pub, digest, sig), secret, err
}

// TestServerHandshakeVerifyingECDH runs handshakes with a ServerCrypto that
// checks the CertificateVerify and derives the secret in one call: in
// order, Finished first, one datagram, and the failures (bad signature
// wins over a bad point, a bad point alone ends the handshake).
func TestServerHandshakeVerifyingECDH(t *testing.T) {
	devKey := mustP256(t)
	for _, tc := range []struct {
		name    string
		order   []int
		mutate  func(*testDevice)
		wantErr error
	}{
		{"in order", []int{0, 1, 2, 3, 4}, nil, nil},
		{"finished first", []int{4, 0, 1, 2, 3}, nil, nil},
		{"one datagram", nil, nil, nil},
		{"bad CertificateVerify", nil, func(d *testDevice) { d.corruptCV = true }, ErrBadCertificateVerify},
		{"bad CertificateVerify and point", nil, func(d *testDevice) { d.corruptCV, d.badPoint = true, true }, ErrBadCertificateVerify},
		{"bad point", nil, func(d *testDevice) { d.badPoint = true }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, devKey)
			calls := 0
			s.cfg.Crypto = goVerifyingECDH{goCrypto{rand.Reader}, &calls}
			d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, []byte{8, 7, 6, 5, 4, 3, 2, 1})
			if tc.mutate != nil {
				tc.mutate(d)
			}
			hs, flight := startHandshake(t, s, d)
			recs := d.clientFlight(flight)
			dgrams := [][]byte{bytes.Join(recs, nil)}
			if tc.order != nil {
				dgrams = nil
				for _, i := range tc.order {
					dgrams = append(dgrams, recs[i])
				}
			}
			out, done, err := feedServer(t, hs, dgrams...)
			if calls != 1 {
				t.Errorf("VerifyECDH called %d times, want 1", calls)
			}
			if d.badPoint && tc.wantErr == nil {
				if err == nil || done || errors.Is(err, ErrBadCertificateVerify) {
					t.Fatalf("bad point: err %v done %v", err, done)
				}
				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || done {
					t.Fatalf("err %v done %v, want %v", err, done, tc.wantErr)
				}
				return
			}
			if err != nil || !done || len(out) == 0 {
				t.Fatalf("out %d done %v err %v", len(out), done, err)
			}
			if err := d.finish(out[len(out)-1]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestServerHandshakeRetransmission(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, []byte{1, 1, 1, 1, 1, 1, 1, 1})
	hs, flight := startHandshake(t, s, d)

	// Timer: 1 s, then doubling; nothing is resent early.
	at, ok := hs.NextTimeout()
	if !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("first timeout %v %v", at, ok)
	}
	if out, err := hs.HandleTimeout(t0.Add(999 * time.Millisecond)); err != nil || out != nil {
		t.Fatalf("early timeout: %v %v", out, err)
	}
	out, err := hs.HandleTimeout(at)
	if err != nil || len(out) != 1 {
		t.Fatalf("timeout: %d %v", len(out), err)
	}
	if next, _ := hs.NextTimeout(); !next.Equal(at.Add(2 * time.Second)) {
		t.Fatalf("second timeout %v, want +2s", next)
	}
	resent := out[0]
	if bytes.Equal(resent, flight) {
		t.Fatal("resent flight reuses record sequence numbers")
	}
	// The device lost the first copy and answers the resent one.
	// A repeated ClientHello also makes the server resend.
	out, _, err = hs.HandleDatagram(t0, testAddr, d.hello(d.ch.Cookie))
	if err != nil || len(out) != 1 {
		t.Fatalf("repeated ClientHello: %d %v", len(out), err)
	}
	if s.signs != 1 {
		t.Fatalf("%d signatures, want 1 (resends reuse the signed flight)", s.signs)
	}
	recs := d.clientFlight(resent)
	out, done, err := feedServer(t, hs, recs...)
	if err != nil || !done {
		t.Fatal(done, err)
	}
	if _, ok := hs.NextTimeout(); ok {
		t.Fatal("timer armed after the final flight")
	}
	// The device lost our Finished and repeats its own: we resend ours,
	// under a new sequence number.
	if o, _, err := feedServer(t, hs, recs[4]); err != nil || len(o) != 0 {
		t.Fatalf("replayed Finished record: %d %v", len(o), err) // same record number: dropped
	}
	out2, done, err := feedServer(t, hs, d.seal(TypeHandshake, d.finMsg))
	if err != nil || !done || len(out2) != 1 || bytes.Equal(out2[0], out[0]) {
		t.Fatalf("repeated Finished: %d %v %v", len(out2), done, err)
	}
	if err := d.finish(out2[0]); err != nil {
		t.Fatal(err)
	}
	// Application data continues after the resent Finished without nonce reuse.
	dgram, err := hs.Session().Seal(nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := ParseRecord(dgram)
	if rec.Header.Seq != 2 {
		t.Fatalf("application record seq %d, want 2", rec.Header.Seq)
	}
}

func TestServerHandshakeTimeoutGivesUp(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	s.cfg.MaxRetransmits = 3
	s.cfg.MaxTimeout = 3 * time.Second
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
	hs, _ := startHandshake(t, s, d)
	var waits []time.Duration
	now := t0
	for {
		at, ok := hs.NextTimeout()
		if !ok {
			t.Fatal("timer disarmed without an error")
		}
		waits = append(waits, at.Sub(now))
		now = at
		if _, err := hs.HandleTimeout(now); err != nil {
			if !errors.Is(err, ErrHandshakeTimeout) {
				t.Fatal(err)
			}
			if hs.Alert() != nil {
				t.Fatal("alert after a timeout")
			}
			break
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestServerSpoofedClientHelloCostsNoSignature(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	for i := range 100 {
		d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
		var cookie []byte
		if i%2 == 1 {
			cookie = bytes.Repeat([]byte{byte(i)}, CookieLen) // forged
		}
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(cookie))
		if err != nil || hs != nil || len(out) != 1 {
			t.Fatalf("spoofed hello %d: %v %v", i, hs, err)
		}
	}
	if s.signs != 0 {
		t.Fatalf("%d signatures for spoofed ClientHellos, want 0", s.signs)
	}
}

func TestServerHandleClientHelloRejects(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, nil)
	good := d.hello(nil)
	for _, tc := range []struct {
		name  string
		dgram []byte
	}{
		{"empty", nil},
		{"truncated", good[:20]},
		{"alert", append([]byte{byte(TypeAlert)}, good[1:]...)},
		{"epoch 1", append(append([]byte{}, good[:3]...), append([]byte{0, 1}, good[5:]...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, hs, err := s.cfg.HandleClientHello(t0, testAddr, tc.dgram); !errors.Is(err, ErrBadCookie) || hs != nil {
				t.Fatalf("err %v hs %v", err, hs)
			}
		})
	}
	// A ClientHello that lacks the Gen 3 profile is refused after the cookie.
	d.ch.Extensions = nil
	out, _, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(d.cookie(out[0]))); err == nil {
		t.Fatal("ClientHello without the Gen 3 extensions accepted")
	}
	if s.signs != 0 {
		t.Fatalf("%d signatures", s.signs)
	}
}
