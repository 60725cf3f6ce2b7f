package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout          = 20 * time.Second
	DefaultRetries          = 6
	DefaultMaxAge           = time.Hour
	DefaultWorkers          = 8
	DefaultBackoffBase      = 5 * time.Second
	DefaultBackoffMax       = 5 * time.Minute
	DefaultMaxQueuePerHook  = 1_000_000
	DefaultMemQueuePerHook  = 10_000
	DefaultLogKeep          = 100
	DefaultMaxResponseBytes = MaxResponseBytes
)

// Config configures the delivery engine. Zero fields take the defaults.
type Config struct {
	// Timeout bounds one request, from dialing to the end of the response
	// body (docs/particle-api.md#the-outgoing-request: 20 s). Default
	// DefaultTimeout.
	Timeout time.Duration
	// Retries is the retry budget: how many times a failed delivery is
	// sent again (so at most Retries+1 requests per event and hook).
	// Default DefaultRetries; negative means no retries.
	Retries int
	// MaxAge drops a job that would start later than this after its event
	// was queued, whatever its retry budget says. Default 1 hour.
	MaxAge time.Duration
	// Workers is the number of requests one hook may have in flight.
	// Default DefaultWorkers.
	Workers int
	// BackoffBase and BackoffMax shape the delay before retry n: a random
	// duration in [d/2, d] with d = min(BackoffMax, BackoffBase·2^(n-1)).
	// Defaults 5 s and 5 min.
	BackoffBase, BackoffMax time.Duration
	// Throttle tunes the per-host throttle
	// (docs/particle-api.md#retries-and-throttling).
	Throttle ThrottleConfig
	// MaxQueuePerHook bounds the jobs queued for one hook (fresh and retry
	// queues each); beyond it new jobs are dropped. Default 1,000,000
	// with JetStream (disk), DefaultMemQueuePerHook without.
	MaxQueuePerHook int64
	// DedupWindow is the JetStream duplicate window of fresh jobs, so that
	// an event matched twice (after a crash) is queued once. Default 30 s;
	// negative disables it.
	DedupWindow time.Duration
	// LogKeep is how many delivery-log entries are kept per hook. Default 100.
	LogKeep int
	// LogFlush is the delivery log's flush interval. Default 1 s.
	LogFlush time.Duration
	// LogBuffer bounds the delivery-log entries waiting for a flush.
	// Default 10,000.
	LogBuffer int
	// MaxResponseBytes bounds how much of a response body is read.
	// Default MaxResponseBytes (spark-server's cap on response events).
	MaxResponseBytes int
	// ReloadInterval is the period of the safety-net reload of every
	// hook from the store. Default 5 min.
	ReloadInterval time.Duration
	// ScanInterval is how often the queue is scanned for hooks with jobs
	// but no worker (after a restart, or queued by another process), and
	// for idle workers. Default 5 s.
	ScanInterval time.Duration
	// IdleAfter stops a hook's worker after this long with an empty queue.
	// Default 30 s.
	IdleAfter time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Replicas is the JetStream replication factor of the queue stream and
	// the lease bucket. Default: the bus's (bus.Config.Replicas).
	Replicas int
}

