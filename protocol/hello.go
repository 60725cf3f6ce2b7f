package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Hello payload (docs/particle-protocol.md#hello ✔), sent by the device as POST
// h right after the handshake. Trailing fields were added over time; all after
// the id are optional.
//
//	 0      2      4      6      8  9  10       10+N   +2     +4         +8
//	+------+------+------+------+--+--+---------+------+------+----------+------+
//	| prod | prod | flags| plat |00|N | id (N)  | sys  | max  | max bin  | OTA  |
//	| id   | ver  |      | id   |  |  | 0 / 12  | ver  | msg  | size     |chunk |
//	+------+------+------+------+--+--+---------+------+------+----------+------+
//	  u16    u16    u16    u16   u16 BE          u16    u16    u32        u16
//
// Observed from Device OS 3.3.1 (gcc): 0003 ffff 0036 0003 00 00 | 0ce6 03c0 00019000 0200.
const (
	helloFixedLen    = 10 // product id .. id length
	helloTrailingLen = 10 // system version .. OTA chunk size
)

// HelloFlags are the capability bits in the Hello
// (docs/particle-protocol.md#hello).
type HelloFlags uint16

// Hello flags.
const (
	HelloOTASucceeded      HelloFlags = 0x01 // previous OTA succeeded; cleared by the server Hello
	HelloDiagnostics       HelloFlags = 0x02 // diagnostics (describe metrics) supported
	HelloImmediateUpdates  HelloFlags = 0x04 // immediate firmware updates supported
	HelloHandshakeComplete HelloFlags = 0x08 // reserved
	HelloGoodbye           HelloFlags = 0x10 // Goodbye message supported
	HelloDeviceDescribe    HelloFlags = 0x20 // device posts its describes itself
	HelloCompressedOTA     HelloFlags = 0x40 // compressed OTA binaries supported
	HelloOTAv3             HelloFlags = 0x80 // OTA protocol v3
)

// Hello is the device's Hello payload.
type Hello struct {
	ProductID      uint16 // platform id (or 0xFFFF) when not a product build
	ProductVersion uint16 // 0xFFFF = undefined
	Flags          HelloFlags
	PlatformID     uint16
	// DeviceID is empty over TCP and the 12-byte id over DTLS
	// (docs/particle-protocol.md#coap-over-dtls).
	DeviceID []byte
	// The trailing fields are zero when the device did not send them.
	SystemVersion  uint16 // system module version, e.g. 3302 for 3.3.1
	MaxMessageSize uint16 // largest CoAP message the device accepts
	MaxBinarySize  uint32 // largest firmware binary
	OTAChunkSize   uint16
}

// ErrHelloPayload means a Hello payload whose device-id length runs past its end.
var ErrHelloPayload = errors.New("protocol: malformed hello payload")

// AppendBinary appends the full current layout of h.
func (h Hello) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, h.ProductID)
	b = binary.BigEndian.AppendUint16(b, h.ProductVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Flags))
	b = binary.BigEndian.AppendUint16(b, h.PlatformID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.DeviceID)))
	b = append(b, h.DeviceID...)
	b = binary.BigEndian.AppendUint16(b, h.SystemVersion)
	b = binary.BigEndian.AppendUint16(b, h.MaxMessageSize)
	b = binary.BigEndian.AppendUint32(b, h.MaxBinarySize)
	return binary.BigEndian.AppendUint16(b, h.OTAChunkSize)
}

// ParseHello decodes a Hello payload defensively: each field is read only if
// present in full, so payloads of older firmware parse with zero trailing
// fields; a device-id length running past the end is an error. Bytes 8-9 are
// read as one u16 length (byte 8 is 0 on current firmware, the high byte of a
// 2-byte length on old clients). DeviceID is copied.
func ParseHello(p []byte) (Hello, error) {
	var h Hello
	u16 := func(off int) uint16 {
		if off+2 > len(p) {
			return 0
		}
		return binary.BigEndian.Uint16(p[off:])
	}
	h.ProductID, h.ProductVersion = u16(0), u16(2)
	h.Flags, h.PlatformID = HelloFlags(u16(4)), u16(6)
	if len(p) < helloFixedLen {
		return h, nil
	}
	n := int(u16(8))
	if helloFixedLen+n > len(p) {
		return Hello{}, fmt.Errorf("%w: device id length %d", ErrHelloPayload, n)
	}
	if n > 0 {
		h.DeviceID = append([]byte(nil), p[helloFixedLen:helloFixedLen+n]...)
	}
	t := helloFixedLen + n
	h.SystemVersion, h.MaxMessageSize = u16(t), u16(t+2)
	if t+8 <= len(p) {
		h.MaxBinarySize = binary.BigEndian.Uint32(p[t+4:])
	}
	h.OTAChunkSize = u16(t + 8)
	return h, nil
}

// NewHello returns the device's Hello: POST h without token (TCP: NON; UDP: CON).
func NewHello(typ Type, id uint16, h Hello) Message {
	m := request(typ, CodePOST, id, nil, PathHello)
	m.Payload = h.AppendBinary(make([]byte, 0, helloFixedLen+len(h.DeviceID)+helloTrailingLen))
	return m
}

// NewServerHello returns the server's Hello: POST h, no token, no payload.
// TCP firmware waits 4 s for it after its own Hello
// (docs/particle-protocol.md#tcp-handshake step 7).
func NewServerHello(typ Type, id uint16) Message {
	return request(typ, CodePOST, id, nil, PathHello)
}

// ParseHelloMessage checks m is a Hello and decodes its payload; a server
// Hello yields the zero Hello.
func ParseHelloMessage(m *Message) (Hello, error) {
	if err := expectKind(m, KindHello); err != nil {
		return Hello{}, err
	}
	return ParseHello(m.Payload)
}
