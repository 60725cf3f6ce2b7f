package dtls

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"
)

// pair drives a ClientHandshake against a ServerConfig in memory. drop
// decides, per datagram, whether it is lost (toServer tells the direction).
type pair struct {
	t      testing.TB
	now    time.Time
	client *ClientHandshake
	cfg    *ServerConfig
	server *ServerHandshake
	drop   func(toServer bool, n int) bool
	sent   [2]int // datagrams sent to the client [0] and to the server [1]
}

func newPair(t testing.TB, s *testServer, devKey *ecdsa.PrivateKey, cid []byte) *pair {
	t.Helper()
	c, err := NewClientHandshake(&ClientConfig{Key: devKey, ServerKey: &s.cfg.Key.PublicKey, ConnectionID: cid})
	if err != nil {
		t.Fatal(err)
	}
	return &pair{t: t, now: t0, client: c, cfg: s.cfg}
}

// toServer delivers client datagrams and returns the server's answers.
func (p *pair) toServer(dgrams [][]byte) ([][]byte, error) {
	var out [][]byte
	for _, d := range dgrams {
		p.sent[1]++
		if p.drop != nil && p.drop(true, p.sent[1]) {
			continue
		}
		if p.server == nil {
			o, hs, err := p.cfg.HandleClientHello(p.now, testAddr, d)
			if err != nil {
				return nil, err
			}
			p.server = hs
			out = append(out, o...)
			continue
		}
		o, _, err := p.server.HandleDatagram(p.now, testAddr, d)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// toClient delivers server datagrams and returns the client's answers.
func (p *pair) toClient(dgrams [][]byte) ([][]byte, bool, error) {
	var out [][]byte
	done := false
	for _, d := range dgrams {
		p.sent[0]++
		if p.drop != nil && p.drop(false, p.sent[0]) {
			continue
		}
		o, dn, err := p.client.HandleDatagram(p.now, d)
		if err != nil {
			return nil, false, err
		}
		out, done = append(out, o...), dn
	}
	return out, done, nil
}

// run exchanges datagrams, firing the earliest timer when both sides fall
// silent, until the client is done and the server has its session.
func (p *pair) run() error {
	fromClient := p.client.Start(p.now)
	for range 200 {
		fromServer, err := p.toServer(fromClient)
		if err != nil {
			return err
		}
		fromClient, _, err = p.toClient(fromServer)
		if err != nil {
			return err
		}
		if p.client.Session() != nil && p.server != nil && p.server.Session() != nil {
			return nil
		}
		if len(fromClient) == 0 {
			// Advance to the earliest armed timer of either side.
			cd, cok := p.client.NextTimeout()
			var sd time.Time
			sok := false
			if p.server != nil {
				sd, sok = p.server.NextTimeout()
			}
			switch {
			case cok && (!sok || !sd.Before(cd)):
				p.now = cd
				if fromClient, err = p.client.HandleTimeout(p.now); err != nil {
					return err
				}
			case sok:
				p.now = sd
				o, err := p.server.HandleTimeout(p.now)
				if err != nil {
					return err
				}
				if fromClient, _, err = p.toClient(o); err != nil {
					return err
				}
			default:
				return errors.New("both sides idle without a timer")
			}
		}
	}
	return errors.New("handshake did not finish")
}

// checkTraffic sends application data both ways over the two sessions.
func checkTraffic(t *testing.T, client, server *Session) {
	t.Helper()
	rec, err := client.Seal(nil, []byte("ping"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ParseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, typ, err := server.Open(nil, &r)
	if err != nil || typ != TypeApplicationData || string(got) != "ping" {
		t.Fatalf("server open: %q %v %v", got, typ, err)
	}
	rec, err = server.Seal(nil, []byte("pong"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err = ParseRecord(rec); err != nil {
		t.Fatal(err)
	}
	got, typ, err = client.Open(nil, &r)
	if err != nil || typ != TypeApplicationData || string(got) != "pong" {
		t.Fatalf("client open: %q %v %v", got, typ, err)
	}
}

func TestClientServerHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		cid  []byte
		drop func(toServer bool, n int) bool
	}{
		{"device CID", []byte{1, 2, 3, 4, 5, 6, 7, 8}, nil},
		{"no device CID", nil, nil},
		{"lost first ClientHello", nil, func(ts bool, n int) bool { return ts && n == 1 }},
		{"lost HelloVerifyRequest", nil, func(ts bool, n int) bool { return !ts && n == 1 }},
		{"lost second ClientHello", nil, func(ts bool, n int) bool { return ts && n == 2 }},
		{"lost server flight", []byte{8, 7, 6, 5, 4, 3, 2, 1}, func(ts bool, n int) bool { return !ts && n == 2 }},
		{"lost client flight", nil, func(ts bool, n int) bool { return ts && n == 3 }},
		{"lost server Finished", []byte{8, 7, 6, 5, 4, 3, 2, 1}, func(ts bool, n int) bool { return !ts && n == 3 }},
		{"every other lost", nil, func(ts bool, n int) bool { return n%2 == 0 && n < 6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devKey := mustP256(t)
			s := newTestServer(t, devKey)
			p := newPair(t, s, devKey, tc.cid)
			p.drop = tc.drop
			if err := p.run(); err != nil {
				t.Fatal(err)
			}
			cs, ss := p.client.Session(), p.server.Session()
			if !bytes.Equal(cs.MasterSecret, ss.MasterSecret) || !bytes.Equal(cs.ClientCID, ss.ServerCID) ||
				!bytes.Equal(cs.ServerCID, ss.ClientCID) || !ss.DeviceKey.Equal(&devKey.PublicKey) {
				t.Fatalf("sessions differ: client %+v server %+v", cs, ss)
			}
			if tc.cid == nil && ss.ClientCID != nil {
				t.Fatalf("server uses CID %x the device did not ask for", ss.ClientCID)
			}
			checkTraffic(t, cs, ss)
			// An unauthenticated alert cannot undo a finished handshake.
			alert, _ := AppendHeader(nil, &Header{Type: TypeAlert, Version: Version, Seq: 99, Length: 2})
			alert = append(alert, alertLevelFatal, byte(AlertHandshakeFailure))
			if _, done, err := p.client.HandleDatagram(p.now, alert); err != nil || !done || p.client.Session() != cs {
				t.Fatalf("finished client on a plaintext alert: done %v, err %v", done, err)
			}
		})
	}
}

func TestClientRefusesWrongServerKey(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	p := newPair(t, s, devKey, nil)
	p.client.cfg.ServerKey = &mustP256(t).PublicKey
	err := p.run()
	if !errors.Is(err, ErrBadServerKeyExchange) || err.Error() != "dtls: bad ServerKeyExchange signature" {
		t.Fatalf("err = %v, want ErrBadServerKeyExchange", err)
	}
	if _, ok := p.client.NextTimeout(); ok || p.client.Session() != nil {
		t.Fatal("failed client keeps a timer or a session")
	}
	alert := p.client.Alert()
	rec, rest, err := ParseRecord(alert)
	if err != nil || len(rest) != 0 || rec.Header.Type != TypeAlert || rec.Header.Epoch != 0 ||
		!bytes.Equal(rec.Body, []byte{alertLevelFatal, byte(AlertDecryptError)}) {
		t.Fatalf("client alert % x: %v", alert, err)
	}
	// The server ignores the alert; its handshake ends by timing out.
	if _, _, err := p.server.HandleDatagram(p.now, testAddr, alert); err != nil {
		t.Fatalf("server on the client's alert: %v", err)
	}
}

func TestServerRefusesUnknownDeviceWithClient(t *testing.T) {
	s := newTestServer(t, mustP256(t))
	p := newPair(t, s, mustP256(t), nil)
	if err := p.run(); !errors.Is(err, ErrUnknownDeviceKey) {
		t.Fatalf("err = %v, want ErrUnknownDeviceKey", err)
	}
}

// TestClientStopsOnServerAlert feeds the server's alert after it refused
// an unknown device key to the client, which must stop at once.
func TestClientStopsOnServerAlert(t *testing.T) {
	s := newTestServer(t, mustP256(t))
	p := newPair(t, s, mustP256(t), nil)
	if err := p.run(); !errors.Is(err, ErrUnknownDeviceKey) {
		t.Fatalf("server: err = %v, want ErrUnknownDeviceKey", err)
	}
	alert := p.server.Alert()
	warning := bytes.Clone(alert)
	warning[len(warning)-2] = 1
	for _, tc := range []struct {
		name  string
		dgram []byte
		fail  bool
	}{
		{"warning", warning, false},
		{"fatal", alert, true},
	} {
		_, _, err := p.client.HandleDatagram(p.now, tc.dgram)
		if tc.fail != (err != nil) {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if tc.fail && (!errors.Is(err, ErrPeerAlert) || err.Error() != "dtls: fatal alert from the server: description 49") {
			t.Fatalf("%s: err = %v, want ErrPeerAlert with access_denied", tc.name, err)
		}
	}
	if _, ok := p.client.NextTimeout(); ok {
		t.Fatal("client keeps its timer after a fatal alert")
	}
	if p.client.Alert() != nil {
		t.Fatal("client answers an alert with an alert")
	}
}

func TestClientTimesOut(t *testing.T) {
	c, err := NewClientHandshake(&ClientConfig{Key: mustP256(t), ServerKey: &mustP256(t).PublicKey, MaxRetransmits: 2})
	if err != nil {
		t.Fatal(err)
	}
	first := c.Start(t0)
	now, sends := t0, 0
	for {
		d, ok := c.NextTimeout()
		if !ok {
			t.Fatal("timer disarmed before the timeout error")
		}
		now = d
		out, err := c.HandleTimeout(now)
		if errors.Is(err, ErrHandshakeTimeout) {
			break
		}
		if err != nil || len(out) != 1 || bytes.Equal(out[0], first[0]) {
			t.Fatalf("resend: %d datagrams, err %v (a resend needs a fresh record sequence number)", len(out), err)
		}
		sends++
	}
	if sends != 2 || now.Sub(t0) != 7*time.Second {
		t.Fatalf("%d resends, gave up after %v; want 2 after 7s", sends, now.Sub(t0))
	}
}

func TestNewClientHandshakeRefusesBadConfig(t *testing.T) {
	k := mustP256(t)
	for _, cfg := range []ClientConfig{
		{ServerKey: &k.PublicKey},
		{Key: k},
		{Key: k, ServerKey: &k.PublicKey, ConnectionID: []byte{1, 2, 3}},
	} {
		if _, err := NewClientHandshake(&cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestClientReassemblesServerFlight splits the server flight into small
// fragments, one record per datagram, and delivers them in reverse order:
// the client answers only once the last piece is in.
func TestClientReassemblesServerFlight(t *testing.T) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	p := newPair(t, s, devKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	hvr, err := p.toServer(p.client.Start(t0))
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := p.toClient(hvr)
	if err != nil {
		t.Fatal(err)
	}
	flight, err := p.toServer(second)
	if err != nil || len(flight) != 1 {
		t.Fatalf("server flight: %d datagrams, %v", len(flight), err)
	}
	rec, _, err := ParseRecord(flight[0])
	if err != nil {
		t.Fatal(err)
	}
	var pieces [][]byte
	for body := rec.Body; len(body) > 0; {
		h, frag, more, err := ParseHandshakeFragment(body)
		if err != nil {
			t.Fatal(err)
		}
		body = more
		frags, err := FragmentHandshake(h.Type, h.MessageSeq, frag, 24)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frags {
			d, err := AppendHeader(nil, &Header{Type: TypeHandshake, Version: Version, Seq: uint64(100 + len(pieces)), Length: uint16(len(f))})
			if err != nil {
				t.Fatal(err)
			}
			pieces = append(pieces, append(d, f...))
		}
	}
	var answer [][]byte
	for i := len(pieces) - 1; i >= 0; i-- {
		out, _, err := p.client.HandleDatagram(t0, pieces[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 0 && i != 0 {
			t.Fatalf("client answered before the last fragment (%d left)", i)
		}
		answer = out
	}
	if len(answer) != 1 {
		t.Fatalf("client sent %d datagrams after the whole flight, want 1", len(answer))
	}
	fin, err := p.toServer(answer)
	if err != nil || p.server.Session() == nil {
		t.Fatalf("server did not finish: %v", err)
	}
	if _, done, err := p.toClient(fin); err != nil || !done {
		t.Fatalf("client: done %v, err %v", done, err)
	}
	checkTraffic(t, p.client.Session(), p.server.Session())
}
