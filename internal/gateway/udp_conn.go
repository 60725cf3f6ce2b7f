package gateway

// One Gen 3 session's transport (docs/device-protocol.md#39-the-dtls-transport): the DTLS handshake, records in and out, CoAP reliability
// over UDP and the session's address. A udpConn is the session's net.Conn
// (for Close and the read deadline) and its transport.

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// Why a UDP session ended, beside the reasons of session.go.
const (
	reasonNoACK     = "no acknowledgement from the device"
	reasonAlert     = "alert from the device"
	reasonWrongHost = "hello names another device than the key"
	reasonRestarted = "the device restarted its session with a Hello"
)

// Errors of the Gen 3 transport.
var (
	errUnknownCID   = errors.New("gateway: no saved session has the connection ID")
	errNotUDPDevice = errors.New("gateway: the key belongs to no device the gateway serves")
	errHelloID      = errors.New("gateway: the Hello names another device than the handshake's key")
	errCIDTaken     = errors.New("gateway: connection ID already in use")
)

// udpConn is the transport of one Gen 3 session. Lock order: the session's
// wmu, then rmu, then smu; amu alone.
type udpConn struct {
	u    *udpServer
	s    *session
	in   chan *udpDatagram // from the demultiplexer
	done chan struct{}     // closed by Close
	once sync.Once

	amu  sync.Mutex
	addr netip.AddrPort // guarded by amu; where records go
	pc   net.PacketConn // guarded by amu; the socket that last heard the device
	// hushed, guarded by amu: another ClientHello came from the address;
	// the handshake resends its flight only on the device's repeats
	// (udp_portreuse.go).
	hushed bool

	rdl   atomic.Int64 // read deadline, Unix ns; 0: none
	timer *time.Timer  // read waits; read goroutine only

	// Read goroutine only.
	random       [dtls.RandomLen]byte  // its client random (written before the goroutine starts)
	hs           *dtls.ServerHandshake // until the first application record
	resuming     bool                  // a saved session is looked up
	resumedState bool                  // the session was restored, not handshaken
	reaching     bool                  // restored by the gateway to reach the device (udp_reach.go)
	keepDeadline bool                  // woken by a send: the next SetReadDeadline keeps the old one
	cur          *udpDatagram
	rest         []byte
	cid          cidKey
	inCIDs       bool // registered in u.byCID
	// A Hello on an online session (a device that resumed its session with
	// a changed state, e.g. after an update) ends the session and hands
	// the DTLS session and this Hello to a new one (takeOver).
	handoff      *frameBuf
	handoffPlain []byte
	takeover     bool      // this conn took over a live session
	devID        string    // the device of the handshake's key
	heardAt      time.Time // when the last authenticated record came in
	product      int64

	smu      sync.Mutex
	sess     *dtls.Session // guarded by smu (Open, Seal, saving)
	seqLimit uint64        // guarded by smu; write sequence numbers saved as reserved
	stored   []byte        // guarded by smu; the state last saved or restored: saves are conditional on it (udpConn.save)
	lost     bool          // guarded by smu; another process saved the session since: nothing more is sealed
	persist  atomic.Bool   // the device is known: the session may be saved
	// keepSavedAt, Unix ms, is the time a session reached by the gateway
	// (udp_reach.go) saves with until its device is heard: 0 once heard.
	keepSavedAt atomic.Int64

	rmu    sync.Mutex
	dedup  protocol.Dedup  // guarded by rmu
	outbox protocol.Outbox // guarded by rmu
	rtimer *time.Timer     // guarded by rmu

	// Parking (udp_park.go). in is nil while parked.
	pmu       sync.Mutex
	parked    atomic.Bool // written with pmu held: no goroutine runs the session
	packed    []byte      // guarded by smu; the record keys and IVs while sess has no ciphers (empty: it has them)
	retryPark time.Time   // read goroutine only
}

func newUDPConn(u *udpServer, pc net.PacketConn, addr netip.AddrPort) *udpConn {
	c := &udpConn{u: u, in: make(chan *udpDatagram, udpInbox), done: make(chan struct{}), addr: addr, pc: pc}
	c.outbox.AckTimeout = u.g.cfg.UDPAckTimeout
	return c
}

func newUDPSession(g *Gateway, c *udpConn) *session {
	s := &session{g: g, tr: c, conn: c, ip: c.addr.Addr().String(), start: time.Now(), done: make(chan struct{})}
	c.s = s
	return s
}

