package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// matcherConsumer is the durable name of the matcher's consumer on the
// event stream; every process shares it, so each event is matched once.
const matcherConsumer = "webhook-matcher"

// matchBatch bounds the events matched (and jobs published) together.
const matchBatch = 512

// hookEntry is one hook as the engine uses it. Entries are immutable: a
// change replaces the entry.
type hookEntry struct {
	h      store.Webhook
	key    []byte // opened signing key; nil for none
	keyErr error  // the signing key could not be opened
}

// index holds every hook, keyed for matching: sandbox hooks by owner,
// product hooks by product. Triggers has the final say.
type index struct {
	mu        sync.RWMutex
	gen       uint64 // counts upserts and removals
	byID      map[string]*hookEntry
	byUser    map[string][]*hookEntry
	byProduct map[int64][]*hookEntry
	touched   map[string]uint64 // hook → gen of its last upsert or removal
}

func newIndex() *index {
	return &index{
		byID:      make(map[string]*hookEntry),
		byUser:    make(map[string][]*hookEntry),
		byProduct: make(map[int64][]*hookEntry),
		touched:   make(map[string]uint64),
	}
}

func (x *index) generation() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.gen
}

func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

func (x *index) get(id string) *hookEntry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byID[id]
}

// match calls fn for every hook that event ev triggers.
func (x *index) match(ev *bus.Event, fn func(*hookEntry)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if ev.UserID != "" {
		for _, he := range x.byUser[ev.UserID] {
			if Triggers(&he.h, *ev) {
				fn(he)
			}
		}
	}
	if ev.ProductID != 0 {
		for _, he := range x.byProduct[ev.ProductID] {
			if Triggers(&he.h, *ev) {
				fn(he)
			}
		}
	}
}

func (x *index) upsert(he *hookEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	x.touched[he.h.ID] = x.gen
	x.put(he)
}

func (x *index) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	x.touched[id] = x.gen
	x.drop(id)
}

// put adds or replaces he; x.mu must be held.
func (x *index) put(he *hookEntry) {
	x.drop(he.h.ID)
	x.byID[he.h.ID] = he
	if he.h.ProductID != 0 {
		x.byProduct[he.h.ProductID] = append(x.byProduct[he.h.ProductID], he)
	} else {
		x.byUser[he.h.UserID] = append(x.byUser[he.h.UserID], he)
	}
}

// drop removes hook id; x.mu must be held.
func (x *index) drop(id string) {
	old := x.byID[id]
	if old == nil {
		return
	}
	delete(x.byID, id)
	without := func(list []*hookEntry) []*hookEntry {
		out := make([]*hookEntry, 0, len(list))
		for _, he := range list {
			if he.h.ID != id {
				out = append(out, he)
			}
		}
		return out
	}
	if old.h.ProductID != 0 {
		if l := without(x.byProduct[old.h.ProductID]); len(l) > 0 {
			x.byProduct[old.h.ProductID] = l
		} else {
			delete(x.byProduct, old.h.ProductID)
		}
	} else {
		if l := without(x.byUser[old.h.UserID]); len(l) > 0 {
			x.byUser[old.h.UserID] = l
		} else {
			delete(x.byUser, old.h.UserID)
		}
	}
}

// replace installs a full load read from the store after generation gen.
// Hooks upserted or removed since gen keep their newer state. It returns
// the IDs of hooks that were indexed but are no longer.
func (x *index) replace(entries []*hookEntry, gen uint64) (removed []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	fresh := make(map[string]*hookEntry, len(entries))
	for _, he := range entries {
		fresh[he.h.ID] = he
	}
	for id, g := range x.touched {
		if g <= gen {
			delete(x.touched, id)
			continue
		}
		if cur := x.byID[id]; cur != nil {
			fresh[id] = cur
		} else {
			delete(fresh, id)
		}
	}
	for id := range x.byID {
		if fresh[id] == nil {
			removed = append(removed, id)
		}
	}
	x.byID = make(map[string]*hookEntry, len(fresh))
	x.byUser = make(map[string][]*hookEntry)
	x.byProduct = make(map[int64][]*hookEntry)
	for _, he := range fresh {
		x.put(he)
	}
	return removed
}

