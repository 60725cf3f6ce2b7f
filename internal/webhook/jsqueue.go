package webhook

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/bus"
)

// errLeased means another Wick process delivers the hook's jobs now.
var errLeased = errors.New("webhook: hook leased by another process")

// jsQueue is the durable queue: the stream <P>_HOOKS with the subjects
// P.hook.<hook> (fresh jobs) and P.hook.<hook>.retry. No JetStream
// consumer reads it: the process that holds a hook's lease (a key in the
// memory-stored bucket <P>_hook_leases) reads the hook's jobs by sequence
// with direct gets and deletes each job when it is done. So the number of
// hooks costs the NATS server nothing but subjects, and no tenant can use
// up a per-stream consumer limit. See docs/webhooks.md, Delivery.
type jsQueue struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.Stream
	leases jetstream.KeyValue
	get    string // the stream's direct-get API subject
	log    *slog.Logger
	base   string // "P.hook."
	wakes  string // P.hookwake: hooks with new jobs, for the other processes
	origin string // this process in lease values

	limit      int           // jobs outstanding per hook (Config.Workers)
	retryAhead int           // retry jobs read ahead per hook, waiting for their time
	leaseTTL   time.Duration // a lease not renewed for this long lapses
	poll       time.Duration // a reader looks for jobs at least this often
	dedup      time.Duration
	now        func() time.Time

	mu      sync.Mutex
	readers map[string]*jsReader // guarded by mu
	wakeSub *nats.Subscription

	// published is set after this process publishes jobs, and keepTail
	// clears it when it moves the ballast behind them.
	published atomic.Bool
}

// Queue tuning (see docs/webhooks.md, Delivery).
const (
	// retryAhead bounds the retry jobs a hook's reader holds in memory
	// waiting for their due time; later ones wait in the stream.
	retryAhead = 1024
	// leaseTTL is how long a dead process's hooks wait before another
	// process takes them over (external NATS; the embedded server loses
	// its leases when the process ends).
	leaseTTL = 30 * time.Second
	// readerPoll is the safety-net interval at which an idle reader looks
	// for jobs it was not told about (every process announces the jobs it
	// queues on P.hookwake, so this is rarely needed).
	readerPoll = 30 * time.Second
)

// hooksStreamName derives the queue stream's name from the subject prefix
// the way the bus names its event stream.
func hooksStreamName(prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_HOOKS"
}

// leaseBucketName is the key-value bucket of the hook leases.
func leaseBucketName(prefix string) string {
	return strings.ReplaceAll(prefix, ".", "_") + "_hook_leases"
}

// legacyConsumerPrefix starts the names of the per-hook consumers of
// earlier versions, which newJSQueue deletes.
const legacyConsumerPrefix = "hook-"

