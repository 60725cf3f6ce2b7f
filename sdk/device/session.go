package device

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// Session errors, reported through Config.OnState and the log.
var (
	// ErrHelloTimeout means the server did not send its Hello in time
	// (Config.HelloTimeout); TCP firmware drops the connection then too.
	ErrHelloTimeout = errors.New("device: no server hello")
	// ErrPingTimeout means a keep-alive ping stayed unanswered.
	ErrPingTimeout = errors.New("device: ping timeout")
)

const (
	writeTimeout   = 20 * time.Second
	goodbyeTimeout = time.Second
	// describeBlockSize is the Block1/Block2 size for describes that do not
	// fit one message (docs/particle-protocol.md#describe: 512 or 1024, the
	// largest that fits).
	describeBlockSize = 512
	// maxPending bounds the requests awaiting an answer; the oldest is
	// failed when a server never answers.
	maxPending = 32
	// cloudDisconnectUser is CLOUD_DISCONNECT_REASON_USER of Device OS,
	// sent in the Goodbye when Run's context ends.
	cloudDisconnectUser = 2
	// Firmware update flags published after every handshake
	// (docs/particle-protocol.md#events-devices-publish).
	eventUpdatesEnabled = "particle/device/updates/enabled"
	eventUpdatesForced  = "particle/device/updates/forced"
)

// session is one connection: handshake done, frames flowing.
type session struct {
	d    *Device
	conn net.Conn
	cr   countingReader
	fr   *protocol.FrameReader // reader goroutine only

	wmu     sync.Mutex // serialises writes; guards sealer and ids
	sealer  *protocol.FrameSealer
	ids     protocol.MessageIDs
	tokens  atomic.Uint32 // next 1-byte token, incremented (docs/particle-protocol.md#message-ids-and-tokens)
	closed  atomic.Bool
	leaving atomic.Bool // Goodbye sent: no more writes

	pmu     sync.Mutex
	pending []pendingRequest // CONs awaiting their ACK, by message ID

	online     atomic.Bool
	wasOnline  bool         // read by connectOnce after run returns
	drainUntil atomic.Int64 // unix nanos; set when leaving

	// UDP transport (nil over TCP): conn is udp, and fr and sealer are nil.
	udp     *udpConn
	resumed bool    // the connection resumed a saved session (no handshake)
	appHash [8]byte // of the resumed session: the app digest when it was saved

	// Reading goroutine only.
	rbuf                    []byte           // UDP: the message being handled
	msg                     protocol.Message // decoded frame, aliases the frame buffer
	helloDeadline, lastRecv time.Time
	pingSent                time.Time // zero when no ping is outstanding
	ota                     *otaRecv  // the update in progress, nil when none
	ota3                    *otaRecv3 // the OTA v3 update in progress, nil when none
}

// pendingRequest is a confirmable message whose ACK (or RST) someone awaits.
type pendingRequest struct {
	id uint16
	// fn receives the answer, which aliases the frame buffer, or nil when
	// the session ended first. It runs on the reading goroutine.
	fn func(m *protocol.Message)
}

