package webhook

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/bus"
)

// errQueueFull means a hook's queue holds Config.MaxQueuePerHook jobs; the
// new job is dropped (counted and logged), the event is not retried.
var errQueueFull = errors.New("webhook: hook queue full")

// A delivery is one job handed to a worker. The worker ends it with
// exactly one of ack (delivered, dropped, or replaced by a retry job) and
// later (hand it back, to be redelivered after d). A delivery ended with
// neither (the engine stopped mid-request) is redelivered by a durable
// queue after its ack deadline.
type delivery struct {
	job   job
	retry bool // from the hook's retry queue
	ack   func()
	later func(d time.Duration)
	// progress pushes the ack deadline out while the job waits for a
	// sending slot.
	progress func()
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
	// stop is called. At most `limit` fresh jobs are outstanding at once.
	consume(ctx context.Context, hookID string, handle func(*delivery)) (stop func(), err error)
	// depth returns the queued (including outstanding) jobs per hook that
	// has any.
	depth(ctx context.Context) (map[string]int64, error)
	// purge removes every job of the hook.
	purge(ctx context.Context, hookID string) error
	// close releases the queue; memory queues lose their jobs.
	close()
}

// ---------------------------------------------------------------------------
// JetStream

// jsQueue is the durable queue: the work-queue stream <P>_HOOKS with the
// subjects P.hook.<hook> (fresh jobs) and P.hook.<hook>.retry, and two
// durable pull consumers per active hook. See docs/webhooks.md.
type jsQueue struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	base   string // "P.hook."

	limit       int           // MaxAckPending of a hook's fresh consumer (Config.Workers)
	retryLimit  int           // MaxAckPending of a hook's retry consumer
	ackWait     time.Duration // longer than a request
	inactive    time.Duration // idle consumers are removed by the server after this
	dedupWindow time.Duration
}

// hooksStreamName derives the queue stream's name from the subject prefix
// the way the bus names its event stream.
func hooksStreamName(prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_HOOKS"
}

// newJSQueue creates or updates the queue stream.
func newJSQueue(ctx context.Context, js jetstream.JetStream, prefix string, cfg *Config, log *slog.Logger) (*jsQueue, error) {
	q := &jsQueue{
		js:          js,
		log:         log,
		base:        prefix + ".hook.",
		limit:       cfg.Workers,
		retryLimit:  retryPending,
		ackWait:     cfg.Timeout + ackMargin,
		inactive:    time.Hour,
		dedupWindow: cfg.DedupWindow,
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 hooksStreamName(prefix),
		Description:          "Wick webhook deliveries: a work queue per hook (see docs/webhooks.md)",
		Subjects:             []string{q.base + ">"},
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              jetstream.FileStorage,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    cfg.MaxQueuePerHook,
		MaxAge:               cfg.MaxAge + time.Hour,
		Duplicates:           cfg.DedupWindow,
		Replicas:             1,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: create queue stream: %w", err)
	}
	q.stream = st
	return q, nil
}

// ackMargin is the ack wait of a hook's consumers beyond the request
// timeout: the time to publish the hook events and queue a retry (a worker
// that sent a slow request renews the deadline first). A job in flight when
// the process dies is delivered again this long after the timeout.
const ackMargin = 10 * time.Second

// retryPending bounds the retry jobs a hook's retry consumer holds at once
// (waiting for their backoff to pass); further ones wait in the stream.
const retryPending = 1024

func (q *jsQueue) durable() bool { return true }
func (q *jsQueue) close()        {}

// tailSubject holds the ballast message (see keepTail). "~tail" is no
// escaped hook ID, so depth ignores it.
func (q *jsQueue) tailSubject() string { return q.base + "~tail" }

