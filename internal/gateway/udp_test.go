package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestUDPSession runs a Gen 3 device through a full handshake, its Hello,
// and every kind of traffic of the TCP transport, over loopback UDP.
func TestUDPSession(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "user1")
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
		d.variables["temp"] = variable{typ: protocol.VariableInt32, value: int32(21)}
		d.appJSON = `{"f":["led"],"v":{"temp":2}}`
	})
	if e := nextEvent(t, events, eventStatus); e.Data != statusOnline {
		t.Fatalf("status event %q, want online", e.Data)
	}
	ctx := context.Background()

	ret, err := w.g.CallFunction(ctx, id.String(), "led", "on!")
	if err != nil || ret != 3 {
		t.Fatalf("CallFunction = %d, %v; want 3", ret, err)
	}
	v, err := w.g.GetVariable(ctx, id.String(), "temp")
	if err != nil || v != int32(21) {
		t.Fatalf("GetVariable = %v, %v; want 21", v, err)
	}
	if err := w.g.Signal(ctx, id.String(), true); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if err := w.g.Ping(ctx, id.String()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Device → cloud: a CON event is acknowledged and published.
	mid := d.nextID()
	m, _ := protocol.NewEvent(protocol.Confirmable, mid, protocol.Event{Name: "temp", Data: []byte("21"), Private: true})
	d.send(m)
	d.expect("event ACK", ackOf(mid))
	if e := nextEvent(t, events, "temp"); e.Data != "21" {
		t.Fatalf("event data %q", e.Data)
	}

	// Cloud → device: a subscribed event is delivered.
	sid := d.nextID()
	d.send(protocol.NewSubscribe(protocol.Confirmable, sid, protocol.Subscription{Prefix: "cmd", MyDevices: true}))
	d.expect("subscribe ACK", ackOf(sid))
	waitFor(t, "subscription", func() bool {
		w.g.router.mu.Lock()
		defer w.g.router.mu.Unlock()
		return len(w.g.lookup(id.String()).rkeys) > 0
	})
	if err := w.b.Publish(ctx, bus.Event{Name: "cmd/go", Data: "x", UserID: "user1"}); err != nil {
		t.Fatal(err)
	}
	d.expect("event cmd/go", eventNamed("cmd/go"))

	st := w.g.Stats()
	if st.UDPSignatures != 1 || st.UDPCookies != 1 || st.HandshakesOK != 1 || st.UDPSessions != 1 {
		t.Fatalf("stats %+v: want 1 signature, 1 cookie, 1 handshake, 1 session", st)
	}
	if got := w.signer.n.Load(); got != 1 {
		t.Fatalf("%d signatures, want 1", got)
	}
}

// TestUDPHandshakeRefused: a key the store does not know, the key of a
// denied device and a Hello naming another device all end without a
// session.
func TestUDPHandshakeRefused(t *testing.T) {
	cases := []struct {
		name string
		// setup provisions what the case needs and returns the key the
		// device uses and the ID its Hello names.
		setup   func(w *udpWorld) (keyName string, hello protocol.DeviceID)
		wantErr error // from the device's handshake; nil: it completes
	}{
		{"unknown key", func(w *udpWorld) (string, protocol.DeviceID) {
			return "stranger", deviceID(1)
		}, dtls.ErrPeerAlert},
		{"denied device", func(w *udpWorld) (string, protocol.DeviceID) {
			w.provisionECC(deviceID(1), testUDPKey(w.t, "device_a"), "")
			dev := w.device(deviceID(1))
			dev.Denied = true
			if err := w.st.UpdateDevice(context.Background(), dev); err != nil {
				w.t.Fatal(err)
			}
			return "device_a", deviceID(1)
		}, dtls.ErrPeerAlert},
		{"hello names another device", func(w *udpWorld) (string, protocol.DeviceID) {
			w.provisionECC(deviceID(1), testUDPKey(w.t, "device_a"), "")
			w.provisionECC(deviceID(2), testUDPKey(w.t, "device_b"), "")
			return "device_a", deviceID(2)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newUDPWorld(t, udpTestConfig())
			keyName, helloID := tc.setup(w)
			d, err := w.dialUDP(helloID, testUDPKey(t, keyName))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("handshake error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				waitFor(t, "refusal counted", func() bool { return w.g.Stats().HandshakesFailed == 1 })
				return
			}
			id := d.nextID()
			d.send(protocol.NewHello(protocol.Confirmable, id, gen3Hello(helloID)))
			d.expectNone("hello ACK", 300*time.Millisecond, ackOf(id))
			waitFor(t, "refusal counted", func() bool { return w.g.Stats().RefusedKey == 1 })
			if w.g.Online(helloID.String()) || w.g.Online(deviceID(1).String()) {
				t.Fatal("a device is online")
			}
		})
	}
}

