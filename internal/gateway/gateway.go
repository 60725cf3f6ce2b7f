package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Errors returned by the gateway. Offline devices and timeouts are reported
// with the bus's errors (wrapped), so that errors.Is(err, bus.ErrDeviceOffline)
// and errors.Is(err, bus.ErrTimeout) hold for local and remote calls alike.
var (
	// ErrClosed is returned by Serve and by calls after Shutdown.
	ErrClosed = errors.New("gateway: closed")
	// ErrNotFound means the device has no such function or variable
	// (it is not in its describe, or the device answered 4.04).
	// It is bus.ErrNoSuchName, so that callers need not import the gateway.
	ErrNotFound = bus.ErrNoSuchName
	// ErrBadRequest means the request was refused before it reached the
	// device (name or argument too long) or the device answered 4.00.
	// It is bus.ErrRefused.
	ErrBadRequest = bus.ErrRefused
	// ErrBusy means the device has the most requests in flight it may
	// have (protocol.MaxOutstandingTokens, or maxPendingPings pings); it
	// is bus.ErrDeviceBusy. The session stays online.
	ErrBusy = bus.ErrDeviceBusy
)

// KindReload is a bus call kind the gateway handles beside those of package
// bus: the session re-reads its device from the store (owner, customer,
// product), so that a claim, unclaim or product move made through the API
// applies to an online device at once.
const KindReload = "reload"

// Deps are the collaborators of a Gateway. All are required.
type Deps struct {
	// Store holds devices, their keys and claim codes.
	Store store.Store
	// Bus carries events, presence and device calls.
	Bus *bus.Bus
	// ServerKey is the server's RSA-2048 key
	// (docs/particle-protocol.md#key-types): an *rsa.PrivateKey, or a faster
	// implementation from package rsakey. Sessions use it concurrently.
	ServerKey protocol.ServerKey
	// UDPKey is the server's P-256 key for the Gen 3 transport
	// (docs/device-protocol.md#39-the-dtls-transport); optional: without
	// it ServeUDP fails. It signs each handshake and seals saved sessions.
	UDPKey *ecdsa.PrivateKey
	// Firmware loads binaries for Flash (optional): when nil, the Store
	// serves them if it implements FirmwareSource, else Flash fails.
	Firmware FirmwareSource
}

// Gateway accepts device connections on the Gen 2 TCP transport
// (docs/particle-protocol.md#the-tcp-transport) and runs one session per
// device. All methods are safe for concurrent use.
type Gateway struct {
	cfg   Config
	store store.Store
	bus   *bus.Bus
	key   protocol.ServerKey
	log   *slog.Logger

	// hsSem holds one token per RSA operation in progress.
	hsSem chan struct{}
	// hsRate limits the handshakes each address starts; nil: no limit.
	hsRate *ratelimit.Buckets
	// admission bounds the TCP sessions starting (admission.go); nil: off.
	admission *admission
	// admissionLogged is when a full admission queue was last logged (Unix ns).
	admissionLogged atomic.Int64

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc

	mu        sync.RWMutex
	closed    bool                      // guarded by mu
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[*session]struct{}     // every open connection; guarded by mu
	byID      map[string]*session       // online sessions by device ID; guarded by mu
	sessions  sync.WaitGroup            // one per ServeConn
	bg        sync.WaitGroup            // router, flusher, reset announcements

	router router
	sub    *bus.Subscription // every event, feeding device subscriptions

	stats counters
	// udp is the Gen 3 transport; nil without Deps.UDPKey.
	udp  *udpServer
	ota  otaState // firmware updates (ota.go)
	live liveness // other nodes' heartbeats (cluster.go)

	// presence writes onlines, offlines and last-heard times in batches
	// (presence.go).
	presence *presenceWriter
	// plog rate-limits the per-device online and offline lines
	// (presence_log.go).
	plog presenceLog
	// downs are the devices of the sessions Shutdown ended, marked
	// offline once they are over (shutdown_offline.go).
	downs shutdownOfflines
	// tpoll holds the parked TCP sessions (tcp_park.go); nil where
	// sessions cannot park.
	tpoll *tcpPoller

	// testHookDispatch, when set, runs before each message is dispatched
	// (tests use it to inject panics).
	testHookDispatch func(m *protocol.Message)
	// testHookPublish, when set, runs before each bus publish; an error
	// it returns is the publish's (tests use it to make the bus fail).
	testHookPublish func(e bus.Event) error
}

