package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Each failure closes that one session, counted, while another device
// connected to the same gateway carries on.

// bystander is an online device whose session must survive the others'
// failures.
func bystander(t *testing.T, w *world) *testDevice {
	t.Helper()
	id := deviceID(200)
	w.provision(id, testKey(t, "device_b"), owner2)
	return w.online(id, testKey(t, "device_b"), protocol.HelloDeviceDescribe)
}

func (d *testDevice) stillServed() {
	d.t.Helper()
	id := d.nextID()
	if err := d.send(protocol.NewPing(id)); err != nil {
		d.t.Fatalf("bystander: %v", err)
	}
	d.expect("bystander ping ACK", ackOf(id))
}

func TestBadFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(d *testDevice) error
	}{
		{"truncated frame", func(d *testDevice) error {
			if err := d.sendRaw([]byte{0x00, 0x20, 1, 2, 3, 4, 5}); err != nil {
				return err
			}
			return d.conn.Close()
		}},
		{"length not a multiple of 16", func(d *testDevice) error { return d.sendRaw([]byte{0x00, 0x11}) }},
		{"zero length", func(d *testDevice) error { return d.sendRaw([]byte{0x00, 0x00}) }},
		{"frame too large", func(d *testDevice) error { return d.sendRaw([]byte{0xFF, 0xF0}) }},
		{"bad padding", func(d *testDevice) error { return d.sendBadPadding() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, testConfig())
			other := bystander(t, w)
			id := deviceID(40)
			w.provision(id, testKey(t, "device_a"), owner1)
			events := w.subscribe(bus.Filter{DeviceID: id.String()})
			d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
			nextEvent(t, events, "spark/status")
			if err := tc.send(d); err != nil {
				t.Fatal(err)
			}
			if e := nextEvent(t, events, "spark/status"); e.Data != "offline" {
				t.Errorf("event %+v", e)
			}
			d.waitClosed()
			if st := w.g.Stats(); st.FramesBad != 1 {
				t.Errorf("bad frames = %d", st.FramesBad)
			}
			other.stillServed()
		})
	}
}

