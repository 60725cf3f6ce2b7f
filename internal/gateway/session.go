package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Why a session ended, for the log.
const (
	reasonDisconnected  = "disconnected"
	reasonIdle          = "idle timeout"
	reasonBadFrame      = "bad frame"
	reasonGoodbye       = "goodbye"
	reasonReplaced      = "replaced by a newer connection"
	reasonShutdown      = "shutdown"
	reasonWriteFailed   = "write failed"
	reasonPanic         = "panic"
	reasonStore         = "store error"
	reasonHandshakeRate = "handshake rate limit"
	reasonAdmission     = "admission"
)

// A session is one device connection
// (docs/particle-protocol.md#a-minimal-server-session). Its only goroutine
// is the read loop in serve, and a session of Serve over TCP gives even that
// up between its device's frames (it parks, tcp_park.go; Gen 3 sessions park
// after a quiet spell, udp_park.go); requests, event delivery and describe
// fetches run in short-lived goroutines of their own. Memory per idle
// session is this struct, one AES key schedule, the connection and a few
// map entries: buffers are pooled per frame.
type session struct {
	g     *Gateway
	tr    transport // tcpTransport{} or the session's *udpConn
	conn  net.Conn
	ip    string
	start time.Time
	// deadline ends the handshake and the wait for the Hello.
	deadline time.Time

	// Set by the handshake, then read-only.
	id            string // device ID, 24 lower-case hex
	sid           string // session ID
	storedProduct int64  // the device's product before this session
	// known is the device as the DTLS restore or handshake check read it
	// (knownAt, Unix ns), which recordOnline takes instead of reading it
	// again (remember, takeKnown). Under mu.
	known   *store.Device
	knownAt int64
	hello   protocol.Hello

	// Read loop only.
	opener    *protocol.FrameOpener
	hdr       [2]byte
	block     *blockAssembly // a Block1 describe post in progress
	held      *frameBuf      // a resumed session's first message, not a Hello
	heldPlain []byte
	userBurst bucket
	sysBurst  bucket
	quick     quickACK // acknowledges the device's segments at once
	tp        tcpPark  // parking between frames (tcp_park.go)

	wmu    sync.Mutex
	sealer *protocol.FrameSealer // guarded by wmu

	mu        sync.Mutex
	closed    bool                   // guarded by mu; no new requests or events
	online    bool                   // guarded by mu; SetDeviceOnline succeeded
	ids       protocol.MessageIDs    // guarded by mu
	tokens    protocol.Tokens        // guarded by mu
	pending   []*pending             // guarded by mu
	pings     int                    // guarded by mu; pending pings (they hold no token)
	own       owner                  // guarded by mu
	prodVer   int                    // guarded by mu; product firmware version
	app       *appInfo               // guarded by mu; nil until known
	gotParts  protocol.DescribeFlags // guarded by mu; describes received this session
	subs      []store.Subscription   // guarded by mu
	subsFresh bool                   // guarded by mu; the device subscribed in this session
	subsTimer *time.Timer            // guarded by mu; pending SetDeviceSubscriptions
	descTimer *time.Timer            // guarded by mu; DescribeWait
	queue     []outEvent             // guarded by mu; events waiting for the writer
	draining  bool                   // guarded by mu; a drain goroutine runs
	appHash   string                 // guarded by mu; last app hash published
	reason    string                 // guarded by mu; why the session ended

	lastHeard atomic.Int64 // Unix nanoseconds of the last frame
	flushed   atomic.Int64 // the last-heard time last queued for the store (presence.go)
	// busyLogged is when a refused request was last logged (Unix ns).
	busyLogged atomic.Int64

	rkeys    []routeKey // guarded by g.router.mu
	routeGen uint64     // router goroutine only
	unhandle func()     // bus.HandleDevice's unregister; set before online
	slot     *admitSlot // TCP admission slot (admission.go); nil: none

	// descN numbers the session's describe writes; descSeq holds, per
	// part (descApp, descSys), the number of the latest write of that part
	// (describe.go retries a failed one while it is the latest).
	descN   atomic.Uint64
	descSeq [2]atomic.Uint64

	closeOnce sync.Once
	done      chan struct{} // closed when the session is over
}

