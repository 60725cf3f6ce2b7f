package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// flakyPresence is a store whose batched presence writes fail (as a
// store timeout) while fail is above zero, and wait for gate when set.
type flakyPresence struct {
	store.Store
	batcher store.PresenceBatcher
	fail    atomic.Int64
	calls   atomic.Int64
	gate    chan struct{} // when not nil, the first call waits for it to close
	gated   chan struct{} // closed when the first call reached the gate
	once    sync.Once
}

func newFlakyPresence(st store.Store) *flakyPresence {
	return &flakyPresence{Store: st, batcher: st.(store.PresenceBatcher)}
}

func (f *flakyPresence) ApplyPresence(ctx context.Context, ups []store.PresenceUpdate) ([]bool, error) {
	f.calls.Add(1)
	if f.gate != nil {
		f.once.Do(func() {
			close(f.gated)
			<-f.gate
		})
	}
	if f.fail.Add(-1) >= 0 {
		return nil, fmt.Errorf("flaky store: %w", context.DeadlineExceeded)
	}
	return f.batcher.ApplyPresence(ctx, ups)
}

// openPresenceStore opens a SQLite store with n provisioned devices.
func openPresenceStore(t testing.TB, n int) (*sqlstore.DB, []string) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ids := make([]string, n)
	devs := make([]store.Device, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("0a0b0c%018x", i)
		devs[i] = store.Device{ID: ids[i]}
	}
	if err := st.InsertDevices(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	return st, ids
}

// testPresenceWriter returns a writer with fast retries, closed at the end
// of the test.
func testPresenceWriter(t testing.TB, st store.Store) *presenceWriter {
	w := newPresenceWriter(st, slog.New(slog.DiscardHandler))
	w.retryMin, w.retryMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.close(ctx)
	})
	return w
}

// waitOp waits for op or fails the test.
func waitOp(t *testing.T, op *presenceOp) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := op.wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func testSession(sid string) store.DeviceSession {
	return store.DeviceSession{Node: "n1", SessionID: sid, IP: "192.0.2.9", PlatformID: 6, At: time.Now()}
}

// TestPresenceEntryOrder checks what a device's queue keeps, in which
// order, and what the updates it drops report.
func TestPresenceEntryOrder(t *testing.T) {
	on := func(sid string) *presenceOp {
		s := testSession(sid)
		return &presenceOp{online: &s, done: make(chan struct{})}
	}
	off := func(sid string) *presenceOp { return &presenceOp{sid: sid, done: make(chan struct{})} }
	describe := func(ops []*presenceOp) string {
		out := ""
		for _, op := range ops {
			if op.online != nil {
				out += "on:" + op.online.SessionID + " "
			} else {
				out += "off:" + op.sid + " "
			}
		}
		return out
	}
	tests := []struct {
		name    string
		ops     []*presenceOp
		want    string
		dropped map[int]bool // index of op -> applied, for ops released unwritten
	}{
		{"online then offline", []*presenceOp{on("a"), off("a")}, "on:a off:a ", nil},
		{"reconnect", []*presenceOp{on("a"), off("a"), on("b")}, "on:b ", map[int]bool{0: false, 1: true}},
		{"written session's offline stays", []*presenceOp{off("a"), on("b")}, "off:a on:b ", nil},
		{"older session's late offline", []*presenceOp{on("b"), off("a")}, "on:b ", map[int]bool{1: false}},
		{"repeated offline", []*presenceOp{off("a"), off("a")}, "off:a ", map[int]bool{1: false}},
		{"two written sessions end", []*presenceOp{off("a"), off("b"), on("c"), off("c")}, "off:a off:b on:c off:c ", nil},
		{"flapping stays bounded", []*presenceOp{on("a"), off("a"), on("b"), off("b"), on("c"), off("c"), on("d")}, "on:d ",
			map[int]bool{0: false, 1: true, 2: false, 3: true, 4: false, 5: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &presenceEntry{}
			for _, op := range tt.ops {
				e.add(op)
			}
			if got := describe(e.ops); got != tt.want {
				t.Fatalf("queue %q; want %q", got, tt.want)
			}
			for i, op := range tt.ops {
				select {
				case <-op.done:
					applied, ok := tt.dropped[i]
					if !ok {
						t.Errorf("op %d released but still queued", i)
					} else if op.applied != applied || op.err != nil {
						t.Errorf("op %d released with applied %v, err %v; want %v", i, op.applied, op.err, applied)
					}
				default:
					if _, ok := tt.dropped[i]; ok {
						t.Errorf("op %d dropped but not released", i)
					}
				}
			}
		})
	}
	// A product move of a superseded online is kept.
	e := &presenceEntry{}
	first := on("a")
	first.online.ProductID = 42
	e.add(first)
	e.add(on("b"))
	if e.ops[0].online.ProductID != 42 {
		t.Errorf("product move lost: %+v", e.ops[0].online)
	}
}

