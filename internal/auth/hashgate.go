package auth

import (
	"context"
	"sync"
	"time"
)

// hashGate bounds the memory-hard hashes computed at once: slots run, a
// short queue waits, and anything beyond is refused with ErrBusy before it
// allocates (each argon2id hash takes its full memory parameter).
type hashGate struct {
	slots    chan struct{}
	maxQueue int
	wait     time.Duration

	mu      sync.Mutex
	waiting int       // guarded by mu
	stats   HashStats // guarded by mu
}

// HashStats counts the work of the hash gate.
type HashStats struct {
	// InFlight is how many hashes run now; Peak the most that ever ran at
	// once; Limit the bound on both.
	InFlight, Peak, Limit int
	// Waiting is how many checks wait for a slot now.
	Waiting int
	// Rejected counts checks refused with ErrBusy.
	Rejected uint64
}

// newHashGate returns a gate of n slots and a queue of queue waiters.
func newHashGate(n, queue int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), maxQueue: queue, wait: wait}
}

// acquire takes a slot, waiting in the queue if there is room. It returns
// ErrBusy when the queue is full or the wait too long, and ctx's error when
// the caller goes away first.
func (g *hashGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		g.started()
		return nil
	default:
	}
	g.mu.Lock()
	if g.waiting >= g.maxQueue {
		g.stats.Rejected++
		g.mu.Unlock()
		return ErrBusy
	}
	g.waiting++
	g.mu.Unlock()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	var err error
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = ErrBusy
	}
	g.mu.Lock()
	g.waiting--
	if err == ErrBusy {
		g.stats.Rejected++
	}
	g.mu.Unlock()
	if err != nil {
		return err
	}
	g.started()
	return nil
}

// started counts a hash that took a slot.
func (g *hashGate) started() {
	g.mu.Lock()
	g.stats.InFlight++
	g.stats.Peak = max(g.stats.Peak, g.stats.InFlight)
	g.mu.Unlock()
}

// release gives a slot back.
func (g *hashGate) release() {
	g.mu.Lock()
	g.stats.InFlight--
	g.mu.Unlock()
	<-g.slots
}

// snapshot returns the current stats.
func (g *hashGate) snapshot() HashStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Waiting, st.Limit = g.waiting, cap(g.slots)
	return st
}
