package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

func TestParseQuirks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want device.Quirks
		str  string
		err  bool
	}{
		{in: "", want: device.Quirks{}, str: ""},
		{in: "none", want: device.Quirks{}, str: ""},
		{in: "all", want: device.AllQuirks(), str: "reply-ids,split-writes,nagle,describe-requires-flags"},
		{in: "true", want: device.AllQuirks(), str: "reply-ids,split-writes,nagle,describe-requires-flags"},
		{in: "reply-ids", want: device.Quirks{ReplyIDs: true}, str: "reply-ids"},
		{in: " Nagle , split-writes", want: device.Quirks{Nagle: true, SplitWrites: true}, str: "split-writes,nagle"},
		{in: "describe-requires-flags", want: device.Quirks{DescribeRequiresFlags: true}, str: "describe-requires-flags"},
		{in: "nagle,bogus", err: true},
	} {
		got, err := device.ParseQuirks(tc.in)
		if tc.err {
			if !errors.Is(err, device.ErrConfig) {
				t.Errorf("ParseQuirks(%q) error %v; want ErrConfig", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseQuirks(%q) = %+v (%q), %v; want %+v (%q)", tc.in, got, got.String(), err, tc.want, tc.str)
		}
	}
}

// countingConn counts the writes on a device's connection and records the
// last SetNoDelay.
type countingConn struct {
	*net.TCPConn
	writes  atomic.Int64
	noDelay atomic.Int32 // 0 never called, 1 false, 2 true
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(b)
}

func (c *countingConn) SetNoDelay(on bool) error {
	c.noDelay.Store(1)
	if on {
		c.noDelay.Store(2)
	}
	return c.TCPConn.SetNoDelay(on)
}

// quirkyDevice connects a device with quirks q, on a counting connection.
func quirkyDevice(t *testing.T, q device.Quirks) (*device.Device, *devicetest.Conn, *countingConn) {
	t.Helper()
	srv := newServer(t)
	conns := make(chan *countingConn, 4)
	d := newDevice(t, srv, func(c *device.Config) {
		c.Quirks = q
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{TCPConn: nc.(*net.TCPConn)}
			conns <- cc
			return cc, nil
		}
	})
	if err := d.Function("led", func(_ context.Context, arg string) int32 { return int32(len(arg)) }); err != nil {
		t.Fatal(err)
	}
	if err := d.Variable("count", func() int32 { return 42 }); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv, d)
	return d, c, <-conns
}

// TestQuirks: every quirk on and off, against a server that matches
// answers as docs/device-protocol.md describes: signal, ping, calls and
// reads work either way, and each quirk changes the wire as documented.
func TestQuirks(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    device.Quirks
	}{
		{"none", device.Quirks{}},
		{"reply-ids", device.Quirks{ReplyIDs: true}},
		{"split-writes", device.Quirks{SplitWrites: true}},
		{"nagle", device.Quirks{Nagle: true}},
		{"all", device.AllQuirks()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, cc := quirkyDevice(t, tc.q)
			ctx := testContext(t)

			// Ping and signal: with ReplyIDs their ACKs carry the device's
			// own message IDs.
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			if err := c.Signal(ctx, true); err != nil {
				t.Fatalf("signal: %v", err)
			}
			wantForeign := 0
			if tc.q.ReplyIDs {
				wantForeign = 2
			}
			if n := c.ForeignReplies(); n != wantForeign {
				t.Errorf("%d replies with foreign IDs; want %d", n, wantForeign)
			}

			// A variable read: the empty ACK and the value in one write, or
			// in two with SplitWrites.
			before := cc.writes.Load()
			if v, err := c.Get(ctx, "count", protocol.VariableInt32); err != nil || v != int32(42) {
				t.Fatalf("count = %v, %v", v, err)
			}
			wantWrites := int64(1)
			if tc.q.SplitWrites {
				wantWrites = 2
			}
			if n := cc.writes.Load() - before; n != wantWrites {
				t.Errorf("variable read in %d writes; want %d", n, wantWrites)
			}
			// A function call: the result is always a write of its own.
			before = cc.writes.Load()
			if v, err := c.Call(ctx, "led", "on"); err != nil || v != 2 {
				t.Fatalf("led(on) = %d, %v", v, err)
			}
			if n := cc.writes.Load() - before; n != 2 {
				t.Errorf("function call in %d writes; want 2", n)
			}
			// Nagle: left on (SetNoDelay(false)) only with the quirk.
			wantNoDelay := int32(0)
			if tc.q.Nagle {
				wantNoDelay = 1
			}
			if got := cc.noDelay.Load(); got != wantNoDelay {
				t.Errorf("SetNoDelay state %d; want %d", got, wantNoDelay)
			}
		})
	}
}

// TestDescribeWithoutFlags: GET d without a flags query gets the full
// describe (Device OS before 3.3), or 4.00 with Quirks.DescribeRequiresFlags
// (Device OS 3.3 and later).
func TestDescribeWithoutFlags(t *testing.T) {
	bare := protocol.Message{Type: protocol.Confirmable, Code: protocol.CodeGET, Token: []byte{0},
		Options: []protocol.Option{{Number: protocol.OptionURIPath, Value: []byte{protocol.PathDescribe}}}}
	for _, strict := range []bool{true, false} {
		on := !strict // the full describe is answered
		_, c, _ := quirkyDevice(t, device.Quirks{DescribeRequiresFlags: strict})
		ctx := testContext(t)
		r, err := c.Request(ctx, bare)
		if err != nil {
			t.Fatal(err)
		}
		if !on {
			if r.Code != protocol.CodeBadRequest {
				t.Errorf("with describe-requires-flags: answered %s; want 4.00", r.Code)
			}
			continue
		}
		if r.Code != protocol.CodeContent {
			t.Fatalf("by default: answered %s; want 2.05", r.Code)
		}
		var full map[string]json.RawMessage
		if err := json.Unmarshal(r.Payload, &full); err != nil {
			t.Fatalf("describe %s: %v", r.Payload, err)
		}
		var keys []string
		for _, k := range []string{"p", "m", "f", "v"} {
			if _, ok := full[k]; ok {
				keys = append(keys, k)
			}
		}
		if !reflect.DeepEqual(keys, []string{"p", "m", "f", "v"}) {
			t.Errorf("full describe has %v; want system and application parts: %s", keys, r.Payload)
		}
		// Same as asking for both parts.
		both, err := c.Describe(ctx, protocol.DescribeSystem|protocol.DescribeApplication)
		if err != nil || string(both) != string(r.Payload) {
			t.Errorf("d?3 = %s, %v; want %s", both, err, r.Payload)
		}
	}
}

// FuzzParseQuirks: any input parses or fails with ErrConfig, and what
// parses prints back to a list that parses to the same quirks.
func FuzzParseQuirks(f *testing.F) {
	for _, s := range []string{"", "all", "reply-ids,nagle", " Split-Writes ", "none,all", "x", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := device.ParseQuirks(s)
		if err != nil {
			if !errors.Is(err, device.ErrConfig) {
				t.Fatalf("ParseQuirks(%q): %v", s, err)
			}
			return
		}
		again, err := device.ParseQuirks(q.String())
		if err != nil || again != q {
			t.Fatalf("ParseQuirks(%q) = %+v; its String %q parses to %+v, %v", s, q, q.String(), again, err)
		}
	})
}
