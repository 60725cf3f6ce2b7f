package ratelimit

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CountStore keeps counters that every node of a cluster shares (the
// PostgreSQL store's cluster_counters).
type CountStore interface {
	// AddCounts adds each CountAdd's N to its key's counter, creating the
	// counter with the given expiry, atomically per key across nodes, and
	// returns the new totals by key.
	AddCounts(ctx context.Context, adds []CountAdd) (map[string]int64, error)
	// DeleteExpiredCounters removes the counters expired at now.
	DeleteExpiredCounters(ctx context.Context, now time.Time) (int, error)
}

// CountAdd is one key's local count to add to the shared counter.
type CountAdd struct {
	Key     string
	N       int64
	Expires time.Time
}

// DefaultSyncInterval is how often a Shared adds its nodes' counts to the
// store and reads the cluster totals back.
const DefaultSyncInterval = 250 * time.Millisecond

// pruneEvery is how often a Shared deletes expired counters.
const pruneEvery = time.Minute

// syncTimeout bounds one sync's store round trip.
const syncTimeout = 5 * time.Second

// SharedConfig tunes a Shared.
type SharedConfig struct {
	// Every is the sync interval (default DefaultSyncInterval).
	Every time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives sync errors (default: discarded).
	Log *slog.Logger
}

// Shared makes fixed-window limits hold across the nodes of a cluster
// without a store round trip per event: each node counts locally and,
// every sync interval, adds what it counted to a shared counter per key
// and window and reads the cluster total back. A node refuses an event
// once the last total it read plus what it counted since reaches the
// limit. Windows are aligned to the clock (a window starts at a multiple
// of its length), so that every node counts in the same window without
// talking to the others.
//
// The total admitted in a window is at least the limit (no node refuses
// early) and at most the limit plus what the other nodes admitted in the
// last sync interval and round trip before they saw the total: with N
// nodes, at most limit + (N-1) × min(limit, a node's rate for the key ×
// (interval + round trip)). If the store fails, each node still applies
// the limit to its own counts and the counts are retried at the next sync.
type Shared struct {
	st    CountStore
	every time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	windows []*SharedWindow // guarded by mu
	pruned  time.Time       // guarded by mu

	syncs, syncErrs, added atomic.Int64

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewShared returns a Shared over st. Call Start to sync periodically, or
// Sync to sync once.
func NewShared(st CountStore, cfg SharedConfig) *Shared {
	if cfg.Every <= 0 {
		cfg.Every = DefaultSyncInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Shared{st: st, every: cfg.Every, now: cfg.Now, log: cfg.Log,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Window returns a cluster-wide limiter of limit events per window per
// key, named name in the store (names must differ between limiters),
// tracking at most about maxKeys keys; nil (no limit) when limit is
// negative. A nil *Shared returns nil.
func (s *Shared) Window(name string, limit int, window time.Duration, maxKeys int) *SharedWindow {
	if s == nil || limit < 0 {
		return nil
	}
	w := &SharedWindow{s: s, prefix: "rate/" + name + "/", limit: int64(limit), window: window,
		t: newTable[sharedCount](maxKeys)}
	s.mu.Lock()
	s.windows = append(s.windows, w)
	s.mu.Unlock()
	return w
}

// Start syncs every interval in a goroutine until Close.
func (s *Shared) Start() {
	if s == nil || !s.started.CompareAndSwap(false, true) {
		return
	}
	go s.run()
}

// run syncs every interval until Close, then syncs a last time.
func (s *Shared) run() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		stopping := false
		select {
		case <-s.stop:
			stopping = true
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		s.Sync(ctx)
		cancel()
		if stopping {
			return
		}
	}
}

// Close stops the syncing Start began, after a last sync.
func (s *Shared) Close() {
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	if s.started.Load() {
		<-s.done
	}
}

// SharedStats are a Shared's counts since it was made.
type SharedStats struct {
	Syncs  int64 // store round trips
	Errors int64 // failed round trips
	Added  int64 // keys sent
}

// Stats returns the counts since s was made.
func (s *Shared) Stats() SharedStats {
	return SharedStats{Syncs: s.syncs.Load(), Errors: s.syncErrs.Load(), Added: s.added.Load()}
}

// Sync adds the counts made since the last sync to the store in one round
// trip and takes the cluster totals back. With nothing counted it does
// not touch the store (apart from deleting expired counters once a
// minute).
func (s *Shared) Sync(ctx context.Context) error {
	s.mu.Lock()
	windows := append([]*SharedWindow(nil), s.windows...)
	now := s.now()
	prune := now.Sub(s.pruned) >= pruneEvery
	if prune {
		s.pruned = now
	}
	s.mu.Unlock()
	var (
		adds  []CountAdd
		taken []taken
	)
	for _, w := range windows {
		adds, taken = w.take(adds, taken)
	}
	if prune {
		if _, err := s.st.DeleteExpiredCounters(ctx, now); err != nil {
			s.log.Warn("ratelimit: delete expired counters", "err", err)
		}
	}
	if len(adds) == 0 {
		return nil
	}
	s.syncs.Add(1)
	s.added.Add(int64(len(adds)))
	totals, err := s.st.AddCounts(ctx, adds)
	if err != nil {
		s.syncErrs.Add(1)
		s.log.Warn("ratelimit: sync shared counts", "err", err, "keys", len(adds))
	}
	for i, tk := range taken {
		total, ok := totals[adds[i].Key]
		tk.w.settle(tk.key, tk.start, tk.n, total, ok && err == nil)
	}
	return err
}

// taken is one key's count handed to the store by Sync.
type taken struct {
	w     *SharedWindow
	key   string
	start time.Time
	n     int64
}

// SharedWindow is a fixed-window limiter whose counts add up across the
// nodes of a cluster (see Shared). A nil *SharedWindow allows everything.
type SharedWindow struct {
	s      *Shared
	prefix string
	limit  int64
	window time.Duration
	t      *table[sharedCount]

	mu    sync.Mutex
	dirty []string // guarded by mu; keys counted since the last sync
}

// sharedCount is one key's counts in its current window.
type sharedCount struct {
	start    time.Time // the window's start, a multiple of its length
	total    int64     // the cluster's total at the last sync
	inflight int64     // counted here and being added by a sync
	local    int64     // counted here since the last sync
	dirty    bool      // listed in SharedWindow.dirty
}

// Allow counts one event for key at now and reports whether the cluster's
// count in the key's window is within the limit; if not, retry is how
// long until the window ends. Refused events are not counted.
func (w *SharedWindow) Allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if w == nil {
		return true, 0
	}
	start := now.Truncate(w.window)
	mark := false
	w.t.update(key, true, func(c *sharedCount) bool {
		if !c.start.Equal(start) {
			*c = sharedCount{start: start, dirty: c.dirty}
		}
		if c.total+c.inflight+c.local >= w.limit {
			retry = start.Add(w.window).Sub(now)
			return false
		}
		ok = true
		c.local++
		if !c.dirty {
			c.dirty, mark = true, true
		}
		return false
	})
	if mark {
		w.mu.Lock()
		w.dirty = append(w.dirty, key)
		w.mu.Unlock()
	}
	return ok, retry
}

// Len reports how many keys are tracked.
func (w *SharedWindow) Len() int {
	if w == nil {
		return 0
	}
	return w.t.len()
}

// storeKey is the shared counter's key of key's window starting at start.
func (w *SharedWindow) storeKey(key string, start time.Time) string {
	return w.prefix + strconv.FormatInt(start.UnixMilli(), 10) + "/" + key
}

// take moves the local counts of the keys counted since the last sync in
// flight and appends them to adds and tk.
func (w *SharedWindow) take(adds []CountAdd, tk []taken) ([]CountAdd, []taken) {
	w.mu.Lock()
	keys := w.dirty
	w.dirty = nil
	w.mu.Unlock()
	for _, key := range keys {
		var (
			n     int64
			start time.Time
		)
		w.t.update(key, false, func(c *sharedCount) bool {
			c.dirty = false
			n, start = c.local, c.start
			c.inflight += n
			c.local = 0
			return false
		})
		if n == 0 {
			continue
		}
		adds = append(adds, CountAdd{Key: w.storeKey(key, start), N: n, Expires: start.Add(w.window)})
		tk = append(tk, taken{w: w, key: key, start: start, n: n})
	}
	return adds, tk
}

// settle ends a sync of n counts of key's window at start: on success the
// cluster total replaces the last one read, on failure the counts go back
// to the local ones, to be sent again.
func (w *SharedWindow) settle(key string, start time.Time, n, total int64, ok bool) {
	mark := false
	w.t.update(key, false, func(c *sharedCount) bool {
		if !c.start.Equal(start) {
			return false // a new window began meanwhile
		}
		c.inflight -= n
		if ok {
			c.total = max(c.total, total)
			return false
		}
		c.local += n
		if !c.dirty {
			c.dirty, mark = true, true
		}
		return false
	})
	if mark {
		w.mu.Lock()
		w.dirty = append(w.dirty, key)
		w.mu.Unlock()
	}
}
