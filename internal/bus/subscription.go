package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// A Subscription receives the events selected by its Filter through a
// bounded buffer. When the buffer is full, new events for this subscriber
// are dropped and counted; the publisher and other subscribers never wait.
// Events arrive in ID order; events of one publisher arrive in the order
// they were published.
type Subscription struct {
	b   *Bus
	m   matcher
	g   *group
	buf int

	mu        sync.Mutex
	ch        chan Event // nil while replaying
	closed    bool
	replaying bool
	pending   []Event // live events that arrived during the replay (≤ buf)
	skipTo    uint64  // after a replay: live events up to this ID are duplicates
	warned    bool

	dropped atomic.Uint64
}

// SubscribeOption modifies Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	replay  bool
	lastID  uint64
	max     int
	timeout time.Duration
}

// After makes Subscribe first deliver the buffered events newer than lastID
// (the SSE Last-Event-ID) that are still inside the replay window, at most
// max of them (the most recent; max <= 0 means the whole window), and then
// continue live, with no gap and no duplicate at the boundary. The replayed
// events do not count against the buffer.
func After(lastID uint64, max int) SubscribeOption {
	return func(o *subscribeOptions) {
		o.replay, o.lastID, o.max = true, lastID, max
	}
}

// Subscribe starts a subscription with a buffer of buf events
// (DefaultBuffer when buf <= 0). Every event accepted by Publish after
// Subscribe returns is offered to it.
func (b *Bus) Subscribe(f Filter, buf int, opts ...SubscribeOption) (*Subscription, error) {
	o := subscribeOptions{timeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if buf <= 0 {
		buf = DefaultBuffer
	}
	s := &Subscription{b: b, m: compile(f), buf: buf, replaying: o.replay}
	if !o.replay {
		s.ch = make(chan Event, buf)
	}
	if err := b.join(s); err != nil {
		return nil, err
	}
	if o.replay {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		evs, hw, err := b.since(ctx, &s.m, o.lastID, o.max)
		cancel()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.finishReplay(evs, hw)
	}
	return s, nil
}

// Events returns the channel the events arrive on. It is closed by Close
// (of the subscription or of the bus).
func (s *Subscription) Events() <-chan Event { return s.ch }

// Next returns the next event, waiting until one arrives, ctx ends or the
// subscription is closed (ErrClosed).
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case e, ok := <-s.ch:
		if !ok {
			return Event{}, ErrClosed
		}
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Dropped returns how many events this subscription lost to a full buffer.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel. Events still in the
// buffer stay readable. It is idempotent.
func (s *Subscription) Close() error {
	if s.closeLocal() {
		s.b.leave(s)
	}
	return nil
}

// closeLocal marks the subscription closed and closes its channel; it
// reports whether this call did it.
func (s *Subscription) closeLocal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	if s.ch == nil {
		s.ch = make(chan Event)
	}
	close(s.ch)
	s.pending = nil
	return true
}

// deliver offers one event without blocking.
func (s *Subscription) deliver(e *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipTo != 0 {
		// Live copies of replayed events can still be in flight after the
		// replay; IDs arrive in order, so the first newer one ends this.
		if e.ID <= s.skipTo {
			return
		}
		s.skipTo = 0
	}
	switch {
	case s.closed:
	case s.replaying:
		if len(s.pending) < s.buf {
			s.pending = append(s.pending, *e)
		} else {
			s.drop()
		}
	default:
		select {
		case s.ch <- *e:
			s.b.delivered.Add(1)
		default:
			s.drop()
		}
	}
}

// drop counts one lost event; s.mu is held.
func (s *Subscription) drop() {
	s.dropped.Add(1)
	s.b.dropped.Add(1)
	if !s.warned {
		s.warned = true
		s.b.log.Warn("bus: subscriber buffer full, dropping events", "subject", s.g.subject, "buffer", s.buf)
	}
}

// finishReplay places the replayed events ahead of the live ones that
// arrived meanwhile and switches to live delivery. hw is the highest ID the
// replay covered: live events up to it are duplicates, whether they arrived
// already (pending) or are still on their way.
func (s *Subscription) finishReplay(evs []Event, hw uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.ch = make(chan Event, s.buf+len(evs))
	for i := range evs {
		s.ch <- evs[i]
	}
	s.b.delivered.Add(uint64(len(evs)))
	for i := range s.pending {
		if s.pending[i].ID <= hw {
			continue
		}
		select {
		case s.ch <- s.pending[i]:
			s.b.delivered.Add(1)
		default:
			s.drop()
		}
	}
	s.pending = nil
	s.replaying = false
	s.skipTo = hw
}