func TestGarbledMessageIgnored(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(41)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	// A well-framed frame whose plaintext is not CoAP (version 0).
	if err := d.sendPlain([]byte{0x00, 0x01, 0x02, 0x03, 0x04}); err != nil {
		t.Fatal(err)
	}
	d.stillServed()
	if st := w.g.Stats(); st.MessagesBad != 1 || st.FramesBad != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world, id protocol.DeviceID)
		tofu  bool
		check func(t *testing.T, st Stats)
	}{
		{"unknown device", func(w *world, id protocol.DeviceID) {}, false,
			func(t *testing.T, st Stats) {
				if st.RefusedUnknown != 1 {
					t.Errorf("refused unknown = %d", st.RefusedUnknown)
				}
			}},
		{"device without key", func(w *world, id protocol.DeviceID) {
			w.st.ProvisionDevice(context.Background(), id.String(), "", nil, 0)
		}, false, func(t *testing.T, st Stats) {
			if st.RefusedUnknown != 1 {
				t.Errorf("refused unknown = %d", st.RefusedUnknown)
			}
		}},
		{"wrong key", func(w *world, id protocol.DeviceID) {
			w.provision(id, testKey(w.t, "device_wrong"), owner1)
		}, true, func(t *testing.T, st Stats) {
			if st.RefusedKey != 1 {
				t.Errorf("refused key = %d", st.RefusedKey)
			}
		}},
		{"denied device", func(w *world, id protocol.DeviceID) {
			w.provision(id, testKey(w.t, "device_a"), owner1)
			d := w.device(id)
			d.Denied = true
			w.st.UpdateDevice(context.Background(), d)
		}, false, func(t *testing.T, st Stats) {
			if st.RefusedDenied != 1 {
				t.Errorf("refused denied = %d", st.RefusedDenied)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TrustOnFirstUse = tc.tofu
			w := newWorld(t, cfg)
			other := bystander(t, w)
			id := deviceID(42)
			tc.setup(w, id)
			// The server closes before sending its session keys, so the
			// device's handshake fails reading them.
			if _, err := w.tryDial(id, testKey(t, "device_a")); err == nil {
				t.Fatal("handshake succeeded")
			}
			waitFor(t, "refusal counted", func() bool { return w.g.Stats().HandshakesFailed == 1 })
			tc.check(t, w.g.Stats())
			if w.g.Online(id.String()) {
				t.Error("refused device online")
			}
			other.stillServed()
		})
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	cfg := testConfig()
	cfg.TrustOnFirstUse = true
	w := newWorld(t, cfg)
	id := deviceID(43)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	dev := w.device(id)
	want, _ := protocol.MarshalPublicKeyDER(&testKey(t, "device_a").PublicKey)
	if string(dev.PublicKey) != string(want) || dev.KeyAlgorithm != "rsa" {
		t.Errorf("stored key %x (%s)", dev.PublicKey, dev.KeyAlgorithm)
	}
	d.conn.Close()
	waitFor(t, "offline", func() bool { return !w.g.Online(id.String()) })
	// From now on the key is on file: another key is refused.
	if _, err := w.tryDial(id, testKey(t, "device_wrong")); err == nil {
		t.Fatal("second key accepted")
	}
	waitFor(t, "refusal", func() bool { return w.g.Stats().RefusedKey == 1 })
}

func TestGarbageBeforeHandshake(t *testing.T) {
	w := newWorld(t, testConfig())
	other := bystander(t, w)
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { w.g.ServeConn(context.Background(), server); close(done) }()
	nonce := make([]byte, protocol.NonceSize)
	if _, err := io.ReadFull(client, nonce); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 256)
	rand.Read(junk)
	client.Write(junk)
	// The server closes without answering.
	client.SetReadDeadline(time.Now().Add(waitTime))
	if n, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatalf("server answered garbage with %d bytes", n)
	}
	<-done
	if st := w.g.Stats(); st.HandshakesFailed != 1 {
		t.Errorf("failed handshakes = %d", st.HandshakesFailed)
	}
	other.stillServed()
}

