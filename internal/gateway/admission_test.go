package gateway

import (
	"crypto/rsa"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// admissionConfig admits one starting session and queues one more.
func admissionConfig() Config {
	cfg := testConfig()
	cfg.MaxStarting = 1
	cfg.StartQueue = 1
	cfg.AdmissionHold = time.Hour
	cfg.HandshakeRate = -1
	return cfg
}

// dialAsync starts a device's handshake in the background; the channel
// yields the device, or nil when the gateway closed the connection.
func (w *world) dialAsync(id protocol.DeviceID, key *rsa.PrivateKey) <-chan *testDevice {
	ch := make(chan *testDevice, 1)
	go func() {
		d, err := w.tryDial(id, key)
		if err != nil {
			d = nil
		}
		ch <- d
	}()
	return ch
}

// postApp posts the device's application describe (device-initiated).
func (d *testDevice) postApp(t *testing.T) {
	t.Helper()
	id := d.nextID()
	m, err := protocol.NewDescribePost(id, d.nextToken(), protocol.DescribeBody{
		Flags: protocol.DescribeApplication, Payload: []byte(`{"f":["led"],"v":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.send(m); err != nil {
		t.Fatal(err)
	}
	d.expect("describe ACK", ackOf(id))
}

func TestAdmission(t *testing.T) {
	keyA, keyB, keyC := testKey(t, "device_a"), testKey(t, "device_b"), testKey(t, "device_wrong")
	setup := func(t *testing.T, cfg Config) (*world, [3]protocol.DeviceID) {
		w := newWorld(t, cfg)
		ids := [3]protocol.DeviceID{deviceID(70), deviceID(71), deviceID(72)}
		w.provision(ids[0], keyA, owner1)
		w.provision(ids[1], keyB, owner1)
		w.provision(ids[2], keyC, owner1)
		return w, ids
	}
	// startA brings device A online holding the only slot: it announces
	// device-initiated describes and has not posted them.
	startA := func(w *world, id protocol.DeviceID) *testDevice {
		a := w.online(id, keyA, protocol.HelloDeviceDescribe)
		if st := w.g.Stats(); st.Starting != 1 {
			w.t.Fatalf("Starting = %d with A online and undescribed, want 1", st.Starting)
		}
		return a
	}
	waitQueued := func(w *world, n int64) {
		waitFor(w.t, "a connection waiting for admission", func() bool { return w.g.Stats().StartWaiting == n })
	}

	t.Run("describe stored releases the slot", func(t *testing.T) {
		w, ids := setup(t, admissionConfig())
		a := startA(w, ids[0])
		bc := w.dialAsync(ids[1], keyB)
		waitQueued(w, 1)
		// The queue holds one: the third connection is closed at once.
		if d := <-w.dialAsync(ids[2], keyC); d != nil {
			t.Fatal("third device handshook past a full admission queue")
		}
		st := w.g.Stats()
		if st.AdmissionRefused != 1 || st.HandshakesOK != 1 {
			t.Fatalf("refused %d, handshakes %d; want 1 and 1", st.AdmissionRefused, st.HandshakesOK)
		}
		select {
		case <-bc:
			t.Fatal("B handshook while A held the only slot")
		default:
		}
		a.postApp(t)
		b := <-bc
		if b == nil {
			t.Fatal("B was closed instead of admitted after A's describe")
		}
		b.hello(helloPayload(protocol.HelloDeviceDescribe))
		waitFor(t, "B online", func() bool { return w.g.Online(ids[1].String()) })
		st = w.g.Stats()
		if st.AdmissionQueued != 1 || st.Starting != 1 || st.StartWaiting != 0 {
			t.Errorf("queued %d starting %d waiting %d; want 1, 1, 0", st.AdmissionQueued, st.Starting, st.StartWaiting)
		}
		// Calls to A, online and described, are not held up.
		a.functions["led"] = func(string) int32 { return 1 }
		if r, err := w.g.CallFunction(t.Context(), ids[0].String(), "led", "on"); err != nil || r != 1 {
			t.Errorf("call to A during B's start: %d, %v", r, err)
		}
	})

	t.Run("session end releases the slot", func(t *testing.T) {
		w, ids := setup(t, admissionConfig())
		a := startA(w, ids[0])
		bc := w.dialAsync(ids[1], keyB)
		waitQueued(w, 1)
		a.conn.Close()
		if <-bc == nil {
			t.Fatal("B was closed instead of admitted after A left")
		}
	})

	t.Run("hold limit releases the slot", func(t *testing.T) {
		cfg := admissionConfig()
		cfg.AdmissionHold = 50 * time.Millisecond
		w, ids := setup(t, cfg)
		w.online(ids[0], keyA, protocol.HelloDeviceDescribe)
		waitFor(t, "A's slot released after the hold", func() bool { return w.g.Stats().Starting == 0 })
		if <-w.dialAsync(ids[1], keyB) == nil {
			t.Fatal("B refused after A's hold ended")
		}
		if st := w.g.Stats(); st.AdmissionQueued != 0 {
			t.Errorf("queued %d, want 0", st.AdmissionQueued)
		}
	})

	t.Run("wait limit", func(t *testing.T) {
		cfg := admissionConfig()
		cfg.HandshakeIdle = 100 * time.Millisecond
		w, ids := setup(t, cfg)
		startA(w, ids[0])
		if <-w.dialAsync(ids[1], keyB) != nil {
			t.Fatal("B handshook while A held the only slot")
		}
		if st := w.g.Stats(); st.AdmissionTimeouts != 1 || st.StartWaiting != 0 {
			t.Errorf("timeouts %d waiting %d; want 1 and 0", st.AdmissionTimeouts, st.StartWaiting)
		}
	})

	t.Run("off", func(t *testing.T) {
		cfg := admissionConfig()
		cfg.MaxStarting = -1
		w, ids := setup(t, cfg)
		w.online(ids[0], keyA, protocol.HelloDeviceDescribe)
		w.online(ids[1], keyB, protocol.HelloDeviceDescribe)
		if st := w.g.Stats(); st.Starting != 0 || st.AdmissionQueued != 0 {
			t.Errorf("starting %d queued %d without admission", st.Starting, st.AdmissionQueued)
		}
	})
}

func TestAdmissionQueueFIFOBound(t *testing.T) {
	a := newAdmission(2, 0)
	deadline := time.Now().Add(time.Hour)
	for range 2 {
		if q, err := a.acquire(deadline, nil); q || err != nil {
			t.Fatalf("acquire with free slots: queued %v, %v", q, err)
		}
	}
	if _, err := a.acquire(deadline, nil); err != errAdmissionFull {
		t.Fatalf("acquire with no queue: %v, want errAdmissionFull", err)
	}
	done := make(chan struct{})
	close(done)
	a.queue = 1
	if q, err := a.acquire(deadline, done); !q || err != ErrClosed {
		t.Fatalf("acquire at shutdown: queued %v, %v", q, err)
	}
	a.release()
	if q, err := a.acquire(deadline, nil); q || err != nil || a.starting() != 2 {
		t.Fatalf("acquire after release: queued %v, %v, starting %d", q, err, a.starting())
	}
}
