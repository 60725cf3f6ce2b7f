package protocol

import "math/bits"

// Transport selects the transport-dependent choices the message layer needs
// to make (message types, the server key blob layout). The message layer does
// not otherwise depend on the transport.
type Transport uint8

// Transports (docs/particle-protocol.md#key-types).
const (
	// TransportTCP is the Gen 2 transport: TCP 5683, RSA handshake, AES-128-CBC frames.
	TransportTCP Transport = iota
	// TransportUDP is the Gen 3 transport: UDP 5684, DTLS 1.2
	// (docs/particle-protocol.md#the-dtls-transport, not implemented here).
	TransportUDP
)

// Default ports of the two transports
// (docs/particle-protocol.md#the-server-key-file).
const (
	DefaultTCPPort = 5683
	DefaultUDPPort = 5684
)

// String returns "tcp" or "udp".
func (t Transport) String() string {
	if t == TransportUDP {
		return "udp"
	}
	return "tcp"
}

// DefaultType is the type used for messages whose type depends on the
// transport (Hello, events, separate responses;
// docs/particle-protocol.md#message-catalogue): NON over TCP, CON over UDP.
func (t Transport) DefaultType() Type {
	if t == TransportUDP {
		return Confirmable
	}
	return NonConfirmable
}

// MessageIDs hands out CoAP message IDs by pre-incrementing a 16-bit counter
// (wrapping), as Device OS does. The zero value starts at 1. It is not safe
// for concurrent use.
type MessageIDs struct {
	last uint16
}

// NewMessageIDs returns a counter whose first Next is seed+1.
func NewMessageIDs(seed uint16) MessageIDs { return MessageIDs{last: seed} }

// Next returns the next message ID.
func (g *MessageIDs) Next() uint16 {
	g.last++
	return g.last
}

// DeviceMessageIDSeed returns the seed a Gen 2 device uses for its message
// IDs: salt[0:2] read as a little-endian u16
// (docs/particle-protocol.md#message-ids-and-tokens ✔), so the device's first
// message (Hello) carries DeviceMessageIDSeed(salt)+1. Servers must not
// validate device message IDs; this exists for the device SDK and tests.
func DeviceMessageIDSeed(salt [SaltSize]byte) uint16 {
	return uint16(salt[0]) | uint16(salt[1])<<8
}

// Tokens allocates the 1-byte tokens that requests to the device must carry
// (docs/particle-protocol.md#message-ids-and-tokens). It hands out tokens in
// increasing order (wrapping at 256) and skips tokens still outstanding, so
// separate responses can be matched by token. It is not safe for concurrent
// use; the zero value starts at 0.
type Tokens struct {
	next  byte
	n     int
	inUse [4]uint64
}

// MaxOutstandingTokens is the most tokens Acquire hands out before Release.
// Staying below ~200 keeps wrapped tokens from being confused with late
// responses (docs/particle-protocol.md#confirmable-messages-and-retransmission).
const MaxOutstandingTokens = 200

// NewTokens returns an allocator whose first token is start (devices pick a
// random start byte).
func NewTokens(start byte) Tokens { return Tokens{next: start} }

// Acquire returns an unused token and marks it outstanding; ok is false when
// MaxOutstandingTokens are outstanding.
func (t *Tokens) Acquire() (tok byte, ok bool) {
	if t.n >= MaxOutstandingTokens {
		return 0, false
	}
	for range 256 {
		c := t.next
		t.next++
		if t.inUse[c>>6]&(1<<(c&63)) == 0 {
			t.inUse[c>>6] |= 1 << (c & 63)
			t.n++
			return c, true
		}
	}
	return 0, false
}

// Release marks tok free again; releasing a free token is a no-op.
func (t *Tokens) Release(tok byte) {
	if t.inUse[tok>>6]&(1<<(tok&63)) != 0 {
		t.inUse[tok>>6] &^= 1 << (tok & 63)
		t.n--
	}
}

// Outstanding returns how many tokens are acquired and not released.
func (t *Tokens) Outstanding() int {
	n := 0
	for _, w := range t.inUse {
		n += bits.OnesCount64(w)
	}
	return n
}
