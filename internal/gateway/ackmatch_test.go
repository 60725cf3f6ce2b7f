package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// TestFirmwareMessageIDs: Device OS over TCP answers a ping and a signal
// with its own next message ID (docs/device-protocol.md, "Acknowledgement
// matching"). Signal, ping, calls and reads all succeed against such a
// device, directly and through the bus as the API calls them.
func TestFirmwareMessageIDs(t *testing.T) {
	w := newWorld(t, testConfig())
	d, id := simDevice(t, w, 30)
	d.mu.Lock()
	d.firmwareIDs = true
	d.mu.Unlock()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"signal on", func() error { return w.g.Signal(ctx, id, true) }},
		{"signal off", func() error { return w.g.Signal(ctx, id, false) }},
		{"ping", func() error { return w.g.Ping(ctx, id) }},
		{"function", func() error {
			if v, err := w.g.CallFunction(ctx, id, "led", "on"); err != nil || v != 1 {
				return errors.Join(err, errors.New("wrong result"))
			}
			return nil
		}},
		{"variable", func() error {
			if v, err := w.g.GetVariable(ctx, id, "count"); err != nil || v != int32(-42) {
				return errors.Join(err, errors.New("wrong value"))
			}
			return nil
		}},
		{"bus signal", func() error {
			_, err := w.b.Call(ctx, id, bus.Call{Kind: bus.KindSignal, Arg: "1"})
			return err
		}},
		{"bus ping", func() error {
			_, err := w.b.Call(ctx, id, bus.Call{Kind: bus.KindPing})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				if err := tc.do(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// The replies really carried foreign IDs: every ping and signal the
	// device answered used an ID the server never sent.
	for _, k := range []protocol.Kind{protocol.KindPing, protocol.KindSignal} {
		if n := len(d.logged(k)); n < 3 {
			t.Errorf("%d %s requests reached the device", n, k)
		}
	}
}

// async runs fn in a goroutine and returns its result channel.
func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// pendingStill fails if ch delivers within a short while.
func pendingStill(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s ended early: %v", what, err)
	case <-time.After(100 * time.Millisecond):
	}
}

// result waits for ch.
func result(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTime):
		t.Fatalf("%s did not end", what)
		return nil
	}
}

// kindIs matches the next message of a kind.
func kindIs(k protocol.Kind) func(devMsg) bool {
	return func(m devMsg) bool { return m.kind() == k }
}

