package gateway

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// firmwareDevice runs an sdk/device device with quirks q against the
// gateway over loopback TCP (the listener of Serve, as in production) and
// waits until it is online with its describes stored. Its application is
// led() and count, as `wick sim` has.
func firmwareDevice(t testing.TB, w *world, n byte, q device.Quirks) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go w.g.Serve(ln)
	id := deviceID(n)
	key := testKey(t, "device_a")
	w.provision(id, key, owner1)
	runSDKDevice(t, device.Config{
		ID: id.String(), PrivateKey: key, ServerAddr: ln.Addr().String(),
		ServerKey: &testKey(t, "server").PublicKey, PlatformID: device.PlatformPhoton,
		DeviceDescribe: true, Quirks: q,
	}, func(d *device.Device) error {
		if err := d.Function("led", func(_ context.Context, arg string) int32 {
			if arg == "on" {
				return 1
			}
			return 0
		}); err != nil {
			return err
		}
		return d.Variable("count", func() int32 { return 42 })
	})
	waitFor(t, "device online with its describe", func() bool {
		return w.g.Online(id.String()) && len(w.device(id).Variables) == 1
	})
	return id.String()
}

// TestFirmwareQuirksTCP: a device with every firmware quirk on (its own
// reply IDs, split writes, Nagle, describe without flags) answers signal,
// ping, function calls and variable reads through the gateway over real
// TCP. The speed of these calls is BenchmarkCallFirmwareQuirks's job.
func TestFirmwareQuirksTCP(t *testing.T) {
	w := newWorld(t, testConfig())
	id := firmwareDevice(t, w, 40, device.AllQuirks())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"signal on", func() error { return w.g.Signal(ctx, id, true) }},
		{"signal off", func() error { return w.g.Signal(ctx, id, false) }},
		{"ping", func() error { return w.g.Ping(ctx, id) }},
		{"function", func() error {
			v, err := w.g.CallFunction(ctx, id, "led", "on")
			if err == nil && v != 1 {
				t.Errorf("led(on) = %d", v)
			}
			return err
		}},
		{"variable", func() error {
			v, err := w.g.GetVariable(ctx, id, "count")
			if err == nil && v != int32(42) {
				t.Errorf("count = %v", v)
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 {
				if err := tc.do(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// The describe the gateway fetches itself still works (flags given).
	s := w.g.lookup(id)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.fetchDescribe(dctx, protocol.DescribeApplication); err != nil {
		t.Errorf("describe: %v", err)
	}
}

// BenchmarkCallFirmwareQuirks measures a function call's round trip
// through the gateway to a device that writes like Device OS (empty ACK
// and result in two small writes, Nagle on, its own reply IDs) over
// loopback TCP, with the gateway's quick acknowledgements on and off. The
// p50-ms metric is the median round trip: without TCP_QUICKACK the
// result waits for Linux's delayed ACK (about 40 ms); with it, well under
// 2 ms (docs/device-protocol.md, "Quick acknowledgements").
func BenchmarkCallFirmwareQuirks(b *testing.B) {
	for _, bc := range []struct {
		name     string
		disable  bool
		variable bool
	}{
		{"function/quickack", false, false},
		{"function/no-quickack", true, false},
		{"variable/quickack", false, true},
		{"variable/no-quickack", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.DisableQuickACK = bc.disable
			w := newWorld(b, cfg)
			id := firmwareDevice(b, w, 41, device.AllQuirks())
			ctx := context.Background()
			lat := make([]time.Duration, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				var err error
				if bc.variable {
					_, err = w.g.GetVariable(ctx, id, "count")
				} else {
					_, err = w.g.CallFunction(ctx, id, "led", "on")
				}
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		})
	}
}