// newJSQueue creates or updates the queue stream and the lease bucket,
// and removes consumers left by earlier versions.
func newJSQueue(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, prefix, origin string, cfg *Config, log *slog.Logger) (*jsQueue, error) {
	q := &jsQueue{
		js:         js,
		nc:         nc,
		log:        log,
		base:       prefix + ".hook.",
		wakes:      prefix + ".hookwake",
		origin:     origin,
		limit:      cfg.Workers,
		retryAhead: retryAhead,
		leaseTTL:   leaseTTL,
		poll:       readerPoll,
		dedup:      cfg.DedupWindow,
		now:        cfg.Now,
		readers:    make(map[string]*jsReader),
	}
	hooksConfig := jetstream.StreamConfig{
		Name:                 hooksStreamName(prefix),
		Description:          "Wick webhook deliveries: a job queue per hook (see docs/webhooks.md)",
		Subjects:             []string{q.base + ">"},
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              jetstream.FileStorage,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    cfg.MaxQueuePerHook,
		MaxAge:               cfg.MaxAge + time.Hour,
		Duplicates:           cfg.DedupWindow,
		Replicas:             max(cfg.Replicas, 1),
		AllowDirect:          true,
	}
	// Retried: nodes starting together race on a fresh NATS cluster.
	var st jetstream.Stream
	err := bus.RetrySetup(ctx, log, "webhook queue stream", func(ctx context.Context) (err error) {
		st, err = js.CreateOrUpdateStream(ctx, hooksConfig)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: create queue stream: %w", err)
	}
	q.stream = st
	q.get = directGetPrefix + hooksStreamName(prefix)
	if err := q.dropLegacyConsumers(ctx); err != nil {
		return nil, err
	}
	leaseConfig := jetstream.KeyValueConfig{
		Bucket:      leaseBucketName(prefix),
		Description: "Wick webhook leases: which process delivers a hook's jobs (see docs/webhooks.md)",
		TTL:         q.leaseTTL,
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(cfg.Replicas, 1),
	}
	err = bus.RetrySetup(ctx, log, "webhook lease bucket", func(ctx context.Context) (err error) {
		q.leases, err = js.CreateOrUpdateKeyValue(ctx, leaseConfig)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: create lease bucket: %w", err)
	}
	q.wakeSub, err = nc.Subscribe(q.wakes, func(m *nats.Msg) {
		if m.Header.Get(originHeader) == q.origin {
			return
		}
		for id := range strings.SplitSeq(string(m.Data), "\n") {
			q.wake(id, wakeFresh)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: subscribe %s: %w", q.wakes, err)
	}
	return q, nil
}

// dropLegacyConsumers deletes the per-hook consumers that earlier versions
// created on the queue stream (two per active hook); their jobs stay and
// are read the new way.
func (q *jsQueue) dropLegacyConsumers(ctx context.Context) error {
	names := q.stream.ConsumerNames(ctx)
	var legacy []string
	for name := range names.Name() {
		if strings.HasPrefix(name, legacyConsumerPrefix) {
			legacy = append(legacy, name)
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("webhook: list queue consumers: %w", err)
	}
	for _, name := range legacy {
		if err := q.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("webhook: delete legacy consumer %s: %w", name, err)
		}
	}
	if len(legacy) > 0 {
		q.log.Info("webhook: deleted the per-hook consumers of an earlier version", "consumers", len(legacy))
	}
	return nil
}

func (q *jsQueue) durable() bool { return true }

func (q *jsQueue) close() {
	if q.wakeSub != nil {
		_ = q.wakeSub.Unsubscribe()
	}
}

// tailSubject holds the ballast message (see keepTail). "~tail" is no
// escaped hook ID, so depth ignores it.
func (q *jsQueue) tailSubject() string { return q.base + "~tail" }

// keepTail publishes a tiny ballast message and deletes the previous one,
// at start and then every interval in which this process published jobs,
// until ctx ends, so that the stream's last block always holds a live
// message. (Jobs of other processes are followed by their own ballast; a
// stream nobody writes to keeps its ballast last and costs nothing.)
// Without it, in a stream that also holds long-lived jobs (a failing
// hook's retries, a slow hook's backlog), every deletion that empties the
// last block makes the server start a new block, which it cannot delete
// while the old jobs remain (it carries a tombstone) and which keeps a
// 256 KiB buffer for 10 s: a healthy hook at 100 deliveries/s would cost
// some 250 MiB. (nats-server 2.15 filestore; measured in docs/webhooks.md.)
func (q *jsQueue) keepTail(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		if first || q.published.Swap(false) {
			if _, err := q.js.Publish(ctx, q.tailSubject(), nil); err == nil {
				_ = q.stream.Purge(ctx, jetstream.WithPurgeSubject(q.tailSubject()), jetstream.WithPurgeKeep(1))
			} else {
				q.published.Store(true) // try again at the next tick
			}
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

func (q *jsQueue) enqueue(ctx context.Context, jobs []job) []error {
	errs := make([]error, len(jobs))
	futs := make([]jetstream.PubAckFuture, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		m := &nats.Msg{Subject: q.freshSubject(j.HookID), Data: appendJob(nil, j)}
		var opts []jetstream.PublishOpt
		if q.dedup > 0 && j.Event.ID != 0 {
			// A batch matched again after a crash or a failed publish is
			// stored once (within the window).
			opts = append(opts, jetstream.WithMsgID(j.HookID+":"+strconv.FormatUint(j.Event.ID, 10)))
		}
		futs[i], errs[i] = q.js.PublishMsgAsync(m, opts...)
	}
	// Set after the jobs went out on the connection: a ballast published
	// from now on is stored behind them.
	q.published.Store(true)
	var woken []string
	seen := make(map[string]bool)
	for i, f := range futs {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			if id := jobs[i].HookID; !seen[id] {
				seen[id] = true
				woken = append(woken, id)
			}
		case err := <-f.Err():
			errs[i] = classifyPublish(err)
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	q.announce(woken)
	return errs
}

// announce wakes the readers of hooks with new jobs, here and (with one
// message) in the other processes.
func (q *jsQueue) announce(ids []string) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		q.wake(id, wakeFresh)
	}
	msg := &nats.Msg{Subject: q.wakes, Data: []byte(strings.Join(ids, "\n")), Header: nats.Header{}}
	msg.Header.Set(originHeader, q.origin)
	_ = q.js.Conn().PublishMsg(msg)
}

// What a reader is woken for.
const (
	wakeFresh = 1 << iota // new fresh jobs
	wakeRetry             // new retry jobs
)

// wake tells hook id's reader in this process, if any, to look for jobs
// of the kinds in what.
func (q *jsQueue) wake(id string, what int) {
	q.mu.Lock()
	r := q.readers[id]
	q.mu.Unlock()
	if r != nil {
		r.signal(what)
	}
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
	q.published.Store(true)
	if err != nil {
		return fmt.Errorf("webhook: requeue: %w", classifyPublish(err))
	}
	q.wake(j.HookID, wakeRetry)
	return nil
}

// leaseKey is hook id's key in the lease bucket.
func leaseKey(id string) string { return "h." + bus.EscapeToken(id) }

func (q *jsQueue) consume(ctx context.Context, hookID string, handle func(*delivery)) (func(), <-chan struct{}, error) {
	key := leaseKey(hookID)
	rev, err := q.leases.Create(ctx, key, []byte(q.origin))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, nil, fmt.Errorf("%w: %s", errLeased, hookID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: lease hook %s: %w", hookID, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &jsReader{
		q: q, id: hookID, handle: handle, key: key, rev: rev,
		fresh: q.freshSubject(hookID), retry: q.retrySubject(hookID),
		wakeCh: make(chan struct{}, 1), done: make(chan struct{}),
		freshNext: 1, retryNext: 1, freshNextSafe: 1, gen: [2]uint64{1, 1},
		inbox: q.nc.NewRespInbox(), replies: make(chan *nats.Msg, 2*maxBatch),
		pending: make(map[uint64]struct{}), purgeCh: make(chan struct{}, 1), purgeEnd: make(chan struct{}),
	}
	r.sub, err = q.nc.ChanSubscribe(r.inbox+".*", r.replies)
	if err != nil {
		cancel()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = q.leases.Delete(dctx, key, jetstream.LastRevision(rev))
		return nil, nil, fmt.Errorf("webhook: subscribe for hook %s: %w", hookID, err)
	}
	q.mu.Lock()
	q.readers[hookID] = r
	q.mu.Unlock()
	go r.run(rctx)
	go r.purger()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-r.done
			r.mu.Lock()
			r.stopped = true
			r.purgeTo = max(r.purgeTo, r.freshMark())
			close(r.purgeCh) // the purger makes its last purge and ends
			r.mu.Unlock()
			<-r.purgeEnd
			_ = r.sub.Unsubscribe()
			q.mu.Lock()
			if q.readers[hookID] == r {
				delete(q.readers, hookID)
			}
			q.mu.Unlock()
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer dcancel()
			_ = q.leases.Delete(dctx, key, jetstream.LastRevision(r.revision()))
		})
	}
	return stop, r.done, nil
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

// jsReader hands one hook's jobs to its worker while this process holds
// the hook's lease: fresh jobs in stream order, and retry jobs (read ahead
// into a heap) when due, at most jsQueue.limit outstanding. Each job is
// deleted from the stream when its delivery is acknowledged; a job handed
// out but never acknowledged (a crash, a stop mid-request) stays and is
// read again by the next holder of the lease.
type jsReader struct {
	q      *jsQueue
	id     string
	handle func(*delivery)
	key    string
	fresh  string
	retry  string
	wakeCh chan struct{} // capacity 1
	done   chan struct{} // closed when run returns

	freshNext, retryNext uint64 // the next sequence to look at

	// Direct gets: requests carry reply subjects inbox.<n>; replies of
	// earlier (timed out) requests are told apart by n.
	inbox   string
	replies chan *nats.Msg
	sub     *nats.Subscription
	reqN    uint64
	ahead   []seqJob // fresh jobs read, not handed out yet (run's goroutine only)
	// failed is set when a read of this step failed (no answer, an error
	// status) rather than found nothing: the subject is not marked drained
	// and the next step comes after readRetry (run's goroutine only).
	failed bool

	mu      sync.Mutex
	rev     uint64  // the lease's revision; guarded by mu
	out     int     // handed out, not yet ended; guarded by mu
	waiting seqHeap // read, not handed out yet (retries not due, jobs handed back); guarded by mu
	held    int     // retry jobs read and not yet deleted or handed back; guarded by mu
	// gen counts the wake-ups for fresh [0] and retry [1] jobs; quiet is
	// the generation at which a read last came back short. While they are
	// equal there is nothing more to read. A wake-up during a read raises
	// gen, so it is never lost. Guarded by mu.
	gen, quiet [2]uint64

	// Fresh jobs are removed by purging their subject up to a watermark:
	// pending holds the fresh sequences read and not yet finished; every
	// sequence below min(pending) (or freshNext) is done. Guarded by mu.
	pending       map[uint64]struct{}
	freshNextSafe uint64        // freshNext as of the last read; guarded by mu
	purgeTo       uint64        // the watermark to purge to; guarded by mu
	purged        uint64        // the watermark purged to; purger goroutine only
	purgeCh       chan struct{} // capacity 1: purgeTo moved
	stopped       bool          // the reader has ended: finished jobs are deleted one by one; guarded by mu
	purgeEnd      chan struct{} // closed when the purger has made its last purge
}

// seqJob is a job read from the stream, with its sequence.
type seqJob struct {
	job
	seq   uint64
	retry bool
}

// seqHeap orders read jobs by due time.
type seqHeap = dueHeap[seqJob]

func (r *jsReader) signal(what int) {
	r.mu.Lock()
	if what&wakeFresh != 0 {
		r.gen[0]++
	}
	if what&wakeRetry != 0 {
		r.gen[1]++
	}
	r.mu.Unlock()
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

func (r *jsReader) revision() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev
}

// run reads and hands out jobs and renews the lease until ctx ends or the
// lease is lost.
func (r *jsReader) run(ctx context.Context) {
	defer close(r.done)
	renew := time.NewTicker(r.q.leaseTTL / 3)
	defer renew.Stop()
	// The safety-net poll has its own ticker. The step timer is reset on
	// every pass of the loop, and a renewal (every leaseTTL/3) or a
	// finished job makes a pass, so as a poll it would never fire: a job
	// missed by a read (a direct get answered by a replica that had not
	// applied it yet, or lost while the stream elected a leader) would
	// wait for the hook's next job, for ever when there is none.
	poll := time.NewTicker(r.q.poll)
	defer poll.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := r.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wakeCh:
		case <-timer.C:
			r.rescan()
		case <-poll.C:
			r.rescan()
		case <-renew.C:
			if !r.renew(ctx) {
				return
			}
		}
	}
}

// rescan makes the next step read both subjects again, whether or not it
// was told of new jobs.
func (r *jsReader) rescan() {
	r.mu.Lock()
	r.gen[0]++
	r.gen[1]++
	r.mu.Unlock()
}

// renew extends the lease; false when it was lost.
func (r *jsReader) renew(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, r.q.leaseTTL/3)
	defer cancel()
	rev, err := r.q.leases.Update(rctx, r.key, []byte(r.q.origin), r.revision())
	if err == nil {
		r.mu.Lock()
		r.rev = rev
		r.mu.Unlock()
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		r.q.log.Warn("webhook: lost a hook's lease to another process", "hook", r.id)
		return false
	}
	r.q.log.Warn("webhook: renew hook lease", "hook", r.id, "err", err)
	return true // try again at the next tick; a lapsed lease fails then
}

