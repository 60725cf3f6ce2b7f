package firmware

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/internal/store/storetest"
)

// sharedStores opens the stores two servers can share: a SQLite file, and
// a fresh PostgreSQL schema when WICK_TEST_POSTGRES_URL is set. open
// returns one more connection to the same database.
func sharedStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	t.Helper()
	file := filepath.Join(t.TempDir(), "wick.db")
	out := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store { return openDSN(t, "sqlite:"+file) },
	}
	if base := os.Getenv("WICK_TEST_POSTGRES_URL"); base != "" {
		var dsn string
		out["postgres"] = func(t *testing.T) store.Store {
			if dsn == "" {
				dsn = freshSchema(t, base)
			}
			return openDSN(t, dsn)
		}
	} else {
		t.Log("WICK_TEST_POSTGRES_URL not set: PostgreSQL cases skipped")
	}
	return out
}

func openDSN(t *testing.T, dsn string) store.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// freshSchema creates a schema dropped when the test ends and returns a
// DSN whose connections use it.
func freshSchema(t *testing.T, base string) string {
	t.Helper()
	return storetest.PostgresSchema(t, base, "wick_fw_")
}

// TestRateClusterWide runs two rollout services, as two servers would, on
// one database: each queues its own half of a product's devices, and the
// starts of both together keep to the one product rate. The slots each
// start took are checked, not the moments of the starts (which a loaded
// machine delays): every slot is distinct, and sorted they are at least
// one interval apart; and no start came before its slot.
func TestRateClusterWide(t *testing.T) {
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			const perServer, rate = 8, 600 // 100 ms apart
			a, b := open(t), open(t)
			ctx := t.Context()
			bs := bustest.New(t, bus.Config{})
			addRelease(t, a, 2, true)
			var (
				mu    sync.Mutex
				slots []time.Time
				late  []string
				count = map[string]int{}
			)
			var services []*Service
			for i, st := range []store.Store{a, b} {
				node := fmt.Sprintf("n%d", i+1)
				fl := flasherFunc(func(_ context.Context, id, _ string) error { return nil })
				s := New(Config{Rate: rate, Node: node}, st, fl, nil)
				s.started = func(id string, slot time.Time) {
					now := time.Now()
					mu.Lock()
					defer mu.Unlock()
					slots = append(slots, slot)
					count[node]++
					if now.Before(slot) {
						late = append(late, fmt.Sprintf("%s started %v before its slot", id, slot.Sub(now)))
					}
				}
				services = append(services, s)
				for j := range perServer {
					addDevice(t, st, fmt.Sprintf("%s-%02d", node, j), 1)
				}
			}
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, s := range services {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.Run(runCtx, bs); err != nil {
						t.Error(err)
					}
				}()
			}
			defer func() { stop(); wg.Wait() }()
			for i, s := range services {
				for j := range perServer {
					s.Enqueue(testProduct, fmt.Sprintf("n%d-%02d", i+1, j))
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(slots)
				mu.Unlock()
				if n == 2*perServer {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d updates started", n, 2*perServer)
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if count["n1"] != perServer || count["n2"] != perServer {
				t.Errorf("starts per server %v; want %d each", count, perServer)
			}
			for _, l := range late {
				t.Error(l)
			}
			slices.SortFunc(slots, func(x, y time.Time) int { return x.Compare(y) })
			interval := services[0].Interval()
			for i := 1; i < len(slots); i++ {
				if gap := slots[i].Sub(slots[i-1]); gap < interval {
					t.Errorf("slots %d and %d are %v apart; the cluster-wide rate allows one per %v", i-1, i, gap, interval)
				}
			}
			// Per server the 16 starts would have taken 7 intervals.
			t.Logf("%d starts from two servers spanned %v (interval %v)", len(slots), slots[len(slots)-1].Sub(slots[0]), interval)
		})
	}
}

// TestCollectBinaries checks which binaries the collector deletes, with
// the service's clock moved forward: a binary just uploaded (not yet
// named) and one a running update streams stay; once past the grace and
// the retention only the released version's stays.
func TestCollectBinaries(t *testing.T) {
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := t.Context()
			now := time.Now()
			clock := now
			s := New(Config{Now: func() time.Time { return clock }}, st, nil, nil)
			released := addRelease(t, st, 2, true)
			upload, err := st.PutFirmwareBinary(ctx, []byte("being uploaded"))
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := st.PutFirmwareBinary(ctx, []byte("being streamed"))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.StartDeviceOTA(ctx, "d-flash", store.DeviceOTA{Hash: streamed, At: clock}); err != nil {
				t.Fatal(err)
			}
			stored := func() map[string]bool {
				out := map[string]bool{}
				for k, h := range map[string]string{"released": released.Hash, "upload": upload, "streamed": streamed} {
					if _, err := st.FirmwareBinary(ctx, h); err == nil {
						out[k] = true
					}
				}
				return out
			}
			for _, c := range []struct {
				after   time.Duration
				deleted int
				want    map[string]bool
			}{
				{0, 0, map[string]bool{"released": true, "upload": true, "streamed": true}},
				// Past the grace, the upload nobody named goes; the update
				// started 2 hours ago keeps its binary.
				{2 * time.Hour, 1, map[string]bool{"released": true, "streamed": true}},
				// Past the retention the update's binary goes too.
				{DefaultGCRetention + time.Hour, 1, map[string]bool{"released": true}},
			} {
				clock = now.Add(c.after)
				n, err := s.CollectBinaries(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := stored(); n != c.deleted || !maps.Equal(got, c.want) {
					t.Errorf("after %v: deleted %d, stored %v; want %d, %v", c.after, n, got, c.deleted, c.want)
				}
			}
		})
	}
}

// TestCollectElectsOne: of two servers on one database, only the first
// to try in a period collects (a cluster counter elects it); the next
// period the other may. The periodic loop then collects an unused binary.
func TestCollectElectsOne(t *testing.T) {
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			a, b := open(t), open(t)
			ctx := t.Context()
			clock := time.Now().Add(2 * DefaultGCGrace)
			now := func() time.Time { return clock }
			sa := New(Config{GCEvery: time.Hour, Now: now}, a, nil, nil)
			sb := New(Config{GCEvery: time.Hour, Now: now}, b, nil, nil)
			for i, c := range []struct {
				s    *Service
				want bool
			}{{sa, true}, {sb, false}, {sa, false}} {
				ran, err := c.s.collectOnce(ctx)
				if err != nil || ran != c.want {
					t.Fatalf("try %d: collected %v, %v; want %v", i, ran, err, c.want)
				}
			}
			clock = clock.Add(time.Hour)
			if ran, err := sb.collectOnce(ctx); err != nil || !ran {
				t.Fatalf("next period: collected %v, %v; want true", ran, err)
			}

			// The loop, every 50 ms, past the periods above: an unused
			// binary goes.
			h, err := a.PutFirmwareBinary(ctx, []byte("unused"))
			if err != nil {
				t.Fatal(err)
			}
			s := New(Config{GCEvery: 50 * time.Millisecond, Now: func() time.Time { return time.Now().Add(10 * time.Hour) }}, a, nil, nil)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- s.Run(runCtx, bustest.New(t, bus.Config{})) }()
			defer func() { stop(); <-done }()
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := a.FirmwareBinary(ctx, h); err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the unused binary was never collected")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