// TestPresenceWriterRetries checks that failed batches are retried until
// written, and that an offline queued behind an online that failed is
// written after it.
func TestPresenceWriterRetries(t *testing.T) {
	ctx := context.Background()
	db, ids := openPresenceStore(t, 2)
	st := newFlakyPresence(db)
	st.gate, st.gated = make(chan struct{}), make(chan struct{})
	st.fail.Store(3)
	w := testPresenceWriter(t, st)

	// Device 0: online, held at the gate and failing; the offline comes
	// meanwhile and must not overtake it.
	on0 := w.online(ids[0], testSession("s0"))
	<-st.gated
	off0 := w.offline(ids[0], "s0", time.Now())
	// Device 1: online only.
	on1 := w.online(ids[1], testSession("s1"))
	close(st.gate)
	for _, op := range []*presenceOp{on0, off0, on1} {
		waitOp(t, op)
	}
	if !off0.applied {
		t.Error("the offline after the online did not apply")
	}
	d0, _ := db.DeviceByID(ctx, ids[0])
	d1, _ := db.DeviceByID(ctx, ids[1])
	if d0.Online || d0.SessionID != "" || d0.LastHandshakeAt == nil {
		t.Errorf("device 0 after online, offline: online %v session %q handshake %v", d0.Online, d0.SessionID, d0.LastHandshakeAt)
	}
	if !d1.Online || d1.SessionID != "s1" {
		t.Errorf("device 1 after online: online %v session %q", d1.Online, d1.SessionID)
	}
	if n := st.calls.Load(); n < 4 {
		t.Errorf("%d writes; want the 3 failures retried", n)
	}
	if w.failures.Load() != 3 {
		t.Errorf("failures = %d; want 3", w.failures.Load())
	}

	// Last-heard times ride along and never go back.
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	w.touch(map[string]time.Time{ids[1]: later})
	w.touch(map[string]time.Time{ids[1]: later.Add(-time.Minute)})
	waitFor(t, "last heard written", func() bool {
		d, err := db.DeviceByID(ctx, ids[1])
		return err == nil && d.LastHeard != nil && d.LastHeard.Equal(later)
	})
}

// TestPresenceWriterBatches checks that updates queued while a batch is
// written go out together: one transaction per maxBatch devices.
func TestPresenceWriterBatches(t *testing.T) {
	const n, batch = 450, 100
	db, ids := openPresenceStore(t, n+1)
	st := newFlakyPresence(db)
	st.gate, st.gated = make(chan struct{}), make(chan struct{})
	w := testPresenceWriter(t, st)
	w.maxBatch = batch
	first := w.online(ids[n], testSession("first"))
	<-st.gated // the writer is busy with the first update
	ops := make([]*presenceOp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops[i] = w.online(ids[i], testSession("s"+strconv.Itoa(i)))
		}()
	}
	wg.Wait()
	close(st.gate)
	waitOp(t, first)
	for _, op := range ops {
		waitOp(t, op)
	}
	want := 1 + (n+batch-1)/batch
	if got := st.calls.Load(); got != int64(want) {
		t.Errorf("%d transactions for 1 + %d devices; want %d", got, n, want)
	}
	list, err := db.DevicesByIDs(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	online := 0
	for _, d := range list {
		if d.Online {
			online++
		}
	}
	if online != n+1 {
		t.Errorf("%d of %d devices online", online, n+1)
	}
}