func (c *Config) setDefaults(durable bool) {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	c.Throttle.setDefaults()
	if c.MaxQueuePerHook <= 0 {
		c.MaxQueuePerHook = DefaultMaxQueuePerHook
		if !durable {
			c.MaxQueuePerHook = DefaultMemQueuePerHook
		}
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 30 * time.Second
	} else if c.DedupWindow < 0 {
		c.DedupWindow = 0
	}
	if c.LogKeep <= 0 {
		c.LogKeep = DefaultLogKeep
	}
	if c.LogFlush <= 0 {
		c.LogFlush = time.Second
	}
	if c.LogBuffer <= 0 {
		c.LogBuffer = 10_000
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.ReloadInterval <= 0 {
		c.ReloadInterval = 5 * time.Minute
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = 5 * time.Second
	}
	if c.IdleAfter <= 0 {
		c.IdleAfter = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Outbound is the outbound network policy of webhook requests;
// netguard.Policy implements it.
type Outbound interface {
	// Transport returns an HTTP transport that refuses forbidden
	// addresses when it dials, skipping TLS verification if asked.
	Transport(insecureSkipVerify bool) *http.Transport
	// CheckRedirect vets a redirect (http.Client.CheckRedirect).
	CheckRedirect(req *http.Request, via []*http.Request) error
	// CheckURL refuses a URL whose scheme or literal host is forbidden.
	CheckURL(raw string) error
}

// Deps are the engine's collaborators.
type Deps struct {
	// Store holds the hooks and their delivery logs.
	Store store.Webhooks
	// Bus carries the events in and the hook events out; its JetStream
	// (when present) holds the durable queue.
	Bus *bus.Bus
	// Outbound is the outbound network policy.
	Outbound Outbound
	// OpenSecret opens hook hookID's sealed SigningSecret (the server
	// wires auth.Service.OpenSecret with the purpose
	// auth.PurposeWebhookSigning+hookID). Nil: hooks with a signing secret
	// fail to send; they are never sent unsigned.
	OpenSecret func(hookID string, sealed []byte) ([]byte, error)
	// OpenCredentials opens hook hookID's sealed basic-auth credentials
	// and headers (store.WebhookSettings.SealedCredentials; the server
	// wires auth.Service.OpenSecret with auth.PurposeWebhookCredentials+
	// hookID). Nil: hooks with sealed credentials fail to send; they are
	// never sent without them.
	OpenCredentials func(hookID string, sealed []byte) ([]byte, error)
}

// Engine delivers events to webhooks: it matches bus events against the
// hooks, queues one job per match, and sends them with retries and per-host
// throttling. It implements the API's webhook interface (TestWebhook,
// WebhooksChanged). All methods are safe for concurrent use.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	st      store.Webhooks
	bus     *bus.Bus
	out     Outbound
	open    func(string, []byte) ([]byte, error)
	creds   func(string, []byte) ([]byte, error)
	prefix  string              // the bus's subject prefix
	clients [2]*http.Client     // [0] verifies TLS, [1] skips verification
	idx     *index              // the hooks
	thr     *throttle           // per target host
	dlog    *deliveryLog        // buffered delivery log
	changes string              // P.hooks.changed
	sleeps  string              // P.hookthrottle: hosts asleep, shared by the processes
	origin  string              // this engine's random ID in hooks.changed messages
	durable bool                // JetStream available (decided in New)
	js      jetstream.JetStream // the engine's own context on the bus connection; nil without JetStream

	mu       sync.Mutex
	state    int // 0 new, 1 running, 2 stopped; guarded by mu
	q        queue
	workers  map[string]*worker       // active hooks; guarded by mu
	counters map[string]*hookCounters // guarded by mu
	notices  map[string]time.Time     // last "Sleeping" notice per hook; guarded by mu
	changed  *nats.Subscription
	sleepSub *nats.Subscription // P.hookthrottle; guarded by mu

	runCtx     context.Context // ends when Stop starts
	runCancel  context.CancelFunc
	sendCtx    context.Context // ends when Stop gives up waiting for requests
	sendCancel context.CancelFunc
	loops      sync.WaitGroup // background loops
	inflight   atomic.Int64   // deliveries being processed

	events    atomic.Uint64
	queued    atomic.Uint64
	malformed atomic.Uint64
}

// hookCounters are one hook's counters.
type hookCounters struct {
	inFlight  atomic.Int64
	delivered atomic.Uint64
	failed    atomic.Uint64
	retried   atomic.Uint64
	skipped   atomic.Uint64
	dropped   atomic.Uint64
}

// New builds an engine; nothing runs until Start.
func New(cfg Config, deps Deps, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deps.Store == nil || deps.Bus == nil || deps.Outbound == nil {
		return nil, errors.New("webhook: New needs a store, a bus and an outbound policy")
	}
	durable := deps.Bus.JetStream() != nil
	cfg.setDefaults(durable)
	log = log.With("component", "webhook")
	prefix, err := busPrefix(deps.Bus)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		log:      log,
		st:       deps.Store,
		bus:      deps.Bus,
		out:      deps.Outbound,
		open:     deps.OpenSecret,
		creds:    deps.OpenCredentials,
		prefix:   prefix,
		idx:      newIndex(),
		thr:      newThrottle(cfg.Throttle),
		dlog:     newDeliveryLog(deps.Store, cfg.LogKeep, cfg.LogBuffer, cfg.LogFlush, log),
		changes:  prefix + ".hooks.changed",
		sleeps:   prefix + ".hookthrottle",
		origin:   randomID(),
		durable:  durable,
		workers:  make(map[string]*worker),
		counters: make(map[string]*hookCounters),
		notices:  make(map[string]time.Time),
	}
	e.runCtx, e.runCancel = context.WithCancel(context.Background())
	e.sendCtx, e.sendCancel = context.WithCancel(context.Background())
	for i, insecure := range []bool{false, true} {
		tr := deps.Outbound.Transport(insecure)
		// One hook keeps up to Workers connections busy; keep them alive
		// between deliveries instead of dialing for each one.
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = max(64, 2*cfg.Workers)
		tr.ResponseHeaderTimeout = cfg.Timeout
		e.clients[i] = &http.Client{Transport: tr, CheckRedirect: deps.Outbound.CheckRedirect}
	}
	if durable {
		e.js, err = jetstream.New(deps.Bus.Conn(),
			jetstream.WithPublishAsyncMaxPending(4096),
			jetstream.WithPublishAsyncTimeout(10*time.Second))
		if err != nil {
			return nil, fmt.Errorf("webhook: jetstream: %w", err)
		}
	}
	return e, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// busPrefix recovers the bus's subject prefix from its event subject.
func busPrefix(b *bus.Bus) (string, error) {
	const tail = ".evt.*.*.*.*.*"
	s := b.StreamSubject(bus.Filter{})
	p, ok := strings.CutSuffix(s, tail)
	if !ok || p == "" {
		return "", fmt.Errorf("webhook: unexpected bus subject %q", s)
	}
	return p, nil
}

// Start loads the hooks, creates the queue and starts matching and
// delivering. Without JetStream it falls back to an in-memory queue and
// says loudly that delivery is not durable.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.state != 0 {
		e.mu.Unlock()
		return errors.New("webhook: engine already started")
	}
	e.state = 1
	e.mu.Unlock()

	if err := e.reload(ctx); err != nil {
		return err
	}
	var q queue
	if e.durable {
		if e.cfg.Replicas <= 0 {
			e.cfg.Replicas = e.bus.Replicas()
		}
		jq, err := newJSQueue(ctx, e.js, e.bus.Conn(), e.prefix, e.origin, &e.cfg, e.log)
		if err != nil {
			return err
		}
		q = jq
	} else {
		e.log.Warn("webhook: NO JETSTREAM: webhook deliveries are queued in memory only and are LOST on a restart or crash; " +
			"run the embedded bus with a data directory or an external NATS with JetStream for at-least-once delivery")
		q = newMemQueue(e.cfg.Workers, int(e.cfg.MaxQueuePerHook), e.cfg.Now)
	}
	e.mu.Lock()
	e.q = q
	e.mu.Unlock()

	sub, err := e.bus.Conn().Subscribe(e.changes, e.onChanged)
	if err != nil {
		return fmt.Errorf("webhook: subscribe %s: %w", e.changes, err)
	}
	sleepSub, err := e.bus.Conn().Subscribe(e.sleeps, e.onSleep)
	if err != nil {
		sub.Unsubscribe()
		return fmt.Errorf("webhook: subscribe %s: %w", e.sleeps, err)
	}
	e.mu.Lock()
	e.changed, e.sleepSub = sub, sleepSub
	e.mu.Unlock()

	match, err := e.startMatcher(ctx)
	if err != nil {
		sub.Unsubscribe()
		sleepSub.Unsubscribe()
		return err
	}
	if jq, ok := q.(*jsQueue); ok {
		e.loops.Add(1)
		go func() { defer e.loops.Done(); jq.keepTail(e.runCtx, 200*time.Millisecond) }()
	}
	e.loops.Add(4)
	go func() { defer e.loops.Done(); match(e.runCtx) }()
	go func() { defer e.loops.Done(); e.dlog.run(e.runCtx) }()
	go func() { defer e.loops.Done(); e.reloadLoop(e.runCtx) }()
	go func() { defer e.loops.Done(); e.scanLoop(e.runCtx) }()
	e.log.Info("webhook: delivery engine started", "durable", e.durable, "hooks", e.idx.len(),
		"workers_per_hook", e.cfg.Workers, "timeout", e.cfg.Timeout, "retries", e.cfg.Retries)
	return nil
}

