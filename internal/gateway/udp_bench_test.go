package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// BenchmarkUDPHandshake measures full Gen 3 handshakes over loopback UDP,
// the device (protocol/dtls's ClientHandshake) in the same process:
// HelloVerifyRequest, both flights, the final flight. handshakes/s is the
// pair's rate on this machine (the device does as much public-key work as
// the server); server-handshakes/cpu-s divides by the time the server spent
// in its handshake slots alone (ECDSA sign and verify, ECDH), to set beside
// `openssl speed ecdsap256 ecdhp256`.
func BenchmarkUDPHandshake(b *testing.B) {
	cfg := udpTestConfig()
	cfg.HandshakeRate = -1
	cfg.HelloTimeout = 200 * time.Millisecond
	w := newUDPWorld(b, cfg)
	id, key := deviceID(1), testUDPKey(b, "device_a")
	w.provisionECC(id, key, "")
	serverPub := &testUDPKey(b, "server").PublicKey
	n0 := w.g.stats.udpHandshakeNanos.Load()
	b.ReportAllocs()
	for b.Loop() {
		d := newUDPDevice(b, id, key, w.addr)
		if err := d.handshake(serverPub, nil); err != nil {
			b.Fatal(err)
		}
		d.pc.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	if ns := w.g.stats.udpHandshakeNanos.Load() - n0; ns > 0 {
		b.ReportMetric(float64(b.N)/(float64(ns)/1e9), "server-handshakes/cpu-s")
	}
}

// BenchmarkUDPResume measures resumptions: the device's session is ended
// on the server (saved, as after an idle timeout), then the device sends a
// ping on it with no handshake and waits for the ACK. Each resumption reads
// the saved session, checks the device, stores a new sequence-number
// reservation and records the device online.
func BenchmarkUDPResume(b *testing.B) {
	w := newUDPWorld(b, udpTestConfig())
	id, key := deviceID(1), testUDPKey(b, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	d.wmu.Lock() // sendPlain reads it
	d.mark253 = true
	d.wmu.Unlock()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := w.g.lookup(id.String())
		if s == nil {
			b.Fatal("not online")
		}
		s.close(reasonIdle)
		<-s.done
		b.StartTimer()
		pid := d.nextID()
		d.send(protocol.NewPing(pid))
		d.expect("ping ACK", ackOf(pid))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resumptions/s")
}

// BenchmarkUDPFunctionCall measures a function call's round trip over a
// Gen 3 session on loopback: CON POST f/led, empty ACK, CON 2.04 and its
// ACK; p50 and p99 are reported beside the mean.
func BenchmarkUDPFunctionCall(b *testing.B) {
	w := newUDPWorld(b, udpTestConfig())
	id, key := deviceID(1), testUDPKey(b, "device_a")
	w.provisionECC(id, key, "")
	w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.lossy = true
		d.functions["led"] = func(string) int32 { return 1 }
		d.appJSON = `{"f":["led"],"v":{}}`
	})
	waitFor(b, "describe", func() bool { return len(w.device(id).Functions) == 1 })
	ctx := context.Background()
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if v, err := w.g.CallFunction(ctx, id.String(), "led", "on"); err != nil || v != 1 {
			b.Fatal(v, err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestScaleUDP measures the memory of idle Gen 3 sessions (opt-in):
//
//	WICK_GATEWAY_SCALE_UDP=10000 go test -run TestScaleUDP -v -timeout 60m ./internal/gateway/
//
// N devices each bring a session online, post both describes (as Device OS
// 3.x does) and then drop their socket and state, so that the process holds
// only the server sessions. Heap and stacks in use are compared before and
// after, once every session has parked. Options:
//
//   - WICK_GATEWAY_SCALE_UDP_PARK=-1 keeps sessions running (each with its
//     goroutine: the figure before parking existed); default 200ms.
//   - WICK_GATEWAY_SCALE_UDP_SETUP=handshake makes each device do a full
//     handshake and Hello (≈ 80/s on a loaded 2-core machine); the default,
//     resume, stores a saved session per device (made from random key
//     material, sealed as the gateway seals its own) and has the device
//     resume it with no handshake: the gateway restores it from the store
//     as after a restart (≈ 10 times faster, for 100,000 sessions).
//   - WICK_GATEWAY_SCALE_HEAPPROFILE=file writes a heap profile.
func TestScaleUDP(t *testing.T) {
	n := scaleN(t, "WICK_GATEWAY_SCALE_UDP")
	if os.Getenv("WICK_GATEWAY_SCALE_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact profile
	}
	cfg := udpTestConfig()
	cfg.HandshakeRate = -1
	cfg.UDPIdleTimeout = time.Hour
	cfg.UDPCellularIdleTimeout = time.Hour
	cfg.HandshakeTimeout = time.Minute
	cfg.DescribeWait = time.Hour
	cfg.UDPParkAfter = 200 * time.Millisecond
	if v := os.Getenv("WICK_GATEWAY_SCALE_UDP_PARK"); v != "" {
		d, err := time.ParseDuration(v)
		if v == "-1" {
			d, err = -1, nil
		}
		if err != nil {
			t.Fatalf("WICK_GATEWAY_SCALE_UDP_PARK=%q: %v", v, err)
		}
		cfg.UDPParkAfter = d
	}
	handshake := os.Getenv("WICK_GATEWAY_SCALE_UDP_SETUP") == "handshake"
	w := newUDPWorld(t, cfg)
	t0 := time.Now()
	keys := w.provisionScaleKeys(t, n, "")
	t.Logf("provisioned %d devices in %s", n, time.Since(t0).Round(time.Millisecond))
	heap0, stack0 := inUse()
	rss0 := rss()
	g0 := runtime.NumGoroutine()
	serverPub := &testUDPKey(t, "server").PublicKey
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) * 4 {
		wg.Go(func() {
			for i := range work {
				id := scaleID(i)
				d := udpDeviceOn(t, id, keys[i], w.addr) // no cleanup per device: the measured heap holds no test bookkeeping
				if handshake {
					if err := d.handshake(serverPub, nil); err != nil {
						t.Errorf("device %d: %v", i, err)
						d.pc.Close()
						continue
					}
					d.start()
					h := gen3Hello(id)
					h.Flags = protocol.HelloDeviceDescribe
					d.hello(h)
				} else {
					w.resumeScaleDevice(t, d, i, keys[i])
				}
				postScaleDescribe(t, d, i)
				d.pc.Close()
				keys[i] = nil
			}
		})
	}
	for i := range n {
		work <- i
		if (i+1)%10000 == 0 {
			t.Logf("%d sessions set up in %s", i+1, time.Since(start).Round(time.Second))
		}
	}
	close(work)
	wg.Wait()
	keys = nil
	setup := time.Since(start)
	online := time.Now().Add(2 * time.Minute)
	for w.g.Stats().Online != int64(n) && time.Now().Before(online) {
		time.Sleep(100 * time.Millisecond)
	}
	if cfg.UDPParkAfter > 0 {
		deadline := time.Now().Add(5 * time.Minute)
		for w.g.Stats().UDPParked != int64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d sessions parked", w.g.Stats().UDPParked, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	} else {
		time.Sleep(2 * time.Second) // describes stored, timers settled
	}
	heap1, stack1 := inUse()
	rss1 := rss()
	if p := os.Getenv("WICK_GATEWAY_SCALE_HEAPPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	heap, stack := float64(heap1-heap0)/float64(n), float64(stack1-stack0)/float64(n)
	st := w.g.Stats()
	mode := "resumed"
	if handshake {
		mode = "handshaken"
	}
	t.Logf("%d Gen 3 sessions (%s, park after %s) set up in %s (%.0f/s); parked %d; per idle session: heap %.0f B, stacks %.0f B, total %.0f B; process RSS %.0f B; goroutines %.3f",
		n, mode, cfg.UDPParkAfter, setup.Round(time.Millisecond), float64(n)/setup.Seconds(), st.UDPParked,
		heap, stack, heap+stack, (float64(rss1)-float64(rss0))/float64(n),
		float64(runtime.NumGoroutine()-g0)/float64(n))
	fmt.Printf("udp-idle-session-bytes %d heap %.0f stack %.0f\n", n, heap, stack)

	if st.Online != int64(n) {
		t.Fatalf("online %d of %d", st.Online, n)
	}
}

// exchange sends a CON and waits for its ACK, sending it again (the
// gateway answers a repeat from its cache) up to 5 times 10 s apart, for a
// machine loaded by a scale run; it reports whether the ACK came.
func (d *udpDevice) exchange(m protocol.Message) bool {
	for range 5 {
		d.send(m)
		timeout := time.After(10 * time.Second)
		for waiting := true; waiting; {
			select {
			case got := <-d.in:
				if ackOf(m.ID)(got) {
					return true
				}
			case <-timeout:
				waiting = false
			}
		}
	}
	return false
}

// savedSession stores a saved Gen 3 session of device id, made from random
// key material instead of a handshake, and returns the device's side of it.
func (w *udpWorld) savedSession(id protocol.DeviceID, key *ecdsa.PrivateKey) *dtls.Session {
	w.t.Helper()
	master, cr, sr := randomBytes(dtls.MasterSecretLen), randomBytes(dtls.RandomLen), randomBytes(dtls.RandomLen)
	kb, err := dtls.KeyBlock(master, cr, sr)
	if err != nil {
		w.t.Fatal(err)
	}
	var cid cidKey
	copy(cid[:], randomBytes(dtls.CIDLen))
	cipher := func(k [dtls.KeyLen]byte, iv [dtls.ImplicitIVLen]byte) *dtls.Cipher {
		c, err := dtls.NewCipher(k[:], iv[:])
		if err != nil {
			w.t.Fatal(err)
		}
		return c
	}
	srv := &dtls.Session{ServerCID: cid[:], DeviceKey: &key.PublicKey, MasterSecret: master,
		Read: cipher(kb.ClientKey, kb.ClientIV), Write: cipher(kb.ServerKey, kb.ServerIV), ReadEpoch: 1, WriteEpoch: 1}
	dev := &dtls.Session{ClientCID: cid[:], DeviceKey: &key.PublicKey, MasterSecret: master,
		Read: cipher(kb.ServerKey, kb.ServerIV), Write: cipher(kb.ClientKey, kb.ClientIV), ReadEpoch: 1, WriteEpoch: 1}
	b, err := srv.MarshalBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	h := gen3Hello(id)
	h.Flags = protocol.HelloDeviceDescribe
	sealed, err := w.g.udp.sealState(cid, &h, b)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.g.udp.saved.SaveDTLSSession(context.Background(), store.DTLSSession{CID: cid[:], DeviceID: id.String(),
		State: sealed, Addr: "127.0.0.1:1"}); err != nil {
		w.t.Fatal(err)
	}
	return dev
}

// inUse returns the heap and stack bytes in use after full collections
// (several: each may halve a goroutine stack that is mostly unused, as the
// collections of a long-running process do).
func inUse() (heap, stack uint64) {
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// BenchmarkUDPUnpack measures what a parked session pays on waking up:
// rebuilding its record keys (two AES-CCM states and the device key) from
// their compact form.
func BenchmarkUDPUnpack(b *testing.B) {
	w := newUDPWorld(b, udpTestConfig())
	id, key := deviceID(1), testUDPKey(b, "device_a")
	w.provisionECC(id, key, "")
	w.savedSession(id, key)
	st, err := w.g.udp.saved.(store.DeviceDTLSSessions).LatestDTLSSession(context.Background(), id.String())
	if err != nil {
		b.Fatal(err)
	}
	var k cidKey
	copy(k[:], st.CID)
	_, sess, err := w.g.udp.openState(k, st.State)
	if err != nil {
		b.Fatal(err)
	}
	c := &udpConn{sess: sess}
	c.packLocked()
	packed := c.packed
	b.ReportMetric(float64(len(packed)), "packed-bytes")
	b.ReportAllocs()
	for b.Loop() {
		c.sess.Read, c.sess.Write, c.packed = nil, nil, packed
		if _, err := c.sessLocked(); err != nil {
			b.Fatal(err)
		}
	}
}

// provisionScaleKeys provisions devices scaleID(0..n-1) with fresh P-256
// keys, owned by owner ("" for none), and returns the keys.
func (w *udpWorld) provisionScaleKeys(t *testing.T, n int, owner string) []*ecdsa.PrivateKey {
	t.Helper()
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range n {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		w.provisionECC(scaleID(i), k, owner)
	}
	return keys
}

// resumeScaleDevice starts scale device i on a session saved for it (a
// resumption: records marked 253, no handshake) and exchanges one ping.
func (w *udpWorld) resumeScaleDevice(t *testing.T, d *udpDevice, i int, key *ecdsa.PrivateKey) {
	d.sess = w.savedSession(d.id, key)
	d.mark253 = true
	d.start()
	if !d.exchange(protocol.NewPing(d.nextID())) {
		t.Errorf("device %d: no ping ACK", i)
	}
}

// postScaleDescribe sends scale device i's describe in its two parts
// (system, then application), each acknowledged.
func postScaleDescribe(t *testing.T, d *udpDevice, i int) {
	for k, body := range []string{`{"p":12,"m":[]}`, `{"f":["led"],"v":{"temp":2}}`} {
		m, _ := protocol.NewDescribePost(d.nextID(), byte(k+1),
			protocol.DescribeBody{Flags: protocol.DescribeFlags(1 << k), Payload: []byte(body)})
		if !d.exchange(m) {
			t.Errorf("device %d: no describe ACK", i)
		}
	}
}
