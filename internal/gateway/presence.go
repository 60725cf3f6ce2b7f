package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// The presence writer records devices' connection state in the store for
// the whole gateway: onlines, offlines and last-heard times go into one
// queue and are written in batches, one transaction per batch
// (store.PresenceBatcher), by one goroutine. A batch that fails (a store
// timeout in a reconnect storm) goes back into the queue and is retried
// with a backoff until it is written, so a device that is connected always
// ends up listed online. Per device the queue keeps the updates in the
// order they were made (an offline never overtakes the online before it)
// and only what still matters: a new online replaces everything queued
// before it except offlines of sessions whose online is already written,
// and last-heard times keep the latest. Memory is thus bounded by the
// devices and their live sessions, whatever the store does.
//
// The write is not delayed to gather a batch: while one batch is written
// the next one gathers, so a quiet gateway writes each update at once and a
// storm writes hundreds per transaction. Sessions wait for their own
// update (bounded by their store timeout) before announcing the device, so
// spark/status online still follows the store as before; if the wait ends
// first, the session goes on and the update stays queued.

// Last-heard times of online devices are not written on every frame: each
// session keeps its device's in memory, and the flusher (gateway.go,
// every Config.LastHeardFlush) queues a device's time only once it is
// lastHeardStep past the time last written for it, lastHeardSteps flush
// periods (5 min with the default 30 s). An idle Gen 2 device pings every
// 15 s, so writing each flush cost one store update per two pings, about
// 15% of an idle server's CPU; now it is one per 20 pings. The stored
// last_heard (the API's) of an online device may thus be up to
// lastHeardStep + Config.LastHeardFlush old; the device's online flag says
// it is connected, its offline writes the exact time of its last frame,
// and only a node that dies without ending its sessions leaves them that
// coarse (docs/operations.md, "Idle CPU").
const lastHeardSteps = 10

// lastHeardStep is how far an online device's last-heard time moves before
// it is written again.
func (g *Gateway) lastHeardStep() time.Duration {
	return lastHeardSteps * g.cfg.LastHeardFlush
}

// Presence writer defaults.
const (
	presenceMaxBatch  = 512 // devices per transaction
	presenceRetryMin  = 20 * time.Millisecond
	presenceRetryMax  = 2 * time.Second
	presenceStoreWait = storeTimeout // one batch's write
)

// errPresenceClosed is the wait's error for an update still queued when
// the writer stopped.
var errPresenceClosed = errors.New("gateway: presence writer stopped")

// presenceOp is one online or offline of a device session.
type presenceOp struct {
	online *store.DeviceSession // set: an online; nil: an offline
	sid    string               // the session of an offline
	at     time.Time            // the offline's last-heard time

	done    chan struct{} // closed once written, or no longer to be written
	applied bool          // an offline took effect; set before done closes
	err     error         // set before done closes when not written
}

