package protocol

import (
	"encoding/binary"
	"fmt"
)

// OTA v3 (Hello flag 0x80; docs/particle-protocol.md#ota-updates), as
// Device OS's firmware_update.cpp implements it (read from source, not
// wire-verified). Device OS builds it instead of v1 on Gen 3 platforms:
//
//	S→D UpdateStart   CON POST S, 1-byte token, options FileSize, ChunkSize
//	                  (512 or more, a multiple of 4), FileSHA256 (32 bytes:
//	                  makes the transfer resumable), [DiscardData], [ModuleFunction]
//	D→S               empty ACK, then a separate 2.01 (CON, the token) with
//	                  WindowSize (chunks) and FileSize = the offset it already
//	                  holds of that file (resumption); or an error code
//	S→D UpdateChunk   NON POST C, no token, ChunkIndex (1-based, counted from
//	                  the offset), payload = the chunk (the last one short)
//	D→S UpdateAck     NON POST A, ChunkIndex = chunks received in order,
//	                  payload = bitmap (little-endian uint32 words) of the
//	                  chunks received after it: bit i is chunk index+1+i
//	S→D UpdateFinish  CON POST F, token, [CancelUpdate], [DiscardData]
//	D→S               empty ACK, then a separate 2.04 (CON, JSON stats); the
//	                  device applies the update once the server ACKs it
const (
	OptionChunkIndex     OptionNumber = 2049
	OptionWindowSize     OptionNumber = 2053
	OptionFileSize       OptionNumber = 2057
	OptionFileSHA256     OptionNumber = 2061
	OptionChunkSize      OptionNumber = 2065
	OptionDiscardData    OptionNumber = 2069
	OptionCancelUpdate   OptionNumber = 2073
	OptionModuleFunction OptionNumber = 2077
)

// PathUpdateAck is the path letter of the device's UpdateAck (OTA v3).
const PathUpdateAck = 'A'

// Limits of OTA v3 in Device OS.
const (
	// MinOTAv3ChunkSize is the smallest chunk Device OS takes.
	MinOTAv3ChunkSize = 512
	// OTAv3ReceiveWindow is the bytes a device holds beyond its last
	// in-order chunk; its window in chunks is this over the chunk size.
	OTAv3ReceiveWindow = 128 * 1024
)

// UpdateStart is the server's OTA v3 UpdateStart.
type UpdateStart struct {
	FileSize  uint32
	ChunkSize uint32
	// SHA256 is the file's hash, 32 bytes; nil makes the update
	// non-resumable.
	SHA256      []byte
	DiscardData bool
}

// NewUpdateStart returns CON POST S with a 1-byte token.
func NewUpdateStart(id uint16, token byte, u UpdateStart) Message {
	m := request(Confirmable, CodePOST, id, token1(token), PathUpdateStart)
	m.AddUintOption(OptionFileSize, u.FileSize)
	if len(u.SHA256) > 0 {
		m.AddOption(OptionFileSHA256, u.SHA256)
	}
	m.AddUintOption(OptionChunkSize, u.ChunkSize)
	if u.DiscardData {
		m.AddOption(OptionDiscardData, nil)
	}
	return m
}

// ParseUpdateStart decodes POST S (device side) and checks it as Device OS
// does: a file size, a chunk size of at least 512 and a multiple of 4, a
// 32-byte hash when present.
func ParseUpdateStart(m *Message) (UpdateStart, error) {
	var u UpdateStart
	if err := expectKind(m, KindUpdateStart); err != nil {
		return u, err
	}
	fs, okFS, err1 := m.UintOption(OptionFileSize)
	cs, okCS, err2 := m.UintOption(OptionChunkSize)
	switch {
	case err1 != nil || err2 != nil || !okFS || !okCS || fs == 0:
		return u, fmt.Errorf("%w: update start without file or chunk size", ErrOTAPayload)
	case cs < MinOTAv3ChunkSize || cs%4 != 0:
		return u, fmt.Errorf("%w: chunk size %d", ErrOTAPayload, cs)
	}
	u.FileSize, u.ChunkSize = fs, cs
	if h, ok := m.Option(OptionFileSHA256); ok {
		if len(h) != 32 {
			return u, fmt.Errorf("%w: file hash of %d bytes", ErrOTAPayload, len(h))
		}
		u.SHA256 = append([]byte(nil), h...)
	}
	_, u.DiscardData = m.Option(OptionDiscardData)
	return u, nil
}

// UpdateStarted is the device's 2.01 answer to UpdateStart.
type UpdateStarted struct {
	// Window is the number of chunks the device takes beyond the last one
	// received in order.
	Window uint32
	// Offset is the bytes of this file the device already holds (from an
	// interrupted transfer); chunk 1 starts there.
	Offset uint32
}

// NewUpdateStarted returns the device's separate 2.01 with the token.
func NewUpdateStarted(typ Type, id uint16, token byte, s UpdateStarted) Message {
	m := NewResponse(typ, id, token, CodeCreated, nil)
	m.AddUintOption(OptionWindowSize, s.Window)
	m.AddUintOption(OptionFileSize, s.Offset)
	return m
}