// Limits of the queue between a NATS connection's reader and a
// subscription's callback. The callbacks never block, so the queue only
// fills when the process is starved of CPU; beyond it NATS drops messages
// (counted in Stats.SlowConsumer).
const (
	pendingMsgs  = 65536
	pendingBytes = 64 << 20
)

// A group is one NATS subscription shared by every local Subscription with
// the same subject. Its callback runs on one goroutine, decodes each event
// once and offers it to the members whose filter selects it.
type group struct {
	b       *Bus
	subject string
	ready   chan struct{} // closed once ns is registered with the server (or err set)
	ns      *nats.Subscription
	err     error
	subs    atomic.Pointer[[]*Subscription] // copy-on-write; written under b.mu
}

// slowDropped is how many messages NATS dropped for the group's
// subscription because the process read too slowly; 0 before it is ready.
func (g *group) slowDropped() uint64 {
	select {
	case <-g.ready:
	default:
		return 0
	}
	if g.ns == nil || g.err != nil {
		return 0
	}
	n, err := g.ns.Dropped()
	if err != nil || n < 0 {
		return 0
	}
	return uint64(n)
}

func (g *group) load() []*Subscription {
	if p := g.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// join adds s to the group of its subject, creating and registering the
// group's NATS subscription when needed. It returns once the server knows
// the subscription, so that events published afterwards reach s.
func (b *Bus) join(s *Subscription) error {
	subject := s.m.subject(b.subj.live)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	g, ok := b.groups[subject]
	if !ok {
		g = &group{b: b, subject: subject, ready: make(chan struct{})}
		b.groups[subject] = g
	}
	s.g = g
	subs := append(g.load()[:len(g.load()):len(g.load())], s)
	g.subs.Store(&subs)
	b.mu.Unlock()

	if !ok {
		ns, err := b.nc.Subscribe(subject, g.handle)
		if err == nil {
			_ = ns.SetPendingLimits(pendingMsgs, pendingBytes)
			err = b.nc.Flush()
		}
		g.ns, g.err = ns, err
		if err != nil && ns != nil {
			_ = ns.Unsubscribe()
		}
		close(g.ready)
	}
	<-g.ready
	if g.err != nil {
		b.mu.Lock()
		if b.groups[subject] == g {
			delete(b.groups, subject)
		}
		b.mu.Unlock()
		s.closeLocal()
		if b.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("bus: subscribe %s: %w", subject, g.err)
	}
	return nil
}

// leave removes s from its group and drops the NATS subscription of an
// empty group.
func (b *Bus) leave(s *Subscription) {
	g := s.g
	b.mu.Lock()
	old := g.load()
	subs := make([]*Subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			subs = append(subs, x)
		}
	}
	g.subs.Store(&subs)
	last := len(subs) == 0 && b.groups[g.subject] == g
	if last {
		delete(b.groups, g.subject)
		b.slowClosed.Add(g.slowDropped())
	}
	b.mu.Unlock()
	if last {
		<-g.ready
		if g.ns != nil && g.err == nil {
			_ = g.ns.Unsubscribe()
		}
	}
}

// handle is the NATS callback of a group.
func (g *group) handle(msg *nats.Msg) {
	b := g.b
	t, ok := parseTail(strings.TrimPrefix(msg.Subject, b.subj.live))
	if !ok {
		b.malformed.Add(1)
		return
	}
	var ev Event
	decoded := false
	for _, s := range g.load() {
		if !s.m.matchMeta(&t) {
			continue
		}
		if !decoded {
			var err error
			if ev, err = b.decodeLive(msg); err != nil {
				b.malformed.Add(1)
				b.log.Warn("bus: undecodable event", "subject", msg.Subject, "err", err)
				return
			}
			decoded = true
		}
		if s.m.matchName(ev.Name) {
			s.deliver(&ev)
		}
	}
}

// decodeLive decodes a P.live message; in JetStream mode the ID is the
// stream sequence from the republish header.
func (b *Bus) decodeLive(msg *nats.Msg) (Event, error) {
	ev, err := DecodeEvent(msg.Data)
	if err != nil {
		return ev, err
	}
	if ev.ID == 0 {
		seq := msg.Header.Get("Nats-Sequence")
		if ev.ID, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return ev, fmt.Errorf("bus: event without ID (Nats-Sequence %q)", seq)
		}
	}
	return ev, nil
}
