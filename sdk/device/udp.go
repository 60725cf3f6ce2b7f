package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// The Gen 3 transport of the device (docs/particle-protocol.md#the-dtls-transport):
// a connected UDP socket, the DTLS handshake of protocol/dtls, one CoAP
// message per record, and CoAP's own reliability (protocol.Outbox for the
// device's CONs, protocol.Dedup for the server's). udpConn hides all of it
// behind a message-oriented net.Conn: Write sends one CoAP message, Read
// returns the next one, so the session logic is the same as over TCP.

// Errors of the UDP transport.
var (
	// ErrNoAck means a confirmable message stayed unacknowledged through
	// every retransmission (protocol.MaxTransmitWait): the server is gone.
	ErrNoAck = errors.New("device: no acknowledgement from the server")
	// ErrResumeFailed means a resumed session got no answer; the saved
	// session is dropped and the next attempt runs a full handshake.
	ErrResumeFailed = errors.New("device: resumed session not answered")
	// ErrNotUDP means a UDP-only operation on a device using TCP or offline.
	ErrNotUDP = errors.New("device: not connected over UDP")
)

// UDPOptions are the settings of the Gen 3 (DTLS/UDP) transport.
type UDPOptions struct {
	// Resume keeps the DTLS session when a connection ends and reconnects by
	// resuming it with no handshake, as Gen 3 firmware does
	// (docs/particle-protocol.md#session-resumption): records marked as type
	// 253 until the server answers, then a CoAP ping. A resumption that
	// gets no answer within PingTimeout falls back to a full handshake.
	Resume bool
	// Session is a saved session (from Device.SessionState or OnSession) to
	// resume at the first connection; it implies Resume for that connection.
	Session []byte
	// OnSession, if set, is called with the resumable session state, for
	// a device that keeps its session in storage of its own (as Device OS
	// does). Each connection calls it before its first record and then
	// once every sessionReserve (1024) records, with a state that reserves
	// the record sequence numbers and message IDs the connection may use
	// until the next call; no record is sent beyond a reservation before
	// OnSession has returned. So a device restarted from the latest state,
	// even after a crash, never repeats a sequence number (a CCM nonce) nor
	// a message ID the server may still remember. When a connection ends
	// it is called once more with the exact state. Keep only the latest
	// state: an earlier one may share sequence numbers with records sent
	// since. It is called with the connection's lock held, so it must not
	// block nor call the Device's methods.
	OnSession func(state []byte)
	// Faults make the device's link misbehave, to test a server's
	// reliability against it.
	Faults Faults
	// Retransmit, if set, is the first wait before a resend, of a DTLS
	// handshake flight (dtls.DefaultInitialTimeout, 1 s) and of a
	// confirmable CoAP message (protocol.AckTimeout, 4 s, randomised
	// and doubling as usual): shorter for tests and simulations on a
	// lossy fast link. Zero (or less) keeps the firmware's timers.
	Retransmit time.Duration
}

// Faults are deliberate datagram faults of a device's UDP link, applied to
// the DTLS records after sealing (so a duplicate is an exact copy, which the
// server's replay window must drop). Each is a probability from 0 to 1.
type Faults struct {
	// Drop loses a datagram in either direction.
	Drop float64
	// Duplicate sends an outgoing datagram twice.
	Duplicate float64
	// Reorder holds an outgoing datagram back and sends it after the next.
	Reorder float64
}

// any reports whether a fault is set.
func (f Faults) any() bool { return f.Drop > 0 || f.Duplicate > 0 || f.Reorder > 0 }

// Defaults of the UDP transport.
const (
	// DefaultUDPKeepAlive is Device OS's ping interval over Wi-Fi and
	// Ethernet (cellular devices use 23 minutes).
	DefaultUDPKeepAlive = 25 * time.Second
	// DefaultUDPPingTimeout is how long Gen 3 firmware waits for the
	// answer to a ping (retransmissions included) before it reconnects;
	// a resumed session that gets no answer within it is given up.
	DefaultUDPPingTimeout = 30 * time.Second
	// udpReadBuf holds one datagram: a record of the largest CoAP message
	// the firmware accepts (1152 bytes of content) plus headers.
	udpReadBuf = 2048
	// savedSessionVersion starts the bytes of SessionState.
	savedSessionVersion = 1
	// sessionReserve is how many record sequence numbers and message IDs
	// a state handed to UDPOptions.OnSession during a connection reserves
	// ahead of those used.
	sessionReserve = 1024
)