// New returns a gateway ready to Serve. It marks offline the devices the
// store still shows as held by cfg.Node (a crash of a previous process with
// the same node name) and announces them offline on the bus in the
// background. It starts the gateway's one bus subscription, which delivers
// events to device subscriptions, and the last-heard flusher.
func New(cfg Config, deps Deps, log *slog.Logger) (*Gateway, error) {
	if deps.Store == nil || deps.Bus == nil || deps.ServerKey == nil {
		return nil, errors.New("gateway: Deps needs Store, Bus and ServerKey")
	}
	if rk, ok := deps.ServerKey.(*rsa.PrivateKey); ok && rk == nil {
		return nil, errors.New("gateway: Deps needs Store, Bus and ServerKey")
	}
	pub, ok := deps.ServerKey.Public().(*rsa.PublicKey)
	if !ok || pub == nil {
		return nil, fmt.Errorf("gateway: server key is %T, want RSA-2048", deps.ServerKey.Public())
	}
	if pub.Size() != protocol.DeviceHelloSize {
		return nil, fmt.Errorf("gateway: server key has %d bits, want 2048", pub.Size()*8)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults(deps.Bus.Node())
	g := &Gateway{
		cfg:       cfg,
		store:     deps.Store,
		bus:       deps.Bus,
		key:       deps.ServerKey,
		log:       log.With("component", "gateway", "node", cfg.Node),
		hsSem:     make(chan struct{}, cfg.MaxHandshakes),
		hsRate:    handshakeLimiter(cfg),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*session]struct{}),
		byID:      make(map[string]*session),
		router:    router{sets: make(map[routeKey]map[*session]struct{})},
		ota:       otaState{source: firmwareSource(deps)},
	}
	if rk, ok := g.key.(*rsa.PrivateKey); ok {
		rk.Precompute()
	}
	if cfg.MaxStarting > 0 {
		g.admission = newAdmission(cfg.MaxStarting, cfg.StartQueue)
	}
	if deps.UDPKey != nil {
		u, err := newUDPServer(g, deps.UDPKey)
		if err != nil {
			return nil, err
		}
		g.udp = u
	}
	// The devices a previous run of this node left online, in chunks
	// (shutdown_offline.go): the first before New returns, the rest while
	// the gateway serves.
	resetAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), resetChunkTimeout)
	reset, err := g.store.ResetNodeBatch(ctx, cfg.Node, resetAt, resetChunk)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("gateway: reset devices of node %q: %w", cfg.Node, err)
	}
	sub, err := g.bus.Subscribe(bus.Filter{}, cfg.RouterBuffer)
	if err != nil {
		return nil, fmt.Errorf("gateway: subscribe to events: %w", err)
	}
	g.sub = sub
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.presence = newPresenceWriter(g.store, g.log)
	g.plog.log = g.log
	g.bg.Add(3)
	go g.route()
	go g.flushLoop()
	go g.presenceLogLoop()
	if !cfg.DisableTCPPark {
		if p, err := newTCPPoller(); err != nil {
			g.log.Warn("gateway: idle TCP sessions keep their goroutines", "err", err)
		} else if p != nil {
			g.tpoll = p
			g.bg.Add(2)
			go func() {
				defer g.bg.Done()
				p.run()
			}()
			go g.tcpSweep()
		}
	}
	g.startCluster()
	g.resetPrevious(resetAt, reset)
	return g, nil
}

// Node returns the node name this gateway records in the store.
func (g *Gateway) Node() string { return g.cfg.Node }

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown, when it returns ErrClosed. Transient accept errors are
// retried with a backoff; any other error is returned. Serve does not close
// ln on return except through Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.listeners[ln] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, ln)
		g.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if g.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("gateway: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn("gateway: accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-g.ctx.Done():
				return ErrClosed
			}
			continue
		}
		backoff = 0
		go g.serveTCP(conn)
	}
}

