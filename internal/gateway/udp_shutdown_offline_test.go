package gateway

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// offlineCountingStore is the gateway's store with its offline writes
// counted: the chunks of SetDevicesOffline, and the offlines written one
// device at a time (SetDeviceOffline, or in a presence batch).
type offlineCountingStore struct {
	*sqlstore.DB
	mu       sync.Mutex
	chunks   []int
	singles  atomic.Int64
	resets   []int
	calls    atomic.Int64 // ResetNodeBatch calls
	failCall int64        // the ResetNodeBatch call (1: the first) that fails
	// resetLimit, when set, caps ResetNodeBatch's chunks (the gateway's
	// are thousands).
	resetLimit int
}

func (c *offlineCountingStore) SetDevicesOffline(ctx context.Context, offs []store.DeviceOffline) ([]bool, error) {
	c.mu.Lock()
	c.chunks = append(c.chunks, len(offs))
	c.mu.Unlock()
	return c.DB.SetDevicesOffline(ctx, offs)
}

func (c *offlineCountingStore) SetDeviceOffline(ctx context.Context, id, sid string, at time.Time) (bool, error) {
	c.singles.Add(1)
	return c.DB.SetDeviceOffline(ctx, id, sid, at)
}

func (c *offlineCountingStore) ApplyPresence(ctx context.Context, ups []store.PresenceUpdate) ([]bool, error) {
	for _, u := range ups {
		if u.OfflineSession != "" {
			c.singles.Add(1)
		}
	}
	return c.DB.ApplyPresence(ctx, ups)
}

func (c *offlineCountingStore) ResetNodeBatch(ctx context.Context, node string, at time.Time, limit int) ([]string, error) {
	if c.calls.Add(1) == c.failCall {
		return nil, context.DeadlineExceeded
	}
	if c.resetLimit > 0 {
		limit = min(limit, c.resetLimit)
	}
	ids, err := c.DB.ResetNodeBatch(ctx, node, at, limit)
	c.mu.Lock()
	c.resets = append(c.resets, len(ids))
	c.mu.Unlock()
	return ids, err
}