// TestOnlineSurvivesStoreTimeouts connects a device while the store's
// presence writes time out, longer than the session waits: the device
// comes online on the bus at once and ends listed online in the store;
// its offline, failing too, is retried the same way.
func TestOnlineSurvivesStoreTimeouts(t *testing.T) {
	cfg := testConfig()
	w := newWorld(t, cfg)
	w.g.Close()
	st := newFlakyPresence(w.st)
	w.st = st
	w.g = w.newGateway(cfg)
	w.g.presence.retryMin, w.g.presence.retryMax = 20*time.Millisecond, 20*time.Millisecond
	w.g.presence.sessionWait = 50 * time.Millisecond
	st.fail.Store(20) // about 400 ms of failures, far past the session's wait

	id, key := deviceID(0x71), testKey(w.t, "device_a")
	w.provision(id, key, "")
	sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "spark/status"})
	d := w.dial(id, key)
	d.hello(helloPayload(0))
	if e := nextEvent(t, sub, "spark/status"); e.Data != "online" {
		t.Fatalf("first status %q", e.Data)
	}
	waitFor(t, "device listed online after the failed writes", func() bool { return w.device(id).Online })
	if st.fail.Load() >= 0 {
		t.Fatalf("failures left %d: the online was written before the store recovered", st.fail.Load())
	}
	if !w.g.Online(id.String()) {
		t.Fatal("session ended")
	}

	st.fail.Store(5)
	d.conn.Close()
	if e := nextEvent(t, sub, "spark/status"); e.Data != "offline" {
		t.Fatalf("status after disconnect %q", e.Data)
	}
	waitFor(t, "device listed offline after the failed writes", func() bool { return !w.device(id).Online })
}

// BenchmarkPresenceWrites measures device presence writes per second on a
// SQLite file, as 64 or 1,024 concurrent sessions make them in a reconnect
// storm (each op is an online then an offline of one device, each waited
// for): through the presence writer (batched, one transaction per batch)
// and straight to the store (one transaction per write). It reports
// writes/s, and devices per transaction for the writer.
func BenchmarkPresenceWrites(b *testing.B) {
	const devices = 2000
	for _, sessions := range []int{64, 1024} {
		for _, batched := range []bool{true, false} {
			name := "unbatched"
			if batched {
				name = "batched"
			}
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, name), func(b *testing.B) {
				benchPresence(b, devices, sessions, batched)
			})
		}
	}
}

func benchPresence(b *testing.B, devices, sessions int, batched bool) {
	db, ids := openPresenceStore(b, devices)
	var w *presenceWriter
	if batched {
		w = testPresenceWriter(b, db)
	}
	ctx := context.Background()
	var next atomic.Int64
	one := func() error {
		i := next.Add(1)
		id, sid := ids[int(i)%devices], "s"+strconv.FormatInt(i, 10)
		if batched {
			if err := w.online(id, testSession(sid)).wait(ctx); err != nil {
				return err
			}
			return w.offline(id, sid, time.Now()).wait(ctx)
		}
		if _, err := db.SetDeviceOnline(ctx, id, testSession(sid)); err != nil {
			return err
		}
		_, err := db.SetDeviceOffline(ctx, id, sid, time.Now())
		return err
	}
	b.ReportAllocs()
	b.SetParallelism(max(1, sessions/runtime.GOMAXPROCS(0)))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := one(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "writes/s")
	if batched && w.batches.Load() > 0 {
		b.ReportMetric(float64(w.updates.Load())/float64(w.batches.Load()), "devices/tx")
	}
}

// TestSessionKnownDevice: the device a restore or handshake check read
// stands in for recordOnline's read once, and only while fresh.
func TestSessionKnownDevice(t *testing.T) {
	d := &store.Device{ID: "e00fce680000000000000001"}
	for _, tc := range []struct {
		name  string
		age   time.Duration // how long ago it was read (0: none kept)
		first bool          // takeKnown returns it
	}{
		{"none kept", -1, false},
		{"just read", 0, true},
		{"read within knownFresh", knownFresh / 2, true},
		{"read longer ago", 2 * knownFresh, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &session{}
			if tc.age >= 0 {
				s.remember(d)
				s.knownAt -= int64(tc.age)
			}
			if got := s.takeKnown(); (got == d) != tc.first || (got != nil && got != d) {
				t.Fatalf("takeKnown = %v, want it: %v", got, tc.first)
			}
			if got := s.takeKnown(); got != nil {
				t.Fatalf("second takeKnown = %v, want nil", got)
			}
		})
	}
}