// deliver queues a copy of d for the session goroutine, or drops it when
// the queue is full; a parked session's keep-alive ping is answered
// without waking it (pingParked).
func (c *udpConn) deliver(pc net.PacketConn, d []byte, addr netip.AddrPort) {
	if c.parked.Load() && c.pingParked(pc, d, addr) {
		return
	}
	dg := getDatagram()
	dg.b = append(dg.b[:0], d...)
	dg.addr, dg.pc = addr, pc
	// The send happens under pmu (it never blocks): sent after the lock,
	// it could land in the queue of a session that park had meanwhile
	// found empty and let go of, and be lost until the next datagram.
	c.pmu.Lock()
	c.wakeLocked()
	select {
	case c.in <- dg:
	default:
		putDatagram(dg)
		c.u.g.stats.udpDropped.Add(1)
	}
	c.pmu.Unlock()
}

// next waits for the next datagram until deadline (zero: no deadline).
func (c *udpConn) next(deadline time.Time) (*udpDatagram, error) {
	select {
	case d := <-c.in:
		return d, nil
	case <-c.done:
		return nil, io.EOF
	default:
	}
	if deadline.IsZero() {
		select {
		case d := <-c.in:
			return d, nil
		case <-c.done:
			return nil, io.EOF
		}
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return nil, os.ErrDeadlineExceeded
	}
	if c.timer == nil {
		c.timer = time.NewTimer(wait)
	} else {
		c.timer.Reset(wait)
	}
	defer c.timer.Stop()
	select {
	case d := <-c.in:
		return d, nil
	case <-c.done:
		return nil, io.EOF
	case <-c.timer.C:
		return nil, os.ErrDeadlineExceeded
	}
}

// send writes raw datagrams (handshake flights, alerts) to the device.
func (c *udpConn) send(out [][]byte) {
	c.amu.Lock()
	pc, addr := c.pc, c.addr
	c.amu.Unlock()
	for _, o := range out {
		c.u.write(pc, o, addr)
	}
}

// handshake runs the DTLS handshake (docs/device-protocol.md#39-the-dtls-transport, handshake)
// or restores a saved session.
func (c *udpConn) handshake(s *session) error {
	if c.takeover {
		return c.resumeTakeover(s)
	}
	if c.resuming {
		// A resumption by the device is a start like a handshake; a
		// reach has its own bounds (udp_reach*.go). The wait holds the
		// lookup's place (maxResumeLookups).
		if !c.reaching {
			s.deadline = s.start.Add(s.g.cfg.HandshakeTimeout)
			if err := c.admitStart(s); err != nil {
				return s.handshakeFailed("admission", err)
			}
		}
		return c.restore(s)
	}
	g := s.g
	deadline := s.start.Add(g.cfg.HandshakeTimeout)
	s.deadline = deadline
	var (
		out [][]byte
		hs  *dtls.ServerHandshake
	)
	// The ClientHello that started the session is its first datagram.
	first, err := c.next(deadline)
	if err != nil {
		s.close("handshake failed")
		return s.handshakeFailed("client hello", err)
	}
	if err := c.admitStart(s); err != nil {
		putDatagram(first)
		return s.handshakeFailed("admission", err)
	}
	err = g.withHandshakeSlot(deadline, func() (err error) {
		t0 := time.Now()
		out, hs, err = c.u.cfg.HandleClientHello(t0, c.addr, first.b)
		g.stats.udpHandshakeNanos.Add(int64(time.Since(t0)))
		return err
	})
	putDatagram(first)
	if err == nil && hs == nil {
		err = errors.New("cookie no longer valid")
	}
	if err != nil {
		s.close("handshake failed")
		return s.handshakeFailed("client hello", err)
	}
	g.stats.udpSignatures.Add(1)
	c.hs = hs
	c.send(out)
	// A device silent for HandshakeIdle after the server's flight has
	// given up on this handshake (a device starting over does so from a
	// new socket, which ends nothing here): the handshake ends then and
	// not at its deadline, so that it gives its admission slot back.
	heard := time.Now()
	for {
		idle := heard.Add(g.cfg.HandshakeIdle)
		wait := minTime(deadline, idle)
		if t, ok := hs.NextTimeout(); ok && t.Before(wait) {
			wait = t
		}
		d, err := c.next(wait)
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !now.Before(deadline) || !now.Before(idle) {
				s.close("handshake timeout")
				return s.handshakeFailed("wait", err)
			}
			out, err = hs.HandleTimeout(now)
			if err != nil {
				s.close("handshake timeout")
				return s.handshakeFailed("retransmit", err)
			}
			g.stats.udpRetransmits.Add(uint64(c.resend(out)))
			continue
		}
		if err != nil {
			s.close(reasonDisconnected)
			return s.handshakeFailed("wait", err)
		}
		heard = now
		var done bool
		err = g.withHandshakeSlot(deadline, func() (err error) {
			t0 := time.Now()
			out, done, err = hs.HandleDatagram(now, d.addr, d.b)
			g.stats.udpHandshakeNanos.Add(int64(time.Since(t0)))
			return err
		})
		putDatagram(d)
		if err != nil {
			if a := hs.Alert(); a != nil {
				c.send([][]byte{a})
			}
			s.close("handshake failed")
			return c.refusedHandshake(s, err)
		}
		if !done && len(out) > 0 {
			g.stats.udpRetransmits.Add(uint64(len(out))) // our flight again, on the device's repeat
		}
		c.send(out)
		if done {
			break
		}
	}
	return c.established(s, hs.Session())
}