// appInfo is a device's application describe as the gateway needs it.
type appInfo struct {
	functions []string
	variables []protocol.VariableDecl
}

func (a *appInfo) hasFunction(name string) bool {
	for _, f := range a.functions {
		if f == name {
			return true
		}
	}
	return false
}

func newSession(g *Gateway, conn net.Conn) *session {
	return &session{g: g, tr: tcpTransport{}, conn: conn, ip: remoteIP(conn.RemoteAddr()), start: time.Now(), done: make(chan struct{})}
}

// serve runs the session to its end, or until it parks (a quiet Gen 3
// session, udp_park.go): then it reports true and the session lives on
// without a goroutine.
func (s *session) serve() (parked bool) {
	defer func() {
		if !parked {
			s.end()
		}
	}()
	defer s.recoverPanic()
	if err := s.handshake(); err != nil {
		return false
	}
	if !s.tr.resumed() {
		s.g.stats.handshakesOK.Add(1)
	}
	if err := s.awaitHello(); err != nil {
		return false
	}
	if err := s.goOnline(); err != nil {
		return false
	}
	return s.readLoop()
}

// end releases the session (finish), lets its transport save or hand it
// over, and marks it done.
func (s *session) end() {
	defer close(s.done)
	defer s.tr.ended(s)
	s.finish()
}

// recoverPanic turns a panic in the session into the end of that session.
func (s *session) recoverPanic() {
	if p := recover(); p != nil {
		s.g.stats.panics.Add(1)
		s.g.log.Error("gateway: panic in session", "device", s.id, "session", s.sid, "panic", p,
			"stack", string(debug.Stack()))
		s.close(reasonPanic)
	}
}

// close ends the session: it closes the connection, so the read loop
// returns and finish runs. The first reason wins.
func (s *session) close(reason string) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		s.conn.Close()
		s.wakeTCP() // a parked session ends on its own goroutine
	})
}

// awaitHello reads the device's Hello (the first frame,
// docs/particle-protocol.md#tcp-handshake step 6) and answers with the server
// Hello at once: TCP firmware drops the connection unless it arrives within
// 4 s.
func (s *session) awaitHello() error {
	g := s.g
	s.conn.SetDeadline(minTime(s.deadline, time.Now().Add(g.cfg.HelloTimeout)))
	fb, plain, err := s.readFrame()
	if err != nil {
		s.readFailed(err)
		return err
	}
	m := &fb.m
	if err := m.Decode(plain); err == nil && protocol.Classify(m) != protocol.KindHello && s.tr.resumed() {
		// A resumed Gen 3 session may start with any message (a ping):
		// the saved Hello stands, and the message is handled once online.
		s.held, s.heldPlain = fb, plain
		s.lastHeard.Store(time.Now().UnixNano())
		s.conn.SetDeadline(time.Time{})
		return nil
	}
	defer putFrameBuf(fb)
	if err := m.Decode(plain); err != nil || protocol.Classify(m) != protocol.KindHello {
		g.stats.framesBad.Add(1)
		s.close(reasonBadFrame)
		g.log.Info("gateway: first message is not a Hello", "device", s.id, "addr", s.ip)
		return errors.New("gateway: first message is not a Hello")
	}
	h, err := protocol.ParseHelloMessage(m)
	if err != nil {
		g.stats.framesBad.Add(1)
		s.close(reasonBadFrame)
		g.log.Info("gateway: bad Hello", "device", s.id, "addr", s.ip, "err", err)
		return err
	}
	if err := s.tr.checkHello(s, &h); err != nil {
		return err
	}
	s.hello = h
	s.otaHello()
	s.lastHeard.Store(time.Now().UnixNano())
	if m.Type == protocol.Confirmable { // Gen 3: the Hello is a CON
		if err := s.sendACK(m.ID); err != nil {
			return err
		}
	}
	if err := s.sendNew(func(id uint16) protocol.Message {
		return protocol.NewServerHello(protocol.NonConfirmable, id)
	}); err != nil {
		return err
	}
	s.conn.SetDeadline(time.Time{})
	return nil
}