// keepTail publishes a tiny ballast message every interval and deletes
// the previous one, until ctx ends, so that the stream's last block
// always holds a live message. Without it, in a work-queue stream that
// also holds long-lived jobs (a failing hook's retries, a slow hook's
// backlog), every acknowledgement that empties the last block makes the
// server start a new block, which it cannot delete while the old jobs
// remain (it carries a tombstone) and which keeps a 256 KiB buffer for
// 10 s: a healthy hook at 100 deliveries/s would cost some 250 MiB.
// (nats-server 2.15 filestore; measured in docs/webhooks.md.)
func (q *jsQueue) keepTail(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := q.js.Publish(ctx, q.tailSubject(), nil); err == nil {
			_ = q.stream.Purge(ctx, jetstream.WithPurgeSubject(q.tailSubject()), jetstream.WithPurgeKeep(1))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (q *jsQueue) freshSubject(hookID string) string { return q.base + bus.EscapeToken(hookID) }
func (q *jsQueue) retrySubject(hookID string) string {
	return q.base + bus.EscapeToken(hookID) + ".retry"
}

// consumerNames are the durable names of a hook's two consumers.
func consumerNames(hookID string) (fresh, retry string) {
	tok := bus.EscapeToken(hookID)
	return "hook-" + tok, "hook-" + tok + "-retry"
}

func (q *jsQueue) enqueue(ctx context.Context, jobs []job) []error {
	errs := make([]error, len(jobs))
	futs := make([]jetstream.PubAckFuture, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		m := &nats.Msg{Subject: q.freshSubject(j.HookID), Data: appendJob(nil, j)}
		var opts []jetstream.PublishOpt
		if q.dedupWindow > 0 && j.Event.ID != 0 {
			// A batch matched again after a crash or a failed publish is
			// stored once (within the window).
			opts = append(opts, jetstream.WithMsgID(j.HookID+":"+strconv.FormatUint(j.Event.ID, 10)))
		}
		futs[i], errs[i] = q.js.PublishMsgAsync(m, opts...)
	}
	for i, f := range futs {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = classifyPublish(err)
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

// classifyPublish maps the stream's per-subject limit to errQueueFull.
func classifyPublish(err error) error {
	if err != nil && strings.Contains(err.Error(), "maximum messages per subject exceeded") {
		return fmt.Errorf("%w: %v", errQueueFull, err)
	}
	return err
}

func (q *jsQueue) requeue(ctx context.Context, j *job) error {
	_, err := q.js.PublishMsg(ctx, &nats.Msg{Subject: q.retrySubject(j.HookID), Data: appendJob(nil, j)})
	if err != nil {
		return fmt.Errorf("webhook: requeue: %w", classifyPublish(err))
	}
	return nil
}

func (q *jsQueue) consume(ctx context.Context, hookID string, handle func(*delivery)) (func(), error) {
	freshName, retryName := consumerNames(hookID)
	cons := func(name, subject string, limit int) (jetstream.Consumer, error) {
		return q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:           name,
			Description:       "webhook deliveries of hook " + hookID,
			FilterSubject:     subject,
			DeliverPolicy:     jetstream.DeliverAllPolicy,
			AckPolicy:         jetstream.AckExplicitPolicy,
			AckWait:           q.ackWait,
			MaxDeliver:        -1,
			MaxAckPending:     limit,
			InactiveThreshold: q.inactive,
		})
	}
	fresh, err := cons(freshName, q.freshSubject(hookID), q.limit)
	if err != nil {
		return nil, fmt.Errorf("webhook: consumer %s: %w", freshName, err)
	}
	retry, err := cons(retryName, q.retrySubject(hookID), q.retryLimit)
	if err != nil {
		return nil, fmt.Errorf("webhook: consumer %s: %w", retryName, err)
	}
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		q.log.Debug("webhook: consume", "hook", hookID, "err", err)
	})
	wrap := func(isRetry bool) jetstream.MessageHandler {
		return func(m jetstream.Msg) {
			j, err := decodeJob(m.Data())
			if err != nil {
				q.log.Warn("webhook: dropping undecodable job", "subject", m.Subject(), "err", err)
				_ = m.Term()
				return
			}
			handle(&delivery{
				job:      j,
				retry:    isRetry,
				ack:      func() { _ = m.Ack() },
				later:    func(d time.Duration) { _ = m.NakWithDelay(max(d, time.Millisecond)) },
				progress: func() { _ = m.InProgress() },
			})
		}
	}
	fc, err := fresh.Consume(wrap(false), jetstream.PullMaxMessages(q.limit), onErr)
	if err != nil {
		return nil, fmt.Errorf("webhook: consume %s: %w", freshName, err)
	}
	rc, err := retry.Consume(wrap(true), jetstream.PullMaxMessages(min(q.retryLimit, 64)), onErr)
	if err != nil {
		fc.Stop()
		return nil, fmt.Errorf("webhook: consume %s: %w", retryName, err)
	}
	return func() {
		fc.Stop()
		rc.Stop()
		// Wait until both pull subscriptions are gone, so that the server
		// sends nothing more to them (it would count as delivered and come
		// back only after the ack wait).
		for _, cc := range []jetstream.ConsumeContext{fc, rc} {
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
		}
	}, nil
}

func (q *jsQueue) depth(ctx context.Context) (map[string]int64, error) {
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(q.base+">"))
	if err != nil {
		return nil, fmt.Errorf("webhook: queue depth: %w", err)
	}
	out := make(map[string]int64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		tok, _ := strings.CutSuffix(strings.TrimPrefix(subj, q.base), ".retry")
		id, ok := bus.UnescapeToken(tok)
		if !ok || n == 0 {
			continue
		}
		out[id] += int64(n)
	}
	return out, nil
}

func (q *jsQueue) purge(ctx context.Context, hookID string) error {
	var errs []error
	f, r := consumerNames(hookID)
	for _, name := range []string{f, r} {
		if err := q.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, err)
		}
	}
	for _, subj := range []string{q.freshSubject(hookID), q.retrySubject(hookID)} {
		if err := q.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("webhook: purge hook %s: %w", hookID, err)
	}
	return nil
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

func (q *memQueue) consume(ctx context.Context, hookID string, handle func(*delivery)) (func(), error) {
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
	}, nil
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
		progress: func() {},
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
type jobHeap []job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].Due.Before(h[j].Due) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(job)) }
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = job{}
	*h = old[:n-1]
	return x
}
