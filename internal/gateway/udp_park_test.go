package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// parkConfig parks sessions after 100 ms of silence.
func parkConfig() Config {
	cfg := udpTestConfig()
	cfg.UDPParkAfter = 100 * time.Millisecond
	return cfg
}

// waitParked waits until n sessions are parked.
func (w *udpWorld) waitParked(n int64) {
	w.t.Helper()
	waitFor(w.t, "parked sessions", func() bool { return w.g.Stats().UDPParked == n })
}

// TestUDPParkWake: a quiet session parks (no goroutine, keys packed) and
// every kind of traffic wakes it and works: function calls, variable reads,
// ping, events both ways and subscribed events, while the device stays
// online with one spark/status online and no other status event.
func TestUDPParkWake(t *testing.T) {
	w := newUDPWorld(t, parkConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "user1")
	status := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: eventStatus})
	events := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "temp"})
	d := w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
		d.variables["temp"] = variable{typ: protocol.VariableInt32, value: int32(21)}
		d.appJSON = `{"f":["led"],"v":{"temp":2}}`
	})
	if e := nextEvent(t, status, eventStatus); e.Data != statusOnline {
		t.Fatalf("status event %q, want online", e.Data)
	}
	ctx := context.Background()
	w.waitParked(1)
	s := w.g.lookup(id.String())
	c := s.tr.(*udpConn)
	c.smu.Lock()
	packed := c.sess.Read == nil && c.sess.Write == nil && len(c.packed) == 40
	c.smu.Unlock()
	if !packed {
		t.Fatal("parked session keeps its record keys unpacked")
	}

	for i := range 3 {
		ret, err := w.g.CallFunction(ctx, id.String(), "led", "on!")
		if err != nil || ret != 3 {
			t.Fatalf("call %d while parked = %d, %v; want 3", i, ret, err)
		}
		w.waitParked(1)
	}
	v, err := w.g.GetVariable(ctx, id.String(), "temp")
	if err != nil || v != int32(21) {
		t.Fatalf("GetVariable while parked = %v, %v; want 21", v, err)
	}
	w.waitParked(1)
	if err := w.g.Ping(ctx, id.String()); err != nil {
		t.Fatalf("Ping while parked: %v", err)
	}
	w.waitParked(1)

	// Device → cloud while parked: the datagram wakes the session.
	mid := d.nextID()
	m, _ := protocol.NewEvent(protocol.Confirmable, mid, protocol.Event{Name: "temp", Data: []byte("22"), Private: true})
	d.send(m)
	d.expect("event ACK", ackOf(mid))
	if e := nextEvent(t, events, "temp"); e.Data != "22" {
		t.Fatalf("event data %q", e.Data)
	}
	// A device ping (its keepalive) while parked is answered.
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK", ackOf(pid))

	// Cloud → device while parked: a direct event and a subscribed one.
	sid := d.nextID()
	d.send(protocol.NewSubscribe(protocol.Confirmable, sid, protocol.Subscription{Prefix: "cmd", MyDevices: true}))
	d.expect("subscribe ACK", ackOf(sid))
	waitFor(t, "subscription stored", func() bool { return len(w.device(id).Subscriptions) == 1 })
	w.waitParked(1)
	if err := w.g.SendEvent(ctx, id.String(), "direct/x", []byte("1")); err != nil {
		t.Fatalf("SendEvent while parked: %v", err)
	}
	d.expect("event direct/x", eventNamed("direct/x"))
	w.waitParked(1)
	if err := w.b.Publish(ctx, bus.Event{Name: "cmd/go", Data: "x", UserID: "user1"}); err != nil {
		t.Fatal(err)
	}
	d.expect("event cmd/go", eventNamed("cmd/go"))
	w.waitParked(1)

	st := w.g.Stats()
	if st.UDPParks < 5 || st.UDPWakes < 5 {
		t.Fatalf("stats %+v: want at least 5 parks and wake-ups", st)
	}
	if st.Online != 1 || st.UDPSessions != 1 || st.HandshakesOK != 1 || st.UDPResumptions != 0 {
		t.Fatalf("stats %+v: want the one session online throughout", st)
	}
	if !w.device(id).Online || w.g.lookup(id.String()) != s {
		t.Fatal("the device's session changed")
	}
	// No status event other than the first online.
	expectNoEvent(t, status, 200*time.Millisecond)
}