// goOnline registers the session as the device's (closing an older one),
// records it in the store, and announces it.
func (s *session) goOnline() error {
	g := s.g
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	h := s.hello
	prodVer := int(h.ProductVersion)
	if h.ProductVersion == 0xFFFF {
		prodVer = 0
	}
	d, err := s.recordOnline(ctx, store.DeviceSession{
		Node:                g.cfg.Node,
		SessionID:           s.sid,
		IP:                  s.ip,
		At:                  s.start,
		PlatformID:          int(h.PlatformID),
		ProductID:           s.helloProduct(ctx),
		ProductVersion:      prodVer,
		SystemModuleVersion: int(h.SystemVersion),
	})
	if err != nil {
		s.close(reasonStore)
		g.log.Error("gateway: record device online", "device", s.id, "err", err)
		return err
	}
	// The online wrote the session's start as last heard.
	s.flushed.Store(s.start.UnixNano())
	s.mu.Lock()
	s.online = true
	s.own = ownerOf(d)
	s.prodVer = d.ProductVersion
	s.app = appFromStore(d)
	s.subs = d.Subscriptions
	s.mu.Unlock()
	g.stats.online.Add(1)
	// The store now names this session; an older one of the same device
	// (a half-open connection the device gave up on) is closed and, no
	// longer registered, leaves the device's state alone.
	if old := g.register(s); old != nil {
		old.close(reasonReplaced)
		g.stats.replaced.Add(1)
	}
	g.router.update(s)
	s.unhandle = g.bus.HandleDevice(s.id, s.handleCall)
	g.publishStatus(s.owner(), d.ProductVersion, s.id, statusOnline)
	g.publishPresence(s.id, true, s.sid, s.ip)
	s.otaOnline()
	g.plog.note(presenceOnline, "gateway: device online", "device", s.id, "session", s.sid, "addr", s.ip,
		"platform", h.PlatformID, "system", h.SystemVersion)
	s.holdUntilDescribed()
	s.startDescribe()
	return nil
}

// helloProduct returns the product the Hello names, if the device should be
// moved into it: it names an existing product and the device is in no
// other product. The Hello's product ID is the platform ID (or 0xFFFF) when
// the firmware is not a product build (docs/particle-protocol.md#hello).
func (s *session) helloProduct(ctx context.Context) int64 {
	h := s.hello
	pid := int64(h.ProductID)
	if h.ProductID == 0xFFFF || h.ProductID == h.PlatformID || pid == 0 {
		return 0
	}
	if s.storedProduct == pid {
		return 0
	}
	if s.storedProduct != 0 {
		s.g.log.Info("gateway: device reports another product; kept in its own", "device", s.id,
			"product", s.storedProduct, "reported", pid)
		return 0
	}
	if _, err := s.g.store.ProductByID(ctx, pid); err != nil {
		s.g.log.Info("gateway: device reports an unknown product", "device", s.id, "reported", pid, "err", err)
		return 0
	}
	return pid
}

// startDescribe asks for the describes now (GET d?1, then GET d?2,
// docs/particle-protocol.md#describe), or, for a device that posts them itself
// (Hello flag 0x20), only for the parts it has not posted after
// Config.DescribeWait.
func (s *session) startDescribe() {
	if s.describedBefore() {
		s.admitted() // nothing to wait for
		return
	}
	if s.hello.Flags&protocol.HelloDeviceDescribe == 0 {
		go s.fetchMissingDescribes()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.descTimer = time.AfterFunc(s.g.cfg.DescribeWait, s.fetchMissingDescribes)
	}
}

// describedBefore reports a Gen 3 session resumed with no Hello whose
// device's application describe is in the store: Device OS resumes with a
// Hello and its describes only when its system or application changed
// since the session was saved, so what the store holds stands and nothing
// is asked (G6 in docs/device-protocol.md#34-choices-where-the-spec-leaves-it-open).
// A device with no application describe stored (its last session ended
// before describing, or its firmware has no functions and no variables)
// is asked as after a handshake.
func (s *session) describedBefore() bool {
	if s.held == nil || !s.tr.resumed() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.app != nil
}

// fetchMissingDescribes requests each describe part not received yet in
// this session, system first, one request per part.
func (s *session) fetchMissingDescribes() {
	defer s.recoverBackground()
	for _, part := range []protocol.DescribeFlags{protocol.DescribeSystem, protocol.DescribeApplication} {
		s.mu.Lock()
		have, closed := s.gotParts&part != 0, s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		if have {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.g.cfg.CallTimeout)
		err := s.fetchDescribe(ctx, part)
		cancel()
		if err != nil {
			s.g.log.Info("gateway: describe", "device", s.id, "part", part.String(), "err", err)
		}
	}
}

