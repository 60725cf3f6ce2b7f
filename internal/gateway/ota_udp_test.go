package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/sdk/device"
)

// TestFlashUDPParking runs updates over DTLS/UDP with session parking at
// its most eager (a session parks after 20 ms of silence) and a device that
// is slow to flash each chunk, so that it is silent for longer than that
// between its messages: a session must not park while its update runs (the
// transfer's goroutine sends on it and waits for its end), and the update
// succeeds. Fast OTA (the device silent until UpdateDone, lost chunks
// listed as missed), OTA v1 without fast OTA (every chunk answered late),
// and OTA v3 (late acknowledgements).
func TestFlashUDPParking(t *testing.T) {
	for _, c := range []struct {
		name string
		ota  device.OTAOptions
	}{
		{"v1 fast", device.OTAOptions{LoseEvery: 5, ChunkDelay: 5 * time.Millisecond}},
		{"v1 slow", device.OTAOptions{NoFast: true, ChunkDelay: 30 * time.Millisecond}},
		{"v3", device.OTAOptions{V3: true, ChunkDelay: 30 * time.Millisecond, MaxBinarySize: 1 << 20}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, fw := otaUDPWorld(t, func(cfg *Config) {
				cfg.OTA.StallTimeout = 10 * time.Second
				cfg.OTA.RebootTimeout = time.Minute
				cfg.UDPParkAfter = 20 * time.Millisecond
			})
			took := make(chan []byte, 1)
			ota := c.ota
			ota.VersionOf = versionAt
			ota.OnUpdate = func(b []byte) { took <- append([]byte(nil), b...) }
			d := udpSimDevice(t, w, 60, 1, ota)
			id := deviceID(60)
			// Quiet for a while first: the idle session parks, and the
			// update has to wake it.
			waitFor(t, "session parked", func() bool { return w.g.Stats().UDPParks > 0 })
			sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
			bin := append(testBinary(24*512+5), 0, 7)
			if err := w.g.Flash(context.Background(), id.String(), fw.put(bin)); err != nil {
				t.Fatalf("Flash: %v", err)
			}
			parks := w.g.Stats().UDPParks // the update runs from here
			expectTaken(t, took, bin, 2*waitTime)
			if n := w.g.Stats().UDPParks - parks; n != 0 {
				t.Errorf("the session parked %d times during its update", n)
			}
			if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
				t.Fatalf("statuses %q, %q", a, b)
			}
			if d.ProductVersion() != 7 {
				t.Fatalf("version after the update %d", d.ProductVersion())
			}
		})
	}
}