// countingReader counts bytes read, so that a read deadline that expires
// between frames (nothing consumed) can be told from one inside a frame.
// Once a frame has begun it calls midFrame, once, before reading on: the
// keep-alive deadline is for silence, and a process descheduled past it
// between a frame's header and its body (the body already received) would
// otherwise lose the session to a timeout that Go reports before reading.
type countingReader struct {
	r        io.Reader
	n        int64
	start    int64 // n when the current frame began
	extended bool  // midFrame ran for the current frame
	midFrame func()
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n != c.start && !c.extended && c.midFrame != nil {
		c.extended = true
		c.midFrame()
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// frame marks the start of a frame and returns the count there.
func (c *countingReader) frame() int64 {
	c.start, c.extended = c.n, false
	return c.n
}

// frameRestTimeout bounds the rest of a frame whose first bytes arrived.
const frameRestTimeout = 10 * time.Second

// dial connects and runs the handshake
// (docs/particle-protocol.md#tcp-handshake).
func dial(ctx context.Context, d *Device) (*session, error) {
	cfg := &d.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	dialFn := cfg.Dial
	if dialFn == nil {
		dialFn = (&net.Dialer{}).DialContext
	}
	conn, err := dialFn(dctx, "tcp", cfg.ServerAddr)
	if err != nil {
		return nil, fmt.Errorf("device: dial %s: %w", cfg.ServerAddr, err)
	}
	key, err := cfg.privateKey()
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The handshake has three blocking steps; the firmware gives each 20 s.
	// A cancelled context interrupts it through the deadline.
	conn.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	keys, err := protocol.DeviceHandshake(conn, protocol.DeviceHandshakeConfig{
		ID: d.id, PrivateKey: key, ServerKey: cfg.ServerKey,
	})
	if !stop() || err != nil {
		conn.Close()
		if err == nil || ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("device: handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	if cfg.Quirks.Nagle {
		if nd, ok := conn.(interface{ SetNoDelay(bool) error }); ok {
			nd.SetNoDelay(false)
		}
	}
	s := &session{d: d, conn: conn, ids: keys.DeviceMessageIDs()}
	s.cr.r, s.cr.midFrame = conn, s.restOfFrame
	s.fr = protocol.NewFrameReader(&s.cr, keys, 0)
	s.sealer = protocol.NewFrameSealer(keys, 0)
	s.tokens.Store(uint32(rand.N(256))) // firmware draws a random first token
	return s, nil
}

// transport returns the session's transport.
func (s *session) transport() protocol.Transport {
	if s.udp != nil {
		return protocol.TransportUDP
	}
	return protocol.TransportTCP
}

// readFrame returns the next message: a decrypted frame over TCP, a record's
// content over UDP.
func (s *session) readFrame() ([]byte, error) {
	if s.udp == nil {
		return s.fr.ReadFrame()
	}
	if s.rbuf == nil {
		s.rbuf = make([]byte, udpReadBuf)
	}
	n, err := s.udp.Read(s.rbuf)
	return s.rbuf[:n], err
}

func (s *session) isOnline() bool { return s.online.Load() && !s.closed.Load() && !s.leaving.Load() }

// nextToken returns the next 1-byte token.
func (s *session) nextToken() byte { return byte(s.tokens.Add(1) - 1) }

// closeConn closes the connection once; a blocked read or write returns.
func (s *session) closeConn() {
	if s.closed.CompareAndSwap(false, true) {
		s.conn.Close()
	}
}

// send writes m. With newID it first takes the next message ID (requests
// and separate responses); replies (ACKs) keep the ID they answer. A
// non-nil fn is registered for m's ACK before m is written.
func (s *session) send(m *protocol.Message, newID bool, fn func(*protocol.Message)) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() || s.leaving.Load() {
		return ErrOffline
	}
	if newID {
		m.ID = s.ids.Next()
	}
	if fn != nil {
		s.addPending(m.ID, fn)
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.writeFrame(m, nil); err != nil {
		// A partly written frame desynchronises the stream: give up on it.
		s.closeConn()
		if fn != nil {
			s.takePending(m.ID)
		}
		return fmt.Errorf("device: write: %w", err)
	}
	return nil
}

func (s *session) reply(m protocol.Message) error { return s.send(&m, false, nil) }

// replyInPlace sends a reply Device OS builds in the request's buffer (the
// ACK of a ping, a signal, a key change): with Quirks.ReplyIDs it carries
// the device's next message ID instead of the request's, as the firmware's
// TCP channel stamps it.
func (s *session) replyInPlace(m protocol.Message) error {
	return s.send(&m, s.d.cfg.Quirks.ReplyIDs && s.udp == nil, nil)
}

// sendSeparate sends the empty ACK of request id and then its separate
// response r (which takes the next message ID): in one write, or in two
// with Quirks.SplitWrites.
func (s *session) sendSeparate(id uint16, r *protocol.Message) error {
	if s.d.cfg.Quirks.SplitWrites {
		if err := s.reply(protocol.NewEmptyACK(id)); err != nil {
			return err
		}
		return s.send(r, true, nil)
	}
	ack := protocol.NewEmptyACK(id)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() || s.leaving.Load() {
		return ErrOffline
	}
	r.ID = s.ids.Next()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.writeFrame(&ack, r); err != nil {
		s.closeConn()
		return fmt.Errorf("device: write: %w", err)
	}
	return nil
}

// writeBuf holds the encoding of one message and its frame while it is
// written. Buffers are pooled rather than kept per session, so an idle
// device holds none.
type writeBuf struct{ msg, frame []byte }

var writeBufs = sync.Pool{New: func() any { return new(writeBuf) }}

// writeFrame encodes and seals m, and then more if it is not nil, and
// writes the frames in one write; s.wmu must be held.
func (s *session) writeFrame(m, more *protocol.Message) error {
	b := writeBufs.Get().(*writeBuf)
	defer writeBufs.Put(b)
	if s.udp != nil {
		// One message per record and datagram.
		for _, x := range [2]*protocol.Message{m, more} {
			if x == nil {
				continue
			}
			var err error
			if b.msg, err = x.AppendBinary(b.msg[:0]); err != nil {
				return err
			}
			if _, err := s.udp.Write(b.msg); err != nil {
				return err
			}
		}
		return nil
	}
	b.frame = b.frame[:0]
	for _, x := range [2]*protocol.Message{m, more} {
		if x == nil {
			continue
		}
		var err error
		if b.msg, err = x.AppendBinary(b.msg[:0]); err != nil {
			return err
		}
		if b.frame, err = s.sealer.Seal(b.frame, b.msg); err != nil {
			return err
		}
	}
	_, err := s.conn.Write(b.frame)
	return err
}

func (s *session) addPending(id uint16, fn func(*protocol.Message)) {
	s.pmu.Lock()
	var dropped func(*protocol.Message)
	if len(s.pending) >= maxPending {
		dropped = s.pending[0].fn
		s.pending = append(s.pending[:0], s.pending[1:]...)
	}
	s.pending = append(s.pending, pendingRequest{id: id, fn: fn})
	s.pmu.Unlock()
	if dropped != nil {
		dropped(nil)
	}
}

// takePending removes and returns the callback waiting for id.
func (s *session) takePending(id uint16) func(*protocol.Message) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for i, p := range s.pending {
		if p.id == id {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			if len(s.pending) == 0 {
				s.pending = nil
			}
			return p.fn
		}
	}
	return nil
}

// failPending tells every waiter that the session ended.
func (s *session) failPending() {
	s.pmu.Lock()
	p := s.pending
	s.pending = nil
	s.pmu.Unlock()
	for _, r := range p {
		r.fn(nil)
	}
}

// request sends a confirmable m and waits for its ACK or RST; it returns
// ErrRejected for an RST or an error code.
func (s *session) request(ctx context.Context, m *protocol.Message) error {
	ch := make(chan error, 1)
	err := s.send(m, true, func(a *protocol.Message) {
		switch {
		case a == nil:
			ch <- ErrOffline
		case a.Type == protocol.Reset:
			ch <- fmt.Errorf("%w: reset", ErrRejected)
		case a.Code != protocol.CodeEmpty && !a.Code.IsSuccess():
			ch <- fmt.Errorf("%w: %s", ErrRejected, a.Code)
		default:
			ch <- nil
		}
	})
	if err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		s.takePending(m.ID)
		return ctx.Err()
	}
}

// hello is the device's Hello (docs/particle-protocol.md#hello).
func (s *session) hello() protocol.Message {
	cfg := &s.d.cfg
	flags := protocol.HelloGoodbye
	if cfg.DeviceDescribe {
		flags |= protocol.HelloDeviceDescribe
	}
	var id []byte
	if s.udp != nil {
		id = s.d.id[:] // over DTLS the Hello names the device
	}
	h := protocol.Hello{
		DeviceID:       id,
		ProductID:      cfg.ProductID,
		ProductVersion: cfg.ProductVersion,
		Flags:          flags,
		PlatformID:     cfg.PlatformID,
		SystemVersion:  cfg.SystemVersion,
		MaxMessageSize: cfg.MaxMessageSize,
		MaxBinarySize:  userMaxSize,
		OTAChunkSize:   512,
	}
	s.d.helloOTA(&h)
	return protocol.NewHello(s.transport().DefaultType(), 0, h)
}

// run exchanges messages until the connection fails or ctx ends.
//
// The reading goroutine spends its life parked in a read, so the frames
// on its stack at that point are kept small (state lives in the session,
// work happens in helpers): an idle device's stack then shrinks to 4 KB.
func (s *session) run(ctx context.Context) error {
	defer s.failPending()
	defer s.closeConn()
	stop := context.AfterFunc(ctx, s.leave)
	defer stop()
	if err := s.start(); err != nil {
		return err
	}
	for {
		s.armDeadline()
		before := s.cr.frame()
		frame, err := s.readFrame()
		if err := s.received(ctx, frame, err, before); err != nil {
			return err
		}
	}
}

// start sends the Hello and starts the clock for the server's.
func (s *session) start() error {
	if s.udp != nil {
		return s.startUDP()
	}
	h := s.hello()
	if err := s.send(&h, true, nil); err != nil {
		return err
	}
	now := time.Now()
	s.helloDeadline, s.lastRecv = now.Add(s.d.cfg.HelloTimeout), now
	return nil
}

// armDeadline sets the read deadline: the server's Hello, the ping's
// answer, the keep-alive, or the end of the drain when leaving.
func (s *session) armDeadline() {
	cfg := &s.d.cfg
	var deadline time.Time
	switch {
	case !s.online.Load():
		deadline = s.helloDeadline
	case !s.pingSent.IsZero():
		deadline = s.pingSent.Add(cfg.PingTimeout)
	default:
		deadline = s.lastRecv.Add(cfg.KeepAlive)
	}
	if d := s.drainUntil.Load(); d != 0 {
		deadline = time.Unix(0, d)
	}
	s.conn.SetReadDeadline(deadline)
	if d := s.drainUntil.Load(); d != 0 { // leave ran meanwhile: its deadline wins
		s.conn.SetReadDeadline(time.Unix(0, d))
	}
}

// restOfFrame gives the rest of a begun frame frameRestTimeout instead of
// the keep-alive or ping deadline; leaving's drain deadline still wins.
func (s *session) restOfFrame() {
	s.conn.SetReadDeadline(time.Now().Add(frameRestTimeout))
	if d := s.drainUntil.Load(); d != 0 {
		s.conn.SetReadDeadline(time.Unix(0, d))
	}
}

// received handles the outcome of one read: a frame, the keep-alive
// deadline (nothing consumed: send a ping), or the end of the session.
func (s *session) received(ctx context.Context, frame []byte, err error, before int64) error {
	if ctx.Err() != nil {
		if err != nil {
			return ctx.Err()
		}
		return nil // leaving: discard what the server still sends
	}
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) || s.cr.n != before {
			return fmt.Errorf("device: read: %w", err)
		}
		switch {
		case !s.online.Load():
			return ErrHelloTimeout
		case !s.pingSent.IsZero():
			return ErrPingTimeout
		}
		ping := protocol.NewPing(0)
		if err := s.send(&ping, true, nil); err != nil {
			return err
		}
		s.pingSent = time.Now()
		return nil
	}
	s.lastRecv, s.pingSent = time.Now(), time.Time{}
	if err := s.msg.Decode(frame); err != nil {
		s.d.cfg.Logger.Debug("device: undecodable message", "device", s.d.ID(), "err", err)
		return nil
	}
	return s.handle(ctx, &s.msg)
}

