package dtls

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HandshakeType is the msg_type byte of a DTLS 1.2 handshake message.
type HandshakeType uint8

// The handshake message types Wick's Gen 3 handshake uses (docs/dtls.md,
// Handshake messages).
const (
	HandshakeHelloRequest       HandshakeType = 0
	HandshakeClientHello        HandshakeType = 1
	HandshakeServerHello        HandshakeType = 2
	HandshakeHelloVerifyRequest HandshakeType = 3
	HandshakeCertificate        HandshakeType = 11
	HandshakeServerKeyExchange  HandshakeType = 12
	HandshakeCertificateRequest HandshakeType = 13
	HandshakeServerHelloDone    HandshakeType = 14
	HandshakeCertificateVerify  HandshakeType = 15
	HandshakeClientKeyExchange  HandshakeType = 16
	HandshakeFinished           HandshakeType = 20
)

// HandshakeHeaderLen is the size of a DTLS handshake header in bytes.
const HandshakeHeaderLen = 12

// maxUint24 is the largest value a 24-bit length field holds.
const maxUint24 = 1<<24 - 1

// ErrHandshakeShort reports a handshake header or body cut short.
var ErrHandshakeShort = errors.New("dtls: handshake message truncated")

// HandshakeHeader is the 12-byte header in front of every DTLS handshake
// fragment (RFC 6347 §4.2.2).
type HandshakeHeader struct {
	Type           HandshakeType // msg_type
	Length         uint32        // length of the whole message body (24 bits)
	MessageSeq     uint16        // message_seq
	FragmentOffset uint32        // fragment_offset (24 bits)
	FragmentLength uint32        // fragment_length (24 bits)
}

// AppendHandshakeHeader appends h in wire form to dst.
func AppendHandshakeHeader(dst []byte, h HandshakeHeader) []byte {
	dst = append(dst, byte(h.Type))
	dst = appendUint24(dst, h.Length)
	dst = binary.BigEndian.AppendUint16(dst, h.MessageSeq)
	dst = appendUint24(dst, h.FragmentOffset)
	return appendUint24(dst, h.FragmentLength)
}

// ParseHandshakeFragment reads one handshake fragment from the start of b (the
// payload of a handshake record may hold several) and returns its header, its
// fragment bytes (aliasing b) and the bytes after it.
func ParseHandshakeFragment(b []byte) (h HandshakeHeader, frag, rest []byte, err error) {
	if len(b) < HandshakeHeaderLen {
		return h, nil, nil, ErrHandshakeShort
	}
	h = HandshakeHeader{
		Type:           HandshakeType(b[0]),
		Length:         uint24(b[1:]),
		MessageSeq:     binary.BigEndian.Uint16(b[4:]),
		FragmentOffset: uint24(b[6:]),
		FragmentLength: uint24(b[9:]),
	}
	if uint64(h.FragmentOffset)+uint64(h.FragmentLength) > uint64(h.Length) {
		return h, nil, nil, fmt.Errorf("dtls: handshake fragment %d+%d exceeds message length %d",
			h.FragmentOffset, h.FragmentLength, h.Length)
	}
	b = b[HandshakeHeaderLen:]
	if uint32(len(b)) < h.FragmentLength {
		return h, nil, nil, ErrHandshakeShort
	}
	return h, b[:h.FragmentLength], b[h.FragmentLength:], nil
}

// AppendHandshake appends body as one unfragmented handshake message of type
// t with sequence number seq.
func AppendHandshake(dst []byte, t HandshakeType, seq uint16, body []byte) []byte {
	n := uint32(len(body))
	dst = AppendHandshakeHeader(dst, HandshakeHeader{Type: t, Length: n, MessageSeq: seq, FragmentLength: n})
	return append(dst, body...)
}

// beginHandshake appends the header of an unfragmented handshake message
// of type t and sequence number seq whose lengths endHandshake fills in
// once the body has been appended after it; start is where it begins.
func beginHandshake(dst []byte, t HandshakeType, seq uint16) (out []byte, start int) {
	return AppendHandshakeHeader(dst, HandshakeHeader{Type: t, MessageSeq: seq}), len(dst)
}

// endHandshake fills in the lengths of the message begun at start and
// returns the whole message (header and body).
func endHandshake(b []byte, start int) []byte {
	n := uint32(len(b) - start - HandshakeHeaderLen)
	hdr := b[start:]
	hdr[1], hdr[2], hdr[3] = byte(n>>16), byte(n>>8), byte(n)
	hdr[9], hdr[10], hdr[11] = byte(n>>16), byte(n>>8), byte(n)
	return b[start:]
}

// FragmentHandshake splits body into handshake fragments (header included) of
// at most maxFragment body bytes each; the bytes of the returned fragments
// are freshly allocated.
func FragmentHandshake(t HandshakeType, seq uint16, body []byte, maxFragment int) ([][]byte, error) {
	if maxFragment < 1 {
		return nil, fmt.Errorf("dtls: fragment size %d too small", maxFragment)
	}
	if len(body) > maxUint24 {
		return nil, fmt.Errorf("dtls: handshake body of %d bytes too long", len(body))
	}
	var out [][]byte
	for off := 0; off < len(body) || off == 0; off += maxFragment {
		end := min(off+maxFragment, len(body))
		h := HandshakeHeader{Type: t, Length: uint32(len(body)), MessageSeq: seq,
			FragmentOffset: uint32(off), FragmentLength: uint32(end - off)}
		out = append(out, append(AppendHandshakeHeader(make([]byte, 0, HandshakeHeaderLen+end-off), h), body[off:end]...))
		if end == len(body) {
			break
		}
	}
	return out, nil
}

