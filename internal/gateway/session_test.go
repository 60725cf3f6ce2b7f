package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

const owner1 = "0123456789abcdef01234567"

func TestOnline(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(1)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String()})

	d := w.dial(id, testKey(t, "device_a"))
	sh := d.hello(helloPayload(protocol.HelloDeviceDescribe))

	// Server Hello (docs/particle-protocol.md#tcp-handshake step 7): NON POST
	// h, no token, no payload.
	if want := append(append([]byte{0x50, 0x02}, be16(sh.m.ID)...), 0xB1, 'h'); !bytes.Equal(sh.raw, want) {
		t.Errorf("server hello = % x, want % x", sh.raw, want)
	}
	e := nextEvent(t, events, "spark/status")
	if e.Data != "online" || e.UserID != owner1 || e.Public {
		t.Errorf("online event = %+v", e)
	}
	waitFor(t, "store online", func() bool { return w.device(id).Online })
	dev := w.device(id)
	if dev.Node != "test-node" || dev.SessionID == "" || dev.LastIP != "pipe" || dev.PlatformID != 6 ||
		dev.SystemModuleVersion != 3302 || dev.ProductVersion != 0 || dev.LastHandshakeAt == nil {
		t.Errorf("stored session = node %q session %q ip %q platform %d system %d product version %d handshake %v",
			dev.Node, dev.SessionID, dev.LastIP, dev.PlatformID, dev.SystemModuleVersion, dev.ProductVersion, dev.LastHandshakeAt)
	}
	st := w.g.Stats()
	if st.Online != 1 || st.HandshakesOK != 1 || st.Connections != 1 {
		t.Errorf("stats = %+v", st)
	}

	d.conn.Close()
	e = nextEvent(t, events, "spark/status")
	if e.Data != "offline" || e.UserID != owner1 {
		t.Errorf("offline event = %+v", e)
	}
	waitFor(t, "store offline", func() bool { d := w.device(id); return !d.Online && d.SessionID == "" })
	waitFor(t, "stats", func() bool { st := w.g.Stats(); return st.Online == 0 && st.Connections == 0 })
}

func TestDescribeRequestedSeparately(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(2)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.dial(id, testKey(t, "device_a"))
	d.appJSON = `{"f":["led","brew"],"v":{"temp":9,"count":2,"label":4,"on":1}}`
	d.hello(helloPayload(0)) // no device-initiated describe: the server asks

	waitFor(t, "describe stored", func() bool { return len(w.device(id).Variables) == 4 })
	dev := w.device(id)
	if got := dev.Functions; len(got) != 2 || got[0] != "led" || got[1] != "brew" {
		t.Errorf("functions = %q", got)
	}
	want := map[string]string{"temp": "double", "count": "int32", "label": "string", "on": "bool"}
	for k, v := range want {
		if dev.Variables[k] != v {
			t.Errorf("variable %s = %q, want %q", k, dev.Variables[k], v)
		}
	}
	if e := nextEvent(t, events, "spark/device/app-hash"); e.Data != appHash {
		t.Errorf("app hash = %q", e.Data)
	}

	// Two GET d requests, system then application, each with the 1-byte
	// flags query and a 1-byte token (docs/particle-protocol.md#describe ✔).
	gets := d.logged(protocol.KindDescribeRequest)
	if len(gets) != 2 {
		t.Fatalf("got %d describe requests, want 2", len(gets))
	}
	for i, flags := range []byte{0x01, 0x02} {
		m := gets[i]
		want := append(append([]byte{0x41, 0x01}, be16(m.m.ID)...), m.m.Token[0], 0xB1, 'd', 0x41, flags)
		if !bytes.Equal(m.raw, want) {
			t.Errorf("describe request %d = % x, want % x", i, m.raw, want)
		}
	}
	// The device's CON 2.05 answers were ACKed.
	d.expect("ACK of the describe answer", func(m devMsg) bool { return m.kind() == protocol.KindEmptyACK })
}