// ServeConn runs the session of one device connection: handshake, Hello,
// then messages until the device disconnects, falls silent, misbehaves, is
// replaced by a newer connection, ctx ends or the gateway shuts down. It
// closes conn and returns when the session is over, the device already
// marked offline. It is the seam for transports and tests (net.Pipe).
//
// Its sessions never park (tcp_park.go): Serve's do.
func (g *Gateway) ServeConn(ctx context.Context, conn net.Conn) {
	s, ok := g.track(conn)
	if !ok {
		return
	}
	defer g.untrack(s)
	// Shutdown closes every tracked session itself, so only a caller's own
	// cancellable context needs a hook (Serve passes g.ctx).
	if ctx != g.ctx && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { s.close(reasonShutdown) })
		defer stop()
	}
	s.serve()
}

// Shutdown stops accepting connections, closes every session (each device
// is marked offline and announced with spark/status offline), waits for
// the sessions to end or ctx to expire, then stops the bus subscription
// and background work. It returns ctx's error if sessions were still
// ending. Calling it again waits again.
func (g *Gateway) Shutdown(ctx context.Context) error {
	start := time.Now()
	var taken []*session // parked sessions, ended by endParked
	g.mu.Lock()
	first := !g.closed
	if !g.closed {
		g.closed = true
		g.log.Info("gateway: shutting down", "sessions", len(g.conns), "online", len(g.byID))
		g.cancel() // wakes handshakes queued for a slot and the background loops
		for ln := range g.listeners {
			ln.Close()
		}
		if g.udp != nil {
			g.udp.closeSockets()
		}
		for s := range g.conns {
			if s.takeParked() {
				taken = append(taken, s)
				continue
			}
			s.close(reasonShutdown)
		}
	}
	g.mu.Unlock()
	endParked(taken, reasonShutdown)
	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
		if first {
			g.log.Info("gateway: shutdown: sessions ended", "took", time.Since(start).Round(time.Millisecond))
		}
	case <-ctx.Done():
		err = fmt.Errorf("gateway: shutdown: %w", ctx.Err())
	}
	// The queued onlines first, then the offlines of the sessions the
	// shutdown ended, a chunk per statement.
	if perr := g.presence.close(ctx); perr != nil && err == nil {
		err = perr
	}
	g.finishShutdownOffline(ctx)
	g.sub.Close()
	if g.tpoll != nil {
		g.tpoll.close()
	}
	g.bg.Wait()
	return err
}

// Close is Shutdown with a 10-second limit.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.Shutdown(ctx)
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	st := g.stats.snapshot()
	st.EventsDropped += g.sub.Dropped()
	if g.udp != nil {
		st.UDPSessions = int64(g.udp.sessionCount())
	}
	if g.admission != nil {
		st.Starting = int64(g.admission.starting())
		st.StartWaiting = g.admission.waiting.Load()
	}
	return st
}

// Online reports whether this gateway holds a session of the device.
func (g *Gateway) Online(deviceID string) bool { return g.lookup(deviceID) != nil }

func (g *Gateway) isClosed() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.closed
}

// lookup returns the online session of a device, or nil.
func (g *Gateway) lookup(deviceID string) *session {
	id := normalizeID(deviceID)
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byID[id]
}

// register makes s the device's session and returns the one it replaces.
func (g *Gateway) register(s *session) (old *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old = g.byID[s.id]
	g.byID[s.id] = s
	return old
}

// unregister removes s if it is still the device's session and reports
// whether it was (false for a session replaced by a newer connection).
func (g *Gateway) unregister(s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byID[s.id] != s {
		return false
	}
	delete(g.byID, s.id)
	return true
}

// flushLoop writes last-heard times in batches.
func (g *Gateway) flushLoop() {
	defer g.bg.Done()
	t := time.NewTicker(g.cfg.LastHeardFlush)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			g.flushLastHeard()
		case <-g.ctx.Done():
			return
		}
	}
}

// flushLastHeard queues for the presence writer the last-heard time of
// every online device whose stored one is lastHeardStep old or more.
func (g *Gateway) flushLastHeard() {
	var batch map[string]time.Time
	step := g.lastHeardStep().Nanoseconds()
	g.mu.RLock()
	for id, s := range g.byID {
		h := s.lastHeard.Load()
		if h-s.flushed.Load() >= step {
			if batch == nil {
				batch = make(map[string]time.Time)
			}
			batch[id] = time.Unix(0, h)
			s.flushed.Store(h)
		}
	}
	g.mu.RUnlock()
	g.presence.touch(batch)
}

