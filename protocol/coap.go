package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CoAP message layout (RFC 7252 §3), used unchanged over both transports,
// including TCP (this is not RFC 8323 CoAP-over-TCP;
// docs/particle-protocol.md#coap-encoding):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Ver| T |  TKL  |      Code     |          Message ID           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Token (if any, TKL bytes; Particle always uses 0 or 1) ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options (if any) ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|1 1 1 1 1 1 1 1|    Payload (if any) ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Each option is encoded relative to the previous option number:
//
//	  0   1   2   3   4   5   6   7
//	+---------------+---------------+
//	| Option Delta  | Option Length |   1 byte
//	+---------------+---------------+
//	/ Option Delta extended         /   0-2 bytes (nibble 13: +1 byte, value-13;
//	+-------------------------------+               nibble 14: +2 bytes, value-269)
//	/ Option Length extended        /   0-2 bytes (same rule)
//	+-------------------------------+
//	/ Option Value                  /   0 or more bytes
//	+-------------------------------+
const (
	coapVersion     = 1
	coapHeaderLen   = 4
	payloadMarker   = 0xFF
	maxTokenLen     = 8
	ext8Nibble      = 13  // one extra byte, value - 13
	ext16Nibble     = 14  // two extra bytes, value - 269
	ext8Base        = 13  // first value that needs the 1-byte extension
	ext16Base       = 269 // first value that needs the 2-byte extension
	maxOptionLen    = ext16Base + 0xFFFF
	maxOptionNumber = 0xFFFF
)

// Errors returned by the CoAP codec.
var (
	// ErrMessageTooShort means fewer bytes than a 4-byte header plus token.
	ErrMessageTooShort = errors.New("protocol: coap message too short")
	// ErrMessageVersion means the header's version field is not 1.
	ErrMessageVersion = errors.New("protocol: coap version is not 1")
	// ErrTokenLength means a TKL above 8 (reserved by RFC 7252).
	ErrTokenLength = errors.New("protocol: coap token length above 8")
	// ErrOptionFormat means an option header uses a reserved nibble (15) or
	// runs past the end of the message.
	ErrOptionFormat = errors.New("protocol: malformed coap option")
	// ErrOptionOrder means the options to encode are not in ascending order.
	ErrOptionOrder = errors.New("protocol: coap options not in ascending order")
	// ErrOptionTooLong means an option value longer than CoAP can encode.
	ErrOptionTooLong = errors.New("protocol: coap option value too long")
)

// Type is the CoAP message type (2 bits of the header).
type Type uint8

// CoAP message types (RFC 7252 §4).
const (
	Confirmable     Type = 0 // CON: must be answered by ACK or RST
	NonConfirmable  Type = 1 // NON
	Acknowledgement Type = 2 // ACK
	Reset           Type = 3 // RST
)