// savedSession is what a device keeps to resume: the DTLS session, the next
// CoAP message ID and a digest of the application's describe, which decides
// whether a resumed connection needs a new Hello.
type savedSession struct {
	dtls    *dtls.Session
	lastID  uint16
	appHash [8]byte
}

// marshal encodes s: version (1) | last message ID (2) | app hash (8) | DTLS
// session (dtls.Session.MarshalBinary).
func (s *savedSession) marshal() ([]byte, error) {
	b, err := s.dtls.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 11+len(b))
	out = append(out, savedSessionVersion)
	out = binary.BigEndian.AppendUint16(out, s.lastID)
	out = append(out, s.appHash[:]...)
	return append(out, b...), nil
}

// parseSavedSession decodes marshal's output.
func parseSavedSession(b []byte) (*savedSession, error) {
	if len(b) < 11 || b[0] != savedSessionVersion {
		return nil, errors.New("device: saved session: unknown format")
	}
	ds, err := dtls.UnmarshalSession(b[11:])
	if err != nil {
		return nil, fmt.Errorf("device: saved session: %w", err)
	}
	s := &savedSession{dtls: ds, lastID: binary.BigEndian.Uint16(b[1:3])}
	copy(s.appHash[:], b[3:11])
	return s, nil
}

// udpConn is one DTLS session over a connected UDP socket, as a
// message-oriented net.Conn of plaintext CoAP messages. Read runs on the
// session's reading goroutine only; Write may be called from any goroutine.
type udpConn struct {
	d *Device

	mu           sync.Mutex
	sock         net.Conn
	sess         *dtls.Session
	move         bool // mark records as type 253 until the server answers
	out          protocol.Outbox
	in           protocol.Dedup
	faults       Faults
	held         []byte // a datagram held back by Faults.Reorder
	sockDeadline time.Time
	readDeadline time.Time
	closed       bool
	seal         []byte // sealing buffer, under mu
	// appAcked reports that the server acknowledged the last application
	// describe the device posted (or that none was due); appPending is
	// the message ID of one awaiting its ACK. A session saved without it
	// resumes with a new Hello and describe.
	appAcked   bool
	appPending int32 // -1: none
	// With UDPOptions.OnSession: lastID is the device's latest message ID
	// written (CON or NON), and records from reservedTo on are sealed
	// only after OnSession got a state that starts at or beyond them.
	lastID     uint16
	reservedTo uint64

	// Reading goroutine only.
	buf   []byte
	queue [][]byte // messages of the current datagram not yet returned
}

// newUDPConn wraps an established session whose last message ID is lastID.
func newUDPConn(d *Device, sock net.Conn, sess *dtls.Session, move bool, lastID uint16) *udpConn {
	// A resumed session starts with the describe its saved state vouches
	// for; a device that does not post describes has none due.
	acked := move || !d.cfg.DeviceDescribe
	// The first record waits for a reservation (with OnSession).
	return &udpConn{d: d, sock: sock, sess: sess, move: move, faults: d.cfg.UDP.Faults, appAcked: acked, appPending: -1,
		lastID: lastID, reservedTo: sess.WriteSeq, out: protocol.Outbox{AckTimeout: d.cfg.UDP.Retransmit}}
}

// noteDescribe records an application describe (the last block of one)
// going out as message id; c.mu must be held.
func (c *udpConn) noteDescribe(msg []byte, id uint16) {
	var m protocol.Message
	if m.Decode(msg) != nil || protocol.Classify(&m) != protocol.KindDescribePost {
		return
	}
	b, err := protocol.ParseDescribePost(&m)
	if err != nil || b.Flags&protocol.DescribeApplication == 0 {
		return
	}
	c.appAcked = false
	if b.Block == nil || !b.Block.More {
		c.appPending = int32(id)
	}
}

// chance reports true with probability p.
func chance(p float64) bool { return p > 0 && rand.Float64() < p }

// sendLocked seals msg into one record and writes it, applying the faults;
// c.mu must be held.
func (c *udpConn) sendLocked(msg []byte) error {
	if c.sess.WriteSeq >= c.reservedTo && c.d.cfg.UDP.OnSession != nil {
		if err := c.reserveLocked(); err != nil {
			return err
		}
	}
	rec, err := c.sess.Seal(c.seal[:0], msg)
	if err != nil {
		return fmt.Errorf("device: seal: %w", err)
	}
	c.seal = rec
	if c.move {
		if err := dtls.MarkMoveSession(rec); err != nil {
			return err
		}
	}
	return c.writeDatagram(rec)
}

