package webhook

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// errQueueFull means a hook's queue holds Config.MaxQueuePerHook jobs; the
// new job is dropped (counted and logged), the event is not retried.
var errQueueFull = errors.New("webhook: hook queue full")

// A delivery is one job handed to a worker. The worker ends it with
// exactly one of ack (delivered, dropped, or replaced by a retry job) and
// later (hand it back, to be handed out again after d). A delivery ended
// with neither (the engine stopped mid-request) stays in a durable queue
// and is handed out again after a restart.
type delivery struct {
	job   job
	retry bool // from the hook's retry queue
	ack   func()
	later func(d time.Duration)
}

// A queue holds the delivery jobs of every hook: a fresh queue filled by
// the matcher and a retry queue filled by the workers, per hook.
type queue interface {
	// durable reports whether jobs survive a restart.
	durable() bool
	// enqueue appends fresh jobs, returning one error per job (nil:
	// accepted; durable queues return once the jobs are stored).
	enqueue(ctx context.Context, jobs []job) []error
	// requeue appends j to its hook's retry queue, to run at j.Due.
	requeue(ctx context.Context, j *job) error
	// consume hands the hook's fresh and due retry jobs to handle until
	// stop is called, with at most Config.Workers jobs outstanding at
	// once. done (nil for never) closes when consumption ends on its own
	// (another process took the hook over); the caller still calls stop.
	consume(ctx context.Context, hookID string, handle func(*delivery)) (stop func(), done <-chan struct{}, err error)
	// depth returns the queued (including outstanding) jobs per hook that
	// has any.
	depth(ctx context.Context) (map[string]int64, error)
	// purge removes every job of the hook.
	purge(ctx context.Context, hookID string) error
	// close releases the queue; memory queues lose their jobs.
	close()
}

// ---------------------------------------------------------------------------
// Memory

// memQueue is the fallback without JetStream: per hook a bounded FIFO of
// fresh jobs and a heap of retries ordered by due time. Nothing survives a
// restart.
type memQueue struct {
	limit    int // outstanding jobs per hook
	maxQueue int // fresh jobs per hook
	now      func() time.Time

	mu    sync.Mutex
	hooks map[string]*memHook
}

type memHook struct {
	fresh   []job // FIFO; fresh[head:] are queued
	head    int
	retries jobHeap
	out     int           // handed out, not yet ended
	wake    chan struct{} // capacity 1
}

func newMemQueue(limit, maxQueue int, now func() time.Time) *memQueue {
	return &memQueue{limit: limit, maxQueue: maxQueue, now: now, hooks: make(map[string]*memHook)}
}

func (q *memQueue) durable() bool { return false }

func (q *memQueue) close() {
	q.mu.Lock()
	q.hooks = make(map[string]*memHook)
	q.mu.Unlock()
}

// hook returns the hook's queue, creating it; q.mu must be held.
func (q *memQueue) hook(id string) *memHook {
	h := q.hooks[id]
	if h == nil {
		h = &memHook{wake: make(chan struct{}, 1)}
		q.hooks[id] = h
	}
	return h
}

func (h *memHook) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (q *memQueue) enqueue(_ context.Context, jobs []job) []error {
	errs := make([]error, len(jobs))
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range jobs {
		h := q.hook(jobs[i].HookID)
		if len(h.fresh)-h.head >= q.maxQueue {
			errs[i] = errQueueFull
			continue
		}
		if h.head > 0 && h.head == len(h.fresh) {
			clear(h.fresh)
			h.fresh, h.head = h.fresh[:0], 0
		}
		h.fresh = append(h.fresh, jobs[i])
		h.signal()
	}
	return errs
}

func (q *memQueue) requeue(_ context.Context, j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hook(j.HookID)
	if h.retries.Len() >= q.maxQueue {
		return errQueueFull
	}
	heap.Push(&h.retries, *j)
	h.signal()
	return nil
}

func (q *memQueue) consume(ctx context.Context, hookID string, handle func(*delivery)) (func(), <-chan struct{}, error) {
	q.mu.Lock()
	h := q.hook(hookID)
	q.mu.Unlock()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.dispatch(hookID, h, handle, stop)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
		})
	}, nil, nil
}

// dispatch hands out due jobs while fewer than limit are outstanding.
func (q *memQueue) dispatch(id string, h *memHook, handle func(*delivery), stop chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var ready []job
		var wait time.Duration = time.Hour
		q.mu.Lock()
		if q.hooks[id] != h { // purged
			q.mu.Unlock()
			return
		}
		now := q.now()
		for h.out+len(ready) < q.limit {
			if h.head < len(h.fresh) {
				ready = append(ready, h.fresh[h.head])
				h.fresh[h.head] = job{}
				h.head++
				continue
			}
			if h.retries.Len() > 0 {
				if d := h.retries[0].Due.Sub(now); d > 0 {
					wait = d
					break
				}
				ready = append(ready, heap.Pop(&h.retries).(job))
				continue
			}
			break
		}
		h.out += len(ready)
		q.mu.Unlock()
		for _, j := range ready {
			handle(q.delivery(h, j))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-stop:
			return
		case <-h.wake:
		case <-timer.C:
		}
	}
}

func (q *memQueue) delivery(h *memHook, j job) *delivery {
	var once sync.Once
	end := func(back *job) {
		once.Do(func() {
			q.mu.Lock()
			h.out--
			if back != nil {
				heap.Push(&h.retries, *back)
			}
			q.mu.Unlock()
			h.signal()
		})
	}
	return &delivery{
		job: j,
		ack: func() { end(nil) },
		later: func(d time.Duration) {
			b := j
			b.Due = q.now().Add(d)
			end(&b)
		},
	}
}

func (q *memQueue) depth(context.Context) (map[string]int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]int64)
	for id, h := range q.hooks {
		if n := int64(len(h.fresh) - h.head + h.retries.Len() + h.out); n > 0 {
			out[id] = n
		}
	}
	return out, nil
}

func (q *memQueue) purge(_ context.Context, hookID string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if h := q.hooks[hookID]; h != nil {
		delete(q.hooks, hookID)
		h.signal()
	}
	return nil
}

// jobHeap orders jobs by due time.
type jobHeap = dueHeap[job]

// dueHeap is a container/heap of jobs ordered by due time.
type dueHeap[T interface{ due() time.Time }] []T

func (h dueHeap[T]) Len() int           { return len(h) }
func (h dueHeap[T]) Less(i, j int) bool { return h[i].due().Before(h[j].due()) }
func (h dueHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap[T]) Push(x any)        { *h = append(*h, x.(T)) }
func (h *dueHeap[T]) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	var zero T
	old[n-1] = zero
	*h = old[:n-1]
	return x
}
