package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// OTA v1 (docs/particle-protocol.md#ota-updates; from source, not
// wire-verified). spark-protocol's Flasher.js is the reference:
//
//	S→D UpdateBegin  CON POST u, payload (optional, 12 bytes):
//	                 | flags(1) | chunkSize(2) | fileSize(4) | destination(1) | destAddr(4) |
//	                 flags bit0 = fast OTA
//	D→S UpdateReady  2.04 (payload 1 byte when fast OTA is accepted) or 5.03 when refused
//	S→D Chunk        CON POST c ?crc32(4, BE) [?chunkIndex(2, BE) in fast OTA], payload = chunk
//	D→S ChunkMissed  CON GET c, payload = u16 BE chunk indexes
//	S→D UpdateDone   CON PUT u; the device later sends PUT u with its result
//
// OTA v3 (POST S / C / F) is only classified (Classify), not encoded.
const updateBeginLen = 12

// UpdateBegin is the optional UpdateBegin payload.
type UpdateBegin struct {
	Fast        bool
	ChunkSize   uint16
	FileSize    uint32
	Destination uint8 // 0 firmware, 1 external flash, 2 user memory
	DestAddr    uint32
}

// ErrOTAPayload means a malformed OTA v1 payload or option.
var ErrOTAPayload = errors.New("protocol: malformed ota payload")

// NewUpdateBegin returns CON POST u with a 1-byte token and the 12-byte payload.
func NewUpdateBegin(id uint16, token byte, u UpdateBegin) Message {
	m := request(Confirmable, CodePOST, id, token1(token), PathUpdate)
	p := make([]byte, 0, updateBeginLen)
	flags := byte(0)
	if u.Fast {
		flags = 1
	}
	p = append(p, flags)
	p = binary.BigEndian.AppendUint16(p, u.ChunkSize)
	p = binary.BigEndian.AppendUint32(p, u.FileSize)
	p = append(p, u.Destination)
	m.Payload = binary.BigEndian.AppendUint32(p, u.DestAddr)
	return m
}

// ParseUpdateBegin decodes POST u; ok is false for the payload-less form.
func ParseUpdateBegin(m *Message) (u UpdateBegin, ok bool, err error) {
	if err := expectKind(m, KindUpdateBegin); err != nil {
		return u, false, err
	}
	p := m.Payload
	if len(p) == 0 {
		return u, false, nil
	}
	if len(p) < updateBeginLen {
		return u, false, fmt.Errorf("%w: update begin of %d bytes", ErrOTAPayload, len(p))
	}
	return UpdateBegin{
		Fast:        p[0]&1 != 0,
		ChunkSize:   binary.BigEndian.Uint16(p[1:]),
		FileSize:    binary.BigEndian.Uint32(p[3:]),
		Destination: p[7],
		DestAddr:    binary.BigEndian.Uint32(p[8:]),
	}, true, nil
}

// Chunk is one OTA v1 chunk.
type Chunk struct {
	CRC32 uint32
	// Index is sent only in fast OTA (HasIndex).
	Index    uint16
	HasIndex bool
	Data     []byte
}

// NewChunk returns CON POST c ?crc [?index] with a 1-byte token.
func NewChunk(id uint16, token byte, c Chunk) Message {
	m := request(Confirmable, CodePOST, id, token1(token), PathChunk)
	m.AddOption(OptionURIQuery, binary.BigEndian.AppendUint32(nil, c.CRC32))
	if c.HasIndex {
		m.AddOption(OptionURIQuery, binary.BigEndian.AppendUint16(nil, c.Index))
	}
	m.Payload = c.Data
	return m
}

// ParseChunk decodes POST c; the data is copied.
func ParseChunk(m *Message) (Chunk, error) {
	var c Chunk
	if err := expectKind(m, KindChunk); err != nil {
		return c, err
	}
	n := 0
	for _, o := range m.Options {
		if o.Number != OptionURIQuery {
			continue
		}
		switch n {
		case 0:
			if len(o.Value) != 4 {
				return c, fmt.Errorf("%w: crc of %d bytes", ErrOTAPayload, len(o.Value))
			}
			c.CRC32 = binary.BigEndian.Uint32(o.Value)
		case 1:
			if len(o.Value) != 2 {
				return c, fmt.Errorf("%w: chunk index of %d bytes", ErrOTAPayload, len(o.Value))
			}
			c.Index, c.HasIndex = binary.BigEndian.Uint16(o.Value), true
		}
		n++
	}
	if n == 0 {
		return c, fmt.Errorf("%w: chunk without crc", ErrOTAPayload)
	}
	c.Data = append([]byte(nil), m.Payload...)
	return c, nil
}

// NewChunkMissed returns the device's CON GET c listing missed chunk indexes.
func NewChunkMissed(id uint16, indexes ...uint16) Message {
	m := request(Confirmable, CodeGET, id, nil, PathChunk)
	p := make([]byte, 0, 2*len(indexes))
	for _, i := range indexes {
		p = binary.BigEndian.AppendUint16(p, i)
	}
	m.Payload = p
	return m
}

// ParseChunkMissed returns the missed chunk indexes of GET c.
func ParseChunkMissed(m *Message) ([]uint16, error) {
	if err := expectKind(m, KindChunkMissed); err != nil {
		return nil, err
	}
	if len(m.Payload)%2 != 0 {
		return nil, fmt.Errorf("%w: odd chunk-missed payload", ErrOTAPayload)
	}
	out := make([]uint16, 0, len(m.Payload)/2)
	for p := m.Payload; len(p) >= 2; p = p[2:] {
		out = append(out, binary.BigEndian.Uint16(p))
	}
	return out, nil
}

// NewUpdateDone returns CON PUT u with a 1-byte token (server side).
func NewUpdateDone(id uint16, token byte) Message {
	return request(Confirmable, CodePUT, id, token1(token), PathUpdate)
}
