package device

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// udpTestServer is a minimal Gen 3 server for the SDK's tests, built from
// protocol/dtls and protocol's reliability: handshakes by address, sessions
// by connection ID (rebound on type 253), every CON acknowledged once and
// answered from the cache when repeated. Messages that reach it are queued
// on msgs.
type udpTestServer struct {
	t    *testing.T
	pc   *net.UDPConn
	cfg  *dtls.ServerConfig
	key  *ecdsa.PrivateKey
	msgs chan srvMsg

	mu         sync.Mutex
	hs         map[netip.AddrPort]*dtls.ServerHandshake
	registered map[*dtls.ServerHandshake]bool
	sess       map[string]*srvSession
	ignore     func(m *protocol.Message) bool // CONs left unacknowledged
	handshakes atomic.Int32
	moved      atomic.Int32 // type-253 records
	unknownCID atomic.Int32
	dups       atomic.Int32 // repeated CONs answered from the cache
	nextID     uint16
	// seqs holds every (connection ID, epoch, sequence number) of the
	// device's records on a known session; reused counts repeats, which
	// with no duplicating fault mean a CCM nonce sealed twice.
	seqs   map[string]bool
	reused atomic.Int32
}

type srvSession struct {
	s    *dtls.Session
	addr netip.AddrPort
	in   protocol.Dedup
}

type srvMsg struct {
	m    protocol.Message
	cid  string
	addr netip.AddrPort
}

func newUDPTestServer(t *testing.T, devKey *ecdsa.PublicKey) *udpTestServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, dtls.CookieSecretLen)
	rand.Read(secret)
	cookies, err := dtls.NewCookies(secret)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpTestServer{t: t, pc: pc, key: key, msgs: make(chan srvMsg, 1000),
		hs: map[netip.AddrPort]*dtls.ServerHandshake{}, registered: map[*dtls.ServerHandshake]bool{}, sess: map[string]*srvSession{},
		seqs: map[string]bool{}}
	s.cfg = &dtls.ServerConfig{Key: key, Cookies: cookies,
		DeviceKey: func(pub *ecdsa.PublicKey) bool { return pub.Equal(devKey) }}
	done := make(chan struct{})
	go func() { defer close(done); s.loop() }()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

func (s *udpTestServer) addr() string { return s.pc.LocalAddr().String() }

func (s *udpTestServer) loop() {
	buf := make([]byte, 4096)
	for {
		n, addr, err := s.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s.datagram(addr, bytes.Clone(buf[:n]))
	}
}

func (s *udpTestServer) datagram(addr netip.AddrPort, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if t := dtls.ContentType(b[0]); t.HasCID() {
		for rest := b; len(rest) > 0; {
			rec, after, err := dtls.ParseRecord(rest)
			if err != nil {
				return
			}
			rest = after
			ss := s.sess[string(rec.Header.CID)]
			if ss == nil {
				if hs := s.hs[addr]; hs != nil { // the device's Finished
					s.handshake(now, addr, hs, b)
					return
				}
				s.unknownCID.Add(1)
				continue
			}
			seq := fmt.Sprintf("%x/%d/%d", rec.Header.CID, rec.Header.Epoch, rec.Header.Seq)
			if s.seqs[seq] {
				s.reused.Add(1) // or a duplicate sent by Faults.Duplicate
			}
			s.seqs[seq] = true
			content, typ, err := ss.s.Open(nil, &rec)
			if err != nil || typ != dtls.TypeApplicationData {
				continue
			}
			if rec.Header.Type == dtls.TypeMoveSession {
				s.moved.Add(1)
			}
			ss.addr = addr
			s.coap(now, string(rec.Header.CID), ss, content)
		}
		return
	}
	if hs := s.hs[addr]; hs != nil {
		s.handshake(now, addr, hs, b)
		return
	}
	out, hs, err := s.cfg.HandleClientHello(now, addr, b)
	if err != nil {
		return
	}
	s.write(addr, out)
	if hs != nil {
		s.hs[addr] = hs
	}
}

