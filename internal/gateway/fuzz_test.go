package gateway

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// FuzzSessionMessage sends arbitrary plaintexts, framed correctly, to an
// established session: whatever a hostile device sends inside the
// encryption, the gateway must not panic, and the session either goes on
// (answering a ping) or ends cleanly (and the device can reconnect).
func FuzzSessionMessage(f *testing.F) {
	seed := func(m protocol.Message) {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(protocol.NewPing(1))
	seed(protocol.NewTimeRequest(2, 3))
	ev, _ := protocol.NewEvent(protocol.Confirmable, 3, protocol.Event{Name: "temp", Data: []byte("1"), TTL: 5})
	seed(ev)
	seed(protocol.NewSubscribe(protocol.Confirmable, 4, protocol.Subscription{Prefix: "t", DeviceID: "x"}))
	dp, _ := protocol.NewDescribePost(5, 6, protocol.DescribeBody{Flags: 2, Payload: []byte(`{"f":["a"],"v":{"b":9}}`),
		Block: &protocol.Block{Num: 0, More: true, Size: 16}})
	seed(dp)
	seed(protocol.NewFunctionResult(protocol.Confirmable, 7, 8, 42))
	seed(protocol.NewACK(9, []byte{1}, protocol.CodeContent, []byte{1, 2}))
	seed(protocol.NewReset(10))
	seed(protocol.NewHello(protocol.NonConfirmable, 11, helloPayload(0x20)))
	f.Add([]byte{0})
	f.Add([]byte{0x40})
	f.Add([]byte{0x51, 0x02, 0, 1, 0xB1, 'E', 0x0D, 0xFF})

	w := newWorld(f, testConfig())
	id := deviceID(90)
	w.provision(id, testKey(f, "device_a"), owner1)
	serverPub := &testKey(f, "server").PublicKey
	key := testKey(f, "device_a")
	f.Fuzz(func(t *testing.T, plain []byte) {
		// A fresh session per input (closed with t), so that an input that
		// ends its session does not affect the next.
		client, server := net.Pipe()
		go w.g.ServeConn(context.Background(), server)
		d, err := startDevice(t, client, id, key, serverPub, 64)
		if err != nil {
			t.Fatal(err)
		}
		d.hello(helloPayload(protocol.HelloDeviceDescribe))
		if len(plain) > 1024 {
			plain = plain[:1024]
		}
		d.sendPlain(plain)
		msgID := d.nextID()
		if err := d.send(protocol.NewPing(msgID)); err == nil {
			deadline := time.After(waitTime)
		wait:
			for {
				select {
				case m := <-d.in:
					if m.m.Type == protocol.Acknowledgement && m.m.ID == msgID {
						break wait
					}
				case <-d.done:
					break wait // the session ended (a Goodbye, say)
				case <-deadline:
					t.Fatalf("no answer to a ping after % x", plain)
				}
			}
		}
		if p := w.g.Stats().Panics; p != 0 {
			t.Fatalf("%d panics after % x", p, plain)
		}
	})
}

func TestNoGoroutineLeak(t *testing.T) {
	w := newWorld(t, testConfig())
	// The bus's one call subscription per process starts with the first
	// handler ever registered; start it before counting.
	w.b.HandleDevice("warm-up", func(context.Context, bus.Call) (bus.Reply, error) { return bus.Reply{}, nil })()
	runtime.GC()
	before := runtime.NumGoroutine()
	g := w.newGateway(testConfig())
	w.g = g
	for i := range 3 {
		id := deviceID(byte(100 + i))
		w.provision(id, testKey(t, "device_a"), owner1)
		d := w.online(id, testKey(t, "device_a"), 0)
		d.subscribe(protocol.Subscription{Prefix: "x"})
		if _, err := w.g.GetVariable(context.Background(), id.String(), "nope"); err == nil {
			t.Fatal("variable found")
		}
		w.g.SendEvent(context.Background(), id.String(), "x", nil)
		d.expect("event", eventNamed("x"))
		if i == 0 {
			d.conn.Close()
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	var after int
	for range 200 {
		after = runtime.NumGoroutine()
		if after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}
