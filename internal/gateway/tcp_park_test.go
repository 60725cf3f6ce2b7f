//go:build linux

package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// parkWorld is a world whose gateway serves loopback TCP (Serve), where
// idle sessions park.
func parkWorld(t *testing.T, cfg Config) (*world, string) {
	t.Helper()
	w := newWorld(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go w.g.Serve(ln)
	return w, ln.Addr().String()
}

// onlineTCP connects device n over TCP and brings it online.
func (w *world) onlineTCP(addr string, n byte) *testDevice {
	w.t.Helper()
	return w.onlineTCPDialer(addr, n, 1024, &net.Dialer{})
}

// onlineTCPDialer is onlineTCP with room for inbox unread messages,
// connecting with dialer.
func (w *world) onlineTCPDialer(addr string, n byte, inbox int, dialer *net.Dialer) *testDevice {
	w.t.Helper()
	id := deviceID(n)
	key := testKey(w.t, "device_a")
	w.provision(id, key, "")
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := startDevice(w.t, conn, id, key, &testKey(w.t, "server").PublicKey, inbox)
	if err != nil {
		w.t.Fatal(err)
	}
	d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
	d.appJSON = `{"f":["led"],"v":{}}`
	d.hello(helloPayload(0))
	waitFor(w.t, "device online", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
	return d
}

// readLoops counts the goroutines blocked in a session's read loop.
func readLoops(t *testing.T) int {
	t.Helper()
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "gateway.(*session).readLoop") {
			n++
		}
	}
	return n
}

func TestTCPParkCallsEventsAndWakes(t *testing.T) {
	cfg := testConfig()
	// No session may idle out while the others come online or take their
	// turn: under -race on a loaded machine eight handshakes, or a round of
	// eight calls and events, take longer than testConfig's 5 s.
	cfg.IdleTimeout = 2 * time.Minute
	w, addr := parkWorld(t, cfg)
	const n = 8
	devs := make([]*testDevice, n)
	for i := range devs {
		devs[i] = w.onlineTCP(addr, byte(i+1))
	}
	waitFor(t, "every session parked", func() bool { return w.g.Stats().TCPParked == n })
	if got := readLoops(t); got != 0 {
		t.Fatalf("%d goroutines in a read loop with every session parked", got)
	}
	sub := w.subscribe(bus.Filter{})
	ctx := context.Background()
	for round := range 3 {
		for i, d := range devs {
			arg := strings.Repeat("x", round+i)
			v, err := w.g.CallFunction(ctx, d.id.String(), "led", arg)
			if err != nil || v != int32(len(arg)) {
				t.Fatalf("round %d: call device %d: %d, %v", round, i, v, err)
			}
			d.publish(protocol.Event{Name: "parked/test", Data: []byte(arg), TTL: 60}, protocol.NonConfirmable)
			if e := nextEvent(t, sub, "parked/test"); string(e.Data) != arg {
				t.Fatalf("event data %q, want %q", e.Data, arg)
			}
		}
	}
	waitFor(t, "parked again", func() bool { return w.g.Stats().TCPParked == n })
	if st := w.g.Stats(); st.TCPWakes < 2*3*n {
		t.Fatalf("%d wake-ups for %d calls and events", st.TCPWakes, 2*3*n)
	}
	// A device that hangs up while parked goes offline.
	devs[0].conn.Close()
	waitFor(t, "offline after hang-up", func() bool { return !w.device(devs[0].id).Online })
	waitFor(t, "connections", func() bool { return w.g.Stats().Connections == n-1 && w.g.Stats().TCPParked == n-1 })
}

func TestTCPParkIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = time.Second
	w, addr := parkWorld(t, cfg)
	d := w.onlineTCP(addr, 1)
	waitFor(t, "parked", func() bool { return w.g.Stats().TCPParked == 1 })
	// Pings keep it online past the timeout.
	for range 8 {
		time.Sleep(200 * time.Millisecond)
		d.send(protocol.NewPing(d.nextID()))
	}
	if !w.g.Online(d.id.String()) {
		t.Fatal("offline although it pinged within the idle timeout")
	}
	d.waitClosed()
	waitFor(t, "offline after silence", func() bool { return !w.device(d.id).Online })
	waitFor(t, "connection gone", func() bool { return w.g.Stats().Connections == 0 })
	if st := w.g.Stats(); st.IdleTimeouts != 1 || st.TCPParked != 0 {
		t.Fatalf("idle timeouts %d, parked %d; want 1, 0", st.IdleTimeouts, st.TCPParked)
	}
}

