package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Since returns the events selected by f with an ID greater than lastID
// that are still inside the replay window, oldest first: at most max of
// them, the most recent ones (max <= 0: no limit beyond the window). For a
// gap-free switch to live events use Subscribe with After instead.
func (b *Bus) Since(ctx context.Context, f Filter, lastID uint64, max int) ([]Event, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	m := compile(f)
	evs, _, err := b.since(ctx, &m, lastID, max)
	return evs, err
}

// since returns the replay and the high-water ID it covers: every event
// accepted with an ID up to hw and selected by m is in the result (or was
// outside the window), and every later one is delivered live to a group
// registered before the call.
func (b *Bus) since(ctx context.Context, m *matcher, lastID uint64, max int) ([]Event, uint64, error) {
	if max <= 0 || max > b.cfg.ReplayMaxEvents {
		max = b.cfg.ReplayMaxEvents
	}
	if b.js == nil {
		// Under pubMu no publish is half done: each one is either in the
		// ring or not yet written to NATS (and so behind our subscription).
		b.pubMu.Lock()
		defer b.pubMu.Unlock()
		evs, hw := b.ring.since(m, lastID, max, time.Now())
		return evs, hw, nil
	}
	return b.jsSince(ctx, m, lastID, max)
}

// jsSince reads the replay from the JetStream stream with a short-lived
// filtered consumer, starting over while the cluster answers "no
// responders" (see retryNoResponders).
func (b *Bus) jsSince(ctx context.Context, m *matcher, lastID uint64, max int) ([]Event, uint64, error) {
	var (
		evs []Event
		hw  uint64
	)
	err := retryNoResponders(ctx, b.log, noRespondersFor, func() error {
		var err error
		evs, hw, err = b.jsSinceOnce(ctx, m, lastID, max)
		return err
	})
	return evs, hw, err
}

// jsSinceOnce is one attempt of jsSince.
func (b *Bus) jsSinceOnce(ctx context.Context, m *matcher, lastID uint64, max int) ([]Event, uint64, error) {
	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return nil, 0, fmt.Errorf("bus: replay: %w", err)
	}
	state := st.CachedInfo().State
	end := state.LastSeq
	if lastID >= end || state.Msgs == 0 {
		return nil, end, nil
	}
	start := max64(lastID+1, state.FirstSeq)
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     m.subject(b.subj.evt),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bus: replay: %w", err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.DeleteConsumer(dctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.log.Debug("bus: delete replay consumer", "consumer", name, "err", err)
		}
	}()

	keep := newest{max: max}
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("bus: replay: %w", err)
		}
		batch, err := cons.FetchNoWait(int(min(pending, 256)))
		if err != nil {
			return nil, 0, fmt.Errorf("bus: replay: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("bus: replay: %w", err)
			}
			seq := md.Sequence.Stream
			pending = md.NumPending
			if seq >= end {
				pending = 0 // the rest arrives live
			}
			if seq > end {
				continue
			}
			t, ok := parseTail(strings.TrimPrefix(msg.Subject(), b.subj.evt))
			if !ok || !m.matchMeta(&t) {
				continue
			}
			ev, err := DecodeEvent(msg.Data())
			if err != nil {
				b.malformed.Add(1)
				continue
			}
			ev.ID = seq
			if m.matchName(ev.Name) {
				keep.push(ev)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, 0, fmt.Errorf("bus: replay: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return keep.events(), end, nil
}

// EventFromMsg decodes an event read from the JetStream event stream (for
// example by the webhook worker's consumer), setting its ID to the stream
// sequence.
func EventFromMsg(msg jetstream.Msg) (Event, error) {
	ev, err := DecodeEvent(msg.Data())
	if err != nil {
		return ev, err
	}
	if ev.ID == 0 {
		md, err := msg.Metadata()
		if err != nil {
			return ev, fmt.Errorf("bus: event metadata: %w", err)
		}
		ev.ID = md.Sequence.Stream
	}
	return ev, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// newest keeps the last max events pushed, in push order.
type newest struct {
	max int
	evs []Event
}

func (n *newest) push(e Event) {
	n.evs = append(n.evs, e)
	if len(n.evs) >= 2*n.max {
		k := copy(n.evs, n.evs[len(n.evs)-n.max:])
		clear(n.evs[k:])
		n.evs = n.evs[:k]
	}
}

func (n *newest) events() []Event {
	if len(n.evs) > n.max {
		return n.evs[len(n.evs)-n.max:]
	}
	return n.evs
}

// ring is the in-process replay window of ring mode: the last events this
// process published, bounded by count, encoded bytes and age.
type ring struct {
	mu       sync.Mutex
	max      int
	maxBytes int64
	window   time.Duration

	buf   []ringEntry // circular once it has grown to max
	head  int         // index of the oldest entry
	n     int
	bytes int64
	last  uint64 // ID of the newest entry ever added
}

type ringEntry struct {
	ev   Event
	m    meta
	size int
	at   time.Time
}

func newRing(max int, maxBytes int64, window time.Duration) *ring {
	return &ring{max: max, maxBytes: maxBytes, window: window}
}

func (r *ring) add(e Event, m meta, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = e.ID
	for r.n > 0 && (r.n >= r.max || r.bytes+int64(size) > r.maxBytes) {
		r.evict()
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = ringEntry{ev: e, m: m, size: size, at: time.Now()}
	r.n++
	r.bytes += int64(size)
}

func (r *ring) evict() {
	old := &r.buf[r.head]
	r.bytes -= int64(old.size)
	*old = ringEntry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// grow enlarges the buffer (doubling, up to max) and linearises it.
func (r *ring) grow() {
	size := min(max(2*len(r.buf), 64), r.max)
	nb := make([]ringEntry, size)
	for i := 0; i < r.n; i++ {
		nb[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = nb, 0
}

// since returns the selected entries with ID > after and younger than the
// window (at most max, the newest), and the newest ID added.
func (r *ring) since(m *matcher, after uint64, max int, now time.Time) ([]Event, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := now.Add(-r.window)
	keep := newest{max: max}
	// IDs increase along the ring: skip to the first one after `after`.
	first := sort.Search(r.n, func(i int) bool { return r.buf[(r.head+i)%len(r.buf)].ev.ID > after })
	for i := first; i < r.n; i++ {
		e := &r.buf[(r.head+i)%len(r.buf)]
		if e.at.Before(cutoff) || !m.matchMeta(&e.m) || !m.matchName(e.ev.Name) {
			continue
		}
		keep.push(e.ev)
	}
	return keep.events(), r.last
}