func (s *udpTestServer) handshake(now time.Time, addr netip.AddrPort, hs *dtls.ServerHandshake, b []byte) {
	out, done, err := hs.HandleDatagram(now, addr, b)
	if err != nil {
		if a := hs.Alert(); a != nil {
			s.write(addr, [][]byte{a})
		}
		delete(s.hs, addr)
		return
	}
	s.write(addr, out)
	if done {
		// The handshake stays for the address: a repeat of the device's
		// flight (our Finished was lost) makes it resend its last flight.
		// (A late datagram of the old session must not bring it back after
		// forget, so each handshake registers its session once.)
		if !s.registered[hs] {
			s.registered[hs] = true
			sess := hs.Session()
			s.sess[string(sess.ServerCID)] = &srvSession{s: sess, addr: addr}
			s.handshakes.Add(1)
		}
	}
}

func (s *udpTestServer) write(addr netip.AddrPort, out [][]byte) {
	for _, d := range out {
		s.pc.WriteToUDPAddrPort(d, addr)
	}
}

// coap handles one message: CONs are deduplicated and acknowledged (a time
// request with the time), then every new message is queued.
func (s *udpTestServer) coap(now time.Time, cid string, ss *srvSession, b []byte) {
	var m protocol.Message
	if err := m.Decode(b); err != nil {
		return
	}
	if m.Type == protocol.Confirmable {
		if s.ignore != nil && s.ignore(&m) {
			return // as if lost
		}
		dup, replies := ss.in.Receive(now, m.ID)
		if dup {
			s.dups.Add(1)
			for _, r := range replies {
				s.sealTo(ss, r)
			}
			return
		}
		ack := protocol.NewEmptyACK(m.ID)
		if protocol.Classify(&m) == protocol.KindTimeRequest {
			tok, _ := m.Token1()
			ack = protocol.NewTimeResponse(m.ID, tok, uint32(now.Unix()))
		}
		ab, _ := ack.MarshalBinary()
		ss.in.Reply(m.ID, ab)
		s.sealTo(ss, ab)
	}
	m.Token, m.Payload = bytes.Clone(m.Token), bytes.Clone(m.Payload)
	m.Options = append([]protocol.Option(nil), m.Options...)
	for i := range m.Options {
		m.Options[i].Value = bytes.Clone(m.Options[i].Value)
	}
	select {
	case s.msgs <- srvMsg{m: m, cid: cid, addr: ss.addr}:
	default:
	}
}

func (s *udpTestServer) sealTo(ss *srvSession, msg []byte) {
	rec, err := ss.s.Seal(nil, msg)
	if err != nil {
		s.t.Error(err)
		return
	}
	s.pc.WriteToUDPAddrPort(rec, ss.addr)
}

// send seals m (with the next server message ID) to the only session.
func (s *udpTestServer) send(m protocol.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	m.ID = s.nextID
	b, _ := m.MarshalBinary()
	for _, ss := range s.sess {
		s.sealTo(ss, b)
	}
}

// forget drops every session, as a server restarted without saving them.
func (s *udpTestServer) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sess)
}

// restart saves every session as bytes and restores it, as a restart
// that keeps them would.
func (s *udpTestServer) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cid, ss := range s.sess {
		b, err := ss.s.MarshalBinary()
		if err != nil {
			s.t.Fatal(err)
		}
		r, err := dtls.UnmarshalSession(b)
		if err != nil {
			s.t.Fatal(err)
		}
		s.sess[cid] = &srvSession{s: r, addr: ss.addr}
	}
}

// next waits for the next message that match accepts.
func (s *udpTestServer) next(t *testing.T, what string, match func(m *protocol.Message) bool) srvMsg {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case sm := <-s.msgs:
			if match(&sm.m) {
				return sm
			}
		case <-timeout:
			t.Fatalf("no %s from the device", what)
		}
	}
}

func kindIs(k protocol.Kind) func(*protocol.Message) bool {
	return func(m *protocol.Message) bool { return protocol.Classify(m) == k }
}

