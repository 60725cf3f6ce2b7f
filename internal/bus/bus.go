package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultSubjectPrefix   = "wick"
	DefaultReplayWindow    = 10 * time.Minute
	DefaultReplayMaxEvents = 65536
	DefaultReplayMaxBytes  = 64 << 20
	DefaultCallTimeout     = 30 * time.Second
	DefaultLocateTimeout   = time.Second
	DefaultBuffer          = 64
)

// Errors returned by the bus.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("bus: closed")
	// ErrDeviceOffline means that no process holds a connection to the
	// device (or the holder lost it during the call).
	ErrDeviceOffline = errors.New("bus: device offline")
	// ErrTimeout means that the device did not answer a call in time.
	ErrTimeout = errors.New("bus: device call timed out")
	// ErrNoSuchName means the device has no such function or variable;
	// call handlers (the gateway) wrap it so that callers anywhere can
	// match it with errors.Is.
	ErrNoSuchName = errors.New("bus: no such function or variable")
	// ErrRefused means the request was refused before or by the device
	// (name or argument too long, or the device answered 4.00).
	ErrRefused = errors.New("bus: request refused")
	// ErrDeviceBusy means the device is online but has as many requests in
	// flight as it may have; the caller should retry later (the API
	// answers 429 with Retry-After).
	ErrDeviceBusy = errors.New("bus: device busy")
)

// Config configures Open. The zero value runs an embedded in-process NATS
// server without JetStream.
type Config struct {
	// URL of an external NATS server or cluster ("nats://host:4222", a
	// comma-separated list for a cluster). Empty starts an embedded
	// in-process server that listens on no port.
	URL string
	// JetStreamDir enables JetStream with file storage in this directory for
	// the embedded server (the durable event stream and webhook queues).
	// Ignored with URL, where JetStream is used when the server offers it.
	JetStreamDir string
	// NoJetStream makes an external connection ignore JetStream even when
	// the server offers it (replay then uses the in-process ring).
	NoJetStream bool
	// SubjectPrefix is the first subject token(s) of everything the bus
	// sends, e.g. "wick" or "wick.eu1"; several Wick installations (or
	// parallel tests) can share one NATS with different prefixes. Letters,
	// digits, '_' and '-' in '.'-separated tokens. Default "wick".
	SubjectPrefix string
	// Node names this process in presence messages and logs (a subject
	// token after escaping). Default: random.
	Node string
	// ReplayWindow bounds how old a replayed event may be (the JetStream
	// stream's MaxAge). Default 10 minutes.
	ReplayWindow time.Duration
	// ReplayMaxEvents bounds how many events the replay window holds (the
	// stream's MaxMsgs, or the ring's size). Default 65536.
	ReplayMaxEvents int
	// ReplayMaxBytes bounds the encoded size of the replay window. Default 64 MiB.
	ReplayMaxBytes int64
	// Replicas is the JetStream replication factor of the streams Wick
	// creates on an external NATS cluster (durable consumers inherit it).
	// Default 1; 3 in a cluster (docs/scaling.md). The embedded server
	// always uses 1.
	Replicas int
	// CallTimeout is the timeout of Call when its context has no deadline.
	// Default 30 s.
	CallTimeout time.Duration
	// LocateTimeout is how long Call waits for a remote holder to
	// acknowledge a call before reporting ErrDeviceOffline, when other
	// processes handle devices but none answers. Default 1 s.
	LocateTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if tok == "" || EscapeToken(tok) != tok || tok == emptyToken {
			return fmt.Errorf("bus: invalid subject prefix %q", c.SubjectPrefix)
		}
	}
	if c.Node == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.Node = hex.EncodeToString(b[:])
	}
	if c.ReplayWindow <= 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	if c.ReplayMaxEvents <= 0 {
		c.ReplayMaxEvents = DefaultReplayMaxEvents
	}
	if c.ReplayMaxBytes <= 0 {
		c.ReplayMaxBytes = DefaultReplayMaxBytes
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.LocateTimeout <= 0 {
		c.LocateTimeout = DefaultLocateTimeout
	}
	return nil
}