// admitStart takes an admission slot (admission.go) for a Gen 3 session
// start: a handshake before its first signature, a resumption before its
// store reads. The session holds it until online with its describe
// stored, as a TCP session does, so that a storm of starts waits here and
// not in the CPU and the store the devices already online use. A start
// that finds the queue full, or waits longer than HandshakeIdle, ends
// without an answer: the device sends its flight (or record) again after
// its own backoff, and that is the queue beyond StartQueue.
func (c *udpConn) admitStart(s *session) error {
	g := s.g
	if g.admission == nil {
		return nil
	}
	if err := s.admitWithin(min(udpAdmissionWait, g.cfg.HandshakeIdle)); err != nil {
		g.stats.udpAdmissionDropped.Add(1)
		return err
	}
	g.stats.udpAdmitted.Add(1)
	return nil
}

// udpAdmissionWait bounds a Gen 3 start's wait for an admission slot:
// about the device's first retransmission timeout (Device OS and
// protocol/dtls: 1 s). A ClientHello queued longer is one the device has
// repeated, or given up on and started over from a new socket; admitted
// then, its handshake would hold a slot for a device that no longer
// listens. Beyond the wait the device's retransmission queues again.
const udpAdmissionWait = time.Second

// refusedHandshake counts a handshake the device failed.
func (c *udpConn) refusedHandshake(s *session, err error) error {
	switch {
	case errors.Is(err, dtls.ErrUnknownDeviceKey):
		return s.refused(fmt.Errorf("%w: %w", errUnknownDevice, err))
	case errors.Is(err, dtls.ErrBadCertificateVerify), errors.Is(err, dtls.ErrBadFinished):
		return s.refused(fmt.Errorf("%w: %w", errKeyMismatch, err))
	}
	return s.handshakeFailed("handshake", err)
}

// established registers a handshaken session under its connection ID.
func (c *udpConn) established(s *session, sess *dtls.Session) error {
	e, err := c.u.lookupKey(sess.DeviceKey)
	if err == nil && !e.ok {
		err = errNotUDPDevice
	}
	if err != nil {
		s.close("handshake failed")
		return s.refused(err)
	}
	c.devID, c.product = e.id, e.product
	s.id, s.storedProduct = e.id, e.product
	c.smu.Lock()
	c.sess = sess
	c.smu.Unlock()
	copy(c.cid[:], sess.ServerCID)
	u := c.u
	u.mu.Lock()
	if u.byCID[c.cid] != nil {
		u.mu.Unlock()
		s.close("handshake failed")
		return s.handshakeFailed("register", errCIDTaken)
	}
	u.byCID[c.cid] = c
	c.inCIDs = true
	delete(u.misses, c.cid)
	u.mu.Unlock()
	c.newCounters(s)
	return nil
}

// newCounters starts the session's server message IDs and tokens. A Gen 3
// device starts its own message IDs at 1 on a fresh session; the server's
// may start anywhere.
func (c *udpConn) newCounters(s *session) {
	s.sid = newSessionID()
	seed := randomBytes(3)
	s.ids = protocol.NewMessageIDs(uint16(seed[0])<<8 | uint16(seed[1]))
	s.tokens = protocol.NewTokens(seed[2])
}

