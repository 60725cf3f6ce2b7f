package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// The tests below run sdk/device's OTA (the simulator's) against the
// gateway over loopback TCP.

// otaSimDevice runs an sdk/device device with the given OTA options against
// the gateway's listener and waits until it is online.
func otaSimDevice(t testing.TB, w *world, ln net.Listener, n byte, ota device.OTAOptions) *device.Device {
	t.Helper()
	id := deviceID(n)
	key := testKey(t, "device_a")
	w.provision(id, key, owner1)
	d := runSDKDevice(t, device.Config{
		ID: id.String(), PrivateKey: key, ServerAddr: ln.Addr().String(),
		ServerKey: &testKey(t, "server").PublicKey, PlatformID: device.PlatformPhoton,
		ProductVersion: 3, OTA: ota, Backoff: simBackoff,
	}, nil)
	waitFor(t, "sim device online", func() bool { return w.g.Online(id.String()) })
	return d
}

// simBackoff makes an sdk/device device reconnect at once after a reboot.
var simBackoff = device.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}

// runSDKDevice creates an sdk/device device, lets setup (if set) register
// its application, and runs it until the test ends.
func runSDKDevice(t testing.TB, cfg device.Config, setup func(d *device.Device) error) *device.Device {
	t.Helper()
	d, err := device.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		if err := setup(d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// otaUDPWorld is otaWorld serving Gen 3 devices over UDP; mod, if set,
// changes the configuration first.
func otaUDPWorld(t testing.TB, mod func(cfg *Config)) (*udpWorld, *memFirmware) {
	t.Helper()
	cfg := udpTestConfig()
	cfg.OTA = otaTestConfig().OTA
	// Over DTLS/UDP under -race on a loaded machine a chunk's answer, or
	// the device's return after it took the binary, can take longer than
	// otaTestConfig's 1 s and 2 s (TestFlashSimDeviceV3/udp failed its
	// update 8 times in 10 at load 35); no UDP test here is about them.
	cfg.OTA.StallTimeout, cfg.OTA.RebootTimeout = 30*time.Second, time.Minute
	if mod != nil {
		mod(&cfg)
	}
	w := newUDPWorld(t, cfg)
	fw := &memFirmware{}
	w.g.ota.source = fw
	return w, fw
}

// udpSimDevice provisions device n and runs an sdk/device Gen 3 device for
// it with the OTA options (resuming its session, as firmware does), and
// waits until it is online.
func udpSimDevice(t testing.TB, w *udpWorld, n byte, version uint16, ota device.OTAOptions) *device.Device {
	t.Helper()
	id := deviceID(n)
	key := testUDPKey(t, "device_a")
	w.provisionECC(id, key, owner1)
	d := runSDKDevice(t, device.Config{
		ID: id.String(), Transport: protocol.TransportUDP, ECPrivateKey: key,
		ECServerKey: &testUDPKey(t, "server").PublicKey, ServerAddr: w.addr.String(),
		PlatformID: 12, ProductVersion: version, UDP: device.UDPOptions{Resume: true}, OTA: ota,
		Backoff: simBackoff,
	}, nil)
	waitFor(t, "UDP device online", func() bool { return w.g.Online(id.String()) })
	return d
}

// expectTaken waits up to wait for the binary a device took, which must be
// want.
func expectTaken(t testing.TB, took <-chan []byte, want []byte, wait time.Duration) {
	t.Helper()
	select {
	case got := <-took:
		if !bytes.Equal(got, want) {
			t.Fatal("device took another binary")
		}
	case <-time.After(wait):
		t.Fatal("device did not take the binary")
	}
}

func listen(t testing.TB, w *world) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go w.g.Serve(ln)
	return ln
}

// versionAt reads a product version the test binaries carry in their
// last two bytes.
func versionAt(bin []byte) (uint16, bool) {
	if len(bin) < 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(bin[len(bin)-2:]), true
}

func TestFlashSimDevice(t *testing.T) {
	for _, c := range []struct {
		name string
		ota  device.OTAOptions
	}{
		{"fast", device.OTAOptions{}},
		{"fast, every 7th chunk lost", device.OTAOptions{LoseEvery: 7}},
		{"no fast OTA, every 5th chunk bad", device.OTAOptions{NoFast: true, LoseEvery: 5}},
		{"slow device", device.OTAOptions{ChunkDelay: time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, fw := otaWorld(t, otaTestConfig())
			ln := listen(t, w)
			var mu sync.Mutex
			var took [][]byte
			c.ota.VersionOf = versionAt
			c.ota.OnUpdate = func(b []byte) {
				mu.Lock()
				took = append(took, append([]byte(nil), b...))
				mu.Unlock()
			}
			d := otaSimDevice(t, w, ln, 20, c.ota)
			sub := w.subscribe(bus.Filter{DeviceID: d.ID(), NamePrefix: EventFlashStatus})
			bin := append(testBinary(60*1024+5), 0, 7) // product version 7
			if err := w.g.Flash(context.Background(), d.ID(), fw.put(bin)); err != nil {
				t.Fatalf("Flash: %v", err)
			}
			if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
				t.Fatalf("statuses %q, %q", a, b)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(took) != 1 || !bytes.Equal(took[0], bin) {
				t.Fatalf("device took %d binaries; want the one flashed", len(took))
			}
			if d.ProductVersion() != 7 || d.OTAUpdates() != 1 {
				t.Fatalf("after the update: version %d, updates %d", d.ProductVersion(), d.OTAUpdates())
			}
			waitFor(t, "store shows the new version", func() bool {
				dev := w.device(deviceID(20))
				return dev.Online && dev.ProductVersion == 7
			})
		})
	}
}

func TestFlashSimDeviceRefusesAndDrops(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	ln := listen(t, w)
	refusing := otaSimDevice(t, w, ln, 21, device.OTAOptions{Mode: device.OTARefuse})
	h := fw.put(testBinary(10 * 1024))
	if err := w.g.Flash(context.Background(), refusing.ID(), h); !errors.Is(err, ErrUpdateRefused) {
		t.Fatalf("Flash of a refusing device = %v", err)
	}
	dropping := otaSimDevice(t, w, ln, 22, device.OTAOptions{Mode: device.OTADrop, DropAfter: 5})
	sub := w.subscribe(bus.Filter{DeviceID: dropping.ID(), NamePrefix: EventFlashStatus})
	if err := w.g.Flash(context.Background(), dropping.ID(), h); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("statuses %q, %q", a, b)
	}
	// It reconnects by itself; a new flash starts over and drops again.
	waitFor(t, "device back", func() bool { return w.g.Online(dropping.ID()) && !w.g.Updating(dropping.ID()) })
	if dropping.OTAUpdates() != 0 {
		t.Fatal("a dropped transfer counted as taken")
	}
}

