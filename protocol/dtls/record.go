package dtls

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ContentType is the first byte of a DTLS record (docs/dtls.md, Record layout).
type ContentType uint8

// The record content types this profile uses.
const (
	// TypeChangeCipherSpec marks the switch to the negotiated keys.
	TypeChangeCipherSpec ContentType = 20
	// TypeAlert carries an alert.
	TypeAlert ContentType = 21
	// TypeHandshake carries handshake messages.
	TypeHandshake ContentType = 22
	// TypeApplicationData carries CoAP messages.
	TypeApplicationData ContentType = 23
	// TypeCID marks an encrypted record that carries a connection ID (the draft's tls12_cid).
	TypeCID ContentType = 25
	// TypeMoveSession is Particle's marker for a CID record sent on a resumed
	// session; it is treated exactly like TypeCID (docs/dtls.md, Record layout).
	TypeMoveSession ContentType = 253
)

// Version is the DTLS 1.2 version field, 0xfefd.
const Version uint16 = 0xfefd

// Sizes of the record layer.
const (
	// HeaderLen is the length of a record header without a connection ID.
	HeaderLen = 13
	// CIDLen is the length of the connection ID this profile uses.
	CIDLen = 8
	// CIDHeaderLen is the length of a record header with a connection ID.
	CIDHeaderLen = HeaderLen + CIDLen
	// MaxSeq is the largest 48-bit record sequence number.
	MaxSeq = 1<<48 - 1
	// MaxFragmentLen is the largest record body this package accepts: 2^14
	// bytes of content plus the 2048 bytes of expansion TLS 1.2 allows.
	MaxFragmentLen = 1<<14 + 2048
)

// Errors returned by the record layer.
var (
	// ErrShortRecord means the input ends inside a record header or body.
	ErrShortRecord = errors.New("dtls: record truncated")
	// ErrBadVersion means the record's version is neither DTLS 1.2 nor DTLS 1.0.
	ErrBadVersion = errors.New("dtls: record version is not DTLS 1.2 or 1.0")
	// ErrRecordTooLarge means a record's length exceeds MaxFragmentLen.
	ErrRecordTooLarge = errors.New("dtls: record too large")
	// ErrSeqOverflow means a sequence number does not fit in 48 bits.
	ErrSeqOverflow = errors.New("dtls: sequence number exceeds 48 bits")
	// ErrBadCID means a connection ID is not CIDLen bytes long.
	ErrBadCID = errors.New("dtls: connection ID must be 8 bytes")
	// ErrBadContentType means a content type cannot be sealed: 0 (it would
	// read back as padding) or a CID record type.
	ErrBadContentType = errors.New("dtls: content type cannot be sealed")
	// ErrNoContentType means a CID record's inner plaintext is all zeros.
	ErrNoContentType = errors.New("dtls: inner plaintext has no content type")
)

// Header is a parsed DTLS 1.2 record header.
type Header struct {
	// Type is the content type on the wire (TypeCID or TypeMoveSession for CID records).
	Type ContentType
	// Version is the record version: Version, or VersionDTLS10 on the
	// first ClientHello (mbedTLS sends that, as RFC 6347 allows).
	Version uint16
	// Epoch is the record's epoch (0 before ChangeCipherSpec).
	Epoch uint16
	// Seq is the 48-bit record sequence number.
	Seq uint64
	// CID is the connection ID for CID records and nil otherwise.
	CID []byte
	// Length is the length of the record body that follows the header.
	Length uint16
}

// HasCID reports whether the type marks a record that carries a connection ID.
func (t ContentType) HasCID() bool { return t == TypeCID || t == TypeMoveSession }

// String returns the content type's name.
func (t ContentType) String() string {
	switch t {
	case TypeChangeCipherSpec:
		return "change_cipher_spec"
	case TypeAlert:
		return "alert"
	case TypeHandshake:
		return "handshake"
	case TypeApplicationData:
		return "application_data"
	case TypeCID:
		return "tls12_cid"
	case TypeMoveSession:
		return "move_session"
	}
	return fmt.Sprintf("content_type(%d)", uint8(t))
}