// Stop stops matching, waits for the requests in flight until ctx ends
// (then cancels them; a durable queue redelivers them after a restart),
// and flushes the delivery log. It is idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.state != 1 {
		e.state = 2
		e.mu.Unlock()
		return nil
	}
	e.state = 2
	workers := e.workers
	e.workers = make(map[string]*worker)
	sub, sleepSub := e.changed, e.sleepSub
	e.mu.Unlock()

	e.runCancel()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	if sleepSub != nil {
		_ = sleepSub.Unsubscribe()
	}
	for _, w := range workers {
		w.stop()
	}
	e.loops.Wait()
	if !e.waitIdle(ctx) {
		e.sendCancel()
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.waitIdle(wctx)
		cancel()
	}
	e.sendCancel()
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.dlog.flush(fctx)
	cancel()
	q := e.currentQueue()
	if q != nil {
		if !q.durable() {
			if d, _ := q.depth(context.Background()); len(d) > 0 {
				n := int64(0)
				for _, v := range d {
					n += v
				}
				e.log.Warn("webhook: in-memory queue discarded on stop", "jobs", n)
			}
		}
		q.close()
	}
	return nil
}

// waitIdle waits until no delivery is being processed or ctx ends.
func (e *Engine) waitIdle(ctx context.Context) bool {
	for e.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// WebhooksChanged reloads hook id after the API created, replaced or
// deleted it, and tells the other processes on the bus to do the same.
// Events accepted after it returns are matched against the new state.
func (e *Engine) WebhooksChanged(ctx context.Context, id string) {
	e.refresh(ctx, id)
	msg := &nats.Msg{Subject: e.changes, Data: []byte(id), Header: nats.Header{}}
	msg.Header.Set(originHeader, e.origin)
	if err := e.bus.Conn().PublishMsg(msg); err != nil {
		e.log.Warn("webhook: broadcast hook change", "hook", id, "err", err)
	}
}

// originHeader names the engine that sent a hooks.changed message.
const originHeader = "Wick-Engine"

func (e *Engine) onChanged(m *nats.Msg) {
	if m.Header.Get(originHeader) == e.origin {
		return
	}
	ctx, cancel := context.WithTimeout(e.runCtx, 10*time.Second)
	defer cancel()
	e.refresh(ctx, string(m.Data))
}

// refresh reloads one hook from the store into the index; a hook that no
// longer exists loses its worker and its queued jobs.
func (e *Engine) refresh(ctx context.Context, id string) {
	h, err := e.st.WebhookByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e.idx.remove(id)
		e.forget(ctx, id)
	case err != nil:
		e.log.Warn("webhook: reload hook", "hook", id, "err", err)
	default:
		e.idx.upsert(e.entry(h))
	}
}