// checkHello requires the Hello of a handshaken session to name the device
// whose key made the handshake (docs/device-protocol.md#39-the-dtls-transport, handshake), then
// saves the session so that the device can resume it.
func (c *udpConn) checkHello(s *session, h *protocol.Hello) error {
	if len(h.DeviceID) != gen3DeviceIDLen || hex.EncodeToString(h.DeviceID) != c.devID {
		s.g.stats.refusedKey.Add(1)
		s.g.log.Info("gateway: device refused", "device", c.devID, "addr", s.ip, "reason", errHelloID,
			"hello", hex.EncodeToString(h.DeviceID))
		s.close(reasonWrongHost)
		return errHelloID
	}
	if !c.resumedState {
		// The key cache may be a minute old: read the device once more, as
		// the TCP handshake does, for a denial or a new key since.
		if err := c.recheck(s); err != nil {
			return err
		}
	}
	first := !c.persist.Load()
	c.persist.Store(true)
	if first && c.u.saved != nil {
		s.wmu.Lock()
		err := c.save(s, h, c.reserveAhead())
		s.wmu.Unlock()
		if err != nil {
			// The Hello's answer needs this reservation: trying again
			// before the answer would keep the device waiting another
			// store timeout. The session ends, with an alert that makes
			// the device handshake again at once (ended, endWithAlert).
			s.g.log.Warn("gateway: save dtls session", "device", c.devID, "err", err)
			s.close(reasonStore)
			return err
		}
	}
	return nil
}

// udpAlertInternalError is TLS's internal_error alert description
// (RFC 5246, section 7.2.2).
const udpAlertInternalError = 80

// endWithAlert tells the device that the gateway ended its session: one
// fatal internal_error alert sealed in the session. Device OS then drops
// its session and handshakes again at once, where without an answer it
// waits out its CoAP retransmission span, 74 s (docs/device-protocol.md,
// 4.6). It sends nothing when the record could take a sequence number
// that a saved copy of the session may use: at or past the stored
// reservation, on a restored session whose claim was not stored, or on a
// session another process restored since (c.lost: the device is its). A
// handshaken session none of whose saves was stored has sealed nothing
// since its Finished, and every save it tried reserved far above that.
func (c *udpConn) endWithAlert(s *session) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c.smu.Lock()
	sess, err := c.sessLocked()
	var rec []byte
	if err == nil && !c.lost && (sess.WriteSeq < c.seqLimit || c.seqLimit == 0 && !c.resumedState) {
		rec, err = sess.SealType(nil, dtls.TypeAlert, []byte{2, udpAlertInternalError})
	}
	c.smu.Unlock()
	if err != nil || rec == nil {
		return
	}
	c.amu.Lock()
	pc, addr := c.pc, c.addr
	c.amu.Unlock()
	if c.u.write(pc, rec, addr) == nil {
		s.g.stats.udpEndAlerts.Add(1)
	}
}

// recheck reads the handshaken device from the store: it must not be denied
// and must still have the handshake's key.
func (c *udpConn) recheck(s *session) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	d, err := s.g.store.DeviceByID(ctx, c.devID)
	if err != nil {
		s.close(reasonStore)
		if errors.Is(err, store.ErrNotFound) {
			return s.refused(errUnknownDevice)
		}
		return fmt.Errorf("gateway: look up device: %w", err)
	}
	if d.Denied {
		s.close(reasonWrongHost)
		return s.refused(errDenied)
	}
	der, err := x509.MarshalPKIXPublicKey(c.sess.DeviceKey)
	if err != nil || d.KeyAlgorithm != store.KeyECC || string(der) != string(d.PublicKey) {
		c.u.forgetKeys()
		s.close(reasonWrongHost)
		return s.refused(errKeyMismatch)
	}
	s.storedProduct = d.ProductID
	s.remember(d)
	return nil
}

// maxIncomingLen: a Gen 3 device takes CoAP messages up to the size its
// Hello announces (its records carry at most 1152 bytes).
func (c *udpConn) maxIncomingLen(h *protocol.Hello) int {
	if h.MaxMessageSize == 0 {
		return udpDefaultMaxMessage
	}
	return min(int(h.MaxMessageSize), udpMaxRecordContent)
}

// Sizes of a Gen 3 device's receive side (docs/device-protocol.md,
// "Message size limits").
const (
	udpMaxRecordContent  = 1152
	udpDefaultMaxMessage = 1024
)

// functionACKRoom: Device OS over DTLS receives a message into one buffer
// of the size its Hello announces and builds the ACK of a function call in
// the 16 bytes after it; a call that leaves less gets no ACK. Device OS
// (3.x to 6.x) takes no blockwise function call, event or variable request
// from the server, so a longer call is refused before it is sent.
func (c *udpConn) functionACKRoom() int { return udpFunctionACKRoom }

// udpFunctionACKRoom is the room Device OS asks for the ACK of a call.
const udpFunctionACKRoom = 16

