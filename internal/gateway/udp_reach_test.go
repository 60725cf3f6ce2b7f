package gateway

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// TestUDPReachAfterRestart: after a restart of the gateway, a call for a
// Gen 3 device that has not sent anything yet reaches it on its saved
// session (a ping to its last address, no handshake) instead of failing;
// a device that does not answer is offline, and is not tried again at once.
func TestUDPReachAfterRestart(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
		d.appJSON = `{"f":["led"],"v":{}}`
	})
	gone, goneKey := deviceID(2), testUDPKey(t, "device_b")
	w.provisionECC(gone, goneKey, "")
	dg := w.onlineUDP(gone, goneKey)
	waitFor(t, "describe", func() bool { return len(w.device(id).Functions) == 1 })

	w.restart()
	if w.device(id).Online || w.g.Online(id.String()) {
		t.Fatal("device online right after the restart")
	}
	dg.pc.Close() // this one is gone for good
	signatures := w.signer.n.Load()

	ctx := context.Background()
	start := time.Now()
	ret, err := w.g.CallFunction(ctx, id.String(), "led", "abc")
	if err != nil || ret != 3 {
		t.Fatalf("call after restart = %d, %v; want 3", ret, err)
	}
	t.Logf("call after restart answered in %s", time.Since(start).Round(time.Millisecond))
	if !w.device(id).Online || !w.g.Online(id.String()) {
		t.Fatal("device not online after the call")
	}
	st := w.g.Stats()
	if st.UDPResumptions != 1 || st.HandshakesOK != 0 || w.signer.n.Load() != signatures {
		t.Fatalf("stats %+v: want 1 resumption, no handshake", st)
	}

	// The device that is gone: offline after the wait, then at once.
	_, err = w.g.CallFunction(ctx, gone.String(), "led", "x")
	if !errors.Is(err, bus.ErrDeviceOffline) {
		t.Fatalf("call to a vanished device: %v, want offline", err)
	}
	start = time.Now()
	_, err = w.g.CallFunction(ctx, gone.String(), "led", "x")
	if !errors.Is(err, bus.ErrDeviceOffline) || time.Since(start) > reachWait {
		t.Fatalf("second call to a vanished device: %v after %s, want offline at once", err, time.Since(start))
	}
	if w.device(gone).Online {
		t.Fatal("vanished device marked online")
	}
}

// TestUDPMoveRecordsIP: a session that moves to another IP address (here
// while parked) records it as the device's last IP, and the device stays
// online with no new status event.
func TestUDPMoveRecordsIP(t *testing.T) {
	w := newUDPWorld(t, parkConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	status := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: eventStatus})
	d := w.onlineUDP(id, key)
	nextEvent(t, status, eventStatus)
	if ip := w.device(id).LastIP; ip != "127.0.0.1" {
		t.Fatalf("last IP %q, want 127.0.0.1", ip)
	}
	w.waitParked(1)

	// The device comes back from 127.0.0.2 (another IP on loopback).
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	d.pc.Close()
	<-d.done
	d.wmu.Lock()
	d.pc, d.mark253 = pc, true
	d.wmu.Unlock()
	d.done = make(chan struct{})
	d.start()
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK at the new address", ackOf(pid))
	waitFor(t, "last IP recorded", func() bool { return w.device(id).LastIP == "127.0.0.2" })
	if err := w.g.Ping(context.Background(), id.String()); err != nil {
		t.Fatalf("server ping after the move: %v", err)
	}
	if st := w.g.Stats(); st.UDPMoves != 1 || st.Online != 1 || st.UDPResumptions != 0 {
		t.Fatalf("stats %+v: want 1 move, the session online throughout", st)
	}
	expectNoEvent(t, status, 200*time.Millisecond)
}
