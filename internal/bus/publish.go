package bus

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxNameLen bounds event names on the bus (Particle allows 64; the API
// and gateway enforce their own limits, this only guards the bus).
const maxNameLen = 255

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Publish accepts an event and hands it to every matching subscriber in
// every process. It returns once the event is accepted: stored in the
// JetStream stream (JetStream mode) or written to NATS and the replay ring
// (ring mode). It never waits for subscribers; a subscriber whose buffer is
// full loses the event (counted), not the publisher its time.
//
// Publish assigns e.ID, sets PublishedAt to now when zero and TTL to
// DefaultTTL when zero.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	if e.Name == "" || len(e.Name) > maxNameLen {
		return fmt.Errorf("bus: publish: invalid event name length %d", len(e.Name))
	}
	if b.isClosed() {
		return ErrClosed
	}
	if e.PublishedAt.IsZero() {
		e.PublishedAt = time.Now()
	}
	if e.TTL == 0 {
		e.TTL = DefaultTTL
	}
	e.PublishedAt = e.PublishedAt.UTC()
	m := metaOf(&e)
	tail := m.tail()

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	if b.js != nil {
		data := appendEvent((*bp)[:0], &e, 0)
		*bp = data
		if _, err := b.js.Publish(ctx, b.subj.evt+tail, data); err != nil {
			if b.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("bus: publish %q: %w", e.Name, err)
		}
		b.published.Add(1)
		return nil
	}

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: publish %q: %w", e.Name, err)
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	id := b.nextID + 1
	data := appendEvent((*bp)[:0], &e, id)
	*bp = data
	if err := b.nc.Publish(b.subj.live+tail, data); err != nil {
		if b.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("bus: publish %q: %w", e.Name, err)
	}
	b.nextID = id
	e.ID = id
	b.ring.add(e, m, len(data))
	b.published.Add(1)
	return nil
}

func (b *Bus) isClosed() bool { return b.down.Load() }