// BenchmarkFlash256K measures one device's transfer of a 256 KB binary
// over loopback TCP with sdk/device, from Flash to the device's acceptance
// of UpdateDone (the reboot and reconnect are outside the timing), with
// and without fast OTA, and with OTA v3, 512-byte chunks. It reports the round trip of a
// ping (rtt-µs) and what the chunk protocol allows at that round trip:
// without fast OTA every chunk waits for its answer, so 512 round trips
// (limit-ms); fast OTA needs two round trips plus the time to stream the
// bytes.
func BenchmarkFlash256K(b *testing.B) {
	for _, c := range []struct {
		name   string
		noFast bool
		v3     bool
	}{{"fast", false, false}, {"nofast", true, false}, {"v3", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := otaTestConfig()
			cfg.OTA.RebootTimeout = time.Minute
			cfg.IdleTimeout = time.Minute
			w, fw := otaWorld(b, cfg)
			ln := listen(b, w)
			took := make(chan struct{}, 1)
			d := otaSimDevice(b, w, ln, 30, device.OTAOptions{NoFast: c.noFast, V3: c.v3, MaxBinarySize: 1 << 20,
				OnUpdate: func([]byte) { took <- struct{}{} }})
			bin := testBinary(256 * 1024)
			h := fw.put(bin)
			ctx := context.Background()
			// The round trip of one request, as the slow protocol pays it per chunk.
			var rtt time.Duration
			const pings = 200
			for range pings {
				start := time.Now()
				if err := w.g.Ping(ctx, d.ID()); err != nil {
					b.Fatal(err)
				}
				rtt += time.Since(start)
			}
			rtt /= pings
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := w.g.Flash(ctx, d.ID(), h); err != nil {
					b.Fatal(err)
				}
				select {
				case <-took:
				case <-time.After(time.Minute):
					b.Fatal("device did not take the binary")
				}
				b.StopTimer()
				deadline := time.Now().Add(30 * time.Second)
				for w.g.Updating(d.ID()) || !w.g.Online(d.ID()) {
					if time.Now().After(deadline) {
						b.Fatal("device did not come back")
					}
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
			}
			chunks := float64(len(bin) / 512)
			b.ReportMetric(float64(rtt.Microseconds()), "rtt-µs")
			b.ReportMetric(chunks*float64(rtt.Microseconds())/1000, "limit-ms")
		})
	}
}