// Reassembler limits used when the corresponding field is zero.
const (
	DefaultMaxMessageLen = 4096 // largest handshake body accepted
	DefaultMaxFragments  = 64   // fragments accepted per message
	DefaultMaxAhead      = 8    // messages buffered beyond the next expected one
)

// HandshakeMessage is one complete, reassembled handshake message.
type HandshakeMessage struct {
	Type HandshakeType
	Seq  uint16
	Body []byte
}

// Raw returns the message as one unfragmented handshake message, the form
// that enters the handshake transcript (RFC 6347 §4.2.6).
func (m HandshakeMessage) Raw() []byte {
	return AppendHandshake(make([]byte, 0, HandshakeHeaderLen+len(m.Body)), m.Type, m.Seq, m.Body)
}

// Reassembler collects handshake fragments and hands out complete messages
// in message_seq order. Its memory is bounded: at most MaxAhead+1 messages of
// at most MaxMessageLen bytes are held. Fragments of messages already handed
// out (retransmissions) are ignored; fragments too far ahead are refused.
// It is not safe for concurrent use.
type Reassembler struct {
	MaxMessageLen int // 0 means DefaultMaxMessageLen
	MaxFragments  int // 0 means DefaultMaxFragments
	MaxAhead      int // 0 means DefaultMaxAhead

	next    uint16 // message_seq expected next
	pending map[uint16]*partial
}

// partial is one message under reassembly.
type partial struct {
	typ       HandshakeType
	body      []byte
	have      []uint64 // bit i set: byte i received
	missing   int
	fragments int
}

// NewReassembler returns a reassembler expecting message_seq next first.
func NewReassembler(next uint16) *Reassembler {
	return &Reassembler{next: next}
}

// NextSeq returns the message_seq the reassembler expects next.
func (r *Reassembler) NextSeq() uint16 { return r.next }

// Add feeds one fragment. It returns an error, and keeps no part of the
// fragment, when the fragment contradicts what is held (another type or
// length for the same message_seq, overlapping bytes that differ), is too
// long, too far ahead, or one too many for its message.
func (r *Reassembler) Add(h HandshakeHeader, frag []byte) error {
	if uint32(len(frag)) != h.FragmentLength || uint64(h.FragmentOffset)+uint64(h.FragmentLength) > uint64(h.Length) {
		return fmt.Errorf("dtls: inconsistent handshake fragment header")
	}
	ahead := h.MessageSeq - r.next // wraps for old messages
	if ahead >= 0x8000 {
		return nil // retransmission of a message already handed out
	}
	if int(ahead) > r.maxAhead() {
		return fmt.Errorf("dtls: handshake message_seq %d too far ahead of %d", h.MessageSeq, r.next)
	}
	if int64(h.Length) > int64(r.maxLen()) {
		return fmt.Errorf("dtls: handshake message of %d bytes exceeds limit %d", h.Length, r.maxLen())
	}
	if r.pending == nil {
		r.pending = make(map[uint16]*partial)
	}
	p := r.pending[h.MessageSeq]
	if p == nil {
		p = &partial{typ: h.Type, body: make([]byte, h.Length), have: make([]uint64, (h.Length+63)/64), missing: int(h.Length)}
		r.pending[h.MessageSeq] = p
	} else if p.typ != h.Type || uint32(len(p.body)) != h.Length {
		return fmt.Errorf("dtls: handshake message_seq %d changed type or length", h.MessageSeq)
	}
	if p.missing == 0 {
		return nil // complete already; a retransmitted copy
	}
	if p.fragments >= r.maxFragments() {
		return fmt.Errorf("dtls: handshake message_seq %d: more than %d fragments", h.MessageSeq, r.maxFragments())
	}
	off := int(h.FragmentOffset)
	for i, c := range frag {
		if p.has(off+i) && p.body[off+i] != c {
			return fmt.Errorf("dtls: handshake message_seq %d: overlapping fragments disagree", h.MessageSeq)
		}
	}
	p.fragments++
	for i, c := range frag {
		if !p.has(off + i) {
			p.have[(off+i)/64] |= 1 << ((off + i) % 64)
			p.body[off+i] = c
			p.missing--
		}
	}
	return nil
}

// holds reports whether fragments of message seq are held.
func (r *Reassembler) holds(seq uint16) bool { return r.pending[seq] != nil }

// Next returns the next complete message in message_seq order, if any.
func (r *Reassembler) Next() (HandshakeMessage, bool) {
	p := r.pending[r.next]
	if p == nil || p.missing != 0 {
		return HandshakeMessage{}, false
	}
	delete(r.pending, r.next)
	m := HandshakeMessage{Type: p.typ, Seq: r.next, Body: p.body}
	r.next++
	return m, true
}

// has reports whether byte i of the message has arrived.
func (p *partial) has(i int) bool { return p.have[i/64]&(1<<(i%64)) != 0 }

func (r *Reassembler) maxLen() int {
	if r.MaxMessageLen > 0 {
		return min(r.MaxMessageLen, maxUint24)
	}
	return DefaultMaxMessageLen
}

func (r *Reassembler) maxFragments() int {
	if r.MaxFragments > 0 {
		return r.MaxFragments
	}
	return DefaultMaxFragments
}

func (r *Reassembler) maxAhead() int {
	if r.MaxAhead > 0 {
		return min(r.MaxAhead, 0x7fff)
	}
	return DefaultMaxAhead
}

func uint24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

func appendUint24(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}