// reserveLocked hands UDPOptions.OnSession a state that claims the next
// sessionReserve sequence numbers and message IDs, so that a device
// restarted from it uses none the connection may have used; c.mu must be
// held.
func (c *udpConn) reserveLocked() error {
	ahead := *c.sess
	ahead.WriteSeq = min(c.sess.WriteSeq+sessionReserve, dtls.MaxSeq)
	var appHash [8]byte
	if c.appAcked {
		appHash = c.d.appDigest()
	}
	state, err := (&savedSession{dtls: &ahead, lastID: c.lastID + sessionReserve, appHash: appHash}).marshal()
	if err != nil {
		return fmt.Errorf("device: reserve session: %w", err)
	}
	c.d.cfg.UDP.OnSession(state)
	c.reservedTo = ahead.WriteSeq
	return nil
}

// writeDatagram writes one datagram through the faults; c.mu must be held.
func (c *udpConn) writeDatagram(b []byte) error {
	f := c.faults
	if !f.any() {
		_, err := c.sock.Write(b)
		return err
	}
	if chance(f.Drop) {
		return nil
	}
	if c.held == nil && chance(f.Reorder) {
		c.held = append([]byte(nil), b...)
		return nil
	}
	if _, err := c.sock.Write(b); err != nil {
		return err
	}
	if chance(f.Duplicate) {
		c.sock.Write(b)
	}
	if held := c.held; held != nil {
		c.held = nil
		c.sock.Write(held)
	}
	return nil
}

// Write sends one CoAP message. A confirmable one is kept for
// retransmission until its ACK; an ACK or RST is remembered as the reply to
// the server's CON with that ID, for the server's retransmissions.
func (c *udpConn) Write(msg []byte) (int, error) {
	if len(msg) < 4 {
		return 0, errors.New("device: short coap message")
	}
	typ, id := protocol.Type(msg[0]>>4&3), binary.BigEndian.Uint16(msg[2:4])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	now := time.Now()
	switch typ {
	case protocol.Confirmable:
		if err := c.out.Send(now, id, msg); err != nil {
			return 0, fmt.Errorf("device: %w", err)
		}
		c.noteDescribe(msg, id)
		c.lastID = id
		// Wake the reader if this message's timer is its earliest.
		if dl, _ := c.out.NextTimeout(); c.sockDeadline.IsZero() || dl.Before(c.sockDeadline) {
			c.sockDeadline = dl
			c.sock.SetReadDeadline(dl)
		}
	case protocol.NonConfirmable:
		c.lastID = id
	case protocol.Acknowledgement, protocol.Reset:
		c.in.Reply(id, msg)
	}
	if err := c.sendLocked(msg); err != nil {
		return 0, err
	}
	return len(msg), nil
}

// Read returns the next CoAP message from the server, copied into p. It
// resends unacknowledged CONs when their timers run out (ErrNoAck once one
// gives up), answers repeated CONs from the cache without returning them,
// and returns an error wrapping os.ErrDeadlineExceeded when the deadline set
// with SetReadDeadline passes with nothing read.
func (c *udpConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		c.buf = make([]byte, udpReadBuf)
	}
	for {
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			return copy(p, m), nil
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		sock := c.sock
		deadline := c.readDeadline
		if dl, ok := c.out.NextTimeout(); ok && (deadline.IsZero() || dl.Before(deadline)) {
			deadline = dl
		}
		c.sockDeadline = deadline
		sock.SetReadDeadline(deadline)
		c.mu.Unlock()

		n, err := sock.Read(c.buf)
		if err != nil {
			if again, err := c.readFailed(sock, err); !again {
				return 0, err
			}
			continue
		}
		if chance(c.faults.Drop) {
			continue
		}
		c.received(sock, c.buf[:n])
	}
}

// readFailed handles a failed socket read: a moved socket or a timer is
// retried (again), anything else ends the connection.
func (c *udpConn) readFailed(sock net.Conn, err error) (again bool, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, net.ErrClosed
	}
	if sock != c.sock {
		return true, nil // ChangeAddress replaced the socket
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, fmt.Errorf("device: read: %w", err)
	}
	now := time.Now()
	resend, gaveUp := c.out.HandleTimeout(now)
	if len(gaveUp) > 0 {
		return false, fmt.Errorf("%w: message %d", ErrNoAck, gaveUp[0])
	}
	for _, m := range resend {
		if err := c.sendLocked(m); err != nil {
			return false, fmt.Errorf("device: write: %w", err)
		}
	}
	if !c.readDeadline.IsZero() && !now.Before(c.readDeadline) {
		return false, os.ErrDeadlineExceeded
	}
	return true, nil
}

