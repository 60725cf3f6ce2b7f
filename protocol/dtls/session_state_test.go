package dtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
)

// handshakePair runs a full in-memory handshake and returns both sessions.
func handshakePair(t testing.TB, cid []byte) (client, server *Session) {
	t.Helper()
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	p := newPair(t, s, devKey, cid)
	if err := p.run(); err != nil {
		t.Fatal(err)
	}
	return p.client.Session(), p.server.Session()
}

// sealRecord seals content on s and parses the record back.
func sealRecord(t *testing.T, s *Session, content string) (Record, []byte) {
	t.Helper()
	raw, err := s.Seal(nil, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := ParseRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	return rec, raw
}

func TestSessionRestoreAcrossRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		cid  []byte
	}{
		{"device CID", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"no device CID", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := handshakePair(t, tc.cid)
			// Traffic before the restart: the record seen last is what a
			// replay after the restart would repeat.
			rec, raw := sealRecord(t, client, "before")
			if _, _, err := server.Open(nil, &rec); err != nil {
				t.Fatal(err)
			}
			if _, err := server.Seal(nil, []byte("ack")); err != nil {
				t.Fatal(err)
			}
			saved, err := server.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			// A "new process": only the saved bytes survive.
			restored, err := UnmarshalSession(bytes.Clone(saved))
			if err != nil {
				t.Fatal(err)
			}
			if !restored.DeviceKey.Equal(server.DeviceKey) || restored.WriteSeq != server.WriteSeq ||
				!bytes.Equal(restored.ServerCID, server.ServerCID) || !bytes.Equal(restored.ClientCID, server.ClientCID) {
				t.Fatalf("restored %+v, saved from %+v", restored, server)
			}
			again, err := restored.MarshalBinary()
			if err != nil || !bytes.Equal(again, saved) {
				t.Fatalf("re-saved session differs: %v", err)
			}
			old, _, _ := ParseRecord(raw)
			if _, _, err := restored.Open(nil, &old); !errors.Is(err, ErrNotForSession) {
				t.Fatalf("replay after restore: err = %v, want ErrNotForSession", err)
			}
			next, _ := sealRecord(t, client, "after")
			got, typ, err := restored.Open(nil, &next)
			if err != nil || typ != TypeApplicationData || string(got) != "after" {
				t.Fatalf("open after restore: %q %v %v", got, typ, err)
			}
			if _, _, err := restored.Open(nil, &next); !errors.Is(err, ErrNotForSession) {
				t.Fatalf("second replay: err = %v", err)
			}
			answer, _ := sealRecord(t, restored, "answer")
			got, _, err = client.Open(nil, &answer)
			if err != nil || string(got) != "answer" {
				t.Fatalf("client open of the restored server's answer: %q %v", got, err)
			}
		})
	}
}

// TestResumedDeviceAcrossRestart restores both sides from saved bytes and
// sends the device's first record as a resumed device does, marked
// TypeMoveSession; the restored server opens and answers it.
func TestResumedDeviceAcrossRestart(t *testing.T) {
	client, server := handshakePair(t, nil)
	savedClient, err := client.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	savedServer, err := server.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	device, err := UnmarshalSession(savedClient)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := UnmarshalSession(savedServer)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := device.Seal(nil, []byte("resumed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := MarkMoveSession(raw); err != nil {
		t.Fatal(err)
	}
	rec, _, err := ParseRecord(raw)
	if err != nil || rec.Header.Type != TypeMoveSession {
		t.Fatalf("record type %v, err %v", rec.Header.Type, err)
	}
	got, _, err := cloud.Open(nil, &rec)
	if err != nil || string(got) != "resumed" {
		t.Fatalf("restored server: %q %v", got, err)
	}
	answer, _ := sealRecord(t, cloud, "welcome back")
	if got, _, err = device.Open(nil, &answer); err != nil || string(got) != "welcome back" {
		t.Fatalf("restored device: %q %v", got, err)
	}
}

func TestMarkMoveSessionRefuses(t *testing.T) {
	_, server := handshakePair(t, nil) // the server writes no CID: plain records
	plain, _ := server.Seal(nil, []byte("x"))
	for name, b := range map[string][]byte{"empty": nil, "plain record": plain, "short": {25, 0xfe}} {
		if err := MarkMoveSession(b); err == nil {
			t.Errorf("%s: marked", name)
		}
	}
}

func TestClientSessionRestore(t *testing.T) {
	client, server := handshakePair(t, nil)
	saved, err := client.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := UnmarshalSession(saved)
	if err != nil {
		t.Fatal(err)
	}
	checkTraffic(t, restored, server)
}

func TestUnmarshalSessionRefuses(t *testing.T) {
	_, server := handshakePair(t, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	good, err := server.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const (
		epochs = 1 + MasterSecretLen + 2*(KeyLen+ImplicitIVLen)
		seq    = epochs + 4
		window = seq + 8
		cids   = window + 16
	)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"read epoch 0", mod(func(b []byte) []byte { b[epochs], b[epochs+1] = 0, 0; return b })},
		{"sequence over 48 bits", mod(func(b []byte) []byte { b[seq] = 1; return b })},
		{"window bit 0 clear", mod(func(b []byte) []byte { b[window+15] = 2; return b })},
		{"CID of 7 bytes", mod(func(b []byte) []byte { b[cids] = 7; return b })},
		{"device key garbage", mod(func(b []byte) []byte { b[len(b)-1] ^= 0xff; b[len(b)-10] ^= 0xff; return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := UnmarshalSession(tc.b); !errors.Is(err, ErrBadSessionState) {
				t.Fatalf("err = %v, want ErrBadSessionState", err)
			}
		})
	}
}

func TestSessionMarshalRefusesIncomplete(t *testing.T) {
	_, server := handshakePair(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(s *Session)
	}{
		{"no ciphers", func(s *Session) { s.Read = nil }},
		{"short master secret", func(s *Session) { s.MasterSecret = s.MasterSecret[:10] }},
		{"sequence overflow", func(s *Session) { s.WriteSeq = MaxSeq + 1 }},
		{"bad CID", func(s *Session) { s.ClientCID = []byte{1} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := *server
			tc.mod(&s)
			if _, err := s.MarshalBinary(); err == nil {
				t.Fatal("saved an incomplete session")
			}
		})
	}
}

// FuzzUnmarshalSession checks that UnmarshalSession never panics and that
// whatever it accepts saves back to the same bytes.
func FuzzUnmarshalSession(f *testing.F) {
	client, server := handshakePair(f, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	for _, s := range []*Session{client, server} {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{sessionStateVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSession(b)
		if err != nil {
			if !errors.Is(err, ErrBadSessionState) {
				t.Fatalf("error %v is not ErrBadSessionState", err)
			}
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted session saves differently: %v", err)
		}
	})
}

// TestAppendDeviceKey checks the direct P-256 encoding of the device key
// against crypto/x509, and the fallback for other keys.
func TestAppendDeviceKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		curve elliptic.Curve
	}{
		{"P-256", elliptic.P256()},
		{"P-256 again", elliptic.P256()},
		{"P-384 (x509 fallback)", elliptic.P384()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			want, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendDeviceKey([]byte{0xaa}, &k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, appendVec16([]byte{0xaa}, want)) {
				t.Fatalf("got %x\nwant aa%04x%x", got, len(want), want)
			}
		})
	}
	if got, err := appendDeviceKey(nil, nil); err != nil || !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("no key: %x, %v", got, err)
	}
}

func BenchmarkSessionMarshal(b *testing.B) {
	_, s := handshakePair(b, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}
