package gateway

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// simDevice is online with the `wick sim` application: led(), temp, count,
// label, on.
func simDevice(t *testing.T, w *world, n byte) (*testDevice, string) {
	t.Helper()
	id := deviceID(n)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.appJSON = `{"f":["led","slow"],"v":{"temp":9,"count":2,"label":4,"on":1,"broken":2}}`
	setOn := func(on bool) {
		d.mu.Lock()
		d.variables["on"] = variable{protocol.VariableBool, on}
		d.mu.Unlock()
	}
	d.functions["led"] = func(arg string) int32 {
		switch arg {
		case "on":
			setOn(true)
			return 1
		case "off":
			setOn(false)
			return 0
		}
		return -1
	}
	d.silent["slow"] = true
	d.variables["temp"] = variable{protocol.VariableDouble, 21.5}
	d.variables["count"] = variable{protocol.VariableInt32, int32(-42)}
	d.variables["label"] = variable{protocol.VariableString, "kitchen"}
	d.variables["on"] = variable{protocol.VariableBool, true}
	d.variables["broken"] = variable{protocol.VariableString, "xy"} // declared int32, sent as 2 bytes
	d.hello(helloPayload(0))
	waitFor(t, "describe", func() bool { return len(w.device(id).Variables) == 5 })
	return d, id.String()
}

func TestFunctionCall(t *testing.T) {
	w := newWorld(t, testConfig())
	d, id := simDevice(t, w, 20)
	ctx := context.Background()

	for _, tc := range []struct {
		arg  string
		want int32
	}{{"on", 1}, {"off", 0}, {"blink", -1}, {"", -1}} {
		got, err := w.g.CallFunction(ctx, id, "led", tc.arg)
		if err != nil || got != tc.want {
			t.Errorf("led(%q) = %d, %v; want %d", tc.arg, got, err, tc.want)
		}
	}
	// CON POST f/led ?on with a 1-byte token
	// (docs/particle-protocol.md#functions ✔).
	calls := d.logged(protocol.KindFunctionCall)
	if len(calls) != 4 {
		t.Fatalf("%d calls reached the device", len(calls))
	}
	c := calls[0]
	want := append(append([]byte{0x41, 0x02}, be16(c.m.ID)...), c.m.Token[0], 0xB1, 'f', 0x03, 'l', 'e', 'd', 0x42, 'o', 'n')
	if !bytes.Equal(c.raw, want) {
		t.Errorf("function call = % x, want % x", c.raw, want)
	}
	// The empty argument is still sent as a zero-length Uri-Query.
	if e := calls[3].raw; !bytes.Equal(e[len(e)-1:], []byte{0x40}) {
		t.Errorf("empty-argument call = % x", e)
	}

	// Through the bus, as the API would.
	r, err := w.b.Call(ctx, id, bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "on"})
	if err != nil || r.Status != 200 || r.ReturnValue != 1 {
		t.Errorf("bus call = %+v, %v", r, err)
	}

	// Unknown function: refused from the describe, without a request.
	if _, err := w.g.CallFunction(ctx, id, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown function: %v", err)
	}
	r, err = w.b.Call(ctx, id, bus.Call{Kind: bus.KindFunction, Name: "nope"})
	if err != nil || r.Status != 404 {
		t.Errorf("bus unknown function = %+v, %v", r, err)
	}
	if _, err := w.g.CallFunction(ctx, id, "led", strings.Repeat("x", 1025)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("long argument: %v", err)
	}
	if n := len(d.logged(protocol.KindFunctionCall)); n != 5 {
		t.Errorf("%d calls reached the device, want 5", n)
	}

	// A function the device never answers times out.
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := w.g.CallFunction(tctx, id, "slow", ""); !errors.Is(err, bus.ErrTimeout) {
		t.Errorf("silent function: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("timeout took %s", time.Since(start))
	}
	// The session survives, and the late token is free again.
	if got, err := w.g.CallFunction(ctx, id, "led", "on"); err != nil || got != 1 {
		t.Errorf("after timeout: %d, %v", got, err)
	}
	st := w.g.Stats()
	if st.Calls < 7 || st.CallsFailed != 1 {
		t.Errorf("stats calls %d failed %d", st.Calls, st.CallsFailed)
	}

	// Offline devices.
	if _, err := w.g.CallFunction(ctx, deviceID(99).String(), "led", ""); !errors.Is(err, bus.ErrDeviceOffline) {
		t.Errorf("offline device: %v", err)
	}
	d.conn.Close()
	waitFor(t, "offline", func() bool { return !w.g.Online(id) })
	if _, err := w.g.CallFunction(ctx, id, "led", ""); !errors.Is(err, bus.ErrDeviceOffline) {
		t.Errorf("disconnected device: %v", err)
	}
}