// entry builds an index entry, opening the signing key and the sealed
// credentials.
func (e *Engine) entry(h *store.Webhook) *hookEntry {
	he := &hookEntry{h: *h}
	if len(h.Settings.SealedCredentials) > 0 {
		if e.creds == nil {
			he.keyErr = errors.New("webhook: no way to open the hook's credentials")
			return he
		}
		err := he.h.Settings.OpenCredentials(func(sealed []byte) ([]byte, error) { return e.creds(h.ID, sealed) })
		if err != nil {
			he.keyErr = fmt.Errorf("webhook: open the hook's credentials: %w", err)
			return he
		}
	}
	if len(h.Settings.SigningSecret) > 0 {
		if e.open == nil {
			he.keyErr = errors.New("webhook: no way to open the signing secret")
		} else if key, err := e.open(h.ID, h.Settings.SigningSecret); err != nil {
			he.keyErr = fmt.Errorf("webhook: open signing secret: %w", err)
		} else {
			he.key = key
		}
	}
	return he
}

// reload replaces the index with every hook in the store; hooks that have
// disappeared lose their workers and queued jobs.
func (e *Engine) reload(ctx context.Context) error {
	gen := e.idx.generation()
	all, err := e.st.AllWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("webhook: load hooks: %w", err)
	}
	entries := make([]*hookEntry, len(all))
	for i := range all {
		entries[i] = e.entry(&all[i])
	}
	for _, id := range e.idx.replace(entries, gen) {
		e.forget(ctx, id)
	}
	return nil
}

func (e *Engine) reloadLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.reload(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("webhook: periodic reload", "err", err)
			}
		}
	}
}

// forget stops a deleted hook's worker and purges its queue.
func (e *Engine) forget(ctx context.Context, id string) {
	e.mu.Lock()
	w := e.workers[id]
	delete(e.workers, id)
	delete(e.counters, id)
	delete(e.notices, id)
	q := e.q
	e.mu.Unlock()
	if w != nil {
		w.stop()
	}
	if q != nil {
		if err := q.purge(ctx, id); err != nil {
			e.log.Warn("webhook: purge deleted hook", "hook", id, "err", err)
		}
	}
}

// currentQueue returns the queue (nil before Start).
func (e *Engine) currentQueue() queue {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.q
}

// counter returns the hook's counters, creating them.
func (e *Engine) counter(id string) *hookCounters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counterLocked(id)
}

func (e *Engine) counterLocked(id string) *hookCounters {
	c := e.counters[id]
	if c == nil {
		c = &hookCounters{}
		e.counters[id] = c
	}
	return c
}

