package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

// TestUDPFunctionCallSize: Device OS over DTLS receives a message into one
// buffer of the size its Hello announces and builds the ACK of a function
// call in the 16 bytes after it, and it takes no blockwise function call
// (docs/device-protocol.md, "Message size limits"). The gateway sends the
// longest call that leaves the 16 bytes and refuses a longer one with
// ErrBadRequest (the API's 400 "Function argument too long") without
// sending it.
func TestUDPFunctionCallSize(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d, err := w.dialUDP(id, key)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.functions["f"] = func(arg string) int32 { return int32(len(arg)) }
	d.appJSON = `{"f":["f"],"v":{}}`
	d.mu.Unlock()
	const size = 600 // a small buffer, so that the API's argument limit does not decide
	h := gen3Hello(id)
	h.MaxMessageSize = size
	d.hello(h)
	waitFor(t, "device online", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
	waitFor(t, "describe", func() bool { return len(w.device(id).Functions) == 1 })

	// The longest argument whose call leaves 16 bytes of the buffer.
	longest := 0
	for n := 1; n < size; n++ {
		m := protocol.NewFunctionCall(1, 1, "f", strings.Repeat("a", n))
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) > size-16 {
			break
		}
		longest = n
	}
	calls := func() int { return d.count(func(m devMsg) bool { return m.kind() == protocol.KindFunctionCall }) }
	for _, tc := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"short", 10, true},
		{"longest that fits", longest, true},
		{"one byte more", longest + 1, false},
		{"the buffer's size", size, false},
	} {
		before := calls()
		v, err := w.g.CallFunction(context.Background(), id.String(), "f", strings.Repeat("a", tc.n))
		switch {
		case tc.ok && (err != nil || v != int32(tc.n)):
			t.Errorf("%s (%d bytes): %d, %v", tc.name, tc.n, v, err)
		case !tc.ok && !errors.Is(err, ErrBadRequest):
			t.Errorf("%s (%d bytes): err = %v, want ErrBadRequest", tc.name, tc.n, err)
		case !tc.ok && calls() != before:
			t.Errorf("%s: the refused call reached the device", tc.name)
		}
	}
	if !w.g.Online(id.String()) {
		t.Error("device went offline")
	}
}
