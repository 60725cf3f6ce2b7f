package device

import "sync"

// dispatcher runs application callbacks (function calls, event handlers)
// one at a time in submission order, like the firmware's application
// thread. Its goroutine exists only while work is queued, so an idle device
// costs no goroutine for it. The zero value is ready.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// maxQueued bounds the backlog of a device whose handlers are slower than
// the calls arriving; further work is dropped (the cloud times out).
const maxQueued = 64

// submit queues fn; it reports false when the backlog is full.
func (q *dispatcher) submit(fn func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) >= maxQueued {
		return false
	}
	q.queue = append(q.queue, fn)
	if !q.running {
		q.running = true
		go q.drain()
	}
	return true
}

func (q *dispatcher) drain() {
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			q.queue = nil // release the backing array while idle
			q.mu.Unlock()
			return
		}
		fn := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		q.mu.Unlock()
		fn()
	}
}