// ParseUpdateStarted decodes the device's 2.01; a missing window is 1.
func ParseUpdateStarted(m *Message) (UpdateStarted, error) {
	var s UpdateStarted
	if m.Code != CodeCreated {
		return s, fmt.Errorf("%w: update start answered %s", ErrOTAPayload, m.Code)
	}
	w, ok, err := m.UintOption(OptionWindowSize)
	if err != nil {
		return s, fmt.Errorf("%w: window size: %w", ErrOTAPayload, err)
	}
	if !ok || w == 0 {
		w = 1
	}
	off, _, err := m.UintOption(OptionFileSize)
	if err != nil {
		return s, fmt.Errorf("%w: offset: %w", ErrOTAPayload, err)
	}
	return UpdateStarted{Window: w, Offset: off}, nil
}

// NewUpdateChunk returns NON POST C (no token) carrying chunk index.
func NewUpdateChunk(id uint16, index uint32, data []byte) Message {
	m := request(NonConfirmable, CodePOST, id, nil, PathUpdateChunk)
	m.AddUintOption(OptionChunkIndex, index)
	m.Payload = data
	return m
}

// ParseUpdateChunk decodes POST C; data aliases m's payload.
func ParseUpdateChunk(m *Message) (index uint32, data []byte, err error) {
	if err := expectKind(m, KindUpdateChunk); err != nil {
		return 0, nil, err
	}
	idx, ok, err := m.UintOption(OptionChunkIndex)
	if err != nil || !ok || idx == 0 || len(m.Payload) == 0 {
		return 0, nil, fmt.Errorf("%w: update chunk without index or data", ErrOTAPayload)
	}
	return idx, m.Payload, nil
}

// UpdateAck is the device's OTA v3 acknowledgement of chunks.
type UpdateAck struct {
	// Index is the number of chunks received in order (all of 1..Index).
	Index uint32
	// Received lists, after Index, which chunks arrived: Received[i] is
	// chunk Index+1+i.
	Received []bool
}

// Has reports whether the acknowledgement covers chunk i (1-based).
func (a *UpdateAck) Has(i uint32) bool {
	if i <= a.Index {
		return true
	}
	k := i - a.Index - 1
	return k < uint32(len(a.Received)) && a.Received[k]
}

// NewUpdateAck returns NON POST A with the index and the bitmap in
// little-endian 32-bit words, trimmed after the last word with a bit set.
func NewUpdateAck(id uint16, a UpdateAck) Message {
	m := request(NonConfirmable, CodePOST, id, nil, PathUpdateAck)
	m.AddUintOption(OptionChunkIndex, a.Index)
	words := make([]uint32, (len(a.Received)+31)/32)
	for i, r := range a.Received {
		if r {
			words[i/32] |= 1 << (i % 32)
		}
	}
	for len(words) > 0 && words[len(words)-1] == 0 {
		words = words[:len(words)-1]
	}
	for _, w := range words {
		m.Payload = binary.LittleEndian.AppendUint32(m.Payload, w)
	}
	return m
}

// IsUpdateAck reports whether m is the device's UpdateAck (POST A).
func IsUpdateAck(m *Message) bool {
	return m.Code == CodePOST && m.PathKind() == PathUpdateAck
}

// ParseUpdateAck decodes POST A.
func ParseUpdateAck(m *Message) (UpdateAck, error) {
	var a UpdateAck
	if !IsUpdateAck(m) {
		return a, fmt.Errorf("%w: not an update ack", ErrWrongKind)
	}
	idx, ok, err := m.UintOption(OptionChunkIndex)
	if err != nil || !ok {
		return a, fmt.Errorf("%w: update ack without chunk index", ErrOTAPayload)
	}
	if len(m.Payload)%4 != 0 {
		return a, fmt.Errorf("%w: update ack bitmap of %d bytes", ErrOTAPayload, len(m.Payload))
	}
	a.Index = idx
	a.Received = make([]bool, 0, len(m.Payload)*8)
	for p := m.Payload; len(p) >= 4; p = p[4:] {
		w := binary.LittleEndian.Uint32(p)
		for b := range 32 {
			a.Received = append(a.Received, w&(1<<b) != 0)
		}
	}
	for len(a.Received) > 0 && !a.Received[len(a.Received)-1] {
		a.Received = a.Received[:len(a.Received)-1]
	}
	return a, nil
}

// NewUpdateFinish returns CON POST F with a 1-byte token; cancel abandons
// the update (discard also drops the data kept for resumption).
func NewUpdateFinish(id uint16, token byte, cancel, discard bool) Message {
	m := request(Confirmable, CodePOST, id, token1(token), PathUpdateFinish)
	if discard {
		m.AddOption(OptionDiscardData, nil)
	}
	if cancel {
		m.AddOption(OptionCancelUpdate, nil)
	}
	return m
}

// ParseUpdateFinish decodes POST F.
func ParseUpdateFinish(m *Message) (cancel, discard bool, err error) {
	if err := expectKind(m, KindUpdateFinish); err != nil {
		return false, false, err
	}
	_, cancel = m.Option(OptionCancelUpdate)
	_, discard = m.Option(OptionDiscardData)
	return cancel, discard, nil
}