// TestUDPDeniedAfterCache: a device denied after its key was cached by an
// earlier handshake still completes the DTLS handshake (within the cache's
// minute) but is refused at its Hello.
func TestUDPDeniedAfterCache(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	d.pc.Close()
	dev := w.device(id)
	dev.Denied = true
	if err := w.st.UpdateDevice(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	d2, err := w.dialUDP(id, key)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	mid := d2.nextID()
	d2.send(protocol.NewHello(protocol.Confirmable, mid, gen3Hello(id)))
	d2.expectNone("hello ACK", 300*time.Millisecond, ackOf(mid))
	waitFor(t, "refusal counted", func() bool { return w.g.Stats().RefusedDenied == 1 })
}

// TestUDPHelloOnLiveSession: a device that resumes its session with a
// changed state sends a Hello on the session the gateway still holds (Device
// OS 3.3.1 after an update): the gateway goes on with a new session on the
// same DTLS session, online with the new Hello, without a handshake.
func TestUDPHelloOnLiveSession(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(string) int32 { return 5 }
		d.appJSON = `{"f":["led"],"v":{}}`
	})
	first := w.g.lookup(id.String())
	h := gen3Hello(id)
	h.SystemVersion, h.Flags = 3303, protocol.HelloOTASucceeded
	d.hello(h)
	waitFor(t, "a new session with the new Hello", func() bool {
		s := w.g.lookup(id.String())
		return s != nil && s != first && w.device(id).SystemModuleVersion == 3303
	})
	if ret, err := w.g.CallFunction(context.Background(), id.String(), "led", ""); err != nil || ret != 5 {
		t.Fatalf("call after the new Hello = %d, %v", ret, err)
	}
	if st := w.g.Stats(); st.HandshakesOK != 1 || w.signer.n.Load() != 1 || st.UDPSessions != 1 {
		t.Fatalf("stats %+v: want the one handshake and one session", st)
	}
}

// TestUDPBadRecords: a replayed record and a record with a broken MAC are
// dropped and counted; the session goes on.
func TestUDPBadRecords(t *testing.T) {
	cases := []struct {
		name   string
		spoil  func(d *udpDevice, rec []byte) []byte
		replay bool
	}{
		{"replayed record", nil, true},
		{"bad MAC", func(d *udpDevice, rec []byte) []byte {
			b := append([]byte(nil), rec...)
			b[len(b)-1] ^= 0x80
			return b
		}, false},
		{"truncated record", func(d *udpDevice, rec []byte) []byte { return rec[:len(rec)-5] }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newUDPWorld(t, udpTestConfig())
			id, key := deviceID(1), testUDPKey(t, "device_a")
			w.provisionECC(id, key, "")
			events := w.subscribe(bus.Filter{DeviceID: id.String()})
			d := w.onlineUDP(id, key)
			mid := d.nextID()
			m, _ := protocol.NewEvent(protocol.NonConfirmable, mid, protocol.Event{Name: "once", Data: []byte("1")})
			enc, _ := m.MarshalBinary()
			d.wmu.Lock()
			rec, _ := d.sess.Seal(nil, enc)
			d.wmu.Unlock()
			first := rec
			if tc.spoil != nil {
				first = tc.spoil(d, rec)
			}
			d.pc.WriteToUDPAddrPort(first, d.server)
			if tc.replay {
				d.pc.WriteToUDPAddrPort(rec, d.server)
			}
			waitFor(t, "bad record counted", func() bool { return w.g.Stats().UDPBadRecords == 1 })
			if tc.replay {
				nextEvent(t, events, "once")
			}
			// The session is alive: a ping is answered.
			pid := d.nextID()
			d.send(protocol.NewPing(pid))
			d.expect("ping ACK", ackOf(pid))
			if got := w.g.Stats().EventsIn; got != uint64(b2i(tc.replay)) {
				t.Fatalf("EventsIn %d", got)
			}
		})
	}
}