// received opens the records of one datagram read from sock and queues
// their messages. Only an answer on the current socket ends the move
// marking: a datagram read from the socket ChangeAddress just replaced
// was sent to the old address.
func (c *udpConn) received(sock net.Conn, datagram []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return // nothing is sealed after Close: the session may be saved
	}
	now := time.Now()
	for rest := datagram; len(rest) > 0; {
		rec, after, err := dtls.ParseRecord(rest)
		if err != nil {
			return
		}
		rest = after
		content, typ, err := c.sess.Open(nil, &rec)
		if err != nil {
			continue // forged, replayed or not ours: drop
		}
		if sock == c.sock {
			c.move = false
		}
		if typ == dtls.TypeAlert {
			continue
		}
		if typ != dtls.TypeApplicationData || len(content) < 4 {
			continue
		}
		mtyp, id := protocol.Type(content[0]>>4&3), binary.BigEndian.Uint16(content[2:4])
		switch mtyp {
		case protocol.Confirmable:
			if dup, replies := c.in.Receive(now, id); dup {
				for _, r := range replies {
					c.sendLocked(r)
				}
				continue
			}
		case protocol.Acknowledgement, protocol.Reset:
			c.out.Ack(id)
			if int32(id) == c.appPending {
				c.appPending = -1
				code := protocol.Code(content[1])
				c.appAcked = mtyp == protocol.Acknowledgement && (code == protocol.CodeEmpty || code.IsSuccess())
			}
		}
		c.queue = append(c.queue, content)
	}
}

// changeAddress moves the connection to a new local socket (a new port,
// as after NAT rebinding or a network change), keeping the session; the
// records are marked as type 253 until the server answers from the new
// address.
func (c *udpConn) changeAddress(ctx context.Context) error {
	sock, err := c.d.dialUDPSocket(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sock.Close()
		return net.ErrClosed
	}
	old := c.sock
	c.sock, c.move = sock, true
	c.mu.Unlock()
	return old.Close() // wakes the reader, which picks up the new socket
}

// snapshot returns the session to save, with the next message ID and the
// digest of the application the server knows: none (zero) unless it
// acknowledged the last describe, so that a resumption re-sends it.
func (c *udpConn) snapshot(lastID uint16, appHash [8]byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.appAcked {
		appHash = [8]byte{}
	}
	return (&savedSession{dtls: c.sess, lastID: lastID, appHash: appHash}).marshal()
}

// Close closes the socket; a blocked Read returns.
func (c *udpConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.out.Clear()
	return c.sock.Close()
}

// LocalAddr returns the current socket's local address.
func (c *udpConn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock.LocalAddr()
}

// RemoteAddr returns the server's address.
func (c *udpConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock.RemoteAddr()
}

// SetDeadline sets the read deadline; writes to a UDP socket do not block.
func (c *udpConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets when Read gives up waiting for a message.
func (c *udpConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if c.sockDeadline.IsZero() || t.IsZero() || t.Before(c.sockDeadline) {
		c.sockDeadline = t
		c.sock.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline is a no-op: a datagram write does not block.
func (c *udpConn) SetWriteDeadline(time.Time) error { return nil }

// dialUDPSocket opens a connected UDP socket to the server, blind to
// ICMP errors (icmpBlind).
func (d *Device) dialUDPSocket(ctx context.Context) (net.Conn, error) {
	dialFn := d.cfg.Dial
	if dialFn == nil {
		dialFn = (&net.Dialer{}).DialContext
	}
	sock, err := dialFn(ctx, "udp", d.cfg.ServerAddr)
	if err != nil {
		return nil, fmt.Errorf("device: dial %s: %w", d.cfg.ServerAddr, err)
	}
	return icmpBlind{sock}, nil
}

// icmpBlind is a UDP socket that ignores ICMP errors, as Device OS does:
// its network stacks (lwIP, the cellular modem's sockets) never report an
// ICMP "port unreachable" to a UDP socket, and on the internet such
// messages are often filtered anyway. A Linux connected socket turns one
// into ECONNREFUSED on its next read or write. Without this a simulated
// device whose server stopped for a restart saw the refusal at once and
// gave up its session on its next datagram, where a real one only sees
// silence and waits for its own timeouts (docs/device-protocol.md#39-the-dtls-transport).
// The refused write is a datagram lost, the refused read one more wait.
type icmpBlind struct{ net.Conn }

// Read reads the next datagram, past ICMP errors.
func (c icmpBlind) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return n, err
		}
	}
}

