package gateway

// The end of parked sessions at a shutdown. A parked session (Gen 3,
// udp_park.go; Gen 2, tcp_park.go) has no goroutine, and its close starts
// one that runs its read loop only to find the connection closed and end
// it. At a shutdown that is every parked session at once: on a node
// holding 50,000 Gen 3 devices, 50,000 new goroutines whose stacks grow
// as they end (about 16% of the shutdown's CPU in runtime.newstack) and
// that the garbage collector scans and shrinks while they live (a further
// 11%). Shutdown instead takes each parked session out of parking
// (takeParked: no goroutine is started for it from then on) and ends it
// on one of a few goroutines of its own, GOMAXPROCS of them, one session
// after the other (docs/operations.md, "Ending parked sessions at a
// shutdown").

import "runtime"

// takeParked takes a parked session out of parking, and reports whether
// it did: the caller must then end it with endTaken, since nothing else
// will start its goroutine. A session that runs, or that the TCP poller
// holds, is left as it is (its close ends it on its own goroutine).
func (s *session) takeParked() bool {
	if c, ok := s.conn.(*udpConn); ok {
		return c.take()
	}
	if s.tp.state.CompareAndSwap(tcpParked, tcpRunning) {
		s.g.stats.tcpParked.Add(-1)
		return true
	}
	return false
}

// endTaken closes a session taken by takeParked with reason and ends it on
// the calling goroutine, as its read loop would have on finding its
// connection closed.
func (s *session) endTaken(reason string) {
	s.close(reason)
	if c, ok := s.conn.(*udpConn); ok {
		c.run(s.endNow)
		return
	}
	s.runTCP(s.endNow)
}

// endNow ends the session (the body of udpConn.run and session.runTCP for
// a session taken out of parking).
func (s *session) endNow() (parked bool) {
	s.end()
	return false
}

// take is takeParked for a Gen 3 session: parked no longer, and with no
// queue, so a datagram that still comes in is dropped (deliver) and no
// goroutine is started for it (wakeLocked).
func (c *udpConn) take() bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if !c.parked.Load() {
		return false
	}
	c.parked.Store(false)
	c.u.g.stats.udpParked.Add(-1)
	return true
}

// endParked ends sessions taken by takeParked with reason, on GOMAXPROCS
// goroutines, and returns at once. Each ended session leaves the
// gateway's sessions (Shutdown waits for them there).
func endParked(taken []*session, reason string) {
	if len(taken) == 0 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), len(taken))
	per := (len(taken) + workers - 1) / workers
	for i := 0; i < len(taken); i += per {
		part := taken[i:min(i+per, len(taken))]
		go func() {
			for _, s := range part {
				s.endTaken(reason)
			}
		}()
	}
}