// TestUDPHandshakeLoss: lost server flights are sent again, by the server's
// timer (first flight) or on the device's repeated flight (final flight).
func TestUDPHandshakeLoss(t *testing.T) {
	cases := []struct {
		name string
		drop int // the server datagram the device loses: 1 HelloVerifyRequest, 2 first flight, 3 final flight
	}{
		{"cookie lost", 1},
		{"first flight lost", 2},
		{"final flight lost", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newUDPWorld(t, udpTestConfig())
			id, key := deviceID(1), testUDPKey(t, "device_a")
			w.provisionECC(id, key, "")
			d := newUDPDevice(t, id, key, w.addr)
			err := d.handshake(&testUDPKey(t, "server").PublicKey, func(n int, b []byte) [][]byte {
				if n == tc.drop {
					return nil
				}
				return [][]byte{b}
			})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			d.start()
			d.hello(gen3Hello(id))
			waitFor(t, "online", func() bool { return w.g.Online(id.String()) })
			if tc.drop > 1 && w.g.Stats().UDPRetransmits == 0 {
				t.Fatal("no retransmission counted")
			}
		})
	}
}

// TestUDPHandshakeReordered: a device that reads the server's flights in
// another order (a stale HelloVerifyRequest after the first flight) still
// completes.
func TestUDPHandshakeReordered(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := newUDPDevice(t, id, key, w.addr)
	var hvr []byte
	err := d.handshake(&testUDPKey(t, "server").PublicKey, func(n int, b []byte) [][]byte {
		switch n {
		case 1:
			hvr = b
			return [][]byte{b}
		case 2:
			return [][]byte{b, hvr} // the cookie again, after the flight
		}
		return [][]byte{b}
	})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	d.start()
	d.hello(gen3Hello(id))
}

// TestUDPMoveSession: a device whose address changes goes on with its
// session; records marked 253 re-bind it and answers follow it.
func TestUDPMoveSession(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	moveSocket(t, d)
	d.mark253 = true
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK at the new address", ackOf(pid))
	if err := w.g.Ping(context.Background(), id.String()); err != nil {
		t.Fatalf("server ping after the move: %v", err)
	}
	if st := w.g.Stats(); st.UDPMoves != 1 || st.HandshakesOK != 1 {
		t.Fatalf("stats %+v: want 1 move, 1 handshake", st)
	}
}

// TestUDPMoveOlderRecord: a record older than the newest (a rebooted device
// resumes with the counter it saved) moves the session only after a quiet
// second; in a stream of records it does not.
func TestUDPMoveOlderRecord(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	// Two pings sealed in order; the second goes out first.
	seal := func() (uint16, []byte) {
		mid := d.nextID()
		m := protocol.NewPing(mid)
		enc, _ := m.MarshalBinary()
		d.wmu.Lock()
		defer d.wmu.Unlock()
		rec, _ := d.sess.Seal(nil, enc)
		return mid, rec
	}
	oldID, oldRec := seal()
	newID, newRec := seal()
	d.pc.WriteToUDPAddrPort(newRec, d.server)
	d.expect("ping ACK", ackOf(newID))
	time.Sleep(1200 * time.Millisecond)
	moveSocket(t, d)
	d.pc.WriteToUDPAddrPort(oldRec, d.server)
	d.expect("ping ACK at the new address", ackOf(oldID))
	if st := w.g.Stats(); st.UDPMoves != 1 {
		t.Fatalf("stats %+v: want 1 move", st)
	}
}

