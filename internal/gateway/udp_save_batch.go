package gateway

// Batched saves of ended Gen 3 sessions: when many sessions end at once (a
// shutdown of a gateway holding tens of thousands, a wave of idle
// timeouts), their saves are written a batch per store transaction
// (store.DTLSSessionBatches) instead of one transaction each. Each
// session's goroutine still waits for its own save, so the order of
// udpConn.save (reservation stored, then seqLimit raised) is unchanged.

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// saveBatchMax is the most sessions one transaction saves.
const saveBatchMax = 256

// saveBatcher groups concurrent saves: the first save starts a writer,
// and the saves that arrive while it writes go in its next transaction.
// The zero value is ready; its writer runs only while saves wait.
type saveBatcher struct {
	mu      sync.Mutex
	pending []*batchedSave
	running bool
	maxWait time.Duration // how long a save may wait for its batch; 0: storeTimeout
}

// batchedSave is one session waiting for its batch.
type batchedSave struct {
	st   store.DTLSSession
	old  []byte    // the state st replaces (store.DTLSSessions.ClaimDTLSSession)
	at   time.Time // when it began to wait
	done chan batchResult
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
	req := &batchedSave{st: st, old: old, at: time.Now(), done: make(chan batchResult, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.write(bs)
	}
	r := <-req.done
	return r.saved, r.err
}

// write saves batches until none waits.
func (b *saveBatcher) write(bs store.DTLSSessionBatches) {
	batch := make([]*batchedSave, 0, saveBatchMax)
	sts := make([]store.DTLSSession, 0, saveBatchMax)
	olds := make([][]byte, 0, saveBatchMax)
	for {
		b.mu.Lock()
		n := min(len(b.pending), saveBatchMax)
		if n == 0 {
			b.pending, b.running = nil, false
			b.mu.Unlock()
			return
		}
		batch = append(batch[:0], b.pending[:n]...)
		clear(b.pending[:n])
		b.pending = b.pending[n:]
		b.mu.Unlock()
		// A save that waited maxWait already (a store that hangs,
		// batches timing out one after another) fails unwritten, as its
		// own transaction would have: no session waits for more than
		// about two store deadlines.
		now, keep := time.Now(), batch[:0]
		for _, r := range batch {
			if now.Sub(r.at) >= cmp.Or(b.maxWait, storeTimeout) {
				r.done <- batchResult{err: context.DeadlineExceeded}
				continue
			}
			keep = append(keep, r)
		}
		batch = keep
		if len(batch) == 0 {
			continue
		}
		sts, olds = sts[:0], olds[:0]
		for _, r := range batch {
			sts = append(sts, r.st)
			olds = append(olds, r.old)
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		saved, err := bs.SaveDTLSSessions(ctx, sts, olds)
		cancel()
		for i, r := range batch {
			if err != nil {
				r.done <- batchResult{err: err}
				continue
			}
			r.done <- batchResult{saved: saved[i]}
		}
	}
}