// newUDPDevice returns a UDP device for srv (not running) and its state log.
func newUDPDevice(t *testing.T, key *ecdsa.PrivateKey, srv *udpTestServer, mod func(*Config)) (*Device, *stateLog) {
	t.Helper()
	log := &stateLog{ch: make(chan State, 100)}
	cfg := Config{ID: "0123456789abcdef01234567", Transport: protocol.TransportUDP, ECPrivateKey: key,
		ECServerKey: &srv.key.PublicKey, ServerAddr: srv.addr(), PlatformID: 12, DeviceDescribe: true,
		OnState: log.on, Backoff: Backoff{Min: 50 * time.Millisecond, Max: 100 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, log
}

type stateLog struct{ ch chan State }

func (l *stateLog) on(s State, _ error) {
	select {
	case l.ch <- s:
	default:
	}
}

func (l *stateLog) wait(t *testing.T, want State) {
	t.Helper()
	l.waitWithin(t, want, 30*time.Second)
}

// waitWithin is wait with its own limit, for links that lose datagrams.
func (l *stateLog) waitWithin(t *testing.T, want State, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case s := <-l.ch:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("device never %s", want)
		}
	}
}

// runDevice runs d until the test ends or the returned stop is called.
func runDevice(t *testing.T, d *Device) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestUDPDeviceSession(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	d, log := newUDPDevice(t, key, srv, nil)
	var calls atomic.Int32
	d.Function("led", func(_ context.Context, arg string) int32 { calls.Add(1); return int32(len(arg)) })
	d.Variable("temp", func() float64 { return 21.5 })
	got := make(chan string, 10)
	d.Subscribe("cmd", func(name, data string) { got <- name + "=" + data })
	runDevice(t, d)

	// Hello: CON, message ID 1 on a fresh session, carrying the device ID.
	hello := srv.next(t, "hello", kindIs(protocol.KindHello))
	h, err := protocol.ParseHelloMessage(&hello.m)
	if err != nil {
		t.Fatal(err)
	}
	if hello.m.Type != protocol.Confirmable || hello.m.ID != 1 || !bytes.Equal(h.DeviceID, d.id[:]) || h.PlatformID != 12 {
		t.Fatalf("hello %v id %d device %x platform %d", hello.m.Type, hello.m.ID, h.DeviceID, h.PlatformID)
	}
	log.wait(t, Online)
	srv.next(t, "subscription to cmd", func(m *protocol.Message) bool {
		sub, err := protocol.ParseSubscribe(m)
		return err == nil && sub.Prefix == "cmd"
	})
	if _, ok := waitTime(d); !ok {
		t.Error("no time from the piggy-backed reply")
	}

	// Function call: empty ACK (not queued), then the result as a CON.
	srv.send(protocol.NewFunctionCall(0, 7, "led", "on!"))
	res := srv.next(t, "function result", func(m *protocol.Message) bool {
		tok, _ := m.Token1()
		return m.Code == protocol.CodeChanged && tok == 7
	})
	if r, err := protocol.ParseFunctionResult(&res.m); err != nil || r != 3 || res.m.Type != protocol.Confirmable {
		t.Fatalf("result %d %v type %v", r, err, res.m.Type)
	}
	// Variable.
	srv.send(protocol.NewVariableRequest(0, 8, "temp"))
	v := srv.next(t, "variable value", func(m *protocol.Message) bool {
		tok, _ := m.Token1()
		return m.Code == protocol.CodeContent && tok == 8
	})
	if val, err := protocol.DecodeVariable(protocol.VariableDouble, v.m.Payload); err != nil || val != 21.5 {
		t.Fatalf("variable %v %v", val, err)
	}
	// Event to the device.
	ev, _ := protocol.NewEvent(protocol.Confirmable, 0, protocol.Event{Name: "cmd/x", Data: []byte("1"), Private: true, TTL: 60})
	srv.send(ev)
	select {
	case s := <-got:
		if s != "cmd/x=1" {
			t.Fatalf("event %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event not delivered")
	}
	// Event from the device, acknowledged.
	if err := d.Publish(context.Background(), "temp", "21", PublishOptions{WithAck: true}); err != nil {
		t.Fatal(err)
	}
	pub := srv.next(t, "event", func(m *protocol.Message) bool {
		e, err := protocol.ParseEvent(m)
		return err == nil && e.Name == "temp"
	})
	if pub.m.Type != protocol.Confirmable {
		t.Errorf("event sent %v, want CON over UDP", pub.m.Type)
	}
	if srv.handshakes.Load() != 1 || calls.Load() != 1 {
		t.Errorf("handshakes %d calls %d", srv.handshakes.Load(), calls.Load())
	}
}

func waitTime(d *Device) (time.Time, bool) {
	for range 200 {
		if t, ok := d.Time(); ok {
			return t, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, false
}

// TestUDPDeviceRetransmits: the server ignores the first copy of every
// event, so the device must resend it; the server sees it once.
func TestUDPDeviceRetransmits(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	ignored := map[uint16]bool{}
	srv.mu.Lock()
	srv.ignore = func(m *protocol.Message) bool { // under srv.mu
		if e, err := protocol.ParseEvent(m); err != nil || e.Name != "slow" || ignored[m.ID] {
			return false
		}
		ignored[m.ID] = true
		return true
	}
	srv.mu.Unlock()
	d, log := newUDPDevice(t, key, srv, nil)
	runDevice(t, d)
	log.wait(t, Online)
	start := time.Now()
	if err := d.Publish(context.Background(), "slow", "x", PublishOptions{WithAck: true}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < protocol.AckTimeout {
		t.Errorf("ACK after %v; the first copy was not acknowledged, so at least %v", el, protocol.AckTimeout)
	}
}

// TestUDPDeviceFaults runs a device with lossy, duplicating, reordering
// links: it still comes online, and every acknowledged event reaches the
// server exactly once.
func TestUDPDeviceFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("retransmission takes seconds")
	}
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	d, log := newUDPDevice(t, key, srv, func(c *Config) {
		c.UDP.Faults = Faults{Drop: 0.2, Duplicate: 0.3, Reorder: 0.3}
		// Shorter timers, the same exchanges: a lost datagram costs half
		// a second instead of 4 s (TestUDPDeviceRetransmits keeps the
		// firmware's timers).
		c.UDP.Retransmit = 500 * time.Millisecond
		c.HandshakeTimeout = time.Minute
	})
	runDevice(t, d)
	// With a fifth of the datagrams lost a handshake may need several
	// retransmissions, or a second attempt after HandshakeTimeout.
	log.waitWithin(t, Online, 3*time.Minute)
	// Every transmission of one message may be lost (a fifth each way,
	// four transmissions: about 1.7% of messages), and then the device
	// drops the connection and reconnects: that event is published again
	// under another name, and may or may not have reached the server.
	const n = 6
	acked := map[string]bool{}
	for i := 0; len(acked) < n; i++ {
		if i == 3*n {
			t.Fatalf("%d of %d events acknowledged in %d attempts", len(acked), n, i)
		}
		data := fmt.Sprint(i)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := d.Publish(ctx, "lossy", data, PublishOptions{WithAck: true})
		cancel()
		if err != nil {
			t.Logf("event %s: %v", data, err)
			deadline := time.Now().Add(3 * time.Minute)
			for d.State() != Online {
				if time.Now().After(deadline) {
					t.Fatal("device not back online")
				}
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		acked[data] = true
	}
	seen := map[string]int{}
	for missing := n; missing > 0; {
		m := srv.next(t, "event", func(m *protocol.Message) bool {
			e, err := protocol.ParseEvent(m)
			return err == nil && e.Name == "lossy"
		})
		e, _ := protocol.ParseEvent(&m.m)
		data := string(e.Data)
		if seen[data]++; acked[data] && seen[data] == 1 {
			missing--
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("event %s handled %d times", k, c)
		}
	}
	t.Logf("server answered %d repeated CONs from its cache", srv.dups.Load())
}

// TestUDPDeviceResume: with Resume, the second connection sends records of
// type 253 on the saved session with no handshake and a ping first; a
// server that saved and restored its sessions takes them.
func TestUDPDeviceResume(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	var states atomic.Int32
	d, log := newUDPDevice(t, key, srv, func(c *Config) {
		c.UDP.Resume = true
		c.UDP.OnSession = func([]byte) { states.Add(1) }
	})
	stop := runDevice(t, d)
	log.wait(t, Online)
	srv.next(t, "hello", kindIs(protocol.KindHello))
	stop()
	if states.Load() == 0 {
		t.Fatal("OnSession not called at the end of the connection")
	}
	srv.restart()
	drain(srv)
	runDevice(t, d)
	log.wait(t, Online)
	ping := srv.next(t, "ping", kindIs(protocol.KindPing))
	if !d.Resumed() {
		t.Error("Resumed() is false on a resumed connection")
	}
	if srv.handshakes.Load() != 1 || srv.moved.Load() == 0 {
		t.Fatalf("handshakes %d, type-253 records %d; want 1 and some", srv.handshakes.Load(), srv.moved.Load())
	}
	if ping.m.ID < 2 {
		t.Errorf("resumed ping has message ID %d; the counter must continue", ping.m.ID)
	}
	// The session works both ways after resuming.
	if err := d.Publish(context.Background(), "after", "", PublishOptions{WithAck: true}); err != nil {
		t.Fatal(err)
	}
}

// TestUDPDeviceResumeUnknownFallsBack: a server that lost the session
// drops the resumed records; the device gives up after PingTimeout and runs
// a full handshake.
func TestUDPDeviceResumeUnknownFallsBack(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	errs := make(chan error, 10)
	log := &stateLog{ch: make(chan State, 100)}
	d, _ := newUDPDevice(t, key, srv, func(c *Config) {
		c.UDP.Resume = true
		c.PingTimeout = 300 * time.Millisecond
		c.OnState = func(s State, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			log.on(s, err)
		}
	})
	stop := runDevice(t, d)
	log.wait(t, Online)
	stop()
	srv.forget()
	runDevice(t, d)
	log.wait(t, Online)
	if srv.handshakes.Load() != 2 || srv.unknownCID.Load() == 0 {
		t.Fatalf("handshakes %d, unknown-CID records %d", srv.handshakes.Load(), srv.unknownCID.Load())
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrResumeFailed) {
			t.Errorf("error %v, want ErrResumeFailed", err)
		}
	default:
		t.Error("no error reported for the failed resumption")
	}
}

// TestUDPDeviceSessionStateToAnotherDevice hands the session to a second
// Device value (another process), which resumes it.
func TestUDPDeviceSessionStateToAnotherDevice(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	var last atomic.Value
	d, log := newUDPDevice(t, key, srv, func(c *Config) { c.UDP.OnSession = func(b []byte) { last.Store(b) } })
	stop := runDevice(t, d)
	log.wait(t, Online)
	if live, err := d.SessionState(); err != nil || len(live) == 0 {
		t.Fatalf("SessionState online: %v", err)
	}
	stop()
	// The state saved when the connection ended: the records sent after a
	// snapshot taken while online would make it stale.
	state, _ := last.Load().([]byte)
	if _, err := d.SessionState(); !errors.Is(err, ErrNotUDP) {
		t.Errorf("SessionState offline: %v", err)
	}
	d2, log2 := newUDPDevice(t, key, srv, func(c *Config) { c.UDP.Session = state })
	runDevice(t, d2)
	log2.wait(t, Online)
	if srv.handshakes.Load() != 1 {
		t.Fatalf("handshakes %d, want 1", srv.handshakes.Load())
	}
	if _, err := New(Config{ID: d.ID(), Transport: protocol.TransportUDP, ECPrivateKey: key,
		ECServerKey: &srv.key.PublicKey, ServerAddr: srv.addr(), UDP: UDPOptions{Session: []byte{9, 9}}}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad saved session: %v, want ErrConfig", err)
	}
}

// TestUDPDeviceCrashNeverReusesSequence: a device that keeps its session
// in storage of its own (OnSession) and crashes, so that its connection's
// end is never saved, restarts from the latest state it stored. That state
// must lie beyond every record sequence number (a CCM nonce under the
// session's keys) and message ID the crashed connection used: here the
// crash comes after a resumed connection sent records, where the state of
// the previous connection's end was stale. Deterministic: the "crash" is
// the state stored at the moment the server had all of the records.
func TestUDPDeviceCrashNeverReusesSequence(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	var stored atomic.Value // the device's own storage
	d, log := newUDPDevice(t, key, srv, func(c *Config) {
		c.UDP.Resume = true
		c.UDP.OnSession = func(b []byte) { stored.Store(bytes.Clone(b)) }
	})
	stop := runDevice(t, d)
	log.wait(t, Online)
	srv.next(t, "hello", kindIs(protocol.KindHello))
	if stored.Load() == nil {
		t.Error("OnSession not called while the first connection was up")
	}
	// The link drops; the device resumes its session and sends on it.
	d.Disconnect()
	log.wait(t, Online)
	if !d.Resumed() {
		t.Fatal("the second connection did not resume")
	}
	for i := range 3 {
		if err := d.Publish(context.Background(), "before-crash", fmt.Sprint(i), PublishOptions{WithAck: true}); err != nil {
			t.Fatal(err)
		}
	}
	crash := stored.Load().([]byte)
	stop() // what it still sends and saves is lost with the crash
	drain(srv)

	d2, log2 := newUDPDevice(t, key, srv, func(c *Config) {
		c.UDP.Session = crash
		c.PingTimeout = 10 * time.Second // a reused number drops the ping: fail sooner
	})
	runDevice(t, d2)
	log2.waitWithin(t, Online, time.Minute)
	if err := d2.Publish(context.Background(), "after-crash", "", PublishOptions{WithAck: true}); err != nil {
		t.Fatal(err)
	}
	if n := srv.reused.Load(); n != 0 {
		t.Fatalf("%d records reused a sequence number of the crashed connection", n)
	}
	if !d2.Resumed() || srv.handshakes.Load() != 1 {
		t.Errorf("resumed %v, handshakes %d; want the stored session resumed", d2.Resumed(), srv.handshakes.Load())
	}
	// A message ID the server remembers would be answered from its cache
	// and the event lost.
	srv.next(t, "event after the crash", func(m *protocol.Message) bool {
		e, err := protocol.ParseEvent(m)
		return err == nil && e.Name == "after-crash"
	})
}

// TestUDPDeviceNothingSealedAfterClose pins the order a saved session
// relies on: a connection is closed before its session is saved, and once
// closed nothing seals another record on it (not a writer, not a
// retransmission, not a cached answer to a repeated CON), so the saved
// sequence number is never used twice. Deterministic: it drives the closed
// connection directly.
func TestUDPDeviceNothingSealedAfterClose(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	d, log := newUDPDevice(t, key, srv, func(c *Config) { c.Backoff = Backoff{Min: time.Hour, Max: time.Hour} })
	runDevice(t, d)
	log.wait(t, Online)
	s := d.session()
	// A server CON the device answers, so that a repeat of it would be
	// answered from the device's cache.
	ping := protocol.NewPing(0)
	srv.send(ping)
	srv.next(t, "ack of the server's ping", func(m *protocol.Message) bool { return m.Type == protocol.Acknowledgement })
	srv.mu.Lock()
	var repeat []byte
	for _, ss := range srv.sess {
		again := protocol.NewPing(srv.nextID)
		b, _ := again.MarshalBinary()
		var err error
		if repeat, err = ss.s.Seal(nil, b); err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Unlock()

	s.closeConn()
	seq := func() uint64 {
		s.udp.mu.Lock()
		defer s.udp.mu.Unlock()
		return s.udp.sess.WriteSeq
	}
	before := seq()
	if err := s.send(&ping, true, nil); !errors.Is(err, ErrOffline) {
		t.Errorf("send after close: %v, want ErrOffline", err)
	}
	own := protocol.NewPing(7)
	b, _ := own.MarshalBinary()
	if _, err := s.udp.Write(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after close: %v, want net.ErrClosed", err)
	}
	s.udp.received(s.udp.sock, repeat)
	if again, err := s.udp.readFailed(s.udp.sock, os.ErrDeadlineExceeded); again || !errors.Is(err, net.ErrClosed) {
		t.Errorf("retransmission timer after close: again %v, %v", again, err)
	}
	if after := seq(); after != before {
		t.Fatalf("%d records sealed after close (sequence number %d, then %d)", after-before, before, after)
	}
}

// TestUDPDeviceChangeAddress moves the device to a new source port; the
// server follows the session by its connection ID.
func TestUDPDeviceChangeAddress(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	d, log := newUDPDevice(t, key, srv, nil)
	runDevice(t, d)
	log.wait(t, Online)
	if d.Resumed() {
		t.Error("Resumed() is true after a full handshake")
	}
	before := d.LocalAddr().String()
	first := srv.next(t, "hello", kindIs(protocol.KindHello))
	if err := d.ChangeAddress(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.LocalAddr().String() == before {
		t.Fatal("same local address after ChangeAddress")
	}
	if err := d.Publish(context.Background(), "moved", "", PublishOptions{WithAck: true}); err != nil {
		t.Fatal(err)
	}
	m := srv.next(t, "event", func(m *protocol.Message) bool {
		e, err := protocol.ParseEvent(m)
		return err == nil && e.Name == "moved"
	})
	if m.cid != first.cid || m.addr == first.addr || srv.moved.Load() == 0 {
		t.Errorf("cid %x→%x addr %v→%v moved %d", first.cid, m.cid, first.addr, m.addr, srv.moved.Load())
	}
	// The server's reply reaches the new socket.
	got := make(chan struct{}, 1)
	d.Subscribe("to", func(string, string) { got <- struct{}{} })
	ev, _ := protocol.NewEvent(protocol.Confirmable, 0, protocol.Event{Name: "to/x", Private: true, TTL: 60})
	srv.send(ev)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("event to the moved device not delivered")
	}
}

func TestUDPConfig(t *testing.T) {
	key := p256(t)
	srvKey := p256(t)
	rsaKey, _ := protocol.GenerateDeviceKey(nil)
	rsaDER, _ := protocol.MarshalPrivateKeyDER(rsaKey)
	ecDER, _ := protocol.MarshalPrivateKeyDER(key)
	base := Config{ID: "0123456789abcdef01234567", Transport: protocol.TransportUDP, ServerAddr: "example.com"}
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"ec key", func(c *Config) { c.ECPrivateKey, c.ECServerKey = key, &srvKey.PublicKey }, true},
		{"ec DER", func(c *Config) { c.PrivateKeyDER, c.ECServerKey = ecDER, &srvKey.PublicKey }, true},
		{"rsa DER over udp", func(c *Config) { c.PrivateKeyDER, c.ECServerKey = rsaDER, &srvKey.PublicKey }, false},
		{"no server key", func(c *Config) { c.ECPrivateKey = key }, false},
		{"no key", func(c *Config) { c.ECServerKey = &srvKey.PublicKey }, false},
		{"unknown transport", func(c *Config) { c.Transport = 7 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			d, err := New(cfg)
			if (err == nil) != c.ok {
				t.Fatalf("New: %v, want ok %v", err, c.ok)
			}
			if err == nil {
				if d.cfg.ServerAddr != "example.com:5684" || d.cfg.KeepAlive != DefaultUDPKeepAlive || d.cfg.PingTimeout != DefaultUDPPingTimeout {
					t.Errorf("defaults: %s, keepalive %v, ping timeout %v", d.cfg.ServerAddr, d.cfg.KeepAlive, d.cfg.PingTimeout)
				}
			} else if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}
}

func drain(s *udpTestServer) {
	for {
		select {
		case <-s.msgs:
		default:
			return
		}
	}
}

// FuzzSavedSession checks that no saved session bytes crash New, and that
// whatever parses saves back to the same bytes.
func FuzzSavedSession(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSavedSession(b)
		if err != nil {
			return
		}
		out, err := s.marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %v\n%x\n%x", err, b, out)
		}
	})
}

// TestUDPDeviceResumeSendsHelloOnlyWhenNeeded: a resumed session pings and
// sends nothing more when the server acknowledged the application's
// describe before the session was saved, and a Hello (then the describes)
// when it did not.
func TestUDPDeviceResumeSendsHelloOnlyWhenNeeded(t *testing.T) {
	isAppDescribe := func(m *protocol.Message) bool {
		b, err := protocol.ParseDescribePost(m)
		return err == nil && b.Flags&protocol.DescribeApplication != 0
	}
	for _, acked := range []bool{true, false} {
		t.Run(map[bool]string{true: "acknowledged", false: "unacknowledged"}[acked], func(t *testing.T) {
			key := p256(t)
			srv := newUDPTestServer(t, &key.PublicKey)
			if !acked {
				srv.mu.Lock()
				srv.ignore = isAppDescribe
				srv.mu.Unlock()
			}
			d, log := newUDPDevice(t, key, srv, func(c *Config) { c.UDP.Resume = true })
			stop := runDevice(t, d)
			log.wait(t, Online)
			if acked {
				srv.next(t, "application describe", isAppDescribe)
				time.Sleep(200 * time.Millisecond) // its ACK reaches the device
			} else {
				time.Sleep(500 * time.Millisecond) // the describe goes out, unanswered
			}
			stop()
			drain(srv)
			runDevice(t, d)
			log.wait(t, Online)
			srv.next(t, "ping", kindIs(protocol.KindPing))
			sawHello := false
			deadline := time.After(time.Second)
		wait:
			for {
				select {
				case m := <-srv.msgs:
					sawHello = sawHello || protocol.Classify(&m.m) == protocol.KindHello
				case <-deadline:
					break wait
				}
			}
			if sawHello == acked {
				t.Errorf("Hello on the resumed session: %v; want %v", sawHello, !acked)
			}
			if srv.handshakes.Load() != 1 {
				t.Errorf("%d handshakes, want 1", srv.handshakes.Load())
			}
		})
	}
}

// TestUDPDeviceMoveEndsOnlyOnNewSocket pins when ChangeAddress's type-253
// marking ends: on an answer read from the new socket, not on a datagram
// the reader took from the old socket as it was replaced (an ACK sent
// before the move). TestUDPDeviceChangeAddress failed on that (about 1
// run in 10 under load: the publish after the move went unmarked).
// Deterministic: it hands the connection the datagrams directly, and the
// server acknowledges nothing once the move begins.
func TestUDPDeviceMoveEndsOnlyOnNewSocket(t *testing.T) {
	key := p256(t)
	srv := newUDPTestServer(t, &key.PublicKey)
	d, log := newUDPDevice(t, key, srv, nil)
	runDevice(t, d)
	log.wait(t, Online)
	c := d.session().udp
	// Records the server sealed: too short for a CoAP message, so the
	// connection opens them and queues nothing (the queue is the reader's).
	seal := func() []byte {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		var rec []byte
		for _, ss := range srv.sess {
			var err error
			if rec, err = ss.s.Seal(nil, []byte{0x40, 0x00}); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}
	moving := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.move
	}
	// The server answers nothing from here on, so nothing reaches the
	// new socket but what the test hands over: a CON the device sends
	// after the move (the rest of its describe, say) would otherwise be
	// acknowledged to the new socket and end the marking before the
	// check (seen once in CI under load).
	srv.mu.Lock()
	srv.ignore = func(*protocol.Message) bool { return true }
	srv.mu.Unlock()
	c.mu.Lock()
	old := c.sock
	c.mu.Unlock()
	if err := c.changeAddress(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.received(old, seal())
	if !moving() {
		t.Fatal("a datagram read from the replaced socket ended the move marking")
	}
	c.mu.Lock()
	sock := c.sock
	c.mu.Unlock()
	c.received(sock, seal())
	if moving() {
		t.Fatal("an answer on the new socket left the move marking on")
	}
}

// TestICMPBlind: a datagram to a port nobody listens on draws an ICMP
// "port unreachable", which a connected Linux socket reports as
// ECONNREFUSED on its next read or write. The device's socket ignores it,
// as Device OS does: the server looks silent, and only the deadline ends
// the read.
func TestICMPBlind(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nobody listens there now
	for _, tc := range []struct {
		name  string
		blind bool
	}{{"plain socket", false}, {"icmpBlind", true}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			sock := raw
			if tc.blind {
				sock = icmpBlind{raw}
			}
			var werr, rerr error
			for range 3 { // the first write draws the ICMP, a later one or the read reports it
				if _, err := sock.Write([]byte("ping")); err != nil && werr == nil {
					werr = err
				}
				time.Sleep(20 * time.Millisecond)
			}
			sock.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, rerr = sock.Read(make([]byte, 16))
			refused := errors.Is(werr, syscall.ECONNREFUSED) || errors.Is(rerr, syscall.ECONNREFUSED)
			if tc.blind {
				if werr != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
					t.Fatalf("write %v, read %v: want no write error and the read deadline", werr, rerr)
				}
			} else if !refused && runtime.GOOS == "linux" {
				t.Fatalf("write %v, read %v: the plain socket never saw the refusal (the case this guards against)", werr, rerr)
			}
		})
	}
}