func TestDescribePostBlockwise(t *testing.T) {
	cfg := testConfig()
	cfg.DescribeWait = 300 * time.Millisecond
	w := newWorld(t, cfg)
	id := deviceID(3)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.hello(helloPayload(protocol.HelloDeviceDescribe))

	// The application describe in Block1 blocks of 16 bytes, each CON with
	// a new token, each ACKed before the next
	// (docs/particle-protocol.md#describe).
	app := []byte(`{"f":["led"],"v":{"temp":9,"count":2}}`)
	for num := 0; num*16 < len(app); num++ {
		end := min((num+1)*16, len(app))
		more := end < len(app)
		msgID := d.nextID()
		m, err := protocol.NewDescribePost(msgID, d.nextToken(), protocol.DescribeBody{
			Flags: protocol.DescribeApplication, Payload: app[num*16 : end],
			Block: &protocol.Block{Num: uint32(num), More: more, Size: 16}})
		if err != nil {
			t.Fatal(err)
		}
		d.send(m)
		ack := d.expect("block ACK", ackOf(msgID))
		if ack.m.Code != protocol.CodeEmpty {
			t.Fatalf("block %d answered %s", num, ack.m.Code)
		}
	}
	waitFor(t, "describe stored", func() bool { return len(w.device(id).Variables) == 2 })
	if f := w.device(id).Functions; len(f) != 1 || f[0] != "led" {
		t.Errorf("functions = %q", f)
	}
	// After DescribeWait the server asks only for the part it lacks.
	waitFor(t, "describe request", func() bool { return len(d.logged(protocol.KindDescribeRequest)) > 0 })
	time.Sleep(300 * time.Millisecond)
	reqs := d.logged(protocol.KindDescribeRequest)
	if len(reqs) != 1 {
		t.Fatalf("%d describe requests, want 1", len(reqs))
	}
	if q, _ := reqs[0].m.Option(protocol.OptionURIQuery); !bytes.Equal(q, []byte{0x01}) {
		t.Errorf("requested flags % x, want 01", q)
	}
	// An out-of-order block is refused with 4.08.
	msgID := d.nextID()
	m, _ := protocol.NewDescribePost(msgID, d.nextToken(), protocol.DescribeBody{
		Flags: protocol.DescribeApplication, Payload: app[:16], Block: &protocol.Block{Num: 3, More: true, Size: 16}})
	d.send(m)
	if ack := d.expect("refusal", ackOf(msgID)); ack.m.Code != protocol.CodeRequestEntityIncomplete {
		t.Errorf("out-of-order block answered %s, want 4.08", ack.m.Code)
	}
}

func TestTimeReply(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(4)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)

	msgID := d.nextID()
	before := uint32(time.Now().Unix())
	d.send(protocol.NewTimeRequest(msgID, 0x42))
	r := d.expect("time reply", ackOf(msgID))
	after := uint32(time.Now().Unix())
	// 61 45 <id> <token> FF <u32>, exactly (docs/particle-protocol.md#time ✔).
	if len(r.raw) != 10 || !bytes.Equal(r.raw[:6], append(append([]byte{0x61, 0x45}, be16(msgID)...), 0x42, 0xFF)) {
		t.Fatalf("time reply = % x", r.raw)
	}
	if ts := binary.BigEndian.Uint32(r.raw[6:]); ts < before || ts > after {
		t.Errorf("time %d not in [%d, %d]", ts, before, after)
	}
}

func TestPingFromDevice(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(5)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	msgID := d.nextID()
	d.send(protocol.NewPing(msgID))
	r := d.expect("ping ACK", ackOf(msgID))
	if want := append([]byte{0x60, 0x00}, be16(msgID)...); !bytes.Equal(r.raw, want) {
		t.Errorf("ping ACK = % x, want % x", r.raw, want)
	}
	// The old keep-alive byte is ignored, and the session goes on.
	if err := d.sendPlain([]byte{0}); err != nil {
		t.Fatal(err)
	}
	msgID = d.nextID()
	d.send(protocol.NewPing(msgID))
	d.expect("second ping ACK", ackOf(msgID))
}