// leave ends the session when Run's context is done: Goodbye, then a
// half-close, so that the server reads the Goodbye before the end of the
// stream (closing a socket with unread data would reset the connection and
// could discard the Goodbye on the server's side). The reading goroutine
// drains the connection until the server closes it or goodbyeTimeout.
func (s *session) leave() {
	s.drainUntil.Store(time.Now().Add(goodbyeTimeout).UnixNano())
	if s.goodbye() {
		if cw, ok := s.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			s.conn.SetReadDeadline(time.Unix(0, s.drainUntil.Load()))
			return
		}
	}
	s.closeConn()
}

// goodbye tells the server the disconnect is intentional
// (docs/particle-protocol.md#goodbye) and reports whether it was written. It
// gives up rather than wait behind a blocked writer.
func (s *session) goodbye() bool {
	if !s.online.Load() {
		return false
	}
	// A write in progress normally ends within microseconds; one blocked on
	// a full connection ends at its deadline, which is not worth waiting for.
	deadline := time.Now().Add(goodbyeTimeout)
	for !s.wmu.TryLock() {
		if time.Now().After(deadline) {
			s.d.cfg.Logger.Debug("device: no goodbye, a write is blocked", "device", s.d.ID())
			return false
		}
		time.Sleep(time.Millisecond)
	}
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return false
	}
	// Later writes (handlers finishing) fail: the stream ends here.
	s.leaving.Store(true)
	m := protocol.NewGoodbye(protocol.NonConfirmable, s.ids.Next(), protocol.Goodbye{CloudReason: cloudDisconnectUser})
	s.conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	if err := s.writeFrame(&m, nil); err != nil {
		s.d.cfg.Logger.Debug("device: goodbye", "device", s.d.ID(), "err", err)
		return false
	}
	return true
}