// TestUDPShutdownManySessions: a gateway shutting down with many Gen 3
// sessions saves every one for resumption and marks every device offline
// in chunks of one statement each (no device written alone), announcing
// each with spark/status offline, all well within its shutdown context.
// The number of sessions is WICK_GATEWAY_SHUTDOWN_SESSIONS (default 400;
// a few thousand make it a measurement, WICK_GATEWAY_SHUTDOWN_PROFILE=file
// a CPU profile of the shutdown):
//
//	WICK_GATEWAY_SHUTDOWN_SESSIONS=5000 go test -run TestUDPShutdownManySessions -v ./internal/gateway/
func TestUDPShutdownManySessions(t *testing.T) {
	n := 400
	if v := os.Getenv("WICK_GATEWAY_SHUTDOWN_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("WICK_GATEWAY_SHUTDOWN_SESSIONS=%q", v)
		}
	}
	cfg := udpTestConfig()
	cfg.HandshakeRate = -1
	cfg.UDPIdleTimeout = time.Hour
	cfg.UDPCellularIdleTimeout = time.Hour
	cfg.HandshakeTimeout = time.Minute
	cfg.DescribeWait = time.Hour
	cfg.UDPParkAfter = 200 * time.Millisecond
	w := &udpWorld{world: newWorld(t, cfg)}
	db, ok := w.st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("test store is a %T", w.st)
	}
	cs := &offlineCountingStore{DB: db}
	w.st = cs
	w.g = w.newUDPGateway(cfg)
	var announced atomic.Int64
	w.g.testHookPublish = func(e bus.Event) error {
		if e.Name == eventStatus && e.Data == statusOffline {
			announced.Add(1)
		}
		return nil
	}
	keys := w.provisionScaleKeys(t, n, "user1")
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) * 4 {
		wg.Go(func() {
			for i := range work {
				d := udpDeviceOn(t, scaleID(i), keys[i], w.addr)
				w.resumeScaleDevice(t, d, i, keys[i])
				d.pc.Close()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	waitFor(t, "all online", func() bool { return w.g.Stats().Online == int64(n) })
	t.Logf("%d sessions set up in %s", n, time.Since(start).Round(time.Millisecond))
	saves0 := w.g.Stats().UDPSaves
	singles0 := cs.singles.Load()
	// A generous bound: the shutdown must end by itself, not by its
	// context (the figures are the benchmark's, docs/operations.md).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if f := os.Getenv("WICK_GATEWAY_SHUTDOWN_PROFILE"); f != "" {
		// A CPU profile of the shutdown alone.
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	if err := w.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	saved := w.g.Stats().UDPSaves - saves0
	cs.mu.Lock()
	chunks := slices.Clone(cs.chunks)
	cs.mu.Unlock()
	t.Logf("shutdown with %d Gen 3 sessions: %s; %d saved, offlines in chunks %v, %d announced",
		n, took.Round(time.Millisecond), saved, chunks, announced.Load())
	if saved != uint64(n) {
		t.Errorf("%d of %d sessions saved", saved, n)
	}
	if s := cs.singles.Load() - singles0; s != 0 {
		t.Errorf("%d devices marked offline one by one at shutdown", s)
	}
	total := 0
	for _, c := range chunks {
		if c > offlineChunk {
			t.Errorf("a chunk of %d offlines; want at most %d", c, offlineChunk)
		}
		total += c
	}
	if want := (n + offlineChunk - 1) / offlineChunk; total != n || len(chunks) != want {
		t.Errorf("offlines in chunks %v; want the %d devices in %d", chunks, n, want)
	}
	if a := announced.Load(); a != int64(n) {
		t.Errorf("%d of %d devices announced offline", a, n)
	}
	for i := range n {
		d, err := cs.DeviceByID(context.Background(), scaleID(i).String())
		if err != nil {
			t.Fatal(err)
		}
		if d.Online || d.Node != "" || d.SessionID != "" || d.LastHeard == nil {
			t.Fatalf("device %d after the shutdown: online %v node %q session %q last heard %v",
				i, d.Online, d.Node, d.SessionID, d.LastHeard)
		}
	}
}

// TestResetPreviousInChunks: a gateway starting on a node whose previous
// run left more devices online than one reset chunk marks the first chunk
// offline before New returns and the rest in the background, a chunk per
// transaction, retrying a chunk that fails; every device is announced
// offline once, and a store that fails the first chunk fails New.
func TestResetPreviousInChunks(t *testing.T) {
	const chunk = 50
	const n = 2*chunk + 7
	cfg := testConfig()
	ctx := context.Background()
	// In memory: provisioning thousands of devices in a file, a commit
	// each, takes minutes under -race.
	db, err := sqlstore.Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{t: t, st: db, b: bustest.New(t, bus.Config{})}
	der, err := protocol.MarshalPublicKeyDER(&testKey(t, "device_a").PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	start := time.Now()
	ups := make([]store.PresenceUpdate, n)
	for i := range n {
		id := scaleID(i).String()
		if _, err := db.ProvisionDevice(ctx, id, "rsa", der, 0); err != nil {
			t.Fatal(err)
		}
		ups[i] = store.PresenceUpdate{DeviceID: id, Online: &store.DeviceSession{Node: cfg.Node,
			SessionID: "old-" + id, At: old, PlatformID: 6}}
	}
	if _, err := db.ApplyPresence(ctx, ups); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices online on %s in %s", n, cfg.Node, time.Since(start).Round(time.Millisecond))
	// The first chunk failing fails New.
	failing := &offlineCountingStore{DB: db, failCall: 1, resetLimit: chunk}
	if g, err := New(cfg, Deps{Store: failing, Bus: w.b, ServerKey: testServerKey(t)}, testLogger()); err == nil {
		g.Close()
		t.Fatal("New succeeded with the reset's first chunk failing")
	}
	sub, err := w.b.Subscribe(bus.Filter{}, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// The second chunk (the first in the background) fails once.
	cs := &offlineCountingStore{DB: db, failCall: 2, resetLimit: chunk}
	g, err := New(cfg, Deps{Store: cs, Bus: w.b, ServerKey: testServerKey(t)}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	offline := func() int {
		k := 0
		for i := range n {
			d, err := db.DeviceByID(ctx, scaleID(i).String())
			if err != nil {
				t.Fatal(err)
			}
			if !d.Online {
				k++
			}
		}
		return k
	}
	start = time.Now()
	if k := offline(); k < chunk {
		t.Errorf("%d devices offline when New returned; want at least the first chunk, %d", k, chunk)
	}
	waitFor(t, "the reset's last chunk", func() bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return len(cs.resets) > 0 && cs.resets[len(cs.resets)-1] == 0
	})
	if k := offline(); k != n {
		t.Errorf("%d of %d devices offline after the reset", k, n)
	}
	t.Logf("reset in %s", time.Since(start).Round(time.Millisecond))
	announced := awaitOfflineAnnounced(t, sub, n)
	for id, k := range announced {
		if k != 1 {
			t.Errorf("device %s announced offline %d times", id, k)
		}
	}
	cs.mu.Lock()
	resets := slices.Clone(cs.resets)
	cs.mu.Unlock()
	if want := []int{chunk, chunk, 7, 0}; !slices.Equal(resets, want) {
		t.Errorf("reset in chunks %v; want %v", resets, want)
	}
}

// awaitOfflineAnnounced reads sub until n devices were announced offline
// (spark/status offline), within a minute, and returns how many times
// each was.
func awaitOfflineAnnounced(t *testing.T, sub *bus.Subscription, n int) map[string]int {
	t.Helper()
	announced := map[string]int{}
	deadline := time.After(time.Minute)
	for len(announced) < n {
		select {
		case e := <-sub.Events():
			if e.Name == eventStatus && e.Data == statusOffline {
				announced[e.DeviceID]++
			}
		case <-deadline:
			t.Fatalf("%d of %d devices announced offline", len(announced), n)
		}
	}
	return announced
}