// String returns CON, NON, ACK or RST.
func (t Type) String() string {
	switch t {
	case Confirmable:
		return "CON"
	case NonConfirmable:
		return "NON"
	case Acknowledgement:
		return "ACK"
	case Reset:
		return "RST"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Code is a CoAP method or response code, class<<5 | detail.
type Code uint8

// CoAP codes used by the Particle protocol
// (docs/particle-protocol.md#coap-encoding).
const (
	CodeEmpty                   Code = 0x00 // 0.00
	CodeGET                     Code = 0x01 // 0.01
	CodePOST                    Code = 0x02 // 0.02
	CodePUT                     Code = 0x03 // 0.03
	CodeDELETE                  Code = 0x04 // 0.04
	CodeCreated                 Code = 0x41 // 2.01
	CodeDeleted                 Code = 0x42 // 2.02
	CodeValid                   Code = 0x43 // 2.03
	CodeChanged                 Code = 0x44 // 2.04
	CodeContent                 Code = 0x45 // 2.05
	CodeContinue                Code = 0x5F // 2.31 (blockwise)
	CodeBadRequest              Code = 0x80 // 4.00
	CodeUnauthorized            Code = 0x81 // 4.01
	CodeBadOption               Code = 0x82 // 4.02
	CodeForbidden               Code = 0x83 // 4.03
	CodeNotFound                Code = 0x84 // 4.04
	CodeMethodNotAllowed        Code = 0x85 // 4.05
	CodeRequestEntityIncomplete Code = 0x88 // 4.08 (blockwise)
	CodeRequestEntityTooLarge   Code = 0x8D // 4.13 (blockwise)
	CodeInternalServerError     Code = 0xA0 // 5.00
	CodeNotImplemented          Code = 0xA1 // 5.01
	CodeServiceUnavailable      Code = 0xA3 // 5.03
)

// NewCode returns the code class.detail.
func NewCode(class, detail uint8) Code { return Code(class<<5 | detail&0x1F) }

// Class returns the class digit (0 request, 2 success, 4 client error, 5 server error).
func (c Code) Class() uint8 { return uint8(c) >> 5 }

// Detail returns the two-digit detail part.
func (c Code) Detail() uint8 { return uint8(c) & 0x1F }

// IsRequest reports whether c is a method code (0.01-0.31).
func (c Code) IsRequest() bool { return c.Class() == 0 && c != CodeEmpty }

// IsResponse reports whether c is a response code (class 2-7).
func (c Code) IsResponse() bool { return c.Class() >= 2 }

// IsSuccess reports whether c is a 2.xx response.
func (c Code) IsSuccess() bool { return c.Class() == 2 }

// String renders c as "c.dd", e.g. "2.05".
func (c Code) String() string { return fmt.Sprintf("%d.%02d", c.Class(), c.Detail()) }

// OptionNumber identifies a CoAP option.
type OptionNumber uint16

// Options used by the Particle protocol
// (docs/particle-protocol.md#coap-encoding).
const (
	OptionETag          OptionNumber = 4   // opaque, Block2 describe reassembly
	OptionURIPath       OptionNumber = 11  // string; first one is the message kind letter
	OptionContentFormat OptionNumber = 12  // uint
	OptionMaxAge        OptionNumber = 14  // uint, event TTL seconds
	OptionURIQuery      OptionNumber = 15  // opaque in practice (flag bytes, arguments)
	OptionBlock2        OptionNumber = 23  // uint, RFC 7959
	OptionBlock1        OptionNumber = 27  // uint, RFC 7959
	OptionNoResponse    OptionNumber = 258 // uint, RFC 7967
)

// ContentFormat is a CoAP Content-Format registry number.
type ContentFormat uint16

// Content formats seen on Particle devices (docs/particle-protocol.md#describe,
// docs/particle-protocol.md#events).
const (
	ContentFormatText        ContentFormat = 0  // text/plain; the default when absent
	ContentFormatOctetStream ContentFormat = 42 // application/octet-stream
	ContentFormatJSON        ContentFormat = 50 // application/json
	ContentFormatCBOR        ContentFormat = 60 // application/cbor
)

// Option is one CoAP option. Value aliases the decoded buffer.
type Option struct {
	Number OptionNumber
	Value  []byte
}

// Message is one CoAP message. After Decode, Token, option values and Payload
// alias the input buffer; copy them before the buffer is reused.
type Message struct {
	Type    Type
	Code    Code
	ID      uint16
	Token   []byte   // 0-8 bytes; Particle uses exactly 1 for requests with a token
	Options []Option // ascending by Number; repeated numbers keep their order
	Payload []byte
}

// Decode parses b into m, reusing m.Options' capacity so that a Message
// decoded in a loop does not allocate. It accepts a payload marker followed
// by an empty payload (Device OS sends one for events with empty data,
// docs/particle-protocol.md#events), which RFC 7252 would reject.
func (m *Message) Decode(b []byte) error {
	if len(b) < coapHeaderLen {
		return ErrMessageTooShort
	}
	if b[0]>>6 != coapVersion {
		return ErrMessageVersion
	}
	tkl := int(b[0] & 0x0F)
	if tkl > maxTokenLen {
		return ErrTokenLength
	}
	if len(b) < coapHeaderLen+tkl {
		return ErrMessageTooShort
	}
	m.Type = Type(b[0] >> 4 & 0x03)
	m.Code = Code(b[1])
	m.ID = binary.BigEndian.Uint16(b[2:4])
	m.Token = nil
	if tkl > 0 {
		m.Token = b[coapHeaderLen : coapHeaderLen+tkl : coapHeaderLen+tkl]
	}
	m.Options = m.Options[:0]
	m.Payload = nil
	p := b[coapHeaderLen+tkl:]
	number := 0
	for len(p) > 0 {
		if p[0] == payloadMarker {
			if len(p) > 1 {
				m.Payload = p[1:]
			}
			return nil
		}
		delta, length := int(p[0]>>4), int(p[0]&0x0F)
		p = p[1:]
		var err error
		if delta, p, err = optionExtended(delta, p); err != nil {
			return err
		}
		if length, p, err = optionExtended(length, p); err != nil {
			return err
		}
		number += delta
		if number > maxOptionNumber || length > len(p) {
			return ErrOptionFormat
		}
		m.Options = append(m.Options, Option{Number: OptionNumber(number), Value: p[:length:length]})
		p = p[length:]
	}
	return nil
}

// optionExtended resolves a delta or length nibble with its extension bytes.
func optionExtended(nibble int, p []byte) (int, []byte, error) {
	switch nibble {
	case ext8Nibble:
		if len(p) < 1 {
			return 0, nil, ErrOptionFormat
		}
		return int(p[0]) + ext8Base, p[1:], nil
	case ext16Nibble:
		if len(p) < 2 {
			return 0, nil, ErrOptionFormat
		}
		return int(binary.BigEndian.Uint16(p)) + ext16Base, p[2:], nil
	case 15:
		return 0, nil, ErrOptionFormat
	}
	return nibble, p, nil
}

// ParseMessage decodes b into a new Message (see Message.Decode for aliasing).
func ParseMessage(b []byte) (Message, error) {
	var m Message
	err := m.Decode(b)
	return m, err
}

// AppendBinary appends the wire form of m to b. Options must be in ascending
// order (AddOption keeps them so); the payload marker is written only when
// the payload is non-empty.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Token) > maxTokenLen {
		return b, ErrTokenLength
	}
	b = append(b, coapVersion<<6|byte(m.Type&0x03)<<4|byte(len(m.Token)), byte(m.Code), byte(m.ID>>8), byte(m.ID))
	b = append(b, m.Token...)
	prev := OptionNumber(0)
	for _, o := range m.Options {
		if o.Number < prev {
			return b, ErrOptionOrder
		}
		if len(o.Value) > maxOptionLen {
			return b, ErrOptionTooLong
		}
		delta, length := int(o.Number-prev), len(o.Value)
		dn, dx, dl := optionNibble(delta)
		ln, lx, ll := optionNibble(length)
		b = append(b, byte(dn<<4|ln))
		b = appendExtended(b, dx, dl)
		b = appendExtended(b, lx, ll)
		b = append(b, o.Value...)
		prev = o.Number
	}
	if len(m.Payload) > 0 {
		b = append(b, payloadMarker)
		b = append(b, m.Payload...)
	}
	return b, nil
}