func TestTCPParkReplacedAndShutdown(t *testing.T) {
	w, addr := parkWorld(t, testConfig())
	old := w.onlineTCP(addr, 1)
	other := w.onlineTCP(addr, 2)
	waitFor(t, "parked", func() bool { return w.g.Stats().TCPParked == 2 })
	// The device reconnects: the parked old session is closed and ends.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := startDevice(t, conn, old.id, testKey(t, "device_a"), &testKey(t, "server").PublicKey, 1024)
	if err != nil {
		t.Fatal(err)
	}
	d.hello(helloPayload(0))
	old.waitClosed()
	waitFor(t, "old session gone", func() bool {
		st := w.g.Stats()
		return st.Replaced == 1 && st.Connections == 2 && st.TCPParked == 2
	})
	if !w.g.Online(old.id.String()) || !w.device(old.id).Online {
		t.Fatal("device offline after its reconnection")
	}
	// Shutdown ends the parked sessions, which mark their devices
	// offline, on its own goroutines: it wakes none of them.
	wakes := w.g.Stats().TCPWakes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.g.Stats().TCPWakes - wakes; n != 0 {
		t.Fatalf("Shutdown woke %d parked sessions", n)
	}
	d.waitClosed()
	other.waitClosed()
	for _, id := range []protocol.DeviceID{old.id, other.id} {
		if w.device(id).Online {
			t.Fatalf("device %s online after Shutdown", id)
		}
	}
	if st := w.g.Stats(); st.Connections != 0 || st.TCPParked != 0 || st.Online != 0 {
		t.Fatalf("after Shutdown: %+v", st)
	}
}

func TestTCPParkDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.DisableTCPPark = true
	w, addr := parkWorld(t, cfg)
	d := w.onlineTCP(addr, 1)
	v, err := w.g.CallFunction(context.Background(), d.id.String(), "led", "on")
	if err != nil || v != 2 {
		t.Fatalf("call: %d, %v", v, err)
	}
	if st := w.g.Stats(); st.TCPParked != 0 || st.TCPWakes != 0 {
		t.Fatalf("parked %d, wakes %d with DisableTCPPark", st.TCPParked, st.TCPWakes)
	}
	if got := readLoops(t); got != 1 {
		t.Fatalf("%d goroutines in a read loop, want 1", got)
	}
}

// settled waits until the describes of device d (the last of n online)
// are stored and every session parked: no frame of the device's start is
// in flight any more.
func (w *world) settled(d *testDevice, n int) {
	w.t.Helper()
	waitFor(w.t, "describe stored", func() bool { return len(w.device(d.id).Functions) > 0 })
	waitFor(w.t, "parked", func() bool { return w.g.Stats().TCPParked == int64(n) })
}

// parkedTCP is a world with device 1 online over TCP, settled and
// parked, and its session.
func parkedTCP(t *testing.T) (*world, *testDevice, *session) {
	w, addr := parkWorld(t, testConfig())
	d := w.onlineTCP(addr, 1)
	w.settled(d, 1)
	return w, d, w.g.lookup(d.id.String())
}

// writeFrames seals msgs into one byte stream and writes it in pieces cut
// at the offsets in cuts, pausing between them so that the server's reads
// see them apart (as from firmware that writes a frame's prefix and body
// separately). It does not assert anything about timing.
func (d *testDevice) writeFrames(cuts []int, msgs ...protocol.Message) {
	d.t.Helper()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	var stream []byte
	for _, m := range msgs {
		enc, err := m.MarshalBinary()
		if err != nil {
			d.t.Fatal(err)
		}
		start := len(stream)
		if stream, err = d.sealer.Seal(stream, enc); err != nil {
			d.t.Fatal(err)
		}
		copy(d.iv[:], stream[start+2:start+18])
	}
	from := 0
	for _, c := range append(cuts, len(stream)) {
		if from > 0 {
			time.Sleep(30 * time.Millisecond)
		}
		if _, err := d.conn.Write(stream[from:c]); err != nil {
			d.t.Fatal(err)
		}
		from = c
	}
}

