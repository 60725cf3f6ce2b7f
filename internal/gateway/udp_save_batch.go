package gateway

// Batched saves of ended Gen 3 sessions: when many sessions end at once (a
// shutdown of a gateway holding tens of thousands, a wave of idle
// timeouts), their saves are written a batch per store transaction
// (store.DTLSSessionBatches) instead of one transaction each. A session's
// goroutine waits for its own save (save), so the order of udpConn.save
// (reservation stored, then seqLimit raised) is unchanged; at a shutdown
// it only queues it (enqueue) and ends, and the outcome is applied when
// the batch is written (udpConn.saveState), so that tens of thousands of
// goroutines do not wait for their batches (20,000 sessions shut down in
// process in 11.75 s with waits and batches of 256, in 6.27 s queued in
// batches of 2,000; load 15-20).

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// saveBatchMax is the most sessions one transaction saves: on
// PostgreSQL a batch is two statements whatever its size, 2,000 sessions
// cost 39 µs each there against 80 µs in batches of 256 (and 21 against
// 29 µs on SQLite; BenchmarkDTLSSessionSaves, load 12).
const saveBatchMax = 2000

// shutdownSaveTimeout is the deadline of a batch that holds a shutdown's
// saves, instead of storeTimeout: the shutdown's own limit bounds them
// (Shutdown waits for them no longer), and a writer preempted behind the
// tens of thousands of goroutines a shutdown wakes may get the CPU back
// only after they all ended. In a 50,000-device storm (docs/operations.md,
// "The DTLS saves of a shutdown") the first batch of 2,000, far less than
// a second of store work, failed on a 10 s deadline 18 s after SIGTERM,
// and with it every save queued behind it.
const shutdownSaveTimeout = time.Minute

// saveBatcher groups concurrent saves: the first save starts a writer,
// and the saves that arrive while it writes go in its next transaction.
// The zero value is ready; its writer runs only while saves wait.
type saveBatcher struct {
	mu      sync.Mutex
	pending []*batchedSave
	running bool
	// failing is set while the last batch failed (a store that hangs or
	// errs): then a save that waited maxWait fails unwritten.
	failing bool
	maxWait time.Duration // 0: storeTimeout
	// patientTimeout is the deadline of a batch with a shutdown's saves;
	// 0: shutdownSaveTimeout.
	patientTimeout time.Duration
	max            int // the most sessions per batch; 0: saveBatchMax
}

// batchedSave is one session waiting for its batch.
type batchedSave struct {
	st   store.DTLSSession
	old  []byte    // the state st replaces (store.DTLSSessions.ClaimDTLSSession)
	at   time.Time // when it began to wait
	done func(saved bool, err error)
	// patient marks a shutdown's save: its batch has shutdownSaveTimeout,
	// and it is never failed unwritten for its wait.
	patient bool
}

// batchResult is the outcome of one batched save.
type batchResult struct {
	saved bool
	err   error
}

// save writes st in a batch of bs, conditional on old as
// store.DTLSSessions.ClaimDTLSSession is, and returns its outcome once the
// batch is written: saved false when the stored state was not old (or,
// old nil, the device is absent).
func (b *saveBatcher) save(bs store.DTLSSessionBatches, st store.DTLSSession, old []byte) (saved bool, err error) {
	ch := make(chan batchResult, 1)
	b.enqueue(bs, st, old, false, func(saved bool, err error) { ch <- batchResult{saved, err} })
	r := <-ch
	return r.saved, r.err
}

// enqueue is save without the wait: done gets the outcome, on the
// writer's goroutine, once the batch is written (it must not block).
// patient marks a shutdown's save (batchedSave.patient).
func (b *saveBatcher) enqueue(bs store.DTLSSessionBatches, st store.DTLSSession, old []byte, patient bool, done func(saved bool, err error)) {
	req := &batchedSave{st: st, old: old, at: time.Now(), done: done, patient: patient}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.write(bs)
	}
}

// write saves batches until none waits.
func (b *saveBatcher) write(bs store.DTLSSessionBatches) {
	size := cmp.Or(b.max, saveBatchMax)
	batch := make([]*batchedSave, 0, size)
	sts := make([]store.DTLSSession, 0, size)
	olds := make([][]byte, 0, size)
	for {
		b.mu.Lock()
		n := min(len(b.pending), size)
		if n == 0 {
			b.pending, b.running = nil, false
			b.mu.Unlock()
			return
		}
		batch = append(batch[:0], b.pending[:n]...)
		clear(b.pending[:n])
		b.pending = b.pending[n:]
		failing := b.failing
		b.mu.Unlock()
		// While the store fails (hangs, batches timing out one after
		// another), a save that waited maxWait already fails unwritten,
		// as its own transaction would have: no session waits for more
		// than about two store deadlines. A store that works but is
		// behind (a shutdown's hundred thousand saves at once) writes
		// them all, however long they waited. A shutdown's saves are
		// always tried: the shutdown's limit bounds them.
		if failing {
			now, keep := time.Now(), batch[:0]
			for _, r := range batch {
				if !r.patient && now.Sub(r.at) >= cmp.Or(b.maxWait, storeTimeout) {
					r.done(false, context.DeadlineExceeded)
					continue
				}
				keep = append(keep, r)
			}
			batch = keep
			if len(batch) == 0 {
				continue
			}
		}
		sts, olds = sts[:0], olds[:0]
		timeout := storeTimeout
		for _, r := range batch {
			sts = append(sts, r.st)
			olds = append(olds, r.old)
			if r.patient {
				timeout = cmp.Or(b.patientTimeout, shutdownSaveTimeout)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		saved, err := bs.SaveDTLSSessions(ctx, sts, olds)
		cancel()
		b.mu.Lock()
		b.failing = err != nil
		b.mu.Unlock()
		for i, r := range batch {
			if err != nil {
				r.done(false, err)
				continue
			}
			r.done(saved[i], nil)
		}
		clear(batch)
	}
}