// optionNibble returns the 4-bit nibble, the extension value and its size.
func optionNibble(v int) (nibble, ext, size int) {
	switch {
	case v < ext8Base:
		return v, 0, 0
	case v < ext16Base:
		return ext8Nibble, v - ext8Base, 1
	}
	return ext16Nibble, v - ext16Base, 2
}

func appendExtended(b []byte, v, size int) []byte {
	switch size {
	case 1:
		return append(b, byte(v))
	case 2:
		return append(b, byte(v>>8), byte(v))
	}
	return b
}

// MarshalBinary returns the wire form of m.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.encodedLenHint()))
}

func (m *Message) encodedLenHint() int {
	n := coapHeaderLen + len(m.Token) + 1 + len(m.Payload)
	for _, o := range m.Options {
		n += 5 + len(o.Value)
	}
	return n
}

// AddOption inserts an option after any options with a number <= n, keeping
// the list sorted for AppendBinary.
func (m *Message) AddOption(n OptionNumber, v []byte) {
	i := len(m.Options)
	for i > 0 && m.Options[i-1].Number > n {
		i--
	}
	m.Options = append(m.Options, Option{})
	copy(m.Options[i+1:], m.Options[i:])
	m.Options[i] = Option{Number: n, Value: v}
}

// AddUintOption adds n with v in CoAP's minimal big-endian uint encoding.
func (m *Message) AddUintOption(n OptionNumber, v uint32) {
	m.AddOption(n, AppendUint(nil, v))
}