// step hands out what it can and returns how long to wait at most before
// the next step.
func (r *jsReader) step(ctx context.Context) time.Duration {
	r.failed = false
	r.fill(ctx, true)
	for ctx.Err() == nil {
		now := r.q.now()
		r.mu.Lock()
		if r.out >= r.q.limit {
			r.mu.Unlock()
			return r.q.poll
		}
		if len(r.waiting) > 0 && !r.waiting[0].Due.After(now) {
			sj := heap.Pop(&r.waiting).(seqJob)
			r.out++
			r.mu.Unlock()
			r.hand(sj)
			continue
		}
		room := r.q.limit - r.out
		gen := r.gen[0]
		drained := r.quiet[0] == gen
		r.mu.Unlock()
		if len(r.ahead) == 0 && !drained {
			want := min(room, maxBatch)
			var ok bool
			r.ahead, ok = r.read(ctx, r.fresh, &r.freshNext, want, false)
			r.mu.Lock()
			for _, sj := range r.ahead {
				r.pending[sj.seq] = struct{}{}
			}
			r.freshNextSafe = r.freshNext
			if len(r.ahead) < want && ok {
				r.quiet[0] = gen
			}
			r.mu.Unlock()
		}
		if len(r.ahead) == 0 {
			break
		}
		sj := r.ahead[0]
		r.ahead = r.ahead[1:]
		r.mu.Lock()
		r.out++
		r.mu.Unlock()
		r.hand(sj)
	}
	r.fill(ctx, false)
	r.mu.Lock()
	defer r.mu.Unlock()
	wait := r.q.poll
	if len(r.waiting) > 0 {
		wait = min(wait, max(r.waiting[0].Due.Sub(r.q.now()), time.Millisecond))
	}
	if r.failed {
		wait = min(wait, readRetry)
	}
	return wait
}

