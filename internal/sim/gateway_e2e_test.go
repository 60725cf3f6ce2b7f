package sim

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// TestEndToEndGateway runs the simulator against Wick's real device
// gateway (SQLite store, embedded bus): every device comes online with a
// spark/status event, a function call and variable reads through the
// gateway return the simulated values, and when the simulator stops every
// device goes offline at once (Goodbye) with spark/status offline.
func TestEndToEndGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	const n = 50
	ctx := context.Background()
	b := bustest.New(t, bus.Config{})
	status := bustest.Subscribe(t, b, bus.Filter{NamePrefix: "spark/status"}, 4*n)
	g, dir, addr := startGateway(t, b)

	cfg := Default()
	cfg.Server, cfg.Data, cfg.Count, cfg.Concurrency = addr, dir, n, 20
	cfg.Progress = 0
	cfg.Publish, cfg.Every = "sensorValueEvent", time.Second
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan Summary, 1)
	go func() {
		sum, err := Run(runCtx, cfg, testLog(), nil)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()

	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = DeviceID(cfg.IDPrefix, cfg.IDStart+i)
	}
	onlineEvents := statuses(t, status, "online", n, 60*time.Second)
	for _, id := range ids {
		if !g.Online(id) || !onlineEvents[id] {
			t.Fatalf("device %s: online %v, online event %v", id, g.Online(id), onlineEvents[id])
		}
	}

	// A function call and variable reads through the gateway.
	callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	id := ids[n/2]
	if ret, err := g.CallFunction(callCtx, id, "led", "on"); err != nil || ret != 1 {
		t.Fatalf("led(on) = %d, %v", ret, err)
	}
	if ret, err := g.CallFunction(callCtx, id, "led", "dim"); err != nil || ret != -1 {
		t.Fatalf("led(dim) = %d, %v", ret, err)
	}
	for _, v := range []struct {
		name string
		want any
	}{{"on", true}, {"count", int32(2)}, {"label", "sim-26"}} {
		got, err := g.GetVariable(callCtx, id, v.name)
		if err != nil || got != v.want {
			t.Errorf("%s = %#v, %v; want %#v", v.name, got, err, v.want)
		}
	}
	if temp, err := g.GetVariable(callCtx, id, "temp"); err != nil {
		t.Errorf("temp: %v", err)
	} else if tf, ok := temp.(float64); !ok || tf < 16 || tf > 27 {
		t.Errorf("temp = %#v", temp)
	}
	if v, err := g.GetVariable(callCtx, ids[0], "on"); err != nil || v != false {
		t.Errorf("another device's on = %#v, %v", v, err)
	}

	// Stopping the simulator: every device says Goodbye and goes offline.
	stopped := time.Now()
	stop()
	sum := <-done
	if sum.Connected != n || sum.Failed != 0 || sum.Online != n || sum.Calls != 2 || sum.ConnectErrors != 0 {
		t.Errorf("summary %+v", sum)
	}
	statuses(t, status, "offline", n, 30*time.Second)
	for _, id := range ids {
		if g.Online(id) {
			t.Errorf("device %s still online", id)
		}
	}
	t.Logf("%d devices online in %s (%.0f handshakes/s), offline %s after stopping",
		n, sum.RampTime.Round(time.Millisecond), sum.HandshakesPerSecond(), time.Since(stopped).Round(time.Millisecond))
}

// statuses waits for spark/status data of n devices and returns them. It
// fails when no further device's comes for idle: under -race on a loaded
// machine 50 devices took longer than a minute in all (35 online at load
// 30) while they kept coming.
func statuses(t *testing.T, s *bus.Subscription, data string, n int, idle time.Duration) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for len(seen) < n {
		bustest.Until(t, s, idle, func(e bus.Event) bool {
			if e.Name != "spark/status" || e.Data != data || seen[e.DeviceID] {
				return false
			}
			seen[e.DeviceID] = true
			return true
		})
	}
	return seen
}

// startGateway runs Wick's device gateway on a loopback port with a SQLite
// store in a temporary directory that also holds the server's public key,
// as `wick sim --data` expects it. WICK_TEST_LOG=1 logs the gateway.
func startGateway(t *testing.T, b *bus.Bus) (g *gateway.Gateway, dir, addr string) {
	t.Helper()
	dir = t.TempDir()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err = gateway.New(gateway.Config{Node: "e2e", TrustOnFirstUse: true}, gateway.Deps{Store: st, Bus: b, ServerKey: serverKey(t)}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	pemKey, err := protocol.MarshalPublicKeyPEM(&serverKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return g, dir, ln.Addr().String()
}

// testLog is a debug logger on stderr when WICK_TEST_LOG is set, else nil.
func testLog() *slog.Logger {
	if os.Getenv("WICK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