// readFrame returns the next CoAP message: it opens the application
// records of each datagram in turn, answers a repeated handshake flight,
// re-binds the session to a device's new address, drops duplicates of
// confirmable messages (answering them from the cache) and stops the
// retransmission of acknowledged server messages.
func (c *udpConn) readFrame(s *session) (*frameBuf, []byte, error) {
	if fb := c.handoff; fb != nil && c.takeover {
		c.handoff = nil
		return fb, c.handoffPlain, nil
	}
	for {
		if len(c.rest) == 0 {
			putDatagram(c.cur)
			c.cur, c.rest = nil, nil
			c.idle(s)
			var dl time.Time
			if n := c.rdl.Load(); n != 0 {
				dl = time.Unix(0, n)
			}
			d, err := c.wait(s, dl)
			if err != nil {
				return nil, nil, err
			}
			c.cur, c.rest = d, d.b
		}
		d := c.cur
		whole := len(c.rest) == len(d.b)
		rec, after, err := dtls.ParseRecord(c.rest)
		if err != nil {
			c.rest = nil
			s.g.stats.udpBadRecords.Add(1)
			continue
		}
		c.rest = after
		if rec.Header.Epoch == 0 || !rec.Header.Type.HasCID() {
			// Plaintext: the device repeats its last handshake flight
			// (our Finished was lost); anything else is unauthenticated.
			if c.hs != nil && whole {
				c.handshakeAgain(s, d)
			}
			c.rest = nil
			continue
		}
		fb := getFrameBuf()
		c.smu.Lock()
		sess, err := c.sessLocked()
		var (
			latest uint64
			plain  []byte
			typ    dtls.ContentType
		)
		if err == nil {
			latest, _ = sess.Replay.State()
			plain, typ, err = sess.Open(fb.b[:0], &rec)
		}
		c.smu.Unlock()
		if err != nil {
			putFrameBuf(fb)
			s.g.stats.udpBadRecords.Add(1)
			continue
		}
		fb.b = plain[:0]
		now := time.Now()
		c.rebind(s, d, rec.Header.Seq > latest || latest == 0 || now.Sub(c.heardAt) > rebindQuiet)
		c.heardAt = now
		if c.reaching {
			c.keepSavedAt.Store(0)
		}
		switch typ {
		case dtls.TypeApplicationData:
		case dtls.TypeHandshake:
			putFrameBuf(fb)
			if c.hs != nil {
				c.handshakeAgain(s, d)
				c.rest = nil
			}
			continue
		case dtls.TypeAlert:
			putFrameBuf(fb)
			if len(plain) >= 2 && (plain[0] == 2 || plain[1] == 0) { // fatal, or close_notify
				s.close(reasonAlert)
				return nil, nil, io.EOF
			}
			continue
		default:
			putFrameBuf(fb)
			continue
		}
		if c.hs != nil {
			c.hs = nil // the device has our Finished
			c.u.mu.Lock()
			if c.u.byAddr[c.addrNow()] == c {
				delete(c.u.byAddr, c.addrNow())
			}
			c.u.mu.Unlock()
		}
		if len(c.rest) == 0 {
			putDatagram(c.cur)
			c.cur, c.rest = nil, nil
		}
		if c.reliable(s, plain) {
			putFrameBuf(fb)
			continue
		}
		if isHello(fb, plain) && s.isOnline() {
			c.handoff, c.handoffPlain = fb, plain
			s.close(reasonRestarted)
			return nil, nil, io.EOF
		}
		return fb, plain, nil
	}
}

// idle releases the reliability state of a quiet session.
func (c *udpConn) idle(s *session) {
	c.rmu.Lock()
	if c.dedup.Len() > 0 {
		c.dedup.Expire(time.Now())
		if c.dedup.Len() == 0 {
			c.dedup.Shrink()
		}
	}
	if c.outbox.Len() == 0 {
		c.outbox.Shrink()
	}
	c.rmu.Unlock()
}

// handshakeAgain feeds a repeated handshake flight to the finished
// handshake, which resends its last flight.
func (c *udpConn) handshakeAgain(s *session, d *udpDatagram) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c.smu.Lock()
	out, _, err := c.hs.HandleDatagram(time.Now(), d.addr, d.b)
	c.smu.Unlock()
	if err == nil && len(out) > 0 {
		s.g.stats.udpRetransmits.Add(uint64(len(out)))
		c.send(out)
	}
}

// rebindQuiet is how long a session must have heard nothing before an
// authenticated record older than the newest may move it: a rebooted
// device resumes with the write counter it saved, which can be below
// records it sent after saving.
const rebindQuiet = time.Second