// fill reads retry jobs ahead into the heap while it has room. With
// quick set it stops after one batch, so that fresh jobs are not held up
// by a long retry backlog.
func (r *jsReader) fill(ctx context.Context, quick bool) {
	for ctx.Err() == nil {
		r.mu.Lock()
		room := r.q.retryAhead - r.held
		gen := r.gen[1]
		drained := r.quiet[1] == gen
		r.mu.Unlock()
		if room <= 0 || drained {
			return
		}
		want := min(room, maxBatch)
		got, ok := r.read(ctx, r.retry, &r.retryNext, want, true)
		r.mu.Lock()
		if len(got) < want && ok {
			r.quiet[1] = gen
		}
		for _, sj := range got {
			r.held++
			heap.Push(&r.waiting, sj)
		}
		r.mu.Unlock()
		if len(got) < want || quick {
			return
		}
	}
}

// maxBatch bounds the jobs one read returns.
const maxBatch = 64

// readRetry is how soon a reader tries again after a failed read.
const readRetry = time.Second

// statusHeader and descriptionHeader carry the status line of a NATS
// status message (nats.go's names for "NATS/1.0 404 Message Not Found").
const (
	statusHeader      = "Status"
	descriptionHeader = "Description"
)

// directGetPrefix starts the subject of a stream's direct-get API.
const directGetPrefix = "$JS.API.DIRECT.GET."

