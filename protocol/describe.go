package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Describe messages (docs/particle-protocol.md#describe ✔):
//
//	S→D request   CON GET  d ?<flags:1 byte> [Block2]           token
//	D→S response  2.05 d-less separate response, same token, [Block2, ETag], payload
//	D→S post      CON POST d [Content-Format] ?<flags> [Block1], payload   (Hello flag 0x20)
//
// The Uri-Query is one raw byte (0x01, 0x02, 0x04), not ASCII. Always send
// it, and request system and application info separately: Device OS 3.3.1
// answering flags 3 concatenates the two JSON bodies without a comma.

// DescribeFlags select what a describe carries.
type DescribeFlags uint8

// Describe flags.
const (
	DescribeSystem      DescribeFlags = 0x01 // modules, platform (JSON ≤3.x, protobuf 6.x)
	DescribeApplication DescribeFlags = 0x02 // functions and variables (JSON)
	DescribeMetrics     DescribeFlags = 0x04 // diagnostics (binary)
	describeAll                       = DescribeSystem | DescribeApplication | DescribeMetrics
)

// String returns the set flags, e.g. "system|application".
func (f DescribeFlags) String() string {
	var parts []string
	for _, x := range []struct {
		f DescribeFlags
		s string
	}{{DescribeSystem, "system"}, {DescribeApplication, "application"}, {DescribeMetrics, "metrics"}} {
		if f&x.f != 0 {
			parts = append(parts, x.s)
		}
	}
	if rest := f &^ describeAll; rest != 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// ErrDescribeFlags means a describe without a valid 1-byte flags query.
var ErrDescribeFlags = errors.New("protocol: describe flags query missing or invalid")

func describeFlags(m *Message) (DescribeFlags, error) {
	v, ok := m.Option(OptionURIQuery)
	if !ok || len(v) != 1 || v[0] == 0 || DescribeFlags(v[0])&^describeAll != 0 {
		return 0, ErrDescribeFlags
	}
	return DescribeFlags(v[0]), nil
}

// DescribeRequest is a decoded server GET d.
type DescribeRequest struct {
	Flags DescribeFlags
	// Block2 asks for one block of a large description (nil for the first request).
	Block2 *Block
}

// NewDescribeRequest returns CON GET d ?flags with a 1-byte token. block, if
// non-nil, requests that Block2 block (same size as the device's, m=0).
func NewDescribeRequest(id uint16, token byte, flags DescribeFlags, block *Block) (Message, error) {
	m := request(Confirmable, CodeGET, id, token1(token), PathDescribe)
	m.AddOption(OptionURIQuery, []byte{byte(flags)})
	if block != nil {
		v, err := block.Value()
		if err != nil {
			return Message{}, err
		}
		m.AddOption(OptionBlock2, v)
	}
	return m, nil
}

// ParseDescribeRequest decodes a GET d. A request without a valid flags
// byte returns ErrDescribeFlags (firmware answers it with 4.00).
func ParseDescribeRequest(m *Message) (DescribeRequest, error) {
	if err := expectKind(m, KindDescribeRequest); err != nil {
		return DescribeRequest{}, err
	}
	f, err := describeFlags(m)
	if err != nil {
		return DescribeRequest{}, err
	}
	b, err := blockOption(m, OptionBlock2)
	if err != nil {
		return DescribeRequest{}, err
	}
	return DescribeRequest{Flags: f, Block2: b}, nil
}

// DescribeBody is the payload of a describe post or response with its
// transfer options. Parsed bodies own their Payload and ETag.
type DescribeBody struct {
	// Flags is set for posts (from the Uri-Query); responses carry none.
	Flags DescribeFlags
	// ContentFormat is meaningful when HasContentFormat (42 = protobuf
	// system describe on Device OS 6.x).
	ContentFormat    ContentFormat
	HasContentFormat bool
	// Block is Block1 on posts and Block2 on responses, nil when unblocked.
	Block *Block
	// ETag identifies the description across Block2 blocks (responses only).
	ETag    []byte
	Payload []byte
}

// NewDescribePost returns the device-initiated CON POST d ?flags carrying
// body (docs/particle-protocol.md#describe). Each block of a Block1 transfer
// has its own token.
func NewDescribePost(id uint16, token byte, body DescribeBody) (Message, error) {
	m := request(Confirmable, CodePOST, id, token1(token), PathDescribe)
	if body.HasContentFormat {
		m.AddUintOption(OptionContentFormat, uint32(body.ContentFormat))
	}
	m.AddOption(OptionURIQuery, []byte{byte(body.Flags)})
	if err := addBlock(&m, OptionBlock1, body.Block); err != nil {
		return Message{}, err
	}
	m.Payload = body.Payload
	return m, nil
}

// ParseDescribePost decodes a device-initiated POST d.
func ParseDescribePost(m *Message) (DescribeBody, error) {
	if err := expectKind(m, KindDescribePost); err != nil {
		return DescribeBody{}, err
	}
	f, err := describeFlags(m)
	if err != nil {
		return DescribeBody{}, err
	}
	b, err := parseDescribeBody(m, OptionBlock1)
	b.Flags = f
	return b, err
}

// NewDescribeResponse returns the device's answer to GET d: a separate
// response (2.05, the request's token) of type typ carrying body. Device OS
// sends it CON even over TCP, so the receiver must ACK it.
func NewDescribeResponse(typ Type, id uint16, token byte, body DescribeBody) (Message, error) {
	m := NewResponse(typ, id, token, CodeContent, body.Payload)
	if len(body.ETag) > 0 {
		m.AddOption(OptionETag, body.ETag)
	}
	if body.HasContentFormat {
		m.AddUintOption(OptionContentFormat, uint32(body.ContentFormat))
	}
	if err := addBlock(&m, OptionBlock2, body.Block); err != nil {
		return Message{}, err
	}
	return m, nil
}

// ParseDescribeResponse decodes a describe answer: any 2.0x response (piggy-
// backed or separate) to a GET d, matched by the caller through its token.
func ParseDescribeResponse(m *Message) (DescribeBody, error) {
	if !m.Code.IsSuccess() {
		return DescribeBody{}, fmt.Errorf("%w: describe answered %s", ErrWrongKind, m.Code)
	}
	return parseDescribeBody(m, OptionBlock2)
}

func parseDescribeBody(m *Message, blockOpt OptionNumber) (DescribeBody, error) {
	var b DescribeBody
	cf, ok, err := m.UintOption(OptionContentFormat)
	if err != nil || cf > 0xFFFF {
		return b, fmt.Errorf("protocol: describe content format: %w", ErrOptionFormat)
	}
	b.ContentFormat, b.HasContentFormat = ContentFormat(cf), ok
	if b.Block, err = blockOption(m, blockOpt); err != nil {
		return b, err
	}
	if etag, ok := m.Option(OptionETag); ok {
		b.ETag = append([]byte(nil), etag...)
	}
	b.Payload = append([]byte(nil), m.Payload...)
	return b, nil
}

func addBlock(m *Message, n OptionNumber, b *Block) error {
	if b == nil {
		return nil
	}
	v, err := b.Value()
	if err != nil {
		return err
	}
	m.AddOption(n, v)
	return nil
}
