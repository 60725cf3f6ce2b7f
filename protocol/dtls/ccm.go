package dtls

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Sizes of the AES-128-CCM-8 record protection (docs/dtls.md, Record protection).
const (
	// KeyLen is the length of a write key.
	KeyLen = 16
	// ImplicitIVLen is the length of the implicit (salt) part of the nonce.
	ImplicitIVLen = 4
	// ExplicitNonceLen is the length of the nonce part carried in each record.
	ExplicitNonceLen = 8
	// TagLen is the length of the CCM-8 authentication tag.
	TagLen = 8
	// Overhead is what protection adds to the plaintext of a record body.
	Overhead = ExplicitNonceLen + TagLen
)

// ErrBadRecordMAC means a record failed authentication or is too short to
// hold a nonce and a tag.
var ErrBadRecordMAC = errors.New("dtls: bad record MAC")

// Cipher protects the records of one direction of a connection with
// AES-128-CCM-8. It holds no sequence state: callers pass epoch and
// sequence number and keep the replay window. A Cipher is safe for
// concurrent use.
type Cipher struct {
	aead ccm8         // by value: one allocation per Cipher
	key  [KeyLen]byte // kept for Session.MarshalBinary
	iv   [ImplicitIVLen]byte
}

// KeyIV returns the key and implicit IV the Cipher was made from, so that
// a holder of many idle sessions can drop their Ciphers and make them
// again with NewCipher.
func (c *Cipher) KeyIV() (key [KeyLen]byte, iv [ImplicitIVLen]byte) { return c.key, c.iv }

// NewCipher returns a Cipher for a KeyLen-byte write key and its
// ImplicitIVLen-byte write IV (see KeyBlock).
func NewCipher(key, iv []byte) (*Cipher, error) {
	if len(key) != KeyLen || len(iv) != ImplicitIVLen {
		return nil, fmt.Errorf("dtls: key must be %d bytes and IV %d bytes", KeyLen, ImplicitIVLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("dtls: %w", err)
	}
	c := &Cipher{aead: ccm8{b: block}}
	copy(c.key[:], key)
	copy(c.iv[:], iv)
	return c, nil
}

// scratch holds a record's nonce and additional data. Both escape into the
// AEAD interface call, so they are pooled rather than allocated per record.
// The pool is shared by every Cipher: one per Cipher cost each new session
// a pool registration and per-processor arrays on first use.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

type scratch struct {
	nonce [ImplicitIVLen + ExplicitNonceLen]byte
	ad    [HeaderLen + CIDLen + 1]byte
}

// additionalData builds the AEAD additional data into buf: epoch‖seq, type,
// version, then for CID records the CID and its length, then the plaintext
// length (docs/dtls.md, Record protection). CID records always use TypeCID
// here, also when TypeMoveSession is on the wire.
func additionalData(buf *[HeaderLen + CIDLen + 1]byte, h *Header, plainLen int) []byte {
	binary.BigEndian.PutUint16(buf[0:2], h.Epoch)
	binary.BigEndian.PutUint16(buf[2:4], uint16(h.Seq>>32))
	binary.BigEndian.PutUint32(buf[4:8], uint32(h.Seq))
	buf[8] = byte(h.Type)
	binary.BigEndian.PutUint16(buf[9:11], h.Version)
	n := 11
	if h.Type.HasCID() {
		buf[8] = byte(TypeCID)
		n += copy(buf[n:], h.CID)
		buf[n] = byte(len(h.CID))
		n++
	}
	binary.BigEndian.PutUint16(buf[n:n+2], uint16(plainLen))
	return buf[:n+2]
}

// Seal appends one protected record to dst and returns the result. typ is
// the real content type. With a non-nil cid (CIDLen bytes) the record goes
// out as TypeCID with content, typ and padding as its inner plaintext;
// without one it goes out as typ. The explicit nonce is epoch‖seq.
func (c *Cipher) Seal(dst []byte, typ ContentType, epoch uint16, seq uint64, cid, content []byte) ([]byte, error) {
	if typ == 0 || typ.HasCID() {
		return dst, ErrBadContentType
	}
	h := Header{Type: typ, Version: Version, Epoch: epoch, Seq: seq, CID: cid}
	plainLen := len(content)
	if cid != nil {
		h.Type = TypeCID
		plainLen += 1 + (PaddingGranularity-(len(content)+1)%PaddingGranularity)%PaddingGranularity
	}
	if plainLen+Overhead > MaxFragmentLen {
		return dst, ErrRecordTooLarge
	}
	h.Length = uint16(plainLen + Overhead)
	start := len(dst)
	dst, err := AppendHeader(dst, &h)
	if err != nil {
		return dst[:start], err
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	nonce := &sc.nonce
	copy(nonce[:], c.iv[:])
	binary.BigEndian.PutUint16(nonce[4:6], epoch)
	binary.BigEndian.PutUint16(nonce[6:8], uint16(seq>>32))
	binary.BigEndian.PutUint32(nonce[8:12], uint32(seq))
	dst = append(dst, nonce[ImplicitIVLen:]...)
	ptStart := len(dst)
	if cid != nil {
		dst = AppendInner(dst, content, typ)
	} else {
		dst = append(dst, content...)
	}
	aad := additionalData(&sc.ad, &h, plainLen)
	// Seal in place over the plaintext just appended.
	return c.aead.Seal(dst[:ptStart], nonce[:], dst[ptStart:], aad), nil
}

// Open authenticates and decrypts the body of a protected record and
// appends the content to dst, returning it with the real content type. For
// CID records the inner plaintext is unwrapped; the CID itself is not
// checked (sessions are found by CID before opening). It returns
// ErrBadRecordMAC when authentication fails.
func (c *Cipher) Open(dst []byte, r *Record) ([]byte, ContentType, error) {
	body := r.Body
	if len(body) < Overhead {
		return dst, 0, ErrBadRecordMAC
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	nonce := &sc.nonce
	copy(nonce[:], c.iv[:])
	copy(nonce[ImplicitIVLen:], body[:ExplicitNonceLen])
	aad := additionalData(&sc.ad, &r.Header, len(body)-Overhead)
	start := len(dst)
	out, err := c.aead.Open(dst, nonce[:], body[ExplicitNonceLen:], aad)
	if err != nil {
		return dst, 0, ErrBadRecordMAC
	}
	if !r.Header.Type.HasCID() {
		return out, r.Header.Type, nil
	}
	content, typ, err := ParseInner(out[start:])
	if err != nil {
		return dst, 0, err
	}
	return out[:start+len(content)], typ, nil
}
