package webhook

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// deliveryLog buffers delivery-log entries and writes them to the store in
// batches from one background flusher. The buffer keeps at most keep
// entries per hook (the newest; the store keeps no more either) and at
// most max in all; beyond that new entries are dropped and counted, so a
// slow database never holds up delivery.
type deliveryLog struct {
	st    store.Webhooks
	log   *slog.Logger
	keep  int
	max   int
	every time.Duration

	mu      sync.Mutex
	pending map[string][]*store.WebhookDelivery // guarded by mu
	n       int                                 // entries in pending; guarded by mu

	flushMu sync.Mutex    // one flush at a time
	kick    chan struct{} // capacity 1: flush soon
	dropped atomic.Uint64 // entries lost to a full buffer or a failed write
	written atomic.Uint64
}

func newDeliveryLog(st store.Webhooks, keep, max int, every time.Duration, log *slog.Logger) *deliveryLog {
	return &deliveryLog{
		st: st, log: log, keep: keep, max: max, every: every,
		pending: make(map[string][]*store.WebhookDelivery),
		kick:    make(chan struct{}, 1),
	}
}

// add buffers one entry. It never blocks on the store.
func (l *deliveryLog) add(d *store.WebhookDelivery) {
	l.mu.Lock()
	list := l.pending[d.WebhookID]
	switch {
	case len(list) >= l.keep:
		// The oldest entry would be trimmed by the store anyway.
		copy(list, list[1:])
		list[len(list)-1] = d
	case l.n >= l.max:
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	default:
		l.pending[d.WebhookID] = append(list, d)
		l.n++
	}
	full := l.n >= l.max/2
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes every l.every, and early when half the buffer is used,
// until ctx ends. The final flush is the caller's (flush after run).
func (l *deliveryLog) run(ctx context.Context) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
		l.flush(ctx)
	}
}

// flush writes everything buffered in one store call.
func (l *deliveryLog) flush(ctx context.Context) {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if l.n == 0 {
		l.mu.Unlock()
		return
	}
	batch := make([]*store.WebhookDelivery, 0, l.n)
	for _, list := range l.pending {
		batch = append(batch, list...)
	}
	l.pending = make(map[string][]*store.WebhookDelivery, len(l.pending))
	l.n = 0
	l.mu.Unlock()
	if err := l.st.AddWebhookDeliveries(ctx, batch, l.keep); err != nil {
		l.dropped.Add(uint64(len(batch)))
		l.log.Warn("webhook: write delivery log", "entries", len(batch), "err", err)
		return
	}
	l.written.Add(uint64(len(batch)))
}