// moveSocket gives the device a new socket (a new source port) and
// restarts its reader on it.
func moveSocket(t *testing.T, d *udpDevice) {
	t.Helper()
	old := d.pc
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	old.Close()
	<-d.done
	d.wmu.Lock()
	d.pc = pc
	d.wmu.Unlock()
	d.done = make(chan struct{})
	d.start()
}

// TestUDPResume: a device whose session went offline after silence comes
// back with a record on its saved session and no handshake, in the same
// process and after a restart of the gateway.
func TestUDPResume(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same gateway"
		if restart {
			name = "after restart"
		}
		t.Run(name, func(t *testing.T) {
			w, id, d := ledDeviceOnline(t, `{"f":["led"],"v":{}}`)
			if _, err := w.g.CallFunction(context.Background(), id.String(), "led", ""); err != nil {
				t.Fatalf("call: %v", err)
			}
			resumeWithPing(t, w, id, d, restart)
			ret, err := w.g.CallFunction(context.Background(), id.String(), "led", "")
			if err != nil || ret != 7 {
				t.Fatalf("call after resumption = %d, %v", ret, err)
			}
			st := w.g.Stats()
			handshakes, signatures := uint64(1), int64(1)
			if restart {
				handshakes, signatures = 0, 0 // the new gateway made none
			}
			if st.UDPResumptions != 1 || st.HandshakesOK != handshakes || w.signer.n.Load() != signatures {
				t.Fatalf("stats %+v, %d signatures: want 1 resumption, %d handshakes, %d signatures",
					st, w.signer.n.Load(), handshakes, signatures)
			}
		})
	}
}

// TestUDPUnknownCID: records on a connection ID no session has are dropped
// unanswered and counted; the store is asked once per ID.
func TestUDPUnknownCID(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rec := make([]byte, dtls.CIDHeaderLen+24)
	rec[0], rec[1], rec[2], rec[4] = byte(dtls.TypeCID), 0xfe, 0xfd, 1
	rand.Read(rec[11:19])
	binary.BigEndian.PutUint16(rec[19:21], 24)
	for i := range uint64(3) {
		pc.WriteToUDPAddrPort(rec, w.addr)
		waitFor(t, "unknown CID counted", func() bool { return w.g.Stats().UDPUnknownCID == i+1 })
	}
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := pc.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
		t.Fatalf("got a %d-byte answer", n)
	}
}

// TestUDPCookieFlood: ClientHellos without a valid cookie, as a spoofed
// flood sends them, are answered with HelloVerifyRequests only: no
// handshake state, no signature.
func TestUDPCookieFlood(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const n = 200
	hs, _ := dtls.NewClientHandshake(&dtls.ClientConfig{Key: testUDPKey(t, "device_a"), ServerKey: &testUDPKey(t, "server").PublicKey})
	hello := hs.Start(time.Now())[0]
	answers := make(chan int, n)
	go func() {
		buf := make([]byte, 512)
		for {
			_, _, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			answers <- int(buf[dtls.HeaderLen])
		}
	}()
	for range n {
		pc.WriteToUDPAddrPort(hello, w.addr)
	}
	for i := range n {
		select {
		case typ := <-answers:
			if dtls.HandshakeType(typ) != dtls.HandshakeHelloVerifyRequest {
				t.Fatalf("answer %d is handshake type %d", i, typ)
			}
		case <-time.After(waitTime):
			t.Fatalf("%d answers of %d", i, n)
		}
	}
	st := w.g.Stats()
	if st.UDPCookies != n || w.signer.n.Load() != 0 || st.Connections != 0 {
		t.Fatalf("stats %+v, %d signatures: want %d cookies, no signature, no connection", st, w.signer.n.Load(), n)
	}
}

