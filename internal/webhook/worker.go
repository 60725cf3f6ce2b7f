package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/store"
)

// TestEventData is the data of the synthetic event TestWebhook sends.
const TestEventData = "test-event"

// logResponseBytes bounds the response body kept in a delivery-log entry.
const logResponseBytes = 1024

// A worker delivers one hook's jobs while the hook has any: it consumes
// the hook's fresh and retry queues and sends at most Config.Workers
// requests at once. Workers start when the matcher queues a job for their
// hook (or a scan finds queued jobs) and stop after Config.IdleAfter with
// an empty queue, so idle hooks cost nothing.
type worker struct {
	e      *Engine
	id     string
	c      *hookCounters
	sem    chan struct{} // one slot per request in flight
	last   atomic.Int64  // Unix nanoseconds of the last activity
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
}

func newWorker(e *Engine, id string, c *hookCounters) *worker {
	ctx, cancel := context.WithCancel(e.runCtx)
	w := &worker{e: e, id: id, c: c, sem: make(chan struct{}, e.cfg.Workers),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	w.touch()
	return w
}

func (w *worker) touch() { w.last.Store(w.e.cfg.Now().UnixNano()) }

// idle reports whether the worker has had nothing to do for at least d.
func (w *worker) idle(now time.Time, d time.Duration) bool {
	return w.c.inFlight.Load() == 0 && now.Sub(time.Unix(0, w.last.Load())) >= d
}

// run consumes the hook's queues until stop. While another process
// holds the hook (errLeased), it tries again with a growing pause.
func (w *worker) run() {
	defer close(w.done)
	wait := time.Second
	for {
		stop, done, err := w.e.currentQueue().consume(w.ctx, w.id, w.handle)
		if err == nil {
			select {
			case <-w.ctx.Done():
				stop()
				return
			case <-done:
				stop() // the lease was lost: try to take it back later
			}
		} else if w.ctx.Err() != nil {
			return
		} else if errors.Is(err, errLeased) {
			w.e.log.Debug("webhook: hook delivered by another process", "hook", w.id)
		} else {
			w.e.log.Warn("webhook: start worker", "hook", w.id, "err", err)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// stop ends consumption; deliveries in flight finish on their own.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// handle takes one job from the queue: a retry that is not due yet goes
// back until it is; otherwise it waits for a sending slot and is processed
// in its own goroutine.
func (w *worker) handle(d *delivery) {
	w.touch()
	e := w.e
	if !d.job.Due.IsZero() {
		if wait := d.job.Due.Sub(e.cfg.Now()); wait > 0 {
			d.later(wait)
			return
		}
	}
	e.inflight.Add(1)
	if !w.acquire() {
		d.later(0) // stopping: the next start takes it at once
		e.inflight.Add(-1)
		return
	}
	w.c.inFlight.Add(1)
	go func() {
		defer func() {
			w.c.inFlight.Add(-1)
			<-w.sem
			e.inflight.Add(-1)
			w.touch()
		}()
		e.process(d, w.c)
	}()
}

// acquire waits for a sending slot.
func (w *worker) acquire() bool {
	select {
	case w.sem <- struct{}{}:
		return true
	case <-w.e.runCtx.Done():
		return false
	}
}

// process delivers one job: it renders the request, honours the host's
// throttle, sends it, publishes the hook events, logs the attempt and
// acknowledges the job, queues its retry, or drops it.
func (e *Engine) process(d *delivery, c *hookCounters) {
	j := &d.job
	he := e.idx.get(j.HookID)
	if he == nil || he.h.Disabled {
		// Deleted (its queue is being purged) or disabled: never fires.
		c.dropped.Add(1)
		d.ack()
		return
	}
	now := e.cfg.Now()
	if now.Sub(j.Enqueued) > e.cfg.MaxAge {
		e.drop(d, c, e.note(j, fmt.Sprintf("dropped: not delivered within %s", e.cfg.MaxAge)))
		return
	}
	req, err := e.request(e.sendCtx, he, j.Event)
	if err != nil {
		// The request cannot be built or is refused by policy: retrying
		// would not change that.
		entry := e.note(j, err.Error())
		e.publish(ErrorEvents(&he.h, j.Event, err.Error(), nil)...)
		c.failed.Add(1)
		e.drop(d, c, entry)
		return
	}
	host := req.URL.Hostname()
	if !e.thr.allow(host, now) {
		e.skip(d, he, c, host)
		return
	}
	res := e.send(e.sendCtx, he, req)
	if e.sendCtx.Err() != nil {
		// Stopping: hand the job back. A durable queue keeps it and the
		// next holder of the hook's lease sends it (as after a crash).
		d.later(0)
		return
	}
	entry := res.entry(j)
	if res.forbidden {
		// The host resolved to an address the policy refuses: permanent.
		c.failed.Add(1)
		e.publish(ErrorEvents(&he.h, j.Event, res.message, nil)...)
		e.drop(d, c, entry)
		return
	}
	ok := res.status >= 200 && res.status < 300
	e.thr.record(host, ok, e.cfg.Now())
	if !ok {
		e.shareSleep(host)
	}
	if res.written {
		e.publish(SentEvent(&he.h, j.Event))
	}
	if ok {
		c.delivered.Add(1)
		evs, err := ResponseEvents(&he.h, j.Event, res.contentType, res.body)
		if err != nil {
			e.log.Debug("webhook: response events", "hook", he.h.ID, "err", err)
		}
		e.dlog.add(entry)
		e.publish(evs...)
		d.ack()
		return
	}
	c.failed.Add(1)
	e.publish(ErrorEvents(&he.h, j.Event, res.message, res.body)...)
	attempt := j.Attempt + 1
	if attempt > e.cfg.Retries {
		entry.Error += fmt.Sprintf("; giving up after %d attempts", attempt)
		e.drop(d, c, entry)
		return
	}
	delay := e.backoff(attempt)
	due := e.cfg.Now().Add(delay)
	if due.Sub(j.Enqueued) > e.cfg.MaxAge {
		entry.Error += fmt.Sprintf("; giving up: a retry would start more than %s after the event", e.cfg.MaxAge)
		e.drop(d, c, entry)
		return
	}
	e.dlog.add(entry)
	next := *j
	next.Attempt, next.Due = attempt, due
	e.retry(d, c, &next, delay)
}

// skip handles an attempt while the host sleeps: the job comes back after
// the next skip delay, or is dropped after the last one. The hook's owner
// gets a rate-limited "Sleeping" hook-error.
func (e *Engine) skip(d *delivery, he *hookEntry, c *hookCounters, host string) {
	j := &d.job
	c.skipped.Add(1)
	now := e.cfg.Now()
	if e.noticeDue(j.HookID, now) {
		e.publish(ErrorEvents(&he.h, j.Event, SleepingMessage, nil)...)
		e.dlog.add(e.note(j, fmt.Sprintf("skipped: %s is sleeping after too many errors (%s)", host, SleepingMessage)))
	}
	skips := j.Skips + 1
	delay, again := e.thr.skipDelay(skips)
	due := now.Add(delay)
	if !again || due.Sub(j.Enqueued) > e.cfg.MaxAge {
		e.drop(d, c, e.note(j, fmt.Sprintf("dropped: %s is sleeping after too many errors; skipped %d times", host, j.Skips+1)))
		return
	}
	next := *j
	next.Skips, next.Due = skips, due
	e.retry(d, c, &next, delay)
}

// retry queues the job's next attempt and ends this delivery.
func (e *Engine) retry(d *delivery, c *hookCounters, next *job, delay time.Duration) {
	q := e.currentQueue()
	ctx, cancel := context.WithTimeout(e.sendCtx, 10*time.Second)
	err := q.requeue(ctx, next)
	cancel()
	if err != nil {
		// Hand the job back instead; its counts are then not advanced, but
		// MaxAge still ends it.
		e.log.Warn("webhook: queue retry", "hook", next.HookID, "err", err)
		d.later(delay)
		return
	}
	c.retried.Add(1)
	d.ack()
}

// drop gives a job up with a final delivery-log entry.
func (e *Engine) drop(d *delivery, c *hookCounters, entry *store.WebhookDelivery) {
	c.dropped.Add(1)
	e.dlog.add(entry)
	d.ack()
}

// note is a delivery-log entry for something other than a request.
func (e *Engine) note(j *job, msg string) *store.WebhookDelivery {
	return &store.WebhookDelivery{
		WebhookID: j.HookID,
		EventID:   j.Event.ID,
		EventName: j.Event.Name,
		DeviceID:  j.Event.DeviceID,
		Attempt:   j.Attempt,
		At:        e.cfg.Now().UTC(),
		Error:     msg,
	}
}

// dropNotice logs a job that was dropped before it was queued.
func (e *Engine) dropNotice(id string, ev bus.Event, msg string) {
	e.dlog.add(e.note(&job{HookID: id, Event: ev}, msg))
}

// noticeDue reports whether the hook may get another "Sleeping" notice.
func (e *Engine) noticeDue(id string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if last, ok := e.notices[id]; ok && now.Sub(last) < e.cfg.Throttle.NoticeEvery {
		return false
	}
	e.notices[id] = now
	return true
}

// backoff is the delay before retry n (n ≥ 1): uniformly random in
// [d/2, d], d = min(BackoffMax, BackoffBase·2^(n-1)).
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.BackoffMax
	if n-1 < 32 {
		if b := e.cfg.BackoffBase << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// request renders hook he's request for ev and vets its URL.
func (e *Engine) request(ctx context.Context, he *hookEntry, ev bus.Event) (*http.Request, error) {
	if he.keyErr != nil {
		return nil, he.keyErr
	}
	req, err := BuildRequest(ctx, &he.h, ev, he.key)
	if err != nil {
		return nil, err
	}
	if err := e.out.CheckURL(req.URL.String()); err != nil {
		return nil, err
	}
	return req, nil
}

// result is the outcome of one request.
type result struct {
	at          time.Time
	method, url string
	status      int // 0: no response
	contentType string
	body        []byte
	latency     time.Duration
	written     bool   // the request was written to the connection
	forbidden   bool   // the outbound policy refused the connection
	message     string // hook-error data on failure
	err         string // delivery-log error on failure
}

// entry is the delivery-log entry of the result.
func (r *result) entry(j *job) *store.WebhookDelivery {
	resp := r.body
	if len(resp) > logResponseBytes {
		resp = resp[:logResponseBytes]
		for len(resp) > 0 && !utf8.Valid(resp) && len(r.body)-len(resp) < utf8.UTFMax {
			resp = resp[:len(resp)-1]
		}
	}
	return &store.WebhookDelivery{
		WebhookID: j.HookID,
		EventID:   j.Event.ID,
		EventName: j.Event.Name,
		DeviceID:  j.Event.DeviceID,
		Attempt:   j.Attempt + 1,
		At:        r.at,
		Method:    r.method,
		URL:       r.url,
		Status:    r.status,
		Latency:   r.latency,
		Error:     r.err,
		Response:  string(resp),
	}
}

// send performs the request with the hook's TLS setting and the timeout,
// reading at most MaxResponseBytes of the body.
func (e *Engine) send(parent context.Context, he *hookEntry, req *http.Request) result {
	// The latency starts before the timeout's clock, so that a request
	// that timed out shows at least the timeout.
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, e.cfg.Timeout)
	defer cancel()
	var written atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	client := e.clients[0]
	if !he.h.Settings.RejectUnauthorized {
		client = e.clients[1]
	}
	host := req.URL.Hostname()
	shown := *req.URL
	shown.User = nil
	r := result{at: e.cfg.Now().UTC(), method: req.Method, url: shown.String()}
	resp, err := client.Do(req)
	if err == nil {
		r.status = resp.StatusCode
		r.contentType = resp.Header.Get("Content-Type")
		r.body, err = io.ReadAll(io.LimitReader(resp.Body, int64(e.cfg.MaxResponseBytes)))
		resp.Body.Close()
		if err != nil && r.status >= 200 && r.status < 300 {
			err = nil // the receiver accepted the event; keep what was read
		}
	}
	r.latency = time.Since(start)
	r.written = written.Load()
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		r.message = fmt.Sprintf("error timeout after %s from %s", e.cfg.Timeout, host)
		r.err = fmt.Sprintf("timeout after %s", e.cfg.Timeout)
		if r.status != 0 {
			r.err = fmt.Sprintf("status %d, then timeout reading the body after %s", r.status, e.cfg.Timeout)
		}
	case err != nil && errors.Is(err, netguard.ErrForbidden):
		r.forbidden = true
		r.message = fmt.Sprintf("error connecting to %s: %s", host, cause(err))
		r.err = cause(err)
	case err != nil && r.status == 0:
		r.message = fmt.Sprintf("error connecting to %s: %s", host, cause(err))
		r.err = cause(err)
	case r.status < 200 || r.status > 299:
		r.message = fmt.Sprintf("error status %d from %s", r.status, host)
		r.err = fmt.Sprintf("status %d", r.status)
	}
	return r
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// cause strips the *url.Error wrapper ("Post \"http://...\": ...").
func cause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// TestWebhook sends a synthetic event (named after the hook's event
// prefix, data TestEventData) to h now, bypassing the queue and the
// throttle, and returns the attempt as written to the delivery log. The
// error is non-nil only when no attempt could be made (ctx ended).
func (e *Engine) TestWebhook(ctx context.Context, h *store.Webhook) (store.WebhookDelivery, error) {
	if err := ctx.Err(); err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("webhook: test: %w", err)
	}
	he := e.entry(h)
	dev := h.DeviceID
	if dev == "" {
		dev = bus.DeviceAPI
	}
	ev := bus.Event{
		Name:        h.Event,
		Data:        TestEventData,
		TTL:         bus.DefaultTTL,
		PublishedAt: e.cfg.Now().UTC(),
		DeviceID:    dev,
		UserID:      h.UserID,
		ProductID:   h.ProductID,
	}
	j := &job{HookID: h.ID, Event: ev}
	var entry *store.WebhookDelivery
	if req, err := e.request(ctx, he, ev); err != nil {
		entry = e.note(j, err.Error())
		entry.Attempt = 1
	} else {
		res := e.send(ctx, he, req)
		if ctx.Err() != nil {
			return store.WebhookDelivery{}, fmt.Errorf("webhook: test: %w", ctx.Err())
		}
		entry = res.entry(j)
	}
	if err := e.st.AddWebhookDeliveries(ctx, []*store.WebhookDelivery{entry}, e.cfg.LogKeep); err != nil {
		e.log.Warn("webhook: log test delivery", "hook", h.ID, "err", err)
	}
	return *entry, nil
}
