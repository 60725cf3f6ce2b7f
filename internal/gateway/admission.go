package gateway

// Admission of starting device sessions (docs/operations.md, "Reconnect
// storms"), TCP and Gen 3 alike: one pool of slots for both, since both
// spend the same CPU and store. A reconnect storm is tens of thousands of devices each needing
// two RSA operations and then a few store writes (online, describe) before
// it is of any use. Without a bound every one of them competes with the
// devices already online for the CPU and the store, and calls to those
// devices wait behind the storm. The admission lets at most
// Config.MaxStarting sessions be between their first RSA operation and
// "online with its describe stored"; the rest wait in a bounded queue (at
// most Config.StartQueue connections, each for at most
// Config.HandshakeIdle) and the connections beyond that are closed at once,
// to come back after the device's own backoff.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errAdmissionFull and errAdmissionWait end a connection the admission
// did not let start: the queue was full, or the wait too long.
var (
	errAdmissionFull = errors.New("gateway: admission queue full")
	errAdmissionWait = errors.New("gateway: no admission before the deadline")
)

// admission is a counting semaphore with a bounded, FIFO wait.
type admission struct {
	slots   chan struct{}
	queue   int64 // most connections waiting; 0: none may wait
	waiting atomic.Int64
}

func newAdmission(slots, queue int) *admission {
	return &admission{slots: make(chan struct{}, slots), queue: int64(queue)}
}

// acquire takes a slot, waiting until deadline (or done closes) when none
// is free and fewer than queue connections wait already. queued reports a
// wait. The caller releases the slot with release.
func (a *admission) acquire(deadline time.Time, done <-chan struct{}) (queued bool, err error) {
	select {
	case a.slots <- struct{}{}:
		return false, nil
	default:
	}
	if a.waiting.Add(1) > a.queue {
		a.waiting.Add(-1)
		return false, errAdmissionFull
	}
	defer a.waiting.Add(-1)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true, nil
	case <-t.C:
		return true, errAdmissionWait
	case <-done:
		return true, ErrClosed
	}
}

// full reports whether a start would be turned away at once: every slot
// is held and the queue is full. The Gen 3 demultiplexer drops a
// ClientHello then, before it costs a goroutine (the device retransmits).
func (a *admission) full() bool {
	return len(a.slots) == cap(a.slots) && a.waiting.Load() >= a.queue
}

// release returns a slot taken by acquire.
func (a *admission) release() { <-a.slots }

// starting returns the number of slots held.
func (a *admission) starting() int { return len(a.slots) }

// admitSlot is a session's hold on an admission slot: released once, by
// whichever comes first of the describe stored, the hold's time limit and
// the session's end.
type admitSlot struct {
	a        *admission
	mu       sync.Mutex
	released bool        // guarded by mu
	timer    *time.Timer // guarded by mu; bounds the hold after online
}

// admit takes an admission slot for s, which holds it until its start is
// over (admitted). It closes s and returns an error when the queue is full
// or the wait ends at the handshake's idle limit.
func (s *session) admit() error { return s.admitWithin(s.g.cfg.HandshakeIdle) }

// admitWithin is admit with a wait of at most wait.
func (s *session) admitWithin(wait time.Duration) error {
	g := s.g
	if g.admission == nil {
		return nil
	}
	deadline := minTime(s.deadline, time.Now().Add(wait))
	queued, err := g.admission.acquire(deadline, g.ctx.Done())
	if queued {
		g.stats.admissionQueued.Add(1)
	}
	switch {
	case errors.Is(err, errAdmissionFull):
		g.stats.admissionRefused.Add(1)
		g.admissionFullLog()
		s.close(reasonAdmission)
		return err
	case errors.Is(err, errAdmissionWait):
		g.stats.admissionTimeouts.Add(1)
		s.close(reasonAdmission)
		return err
	case err != nil:
		s.close(reasonShutdown)
		return err
	}
	s.slot = &admitSlot{a: g.admission}
	return nil
}

// admitted ends s's start: its admission slot (if any) goes to the next
// connection. Safe to call more than once and from any goroutine.
func (s *session) admitted() {
	sl := s.slot
	if sl == nil {
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.released {
		return
	}
	sl.released = true
	if sl.timer != nil {
		sl.timer.Stop()
		sl.timer = nil // an idle session keeps no timer
	}
	sl.a.release()
}

// holdUntilDescribed keeps s's slot after it went online until its
// application describe is stored (applyDescribe releases it), for at most
// Config.AdmissionHold: a device that posts no describe must not keep a
// slot for DescribeWait.
func (s *session) holdUntilDescribed() {
	sl := s.slot
	if sl == nil {
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !sl.released {
		sl.timer = time.AfterFunc(s.g.cfg.AdmissionHold, s.admitted)
	}
}

// admissionFullLog says, at most every 10 s, that the admission queue
// turned connections away.
func (g *Gateway) admissionFullLog() {
	now := time.Now().UnixNano()
	last := g.admissionLogged.Load()
	if now-last < int64(10*time.Second) || !g.admissionLogged.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("gateway: device admission queue full, closing new connections",
		"starting", g.admission.starting(), "waiting", g.admission.waiting.Load(),
		"max_starting", g.cfg.MaxStarting, "queue", g.cfg.StartQueue,
		"refused", g.stats.admissionRefused.Load())
}