// TestUDPConfirmable: a repeated CON is answered from the cache and handled
// once; a server CON the device does not acknowledge is sent again, and a
// device that never acknowledges goes offline.
func TestUDPConfirmable(t *testing.T) {
	cfg := udpTestConfig()
	cfg.UDPAckTimeout = 100 * time.Millisecond
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.onlineUDP(id, key)

	// A CoAP retransmission: the same message in a new record.
	mid := d.nextID()
	m, _ := protocol.NewEvent(protocol.Confirmable, mid, protocol.Event{Name: "dup", Data: []byte("1")})
	d.send(m)
	d.expect("event ACK", ackOf(mid))
	d.send(m)
	d.expect("cached event ACK", ackOf(mid))
	nextEvent(t, events, "dup")
	if st := w.g.Stats(); st.UDPDuplicates != 1 || st.EventsIn != 1 {
		t.Fatalf("stats %+v: want 1 duplicate, 1 event", st)
	}

	// The device loses the first copy of a ping: the server sends it again.
	lost := 0
	d.mu.Lock()
	d.drop = func(m devMsg) bool {
		if m.kind() == protocol.KindPing && lost == 0 {
			lost++
			return true
		}
		return false
	}
	d.mu.Unlock()
	if err := w.g.Ping(context.Background(), id.String()); err != nil {
		t.Fatalf("ping with one loss: %v", err)
	}
	if w.g.Stats().UDPRetransmits == 0 {
		t.Fatal("no retransmission counted")
	}

	// The device stops answering: the server gives up and the device
	// goes offline.
	d.mu.Lock()
	d.drop = func(devMsg) bool { return true }
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	w.g.Ping(ctx, id.String())
	cancel()
	waitFor(t, "offline after giving up", func() bool { return !w.g.Online(id.String()) })
	if w.g.Stats().UDPGaveUp != 1 {
		t.Fatal("give-up not counted")
	}
}

// TestUDPOfflineAfterSilence: a silent Gen 3 device goes offline on the
// gateway's own timer, and its session is saved for resumption.
func TestUDPOfflineAfterSilence(t *testing.T) {
	cfg := udpTestConfig()
	cfg.UDPIdleTimeout = 300 * time.Millisecond
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	w.onlineUDP(id, key)
	nextEvent(t, events, eventStatus)
	start := time.Now()
	if e := nextEvent(t, events, eventStatus); e.Data != statusOffline {
		t.Fatalf("status %q, want offline", e.Data)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("offline after %s", el)
	}
	waitFor(t, "session saved and forgotten", func() bool { st := w.g.Stats(); return st.UDPSaves >= 2 && st.UDPSessions == 0 })
	if st := w.g.Stats(); st.IdleTimeouts != 1 || st.UDPSessions != 0 {
		t.Fatalf("stats %+v: want 1 idle timeout and no session in memory", st)
	}
}

// TestListenUDPShare: ListenUDP opens several sockets on one port where
// the platform allows it.
func TestListenUDPShare(t *testing.T) {
	pcs, err := ListenUDP("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, pc := range pcs {
			pc.Close()
		}
	}()
	want := 1
	if reusePortSupported {
		want = 3
	}
	if len(pcs) != want {
		t.Fatalf("%d sockets, want %d", len(pcs), want)
	}
	port := netip.MustParseAddrPort(pcs[0].LocalAddr().String()).Port()
	for _, pc := range pcs[1:] {
		if p := netip.MustParseAddrPort(pc.LocalAddr().String()).Port(); p != port {
			t.Fatalf("port %d, want %d", p, port)
		}
	}
}