// handle dispatches one message from the server
// (docs/particle-protocol.md#message-catalogue,
// docs/particle-protocol.md#a-minimal-server-session from the device's side).
// Errors end the session.
func (s *session) handle(ctx context.Context, m *protocol.Message) error {
	switch protocol.Classify(m) {
	case protocol.KindPing:
		return s.replyInPlace(protocol.NewEmptyACK(m.ID))
	case protocol.KindEmptyACK, protocol.KindReset:
		if fn := s.takePending(m.ID); fn != nil {
			fn(m)
		}
	case protocol.KindResponse:
		switch m.Type {
		case protocol.Acknowledgement, protocol.Reset:
			if fn := s.takePending(m.ID); fn != nil {
				fn(m)
			}
		case protocol.Confirmable:
			return s.reply(protocol.NewEmptyACK(m.ID))
		}
	case protocol.KindHello:
		if m.Type == protocol.Confirmable {
			if err := s.reply(protocol.NewEmptyACK(m.ID)); err != nil {
				return err
			}
		}
		s.goOnline(ctx, true)
	case protocol.KindDescribeRequest:
		return s.answerDescribe(m)
	case protocol.KindFunctionCall:
		return s.answerFunction(ctx, m)
	case protocol.KindVariableRequest:
		return s.answerVariable(m)
	case protocol.KindEvent:
		return s.receiveEvent(m)
	case protocol.KindSignal:
		return s.answerSignal(m)
	case protocol.KindKeyChange:
		if m.Type == protocol.Confirmable {
			return s.replyInPlace(protocol.NewEmptyACK(m.ID))
		}
	case protocol.KindUpdateBegin, protocol.KindChunk, protocol.KindUpdateDone,
		protocol.KindUpdateStart, protocol.KindUpdateChunk, protocol.KindUpdateFinish:
		return s.handleOTA(m)
	case protocol.KindServerMoved:
		// Never sent by a server of one's own: refuse it.
		if m.Type == protocol.Confirmable {
			return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeServiceUnavailable, nil))
		}
	default:
		if m.Type == protocol.Confirmable {
			return s.reply(protocol.NewReset(m.ID))
		}
	}
	return nil
}