// Bus is Wick's event bus. All methods are safe for concurrent use.
type Bus struct {
	cfg  Config
	log  *slog.Logger
	subj subjects

	srv     *server.Server // embedded server; nil with Config.URL
	ownsSrv bool           // Close shuts srv down
	nc      *nats.Conn     // events and presence (echo on: we receive our own events)
	cc      *nats.Conn     // device calls (no echo: our own requests never reach our handlers)
	ncDone  chan struct{}  // closed when nc is closed
	ccDone  chan struct{}  // closed when cc is closed

	js     jetstream.JetStream // nil in ring mode
	stream string              // JetStream stream name; "" in ring mode

	// Ring mode: pubMu orders ID assignment, ring append and the NATS
	// publish, so that IDs reach every subscriber in increasing order.
	pubMu  sync.Mutex
	nextID uint64 // guarded by pubMu
	ring   *ring  // nil in JetStream mode

	mu       sync.Mutex // guards the fields below; never held while calling into NATS callbacks' locks
	closed   bool
	groups   map[string]*group
	presSubs map[*PresenceSubscription]struct{}

	calls *calls

	down atomic.Bool // set first thing in Close

	published atomic.Uint64
	delivered atomic.Uint64
	dropped   atomic.Uint64
	malformed atomic.Uint64
	// slowClosed sums the NATS slow-consumer drops of closed groups, so
	// that Stats.SlowConsumer never goes down; written under mu.
	slowClosed atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Open connects the bus: to Config.URL, or to a new embedded server. It
// creates (or updates) the JetStream event stream when JetStream is in use.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	b := newBus(cfg, log)
	if cfg.URL == "" {
		srv, err := startServer(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv, b.ownsSrv = srv, true
	}
	if err := b.connect(ctx); err != nil {
		b.shutdown()
		return nil, err
	}
	return b, nil
}

func newBus(cfg Config, log *slog.Logger) *Bus {
	b := &Bus{
		cfg:      cfg,
		log:      log.With("component", "bus", "node", cfg.Node),
		subj:     newSubjects(cfg.SubjectPrefix),
		groups:   make(map[string]*group),
		presSubs: make(map[*PresenceSubscription]struct{}),
		ncDone:   make(chan struct{}),
		ccDone:   make(chan struct{}),
	}
	b.calls = newCalls(b)
	return b
}

// connect opens both connections, picks the replay mode and prepares calls.
func (b *Bus) connect(ctx context.Context) error {
	var err error
	if b.nc, err = b.dial("events", b.ncDone); err != nil {
		return err
	}
	if b.cc, err = b.dial("calls", b.ccDone, nats.NoEcho()); err != nil {
		return err
	}
	if err := b.setupJetStream(ctx); err != nil {
		return err
	}
	if b.js == nil {
		b.ring = newRing(b.cfg.ReplayMaxEvents, b.cfg.ReplayMaxBytes, b.cfg.ReplayWindow)
		// Start above every ID an earlier run of this process can have
		// handed out (unless it averaged over a million events a second).
		b.nextID = uint64(time.Now().UnixMicro())
	}
	if err := b.calls.start(); err != nil {
		return err
	}
	mode := "ring"
	if b.js != nil {
		mode = "jetstream"
	}
	b.log.Info("bus: connected", "embedded", b.srv != nil, "url", redactURL(b.cfg.URL),
		"prefix", b.cfg.SubjectPrefix, "replay", mode)
	return nil
}

func (b *Bus) dial(role string, done chan struct{}, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("wick " + b.cfg.Node + " " + role),
		nats.DrainTimeout(5 * time.Second),
		nats.ClosedHandler(func(*nats.Conn) { close(done) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("bus: nats error", "role", role, "subject", subject, "err", err)
		}),
	}
	url := b.cfg.URL
	if b.srv != nil {
		opts = append(opts, nats.InProcessServer(b.srv))
		url = ""
	} else {
		opts = append(opts,
			nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				b.log.Warn("bus: disconnected from nats", "role", role, "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				b.log.Info("bus: reconnected to nats", "role", role, "url", redactURL(nc.ConnectedUrl()))
			}),
		)
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		close(done)
		return nil, fmt.Errorf("bus: connect %s: %w", role, err)
	}
	return nc, nil
}

// setupJetStream selects JetStream when available and creates the stream.
func (b *Bus) setupJetStream(ctx context.Context) error {
	if b.srv != nil && b.cfg.JetStreamDir == "" || b.srv == nil && b.cfg.NoJetStream {
		return nil
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("bus: jetstream: %w", err)
	}
	if b.srv == nil {
		// A server without JetStream says so at once; anything else (a
		// cluster still electing its leader) is retried.
		err := RetrySetup(ctx, b.log, "jetstream account info", func(ctx context.Context) error {
			_, err := js.AccountInfo(ctx)
			if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
				return nil
			}
			return err
		})
		if err == nil {
			_, err = js.AccountInfo(ctx)
		}
		if err != nil {
			b.log.Info("bus: jetstream unavailable on the external server, replay uses the in-process ring", "err", err)
			return nil
		}
	}
	name := streamName(b.cfg.SubjectPrefix)
	all := b.subj.evt + ">"
	_, err = EnsureStream(ctx, b.log, js, jetstream.StreamConfig{
		Name:        name,
		Description: "Wick events: the replay window for Last-Event-ID (see docs/bus.md)",
		Subjects:    []string{all},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.ReplayWindow,
		MaxMsgs:     int64(b.cfg.ReplayMaxEvents),
		MaxBytes:    b.cfg.ReplayMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    b.Replicas(),
		RePublish:   &jetstream.RePublish{Source: all, Destination: b.subj.live + ">"},
	})
	if err != nil {
		return fmt.Errorf("bus: create stream %s: %w", name, err)
	}
	b.js, b.stream = js, name
	return nil
}

