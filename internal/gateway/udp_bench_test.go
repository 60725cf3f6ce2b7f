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

	"github.com/wick-cloud/wick/protocol"
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
	d.mark253 = true
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
//	WICK_GATEWAY_SCALE_UDP=10000 go test -run TestScaleUDP -v -timeout 30m ./internal/gateway/
//
// N devices each make a full handshake and say Hello; each device then
// drops its socket and state, so that the process holds only the server
// sessions (goroutine, session, DTLS keys, reliability state, table
// entries). Heap and stacks in use are compared before and after.
func TestScaleUDP(t *testing.T) {
	n := scaleN(t, "WICK_GATEWAY_SCALE_UDP")
	if os.Getenv("WICK_GATEWAY_SCALE_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact profile
	}
	cfg := udpTestConfig()
	cfg.HandshakeRate = -1
	cfg.UDPIdleTimeout = time.Hour
	cfg.HandshakeTimeout = time.Minute
	w := newUDPWorld(t, cfg)
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range n {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		w.provisionECC(scaleID(i), k, "")
	}
	heap0, stack0 := inUse()
	g0 := runtime.NumGoroutine()
	serverPub := &testUDPKey(t, "server").PublicKey
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) * 4 {
		wg.Go(func() {
			for i := range work {
				d := newUDPDevice(t, scaleID(i), keys[i], w.addr)
				if err := d.handshake(serverPub, nil); err != nil {
					t.Errorf("device %d: %v", i, err)
					d.pc.Close()
					continue
				}
				d.start()
				// Device-initiated describes (Hello flag 0x20, as Device
				// OS 3.x sends): the server asks nothing of the device
				// for DescribeWait, so the session is idle at once.
				h := gen3Hello(scaleID(i))
				h.Flags = protocol.HelloDeviceDescribe
				d.hello(h)
				d.pc.Close()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	keys = nil
	setup := time.Since(start)
	waitFor(t, "all online", func() bool { return w.g.Stats().Online == int64(n) })
	heap1, stack1 := inUse()
	if p := os.Getenv("WICK_GATEWAY_SCALE_HEAPPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	heap, stack := float64(heap1-heap0)/float64(n), float64(stack1-stack0)/float64(n)
	t.Logf("%d Gen 3 sessions in %s (%.0f handshakes+hellos/s); per idle session: heap %.0f B, stacks %.0f B, total %.0f B, goroutines %.2f",
		n, setup.Round(time.Millisecond), float64(n)/setup.Seconds(), heap, stack, heap+stack,
		float64(runtime.NumGoroutine()-g0)/float64(n))
	fmt.Printf("udp-idle-session-bytes %d heap %.0f stack %.0f\n", n, heap, stack)
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