func TestFunctionCallDeviceGone(t *testing.T) {
	w := newWorld(t, testConfig())
	d, id := simDevice(t, w, 21)
	done := make(chan error, 1)
	go func() {
		_, err := w.g.CallFunction(context.Background(), id, "slow", "")
		done <- err
	}()
	waitFor(t, "call sent", func() bool { return len(d.logged(protocol.KindFunctionCall)) == 1 })
	d.conn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, bus.ErrDeviceOffline) {
			t.Errorf("call to vanished device: %v", err)
		}
	case <-time.After(waitTime):
		t.Fatal("call did not end with the session")
	}
}

func TestVariables(t *testing.T) {
	w := newWorld(t, testConfig())
	d, id := simDevice(t, w, 22)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want any
		typ  string
		raw  []byte
	}{
		{"temp", 21.5, "double", []byte{0, 0, 0, 0, 0, 0x80, 0x35, 0x40}}, // little-endian (docs/particle-protocol.md#variables ✔)
		{"count", int32(-42), "int32", []byte{0xff, 0xff, 0xff, 0xd6}},    // big-endian
		{"label", "kitchen", "string", []byte("kitchen")},
		{"on", true, "bool", []byte{1}},
	} {
		got, err := w.g.GetVariable(ctx, id, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("%s = %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
		r, err := w.b.Call(ctx, id, bus.Call{Kind: bus.KindVariable, Name: tc.name})
		if err != nil || r.Status != 200 || r.Type != tc.typ || !bytes.Equal(r.Result, tc.raw) {
			t.Errorf("bus %s = %+v, %v", tc.name, r, err)
		}
		if v, err := DecodeVariable(r.Type, r.Result); err != nil || v != tc.want {
			t.Errorf("DecodeVariable(%s) = %#v, %v", tc.name, v, err)
		}
	}
	// CON GET v/temp with a 1-byte token.
	v := d.logged(protocol.KindVariableRequest)[0]
	want := append(append([]byte{0x41, 0x01}, be16(v.m.ID)...), v.m.Token[0], 0xB1, 'v', 0x04, 't', 'e', 'm', 'p')
	if !bytes.Equal(v.raw, want) {
		t.Errorf("variable request = % x, want % x", v.raw, want)
	}
	if _, err := w.g.GetVariable(ctx, id, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown variable: %v", err)
	}
	if _, err := w.g.GetVariable(ctx, id, "broken"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("malformed value: %v", err)
	}
}

func TestVariableBeforeDescribe(t *testing.T) {
	// A device that posts its own describes but has not yet: the gateway
	// fetches the application describe to learn the variable's type.
	w := newWorld(t, testConfig())
	id := deviceID(23)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.appJSON = `{"f":[],"v":{"count":2}}`
	d.variables["count"] = variable{protocol.VariableInt32, int32(7)}
	d.hello(helloPayload(protocol.HelloDeviceDescribe))
	waitFor(t, "online", func() bool { return w.g.Online(id.String()) })
	got, err := w.g.GetVariable(context.Background(), id.String(), "count")
	if err != nil || got != int32(7) {
		t.Errorf("count = %#v, %v", got, err)
	}
	if n := len(d.logged(protocol.KindDescribeRequest)); n != 1 {
		t.Errorf("%d describe requests, want 1", n)
	}
}