// streamName derives the JetStream stream name from the subject prefix.
func streamName(prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_EVENTS"
}

// redactURL hides credentials in a NATS URL for logging.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// Close closes every subscription, unregisters every device handler, drains
// both connections (pending messages are still delivered to the bus) and
// shuts the embedded server down. It is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.down.Store(true)
		b.mu.Lock()
		b.closed = true
		groups := b.groups
		b.groups = make(map[string]*group)
		pres := b.presSubs
		b.presSubs = make(map[*PresenceSubscription]struct{})
		b.mu.Unlock()
		for _, g := range groups {
			for _, s := range g.load() {
				s.closeLocal()
			}
		}
		for p := range pres {
			p.closeLocal()
		}
		b.calls.stop()
		b.closeErr = b.shutdown()
	})
	return b.closeErr
}

// shutdown drains the connections and stops the embedded server.
func (b *Bus) shutdown() error {
	var errs []error
	for _, c := range []struct {
		nc   *nats.Conn
		done chan struct{}
	}{{b.nc, b.ncDone}, {b.cc, b.ccDone}} {
		if c.nc == nil {
			continue
		}
		if err := c.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("bus: drain: %w", err))
			c.nc.Close()
		}
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			c.nc.Close()
			errs = append(errs, errors.New("bus: drain timed out"))
		}
	}
	if b.srv != nil && b.ownsSrv {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	return errors.Join(errs...)
}

// Conn returns the events connection, for components that need NATS
// directly. It must not be closed or drained by the caller.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream API on the events connection, or nil when
// the bus runs without JetStream. The webhook worker uses it for its
// durable queue.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// EventStream returns the name of the JetStream stream that holds the
// replay window ("" without JetStream). Its subjects are P.evt.>.
func (b *Bus) EventStream() string { return b.stream }

// Replicas is the JetStream replication factor for the streams and
// buckets Wick creates: Config.Replicas on an external server (at least
// 1), 1 on the embedded one.
func (b *Bus) Replicas() int {
	if b.srv != nil || b.cfg.Replicas < 1 {
		return 1
	}
	return b.cfg.Replicas
}

// StreamSubject returns the P.evt subject filter that covers f's selectors
// (not its NamePrefix), for JetStream consumers of the event stream.
func (b *Bus) StreamSubject(f Filter) string {
	m := compile(f)
	return m.subject(b.subj.evt)
}

// Node returns this process's node name.
func (b *Bus) Node() string { return b.cfg.Node }

// Stats are bus-wide counters since Open.
type Stats struct {
	// Published counts events accepted by Publish in this process.
	Published uint64
	// Delivered counts events placed into subscriber buffers.
	Delivered uint64
	// Dropped counts events (and presence changes) dropped because a
	// subscriber's buffer was full.
	Dropped uint64
	// Malformed counts undecodable messages received on bus subjects.
	Malformed uint64
	// SlowConsumer counts events NATS dropped before the bus saw them,
	// because the process fell behind (CPU starvation); it includes closed
	// subscriptions and never goes down.
	SlowConsumer uint64
	// Subscriptions is the number of open event subscriptions.
	Subscriptions int
	// Groups is the number of NATS subscriptions serving them.
	Groups int
	// Devices is the number of devices with a handler in this process.
	Devices int
}

// Stats returns the bus-wide counters.
func (b *Bus) Stats() Stats {
	st := Stats{
		Published: b.published.Load(),
		Delivered: b.delivered.Load(),
		Dropped:   b.dropped.Load(),
		Malformed: b.malformed.Load(),
		Devices:   b.calls.count(),
	}
	// Under mu, so that a group closing meanwhile is counted exactly once:
	// here, or in slowClosed (leave).
	b.mu.Lock()
	st.Groups = len(b.groups)
	st.SlowConsumer = b.slowClosed.Load()
	for _, g := range b.groups {
		st.Subscriptions += len(g.load())
		st.SlowConsumer += g.slowDropped()
	}
	b.mu.Unlock()
	return st
}