// recoverBackground recovers a panic in a session's helper goroutine and
// ends the session.
func (s *session) recoverBackground() {
	if p := recover(); p != nil {
		s.g.stats.panics.Add(1)
		s.g.log.Error("gateway: panic in session helper", "device", s.id, "panic", p, "stack", string(debug.Stack()))
		s.close(reasonPanic)
	}
}

// readLoop dispatches the device's messages until the connection ends, or
// until the transport parks the session (it reports true).
func (s *session) readLoop() (parked bool) {
	idle := s.tr.idleTimeout(s)
	if !s.g.cfg.DisableQuickACK && !s.quick.enabled() {
		s.quick = newQuickACK(s.conn)
	}
	s.tp.online()
	if fb := s.held; fb != nil {
		s.held = nil
		s.dispatch(&fb.m, s.heldPlain)
		s.heldPlain = nil
		putFrameBuf(fb)
	}
	for {
		if !s.tp.parkNow() {
			s.conn.SetReadDeadline(time.Now().Add(idle))
		}
		fb, plain, err := s.readFrame()
		if errors.Is(err, errParked) {
			return true
		}
		if err != nil {
			s.readFailed(err)
			return false
		}
		if isPingFrame(plain) {
			s.tp.ping()
		} else {
			s.quick.arm()
		}
		s.lastHeard.Store(time.Now().UnixNano())
		s.dispatch(&fb.m, plain)
		putFrameBuf(fb)
	}
}

// isPingFrame reports whether plain is a device's keep-alive ping as
// Device OS sends it (CON 0.00, no token: 40 00 <id>), which dispatch
// answers at once with an empty ACK. Its frame skips quick-ACK arming:
// that answer carries the TCP acknowledgement of the ping's segment, so
// the bare ACK segment TCP_QUICKACK would send just before it changes
// nothing for the device and cost the server a setsockopt and a packet on
// every ping (about 8 µs of its CPU, docs/operations.md "Idle CPU").
func isPingFrame(plain []byte) bool {
	return len(plain) == 4 && plain[0] == 0x40 && plain[1] == 0
}

// readFailed classifies the error that ended reading.
func (s *session) readFailed(err error) {
	g := s.g
	switch {
	case errors.Is(err, io.EOF):
		s.close(reasonDisconnected)
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.isOnline() {
			g.stats.idleTimeouts.Add(1)
			s.close(reasonIdle)
		} else {
			s.close("hello timeout")
		}
	case errors.Is(err, protocol.ErrFrameTruncated), errors.Is(err, protocol.ErrFrameLength),
		errors.Is(err, protocol.ErrFrameTooLarge), errors.Is(err, protocol.ErrBadPadding):
		g.stats.framesBad.Add(1)
		s.close(reasonBadFrame)
		g.log.Info("gateway: bad frame", "device", s.id, "session", s.sid, "err", err)
	default:
		s.close(reasonDisconnected)
	}
}