// rebind moves the session to the address of an authenticated record from
// elsewhere (a resumed device marks its records 253; NAT rebinding changes
// the port). A record newer than every one before may move it; an older
// one only after rebindQuiet of silence, so that a delayed copy in a
// stream of records cannot pull the session back.
func (c *udpConn) rebind(s *session, d *udpDatagram, newest bool) {
	c.amu.Lock()
	moved := d.addr != c.addr
	if moved && newest {
		c.addr = d.addr
	}
	if newest {
		c.pc = d.pc
	}
	c.amu.Unlock()
	if moved && newest {
		s.g.stats.udpMoves.Add(1)
		s.g.plog.note(presenceMoved, "gateway: device moved", "device", s.id, "session", s.sid, "addr", d.addr.String())
		// Only a new IP is a new last_ip_address: a new port on the same
		// address (NAT rebinding, every resumption from a new socket) is
		// not worth a store write, which this goroutine waits for while
		// the device's records queue (a storm of resumptions from new
		// ports once queued thousands of them behind the store).
		if ip := d.addr.Addr().String(); ip != s.ip {
			s.ip = ip
			if s.isOnline() {
				s.recordIP()
			}
		}
		c.resendPending(s)
	}
}

// resendPending sends the server's unacknowledged CONs again at once to a
// device that moved: sent to its old address (a device that restarted on
// its saved session has a new socket), they would otherwise wait for the
// retransmission timer, 4–6 s for the first resend (real firmware: a call
// right after a device reset took 4.36 s). A copy the device did get is
// answered from its duplicate detection. The schedule is left alone.
func (c *udpConn) resendPending(s *session) {
	c.rmu.Lock()
	n := c.outbox.Len()
	c.rmu.Unlock()
	if n == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for _, m := range c.outbox.Pending() {
		s.g.stats.udpRetransmits.Add(1)
		if _, err := c.sealAndSend(s, nil, m); err != nil {
			return
		}
	}
}

// recordIP stores the session's address as the device's last IP (a move;
// going online stores it with the session). Read goroutine only; one store
// write per move, none per datagram.
func (s *session) recordIP() {
	st, ok := s.g.store.(store.DeviceAddresses)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := st.SetDeviceIP(ctx, s.id, s.sid, s.ip); err != nil {
		s.g.log.Warn("gateway: record device address", "device", s.id, "err", err)
	}
}

func (c *udpConn) addrNow() netip.AddrPort {
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.addr
}

// reliable applies CoAP over UDP's rules to an incoming message
// (docs/device-protocol.md#39-the-dtls-transport, reliability) and reports whether it
// is a duplicate, already handled.
func (c *udpConn) reliable(s *session, plain []byte) (dup bool) {
	if len(plain) < 4 {
		return false
	}
	id := binary.BigEndian.Uint16(plain[2:4])
	switch protocol.Type(plain[0] >> 4 & 3) {
	case protocol.Confirmable:
		if protocol.Code(plain[1]) == protocol.CodeEmpty {
			// A ping (the device's keep-alive) changes nothing: a
			// repeat is answered again instead of from the cache,
			// which then holds no entry per keep-alive.
			return false
		}
		s.wmu.Lock()
		c.rmu.Lock()
		dup, replies := c.dedup.Receive(time.Now(), id)
		if dup {
			s.g.stats.udpDuplicates.Add(1)
			for _, r := range replies {
				c.sealAndSend(s, nil, r)
			}
		}
		c.rmu.Unlock()
		s.wmu.Unlock()
		return dup
	case protocol.Acknowledgement, protocol.Reset:
		c.rmu.Lock()
		if c.outbox.Ack(id) {
			c.armRetransmitLocked(s)
		}
		c.rmu.Unlock()
	}
	return false
}

// writeFrame sends one CoAP message in one record: an ACK or RST is kept
// for repeats of the message it answers, a CON until its ACK.
func (c *udpConn) writeFrame(s *session, wb *writeBuf) error {
	// A parked session runs again until the exchange is over, then parks
	// with its keys packed again.
	c.pmu.Lock()
	if c.parked.Load() {
		c.keepDeadline = true
		c.wakeLocked()
	}
	c.pmu.Unlock()
	enc := wb.enc
	if len(enc) >= 4 {
		id := binary.BigEndian.Uint16(enc[2:4])
		c.rmu.Lock()
		switch protocol.Type(enc[0] >> 4 & 3) {
		case protocol.Acknowledgement, protocol.Reset:
			c.dedup.Reply(id, enc)
		case protocol.Confirmable:
			if c.outbox.Send(time.Now(), id, enc) == nil {
				c.armRetransmitLocked(s)
			}
		}
		c.rmu.Unlock()
	}
	frame, err := c.sealAndSend(s, wb.frame[:0], enc)
	wb.frame = frame
	return err
}