// wait waits until op is written (or dropped as superseded), or ctx ends.
func (op *presenceOp) wait(ctx context.Context) error {
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish releases op's waiters.
func (op *presenceOp) finish(applied bool, err error) {
	op.applied, op.err = applied, err
	close(op.done)
}

// presenceEntry is what is queued for one device: ops in order, then the
// latest last-heard time.
type presenceEntry struct {
	ops   []*presenceOp
	heard time.Time
}

// add appends op to e, dropping what op makes pointless: a new online
// supersedes every op queued before it except offlines of sessions whose
// online is not queued (already written: whether they apply depends on the
// store); an offline behind a queued online of another session, or a
// repeated offline, would change nothing.
func (e *presenceEntry) add(op *presenceOp) {
	if op.online != nil {
		queued := map[string]bool{} // sessions whose online is queued
		for _, o := range e.ops {
			if o.online != nil {
				queued[o.online.SessionID] = true
			}
		}
		kept := e.ops[:0]
		for _, o := range e.ops {
			switch {
			case o.online != nil:
				if op.online.ProductID == 0 && o.online.ProductID != 0 {
					op.online.ProductID = o.online.ProductID // keep a product move
				}
				o.finish(false, nil)
			case queued[o.sid]:
				// Its online is queued before it, so it would have applied.
				o.finish(true, nil)
			default:
				kept = append(kept, o)
				continue
			}
		}
		clear(e.ops[len(kept):])
		e.ops = append(kept, op)
		return
	}
	var last *presenceOp // the last online queued
	for _, o := range e.ops {
		if o.online != nil {
			last = o
		}
		if o.online == nil && o.sid == op.sid {
			op.finish(false, nil) // a repeat
			return
		}
	}
	if last != nil && last.online.SessionID != op.sid {
		op.finish(false, nil) // the device's session will be another one
		return
	}
	e.ops = append(e.ops, op)
}

// merge appends the ops and last-heard time of later, queued after e.
func (e *presenceEntry) merge(later *presenceEntry) {
	for _, op := range later.ops {
		e.add(op)
	}
	if later.heard.After(e.heard) {
		e.heard = later.heard
	}
}

// presenceWriter is the gateway's presence queue and its writer goroutine.
type presenceWriter struct {
	st       store.Store
	batcher  store.PresenceBatcher // nil: the store's one-device methods
	log      *slog.Logger
	maxBatch int
	retryMin time.Duration
	retryMax time.Duration
	// sessionWait bounds a session's wait for its own update.
	sessionWait time.Duration

	mu      sync.Mutex
	pending map[string]*presenceEntry // guarded by mu
	closing bool                      // guarded by mu
	wake    chan struct{}             // one token: something was queued
	stop    chan struct{}             // closed by close
	done    chan struct{}             // closed when run returns

	batches  atomic.Int64 // transactions written
	updates  atomic.Int64 // device entries written
	failures atomic.Int64 // failed batch writes (each retried)
}

// newPresenceWriter starts a presence writer on st.
func newPresenceWriter(st store.Store, log *slog.Logger) *presenceWriter {
	w := &presenceWriter{
		st:          st,
		log:         log,
		maxBatch:    presenceMaxBatch,
		retryMin:    presenceRetryMin,
		retryMax:    presenceRetryMax,
		sessionWait: storeTimeout,
		pending:     make(map[string]*presenceEntry),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	w.batcher, _ = st.(store.PresenceBatcher)
	go w.run()
	return w
}

// online queues a device's new session.
func (w *presenceWriter) online(id string, s store.DeviceSession) *presenceOp {
	return w.queue(id, &presenceOp{online: &s, done: make(chan struct{})})
}

// offline queues the end of a device's session, with its last-heard time.
func (w *presenceWriter) offline(id, sid string, at time.Time) *presenceOp {
	return w.queue(id, &presenceOp{sid: sid, at: at, done: make(chan struct{})})
}

// queue adds op to the device's entry. Once the writer has stopped, op is
// written at once by the caller's goroutine.
func (w *presenceWriter) queue(id string, op *presenceOp) *presenceOp {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		e := &presenceEntry{ops: []*presenceOp{op}}
		ctx, cancel := context.WithTimeout(context.Background(), presenceStoreWait)
		defer cancel()
		if err := w.write(ctx, map[string]*presenceEntry{id: e}); err != nil {
			op.finish(false, err)
		}
		return op
	}
	e := w.pending[id]
	if e == nil {
		e = &presenceEntry{}
		w.pending[id] = e
	}
	e.add(op)
	w.mu.Unlock()
	w.signal()
	return op
}

// touch queues last-heard times; the latest per device wins.
func (w *presenceWriter) touch(heard map[string]time.Time) {
	if len(heard) == 0 {
		return
	}
	w.mu.Lock()
	for id, t := range heard {
		e := w.pending[id]
		if e == nil {
			e = &presenceEntry{}
			w.pending[id] = e
		}
		if t.After(e.heard) {
			e.heard = t
		}
	}
	w.mu.Unlock()
	w.signal()
}

func (w *presenceWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// queued returns how many devices have updates waiting.
func (w *presenceWriter) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// take removes up to maxBatch devices' entries from the queue.
func (w *presenceWriter) take() map[string]*presenceEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	b := make(map[string]*presenceEntry, min(len(w.pending), w.maxBatch))
	for id, e := range w.pending {
		if len(b) == w.maxBatch {
			break
		}
		b[id] = e
		delete(w.pending, id)
	}
	return b
}

// putBack returns a batch that failed to the queue, ahead of what was
// queued for the same devices meanwhile.
func (w *presenceWriter) putBack(b map[string]*presenceEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, e := range b {
		if later := w.pending[id]; later != nil {
			e.merge(later)
		}
		w.pending[id] = e
	}
}

// run writes batches until close, retrying failed ones with a backoff.
func (w *presenceWriter) run() {
	defer close(w.done)
	backoff := time.Duration(0)
	for {
		b := w.take()
		if b == nil {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				if b = w.take(); b == nil {
					return
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), presenceStoreWait)
		err := w.write(ctx, b)
		cancel()
		if err == nil {
			backoff = 0
			continue
		}
		w.failures.Add(1)
		w.putBack(b)
		backoff = min(max(2*backoff, w.retryMin), w.retryMax)
		w.log.Warn("gateway: presence write failed; retrying", "devices", len(b), "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.stop:
			// Stopping: keep retrying at the backoff until close gives up.
			time.Sleep(backoff)
		}
	}
}

// write writes one batch and releases its ops' waiters.
func (w *presenceWriter) write(ctx context.Context, b map[string]*presenceEntry) error {
	var (
		ups []store.PresenceUpdate
		ops []*presenceOp // ops[i] is ups[i]'s op, nil for last heard only
	)
	for id, e := range b {
		for _, op := range e.ops {
			u := store.PresenceUpdate{DeviceID: id, Online: op.online}
			if op.online == nil {
				u.OfflineSession, u.OfflineAt = op.sid, op.at
			}
			ups = append(ups, u)
			ops = append(ops, op)
		}
		if !e.heard.IsZero() {
			if len(e.ops) > 0 {
				ups[len(ups)-1].LastHeard = e.heard
			} else {
				ups = append(ups, store.PresenceUpdate{DeviceID: id, LastHeard: e.heard})
				ops = append(ops, nil)
			}
		}
	}
	applied, err := w.apply(ctx, ups)
	if err != nil {
		return err
	}
	w.batches.Add(1)
	w.updates.Add(int64(len(b)))
	for i, op := range ops {
		if op != nil {
			op.finish(applied[i], nil)
		}
	}
	return nil
}

// apply writes updates in one transaction, or one by one with a store
// that cannot batch (each update is idempotent, so a retry after a partial
// write is harmless).
func (w *presenceWriter) apply(ctx context.Context, ups []store.PresenceUpdate) ([]bool, error) {
	if w.batcher != nil {
		return w.batcher.ApplyPresence(ctx, ups)
	}
	applied := make([]bool, len(ups))
	heard := map[string]time.Time{}
	for i, u := range ups {
		if u.Online != nil {
			if _, err := w.st.SetDeviceOnline(ctx, u.DeviceID, *u.Online); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		if u.OfflineSession != "" {
			ok, err := w.st.SetDeviceOffline(ctx, u.DeviceID, u.OfflineSession, u.OfflineAt)
			if err != nil {
				return nil, err
			}
			applied[i] = ok
		}
		if !u.LastHeard.IsZero() && u.LastHeard.After(heard[u.DeviceID]) {
			heard[u.DeviceID] = u.LastHeard
		}
	}
	if len(heard) > 0 {
		if err := w.st.TouchDevices(ctx, heard); err != nil {
			return nil, err
		}
	}
	return applied, nil
}

// close writes what is queued and stops the writer, or gives up when ctx
// ends (the updates left are lost, and their waiters released with an
// error). Updates queued after close are written by their caller.
func (w *presenceWriter) close(ctx context.Context) error {
	w.mu.Lock()
	already := w.closing
	w.closing = true
	w.mu.Unlock()
	if !already {
		close(w.stop)
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	n := len(w.pending)
	for id, e := range w.pending {
		for _, op := range e.ops {
			op.finish(false, errPresenceClosed)
		}
		delete(w.pending, id)
	}
	w.mu.Unlock()
	return fmt.Errorf("gateway: presence of %d devices not written: %w", n, ctx.Err())
}

// knownFresh is how long a device read by the DTLS restore or handshake
// check stands in for recordOnline's own read: a resumed Gen 3 session
// otherwise read its device twice within milliseconds (each read 6-8% of
// the server's CPU per resumption after a 50,000-device restart).
const knownFresh = time.Second

// remember keeps d, just read from the store, for the session's
// recordOnline.
func (s *session) remember(d *store.Device) {
	s.mu.Lock()
	s.known, s.knownAt = d, time.Now().UnixNano()
	s.mu.Unlock()
}

// takeKnown returns, once, the device remember kept if it was read at
// most knownFresh ago, or nil.
func (s *session) takeKnown() *store.Device {
	s.mu.Lock()
	d, at := s.known, s.knownAt
	s.known = nil
	s.mu.Unlock()
	if d == nil || time.Since(time.Unix(0, at)) > knownFresh {
		return nil
	}
	return d
}

// recordOnline records the session's device online through the presence
// writer and returns the device as that write leaves it. It fails only
// when the device cannot be read (nothing is then written); a write that
// does not complete in time stays queued and the session goes on.
func (s *session) recordOnline(ctx context.Context, sess store.DeviceSession) (*store.Device, error) {
	g := s.g
	d := s.takeKnown()
	if d == nil {
		var err error
		if d, err = g.store.DeviceByID(ctx, s.id); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, g.presence.sessionWait)
	defer cancel()
	if err := g.presence.online(s.id, sess).wait(wctx); err != nil {
		g.log.Warn("gateway: device online not stored yet; the write stays queued", "device", s.id, "err", err)
	}
	at := sess.At
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Millisecond)
	d.Online, d.Node, d.SessionID, d.LastIP = true, sess.Node, sess.SessionID, sess.IP
	d.LastHandshakeAt = &at
	if d.LastHeard == nil || d.LastHeard.Before(at) {
		d.LastHeard = &at
	}
	d.PlatformID, d.ProductVersion, d.SystemModuleVersion = sess.PlatformID, sess.ProductVersion, sess.SystemModuleVersion
	if sess.ProductID != 0 {
		d.ProductID = sess.ProductID
	}
	return d, nil
}

// recordOffline records the end of the session through the presence
// writer and reports whether it applied (the session was still the
// device's). An error means the write did not complete in time; it stays
// queued.
func (s *session) recordOffline(ctx context.Context, at time.Time) (bool, error) {
	op := s.g.presence.offline(s.id, s.sid, at)
	wctx, cancel := context.WithTimeout(ctx, s.g.presence.sessionWait)
	defer cancel()
	if err := op.wait(wctx); err != nil {
		return false, fmt.Errorf("gateway: device offline not stored yet (the write stays queued): %w", err)
	}
	return op.applied, nil
}
