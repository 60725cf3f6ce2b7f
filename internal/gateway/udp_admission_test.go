package gateway

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// waitLong is waitFor with a deadline of its own, for waits that span many
// handshakes on a loaded machine.
func waitLong(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialUDPRetry handshakes as a device whose firmware starts over after a
// failed handshake, as Device OS does, until deadline.
func (w *udpWorld) dialUDPRetry(id protocol.DeviceID, key *ecdsa.PrivateKey, deadline time.Time) (*udpDevice, error) {
	for {
		d, err := w.dialUDP(id, key)
		if err == nil || time.Now().After(deadline) {
			return d, err
		}
	}
}

// TestUDPAdmissionDropsClientHello: with every admission slot held and no
// queue, a ClientHello with a valid cookie is dropped before any signature;
// the device's retransmission is its queue, and it comes online once a
// slot is free.
func TestUDPAdmissionDropsClientHello(t *testing.T) {
	cfg := udpTestConfig()
	cfg.MaxStarting, cfg.StartQueue = 1, -1
	w := newUDPWorld(t, cfg)
	key := testUDPKey(t, "device_a")
	id := deviceID(1)
	w.provisionECC(id, key, "")
	if _, err := w.g.admission.acquire(time.Now().Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			w.g.admission.release()
		}
	}
	defer release()
	type result struct {
		d   *udpDevice
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := w.dialUDP(id, key)
		done <- result{d, err}
	}()
	waitLong(t, "a ClientHello dropped by the admission", 30*time.Second, func() bool {
		return w.g.Stats().UDPAdmissionDropped > 0
	})
	if n := w.signer.n.Load(); n != 0 {
		t.Fatalf("%d signatures while no admission slot was free", n)
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("handshake after the slot was freed: %v", r.err)
	}
	r.d.hello(gen3Hello(id))
	waitLong(t, "device online", 30*time.Second, func() bool { return w.g.Online(id.String()) })
	if st := w.g.Stats(); st.UDPAdmitted < 1 {
		t.Fatalf("UDPAdmitted = %d, want at least 1", st.UDPAdmitted)
	}
}

// TestUDPAdmissionStorm: a storm of handshakes under a small admission
// bound still brings every device online, and a device online before the
// storm answers calls throughout it.
func TestUDPAdmissionStorm(t *testing.T) {
	const n = 16
	cfg := udpTestConfig()
	cfg.MaxStarting, cfg.StartQueue = 2, 2
	cfg.UDPIdleTimeout = 2 * time.Minute // the first devices stay online until the last
	w := newUDPWorld(t, cfg)
	online := deviceID(100)
	okey := testUDPKey(t, "device_online")
	w.provisionECC(online, okey, "")
	w.onlineUDPWith(online, okey, func(d *udpDevice) {
		d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
		d.appJSON = `{"f":["led"],"v":{}}`
	})
	waitLong(t, "the online device's function known", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ret, err := w.g.CallFunction(ctx, online.String(), "led", "abc")
		return err == nil && ret == 3
	})

	keys := make([]*ecdsa.PrivateKey, n)
	for i := range n {
		keys[i] = testUDPKey(t, fmt.Sprintf("storm_%d", i))
		w.provisionECC(deviceID(byte(i+1)), keys[i], "")
	}
	stop := make(chan struct{})
	var calls sync.WaitGroup
	var callErr error
	var answered int
	calls.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			ret, err := w.g.CallFunction(ctx, online.String(), "led", "abc")
			cancel()
			if err != nil || ret != 3 {
				callErr = fmt.Errorf("call to the device online before the storm: %d, %v", ret, err)
				return
			}
			answered++
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// Generous: the storm's 16 handshakes through 2 slots took longer than
	// 90 s under -race in the openssl build at load ~25 ("device 2: test
	// device: handshake timed out"); a stuck admission still fails.
	deadline := time.Now().Add(4 * time.Minute)
	for i := range n {
		wg.Go(func() {
			id := deviceID(byte(i + 1))
			d, err := w.dialUDPRetry(id, keys[i], deadline)
			if err != nil {
				errs <- fmt.Errorf("device %d: %w", i, err)
				return
			}
			id1 := d.nextID()
			if err := d.send(protocol.NewHello(protocol.Confirmable, id1, gen3Hello(id))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitLong(t, "every device of the storm online", 4*time.Minute, func() bool {
		for i := range n {
			if !w.g.Online(deviceID(byte(i + 1)).String()) {
				return false
			}
		}
		return true
	})
	close(stop)
	calls.Wait()
	if callErr != nil {
		t.Fatal(callErr)
	}
	if answered == 0 {
		t.Fatal("no call answered during the storm")
	}
	st := w.g.Stats()
	if st.UDPAdmitted < n+1 {
		t.Fatalf("UDPAdmitted = %d, want at least %d", st.UDPAdmitted, n+1)
	}
	t.Logf("storm of %d under 2 slots: admitted %d, dropped %d, queued %d; %d calls answered during it",
		n, st.UDPAdmitted, st.UDPAdmissionDropped, st.AdmissionQueued, answered)
}

// TestUDPSilentHandshakeFreesSlot: a device that goes silent after the
// server's flight (it started over from a new socket) ends its handshake
// after HandshakeIdle, not at the handshake's deadline, and gives its
// admission slot back.
func TestUDPSilentHandshakeFreesSlot(t *testing.T) {
	cfg := udpTestConfig()
	cfg.HandshakeTimeout, cfg.HandshakeIdle = time.Minute, 300*time.Millisecond
	w := newUDPWorld(t, cfg)
	d, hs := rawHandshakeDevice(t, w)
	d.sendRaw(hs.Start(time.Now()))
	buf := make([]byte, 4096)
	d.pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := d.pc.ReadFromUDPAddrPort(buf) // the HelloVerifyRequest
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := hs.HandleDatagram(time.Now(), buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	d.sendRaw(out) // the ClientHello with the cookie; then silence
	waitLong(t, "the handshake admitted", 20*time.Second, func() bool { return w.g.Stats().UDPAdmitted == 1 })
	waitLong(t, "the silent handshake's slot given back", 8*time.Second, func() bool {
		return w.g.admission.starting() == 0
	})
}
