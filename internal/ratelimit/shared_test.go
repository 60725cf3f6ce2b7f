package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memCounts is an in-memory CountStore: the counters of one cluster.
type memCounts struct {
	mu    sync.Mutex
	m     map[string]int64
	exp   map[string]time.Time
	fail  bool // the next AddCounts fails
	calls int
}

func (c *memCounts) AddCounts(_ context.Context, adds []CountAdd) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail {
		c.fail = false
		return nil, errors.New("store down")
	}
	if c.m == nil {
		c.m, c.exp = map[string]int64{}, map[string]time.Time{}
	}
	out := map[string]int64{}
	for _, a := range adds {
		c.m[a.Key] += a.N
		if a.Expires.After(c.exp[a.Key]) {
			c.exp[a.Key] = a.Expires
		}
		out[a.Key] = c.m[a.Key]
	}
	return out, nil
}

func (c *memCounts) DeleteExpiredCounters(_ context.Context, now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.exp {
		if !e.After(now) {
			delete(c.m, k)
			delete(c.exp, k)
			n++
		}
	}
	return n, nil
}

// node is one server's limiter over the shared counts.
type node struct {
	s *Shared
	w *SharedWindow
}

func newNodes(st CountStore, n, limit int, window time.Duration, now func() time.Time) []node {
	nodes := make([]node, n)
	for i := range nodes {
		s := NewShared(st, SharedConfig{Now: now})
		nodes[i] = node{s: s, w: s.Window("global", limit, window, 1000)}
	}
	return nodes
}

// TestSharedWindowAcrossNodes: three nodes counting one key in one window
// admit at least the limit and at most the limit plus what the other
// nodes counted since their last sync; a refused event names the window's
// end; a new window starts afresh.
func TestSharedWindowAcrossNodes(t *testing.T) {
	const limit, perSync = 60, 5
	t0 := time.Unix(1_800_000_000, 0).Truncate(time.Minute)
	clock := t0.Add(10 * time.Second)
	st := &memCounts{}
	nodes := newNodes(st, 3, limit, time.Minute, func() time.Time { return clock })
	admitted := 0
	var lastRetry time.Duration
	for i := range 300 {
		n := nodes[i%3]
		if ok, retry := n.w.Allow("203.0.113.7", clock); ok {
			admitted++
		} else {
			lastRetry = retry
		}
		if i%(3*perSync) == 3*perSync-1 {
			for _, n := range nodes {
				if err := n.s.Sync(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Each node counts perSync events between syncs; the others' unsynced
	// counts are what a node cannot see: at most (3-1) × perSync over.
	if admitted < limit || admitted > limit+2*perSync {
		t.Errorf("admitted %d across 3 nodes; want %d..%d", admitted, limit, limit+2*perSync)
	}
	if lastRetry != 50*time.Second {
		t.Errorf("retry = %v, want the 50 s left in the window", lastRetry)
	}
	for i, n := range nodes {
		if ok, _ := n.w.Allow("198.51.100.1", clock); !ok {
			t.Errorf("node %d refused another key", i)
		}
	}
	clock = t0.Add(time.Minute)
	for i, n := range nodes {
		if ok, _ := n.w.Allow("203.0.113.7", clock); !ok {
			t.Errorf("node %d refused the key in a new window", i)
		}
	}
}

// TestSharedWindowConcurrent: nodes counting from many goroutines while
// syncing lose no count: the store ends with exactly what was admitted.
func TestSharedWindowConcurrent(t *testing.T) {
	const limit = 1000
	clock := time.Unix(1_800_000_000, 0).Truncate(time.Minute)
	st := &memCounts{}
	nodes := newNodes(st, 2, limit, time.Minute, func() time.Time { return clock })
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := nodes[g%2]
			for i := range 400 {
				if ok, _ := n.w.Allow("k", clock); ok {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
				if i%50 == 0 {
					n.s.Sync(context.Background())
				}
			}
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		n.s.Sync(context.Background())
	}
	var stored int64
	for _, v := range st.m {
		stored += v
	}
	if stored != int64(admitted) {
		t.Errorf("store counted %d, nodes admitted %d", stored, admitted)
	}
	// The overshoot is what each node had not yet seen of the other's
	// counts: small when syncs interleave (TestSharedWindowAcrossNodes
	// pins it step by step), but here it depends on the scheduler (a CI
	// run under -race saw 1,453). What holds whatever the scheduling: a
	// node's own admissions are in its view, so no node admits more than
	// the limit, and the cluster at most nodes × limit.
	if admitted < limit || admitted > 2*limit {
		t.Errorf("admitted %d of 3200 with a limit of %d on 2 nodes", admitted, limit)
	}
	t.Logf("admitted %d with a limit of %d on 2 nodes", admitted, limit)
}

// TestSharedWindowStoreDown: a failed sync keeps the node's own limit and
// sends the counts again at the next sync; an idle node does not touch
// the store.
func TestSharedWindowStoreDown(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0).Truncate(time.Minute)
	st := &memCounts{}
	nodes := newNodes(st, 1, 5, time.Minute, func() time.Time { return clock })
	n := nodes[0]
	n.s.Sync(context.Background()) // prunes only
	if st.calls != 0 {
		t.Fatalf("idle sync called AddCounts %d times", st.calls)
	}
	for range 3 {
		n.w.Allow("k", clock)
	}
	st.fail = true
	if err := n.s.Sync(context.Background()); err == nil {
		t.Fatal("sync over a failing store reported no error")
	}
	admitted := 0
	for range 5 {
		if ok, _ := n.w.Allow("k", clock); ok {
			admitted++
		}
	}
	if admitted != 2 {
		t.Errorf("admitted %d more after a failed sync; want 2 (own limit of 5)", admitted)
	}
	if err := n.s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := "rate/global/" + strconv.FormatInt(clock.UnixMilli(), 10) + "/k"
	if got := st.m[key]; got != 5 {
		t.Errorf("store holds %d after the retry, want 5", got)
	}
	if s := n.s.Stats(); s.Syncs != 2 || s.Errors != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestSharedDisabled: a nil Shared or a negative limit gives a nil window
// that allows everything; Start and Close work in either order.
func TestSharedDisabled(t *testing.T) {
	var s *Shared
	if w := s.Window("x", 1, time.Minute, 10); w != nil {
		t.Fatal("nil Shared made a window")
	}
	var w *SharedWindow
	if ok, _ := w.Allow("k", time.Now()); !ok || w.Len() != 0 {
		t.Error("nil window refused")
	}
	s = NewShared(&memCounts{}, SharedConfig{Every: time.Millisecond})
	if s.Window("x", -1, time.Minute, 10) != nil {
		t.Error("negative limit made a window")
	}
	s.Start()
	s.Window("y", 1, time.Minute, 10).Allow("k", time.Now())
	s.Close()
	s.Close()
	NewShared(&memCounts{}, SharedConfig{}).Close() // never started
}