// expectNoEvent fails if s delivers an event within d.
func expectNoEvent(t *testing.T, s *bus.Subscription, d time.Duration) {
	t.Helper()
	select {
	case e := <-s.Events():
		t.Fatalf("unexpected event %s %q", e.Name, e.Data)
	case <-time.After(d):
	}
}

// TestUDPParkedOffline: a parked session whose device falls silent goes
// offline after the idle timeout, through the sweeper, with one
// spark/status offline; its saved session then resumes on the device's
// next record.
func TestUDPParkedOffline(t *testing.T) {
	cfg := parkConfig()
	cfg.UDPIdleTimeout = time.Second
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	status := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: eventStatus})
	d := w.onlineUDP(id, key)
	nextEvent(t, status, eventStatus)
	online := time.Now() // the idle deadline starts after this event
	w.waitParked(1)
	if e := nextEvent(t, status, eventStatus); e.Data != statusOffline {
		t.Fatalf("status %q, want offline", e.Data)
	}
	if took := time.Since(online); took < cfg.UDPIdleTimeout {
		t.Fatalf("offline %s after online, before the idle timeout", took)
	}
	waitFor(t, "session ended", func() bool {
		st := w.g.Stats()
		return st.UDPParked == 0 && st.UDPSessions == 0 && st.Online == 0
	})
	if st := w.g.Stats(); st.IdleTimeouts != 1 {
		t.Fatalf("stats %+v: want 1 idle timeout", st)
	}
	// The session was saved on the way out: the device resumes it.
	d.wmu.Lock()
	d.mark253 = true
	d.wmu.Unlock()
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK on the resumed session", ackOf(pid))
	waitFor(t, "online again", func() bool { return w.g.Online(id.String()) })
	if st := w.g.Stats(); st.UDPResumptions != 1 {
		t.Fatalf("stats %+v: want 1 resumption", st)
	}
}

// TestUDPParkedShutdown: Shutdown ends parked sessions (no goroutine of
// theirs is left waiting) and saves them, without waking them: they end
// on the shutdown's own goroutines (shutdown_parked.go).
func TestUDPParkedShutdown(t *testing.T) {
	w := newUDPWorld(t, parkConfig())
	for i := range 3 {
		id, key := deviceID(byte(i+1)), testUDPKey(t, "device_"+string(rune('a'+i)))
		w.provisionECC(id, key, "")
		w.onlineUDP(id, key)
	}
	w.waitParked(3)
	before := w.g.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	st := w.g.Stats()
	if st.UDPParked != 0 || st.Online != 0 || st.Connections != 0 {
		t.Fatalf("stats after shutdown %+v", st)
	}
	if st.UDPWakes != before.UDPWakes || st.UDPSaves != before.UDPSaves+3 {
		t.Fatalf("shutdown woke %d parked sessions and saved %d, want 0 and 3",
			st.UDPWakes-before.UDPWakes, st.UDPSaves-before.UDPSaves)
	}
	for i := range 3 {
		if w.device(deviceID(byte(i + 1))).Online {
			t.Fatalf("device %d still online", i+1)
		}
	}
}

// TestUDPParkedSendsKeepNoDeviceOnline: events the gateway sends to a
// parked session wake it, but only the device's own datagrams count as
// heard: a device that is gone goes offline after the idle timeout even
// while events keep coming.
func TestUDPParkedSendsKeepNoDeviceOnline(t *testing.T) {
	cfg := parkConfig()
	cfg.UDPIdleTimeout = time.Second
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	w.waitParked(1)
	d.pc.Close() // the device is gone
	ctx := context.Background()
	deadline := time.Now().Add(waitTime)
	for w.g.Online(id.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("still online after %s of events to a silent device (stats %+v)", waitTime, w.g.Stats())
		}
		w.g.SendEvent(ctx, id.String(), "tick", []byte("1"))
		time.Sleep(150 * time.Millisecond)
	}
	if st := w.g.Stats(); st.UDPWakes == 0 {
		t.Fatalf("stats %+v: the events never woke the parked session", st)
	}
}