// sealAndSend seals content into dst and sends it. Called with s.wmu held.
func (c *udpConn) sealAndSend(s *session, dst, content []byte) ([]byte, error) {
	c.smu.Lock()
	sess, err := c.sessLocked()
	if err != nil {
		c.smu.Unlock()
		return dst, err
	}
	if c.lost {
		c.smu.Unlock()
		return dst, errClaimed
	}
	if c.persist.Load() && c.u.saved != nil && sess.WriteSeq >= c.seqLimit {
		c.smu.Unlock()
		if err := c.save(s, &s.hello, c.reserveAhead()); err != nil {
			return dst, fmt.Errorf("gateway: reserve sequence numbers: %w", err)
		}
		c.smu.Lock()
	}
	frame, err := sess.Seal(dst, content)
	c.smu.Unlock()
	if err != nil {
		return dst, err
	}
	c.amu.Lock()
	pc, addr := c.pc, c.addr
	c.amu.Unlock()
	return frame, c.u.write(pc, frame, addr)
}

// armRetransmitLocked sets the retransmission timer to the outbox's next
// deadline. Called with rmu held.
func (c *udpConn) armRetransmitLocked(s *session) {
	dl, ok := c.outbox.NextTimeout()
	if !ok {
		if c.rtimer != nil {
			c.rtimer.Stop()
		}
		return
	}
	wait := max(time.Until(dl), 0)
	if c.rtimer == nil {
		c.rtimer = time.AfterFunc(wait, func() { c.retransmit(s) })
		return
	}
	c.rtimer.Reset(wait)
}

// retransmit resends the server's unacknowledged CONs that are due, and
// ends the session when one was given up: the device is gone.
func (c *udpConn) retransmit(s *session) {
	defer s.recoverBackground()
	select {
	case <-c.done:
		return
	default:
	}
	s.wmu.Lock()
	c.rmu.Lock()
	resend, gaveUp := c.outbox.HandleTimeout(time.Now())
	for _, r := range resend {
		s.g.stats.udpRetransmits.Add(1)
		c.sealAndSend(s, nil, r)
	}
	lost := len(gaveUp) > 0
	if !lost {
		c.armRetransmitLocked(s)
	}
	c.rmu.Unlock()
	s.wmu.Unlock()
	if lost {
		s.g.stats.udpGaveUp.Add(1)
		s.close(reasonNoACK)
	}
}

// idleTimeout is how long a Gen 3 session may be silent before the device
// counts as offline: longer than the keepalive of its network
// (Config.UDPIdleTimeout, Config.UDPCellularIdleTimeout).
func (c *udpConn) idleTimeout(s *session) time.Duration {
	if isCellular(s.hello.PlatformID) {
		return s.g.cfg.UDPCellularIdleTimeout
	}
	return s.g.cfg.UDPIdleTimeout
}

// isCellular reports platforms whose Device OS keeps the 23-minute
// cellular keepalive: Boron, B SoM, B5 SoM, Tracker, Tracker M, E SoM EXT
// and M SoM (which may be on cellular).
func isCellular(platform uint16) bool {
	switch platform {
	case 13, 23, 25, 26, 28, 35:
		return true
	}
	return false
}

// ended saves the session for resumption (unless the device replaced it
// or was refused) and forgets it, or hands it to a new session.
func (c *udpConn) ended(s *session) {
	c.Close()
	c.rmu.Lock()
	if c.rtimer != nil {
		c.rtimer.Stop()
	}
	c.outbox.Clear()
	c.rmu.Unlock()
	if c.handoff != nil && !c.takeover {
		if !s.g.isClosed() {
			c.takeOver(s)
			return
		}
		putFrameBuf(c.handoff)
		c.handoff = nil
	}
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	switch reason {
	case reasonStore, reasonWrongHost:
		// The device holds a session the gateway will not continue:
		// tell it before the store is tried again below.
		c.endWithAlert(s)
	}
	if c.persist.Load() && c.u.saved != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		var err error
		switch reason {
		case reasonReplaced, reasonWrongHost, reasonStore:
			// Only the state this session saved: a session another
			// process restored since is its.
			c.smu.Lock()
			stored := c.stored
			c.smu.Unlock()
			if stored != nil {
				_, err = c.u.saved.DeleteDTLSSessionState(ctx, c.cid[:], stored)
			}
		default:
			// Saved with a reservation, not the exact number: a request
			// of the ended session still under way (a describe fetch)
			// may seal one more record after this save, and the session
			// resumed from it must never reuse that sequence number
			// (the same keys and nonce: CCM's security is gone, and the
			// device drops the record as replayed).
			// Sessions ending together are saved a batch per
			// transaction; this waits for its own batch, except at a
			// shutdown, where it only queues it (saveEnded).
			s.wmu.Lock()
			err = c.saveEnded(s, &s.hello, c.reserveAhead())
			s.wmu.Unlock()
		}
		cancel()
		c.logEndedSave(s, err)
	}
	c.unregister()
	putDatagram(c.cur)
	c.cur, c.rest = nil, nil
	// Datagrams that came in while the session ended go through the
	// demultiplexer again: a record on the saved session resumes it.
	resumable := c.persist.Load() && reason != reasonReplaced && reason != reasonShutdown
	for {
		select {
		case d := <-c.in:
			if resumable && !s.g.isClosed() {
				c.u.demux(d.pc, d.b, d.addr)
			}
			putDatagram(d)
		default:
			return
		}
	}
}

