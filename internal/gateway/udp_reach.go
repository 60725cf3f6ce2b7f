package gateway

// Reaching a Gen 3 device on its saved session
// (docs/device-protocol.md#39-the-dtls-transport, "After a restart"). A
// Gen 3 device keeps its DTLS session across a restart of the gateway and
// does not notice it: until its next datagram (up to its keepalive, 25 s
// on Wi-Fi, 23 min on cellular) no process holds it and it counts as
// offline. A call for such a device tries the saved session instead of
// failing: the gateway restores it from the store, sends a CoAP ping on it
// to the device's last address, and the device's acknowledgement brings
// the session online as a resumption would. A device that does not answer
// within reachWait is offline; it is not tried again for reachMissTTL.

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Bounds of reaching a device on its saved session.
const (
	reachWait    = 3 * time.Second
	reachMissTTL = time.Minute
	maxReachMiss = 4096
)

// reachable reports whether a bus call of this kind may wake a device on
// its saved session (a reload of an offline device has nothing to do).
func reachable(kind string) bool {
	switch kind {
	case bus.KindFunction, bus.KindVariable, bus.KindSignal, bus.KindPing, bus.KindEvent, bus.KindDescribe:
		return true
	}
	return false
}

// reachSaved tries to bring the device online on its saved Gen 3 session
// and returns its session, or nil when it has none or does not answer.
func (g *Gateway) reachSaved(ctx context.Context, deviceID string) *session {
	u := g.udp
	if u == nil || u.saved == nil {
		return nil
	}
	ds, ok := u.saved.(store.DeviceDTLSSessions)
	if !ok {
		return nil
	}
	id := normalizeID(deviceID)
	if u.reachMissed(id, time.Now()) {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	st, err := ds.LatestDTLSSession(lctx, id)
	cancel()
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("gateway: look up saved dtls session", "device", id, "err", err)
		}
		return nil
	}
	return g.reachAt(ctx, id, st)
}

// reachAt tries to bring device id online on its saved session st (CID
// and address; the state is read again by the restore) and returns its
// session, or nil when it does not answer within reachWait, which it
// remembers for reachMissTTL.
func (g *Gateway) reachAt(ctx context.Context, id string, st *store.DTLSSession) *session {
	u := g.udp
	addr, err := netip.ParseAddrPort(st.Addr)
	if err != nil || len(st.CID) != len(cidKey{}) {
		u.noteReachMiss(id)
		return nil
	}
	var k cidKey
	copy(k[:], st.CID)
	done, ok := u.reach(k, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()))
	if !ok {
		return nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	timeout := time.NewTimer(reachWait + time.Second)
	defer timeout.Stop()
	for {
		if s := g.lookup(id); s != nil {
			return s
		}
		select {
		case <-t.C:
			continue
		case <-done:
		case <-ctx.Done():
		case <-timeout.C:
		}
		if s := g.lookup(id); s != nil {
			return s
		}
		u.noteReachMiss(id)
		return nil
	}
}

// noteReachMiss remembers that device id did not answer on its saved
// session.
func (u *udpServer) noteReachMiss(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reachMisses) >= maxReachMiss {
		clear(u.reachMisses)
	}
	u.reachMisses[id] = time.Now()
}

// reachMissed reports whether device id did not answer within the last
// reachMissTTL.
func (u *udpServer) reachMissed(id string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	at, miss := u.reachMisses[id]
	return miss && now.Sub(at) < reachMissTTL
}

// reach starts a session that restores the saved session k and pings the
// device at addr (restore, c.reaching), and returns a channel closed when
// that session is over. When a session for k runs already (the device is
// resuming it) there is nothing to start and the channel is nil. ok is
// false when no socket serves or too many lookups run.
func (u *udpServer) reach(k cidKey, addr netip.AddrPort) (done <-chan struct{}, ok bool) {
	u.mu.Lock()
	if u.byCID[k] != nil {
		u.mu.Unlock()
		return nil, true
	}
	pc := u.anySocket()
	if pc == nil || u.lookups >= maxResumeLookups {
		u.mu.Unlock()
		return nil, false
	}
	u.lookups++
	c := newUDPConn(u, pc, addr)
	c.cid, c.resuming, c.inCIDs, c.reaching = k, true, true, true
	s := newUDPSession(u.g, c)
	u.byCID[k] = c
	u.mu.Unlock()
	u.g.serveUDPSession(s)
	return s.done, true
}

// ping sends the CoAP ping that asks a device reached on its saved session
// to answer (its ACK is the session's first message).
func (c *udpConn) ping(s *session) error {
	s.deadline = time.Now().Add(reachWait)
	return s.sendNew(func(id uint16) protocol.Message { return protocol.NewPing(id) })
}