// goOnline marks the session online once the server answered; with full
// it then sends what firmware sends after a handshake (afterOnline). Over
// TCP the server's Hello calls it, over UDP the ACK of the device's Hello
// or, on a resumed session, of its first ping.
func (s *session) goOnline(ctx context.Context, full bool) {
	if s.online.Load() {
		return
	}
	s.d.otaHelloAnswered()
	s.online.Store(true)
	s.wasOnline = true
	s.d.setState(Online, nil)
	s.d.cfg.Logger.Info("device: online", "device", s.d.ID(), "transport", s.transport(), "resumed", s.resumed)
	if full {
		go s.afterOnline(ctx)
	}
}

func (s *session) ackIfConfirmable(m *protocol.Message) error {
	if m.Type != protocol.Confirmable {
		return nil
	}
	return s.reply(protocol.NewEmptyACK(m.ID))
}

// cloneToken copies m's token out of the frame buffer.
func cloneToken(m *protocol.Message) []byte {
	if len(m.Token) == 0 {
		return nil
	}
	return append([]byte(nil), m.Token...)
}

// badRequest answers a malformed request with a piggy-backed 4.00.
func (s *session) badRequest(m *protocol.Message) error {
	return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeBadRequest, nil))
}

// afterOnline sends what firmware sends after the server's Hello (system
// describe, subscriptions, claim code, update flags, time request,
// application describe), in Device OS 3.x's order. Write errors close the
// connection, which ends run; they need no handling here.
func (s *session) afterOnline(ctx context.Context) {
	d := s.d
	if d.cfg.DeviceDescribe {
		if err := s.postDescribe(protocol.DescribeSystem); err != nil {
			return
		}
	}
	seen := map[string]bool{}
	prefixes := []string{"spark", "particle"}
	d.mu.Lock()
	for _, sub := range d.subs {
		prefixes = append(prefixes, sub.prefix)
	}
	code := d.claimCode
	d.mu.Unlock()
	for _, p := range prefixes {
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := s.subscribe(p); err != nil {
			return
		}
	}
	if code != "" {
		if err := s.publish(ctx, protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte(code),
			Private: true, TTL: protocol.DefaultEventTTL}, false); err != nil {
			return
		}
	}
	for _, e := range []struct{ name, data string }{{eventUpdatesEnabled, "true"}, {eventUpdatesForced, "false"}} {
		if err := s.publish(ctx, protocol.Event{Name: e.name, Data: []byte(e.data), Private: true,
			TTL: protocol.DefaultEventTTL}, false); err != nil {
			return
		}
	}
	t := protocol.NewTimeRequest(0, s.nextToken())
	sent := time.Now()
	if err := s.send(&t, true, func(a *protocol.Message) { s.receiveTime(a, sent) }); err != nil {
		return
	}
	if d.cfg.DeviceDescribe {
		s.postDescribe(protocol.DescribeApplication)
	}
}