// Write sends one datagram; one refused is lost, as on the network.
func (c icmpBlind) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return len(b), nil
	}
	return n, err
}

// dialUDP opens a socket and either resumes the saved session or runs a
// full handshake (docs/particle-protocol.md#the-dtls-transport).
func dialUDP(ctx context.Context, d *Device) (*session, error) {
	cfg := &d.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	sock, err := d.dialUDPSocket(dctx)
	if err != nil {
		return nil, err
	}
	if saved := d.takeSaved(); saved != nil {
		c := newUDPConn(d, sock, saved.dtls, true, saved.lastID)
		s := &session{d: d, conn: c, udp: c, ids: protocol.NewMessageIDs(saved.lastID), resumed: true, appHash: saved.appHash}
		s.tokens.Store(uint32(rand.N(256)))
		return s, nil
	}
	key, err := cfg.ecKey()
	if err != nil {
		sock.Close()
		return nil, err
	}
	stop := context.AfterFunc(dctx, func() { sock.SetReadDeadline(time.Unix(1, 0)) })
	sess, err := clientHandshake(sock, key, cfg.ECServerKey, &cfg.UDP)
	if !stop() || err != nil {
		sock.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil {
			err = dctx.Err()
		}
		return nil, fmt.Errorf("device: dtls handshake: %w", err)
	}
	sock.SetReadDeadline(time.Time{})
	c := newUDPConn(d, sock, sess, false, 0)
	// A fresh session numbers the device's messages from 1.
	s := &session{d: d, conn: c, udp: c}
	s.tokens.Store(uint32(rand.N(256)))
	return s, nil
}

// clientHandshake runs protocol/dtls's client handshake over sock, with
// the drop fault applied in both directions.
func clientHandshake(sock net.Conn, key *ecdsa.PrivateKey, serverKey *ecdsa.PublicKey, opts *UDPOptions) (*dtls.Session, error) {
	f := opts.Faults
	hs, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: key, ServerKey: serverKey, InitialTimeout: opts.Retransmit})
	if err != nil {
		return nil, err
	}
	send := func(out [][]byte) error {
		for _, b := range out {
			if chance(f.Drop) {
				continue
			}
			if _, err := sock.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := send(hs.Start(time.Now())); err != nil {
		return nil, err
	}
	buf := make([]byte, udpReadBuf)
	for {
		if dl, ok := hs.NextTimeout(); ok {
			sock.SetReadDeadline(dl)
		}
		n, err := sock.Read(buf)
		now := time.Now()
		var out [][]byte
		var done bool
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if dl, ok := hs.NextTimeout(); !ok || now.Before(dl) {
				return nil, err // the context's deadline, not the handshake's
			}
			out, err = hs.HandleTimeout(now)
		case err != nil:
			return nil, err
		case chance(f.Drop):
			continue
		default:
			out, done, err = hs.HandleDatagram(now, buf[:n])
		}
		if err != nil {
			if a := hs.Alert(); a != nil {
				sock.Write(a)
			}
			return nil, err
		}
		if err := send(out); err != nil {
			return nil, err
		}
		if done {
			return hs.Session(), nil
		}
	}
}

// takeSaved returns the session to resume, if any, and forgets it: a
// resumption is tried once, and the session is saved again when the
// connection ends.
func (d *Device) takeSaved() *savedSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.saved
	d.saved = nil
	return s
}

// appDigest is a digest of the application describe: a resumed session
// whose digest changed sends a new Hello and describe.
func (d *Device) appDigest() [8]byte {
	var h [8]byte
	b, err := d.describePayload(protocol.DescribeApplication)
	if err != nil {
		return h
	}
	d.mu.Lock()
	for _, s := range d.subs {
		b = append(b, 0)
		b = append(b, s.prefix...)
	}
	d.mu.Unlock()
	sum := sha256.Sum256(b)
	copy(h[:], sum[:])
	return h
}

// saveSession keeps s's DTLS session for the next connection (with
// UDPOptions.Resume) and hands it to OnSession.
func (d *Device) saveSession(s *session) {
	if s.udp == nil || (!d.cfg.UDP.Resume && d.cfg.UDP.OnSession == nil) {
		return
	}
	state, err := s.sessionState()
	if err != nil {
		d.cfg.Logger.Warn("device: session not saved", "device", d.ID(), "err", err)
		return
	}
	if d.cfg.UDP.Resume {
		saved, err := parseSavedSession(state)
		if err != nil {
			d.cfg.Logger.Warn("device: session not saved", "device", d.ID(), "err", err)
			return
		}
		d.mu.Lock()
		d.saved = saved
		d.mu.Unlock()
	}
	if d.cfg.UDP.OnSession != nil {
		d.cfg.UDP.OnSession(state)
	}
}

