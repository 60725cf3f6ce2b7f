package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// OTA v1 (docs/particle-protocol.md#ota-updates; the answers below are
// those of Device OS's chunked transfer, read from its source, not
// wire-verified). spark-protocol's Flasher.js is the other reference:
//
//	S→D UpdateBegin  CON POST u, 1-byte token, payload (optional, 12 bytes):
//	                 | flags(1) | chunkSize(2) | fileSize(4) | destination(1) | destAddr(4) |
//	                 flags bit0 = fast OTA. The device parses it at fixed
//	                 offsets: exactly one token byte and the one Uri-Path.
//	D→S              empty ACK, then UpdateReady: separate 2.04 with the token
//	                 and 1 byte (fast OTA accepted); or a piggy-backed ACK 5.03
//	                 when the device refuses
//	S→D Chunk        CON POST c ?crc32(4, BE) [?chunkIndex(2, BE) in fast OTA],
//	                 1-byte token, payload = chunk (the last padded). Fast OTA:
//	                 no answer. Otherwise empty ACK, then a separate 2.04
//	                 (ChunkReceived) or 4.00 (bad CRC) with the token
//	S→D UpdateDone   CON PUT u, 1-byte token
//	D→S              piggy-backed ACK 2.04 (complete; the payload may carry
//	                 validation text; the device then reboots) or 4.00
//	                 (chunks missing), followed by ChunkMissed: GET c (NON over
//	                 TCP, CON over UDP, no token), payload = up to 40 u16 BE
//	                 indexes; the server resends them and sends UpdateDone again
//
// After the reboot the device's Hello carries HelloOTASucceeded. OTA v3
// (POST S / C / F) is only classified (Classify), not encoded.
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

// OTA v1 limits of Device OS (communication/inc/protocol_defs.h).
const (
	// DefaultOTAChunkSize is the chunk size a server uses when the Hello
	// announces none.
	DefaultOTAChunkSize = 512
	// MaxOTAChunks is one more than the highest chunk index a device takes
	// (indexes are 16 bits; 0xFFFF means "none missing" on the device).
	MaxOTAChunks = 0xFFFF
	// MaxChunksMissed is the most indexes a device lists in one ChunkMissed
	// (40; 20 on the Argon and A SoM).
	MaxChunksMissed = 40
)

// NewUpdateReady returns the device's UpdateReady: a separate 2.04 with
// the UpdateBegin's token and one byte, 1 when the device accepts fast OTA
// (NON over TCP, CON over UDP). A device refuses an update instead with a
// piggy-backed ACK 5.03 to the UpdateBegin.
func NewUpdateReady(typ Type, id uint16, token byte, fast bool) Message {
	b := byte(0)
	if fast {
		b = 1
	}
	return NewResponse(typ, id, token, CodeChanged, []byte{b})
}

// ParseUpdateReady reports whether an UpdateReady (any 2.xx response)
// accepts fast OTA. A response without payload, as old firmware sends,
// does not.
func ParseUpdateReady(m *Message) (fast bool, err error) {
	if !m.Code.IsSuccess() {
		return false, fmt.Errorf("%w: update ready with code %s", ErrOTAPayload, m.Code)
	}
	return len(m.Payload) > 0 && m.Payload[0]&1 != 0, nil
}

// NewChunkReceived returns the device's answer to a chunk outside fast
// OTA: a separate 2.04 (CRC good) or 4.00 (bad) with the chunk's token.
func NewChunkReceived(typ Type, id uint16, token byte, ok bool) Message {
	code := CodeChanged
	if !ok {
		code = CodeBadRequest
	}
	return NewResponse(typ, id, token, code, nil)
}

// ChunkCount returns the number of chunks of size chunkSize that carry
// fileSize bytes (0 for a chunk size of 0).
func ChunkCount(fileSize, chunkSize int) int {
	if chunkSize <= 0 {
		return 0
	}
	return (fileSize + chunkSize - 1) / chunkSize
}

// AppendChunkData appends chunk index of bin, cut in chunks of chunkSize,
// to dst; the last chunk is padded with zeros to the full chunk size, as
// spark-protocol sends it (the device writes whole chunks). It appends
// nothing for an index past the end.
func AppendChunkData(dst, bin []byte, chunkSize, index int) []byte {
	start := index * chunkSize
	if chunkSize <= 0 || index < 0 || start >= len(bin) {
		return dst
	}
	end := min(start+chunkSize, len(bin))
	dst = append(dst, bin[start:end]...)
	for range chunkSize - (end - start) {
		dst = append(dst, 0)
	}
	return dst
}

// ChunkCRC returns the CRC-32 (IEEE) of a chunk, as the Chunk's first
// Uri-Query carries it.
func ChunkCRC(data []byte) uint32 { return crc32.ChecksumIEEE(data) }

// NewUpdateResult returns the device's own PUT u carrying the result of
// an update (text from the firmware's validation, possibly empty), which
// some firmware sends after UpdateDone instead of a piggy-backed result.
func NewUpdateResult(typ Type, id uint16, result []byte) Message {
	m := request(typ, CodePUT, id, nil, PathUpdate)
	m.Payload = result
	return m
}