// receiveTime records the piggy-backed time reply
// (docs/particle-protocol.md#time ✔).
func (s *session) receiveTime(a *protocol.Message, sent time.Time) {
	if a == nil {
		return
	}
	unix, err := protocol.ParseTimeResponse(a)
	if err != nil {
		s.d.cfg.Logger.Debug("device: bad time response", "device", s.d.ID(), "err", err)
		return
	}
	now := time.Now()
	// The server read its clock about half-way through the round trip.
	local := sent.Add(now.Sub(sent) / 2)
	s.d.mu.Lock()
	s.d.timeDelta, s.d.timeSet = time.Unix(int64(unix), 0).Sub(local), true
	s.d.mu.Unlock()
}

// subscribe sends GET e/prefix with the "my devices" scope
// (docs/particle-protocol.md#subscriptions).
func (s *session) subscribe(prefix string) error {
	m := protocol.NewSubscribe(protocol.Confirmable, 0, protocol.Subscription{Prefix: prefix, MyDevices: true})
	return s.send(&m, true, nil)
}

// publish sends an event: NON over TCP, or CON awaiting its ACK.
func (s *session) publish(ctx context.Context, e protocol.Event, withAck bool) error {
	typ := s.transport().DefaultType()
	if withAck {
		typ = protocol.Confirmable
	}
	m, err := protocol.NewEvent(typ, 0, e)
	if err != nil {
		return fmt.Errorf("device: event %q: %w", e.Name, err)
	}
	if withAck {
		return s.request(ctx, &m)
	}
	return s.send(&m, true, nil)
}

