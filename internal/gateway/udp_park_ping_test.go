package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// parkedUDPDevice returns a world whose one device is online, its session
// parked (after 100 ms of silence).
func parkedUDPDevice(t testing.TB) (*udpWorld, *udpDevice) {
	t.Helper()
	w := newUDPWorld(t, parkConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	w.waitParked(1)
	return w, d
}

// TestUDPParkedPing: the keep-alive pings of a parked Gen 3 session are
// answered by the demultiplexer without waking it (udp_park_ping.go),
// and move its last-heard time and idle deadline; a replayed ping is
// not answered; a small record that is not a ping, and a ping from a new
// address, still reach the session, unread.
func TestUDPParkedPing(t *testing.T) {
	w, d := parkedUDPDevice(t)
	s := w.g.lookup(d.id.String())
	c := s.tr.(*udpConn)
	before := w.g.Stats()

	for i := range 5 {
		heard, deadline := s.lastHeard.Load(), c.rdl.Load()
		time.Sleep(5 * time.Millisecond)
		pid := d.nextID()
		if err := d.send(protocol.NewPing(pid)); err != nil {
			t.Fatal(err)
		}
		d.expect("ping ACK", ackOf(pid))
		waitFor(t, "ping counted", func() bool { return w.g.Stats().UDPParkedPings == before.UDPParkedPings+uint64(i)+1 })
		if s.lastHeard.Load() <= heard || c.rdl.Load() <= deadline {
			t.Fatalf("ping %d: last heard %d → %d, idle deadline %d → %d: want both later",
				i, heard, s.lastHeard.Load(), deadline, c.rdl.Load())
		}
	}
	st := w.g.Stats()
	if st.UDPWakes != before.UDPWakes || st.SessionPings != before.SessionPings || st.UDPParked != 1 {
		t.Fatalf("stats %+v: pings woke the parked session %d times (answered by it: %d), want 0",
			st, st.UDPWakes-before.UDPWakes, st.SessionPings-before.SessionPings)
	}
	c.smu.Lock()
	packed := c.sess.Read == nil && len(c.packed) == 40
	c.smu.Unlock()
	if !packed {
		t.Fatal("the session's record keys stay unpacked after a ping")
	}

	// A replay of the last ping, byte for byte: opened, refused, no answer.
	last := d.ids
	d.resend()
	d.expectNone("answer to a replayed ping", 300*time.Millisecond, ackOf(last))
	if st := w.g.Stats(); st.UDPParkedPings != before.UDPParkedPings+5 || st.UDPBadRecords == before.UDPBadRecords {
		t.Fatalf("stats %+v: want the replay refused as a bad record, not answered", st)
	}
	w.waitParked(1)

	// A time request fits the size of a ping: the demultiplexer opens it,
	// sees it is not one, and the woken session opens it again.
	wakes := w.g.Stats().UDPWakes
	tid := d.nextID()
	if err := d.send(protocol.NewTimeRequest(tid, 7)); err != nil {
		t.Fatal(err)
	}
	d.expect("time response", ackOf(tid))
	if st := w.g.Stats(); st.UDPWakes != wakes+1 {
		t.Fatalf("stats %+v: the time request woke the session %d times, want 1", st, st.UDPWakes-wakes)
	}
	w.waitParked(1)

	// A ping from another socket (NAT rebinding) wakes the session, which
	// moves it: the answer goes to the new address.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pid := d.nextID()
	ping := protocol.NewPing(pid)
	enc, _ := ping.MarshalBinary()
	d.wmu.Lock()
	rec, err := d.sess.Seal(nil, enc)
	d.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	moves, wakes := w.g.Stats().UDPMoves, w.g.Stats().UDPWakes
	if _, err := pc.WriteToUDPAddrPort(rec, d.server); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(waitTime))
	buf := make([]byte, 2048)
	if _, _, err := pc.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("no answer at the new address: %v", err)
	}
	if st := w.g.Stats(); st.UDPMoves != moves+1 || st.UDPWakes != wakes+1 {
		t.Fatalf("stats %+v: a ping from a new address moved the session %d times and woke it %d times, want 1 and 1",
			st, st.UDPMoves-moves, st.UDPWakes-wakes)
	}
}

// BenchmarkUDPParkedPing measures a keep-alive ping of a parked Gen 3
// session over loopback, the device in the same process: seal, send,
// the demultiplexer's answer (pingParked), the ACK opened by the device.
// The session stays parked throughout (checked at the end).
func BenchmarkUDPParkedPing(b *testing.B) {
	w, d := parkedUDPDevice(b)
	before := w.g.Stats()
	b.ReportAllocs()
	for b.Loop() {
		pid := d.nextID()
		d.send(protocol.NewPing(pid))
		d.expect("ping ACK", ackOf(pid))
	}
	if st := w.g.Stats(); st.UDPWakes != before.UDPWakes || st.UDPParkedPings-before.UDPParkedPings != uint64(b.N) {
		b.Fatalf("stats %+v: %d wake-ups, %d of %d pings answered parked", st,
			st.UDPWakes-before.UDPWakes, st.UDPParkedPings-before.UDPParkedPings, b.N)
	}
}
