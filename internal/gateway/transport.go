package gateway

import (
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// A transport is how one session's CoAP messages travel: Gen 2 frames over
// TCP (tcp.go) or Gen 3 DTLS records over UDP (udp*.go). The session, the
// dispatcher, requests and event delivery above it are the same for both
// (docs/device-protocol.md#39-the-dtls-transport).
//
// A transport value is stored in the session; the TCP one is an empty
// struct (its state lives in the session's opener, sealer and hdr fields),
// so that the TCP session pays nothing for the seam.
type transport interface {
	// handshake authenticates the device and sets up the session's keys,
	// s.sid, s.ids and s.tokens. For a resumed DTLS session it only
	// restores them. A failure has already closed the session.
	handshake(s *session) error
	// readFrame returns the next CoAP message from the device, decrypted
	// into a pooled buffer the caller returns with putFrameBuf. It honours
	// the read deadline set on s.conn.
	readFrame(s *session) (*frameBuf, []byte, error)
	// writeFrame encrypts and sends wb.enc, one CoAP message. Called with
	// s.wmu held.
	writeFrame(s *session, wb *writeBuf) error
	// checkHello vets the device's Hello before the session goes online:
	// over DTLS it names the device, which must own the handshake's key.
	checkHello(s *session, h *protocol.Hello) error
	// maxIncomingLen returns the largest encoded CoAP message the device
	// can receive, or 0 for no limit known.
	maxIncomingLen(h *protocol.Hello) int
	// functionACKRoom is what a function call must leave of the device's
	// receive buffer for the ACK it builds there (0: nothing).
	functionACKRoom() int
	// idleTimeout is how long the device may be silent before it counts
	// as offline.
	idleTimeout(s *session) time.Duration
	// resumed reports a session restored without a handshake, whose first
	// message need not be a Hello.
	resumed() bool
	// ended runs once when the session is over, after the device was
	// marked offline (a DTLS session is saved for resumption here).
	ended(s *session)
}

// tcpTransport is the Gen 2 transport; its state is in the session.
type tcpTransport struct{}

// checkHello accepts any Hello: the TCP handshake named the device.
func (tcpTransport) checkHello(*session, *protocol.Hello) error { return nil }

// maxIncomingLen: Device OS over TCP receives a frame into a buffer of the
// size its Hello announces (MaxMessageSize: 960 on Gen 2), of which it keeps
// 2 bytes for the length prefix and 16 for padding. The ciphertext is the
// plaintext padded to whole AES blocks, with at least one byte of padding. A
// size too small for anything still limits (to 1 byte: nothing fits).
func (tcpTransport) maxIncomingLen(h *protocol.Hello) int {
	size := int(h.MaxMessageSize)
	if size == 0 {
		return 0
	}
	return max((size-deviceFrameReserve)/16*16-1, 1)
}

// functionACKRoom: Device OS builds the ACK of a function call in what the
// call leaves of its one frame buffer.
func (tcpTransport) functionACKRoom() int { return deviceFrameReserve + functionACKRoom }

func (tcpTransport) ended(*session) {}

func (tcpTransport) idleTimeout(s *session) time.Duration { return s.g.cfg.IdleTimeout }

func (tcpTransport) resumed() bool { return false }

// handshake, readFrame and writeFrame forward to the session's transport.
func (s *session) handshake() error { return s.tr.handshake(s) }

func (s *session) readFrame() (*frameBuf, []byte, error) { return s.tr.readFrame(s) }

func (s *session) writeFrame(wb *writeBuf) error { return s.tr.writeFrame(s, wb) }