// announceReset publishes spark/status offline for devices a previous run
// of this node left online, unless a device is online again by then.
// It runs as one of g.bg.
func (g *Gateway) announceReset(ids []string) {
	defer g.bg.Done()
	for _, id := range ids {
		if g.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(g.ctx, storeTimeout)
		d, err := g.store.DeviceByID(ctx, id)
		cancel()
		if err != nil || d.Online {
			continue
		}
		g.publishStatus(ownerOf(d), d.ProductVersion, id, statusOffline)
		g.publishPresence(id, false, "", "")
	}
}

// storeTimeout bounds each store and bus operation a session makes on its
// own behalf (not on a caller's).
const storeTimeout = 10 * time.Second

// System event names and data the gateway publishes
// (docs/particle-protocol.md#events-the-cloud-emits).
const (
	eventStatus   = "spark/status"
	eventSafeMode = "spark/status/safe-mode"
	eventAppHash  = "spark/device/app-hash"
	statusOnline  = "online"
	statusOffline = "offline"
	// ClaimDoneEventName is sent to a device after its claim code was
	// consumed; any event under spark/device/claim/ clears the device's code.
	ClaimDoneEventName = protocol.ClaimClearEventName
)

// publishStatus publishes a spark/status event for a device.
func (g *Gateway) publishStatus(o owner, productVersion int, deviceID, data string) {
	g.publish(bus.Event{Name: eventStatus, Data: data, DeviceID: deviceID}, o, productVersion)
}

// publishStatusCtx is publishStatus within ctx, returning its error.
func (g *Gateway) publishStatusCtx(ctx context.Context, o owner, productVersion int, deviceID, data string) error {
	return g.publishCtx(ctx, bus.Event{Name: eventStatus, Data: data, DeviceID: deviceID}, o, productVersion)
}

// publish fills in the device's owner and publishes e as a private event
// unless e.Public. It logs a failure and returns it.
func (g *Gateway) publish(e bus.Event, o owner, productVersion int) error {
	return g.publishCtx(context.Background(), e, o, productVersion)
}

// publishCtx is publish within ctx (and storeTimeout); a failure because
// ctx ended is returned, not logged.
func (g *Gateway) publishCtx(ctx context.Context, e bus.Event, o owner, productVersion int) error {
	e.UserID, e.CustomerID, e.ProductID, e.ProductVersion = o.user, o.customer, o.product, productVersion
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var err error
	if g.testHookPublish != nil {
		err = g.testHookPublish(e)
	}
	if err == nil {
		err = g.bus.Publish(ctx, e)
	}
	if err != nil && !errors.Is(err, bus.ErrClosed) && parent.Err() == nil {
		g.log.Warn("gateway: publish", "device", e.DeviceID, "event", e.Name, "err", err)
	}
	if err != nil {
		return fmt.Errorf("gateway: publish %s: %w", e.Name, err)
	}
	return nil
}

// publishPresence announces a device's connection change to every process.
func (g *Gateway) publishPresence(deviceID string, online bool, sessionID, addr string) {
	g.publishPresenceCtx(context.Background(), deviceID, online, sessionID, addr)
}

// publishPresenceCtx is publishPresence within ctx (and storeTimeout).
func (g *Gateway) publishPresenceCtx(ctx context.Context, deviceID string, online bool, sessionID, addr string) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := g.bus.PublishPresence(ctx, bus.Presence{DeviceID: deviceID, Online: online, Node: g.cfg.Node,
		SessionID: sessionID, Addr: addr})
	if err != nil && !errors.Is(err, bus.ErrClosed) && parent.Err() == nil {
		g.log.Warn("gateway: presence", "device", deviceID, "err", err)
	}
}

// owner is who a device's events belong to, as the bus routes them.
type owner struct {
	user     string
	customer string
	product  int64
}

func ownerOf(d *store.Device) owner {
	return owner{user: d.OwnerID, customer: d.CustomerID, product: d.ProductID}
}
