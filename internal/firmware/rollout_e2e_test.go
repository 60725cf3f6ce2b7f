package firmware

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/module"
)

// TestRolloutEndToEnd releases product firmware to simulated devices
// (internal/sim, speaking the device protocol) connected to a real
// gateway: the devices come online running version 1, the service queues
// them, the gateway transfers version 2 at the configured rate, the
// devices reboot into it and report it, and every outcome is recorded.
// WICK_ROLLOUT_DEVICES sets the fleet size (default 200, 50 under the race
// detector), WICK_OTA_RATE the starts per minute (default 6000).
func TestRolloutEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end rollout skipped in -short mode")
	}
	def := 200
	if raceEnabled {
		def = 50
	}
	n := envInt(t, "WICK_ROLLOUT_DEVICES", def)
	rate := envInt(t, "WICK_OTA_RATE", 6000)
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("WICK_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bustest.New(t, bus.Config{})
	key, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Node: "e2e", TrustOnFirstUse: true}, gateway.Deps{Store: st, Bus: b, ServerKey: key}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	pemKey, err := protocol.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pemKey, 0o644); err != nil {
		t.Fatal(err)
	}

	// A product of Photons whose devices are known by ID, and version 2
	// released (a 32 KB user part).
	owner := &store.User{Username: "owner@example.com", PasswordHash: "x"}
	if err := st.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	p := &store.Product{Slug: "fleet", Name: "fleet", PlatformID: 6, OwnerID: owner.ID}
	if err := st.CreateProduct(ctx, p, owner.Username); err != nil {
		t.Fatal(err)
	}
	cfg := sim.Default()
	cfg.Server, cfg.Data, cfg.Count, cfg.Progress = ln.Addr().String(), dir, n, 0
	cfg.IDPrefix = "ab"
	cfg.ProductVersion = 1
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = sim.DeviceID(cfg.IDPrefix, cfg.IDStart+i)
		if _, err := st.ProvisionDevice(ctx, ids[i], "", nil, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	bin := module.Build(module.Spec{PlatformID: 6, Function: module.FunctionUser, Index: 1, StartAddress: 0x80A0000,
		Product: true, ProductID: uint16(p.ID), ProductVersion: 2, Code: make([]byte, 32<<10)})
	hash, err := st.PutFirmwareBinary(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProductFirmware(ctx, &store.ProductFirmware{ProductID: p.ID, Version: 2, Hash: hash,
		Size: len(bin), PlatformID: 6, Title: "two"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReleaseProductFirmware(ctx, p.ID, 2, owner.Username, time.Time{}); err != nil {
		t.Fatal(err)
	}

	// A loaded machine fails some transfers (stalls): they are retried
	// after a short backoff here.
	svc := New(Config{Rate: rate, Node: "e2e", RetryBackoff: 2 * time.Second, MaxAttempts: 5}, st, g, log)
	// The slot of every automatic start (the rate's schedule).
	var slotMu sync.Mutex
	var slots []time.Time
	svc.started = func(_ string, slot time.Time) {
		slotMu.Lock()
		slots = append(slots, slot)
		slotMu.Unlock()
	}
	runCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- svc.Run(runCtx, b) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	// The spark/flash/status events the gateway publishes, by device. A
	// device whose update succeeded at its only attempt must have its
	// last one "success ", and no "failed " sooner than half the reboot
	// wait after "started " (the misreport fixed in gateway/ota.go: an
	// unanswered UpdateDone read as a failure). A "failed " at the reboot
	// wait followed by a late "success " is a device that reconnected
	// slowly, counted and logged.
	statuses, err := b.Subscribe(bus.Filter{NamePrefix: gateway.EventFlashStatus}, 4*n+64)
	if err != nil {
		t.Fatal(err)
	}
	defer statuses.Close()
	startedAt := map[string]time.Time{}
	lastStatus := map[string]string{}
	earlyFailed, lateFailed := map[string]int{}, map[string]int{}
	countFailed := func() {
		for {
			select {
			case e := <-statuses.Events():
				now := time.Now()
				lastStatus[e.DeviceID] = e.Data
				switch e.Data {
				case gateway.FlashStarted:
					startedAt[e.DeviceID] = now
				case gateway.FlashFailed:
					if now.Sub(startedAt[e.DeviceID]) < gateway.DefaultOTARebootTimeout/2 {
						earlyFailed[e.DeviceID]++
					} else {
						lateFailed[e.DeviceID]++
					}
				}
			default:
				return
			}
		}
	}

	// Let Run subscribe before the first device comes online.
	time.Sleep(100 * time.Millisecond)

	begin := time.Now()
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan sim.Summary, 1)
	go func() {
		sum, err := sim.Run(simCtx, cfg, log, nil)
		if err != nil {
			t.Error(err)
		}
		simDone <- sum
	}()
	defer func() { stopSim(); <-simDone }()

	// Devices that came online before Run subscribed are caught by a
	// product check once all are up, as after a release.
	deadline := time.Now().Add(time.Duration(n)*time.Minute/time.Duration(rate) + 5*time.Minute)
	checked := false
	var settled time.Time // when every device first had an outcome, in the current streak
	for {
		countFailed()
		list, err := st.DeviceFirmwaresByProduct(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, df := range list {
			if df.Status == store.OTASuccess || df.Status == store.OTAFailed {
				done++
			}
		}
		// Every device has an outcome; a failed one may still be retried
		// after the backoff, so the outcomes must hold for two backoffs.
		if done == n {
			if settled.IsZero() {
				settled = time.Now()
			}
			if time.Since(settled) > 4*time.Second {
				break
			}
		} else {
			settled = time.Time{}
		}
		if !checked && time.Since(begin) > 20*time.Second {
			if _, err := svc.ProductChanged(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			checked = true
		}
		if time.Now().After(deadline) {
			seen := map[string]bool{}
			for _, df := range list {
				seen[df.DeviceID] = true
				if df.Status != store.OTASuccess {
					t.Logf("unfinished: %+v", df)
				}
			}
			for _, id := range ids {
				if !seen[id] {
					d, _ := st.DeviceByID(ctx, id)
					t.Logf("never started: %s online=%v version=%d", id, d.Online, d.ProductVersion)
				}
			}
			t.Fatalf("%d of %d updates finished before the deadline", done, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	countFailed()

	list, err := st.DeviceFirmwaresByProduct(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	failed, retried := 0, 0
	updated := map[string]bool{}
	for _, df := range list {
		if df.Status != store.OTASuccess {
			failed++
			d, _ := st.DeviceByID(ctx, df.DeviceID)
			t.Logf("device %s (online %v, reports version %d): %s %q after %d attempts", df.DeviceID, d.Online, d.ProductVersion,
				df.Status, df.Error, df.Attempts)
			if df.Error == "" {
				t.Errorf("device %s failed without a reason", df.DeviceID)
			}
			continue
		}
		updated[df.DeviceID] = true
		if df.Attempts == 1 {
			if k := earlyFailed[df.DeviceID]; k > 0 {
				t.Errorf("device %s took the update at its only attempt, but %d failed status events were published before the reboot wait", df.DeviceID, k)
			}
			if last := lastStatus[df.DeviceID]; last != gateway.FlashSuccess {
				t.Errorf("device %s took the update at its only attempt; its last status event is %q", df.DeviceID, last)
			}
		}
		if df.Attempts > 1 {
			retried++
			continue // its first start is not recorded any more
		}
		starts = append(starts, *df.StartedAt)
	}
	// Each updated device reports the new version after its reboot, and
	// at most one in ten failed (a loaded machine drops a few sessions).
	for _, id := range ids {
		d, err := st.DeviceByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if updated[id] && d.ProductVersion != 2 {
			t.Errorf("device %s reports version %d; want 2", id, d.ProductVersion)
		}
	}
	if failed > n/10 {
		t.Errorf("%d of %d updates failed", failed, n)
	}
	// The rate: the starts' slots are at least one interval apart (the
	// moments the starts reach the store are not: a loaded machine delays
	// some start goroutines more than others).
	slotMu.Lock()
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	interval := svc.Interval()
	for i := 1; i < len(slots); i++ {
		if gap := slots[i].Sub(slots[i-1]); gap < interval {
			t.Errorf("start slots %d and %d are %v apart; at %d/min the interval is %v", i-1, i, gap, rate, interval)
			break
		}
	}
	slotMu.Unlock()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	span := time.Duration(0)
	if len(starts) > 1 {
		span = starts[len(starts)-1].Sub(starts[0])
	}
	t.Logf("%d devices, %d/min (interval %v), 32 KB binary: %d updated at the first attempt, %d after retries, %d failed; first starts spanned %v; all recorded %v after the sim started; %d devices back after the reboot wait (failed, then a late success)",
		n, rate, interval, len(starts), retried, failed, span.Round(time.Millisecond), elapsed.Round(time.Millisecond), len(lateFailed))
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
