//go:build linux

package gateway

import (
	"bytes"
	"context"
	"net"
	"runtime/pprof"
	"strings"
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
	id := deviceID(n)
	key := testKey(w.t, "device_a")
	w.provision(id, key, "")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := startDevice(w.t, conn, id, key, &testKey(w.t, "server").PublicKey, 1024)
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
	w, addr := parkWorld(t, testConfig())
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
	// Shutdown ends the parked sessions, which mark their devices offline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
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
