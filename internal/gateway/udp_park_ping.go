package gateway

// Keep-alive pings of parked Gen 3 sessions, answered where they arrive.
//
// An idle Gen 3 device's only traffic is its keep-alive: a CoAP ping
// (CON 0.00, 40 00 <id>) in one DTLS record every 25 s on Wi-Fi. Waking the
// parked session for it started a goroutine, unpacked its record keys,
// handed the datagram over a channel, answered, and parked again after
// Config.UDPParkAfter with a timer: about 100 µs of server CPU per ping,
// most of it the scheduler's (docs/operations.md, "Idle CPU"). The
// demultiplexer now answers such a ping itself, as the Gen 2 poller does
// (tcp_park_linux.go): it opens the record with the parked keys, marks its
// sequence number, seals the empty ACK and sends it, and the session stays
// parked. Anything else, or a ping the session must see (from a new
// address, while a send holds the writer, when sequence numbers must be
// reserved in the store first), wakes the session as before, with the
// record still unread.

import (
	"net"
	"net/netip"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// maxPingBody bounds the body of a record that may hold a ping: the
// nonce and tag, the 4-byte message, its inner content type and a little
// padding. Larger records go to the session without being opened here.
const maxPingBody = dtls.Overhead + 4 + 1 + 16

// pingParked answers d if it is one record holding a keep-alive ping for
// c's parked session, and reports whether it did; on false d is untouched
// and the caller delivers it. The demultiplexer's goroutine only.
func (c *udpConn) pingParked(pc net.PacketConn, d []byte, addr netip.AddrPort) bool {
	rec, rest, err := dtls.ParseRecord(d)
	if err != nil || len(rest) != 0 || !rec.Header.Type.HasCID() || len(rec.Body) > maxPingBody {
		return false
	}
	// pmu keeps the session parked (no goroutine reads c's read-goroutine
	// fields, none may start) until the answer is sent.
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if !c.parked.Load() || c.reaching || c.isClosed() {
		return false
	}
	c.amu.Lock()
	same := c.addr == addr && c.pc == pc
	c.amu.Unlock()
	if !same {
		return false // a move: rebind is the session's
	}
	s := c.s
	if !s.wmu.TryLock() {
		return false // a send is waking the session
	}
	defer s.wmu.Unlock()
	wb := getWriteBuf()
	defer putWriteBuf(wb)
	c.smu.Lock()
	frame, ok := c.answerPingLocked(wb, &rec)
	c.smu.Unlock()
	if !ok {
		return false
	}
	wb.frame = frame
	now := time.Now()
	s.lastHeard.Store(now.UnixNano())
	c.heardAt = now
	c.rdl.Store(now.Add(c.idleTimeout(s)).UnixNano())
	s.g.stats.udpParkedPings.Add(1)
	// A lost answer is a lost datagram: the device sends its ping again.
	_ = c.u.write(pc, frame, addr)
	return true
}

// answerPingLocked opens rec and, if it is a ping, marks it read and
// returns the sealed empty ACK in wb.frame's storage. The record keys are
// packed again before it returns. Called with c.smu held.
func (c *udpConn) answerPingLocked(wb *writeBuf, rec *dtls.Record) ([]byte, bool) {
	if c.lost || c.sess == nil {
		return nil, false
	}
	if c.persist.Load() && c.u.saved != nil && c.sess.WriteSeq >= c.seqLimit {
		return nil, false // the session saves its reservation first
	}
	sess, err := c.sessLocked()
	if err != nil {
		return nil, false
	}
	defer c.packLocked()
	plain, typ, err := sess.Peek(wb.enc[:0], rec)
	if err != nil || typ != dtls.TypeApplicationData || !isPingFrame(plain) {
		return nil, false
	}
	wb.enc = plain
	ack := [4]byte{0x60, 0x00, plain[2], plain[3]} // ACK 0.00 with the ping's ID, no token
	frame, err := sess.Seal(wb.frame[:0], ack[:])
	if err != nil {
		return nil, false
	}
	sess.Replay.Mark(rec.Header.Seq)
	return frame, true
}