// TestFlashSimDeviceUDP: OTA v1 to an sdk/device Gen 3 device over DTLS
// (as Device OS before OTA v3 takes it): fast-OTA chunks go NON, lost ones
// come back as missed, and the device, rebooting with a full handshake,
// reports the update in its Hello. Resumption stays on for the device.
func TestFlashSimDeviceUDP(t *testing.T) {
	w, fw := otaUDPWorld(t, nil)
	took := make(chan []byte, 1)
	d := udpSimDevice(t, w, 40, 1, device.OTAOptions{LoseEvery: 9, VersionOf: versionAt, OnUpdate: func(b []byte) { took <- b }})
	sub := w.subscribe(bus.Filter{DeviceID: d.ID(), NamePrefix: EventFlashStatus})
	bin := append(testBinary(40*1024+3), 0, 5)
	if err := w.g.Flash(context.Background(), d.ID(), fw.put(bin)); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	expectTaken(t, took, bin, waitTime)
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
		t.Fatalf("statuses %q, %q", a, b)
	}
	if d.ProductVersion() != 5 {
		t.Fatalf("version after the update %d", d.ProductVersion())
	}
}

// TestFlashSimDeviceV3: OTA v3 to an sdk/device device announcing it (Hello
// flag 0x80), over TCP with lost chunks and over DTLS/UDP.
func TestFlashSimDeviceV3(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		w, fw := otaWorld(t, otaTestConfig())
		ln := listen(t, w)
		took := make(chan []byte, 1)
		d := otaSimDevice(t, w, ln, 50, device.OTAOptions{V3: true, LoseEvery: 7, VersionOf: versionAt,
			OnUpdate: func(b []byte) { took <- append([]byte(nil), b...) }})
		sub := w.subscribe(bus.Filter{DeviceID: d.ID(), NamePrefix: EventFlashStatus})
		bin := append(testBinary(70*1024+9), 0, 8)
		if err := w.g.Flash(context.Background(), d.ID(), fw.put(bin)); err != nil {
			t.Fatalf("Flash: %v", err)
		}
		if got := <-took; !bytes.Equal(got, bin) {
			t.Fatal("device took another binary")
		}
		if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
			t.Fatalf("statuses %q, %q", a, b)
		}
		if d.ProductVersion() != 8 {
			t.Fatalf("version %d", d.ProductVersion())
		}
	})
	t.Run("resumes", func(t *testing.T) {
		// The device drops the connection after 30 chunks of every
		// attempt: only resumption gets 100 chunks through, in four.
		w, fw := otaWorld(t, otaTestConfig())
		ln := listen(t, w)
		d := otaSimDevice(t, w, ln, 51, device.OTAOptions{V3: true, Mode: device.OTADrop, DropAfter: 30})
		sub := w.subscribe(bus.Filter{DeviceID: d.ID(), NamePrefix: EventFlashStatus})
		h := fw.put(testBinary(100 * 512))
		lastSession := ""
		for attempt := 1; ; attempt++ {
			// The dropped session may still be closing: wait for the
			// device's next one.
			waitFor(t, "device back", func() bool {
				dev := w.device(deviceID(51))
				return dev.Online && dev.SessionID != lastSession && w.g.Online(d.ID()) && !w.g.Updating(d.ID())
			})
			lastSession = w.device(deviceID(51)).SessionID
			if err := w.g.Flash(context.Background(), d.ID(), h); err != nil {
				t.Fatalf("attempt %d: Flash: %v", attempt, err)
			}
			a, b := flashStatus(t, sub), flashStatus(t, sub)
			if a != FlashStarted {
				t.Fatalf("attempt %d: %q", attempt, a)
			}
			if b == FlashSuccess {
				if attempt != 4 {
					t.Fatalf("took %d attempts, want 4", attempt)
				}
				break
			}
			if attempt == 4 {
				t.Fatalf("attempt 4: %q", b)
			}
		}
		if d.OTAUpdates() != 1 {
			t.Fatalf("%d updates taken", d.OTAUpdates())
		}
	})
	t.Run("udp", func(t *testing.T) {
		w, fw := otaUDPWorld(t, nil)
		took := make(chan []byte, 1)
		d := udpSimDevice(t, w, 52, 0, device.OTAOptions{V3: true, LoseEvery: 11, MaxBinarySize: 1 << 20, OnUpdate: func(b []byte) { took <- b }})
		sub := w.subscribe(bus.Filter{DeviceID: d.ID(), NamePrefix: EventFlashStatus})
		bin := testBinary(200*1024 + 1)
		if err := w.g.Flash(context.Background(), d.ID(), fw.put(bin)); err != nil {
			t.Fatalf("Flash: %v", err)
		}
		expectTaken(t, took, bin, 2*waitTime)
		if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
			t.Fatalf("statuses %q, %q", a, b)
		}
	})
}