// Len returns the encoded length of the header.
func (h *Header) Len() int {
	if h.Type.HasCID() {
		return CIDHeaderLen
	}
	return HeaderLen
}

// Record is one record split off a datagram: its header and its body.
type Record struct {
	// Header is the parsed header.
	Header Header
	// Body is the record body (ciphertext for protected records); it aliases the input.
	Body []byte
	// Raw is the whole record, header included; it aliases the input.
	Raw []byte
}

// ParseRecord splits the first record off b and returns it with the bytes
// that follow it (a datagram may hold several records). The returned slices
// alias b. Records of type TypeCID and TypeMoveSession carry a CIDLen-byte
// connection ID after the sequence number (docs/dtls.md, Record layout).
func ParseRecord(b []byte) (Record, []byte, error) {
	if len(b) < HeaderLen {
		return Record{}, b, ErrShortRecord
	}
	h := Header{
		Type:    ContentType(b[0]),
		Version: binary.BigEndian.Uint16(b[1:3]),
		Epoch:   binary.BigEndian.Uint16(b[3:5]),
		Seq:     uint64(binary.BigEndian.Uint16(b[5:7]))<<32 | uint64(binary.BigEndian.Uint32(b[7:11])),
	}
	if h.Version != Version && h.Version != VersionDTLS10 {
		return Record{}, b, ErrBadVersion
	}
	off := 11
	if h.Type.HasCID() {
		if len(b) < CIDHeaderLen {
			return Record{}, b, ErrShortRecord
		}
		h.CID = b[off : off+CIDLen : off+CIDLen]
		off += CIDLen
	}
	h.Length = binary.BigEndian.Uint16(b[off : off+2])
	off += 2
	if int(h.Length) > MaxFragmentLen {
		return Record{}, b, ErrRecordTooLarge
	}
	end := off + int(h.Length)
	if len(b) < end {
		return Record{}, b, ErrShortRecord
	}
	return Record{Header: h, Body: b[off:end:end], Raw: b[:end:end]}, b[end:], nil
}

// AppendHeader appends the encoded header to dst. A CID record's header
// needs a CIDLen-byte CID; other types must have none.
func AppendHeader(dst []byte, h *Header) ([]byte, error) {
	if h.Seq > MaxSeq {
		return dst, ErrSeqOverflow
	}
	if h.Type.HasCID() != (h.CID != nil) || (h.CID != nil && len(h.CID) != CIDLen) {
		return dst, ErrBadCID
	}
	dst = append(dst, byte(h.Type))
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	dst = binary.BigEndian.AppendUint16(dst, h.Epoch)
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.Seq>>32))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Seq))
	dst = append(dst, h.CID...)
	return binary.BigEndian.AppendUint16(dst, h.Length), nil
}

// PaddingGranularity is the block the inner plaintext of a CID record is
// padded to, as Particle's TLS library does (docs/dtls.md, Record layout).
const PaddingGranularity = 16

// AppendInner appends the inner plaintext of a CID record to dst: content,
// then the real content type, then zeros up to a multiple of
// PaddingGranularity.
func AppendInner(dst, content []byte, real ContentType) []byte {
	dst = append(dst, content...)
	dst = append(dst, byte(real))
	pad := (PaddingGranularity - (len(content)+1)%PaddingGranularity) % PaddingGranularity
	for range pad {
		dst = append(dst, 0)
	}
	return dst
}

// ParseInner splits a CID record's inner plaintext into its content and real
// content type: trailing zeros are padding and the last non-zero byte is the
// type. The content aliases b.
func ParseInner(b []byte) ([]byte, ContentType, error) {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return b[:i:i], ContentType(b[i]), nil
		}
	}
	return nil, 0, ErrNoContentType
}