// postDescribe sends a device-initiated describe (Hello flag 0x20,
// docs/particle-protocol.md#describe): one CON POST d?flags, or Block1 blocks of
// 512 bytes, each with its own token, the next sent once the previous is ACKed.
// Must not run on the reading goroutine.
func (s *session) postDescribe(flags protocol.DescribeFlags) error {
	payload, err := s.d.describePayload(flags)
	if err != nil {
		return err
	}
	if len(payload) <= int(s.d.cfg.MaxMessageSize)-describeBlockSize/8 {
		m, err := protocol.NewDescribePost(0, s.nextToken(), protocol.DescribeBody{Flags: flags, Payload: payload})
		if err != nil {
			return fmt.Errorf("device: describe: %w", err)
		}
		return s.send(&m, true, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	for num := 0; num*describeBlockSize < len(payload); num++ {
		end := min((num+1)*describeBlockSize, len(payload))
		m, err := protocol.NewDescribePost(0, s.nextToken(), protocol.DescribeBody{
			Flags:   flags,
			Block:   &protocol.Block{Num: uint32(num), More: end < len(payload), Size: describeBlockSize},
			Payload: payload[num*describeBlockSize : end],
		})
		if err != nil {
			return fmt.Errorf("device: describe: %w", err)
		}
		if err := s.request(ctx, &m); err != nil {
			return fmt.Errorf("device: describe block %d: %w", num, err)
		}
	}
	return nil
}

// answerDescribe answers GET d?flags: empty ACK, then a separate CON 2.05
// with the token (Device OS sends it CON even over TCP), split into Block2
// blocks with an ETag when it is larger than one message.
func (s *session) answerDescribe(m *protocol.Message) error {
	req, err := s.parseDescribeRequest(m)
	tok, ok := m.Token1()
	if err != nil || !ok {
		return s.badRequest(m)
	}
	payload, err := s.d.describePayload(req.Flags)
	if err != nil {
		return s.badRequest(m)
	}
	body := protocol.DescribeBody{Payload: payload}
	if len(payload) > int(s.d.cfg.MaxMessageSize)-describeBlockSize/8 || req.Block2 != nil {
		num := 0
		if req.Block2 != nil {
			num = int(req.Block2.Num)
		}
		start := num * describeBlockSize
		if start >= len(payload) {
			r := protocol.NewResponse(protocol.Confirmable, 0, tok, protocol.CodeBadOption, nil)
			return s.sendSeparate(m.ID, &r)
		}
		end := min(start+describeBlockSize, len(payload))
		sum := sha256.Sum256(payload)
		body.ETag = sum[:4]
		body.Block = &protocol.Block{Num: uint32(num), More: end < len(payload), Size: describeBlockSize}
		body.Payload = payload[start:end]
	}
	r, err := protocol.NewDescribeResponse(protocol.Confirmable, 0, tok, body)
	if err != nil {
		return fmt.Errorf("device: describe response: %w", err)
	}
	return s.sendSeparate(m.ID, &r)
}

// parseDescribeRequest parses GET d?flags. A request without the flags query
// asks for the full describe (system and application), as Device OS before
// 3.3 reads it, unless Quirks.DescribeRequiresFlags refuses it as 3.3 does.
func (s *session) parseDescribeRequest(m *protocol.Message) (protocol.DescribeRequest, error) {
	if _, has := m.Option(protocol.OptionURIQuery); has || s.d.cfg.Quirks.DescribeRequiresFlags {
		return protocol.ParseDescribeRequest(m)
	}
	full := *m
	full.Options = append([]protocol.Option(nil), m.Options...)
	full.AddOption(protocol.OptionURIQuery, []byte{byte(protocol.DescribeSystem | protocol.DescribeApplication)})
	return protocol.ParseDescribeRequest(&full)
}

// answerFunction handles POST f/name?arg
// (docs/particle-protocol.md#functions ✔): empty ACK (4.00 for an over-long
// argument), then the handler runs on the application queue and its result goes
// back as a separate NON 2.04. Like Device OS, an unknown function gets the ACK
// but no result; the cloud times out.
func (s *session) answerFunction(ctx context.Context, m *protocol.Message) error {
	call, err := protocol.ParseFunctionCall(m)
	tok, ok := m.Token1()
	if err != nil || !ok || len(call.Argument) > protocol.MaxFunctionArgLen {
		return s.reply(protocol.NewACK(m.ID, nil, protocol.CodeBadRequest, nil))
	}
	if err := s.reply(protocol.NewEmptyACK(m.ID)); err != nil {
		return err
	}
	d := s.d
	var fn FunctionHandler
	d.mu.Lock()
	for _, f := range d.functions {
		if f.name == call.Name {
			fn = f.fn
		}
	}
	d.mu.Unlock()
	if fn == nil {
		d.cfg.Logger.Debug("device: call of unknown function", "device", d.ID(), "function", call.Name)
		return nil
	}
	if !d.app.submit(func() {
		ret := fn(ctx, call.Argument)
		r := protocol.NewFunctionResult(s.transport().DefaultType(), 0, tok, ret)
		s.send(&r, true, nil)
	}) {
		d.cfg.Logger.Warn("device: function call dropped, handlers are backlogged", "device", d.ID(), "function", call.Name)
	}
	return nil
}

// answerVariable handles GET v/name (docs/particle-protocol.md#variables ✔):
// empty ACK, then a separate NON 2.05 with the value, or 4.04 for an unknown
// name.
func (s *session) answerVariable(m *protocol.Message) error {
	name, err := protocol.ParseVariableRequest(m)
	tok, ok := m.Token1()
	if err != nil || !ok {
		return s.badRequest(m)
	}
	d := s.d
	var v variable
	found := false
	d.mu.Lock()
	for _, x := range d.variables {
		if x.name == name {
			v, found = x, true
		}
	}
	d.mu.Unlock()
	typ := s.transport().DefaultType()
	if !found {
		r := protocol.NewResponse(typ, 0, tok, protocol.CodeNotFound, nil)
		return s.sendSeparate(m.ID, &r)
	}
	r := protocol.NewVariableValue(typ, 0, tok, encodeVariable(v))
	return s.sendSeparate(m.ID, &r)
}

// encodeVariable calls the getter and encodes its value
// (docs/particle-protocol.md#variables).
func encodeVariable(v variable) []byte {
	var val any
	switch g := v.get.(type) {
	case func() bool:
		val = g()
	case func() int32:
		val = g()
	case func() int:
		val = int32(g())
	case func() float64:
		val = g()
	case func() string:
		str := g()
		if len(str) > protocol.MaxStringValueLen {
			str = str[:protocol.MaxStringValueLen]
		}
		val = str
	}
	b, _ := protocol.AppendVariable(nil, v.typ, val) // the getter type fixed v.typ
	return b
}

// answerSignal handles PUT s?on: piggy-backed ACK 2.04
// (docs/particle-protocol.md#signal ✔).
func (s *session) answerSignal(m *protocol.Message) error {
	on, err := protocol.ParseSignal(m)
	if err != nil {
		return s.badRequest(m)
	}
	if err := s.replyInPlace(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeChanged, nil)); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	d.signaling = on
	d.mu.Unlock()
	if d.cfg.OnSignal != nil {
		d.cfg.OnSignal(on)
	}
	return nil
}

// receiveEvent handles an event published to the device
// (docs/particle-protocol.md#events): ACK it when confirmable, forget the claim
// code on spark/device/claim/..., and queue the handlers of every matching
// subscription.
func (s *session) receiveEvent(m *protocol.Message) error {
	if err := s.ackIfConfirmable(m); err != nil {
		return err
	}
	e, err := protocol.ParseEvent(m)
	if err != nil {
		return nil
	}
	d := s.d
	var handlers []EventHandler
	d.mu.Lock()
	if protocol.IsClaimClearEvent(e.Name) && d.claimCode != "" {
		d.claimCode = ""
		d.cfg.Logger.Info("device: claimed", "device", d.ID(), "event", e.Name)
	}
	for _, sub := range d.subs {
		if strings.HasPrefix(e.Name, sub.prefix) {
			handlers = append(handlers, sub.fn)
		}
	}
	d.mu.Unlock()
	if len(handlers) == 0 {
		return nil
	}
	name, data := e.Name, string(e.Data)
	if !d.app.submit(func() {
		for _, h := range handlers {
			h(name, data)
		}
	}) {
		d.cfg.Logger.Warn("device: event dropped, handlers are backlogged", "device", d.ID(), "event", name)
	}
	return nil
}
