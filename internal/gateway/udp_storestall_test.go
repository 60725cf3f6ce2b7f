package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// errStoreDown is the failing store's error.
var errStoreDown = errors.New("test store: unavailable")

// faultyStore is the SQLite store with faults switched on by the test: a
// failing or stalling session save, a failing device read.
type faultyStore struct {
	*sqlstore.DB
	failSave   atomic.Bool
	failDevice atomic.Bool
	stall      atomic.Pointer[chan struct{}] // set: saves wait until it closes
	stalled    atomic.Int64                  // saves that waited
}

func (f *faultyStore) fault(ctx context.Context) error {
	if f.failSave.Load() {
		return errStoreDown
	}
	if ch := f.stall.Load(); ch != nil {
		f.stalled.Add(1)
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *faultyStore) SaveDTLSSession(ctx context.Context, s store.DTLSSession) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.DB.SaveDTLSSession(ctx, s)
}

func (f *faultyStore) ClaimDTLSSession(ctx context.Context, s store.DTLSSession, old []byte) (bool, error) {
	if err := f.fault(ctx); err != nil {
		return false, err
	}
	return f.DB.ClaimDTLSSession(ctx, s, old)
}

func (f *faultyStore) DeviceByID(ctx context.Context, id string) (*store.Device, error) {
	if f.failDevice.Load() {
		return nil, errStoreDown
	}
	return f.DB.DeviceByID(ctx, id)
}

// newFaultyUDPWorld is a udpWorld whose gateway uses a faultyStore, and a
// device handshaken with it that has not sent its Hello yet.
func newFaultyUDPWorld(t *testing.T) (*udpWorld, *faultyStore, *udpDevice) {
	cfg := udpTestConfig()
	cfg.UDPIdleTimeout = 2 * time.Minute
	w := newUDPWorld(t, cfg)
	if err := w.g.Close(); err != nil {
		t.Fatal(err)
	}
	db, ok := w.st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("store is %T", w.st)
	}
	f := &faultyStore{DB: db}
	w.st = f
	w.g = w.newUDPGateway(cfg)
	key, id := testUDPKey(t, "device_a"), deviceID(1)
	w.provisionECC(id, key, "")
	d, err := w.dialUDP(id, key)
	if err != nil {
		t.Fatal(err)
	}
	return w, f, d
}

// TestUDPStoreFailsAtHello: when the store cannot save the session or read
// the device as a handshaken device's Hello comes in, the device is told
// at once with a fatal alert (Device OS then drops its session and
// handshakes again) instead of waiting through its retransmissions (74 s)
// for an answer that never comes; once the store is back, it comes online.
func TestUDPStoreFailsAtHello(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(f *faultyStore, on bool)
	}{
		{"save fails", func(f *faultyStore, on bool) { f.failSave.Store(on) }},
		{"device read fails", func(f *faultyStore, on bool) { f.failDevice.Store(on) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, f, d := newFaultyUDPWorld(t)
			id, key := d.id, d.key
			tc.set(f, true)
			if err := d.send(protocol.NewHello(protocol.Confirmable, d.nextID(), gen3Hello(id))); err != nil {
				t.Fatal(err)
			}
			waitLong(t, "a fatal alert for the session the store failed", 30*time.Second, func() bool {
				return d.alerts.Load() > 0
			})
			if w.g.Online(id.String()) {
				t.Fatal("device online although the store failed at its Hello")
			}
			if n := w.g.Stats().UDPEndAlerts; n != 1 {
				t.Fatalf("UDPEndAlerts = %d, want 1", n)
			}
			if d.replays.Load() != 0 {
				t.Fatal("the alert reused a sequence number")
			}
			tc.set(f, false)
			d2, err := w.dialUDP(id, key)
			if err != nil {
				t.Fatal(err)
			}
			d2.hello(gen3Hello(id))
			waitLong(t, "device online after the store came back", 30*time.Second, func() bool {
				return w.g.Online(id.String())
			})
		})
	}
}

// TestUDPStoreStallAtHello: a store that stalls (within its timeout) as a
// device's Hello comes in delays the Hello's answer, and the answer comes
// once the store does.
func TestUDPStoreStallAtHello(t *testing.T) {
	w, f, d := newFaultyUDPWorld(t)
	id := d.id
	ch := make(chan struct{})
	f.stall.Store(&ch)
	mid := d.nextID()
	if err := d.send(protocol.NewHello(protocol.Confirmable, mid, gen3Hello(id))); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the session save stalled", 30*time.Second, func() bool { return f.stalled.Load() > 0 })
	f.stall.Store(nil)
	close(ch)
	d.expect("hello ACK after the stall", ackOf(mid))
	waitLong(t, "device online after the stall", 30*time.Second, func() bool { return w.g.Online(id.String()) })
	if d.alerts.Load() != 0 {
		t.Fatal("alert although the store answered in time")
	}
}