// Option returns the value of the first option numbered n.
func (m *Message) Option(n OptionNumber) ([]byte, bool) {
	for _, o := range m.Options {
		if o.Number == n {
			return o.Value, true
		}
	}
	return nil, false
}

// UintOption returns the first option numbered n decoded as a CoAP uint
// (0-4 bytes, big-endian).
func (m *Message) UintOption(n OptionNumber) (uint32, bool, error) {
	v, ok := m.Option(n)
	if !ok {
		return 0, false, nil
	}
	u, err := ParseUint(v)
	return u, true, err
}

// Token1 returns the token when it is exactly one byte long
// (docs/particle-protocol.md#message-ids-and-tokens).
func (m *Message) Token1() (byte, bool) {
	if len(m.Token) != 1 {
		return 0, false
	}
	return m.Token[0], true
}

// PathKind returns the first byte of the first Uri-Path option, the letter
// that selects the message kind (docs/particle-protocol.md#coap-encoding), or 0
// when there is none.
func (m *Message) PathKind() byte {
	for _, o := range m.Options {
		if o.Number == OptionURIPath {
			if len(o.Value) == 0 {
				return 0
			}
			return o.Value[0]
		}
		if o.Number > OptionURIPath {
			break
		}
	}
	return 0
}

// PathName returns the resource name carried after the kind letter
// (docs/particle-protocol.md#coap-encoding): the further Uri-Path options joined
// with "/". It is lenient: a first option of the form "e/name"
// (particle-collider) yields "name". ok is false when there is no Uri-Path or
// the first option is not a single letter (optionally followed by "/...").
func (m *Message) PathName() (name string, ok bool) {
	var buf []byte
	first := true
	for _, o := range m.Options {
		if o.Number != OptionURIPath {
			continue
		}
		if first {
			first = false
			switch {
			case len(o.Value) == 1:
				continue
			case len(o.Value) >= 2 && o.Value[1] == '/':
				buf = append(buf, o.Value[2:]...)
				continue
			default:
				return "", false
			}
		}
		if len(buf) > 0 {
			buf = append(buf, '/')
		}
		buf = append(buf, o.Value...)
	}
	if first {
		return "", false
	}
	return string(buf), true
}

// AppendUint appends v in CoAP's minimal uint encoding (RFC 7252 §3.2): zero
// is the empty string, otherwise 1-4 big-endian bytes without leading zeros.
func AppendUint(b []byte, v uint32) []byte {
	switch {
	case v == 0:
		return b
	case v < 1<<8:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, byte(v>>8), byte(v))
	case v < 1<<24:
		return append(b, byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ErrUintTooLong means a uint option value longer than 4 bytes.
var ErrUintTooLong = errors.New("protocol: coap uint option longer than 4 bytes")

// ParseUint decodes a CoAP uint of 0-4 bytes; leading zero bytes are accepted
// (Device OS always sends Max-Age as 3 bytes).
func ParseUint(v []byte) (uint32, error) {
	if len(v) > 4 {
		return 0, ErrUintTooLong
	}
	var u uint32
	for _, c := range v {
		u = u<<8 | uint32(c)
	}
	return u, nil
}