// activate makes sure hook id has a running worker and marks it busy.
func (e *Engine) activate(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != 1 {
		return
	}
	if w := e.workers[id]; w != nil {
		w.touch()
		return
	}
	w := newWorker(e, id, e.counterLocked(id))
	e.workers[id] = w
	go w.run()
}

// scanLoop starts workers for hooks with queued jobs and stops idle ones.
func (e *Engine) scanLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.ScanInterval)
	defer t.Stop()
	for {
		e.scan(ctx)
		e.thr.sweep(e.cfg.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) scan(ctx context.Context) {
	q := e.currentQueue()
	depth, err := q.depth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("webhook: scan queue", "err", err)
		}
		return
	}
	for id := range depth {
		if e.idx.get(id) != nil {
			e.activate(id)
			continue
		}
		// Not in our index: deleted, or created in another process a
		// moment ago. Ask the store before purging.
		if _, err := e.st.WebhookByID(ctx, id); errors.Is(err, store.ErrNotFound) {
			e.log.Info("webhook: purging the queue of a deleted hook", "hook", id, "jobs", depth[id])
			e.forget(ctx, id)
		} else if err == nil {
			e.refresh(ctx, id)
			e.activate(id)
		}
	}
	now := e.cfg.Now()
	var idle []*worker
	e.mu.Lock()
	for id, w := range e.workers {
		if depth[id] == 0 && w.idle(now, e.cfg.IdleAfter) {
			delete(e.workers, id)
			idle = append(idle, w)
		}
	}
	e.mu.Unlock()
	for _, w := range idle {
		w.stop()
	}
}

// publish sends hook events back to the bus.
func (e *Engine) publish(evs ...bus.Event) {
	for _, ev := range evs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := e.bus.Publish(ctx, ev)
		cancel()
		if err != nil && !errors.Is(err, bus.ErrClosed) {
			e.log.Warn("webhook: publish hook event", "event", ev.Name, "err", err)
		}
	}
}

// HookStats are one hook's delivery counters since the engine started.
type HookStats struct {
	// Queued counts the jobs in the hook's queues, including those being
	// worked on and retries waiting for their time.
	Queued int64
	// InFlight counts the deliveries being processed now.
	InFlight int64
	// Delivered counts 2xx responses.
	Delivered uint64
	// Failed counts failed attempts: non-2xx, timeouts, network errors.
	Failed uint64
	// Retried counts retry jobs queued (after failures and skips).
	Retried uint64
	// Skipped counts attempts skipped while the target host slept.
	Skipped uint64
	// Dropped counts jobs given up: retry budget or age exhausted, skipped
	// too often, unbuildable request, full queue, disabled hook.
	Dropped uint64
}

// Stats are the engine's counters since Start.
type Stats struct {
	// Durable reports whether the queue is JetStream (false: in memory).
	Durable bool
	// Events counts the events the matcher has read.
	Events uint64
	// Queued counts the jobs the matcher has queued (HookStats.Queued is
	// a hook's current queue length instead).
	Queued uint64
	// Malformed counts undecodable events and jobs.
	Malformed uint64
	// LogWritten and LogDropped count delivery-log entries written to
	// the store and lost (buffer full or write failed).
	LogWritten, LogDropped uint64
	// Sleeping lists the target hosts asleep now.
	Sleeping []string
	// Hooks has one entry per hook with activity or queued jobs.
	Hooks map[string]HookStats
}

// Stats returns the counters, with queue depths read from the queue.
func (e *Engine) Stats(ctx context.Context) Stats {
	st := Stats{
		Durable:    e.durable,
		Events:     e.events.Load(),
		Queued:     e.queued.Load(),
		Malformed:  e.malformed.Load(),
		LogWritten: e.dlog.written.Load(),
		LogDropped: e.dlog.dropped.Load(),
		Sleeping:   e.thr.sleeping(e.cfg.Now()),
		Hooks:      make(map[string]HookStats),
	}
	sort.Strings(st.Sleeping)
	e.mu.Lock()
	q := e.q
	for id, c := range e.counters {
		st.Hooks[id] = HookStats{
			InFlight:  c.inFlight.Load(),
			Delivered: c.delivered.Load(),
			Failed:    c.failed.Load(),
			Retried:   c.retried.Load(),
			Skipped:   c.skipped.Load(),
			Dropped:   c.dropped.Load(),
		}
	}
	e.mu.Unlock()
	if q != nil {
		if depth, err := q.depth(ctx); err == nil {
			for id, n := range depth {
				hs := st.Hooks[id]
				hs.Queued = n
				st.Hooks[id] = hs
			}
		}
	}
	return st
}