// directGet is a direct-get request: the first message on NextBySubj at
// or after Seq. (A batched request would save round trips, but the server
// counts the subject's pending messages for every batch, which costs more
// than the round trips: measured in docs/webhooks.md.)
type directGet struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
}

// read returns up to n jobs on subject at or after *next, in stream
// order, and advances *next past them; fewer than n means the subject
// has no more now, unless a read failed: then it is logged, r.failed is
// set and the second result is false. Undecodable jobs are deleted and
// skipped.
func (r *jsReader) read(ctx context.Context, subject string, next *uint64, n int, retry bool) ([]seqJob, bool) {
	var out []seqJob
	for len(out) < n && ctx.Err() == nil {
		seq, data, res := r.get(ctx, subject, *next)
		if res == getFailed {
			r.failed = true
			return out, false
		}
		if res != getFound {
			return out, true
		}
		*next = max(*next, seq+1)
		j, err := decodeJob(data)
		if err != nil {
			r.q.log.Warn("webhook: dropping undecodable job", "subject", subject, "err", err)
			r.q.deleteJob(seq)
			continue
		}
		out = append(out, seqJob{job: j, seq: seq, retry: retry})
	}
	return out, ctx.Err() == nil
}

// What a direct get found.
const (
	getFound  = iota // a message
	getNone          // none: the subject has no message at or after the sequence
	getFailed        // no answer, or an error
)