func TestSilentPeer(t *testing.T) {
	// A peer that never answers the nonce, and one that stops after the
	// handshake without sending its Hello, are dropped at their deadlines.
	cfg := testConfig()
	cfg.HandshakeTimeout = 300 * time.Millisecond
	cfg.HelloTimeout = 200 * time.Millisecond
	w := newWorld(t, cfg)
	client, server := net.Pipe()
	done := make(chan struct{})
	start := time.Now()
	go func() { w.g.ServeConn(context.Background(), server); close(done) }()
	io.ReadFull(client, make([]byte, protocol.NonceSize))
	select {
	case <-done:
	case <-time.After(waitTime):
		t.Fatal("silent peer not dropped")
	}
	if d := time.Since(start); d < cfg.HandshakeTimeout {
		t.Errorf("dropped after %s", d)
	}
	if st := w.g.Stats(); st.HandshakesFailed != 1 || st.HandshakesOK != 0 {
		t.Errorf("stats after the silent peer %+v", st)
	}

	// A gateway of its own for the device without Hello: its handshake
	// must complete, which under -race on a loaded machine can take longer
	// than the 300 ms above (the dial failed "read session key: EOF").
	cfg.HandshakeTimeout = time.Minute
	w = newWorld(t, cfg)
	id := deviceID(44)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a")) // handshake done, no Hello
	d.waitClosed()
	if w.g.Online(id.String()) || w.device(id).Online {
		t.Error("device without Hello online")
	}
	// The client sees the close before the server's session has counted
	// its connection gone.
	waitFor(t, "connection count back to 0", func() bool { return w.g.Stats().Connections == 0 })
	if st := w.g.Stats(); st.HandshakesFailed != 0 || st.HandshakesOK != 1 || st.Connections != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFirstMessageNotHello(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(45)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.send(protocol.NewPing(d.nextID()))
	d.waitClosed()
	if st := w.g.Stats(); st.FramesBad != 1 {
		t.Errorf("bad frames = %d", st.FramesBad)
	}
}

func TestEventFlood(t *testing.T) {
	w := newWorld(t, testConfig())
	other := bystander(t, w)
	id := deviceID(46)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "flood"})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)

	// 100 events as fast as the pipe takes them: the burst of 4 (plus
	// what refills meanwhile) passes; the rest are dropped and counted.
	for range 100 {
		d.publish(protocol.Event{Name: "flood", Private: true, TTL: 60}, protocol.NonConfirmable)
	}
	// A confirmable one over the limit is answered 4.00 ("slow down").
	msgID := d.publish(protocol.Event{Name: "flood", Private: true, TTL: 60}, protocol.Confirmable)
	if ack := d.expect("ACK", ackOf(msgID)); ack.m.Code != protocol.CodeBadRequest {
		t.Errorf("CON over the limit answered %s", ack.m.Code)
	}
	other.stillServed()
	st := w.g.Stats()
	if st.EventsIn < 4 || st.EventsIn > 10 || st.EventsIn+st.EventsLimited != 101 {
		t.Errorf("events in %d limited %d", st.EventsIn, st.EventsLimited)
	}
	got := 0
	for {
		select {
		case <-events.Events():
			got++
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if uint64(got) != st.EventsIn {
		t.Errorf("bus got %d events, gateway accepted %d", got, st.EventsIn)
	}
	// After a pause the device may publish again.
	time.Sleep(1100 * time.Millisecond)
	d.publish(protocol.Event{Name: "flood/again", Private: true, TTL: 60}, protocol.NonConfirmable)
	nextEvent(t, events, "flood/again")
}

func TestSlowDeviceDoesNotBlockDelivery(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	w := newWorld(t, cfg)
	idA, idB := deviceID(47), deviceID(48)
	w.provision(idA, testKey(t, "device_a"), owner1)
	w.provision(idB, testKey(t, "device_b"), owner1)
	a := w.online(idA, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	b := w.online(idB, testKey(t, "device_b"), protocol.HelloDeviceDescribe)
	a.subscribe(protocol.Subscription{Prefix: "news"})
	b.subscribe(protocol.Subscription{Prefix: "news"})

	// A stops reading: net.Pipe writes to it block until the deadline.
	a.pauseReading()

	ctx := context.Background()
	start := time.Now()
	for i := range 50 {
		if err := w.b.Publish(ctx, bus.Event{Name: "news", Data: string(rune('a' + i%26)), DeviceID: bus.DeviceAPI, UserID: owner1}); err != nil {
			t.Fatal(err)
		}
	}
	// B receives all of them promptly although A blocks.
	for range 16 {
		b.expect("news", eventNamed("news"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("delivery to B took %s", d)
	}
	// A's session ends at its write deadline; its queue overflowed.
	waitFor(t, "slow device dropped", func() bool { return !w.g.Online(idA.String()) })
	if time.Since(start) > 3*time.Second {
		t.Errorf("slow device dropped after %s", time.Since(start))
	}
	a.resumeReading()
	if st := w.g.Stats(); st.EventsDropped == 0 {
		t.Errorf("no events dropped: %+v", st)
	}
	b.stillServed()
}

func TestReplaceSession(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(49)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "spark/status"})
	first := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	if e := nextEvent(t, events, "spark/status"); e.Data != "online" {
		t.Fatalf("event %+v", e)
	}
	sid1 := w.device(id).SessionID

	second := w.dial(id, testKey(t, "device_a"))
	second.hello(helloPayload(protocol.HelloDeviceDescribe))
	first.waitClosed()
	if e := nextEvent(t, events, "spark/status"); e.Data != "online" {
		t.Errorf("second session event %+v", e)
	}
	waitFor(t, "new session stored", func() bool { return w.device(id).SessionID != sid1 })
	// The replaced session neither marked the device offline nor said so.
	time.Sleep(200 * time.Millisecond)
	if d := w.device(id); !d.Online {
		t.Error("device offline after the old session ended")
	}
	bustestExpectNone(t, events, 100*time.Millisecond)
	second.stillServed()
	if st := w.g.Stats(); st.Replaced != 1 || st.Online != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := w.g.Ping(context.Background(), id.String()); err != nil {
		t.Errorf("ping through the new session: %v", err)
	}
}

func bustestExpectNone(t *testing.T, s *bus.Subscription, d time.Duration) {
	t.Helper()
	select {
	case e := <-s.Events():
		t.Errorf("unexpected event %+v", e)
	case <-time.After(d):
	}
}

func TestPanicRecovered(t *testing.T) {
	w := newWorld(t, testConfig())
	other := bystander(t, w)
	w.g.testHookDispatch = func(m *protocol.Message) {
		if n, _ := m.PathName(); n == "boom" {
			panic("test panic")
		}
	}
	id := deviceID(50)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.publish(protocol.Event{Name: "boom", Private: true, TTL: 60}, protocol.NonConfirmable)
	d.waitClosed()
	waitFor(t, "offline", func() bool { return !w.device(id).Online })
	if st := w.g.Stats(); st.Panics != 1 {
		t.Errorf("panics = %d", st.Panics)
	}
	other.stillServed()
	// The device reconnects fine.
	w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe).stillServed()
}

func TestConcurrentHandshakesQueue(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHandshakes = 1
	w := newWorld(t, cfg)
	var wg sync.WaitGroup
	for i := range 6 {
		id := deviceID(byte(60 + i))
		w.provision(id, testKey(t, "device_a"), owner1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := w.tryDial(id, testKey(t, "device_a"))
			if err != nil {
				t.Errorf("device %d: %v", i, err)
				return
			}
			d.send(protocol.NewHello(protocol.NonConfirmable, d.nextID(), helloPayload(protocol.HelloDeviceDescribe)))
		}()
	}
	wg.Wait()
	waitFor(t, "all online", func() bool { return w.g.Stats().Online == 6 })
}

func TestShutdown(t *testing.T) {
	w := newWorld(t, testConfig())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- w.g.Serve(ln) }()

	id := deviceID(51)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "spark/status"})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d, err := startDevice(t, conn, id, testKey(t, "device_a"), &testKey(t, "server").PublicKey, 1024)
	if err != nil {
		t.Fatal(err)
	}
	d.hello(helloPayload(protocol.HelloDeviceDescribe))
	waitFor(t, "online", func() bool { return w.device(id).Online })
	if ip := w.device(id).LastIP; ip != "127.0.0.1" {
		t.Errorf("last ip %q", ip)
	}
	nextEvent(t, events, "spark/status")

	if err := w.g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrClosed) {
		t.Errorf("Serve returned %v", err)
	}
	d.waitClosed()
	if e := nextEvent(t, events, "spark/status"); e.Data != "offline" {
		t.Errorf("event %+v", e)
	}
	if w.device(id).Online {
		t.Error("online after shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts")
	}
}

func TestResetNodeAtStart(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(52)
	w.provision(id, testKey(t, "device_a"), owner1)
	// A previous process of node "crashed" left the device online.
	if _, err := w.st.SetDeviceOnline(context.Background(), id.String(), storeSession("crashed")); err != nil {
		t.Fatal(err)
	}
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	cfg := testConfig()
	cfg.Node = "crashed"
	w.newGateway(cfg)
	if w.device(id).Online {
		t.Error("device still online after restart of its node")
	}
	if e := nextEvent(t, events, "spark/status"); e.Data != "offline" || e.UserID != owner1 {
		t.Errorf("event %+v", e)
	}
}

func storeSession(node string) store.DeviceSession {
	return store.DeviceSession{Node: node, SessionID: "old-session", IP: "192.0.2.1", At: time.Now().Add(-time.Hour), PlatformID: 6}
}