// startMatcher prepares the matcher's source of events and returns its
// loop: a durable consumer on the event stream with JetStream, a bus
// subscription without.
func (e *Engine) startMatcher(ctx context.Context) (func(context.Context), error) {
	if !e.durable {
		sub, err := e.bus.Subscribe(bus.Filter{}, 1<<16)
		if err != nil {
			return nil, fmt.Errorf("webhook: subscribe to events: %w", err)
		}
		return func(ctx context.Context) { e.matchRing(ctx, sub) }, nil
	}
	st, err := e.js.Stream(ctx, e.bus.EventStream())
	if err != nil {
		return nil, fmt.Errorf("webhook: event stream: %w", err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       matcherConsumer,
		Description:   "Wick webhook matcher (see docs/webhooks.md)",
		DeliverPolicy: jetstream.DeliverNewPolicy, // only when first created
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       15 * time.Second, // a batch is acknowledged within milliseconds
		MaxDeliver:    -1,
		MaxAckPending: 4 * matchBatch,
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = st.UpdateConsumer(ctx, cfg)
		if err != nil {
			cons, err = st.Consumer(ctx, matcherConsumer)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: matcher consumer: %w", err)
	}
	return func(ctx context.Context) { e.matchStream(ctx, cons) }, nil
}

// matchStream is the JetStream matcher loop: it takes the events in
// batches, queues one job per (event, triggered hook), waits until the
// queue has stored them and only then acknowledges the events. A crash in
// between makes the events come again (duplicates, never losses).
func (e *Engine) matchStream(ctx context.Context, cons jetstream.Consumer) {
	ch := make(chan jetstream.Msg, 2*matchBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-ctx.Done():
			_ = m.Nak() // stopping: the next matcher takes it at once
		}
	}, jetstream.PullMaxMessages(matchBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		e.log.Debug("webhook: matcher consume", "err", err)
	}))
	if err != nil {
		e.log.Error("webhook: matcher cannot consume events; NO WEBHOOKS WILL FIRE", "err", err)
		return
	}
	defer func() {
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
		for {
			select {
			case m := <-ch:
				_ = m.Nak()
			default:
				return
			}
		}
	}()
	batch := make([]jetstream.Msg, 0, matchBatch)
	evs := make([]bus.Event, 0, matchBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-ch:
			batch = append(batch, m)
		}
	more:
		for len(batch) < matchBatch {
			select {
			case m := <-ch:
				batch = append(batch, m)
			default:
				break more
			}
		}
		evs = evs[:0]
		bad := make([]bool, len(batch))
		for i, m := range batch {
			ev, err := bus.EventFromMsg(m)
			if err != nil {
				e.malformed.Add(1)
				bad[i] = true
			}
			evs = append(evs, ev)
		}
		failed := e.matchEvents(ctx, evs, bad)
		for i, m := range batch {
			switch {
			case bad[i]:
				_ = m.Term()
			case failed[i]:
				_ = m.NakWithDelay(time.Second)
			default:
				_ = m.Ack()
			}
		}
	}
}

// matchRing is the matcher without JetStream: events come from a bus
// subscription and go to the in-memory queue. Events the subscription
// drops (the matcher fell behind by 65,536 events) are lost and counted.
func (e *Engine) matchRing(ctx context.Context, sub *bus.Subscription) {
	defer sub.Close()
	evs := make([]bus.Event, 0, matchBatch)
	var warned uint64
	for {
		evs = evs[:0]
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Events():
			if !ok {
				return
			}
			evs = append(evs, ev)
		}
	more:
		for len(evs) < matchBatch {
			select {
			case ev, ok := <-sub.Events():
				if !ok {
					break more
				}
				evs = append(evs, ev)
			default:
				break more
			}
		}
		e.matchEvents(ctx, evs, make([]bool, len(evs)))
		if d := sub.Dropped(); d > warned {
			e.log.Error("webhook: matcher fell behind; events lost for webhooks (no JetStream)", "lost", d)
			warned = d
		}
	}
}

// matchEvents queues the jobs of a batch of events (skipping bad ones) and
// wakes the hooks' workers. failed[i] reports that a job of event i could
// not be queued and the event should come again.
func (e *Engine) matchEvents(ctx context.Context, evs []bus.Event, bad []bool) (failed []bool) {
	failed = make([]bool, len(evs))
	var jobs []job
	var owner []int
	now := e.cfg.Now()
	for i := range evs {
		if bad[i] {
			continue
		}
		e.events.Add(1)
		e.idx.match(&evs[i], func(he *hookEntry) {
			jobs = append(jobs, job{HookID: he.h.ID, Enqueued: now, Event: evs[i]})
			owner = append(owner, i)
		})
	}
	if len(jobs) == 0 {
		return failed
	}
	q := e.currentQueue()
	errs := q.enqueue(ctx, jobs)
	active := make(map[string]bool)
	for k, err := range errs {
		id := jobs[k].HookID
		switch {
		case err == nil:
			e.queued.Add(1)
			active[id] = true
		case errors.Is(err, errQueueFull):
			e.counter(id).dropped.Add(1)
			e.dropNotice(id, jobs[k].Event, "dropped: the hook's queue is full")
		default:
			failed[owner[k]] = true
			if ctx.Err() == nil {
				e.log.Warn("webhook: queue job", "hook", id, "event", jobs[k].Event.ID, "err", err)
			}
		}
	}
	for id := range active {
		e.activate(id)
	}
	return failed
}
