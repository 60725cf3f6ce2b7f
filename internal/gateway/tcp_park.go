package gateway

// Parked Gen 2 sessions (docs/device-protocol.md, "Idle sessions"). A Gen 2
// device is silent between its pings (every 15–30 s) unless it is called or
// publishes, and a goroutine blocked in the read of each idle session costs
// its stack (4–8 KB once a handshake and a store write have grown it) and
// the runtime's goroutine record, more than the rest of the session's
// state. So a session of Serve that finds no byte of its device's next
// frame waiting parks instead of reading: its goroutine exits and the
// socket is armed, edge-triggered, in the gateway's poller (an epoll
// instance that Go's own poller watches; tcp_park_linux.go). Nothing else changes: the
// session stays online and registered everywhere, its keys, IV chains and
// pending requests stay as they are, and writes (calls, events, OTA) go out
// on the socket from their own goroutines as before. What wakes it:
//
//   - the device's next frame, or its end of the connection: the poller
//     starts the session's read loop again, which reads what arrived;
//   - its end (close: a newer connection, a bad write, Shutdown, the
//     sweeper): close wakes it, and the read loop finds the socket closed
//     and ends the session as ever.
//
// Not the device's keep-alive ping, the only frame most idle devices ever
// send: the poller's goroutine answers it itself (tcpPoller.serve). It
// reads what arrived with one read into its own buffer, decrypts a
// one-block frame without touching the session's IV (FrameOpener.Peek)
// and, if it is a ping (CON 0.00, no token), takes the IV past it
// (Advance), seals the empty ACK of the ping's own message ID under the
// session's write lock (only if free: TryLock; it never waits) and writes
// it, and stores the last-heard time, all inside one RawConn.Control: no
// goroutine, no allocation, and three system calls per ping (its share of
// epoll_wait, read, write), raw ones that do not wake the runtime's sysmon
// thread (rawRead). The socket stays armed: edge-triggered, each
// later segment is a new event, so it needs no epoll_ctl. A read that
// fills the poller's buffer may have left bytes that no event will
// report, so it starts the session's read loop, as does anything else in
// the read, with the bytes read handed over (tcpPark.carry, taken before
// the socket): another frame
// after the pings, a frame not a ping, a bad one, the hang-up, an error,
// or a busy writer. A frame cut short (firmware writes a frame's length
// and body apart) waits in carry while the session stays parked, so cut
// pings cost no goroutine either. While the poller holds a session it is
// tcpPolled; a close meanwhile (tcpPolledWake) has the poller start the
// read loop when it is done, which finds the socket closed. The ACK's
// write needs room in the socket's send buffer; without it (a device
// that stopped reading) the rest goes out from a goroutine that holds the
// write lock as a blocked send would. Measured by BenchmarkParkedPing;
// figures in docs/operations.md ("Idle CPU per ping").
//
// A parked session has no read deadline running. One sweeper per gateway
// (tcpSweep) closes the parked sessions whose device has been silent for
// Config.IdleTimeout, as that deadline would have. Sessions of ServeConn
// (whose caller waits for the end anyway), of other systems than Linux,
// and connections without a socket (net.Pipe) never park.

import (
	"net"
	"time"
)

// Parking states of a TCP session.
const (
	tcpRunning int32 = iota // a goroutine runs the session (or it cannot park)
	tcpParked               // armed in the poller; no goroutine
	// tcpPolled: parked, and the poller's goroutine is answering its
	// pings (tcp_park_linux.go); it parks the session again or starts its
	// goroutine.
	tcpPolled
	// tcpPolledWake: polled, and closed meanwhile: the poller starts the
	// session's goroutine when it is done, which finds the socket closed.
	tcpPolledWake
)

// serveTCP runs the session of an accepted connection, which may park:
// this goroutine then exits, and the session's end runs on the goroutine
// that last woke it.
func (g *Gateway) serveTCP(conn net.Conn) {
	s, ok := g.track(conn)
	if !ok {
		return
	}
	if g.tpoll != nil && !g.cfg.DisableTCPPark {
		s.tp.enable(conn)
	}
	s.runTCP(s.serve)
}

// track registers a new TCP session of conn among the gateway's
// connections; false: the gateway is closed (conn is closed).
func (g *Gateway) track(conn net.Conn) (*session, bool) {
	s := newSession(g, conn)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		conn.Close()
		return nil, false
	}
	g.conns[s] = struct{}{}
	g.sessions.Add(1)
	g.mu.Unlock()
	g.stats.connections.Add(1)
	return s, true
}

// untrack removes an ended session from the gateway's connections.
func (g *Gateway) untrack(s *session) {
	g.mu.Lock()
	delete(g.conns, s)
	g.mu.Unlock()
	g.stats.connections.Add(-1)
	g.sessions.Done()
}

// runTCP runs body (serve, or resume after a wake-up); when the session
// is over rather than parked, it leaves the gateway's connections and the
// poller's table.
func (s *session) runTCP(body func() bool) {
	if body() {
		return
	}
	if s.g.tpoll != nil {
		s.g.tpoll.forget(s)
	}
	s.g.untrack(s)
}

// wakeTCP starts the read loop of a parked TCP session again, or has the
// poller start it if it is answering the session's ping; a no-op for a
// session that is running or cannot park.
func (s *session) wakeTCP() {
	for {
		switch s.tp.state.Load() {
		case tcpParked:
			if s.tp.state.CompareAndSwap(tcpParked, tcpRunning) {
				s.startTCP()
				return
			}
		case tcpPolled:
			if s.tp.state.CompareAndSwap(tcpPolled, tcpPolledWake) {
				return
			}
		default:
			return
		}
	}
}

// startTCP starts the read loop of a session its caller took out of the
// poller (state now tcpRunning).
func (s *session) startTCP() {
	s.g.stats.tcpParked.Add(-1)
	s.g.stats.tcpWakes.Add(1)
	go s.runTCP(s.resume)
}

// tcpSweepEvery is the period of the idle sweep of parked TCP sessions.
func (g *Gateway) tcpSweepEvery() time.Duration {
	return min(max(g.cfg.IdleTimeout/16, minSweepEvery), maxSweepEvery)
}

// tcpSweep closes parked sessions whose device has been silent for
// Config.IdleTimeout (the read deadline a running session would have hit),
// every tcpSweepEvery until Shutdown.
func (g *Gateway) tcpSweep() {
	defer g.bg.Done()
	t := time.NewTicker(g.tcpSweepEvery())
	defer t.Stop()
	var expired []*session
	for {
		select {
		case <-t.C:
		case <-g.ctx.Done():
			return
		}
		idle := g.cfg.IdleTimeout.Nanoseconds()
		now := time.Now().UnixNano()
		expired = g.tpoll.parked(expired[:0], func(s *session) bool { return now-s.lastHeard.Load() > idle })
		for i, s := range expired {
			// A frame may have woken it since: only a session still
			// parked and silent is closed.
			if s.tp.state.Load() == tcpParked && time.Now().UnixNano()-s.lastHeard.Load() > idle {
				g.stats.idleTimeouts.Add(1)
				s.close(reasonIdle)
			}
			expired[i] = nil
		}
	}
}
