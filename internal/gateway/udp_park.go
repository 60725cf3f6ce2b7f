package gateway

// Parked Gen 3 sessions (docs/device-protocol.md#39-the-dtls-transport,
// "Idle sessions"). A Gen 3 device is silent most of the time: a ping every
// 25 s on Wi-Fi, every 23 min on cellular. A session with nothing in flight
// that has heard nothing for Config.UDPParkAfter parks: its goroutine
// exits, its record keys are kept as the few bytes they are made from, its
// queue, timers and buffers are released. It stays online and registered
// everywhere (device table, connection-ID table, bus handler, router), so
// calls and events find it as before. What wakes it:
//
//   - a datagram on its connection ID (the demultiplexer starts its goroutine
//     again and queues the datagram, udpConn.deliver);
//   - a request or event the gateway sends it: sending needs only the keys,
//     rebuilt on first use, and the device's answer is a datagram;
//   - its end (Close: a new handshake, a takeover, Shutdown, the sweeper).
//
// One sweeper per gateway (udpServer.sweep) ends the parked sessions whose
// device has been silent for longer than its idle timeout, as the read
// deadline of a running session does.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// errParked ends a read loop whose session parked.
var errParked = errors.New("gateway: session parked")

// parkRetry is how long a session that could not park (a request in flight,
// a describe not yet received) waits before it tries again.
const parkRetry = time.Second

// Bounds of the sweeper's period: a fraction of the shortest idle timeout.
const (
	minSweepEvery = 50 * time.Millisecond
	maxSweepEvery = 5 * time.Second
)

// sweepEvery is the period of the offline sweep of parked sessions.
func (u *udpServer) sweepEvery() time.Duration {
	cfg := u.g.cfg
	d := min(cfg.UDPIdleTimeout, cfg.UDPCellularIdleTimeout) / 16
	return min(max(d, minSweepEvery), maxSweepEvery)
}

// wait returns the next datagram before deadline (zero: none), or
// errParked once the session parked after Config.UDPParkAfter of silence.
// Read goroutine only.
func (c *udpConn) wait(s *session, deadline time.Time) (*udpDatagram, error) {
	for {
		dl, parkFirst := deadline, false
		if at := c.parkAt(s); !at.IsZero() && (dl.IsZero() || at.Before(dl)) {
			dl, parkFirst = at, true
		}
		d, err := c.next(dl)
		if !parkFirst || !errors.Is(err, os.ErrDeadlineExceeded) {
			return d, err
		}
		if c.park(s) {
			return nil, errParked
		}
		c.retryPark = time.Now().Add(parkRetry)
	}
}

// parkAt returns when the session may try to park (zero: it may not).
func (c *udpConn) parkAt(s *session) time.Time {
	after := s.g.cfg.UDPParkAfter
	if after < 0 || c.hs != nil || !c.inCIDs || c.handoff != nil || !s.isOnline() {
		return time.Time{}
	}
	at := time.Unix(0, s.lastHeard.Load()).Add(after)
	if c.heardAt.After(time.Unix(0, s.lastHeard.Load())) {
		at = c.heardAt.Add(after)
	}
	if c.retryPark.After(at) {
		at = c.retryPark
	}
	return at
}

// park parks the session if nothing is in flight, and reports whether it
// did. Read goroutine only: after true it must touch nothing of c or s,
// whose next datagram may already run a new goroutine.
func (c *udpConn) park(s *session) bool {
	g := s.g
	if g.otaRunning(s.id) {
		return false
	}
	s.wmu.Lock() // no write in progress while the keys are packed
	defer s.wmu.Unlock()
	s.mu.Lock()
	busy := s.closed || !s.online || len(s.pending) > 0 || s.pings > 0 || s.draining || len(s.queue) > 0 ||
		s.subsTimer != nil || s.held != nil
	if !busy && s.descTimer != nil {
		// A device that posts its describes itself: once both are in,
		// the fallback request is not needed.
		if s.gotParts&(protocol.DescribeSystem|protocol.DescribeApplication) ==
			protocol.DescribeSystem|protocol.DescribeApplication && s.descTimer.Stop() {
			s.descTimer = nil
		} else {
			busy = true
		}
	}
	s.mu.Unlock()
	if busy {
		return false
	}
	c.rmu.Lock()
	if c.outbox.Len() > 0 {
		c.rmu.Unlock()
		return false
	}
	c.outbox.Shrink()
	c.dedup.Expire(time.Now())
	c.dedup.Compact()
	if c.rtimer != nil {
		c.rtimer.Stop()
		c.rtimer = nil
	}
	c.rmu.Unlock()
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if len(c.in) > 0 || c.isClosed() {
		return false
	}
	c.smu.Lock()
	c.packLocked()
	c.smu.Unlock()
	c.timer = nil
	c.in = nil
	c.parked.Store(true)
	g.stats.udpParked.Add(1)
	g.stats.udpParks.Add(1)
	return true
}

