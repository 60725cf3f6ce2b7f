package gateway

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// batchCountingStore is the gateway's session store with its saves
// counted: single saves, and the size of every batch. Its first batch
// waits until the rest of want saves wait behind it, so that the test
// sees the saves of a shutdown grouped whatever the scheduling.
type batchCountingStore struct {
	*sqlstore.DB
	u       atomic.Pointer[udpServer]
	want    int
	counted atomic.Bool
	singles atomic.Int64
	mu      sync.Mutex
	sizes   []int
}

func (c *batchCountingStore) ClaimDTLSSession(ctx context.Context, s store.DTLSSession, old []byte) (bool, error) {
	if c.counted.Load() {
		c.singles.Add(1)
	}
	return c.DB.ClaimDTLSSession(ctx, s, old)
}

func (c *batchCountingStore) SaveDTLSSessions(ctx context.Context, ss []store.DTLSSession, old [][]byte) ([]bool, error) {
	c.mu.Lock()
	first := len(c.sizes) == 0
	c.sizes = append(c.sizes, len(ss))
	c.mu.Unlock()
	if first {
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			u := c.u.Load()
			u.batch.mu.Lock()
			n := len(u.batch.pending)
			u.batch.mu.Unlock()
			if n >= c.want-len(ss) {
				break
			}
		}
	}
	return c.DB.SaveDTLSSessions(ctx, ss, old)
}

// TestUDPShutdownSavesInBatches: a gateway shutting down with many Gen 3
// sessions, parked and running, saves them a batch per store transaction
// (not one transaction each), and every one is resumed after the restart
// with no handshake and no sequence number used twice.
func TestUDPShutdownSavesInBatches(t *testing.T) {
	const n = 24
	cfg := parkConfig()
	// The first sessions stay online until the last: bringing 24 devices
	// online one by one takes longer than udpTestConfig's 5 s idle
	// timeout under -race on a loaded machine.
	cfg.UDPIdleTimeout = 2 * time.Minute
	w := &udpWorld{world: newWorld(t, cfg)}
	db, ok := w.st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("test store is a %T", w.st)
	}
	cs := &batchCountingStore{DB: db, want: n}
	w.st = cs
	w.g = w.newUDPGateway(cfg)
	cs.u.Store(w.g.udp)
	devs := make([]*udpDevice, n)
	for i := range devs {
		id, key := deviceID(byte(i+1)), testUDPKey(t, fmt.Sprintf("shutdown-%d", i))
		w.provisionECC(id, key, "user1")
		devs[i] = w.onlineUDP(id, key)
		devs[i].wmu.Lock()
		devs[i].mark253 = true
		devs[i].wmu.Unlock()
	}
	w.waitParked(n)
	// Wake half of them: they run (and park again) as the gateway stops.
	for _, d := range devs[:n/2] {
		pid := d.nextID()
		d.send(protocol.NewPing(pid))
		d.expect("ping ACK", ackOf(pid))
	}
	cs.counted.Store(true)
	start := time.Now()
	w.restart()
	t.Logf("shutdown with %d sessions: %v", n, time.Since(start))
	cs.mu.Lock()
	sizes := slices.Clone(cs.sizes)
	cs.mu.Unlock()
	if s := cs.singles.Load(); s != 0 {
		t.Errorf("%d sessions saved one transaction each at shutdown", s)
	}
	// The first batch holds the saves pending when the writer started
	// (one, or a few when others queued before it ran), the second every
	// one that waited behind it.
	total := 0
	for _, size := range sizes {
		total += size
	}
	if len(sizes) > 2 || total != n {
		t.Errorf("batches at shutdown %v, want the %d sessions in at most 2 (the first saves, then the ones that waited for them)", sizes, n)
	}
	for i, d := range devs {
		id := deviceID(byte(i + 1))
		pid := d.nextID()
		d.send(protocol.NewPing(pid))
		d.expect("ping ACK on the resumed session", ackOf(pid))
		waitFor(t, "online again", func() bool { return w.g.Online(id.String()) })
		if r := d.replays.Load(); r != 0 {
			t.Fatalf("device %d refused %d server records as replayed (a reused sequence number)", i, r)
		}
	}
	st := w.g.Stats()
	if st.UDPResumptions != n || st.HandshakesOK != 0 || w.signer.n.Load() != 0 {
		t.Fatalf("after the restart: %d resumptions, %d handshakes, %d signatures; want %d, 0, 0",
			st.UDPResumptions, st.HandshakesOK, w.signer.n.Load(), n)
	}
}

// unbatchedSessions hides the store's SaveDTLSSessions: the gateway saves
// each ended session in its own transaction, as before batching.
type unbatchedSessions struct {
	store.DTLSSessions
	store.DeviceDTLSSessions
}

// TestScaleUDPShutdown measures a shutdown with many Gen 3 sessions
// (opt-in):
//
//	WICK_GATEWAY_SCALE_UDP_SHUTDOWN=5000 go test -run TestScaleUDPShutdown -v ./internal/gateway/
//
// N devices resume a saved session each (no handshake, as TestScaleUDP),
// park, and the gateway shuts down: the time until every session is saved
// and offline, with batched saves, and with WICK_GATEWAY_SCALE_UDP_SHUTDOWN_SINGLE=1
// one transaction per session (the store's batch method hidden).
func TestScaleUDPShutdown(t *testing.T) {
	n := scaleN(t, "WICK_GATEWAY_SCALE_UDP_SHUTDOWN")
	cfg := udpTestConfig()
	cfg.HandshakeRate = -1
	cfg.UDPIdleTimeout = time.Hour
	cfg.UDPCellularIdleTimeout = time.Hour
	cfg.HandshakeTimeout = time.Minute
	cfg.DescribeWait = time.Hour
	cfg.UDPParkAfter = 200 * time.Millisecond
	w := newUDPWorld(t, cfg)
	if os.Getenv("WICK_GATEWAY_SCALE_UDP_SHUTDOWN_SINGLE") != "" {
		w.g.udp.saved = unbatchedSessions{w.st, w.st.(store.DeviceDTLSSessions)}
	}
	keys := w.provisionScaleKeys(t, n, "")
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) * 4 {
		wg.Go(func() {
			for i := range work {
				id := scaleID(i)
				d := udpDeviceOn(t, id, keys[i], w.addr)
				w.resumeScaleDevice(t, d, i, keys[i])
				postScaleDescribe(t, d, i)
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
	deadline := time.Now().Add(time.Minute)
	for w.g.Stats().UDPParked != int64(n) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d of %d sessions parked", w.g.Stats().UDPParked, n)
	saves0 := w.g.Stats().UDPSaves
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := w.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	saved := w.g.Stats().UDPSaves - saves0
	mode := "batched"
	if os.Getenv("WICK_GATEWAY_SCALE_UDP_SHUTDOWN_SINGLE") != "" {
		mode = "one transaction each"
	}
	t.Logf("shutdown with %d Gen 3 sessions (%s): %s, %d saved (%.0f sessions/s)", n, mode, took.Round(time.Millisecond), saved, float64(saved)/took.Seconds())
	if saved != uint64(n) {
		t.Errorf("%d of %d sessions saved", saved, n)
	}
}