// TestAckMatching drives the device by hand through the matching rules of
// docs/device-protocol.md, "Acknowledgement matching": foreign IDs are
// matched by token or, for empty ACKs, taken by the oldest ping; stale and
// repeated ACKs never complete a signal, call or read.
func TestAckMatching(t *testing.T) {
	w := newWorld(t, testConfig())
	d, id := simDevice(t, w, 31)
	d.mu.Lock()
	d.auto = false
	d.mu.Unlock()
	ctx := context.Background()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }
	const foreign = 0x7ab1 // an ID the server never used (its IDs start from a random seed; checked below)
	signal := func() <-chan error { return async(func() error { return w.g.Signal(ctx, id, true) }) }
	ping := func() <-chan error { return async(func() error { return w.g.Ping(ctx, id) }) }
	call := func() <-chan error {
		return async(func() error {
			v, err := w.g.CallFunction(ctx, id, "led", "on")
			if err == nil && v != 7 {
				return errors.New("wrong result")
			}
			return err
		})
	}
	notForeign := func(m devMsg) {
		if m.m.ID == foreign {
			t.Skip("the server's random message IDs hit the test's foreign ID")
		}
	}

	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"signal ACK with a foreign ID and its token", func(t *testing.T) {
			res := signal()
			m := d.expect("signal", kindIs(protocol.KindSignal))
			notForeign(m)
			d.send(protocol.NewACK(foreign, m.m.Token, protocol.CodeChanged, nil))
			if err := result(t, "signal", res); err != nil {
				t.Fatal(err)
			}
		}},
		{"signal ACK with a foreign ID and another token is ignored", func(t *testing.T) {
			sctx, cancel := short()
			defer cancel()
			res := async(func() error { return w.g.Signal(sctx, id, true) })
			m := d.expect("signal", kindIs(protocol.KindSignal))
			notForeign(m)
			d.send(protocol.NewACK(foreign, []byte{m.m.Token[0] + 1}, protocol.CodeChanged, nil))
			if err := result(t, "signal", res); !errors.Is(err, bus.ErrTimeout) {
				t.Fatalf("signal = %v, want a timeout", err)
			}
		}},
		{"signal ACK whose ID is a pending call's goes by token", func(t *testing.T) {
			cres := call()
			c := d.expect("call", kindIs(protocol.KindFunctionCall))
			sres := signal()
			s := d.expect("signal", kindIs(protocol.KindSignal))
			// The firmware's counter happened to equal the call's ID.
			d.send(protocol.NewACK(c.m.ID, s.m.Token, protocol.CodeChanged, nil))
			if err := result(t, "signal", sres); err != nil {
				t.Fatal(err)
			}
			pendingStill(t, "call", cres)
			d.send(protocol.NewEmptyACK(c.m.ID))
			d.send(protocol.NewFunctionResult(protocol.NonConfirmable, d.nextID(), c.m.Token[0], 7))
			if err := result(t, "call", cres); err != nil {
				t.Fatal(err)
			}
		}},
		{"repeated signal ACK does not complete the next signal", func(t *testing.T) {
			res := signal()
			first := d.expect("signal", kindIs(protocol.KindSignal))
			d.send(protocol.NewACK(first.m.ID, first.m.Token, protocol.CodeChanged, nil))
			if err := result(t, "signal", res); err != nil {
				t.Fatal(err)
			}
			res = signal()
			second := d.expect("signal", kindIs(protocol.KindSignal))
			d.send(protocol.NewACK(first.m.ID, first.m.Token, protocol.CodeChanged, nil))
			d.send(protocol.NewACK(foreign, first.m.Token, protocol.CodeChanged, nil))
			pendingStill(t, "second signal", res)
			d.send(protocol.NewACK(second.m.ID, second.m.Token, protocol.CodeChanged, nil))
			if err := result(t, "second signal", res); err != nil {
				t.Fatal(err)
			}
		}},
		{"ping ACK with a foreign ID", func(t *testing.T) {
			res := ping()
			m := d.expect("ping", kindIs(protocol.KindPing))
			notForeign(m)
			d.send(protocol.NewEmptyACK(foreign))
			if err := result(t, "ping", res); err != nil {
				t.Fatal(err)
			}
		}},
		{"ping is not answered by a piggy-backed ACK", func(t *testing.T) {
			pctx, cancel := short()
			defer cancel()
			res := async(func() error { return w.g.Ping(pctx, id) })
			m := d.expect("ping", kindIs(protocol.KindPing))
			d.send(protocol.NewACK(m.m.ID, nil, protocol.CodeChanged, nil))
			if err := result(t, "ping", res); !errors.Is(err, bus.ErrTimeout) {
				t.Fatalf("ping = %v, want a timeout", err)
			}
		}},
		{"a call's empty ACK does not answer a ping; a foreign one does", func(t *testing.T) {
			cres := call()
			c := d.expect("call", kindIs(protocol.KindFunctionCall))
			pres := ping()
			p := d.expect("ping", kindIs(protocol.KindPing))
			notForeign(p)
			d.send(protocol.NewEmptyACK(c.m.ID))
			pendingStill(t, "ping", pres)
			d.send(protocol.NewEmptyACK(foreign))
			if err := result(t, "ping", pres); err != nil {
				t.Fatal(err)
			}
			pendingStill(t, "call", cres)
			d.send(protocol.NewFunctionResult(protocol.NonConfirmable, d.nextID(), c.m.Token[0], 7))
			if err := result(t, "call", cres); err != nil {
				t.Fatal(err)
			}
		}},
		{"stale empty ACK leaves a call alone", func(t *testing.T) {
			cres := call()
			c := d.expect("call", kindIs(protocol.KindFunctionCall))
			notForeign(c)
			d.send(protocol.NewEmptyACK(foreign))
			d.send(protocol.NewEmptyACK(c.m.ID))
			d.send(protocol.NewEmptyACK(c.m.ID)) // repeated
			pendingStill(t, "call", cres)
			d.send(protocol.NewFunctionResult(protocol.NonConfirmable, d.nextID(), c.m.Token[0], 7))
			if err := result(t, "call", cres); err != nil {
				t.Fatal(err)
			}
		}},
		{"oldest ping first", func(t *testing.T) {
			first := ping()
			p1 := d.expect("first ping", kindIs(protocol.KindPing))
			second := ping()
			p2 := d.expect("second ping", kindIs(protocol.KindPing))
			notForeign(p1)
			notForeign(p2)
			d.send(protocol.NewEmptyACK(foreign))
			if err := result(t, "first ping", first); err != nil {
				t.Fatal(err)
			}
			pendingStill(t, "second ping", second)
			d.send(protocol.NewEmptyACK(p2.m.ID))
			if err := result(t, "second ping", second); err != nil {
				t.Fatal(err)
			}
		}},
		{"RST with a foreign ID is ignored, with the request's ID it fails it", func(t *testing.T) {
			res := signal()
			m := d.expect("signal", kindIs(protocol.KindSignal))
			notForeign(m)
			d.send(protocol.NewReset(foreign))
			pendingStill(t, "signal", res)
			d.send(protocol.NewReset(m.m.ID))
			if err := result(t, "signal", res); err == nil {
				t.Fatal("signal succeeded after RST")
			}
		}},
	} {
		t.Run(tc.name, tc.run)
	}
	// Nothing is left waiting.
	s := w.g.lookup(id)
	s.mu.Lock()
	n := len(s.pending)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d requests still pending", n)
	}
}