// wakeLocked starts the goroutine of a parked session. Called with c.pmu
// held.
func (c *udpConn) wakeLocked() {
	if !c.parked.Load() {
		return
	}
	c.parked.Store(false)
	c.in = make(chan *udpDatagram, udpInbox)
	c.retryPark = time.Time{}
	g := c.u.g
	g.stats.udpParked.Add(-1)
	g.stats.udpWakes.Add(1)
	go c.run(c.s.resume)
}

// wake starts the goroutine of c's session if it is parked.
func (c *udpConn) wake() {
	c.pmu.Lock()
	c.wakeLocked()
	c.pmu.Unlock()
}

// run runs body (serve, or resume after a wake-up) on the session's
// goroutine; when the session is over, not parked, it leaves the gateway's
// tables of connections.
func (c *udpConn) run(body func() bool) {
	if body() {
		return
	}
	s, g := c.s, c.u.g
	g.mu.Lock()
	delete(g.conns, s)
	g.mu.Unlock()
	g.stats.connections.Add(-1)
	g.sessions.Done()
}

// resume runs the read loop of a session that parked, after a wake-up,
// until it parks again or ends (serve without the handshake and Hello).
func (s *session) resume() (parked bool) {
	defer func() {
		if !parked {
			s.end()
		}
	}()
	defer s.recoverPanic()
	return s.readLoop()
}

// packLocked replaces the session's two AES-CCM states by the 40 bytes
// of keys and IVs they are made from, rebuilt by sessLocked on first use
// (a few microseconds; the device key and replay window stay as they are).
// Called with c.smu held.
func (c *udpConn) packLocked() {
	s := c.sess
	if s == nil || s.Read == nil || s.Write == nil || len(c.packed) != 0 {
		return
	}
	rk, riv := s.Read.KeyIV()
	wk, wiv := s.Write.KeyIV()
	b := c.packed[:0] // the storage of the last packing, if any
	b = append(append(append(append(b, rk[:]...), riv[:]...), wk[:]...), wiv[:]...)
	s.Read, s.Write, c.packed = nil, nil, b
}

// sessLocked returns the DTLS session, rebuilding its record keys after a
// park. Called with c.smu held.
func (c *udpConn) sessLocked() (*dtls.Session, error) {
	if c.sess == nil {
		return nil, errors.New("gateway: dtls session not established")
	}
	if len(c.packed) == 0 {
		return c.sess, nil
	}
	const n = dtls.KeyLen + dtls.ImplicitIVLen
	p := c.packed
	r, err := dtls.NewCipher(p[:dtls.KeyLen], p[dtls.KeyLen:n])
	if err != nil {
		return nil, fmt.Errorf("gateway: unpack dtls session: %w", err)
	}
	w, err := dtls.NewCipher(p[n:n+dtls.KeyLen], p[n+dtls.KeyLen:2*n])
	if err != nil {
		return nil, fmt.Errorf("gateway: unpack dtls session: %w", err)
	}
	c.sess.Read, c.sess.Write, c.packed = r, w, p[:0] // the storage stays for the next packing
	return c.sess, nil
}

// otaRunning reports whether a firmware update of the device is running.
func (g *Gateway) otaRunning(id string) bool {
	g.ota.mu.Lock()
	defer g.ota.mu.Unlock()
	return g.ota.byID[id] != nil
}

// isClosed reports whether Close was called.
func (c *udpConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// sweep ends parked sessions whose device has been silent past its idle
// timeout (the read deadline a running session would have hit), every
// sweepEvery until Shutdown.
func (u *udpServer) sweep() {
	defer u.g.bg.Done()
	t := time.NewTicker(u.sweepEvery())
	defer t.Stop()
	var expired []*udpConn
	for {
		select {
		case <-t.C:
		case <-u.g.ctx.Done():
			return
		}
		now := time.Now().UnixNano()
		u.mu.Lock()
		for _, c := range u.byCID {
			if c.parked.Load() {
				if dl := c.rdl.Load(); dl != 0 && now > dl {
					expired = append(expired, c)
				}
			}
		}
		u.mu.Unlock()
		for i, c := range expired {
			if c.s.isOnline() {
				u.g.stats.idleTimeouts.Add(1)
			}
			c.s.close(reasonIdle)
			expired[i] = nil
		}
		expired = expired[:0]
	}
}
