package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// TestMessageSizeLimits: requests and events are never larger than the
// device's Hello says it can receive (docs/device-protocol.md, Message size
// limits). A Gen 2 device announces 960 bytes: it receives CoAP messages of
// at most 927 bytes, and function calls of at most 908 (it builds their ACK
// in the rest of its buffer); Device OS drops the connection or crashes on
// larger ones.
func TestMessageSizeLimits(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(50)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.appJSON = `{"f":["led"],"v":{}}`
	d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
	h := helloPayload(0)
	h.MaxMessageSize = 960
	d.hello(h)
	waitFor(t, "describe", func() bool { return len(w.device(id).Functions) == 1 })
	ctx := context.Background()

	// f/led?<arg> encodes to 14 + len(arg) bytes for arguments of 269 bytes and more.
	for _, tc := range []struct {
		arg  int
		sent bool
	}{{864, true}, {894, true}, {895, false}, {913, false}, {1024, false}} {
		calls := len(d.logged(protocol.KindFunctionCall))
		v, err := w.g.CallFunction(ctx, id.String(), "led", strings.Repeat("a", tc.arg))
		reached := len(d.logged(protocol.KindFunctionCall)) > calls
		switch {
		case tc.sent && (err != nil || v != int32(tc.arg) || !reached):
			t.Errorf("argument of %d bytes: %d, %v (reached the device: %v); want it sent", tc.arg, v, err, reached)
		case !tc.sent && (!errors.Is(err, ErrBadRequest) || reached):
			t.Errorf("argument of %d bytes: %v (reached the device: %v); want ErrBadRequest, not sent", tc.arg, err, reached)
		}
	}

	// E/wickto/big with data: 18 + len(data) bytes.
	for _, tc := range []struct {
		data int
		sent bool
	}{{909, true}, {910, false}, {936, false}} {
		dropped := w.g.Stats().EventsDropped
		data := strings.Repeat("d", tc.data)
		if err := w.g.SendEvent(ctx, id.String(), "wickto/big", []byte(data)); err != nil {
			t.Fatal(err)
		}
		match := func(m devMsg) bool { return eventNamed("wickto/big")(m) && len(m.m.Payload) == tc.data }
		if tc.sent {
			d.expect("event", match)
			continue
		}
		waitFor(t, "event dropped", func() bool { return w.g.Stats().EventsDropped > dropped })
		d.expectNone("oversized event", 50*time.Millisecond, match)
	}
	if !w.g.Online(id.String()) {
		t.Error("device went offline")
	}
}

// TestMessageSizeTooSmall: a device announcing a size that leaves no room
// for a function call gets none (not an unlimited one).
func TestMessageSizeTooSmall(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(51)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	d.appJSON = `{"f":["led"],"v":{}}`
	d.functions["led"] = func(string) int32 { return 1 }
	h := helloPayload(0)
	h.MaxMessageSize = 40 // room for 15-byte messages (a describe request fits); a call needs 52 bytes more than it has
	d.hello(h)
	waitFor(t, "describe", func() bool { return len(w.device(id).Functions) == 1 })
	if _, err := w.g.CallFunction(context.Background(), id.String(), "led", ""); !errors.Is(err, ErrBadRequest) {
		t.Errorf("call: %v; want ErrBadRequest", err)
	}
	if n := len(d.logged(protocol.KindFunctionCall)); n != 0 {
		t.Errorf("%d calls reached the device", n)
	}
}