// TestTCPParkPingsAnsweredByPoller: a parked session's pings, whole or
// cut into pieces anywhere, are answered with the empty ACK of their own
// message ID by the poller, without starting the session's goroutine, and
// keep the device's last-heard time.
func TestTCPParkPingsAnsweredByPoller(t *testing.T) {
	w, d, s := parkedTCP(t)
	wakes := w.g.Stats().TCPWakes
	pings := int64(w.g.Stats().TCPPollerPings)
	for i, cuts := range [][]int{nil, nil, {2}, {1}, {1, 2, 9}, {17}, nil} {
		heard := s.lastHeard.Load()
		id := d.nextID()
		d.writeFrames(cuts, protocol.NewPing(id))
		d.expect(fmt.Sprintf("ACK of ping %d (cut at %v)", i, cuts), ackOf(id))
		waitFor(t, "counted", func() bool { return int64(w.g.Stats().TCPPollerPings) == pings+int64(i)+1 })
		if s.lastHeard.Load() == heard {
			t.Fatalf("ping %d did not move the last-heard time", i)
		}
	}
	// Several pings in one write (a device catching up) each get theirs.
	ids := []uint16{d.nextID(), d.nextID(), d.nextID()}
	d.writeFrames(nil, protocol.NewPing(ids[0]), protocol.NewPing(ids[1]), protocol.NewPing(ids[2]))
	for _, id := range ids {
		d.expect("ACK of a ping in a burst", ackOf(id))
	}
	if st := w.g.Stats(); st.TCPWakes != wakes || st.TCPParked != 1 {
		t.Fatalf("wakes %d → %d, parked %d: the pings started the session's goroutine", wakes, st.TCPWakes, st.TCPParked)
	}
	d.expectNone("other messages", 100*time.Millisecond, func(devMsg) bool { return true })
}