// sessionState snapshots the session with the message ID counter.
func (s *session) sessionState() ([]byte, error) {
	if s.udp == nil {
		return nil, ErrNotUDP
	}
	s.wmu.Lock()
	next := s.ids.Next()
	s.ids = protocol.NewMessageIDs(next - 1)
	s.wmu.Unlock()
	return s.udp.snapshot(next-1, s.d.appDigest())
}

// SessionState returns the current DTLS session and message counter in a
// form UDPOptions.Session accepts, so that another Device (or another
// process) can resume it without a handshake. It holds the session keys:
// store it like a private key. The device goes on using the session, so a
// snapshot is only good until its next record; to hand a session on, use
// the state UDPOptions.OnSession receives when the connection ends. It
// returns ErrNotUDP unless the device is connected over UDP.
func (d *Device) SessionState() ([]byte, error) {
	s := d.session()
	if s == nil || s.udp == nil {
		return nil, ErrNotUDP
	}
	return s.sessionState()
}

// ChangeAddress moves the current UDP connection to a new local socket (a
// new source port), as when a NAT rebinds or a cellular device gets a new
// address: the session stays, its records are marked as type 253 until the
// server answers, and the server must follow the session by its connection
// ID. A ping goes out at once from the new address, as after a resumption,
// so that the server learns it before it next sends to the device. It
// returns ErrNotUDP unless the device is connected over UDP.
func (d *Device) ChangeAddress(ctx context.Context) error {
	s := d.session()
	if s == nil || s.udp == nil {
		return ErrNotUDP
	}
	if err := s.udp.changeAddress(ctx); err != nil {
		return err
	}
	ping := protocol.NewPing(0)
	return s.send(&ping, true, nil)
}

// LocalAddr returns the local address of the current connection, nil when
// offline.
func (d *Device) LocalAddr() net.Addr {
	s := d.session()
	if s == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// startUDP begins a UDP session. After a full handshake the Hello (CON,
// with the device ID) goes out and the session is online once it is
// acknowledged; the device does not wait for a server Hello over UDP. A
// resumed session sends a ping first and is online when it is answered;
// only if the application changed since the session was saved does it send
// a new Hello and its describes.
func (s *session) startUDP() error {
	now := time.Now()
	s.lastRecv = now
	ctx := s.d.handlerContext()
	if s.resumed {
		s.helloDeadline = now.Add(s.d.cfg.PingTimeout)
		ping := protocol.NewPing(0)
		return s.send(&ping, true, func(a *protocol.Message) {
			if a == nil || a.Type == protocol.Reset {
				return
			}
			if s.d.appDigest() == s.appHash {
				s.goOnline(ctx, false)
				return
			}
			// The application changed since the session was saved (or
			// its describe was never acknowledged): a new Hello, and
			// online once the server took it.
			h := s.hello()
			s.send(&h, true, func(a *protocol.Message) {
				if a != nil && a.Type == protocol.Acknowledgement && (a.Code == protocol.CodeEmpty || a.Code.IsSuccess()) {
					s.goOnline(ctx, true)
				}
			})
		})
	}
	// Retransmission, not a Hello timer, decides when the server is gone.
	s.helloDeadline = now.Add(max(s.d.cfg.HelloTimeout, protocol.MaxTransmitWait))
	h := s.hello()
	return s.send(&h, true, func(a *protocol.Message) {
		if a != nil && a.Type == protocol.Acknowledgement && (a.Code == protocol.CodeEmpty || a.Code.IsSuccess()) {
			s.goOnline(ctx, true)
		}
	})
}

// Disconnect ends the current connection at once, without a Goodbye, as a
// lost network would; Run then reconnects after its backoff (resuming the
// session over UDP with UDPOptions.Resume). It does nothing when offline.
func (d *Device) Disconnect() {
	if s := d.session(); s != nil {
		s.closeConn()
	}
}

// Resumed reports whether the current connection resumed a saved DTLS
// session instead of running a handshake; false when offline or over TCP.
func (d *Device) Resumed() bool {
	s := d.session()
	return s != nil && s.resumed
}