func (s *session) isOnline() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// finish releases everything the session holds and, if it was the
// device's current session, marks the device offline.
func (s *session) finish() {
	defer s.recoverBackground()
	g := s.g
	s.admitted()
	s.close(reasonDisconnected)
	s.mu.Lock()
	s.closed = true
	wasOnline := s.online
	s.online = false
	pend := s.pending
	s.pending = nil
	s.queue = nil
	if s.descTimer != nil {
		s.descTimer.Stop()
	}
	flushSubs := s.subsTimer != nil && s.subsTimer.Stop()
	subs := s.subs
	reason := s.reason
	o := s.own
	prodVer := s.prodVer
	s.mu.Unlock()
	for _, p := range pend {
		p.complete(reply{gone: true})
	}
	if !wasOnline {
		return
	}
	g.stats.online.Add(-1)
	if s.unhandle != nil {
		s.unhandle()
	}
	g.router.remove(s)
	if !g.unregister(s) {
		// Replaced by a newer connection, which owns the device's state now.
		g.plog.note(presenceOffline, "gateway: device session replaced", "device", s.id, "session", s.sid)
		return
	}
	if flushSubs {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		s.writeSubscriptions(ctx, subs)
		cancel()
	}
	if reason == reasonShutdown && g.isClosed() {
		// Shutdown writes the offlines of all its sessions together once
		// they are over, and announces them (shutdown_offline.go).
		g.downs.add(downDevice{id: s.id, sid: s.sid, ip: s.ip, at: time.Unix(0, s.lastHeard.Load()), own: o, prodVer: prodVer})
		g.plog.note(presenceOffline, "gateway: device offline", "device", s.id, "session", s.sid, "reason", reason)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	applied, err := s.recordOffline(ctx, time.Unix(0, s.lastHeard.Load()))
	if err != nil {
		g.log.Error("gateway: record device offline", "device", s.id, "err", err)
		applied = true
	}
	if applied {
		g.publishStatus(o, prodVer, s.id, statusOffline)
		g.publishPresence(s.id, false, s.sid, s.ip)
	}
	g.plog.note(presenceOffline, "gateway: device offline", "device", s.id, "session", s.sid, "reason", reason)
}

func (s *session) owner() owner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.own
}

// nextID returns a fresh message ID for a server-initiated message.
func (s *session) nextID() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.Next()
}

// sendNew sends a server-initiated message built around a fresh message ID.
func (s *session) sendNew(build func(id uint16) protocol.Message) error {
	m := build(s.nextID())
	return s.send(&m)
}

// sendACK answers a confirmable message with an empty ACK.
func (s *session) sendACK(id uint16) error {
	m := protocol.NewEmptyACK(id)
	return s.send(&m)
}

// send encodes and writes one message. Writes are serialised by wmu,
// bounded by Config.WriteTimeout, and a failed write ends the session.
func (s *session) send(m *protocol.Message) error {
	wb := getWriteBuf()
	defer putWriteBuf(wb)
	enc, err := m.AppendBinary(wb.enc[:0])
	if err != nil {
		return fmt.Errorf("gateway: encode message: %w", err)
	}
	wb.enc = enc
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeFrame(wb); err != nil {
		s.close(reasonWriteFailed)
		return fmt.Errorf("gateway: write to device %s: %w", s.id, err)
	}
	return nil
}

// frameBuf is a pooled frame buffer with the Message decoded from it.
type frameBuf struct {
	b []byte
	m protocol.Message
}

// writeBuf is a pooled pair of buffers: the encoded message and its frame.
type writeBuf struct {
	enc   []byte
	frame []byte
}

var (
	framePool = sync.Pool{New: func() any { return &frameBuf{b: make([]byte, 0, 256)} }}
	writePool = sync.Pool{New: func() any { return &writeBuf{} }}
)

// maxPooled keeps buffers grown by a rare large frame out of the pools.
const maxPooled = 2048

func getFrameBuf() *frameBuf { return framePool.Get().(*frameBuf) }

func putFrameBuf(fb *frameBuf) {
	if cap(fb.b) > maxPooled {
		return
	}
	fb.m = protocol.Message{Options: fb.m.Options[:0]}
	framePool.Put(fb)
}

func getWriteBuf() *writeBuf { return writePool.Get().(*writeBuf) }

func putWriteBuf(wb *writeBuf) {
	if cap(wb.enc) > maxPooled || cap(wb.frame) > maxPooled+64 {
		return
	}
	writePool.Put(wb)
}

// appFromStore converts a stored application describe.
func appFromStore(d *store.Device) *appInfo {
	if d.Functions == nil && d.Variables == nil {
		return nil
	}
	a := &appInfo{functions: d.Functions}
	for name, t := range d.Variables {
		if vt, err := protocol.ParseVariableType(t); err == nil {
			a.variables = append(a.variables, protocol.VariableDecl{Name: name, Type: vt})
		}
	}
	return a
}

func newSessionID() string { return hex.EncodeToString(randomBytes(8)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return b
}

// remoteIP returns the IP of a TCP peer, or the address as a string.
func remoteIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	s := a.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

func normalizeID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// offline returns the error of a request to a device that is not (or no
// longer) connected.
func (s *session) offline() error {
	return fmt.Errorf("gateway: device %s: %w", s.id, bus.ErrDeviceOffline)
}