// TestTCPParkPingThenFrames: what follows a ping in the same read, or
// arrives cut into pieces after it, is the session's read loop's: the
// ping is answered, the event published, the call answered, and the
// session parks again.
func TestTCPParkPingThenFrames(t *testing.T) {
	cfg := testConfig()
	cfg.EventRate = -1 // no limit
	w, addr := parkWorld(t, cfg)
	d := w.onlineTCP(addr, 1)
	w.settled(d, 1)
	sub := w.subscribe(bus.Filter{})
	event := func(data string) protocol.Message {
		m, err := protocol.NewEvent(protocol.NonConfirmable, d.nextID(), protocol.Event{Name: "mixed", Data: []byte(data), TTL: 60})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i, cuts := range [][]int{nil, {18}, {18 + 5}, {3, 18 + 1, 40}, {1}} {
		id := d.nextID()
		data := strings.Repeat("d", 20+i)
		d.writeFrames(cuts, protocol.NewPing(id), event(data))
		d.expect(fmt.Sprintf("ACK of the ping (cut at %v)", cuts), ackOf(id))
		if e := nextEvent(t, sub, "mixed"); string(e.Data) != data {
			t.Fatalf("event %q, want %q", e.Data, data)
		}
		waitFor(t, "parked again", func() bool { return w.g.Stats().TCPParked == 1 })
	}
	// A ping, then a ping and an event together: both pings answered.
	id1, id2 := d.nextID(), d.nextID()
	d.writeFrames([]int{18}, protocol.NewPing(id1), protocol.NewPing(id2), event("last"))
	d.expect("ACK of the first ping", ackOf(id1))
	d.expect("ACK of the second ping", ackOf(id2))
	if e := nextEvent(t, sub, "mixed"); string(e.Data) != "last" {
		t.Fatalf("event %q", e.Data)
	}
	// The session still works both ways.
	if v, err := w.g.CallFunction(context.Background(), d.id.String(), "led", "abc"); err != nil || v != 3 {
		t.Fatalf("call after the pings: %d, %v", v, err)
	}
	if n := int64(w.g.Stats().TCPPollerPings); n < 5 {
		t.Fatalf("%d pings answered by the poller", n)
	}
}

// TestTCPParkPingWhileWriting: a ping that comes while the session's
// writer is busy (here: its lock held) is answered by the session's read
// loop once the writer is done, not by the poller, which never waits.
func TestTCPParkPingWhileWriting(t *testing.T) {
	w, d, s := parkedTCP(t)
	wakes := w.g.Stats().TCPWakes
	s.wmu.Lock()
	id := d.nextID()
	d.send(protocol.NewPing(id))
	waitFor(t, "session woken", func() bool { return w.g.Stats().TCPWakes == wakes+1 })
	s.wmu.Unlock()
	d.expect("ACK of the ping", ackOf(id))
	waitFor(t, "parked again", func() bool { return w.g.Stats().TCPParked == 1 })
	id = d.nextID()
	d.send(protocol.NewPing(id))
	d.expect("ACK of the next ping", ackOf(id))
}

// TestTCPParkPingAndHangUp: a device that pings and hangs up in the same
// breath gets its ACK and goes offline; so does one that hangs up in the
// middle of a ping's frame.
func TestTCPParkPingAndHangUp(t *testing.T) {
	w, addr := parkWorld(t, testConfig())
	d := w.onlineTCP(addr, 1)
	d2 := w.onlineTCP(addr, 2)
	waitFor(t, "parked", func() bool { return w.g.Stats().TCPParked == 2 })
	id := d.nextID()
	d.writeFrames(nil, protocol.NewPing(id))
	d.conn.(*net.TCPConn).CloseWrite()
	d.expect("ACK of the last ping", ackOf(id))
	d.waitClosed()
	waitFor(t, "offline after the hang-up", func() bool { return !w.device(d.id).Online })

	// Half a ping, then the hang-up: a bad frame ends the session.
	d2.sendRaw([]byte{0, 16, 1, 2, 3})
	time.Sleep(50 * time.Millisecond) // likely read by the poller first; either way it must end
	d2.conn.(*net.TCPConn).CloseWrite()
	d2.waitClosed()
	waitFor(t, "offline after the cut ping", func() bool { return !w.device(d2.id).Online })
	waitFor(t, "connections", func() bool { st := w.g.Stats(); return st.Connections == 0 && st.TCPParked == 0 })
}

// TestTCPParkAckFullSendBuffer: the ACKs of a parked device that stopped
// reading fill its socket's send buffer; then the ACK the poller began
// goes out from a goroutine that holds the session's writer, the pings
// after it wake the session (the poller never waits), and other devices'
// pings are still answered at once. Once the device reads again it gets
// every ACK, in order, and its session parks again.
func TestTCPParkAckFullSendBuffer(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 30 * time.Second // the device resumes long before
	cfg.IdleTimeout = 2 * time.Minute   // device 2 stays silent meanwhile
	w, addr := parkWorld(t, cfg)
	const maxPings = 60000
	// Small buffers on both ends (the device's before it connects, so
	// that it never offers a larger window), so that a few thousand ACKs
	// fill them.
	small := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	d := w.onlineTCPDialer(addr, 1, maxPings+16, small)
	d.mu.Lock()
	d.noLog = true
	d.mu.Unlock()
	d2 := w.onlineTCP(addr, 2)
	w.settled(d, 2)
	s := w.g.lookup(d.id.String())
	tc, ok := s.conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("session conn is %T", s.conn)
	}
	if err := tc.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	// The device stops reading after the ACK of this ping.
	d.pauseReading()
	id := d.nextID()
	d.send(protocol.NewPing(id))
	d.expect("ACK before the pause", ackOf(id))

	// stuck: the session's writer is held for 200 ms on end, as only a
	// write that cannot go on holds it.
	stuck := func() bool {
		for range 20 {
			if s.wmu.TryLock() {
				s.wmu.Unlock()
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	answered := func() uint64 { st := w.g.Stats(); return st.TCPPollerPings + st.SessionPings }
	base := answered()
	var ids []uint16
	d.conn.SetWriteDeadline(time.Time{})
	for {
		if len(ids) >= maxPings {
			t.Fatalf("%d pings answered to a device that does not read: the send buffer never filled", len(ids))
		}
		// Ten pings in a write: one read of the poller's takes them all.
		batch := make([]protocol.Message, 10)
		for i := range batch {
			ids = append(ids, d.nextID())
			batch[i] = protocol.NewPing(ids[len(ids)-1])
		}
		d.writeFrames(nil, batch...)
		deadline := time.Now().Add(100 * time.Millisecond)
		for answered()-base < uint64(len(ids)) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if answered()-base < uint64(len(ids)) && stuck() {
			break
		}
	}
	t.Logf("send buffer full after %d pings, %d answered by the poller", len(ids), w.g.Stats().TCPPollerPings)
	// The poller is not blocked: another parked device's pings are
	// answered while the first device's ACKs wait.
	for range 3 {
		id := d2.nextID()
		d2.send(protocol.NewPing(id))
		d2.expect("ACK of another device's ping", ackOf(id))
	}
	// One more ping of the stuck device: the poller cannot take its
	// writer, so the session is woken and answers it once it can write.
	ids = append(ids, d.nextID())
	d.send(protocol.NewPing(ids[len(ids)-1]))
	if !w.g.Online(d.id.String()) {
		t.Fatal("the device that stopped reading went offline")
	}
	d.resumeReading()
	for i, id := range ids {
		d.expect(fmt.Sprintf("ACK %d of %d after resuming", i, len(ids)), ackOf(id))
	}
	d.expectNone("other messages", 100*time.Millisecond, func(devMsg) bool { return true })
	waitFor(t, "parked again", func() bool { return w.g.Stats().TCPParked == 2 })
	id = d.nextID()
	d.send(protocol.NewPing(id))
	d.expect("ACK of a ping after all", ackOf(id))
}
