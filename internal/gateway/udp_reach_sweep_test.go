package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// TestUDPReachAllAfterRestart: after a restart, with no call and no
// datagram from the device, the start sweep brings a Gen 3 device that
// stayed up online on its saved session (no handshake), so an event for
// its subscription reaches it; a device that is gone is remembered as a
// miss, keeps the time of its old save and costs nothing more.
func TestUDPReachAllAfterRestart(t *testing.T) {
	cfg := udpTestConfig()
	cfg.UDPReachRate = 1000
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "user1")
	d := w.onlineUDP(id, key)
	sid := d.nextID()
	d.send(protocol.NewSubscribe(protocol.Confirmable, sid, protocol.Subscription{Prefix: "cmd", MyDevices: true}))
	d.expect("subscribe ACK", ackOf(sid))
	waitFor(t, "subscription stored", func() bool { return len(w.device(id).Subscriptions) == 1 })
	gone, goneKey := deviceID(2), testUDPKey(t, "device_b")
	w.provisionECC(gone, goneKey, "user1")
	dg := w.onlineUDP(gone, goneKey)
	dg.pc.Close() // gone for good; its saved session points at a closed port

	w.restart()
	signatures := w.signer.n.Load()
	ds := w.g.udp.saved.(store.DeviceDTLSSessions)
	before, err := ds.LatestDTLSSession(context.Background(), gone.String())
	if err != nil {
		t.Fatal(err)
	}

	waitFor(t, "device online by the sweep", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
	if err := w.b.Publish(context.Background(), bus.Event{Name: "cmd/go", Data: "x", UserID: "user1"}); err != nil {
		t.Fatal(err)
	}
	d.expect("event cmd/go", eventNamed("cmd/go"))

	n := &w.g.udp.reachN
	waitSweep(t, n)
	if n.listed.Load() != 2 || n.reached.Load() != 1 || n.missed.Load() != 1 {
		t.Fatalf("sweep listed %d, online %d, missed %d; want 2, 1, 1", n.listed.Load(), n.reached.Load(), n.missed.Load())
	}
	if !w.g.udp.reachMissed(gone.String(), time.Now()) || w.device(gone).Online {
		t.Fatal("the gone device is not a miss, or is online")
	}
	st := w.g.Stats()
	if st.HandshakesOK != 0 || w.signer.n.Load() != signatures {
		t.Fatalf("stats %+v: want no handshake", st)
	}
	// The gone device: a call is answered offline at once, and its saved
	// session keeps the time of its last real save once its reach ended.
	start := time.Now()
	if _, err := w.g.CallFunction(context.Background(), gone.String(), "led", "x"); !errors.Is(err, bus.ErrDeviceOffline) ||
		time.Since(start) > reachWait {
		t.Fatalf("call to the gone device: %v after %s; want offline at once", err, time.Since(start))
	}
	waitFor(t, "reach session of the gone device ended", func() bool {
		w.g.udp.mu.Lock()
		defer w.g.udp.mu.Unlock()
		var k cidKey
		copy(k[:], before.CID)
		return w.g.udp.byCID[k] == nil
	})
	after, err := ds.LatestDTLSSession(context.Background(), gone.String())
	if err != nil {
		t.Fatal(err)
	}
	if !after.UpdatedAt.Equal(before.UpdatedAt) || string(after.State) == string(before.State) {
		t.Fatalf("gone device's session: saved at %v (was %v), state changed %v; want the old time and a new reservation",
			after.UpdatedAt, before.UpdatedAt, string(after.State) != string(before.State))
	}
	// The device that answered is not listed again: it is online.
	page, err := ds.RecentDTLSSessions(context.Background(), time.Now().Add(-time.Hour), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range page {
		if p.DeviceID == id.String() {
			t.Fatal("the online device is still listed")
		}
	}
}

// TestUDPReachSweepBound: the start sweep reaches at most
// UDPReachInFlight devices at once and tries each listed device once.
func TestUDPReachSweepBound(t *testing.T) {
	cfg := udpTestConfig()
	w := newUDPWorld(t, cfg) // no sweep: the sessions are made below
	const devices = 5
	for i := range devices {
		id, key := deviceID(byte(10+i)), testUDPKey(t, fmt.Sprintf("sweep-%d", i))
		w.provisionECC(id, key, "")
		w.savedSession(id, key) // at 127.0.0.1:1: nobody answers
	}
	cfg.UDPReachRate = 10000
	cfg.UDPReachInFlight = 2
	if err := w.g.Close(); err != nil {
		t.Fatal(err)
	}
	w.g = w.newUDPGateway(cfg)
	n := &w.g.udp.reachN
	waitSweep(t, n) // three rounds of misses, each up to reachWait
	if n.listed.Load() != devices || n.missed.Load() != devices || n.reached.Load() != 0 {
		t.Fatalf("sweep listed %d, missed %d, online %d; want %d, %d, 0", n.listed.Load(), n.missed.Load(), n.reached.Load(),
			devices, devices)
	}
	if m := n.maxInFlight.Load(); m < 1 || m > 2 {
		t.Fatalf("at most %d devices reached at once; want 1 or 2", m)
	}
}

// waitSweep waits until the start sweep is over: each device that does not
// answer holds its place for up to reachWait.
func waitSweep(t *testing.T, n *reachCounts) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !n.done.Load(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sweep not done: listed %d, online %d, missed %d", n.listed.Load(), n.reached.Load(), n.missed.Load())
		}
	}
}

// TestUDPMoveResendsPending: a server request whose first copy the device
// never got (sent to the address it had before it restarted on its saved
// session) is sent again as soon as the device is heard from its new
// address, not when the retransmission timer (here a minute) runs out.
func TestUDPMoveResendsPending(t *testing.T) {
	cfg := udpTestConfig()
	cfg.UDPAckTimeout = time.Minute
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
		d.appJSON = `{"f":["led"],"v":{}}`
		d.drop = func(m devMsg) bool { return m.kind() == protocol.KindFunctionCall }
	})
	waitFor(t, "describe", func() bool { return len(w.device(id).Functions) == 1 })

	type result struct {
		ret int32
		err error
	}
	done := make(chan result, 1)
	go func() {
		ret, err := w.g.CallFunction(context.Background(), id.String(), "led", "abcd")
		done <- result{ret, err}
	}()
	waitFor(t, "the call pending", func() bool {
		w.g.udp.mu.Lock()
		defer w.g.udp.mu.Unlock()
		for _, c := range w.g.udp.byCID {
			c.rmu.Lock()
			n := c.outbox.Len()
			c.rmu.Unlock()
			if n > 0 {
				return true
			}
		}
		return false
	})

	// The device restarts on its saved session: a new socket, so a new port.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	d.pc.Close()
	<-d.done
	d.mu.Lock()
	d.drop = nil
	d.mu.Unlock()
	d.wmu.Lock()
	d.pc = pc
	d.wmu.Unlock()
	d.done = make(chan struct{})
	d.start()
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK at the new address", ackOf(pid))
	select {
	case r := <-done:
		if r.err != nil || r.ret != 4 {
			t.Fatalf("call = %d, %v; want 4", r.ret, r.err)
		}
	case <-time.After(cfg.UDPAckTimeout / 2):
		t.Fatal("the call was not sent again after the move")
	}
	if st := w.g.Stats(); st.UDPMoves != 1 || st.UDPRetransmits < 1 {
		t.Fatalf("stats %+v: want a move and a resend", st)
	}
}