// get reads the first message on subject at or after sequence from with
// one direct get.
func (r *jsReader) get(ctx context.Context, subject string, from uint64) (uint64, []byte, int) {
	r.reqN++
	tag := "." + strconv.FormatUint(r.reqN, 10)
	body, _ := json.Marshal(directGet{Seq: from, NextBySubj: subject})
	if err := r.q.nc.PublishRequest(r.q.get, r.inbox+tag, body); err != nil {
		r.q.log.Warn("webhook: read hook queue", "hook", r.id, "err", err)
		return 0, nil, getFailed
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		var m *nats.Msg
		select {
		case m = <-r.replies:
		case <-ctx.Done():
			return 0, nil, getFailed
		case <-timeout.C:
			r.q.log.Warn("webhook: read hook queue: no answer", "hook", r.id)
			return 0, nil, getFailed
		}
		if !strings.HasSuffix(m.Subject, tag) {
			continue // the late answer of an earlier request
		}
		if st := m.Header.Get(statusHeader); st != "" {
			if st == "404" {
				return 0, nil, getNone
			}
			r.q.log.Warn("webhook: read hook queue", "hook", r.id, "status", st, "description", m.Header.Get(descriptionHeader))
			return 0, nil, getFailed
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			r.q.log.Warn("webhook: read hook queue: no sequence", "hook", r.id)
			return 0, nil, getFailed
		}
		return seq, m.Data, getFound
	}
}

// hand gives one job to the worker.
func (r *jsReader) hand(sj seqJob) {
	var once sync.Once
	end := func(back *seqJob) {
		once.Do(func() {
			r.mu.Lock()
			r.out--
			if back != nil {
				heap.Push(&r.waiting, *back)
			} else if sj.retry {
				r.held--
			}
			r.mu.Unlock()
			select {
			case r.wakeCh <- struct{}{}:
			default:
			}
		})
	}
	r.handle(&delivery{
		job:   sj.job,
		retry: sj.retry,
		ack: func() {
			if sj.retry || !r.finished(sj.seq) {
				r.q.deleteJob(sj.seq)
			}
			end(nil)
		},
		later: func(d time.Duration) {
			b := sj
			b.Due = r.q.now().Add(d)
			end(&b)
		},
	})
}

// finished records that fresh job seq is done and moves the purge
// watermark; false when the reader has ended and the caller must delete
// the job itself.
func (r *jsReader) finished(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	delete(r.pending, seq)
	mark := r.freshMark()
	if mark > r.purgeTo {
		r.purgeTo = mark
		select {
		case r.purgeCh <- struct{}{}:
		default:
		}
	}
	return true
}

// freshMark is the purge watermark: the lowest fresh sequence not yet
// finished, or the next one to read. r.mu must be held.
func (r *jsReader) freshMark() uint64 {
	mark := r.freshNextSafe
	for seq := range r.pending {
		mark = min(mark, seq)
	}
	return mark
}

// purgeDelay is how long the purger waits after a job finished before
// purging, so that one purge removes the jobs finished meanwhile. A crash
// in between only makes those jobs come again (at least once).
const purgeDelay = 20 * time.Millisecond

// purger purges the hook's fresh subject up to the watermark whenever it
// moves, until the reader has ended and the last watermark is purged.
// Several finished jobs are removed by one purge when they finish while
// the previous purge runs.
func (r *jsReader) purger() {
	defer close(r.purgeEnd)
	for {
		_, open := <-r.purgeCh
		if open {
			// Let more jobs finish: one purge then removes all of them.
			time.Sleep(purgeDelay)
		}
		r.mu.Lock()
		to := r.purgeTo
		r.mu.Unlock()
		if to > r.purged {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := r.q.stream.Purge(ctx, jetstream.WithPurgeSubject(r.fresh), jetstream.WithPurgeSequence(to))
			cancel()
			if err != nil {
				r.q.log.Warn("webhook: remove finished jobs", "hook", r.id, "err", err)
			} else {
				r.purged = to
			}
		}
		if !open {
			return
		}
	}
}

// deleteJob removes a finished job from the stream.
func (q *jsQueue) deleteJob(seq uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		q.log.Warn("webhook: delete finished job", "seq", seq, "err", err)
	}
}
