package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Time (docs/particle-protocol.md#time ✔). The device asks with CON GET t and a
// 1-byte token; the answer must be piggy-backed in the ACK with exactly this
// layout, because the device reads the time at offsets 6..9:
//
//	+------+------+-------+-------+-------+------+---------------------+
//	| 0x61 | 0x45 | msgid (2)     | token | 0xFF | unix seconds (u32)  |
//	+------+------+-------+-------+-------+------+---------------------+
//	  ACK,   2.05   = the request's        payload marker
//	  TKL 1
//
// The device treats ANY incoming 2.05 as a time response: never send it other 2.05s.
const timeResponseLen = 10

// NewTimeRequest returns the device's CON GET t with a 1-byte token.
func NewTimeRequest(id uint16, token byte) Message {
	return request(Confirmable, CodeGET, id, token1(token), PathTime)
}

// NewTimeResponse returns the piggy-backed ACK 2.05 answering time request
// (id, token) with unix seconds; it encodes to exactly the layout above.
func NewTimeResponse(id uint16, token byte, unix uint32) Message {
	return NewACK(id, token1(token), CodeContent, binary.BigEndian.AppendUint32(make([]byte, 0, 4), unix))
}

// ErrTimeResponse means a time response not in the fixed 10-byte layout.
var ErrTimeResponse = errors.New("protocol: malformed time response")

// ParseTimeResponse returns the unix seconds of a time response. It insists
// on the fixed layout the firmware parses (2.05, 1-byte token, no options,
// 4-byte payload) so that a server bug cannot pass the device SDK.
func ParseTimeResponse(m *Message) (uint32, error) {
	if m.Code != CodeContent || len(m.Token) != 1 || len(m.Options) != 0 || len(m.Payload) != 4 {
		return 0, ErrTimeResponse
	}
	return binary.BigEndian.Uint32(m.Payload), nil
}

// IsKeepAlive reports whether b is the 1-byte 0x00 keep-alive old Electron
// firmware sends instead of a CoAP ping (PING_AS_EMPTY_MESSAGE,
// docs/particle-protocol.md#ping); it is not a CoAP message and should be
// ignored.
func IsKeepAlive(b []byte) bool { return len(b) == 1 && b[0] == 0 }

// Signal (docs/particle-protocol.md#signal ✔): S→D CON PUT s with a 1-byte
// token and a 1-byte Uri-Query (0x01 start the rainbow LED, 0x00 stop); the
// device answers with a piggy-backed ACK 2.04 (NewACK). The firmware reads the
// query at offset 8.
//
//	0x41 0x03 msgid(2) token | 0xB1 's' | 0x41 0x01|0x00

// NewSignal returns CON PUT s ?<0x01|0x00>.
func NewSignal(id uint16, token byte, on bool) Message {
	m := request(Confirmable, CodePUT, id, token1(token), PathSignal)
	v := byte(0)
	if on {
		v = 1
	}
	m.AddOption(OptionURIQuery, []byte{v})
	return m
}

// ParseSignal returns whether the signal starts (true) or stops.
func ParseSignal(m *Message) (bool, error) {
	if err := expectKind(m, KindSignal); err != nil {
		return false, err
	}
	v, ok := m.Option(OptionURIQuery)
	if !ok || len(v) != 1 {
		return false, fmt.Errorf("%w: signal without 1-byte query", ErrOptionFormat)
	}
	return v[0] != 0, nil
}

// KeyChange (docs/particle-protocol.md#key-change): S→D CON PUT k ?<byte>; 0x01
// makes a DTLS device discard its saved session. The device answers with an
// empty ACK.

// KeyChangeDiscardSession is the KeyChange query that drops a saved DTLS session.
const KeyChangeDiscardSession = 0x01

// NewKeyChange returns CON PUT k ?<flag> with a 1-byte token.
func NewKeyChange(id uint16, token byte, flag byte) Message {
	m := request(Confirmable, CodePUT, id, token1(token), PathKeyChange)
	m.AddOption(OptionURIQuery, []byte{flag})
	return m
}

// ParseKeyChange returns the KeyChange flag byte (0 when absent).
func ParseKeyChange(m *Message) (byte, error) {
	if err := expectKind(m, KindKeyChange); err != nil {
		return 0, err
	}
	if v, ok := m.Option(OptionURIQuery); ok && len(v) > 0 {
		return v[0], nil
	}
	return 0, nil
}

// Goodbye (docs/particle-protocol.md#goodbye), D→S before an intentional
// disconnect:
//
//	POST 0xB1 'x' [0xD0 0xEA: No-Response (258), only when NON] 0xFF
//	     varint flags, then one varint per set flag in flag order:
//	     0x01 cloud disconnect reason, 0x02 system reset reason,
//	     0x04 sleep seconds, 0x08 network disconnect reason
//
// Varints are unsigned LEB128 (7 bits per byte, least significant first).
const (
	goodbyeCloudReason   = 0x01
	goodbyeResetReason   = 0x02
	goodbyeSleep         = 0x04
	goodbyeNetworkReason = 0x08
)

// Goodbye is a decoded Goodbye; zero fields were not sent.
type Goodbye struct {
	CloudReason   uint32
	ResetReason   uint32
	SleepSeconds  uint32
	NetworkReason uint32
}

// ErrGoodbyePayload means a truncated or oversized Goodbye varint.
var ErrGoodbyePayload = errors.New("protocol: malformed goodbye payload")

// NewGoodbye returns POST x; a NON Goodbye carries No-Response like the firmware's.
func NewGoodbye(typ Type, id uint16, g Goodbye) Message {
	m := request(typ, CodePOST, id, nil, PathGoodbye)
	if typ != Confirmable {
		m.AddOption(OptionNoResponse, nil)
	}
	var flags uint64
	vals := make([]uint64, 0, 4)
	for _, f := range []struct {
		bit uint64
		v   uint32
	}{{goodbyeCloudReason, g.CloudReason}, {goodbyeResetReason, g.ResetReason},
		{goodbyeSleep, g.SleepSeconds}, {goodbyeNetworkReason, g.NetworkReason}} {
		if f.v != 0 {
			flags |= f.bit
			vals = append(vals, uint64(f.v))
		}
	}
	p := binary.AppendUvarint(nil, flags)
	for _, v := range vals {
		p = binary.AppendUvarint(p, v)
	}
	m.Payload = p
	return m
}

// ParseGoodbye decodes POST x. An empty payload is an empty Goodbye; bits
// beyond the four known flags are ignored together with any trailing bytes.
func ParseGoodbye(m *Message) (Goodbye, error) {
	var g Goodbye
	if err := expectKind(m, KindGoodbye); err != nil {
		return g, err
	}
	p := m.Payload
	if len(p) == 0 {
		return g, nil
	}
	next := func() (uint32, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 || v > 0xFFFFFFFF {
			return 0, ErrGoodbyePayload
		}
		p = p[n:]
		return uint32(v), nil
	}
	flags, err := next()
	if err != nil {
		return g, err
	}
	for _, f := range []struct {
		bit uint32
		dst *uint32
	}{{goodbyeCloudReason, &g.CloudReason}, {goodbyeResetReason, &g.ResetReason},
		{goodbyeSleep, &g.SleepSeconds}, {goodbyeNetworkReason, &g.NetworkReason}} {
		if flags&f.bit == 0 {
			continue
		}
		if *f.dst, err = next(); err != nil {
			return Goodbye{}, err
		}
	}
	return g, nil
}

// Claim codes (docs/particle-protocol.md#events-devices-publish): after a full
// handshake a device that holds a claim code publishes it as the event
// "spark/device/claim/code"; the cloud claims the device for the code's creator
// and then sends any event whose name starts with "spark/device/claim/" so the
// device clears its stored code.
const (
	ClaimCodeEventName  = "spark/device/claim/code"
	ClaimClearEventName = "spark/device/claim/clear"
	claimEventPrefix    = "spark/device/claim/"
	MaxClaimCodeLen     = 63
)

// ErrClaimCode means a claim-code event with an empty or over-long code.
var ErrClaimCode = errors.New("protocol: malformed claim code")

// ClaimCode returns the claim code carried by e; ok is false when e is not a
// claim-code report.
func ClaimCode(e Event) (code string, ok bool, err error) {
	if e.Name != ClaimCodeEventName {
		return "", false, nil
	}
	if len(e.Data) == 0 || len(e.Data) > MaxClaimCodeLen {
		return "", true, ErrClaimCode
	}
	return string(e.Data), true, nil
}

// IsClaimClearEvent reports whether a cloud→device event name makes the
// device forget its claim code.
func IsClaimClearEvent(name string) bool {
	return len(name) >= len(claimEventPrefix) && name[:len(claimEventPrefix)] == claimEventPrefix
}