func TestPingAndSignalFromServer(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(6)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	ctx := context.Background()
	if err := w.g.Ping(ctx, id.String()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	for _, on := range []bool{true, false} {
		if err := w.g.Signal(ctx, id.String(), on); err != nil {
			t.Fatalf("Signal(%v): %v", on, err)
		}
	}
	var sigs [][]byte
	d.mu.Lock()
	for _, m := range d.log {
		switch m.kind() {
		case protocol.KindSignal:
			sigs = append(sigs, m.raw)
		case protocol.KindPing:
			if want := append([]byte{0x40, 0x00}, be16(m.m.ID)...); !bytes.Equal(m.raw, want) {
				t.Errorf("server ping = % x, want % x", m.raw, want)
			}
		}
	}
	d.mu.Unlock()
	if len(sigs) != 2 {
		t.Fatalf("got %d signals", len(sigs))
	}
	// CON PUT s ?<01|00> with a 1-byte token
	// (docs/particle-protocol.md#signal ✔).
	for i, v := range []byte{1, 0} {
		s := sigs[i]
		if len(s) != 9 || s[0] != 0x41 || s[1] != 0x03 || !bytes.Equal(s[5:], []byte{0xB1, 's', 0x41, v}) {
			t.Errorf("signal %d = % x", i, s)
		}
	}
	// Through the bus, as the API in another process would call it.
	r, err := w.b.Call(ctx, id.String(), bus.Call{Kind: bus.KindSignal, Arg: "1"})
	if err != nil || r.Status != 200 {
		t.Errorf("bus signal = %+v, %v", r, err)
	}
}

func TestGoodbye(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(7)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	nextEvent(t, events, "spark/status")
	d.send(protocol.NewGoodbye(protocol.NonConfirmable, d.nextID(), protocol.Goodbye{CloudReason: 2, SleepSeconds: 60}))
	if e := nextEvent(t, events, "spark/status"); e.Data != "offline" {
		t.Errorf("event = %+v", e)
	}
	d.waitClosed()
	if w.device(id).Online {
		t.Error("device still online")
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	w := newWorld(t, cfg)
	id := deviceID(8)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	start := time.Now()
	nextEvent(t, events, "spark/status")
	// Pings keep the session alive past the idle timeout.
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		msgID := d.nextID()
		d.send(protocol.NewPing(msgID))
		d.expect("ping ACK", ackOf(msgID))
	}
	if time.Since(start) < cfg.IdleTimeout || !w.g.Online(id.String()) {
		t.Fatal("session ended although the device pinged")
	}
	if e := nextEvent(t, events, "spark/status"); e.Data != "offline" {
		t.Errorf("event = %+v", e)
	}
	d.waitClosed()
	if st := w.g.Stats(); st.IdleTimeouts != 1 {
		t.Errorf("idle timeouts = %d", st.IdleTimeouts)
	}
}

// TestLastHeardFlush checks that an online device's last-heard time is
// written once it moved lastHeardStep past the stored one, and not before
// (one store write per lastHeardSteps flushes, not per ping).
func TestLastHeardFlush(t *testing.T) {
	cfg := testConfig()
	cfg.LastHeardFlush = 100 * time.Millisecond
	w := newWorld(t, cfg)
	step := w.g.lastHeardStep()
	id := deviceID(9)
	w.provision(id, testKey(t, "device_a"), owner1)
	start := time.Now()
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	online := time.Now() // after the session's start, the time written at online
	first := *w.device(id).LastHeard
	msgID := d.nextID()
	d.send(protocol.NewPing(msgID))
	d.expect("ping ACK", ackOf(msgID))
	time.Sleep(3 * cfg.LastHeardFlush)
	if got := *w.device(id).LastHeard; !got.Equal(first) && time.Since(start) < step-2*cfg.LastHeardFlush {
		t.Errorf("last heard written %v after online, before the step of %v: %v, was %v", time.Since(start), step, got, first)
	}
	time.Sleep(time.Until(online.Add(step)))
	msgID = d.nextID()
	d.send(protocol.NewPing(msgID))
	d.expect("ping ACK", ackOf(msgID))
	waitFor(t, "last heard flushed", func() bool { return w.device(id).LastHeard.After(first) })
}

func TestIsPingFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain []byte
		want  bool
	}{
		{"ping", []byte{0x40, 0x00, 0x12, 0x34}, true},
		{"empty ACK", []byte{0x60, 0x00, 0x12, 0x34}, false},
		{"reset", []byte{0x70, 0x00, 0x12, 0x34}, false},
		{"CON with token", []byte{0x41, 0x00, 0x12, 0x34, 0x01}, false},
		{"CON GET", []byte{0x40, 0x01, 0x12, 0x34}, false},
		{"keep-alive byte", []byte{0x00}, false},
		{"short", []byte{0x40, 0x00}, false},
	} {
		if got := isPingFrame(tc.plain); got != tc.want {
			t.Errorf("%s: isPingFrame = %v, want %v", tc.name, got, tc.want)
		}
		var m protocol.Message
		if tc.want {
			if err := m.Decode(tc.plain); err != nil || protocol.Classify(&m) != protocol.KindPing {
				t.Errorf("%s: not a ping to dispatch (err %v)", tc.name, err)
			}
		}
	}
}

func TestSubscriptionsPersisted(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(10)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.subscribe(protocol.Subscription{Prefix: "spark", MyDevices: true})
	d.subscribe(protocol.Subscription{Prefix: "temp"})
	d.subscribe(protocol.Subscription{Prefix: "temp"}) // repeated: kept once
	d.subscribe(protocol.Subscription{Prefix: "door", DeviceID: "000102030405060708090A0B"})
	want := []store.Subscription{
		{Prefix: "spark", Scope: store.ScopeMine},
		{Prefix: "temp", Scope: store.ScopeAll},
		{Prefix: "door", Scope: "device:000102030405060708090a0b"},
	}
	waitFor(t, "subscriptions stored", func() bool { return len(w.device(id).Subscriptions) == 3 })
	for i, s := range w.device(id).Subscriptions {
		if s != want[i] {
			t.Errorf("subscription %d = %+v, want %+v", i, s, want[i])
		}
	}
	// A new session replaces the list with what the device sends again.
	d.conn.Close()
	waitFor(t, "offline", func() bool { return !w.device(id).Online })
	d = w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.subscribe(protocol.Subscription{Prefix: "only"})
	waitFor(t, "subscriptions replaced", func() bool {
		s := w.device(id).Subscriptions
		return len(s) == 1 && s[0].Prefix == "only"
	})
}