// isHello reports whether a message is a device Hello (POST h).
func isHello(fb *frameBuf, plain []byte) bool {
	return fb.m.Decode(plain) == nil && protocol.Classify(&fb.m) == protocol.KindHello
}

// takeOver starts a new session on c's DTLS session, whose first message
// is the Hello that ended s: the new session goes online with that Hello
// (new versions, flags such as "update succeeded") as after a handshake.
// Called by s's goroutine once s is over and offline.
func (c *udpConn) takeOver(s *session) {
	u := c.u
	n := newUDPConn(u, c.pc, c.addrNow())
	ns := newUDPSession(s.g, n)
	ns.hello = s.hello // until the new Hello: the session taken over's
	n.cid, n.inCIDs, n.devID, n.product = c.cid, true, c.devID, c.product
	c.smu.Lock()
	n.sess, n.packed, n.seqLimit = c.sess, c.packed, c.seqLimit
	n.stored, n.lost = c.stored, c.lost
	c.smu.Unlock()
	n.persist.Store(c.persist.Load())
	n.takeover = true
	n.handoff, n.handoffPlain = c.handoff, c.handoffPlain
	c.handoff, c.handoffPlain = nil, nil
	u.mu.Lock()
	if c.inCIDs && u.byCID[c.cid] == c {
		u.byCID[c.cid] = n
	}
	c.inCIDs = false
	u.mu.Unlock()
	c.unregister()
	putDatagram(c.cur)
	c.cur, c.rest = nil, nil
	for pending := true; pending; {
		select {
		case d := <-c.in:
			n.deliver(d.pc, d.b, d.addr)
			putDatagram(d)
		default:
			pending = false
		}
	}
	s.g.plog.note(presenceMoved, "gateway: device restarted its session", "device", s.id, "session", s.sid)
	s.g.serveUDPSession(ns)
}

// resumeTakeover sets up the session of a conn that took over a live one.
func (c *udpConn) resumeTakeover(s *session) error {
	s.deadline = s.start.Add(s.g.cfg.HandshakeTimeout)
	s.id, s.storedProduct = c.devID, c.product
	c.resumedState = true
	c.newCounters(s)
	return nil
}

// unregister removes c from the demultiplexer's tables.
func (c *udpConn) unregister() {
	u := c.u
	u.mu.Lock()
	defer u.mu.Unlock()
	if c.inCIDs && u.byCID[c.cid] == c {
		delete(u.byCID, c.cid)
	}
	c.inCIDs = false
	if a := c.addrNow(); u.byAddr[a] == c {
		delete(u.byAddr, a)
	}
	if c.resuming {
		c.resuming = false
		u.lookups--
	}
}

// net.Conn, for the session: Close and the read deadline are real; the
// session never calls Read or Write.

func (c *udpConn) Read([]byte) (int, error)  { return 0, errors.New("gateway: udpConn.Read") }
func (c *udpConn) Write([]byte) (int, error) { return 0, errors.New("gateway: udpConn.Write") }

// Close wakes the session goroutine; it returns io.EOF from then on.
func (c *udpConn) Close() error {
	c.once.Do(func() { close(c.done) })
	c.wake() // a parked session ends on its goroutine
	return nil
}

func (c *udpConn) LocalAddr() net.Addr {
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.pc.LocalAddr()
}

func (c *udpConn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addrNow()) }

func (c *udpConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *udpConn) SetReadDeadline(t time.Time) error {
	if c.keepDeadline {
		// The read loop starts again after a wake-up by a send: the
		// device has not been heard, its idle deadline stands.
		c.keepDeadline = false
		return nil
	}
	if t.IsZero() {
		c.rdl.Store(0)
	} else {
		c.rdl.Store(t.UnixNano())
	}
	return nil
}

func (c *udpConn) SetWriteDeadline(time.Time) error { return nil }

func (c *udpConn) resumed() bool { return c.resumedState }

// close ends the session of c from outside (a new handshake from its address).
func (c *udpConn) close() { c.Close() }
