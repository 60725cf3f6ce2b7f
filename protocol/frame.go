package protocol

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Gen 2 frame (docs/particle-protocol.md#frames ✔), one per CoAP message after
// the handshake:
//
//	+--------+--------+----------------------------------------------+
//	| len (u16, BE)   | AES-128-CBC(key, iv_dir, coap ‖ PKCS#7 pad)  |
//	+--------+--------+----------------------------------------------+
//	                   len bytes, a non-zero multiple of 16
//
// IV chaining is non-standard: each direction keeps its own IV, both start at
// the session IV, and after each frame that direction's IV becomes the FIRST
// 16-byte block of that frame's ciphertext (not the last). There is no MAC.
const (
	frameHeaderLen = 2
	blockSize      = aes.BlockSize
	// MaxFrameLen is the largest ciphertext length the u16 prefix can carry
	// that is a multiple of 16.
	MaxFrameLen = 0xFFFF &^ (blockSize - 1)
	// DefaultMaxFrameLen bounds frames when the caller passes 0. Devices send
	// at most ~1 KB messages (Hello's max message size) and use blockwise
	// transfer above that.
	DefaultMaxFrameLen = 4096
)

// Frame errors. After any of them the stream is out of sync; close it.
var (
	// ErrFrameTruncated means the stream ended inside a frame.
	ErrFrameTruncated = errors.New("protocol: frame truncated")
	// ErrFrameLength means a length of 0 or not a multiple of 16.
	ErrFrameLength = errors.New("protocol: frame length not a positive multiple of 16")
	// ErrFrameTooLarge means a frame above the configured maximum.
	ErrFrameTooLarge = errors.New("protocol: frame too large")
	// ErrBadPadding means the decrypted frame does not end in valid PKCS#7 padding.
	ErrBadPadding = errors.New("protocol: bad frame padding")
)

// FrameSealer encrypts frames for one direction, keeping its IV chain.
// It is not safe for concurrent use.
//
// CBC is done block by block on the AES block itself rather than through
// crypto/cipher's CBC modes, which copy the 0.5 KB key schedule into each
// mode: a Gen 2 session then holds one schedule for both directions
// (NewFrameCiphers), which matters with 100,000 idle sessions.
type FrameSealer struct {
	b   cipher.Block
	iv  [blockSize]byte
	max int
}

// NewFrameSealer returns a sealer for the direction starting at keys.IV.
// maxLen bounds the ciphertext length (0 = DefaultMaxFrameLen).
func NewFrameSealer(keys SessionKeys, maxLen int) *FrameSealer {
	b, _ := aes.NewCipher(keys.Key[:]) // 16-byte key: cannot fail
	return &FrameSealer{b: b, iv: keys.IV, max: frameMax(maxLen)}
}

// NewFrameCiphers returns an opener (at most openMax bytes of ciphertext)
// and a sealer (sealMax) of the two directions of one session, both
// starting at keys.IV and sharing one AES key schedule. They may be used
// concurrently with each other (an AES block holds no state between
// calls); each alone is not safe for concurrent use.
func NewFrameCiphers(keys SessionKeys, openMax, sealMax int) (*FrameOpener, *FrameSealer) {
	b, _ := aes.NewCipher(keys.Key[:])
	return &FrameOpener{b: b, iv: keys.IV, max: frameMax(openMax)},
		&FrameSealer{b: b, iv: keys.IV, max: frameMax(sealMax)}
}

func frameMax(n int) int {
	if n <= 0 {
		return DefaultMaxFrameLen
	}
	return min(n, MaxFrameLen)
}

// SealedLen returns the frame size (header included) for a plaintext of n bytes.
func SealedLen(n int) int { return frameHeaderLen + (n/blockSize+1)*blockSize }

// Seal appends the frame for plaintext to dst and advances the IV.
func (s *FrameSealer) Seal(dst, plaintext []byte) ([]byte, error) {
	ctLen := (len(plaintext)/blockSize + 1) * blockSize
	if ctLen > s.max {
		return dst, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, ctLen, s.max)
	}
	start := len(dst)
	dst = append(dst, byte(ctLen>>8), byte(ctLen))
	dst = append(dst, plaintext...)
	pad := byte(ctLen - len(plaintext))
	for range int(pad) {
		dst = append(dst, pad)
	}
	ct := dst[start+frameHeaderLen:]
	prev := s.iv[:]
	for i := 0; i < len(ct); i += blockSize {
		blk := ct[i : i+blockSize]
		subtle.XORBytes(blk, blk, prev)
		s.b.Encrypt(blk, blk)
		prev = blk
	}
	copy(s.iv[:], ct[:blockSize])
	return dst, nil
}

// FrameOpener decrypts frames of one direction, keeping its IV chain.
// It is not safe for concurrent use.
type FrameOpener struct {
	b   cipher.Block
	iv  [blockSize]byte
	max int
}

// NewFrameOpener returns an opener for the direction starting at keys.IV.
// maxLen bounds the ciphertext length (0 = DefaultMaxFrameLen).
func NewFrameOpener(keys SessionKeys, maxLen int) *FrameOpener {
	b, _ := aes.NewCipher(keys.Key[:])
	return &FrameOpener{b: b, iv: keys.IV, max: frameMax(maxLen)}
}

// CheckLen validates a frame's length prefix before its body is read.
func (o *FrameOpener) CheckLen(n int) error {
	if n == 0 || n%blockSize != 0 {
		return fmt.Errorf("%w: %d", ErrFrameLength, n)
	}
	if n > o.max {
		return fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, n, o.max)
	}
	return nil
}

// Open decrypts ct (one frame body, without the length prefix) in place and
// returns the CoAP message without padding, a sub-slice of ct. The IV
// advances even when the padding is bad.
func (o *FrameOpener) Open(ct []byte) ([]byte, error) {
	if err := o.CheckLen(len(ct)); err != nil {
		return nil, err
	}
	var next [blockSize]byte
	copy(next[:], ct[:blockSize])
	// In place from the last block back, so that each block's
	// predecessor is still ciphertext when it is needed.
	for i := len(ct) - blockSize; i >= 0; i -= blockSize {
		blk := ct[i : i+blockSize]
		o.b.Decrypt(blk, blk)
		if i > 0 {
			subtle.XORBytes(blk, blk, ct[i-blockSize:i])
		} else {
			subtle.XORBytes(blk, blk, o.iv[:])
		}
	}
	o.iv = next
	return unpad(ct)
}

// Peek decrypts ct (one frame body, without the length prefix) into dst,
// which must be at least len(ct) long, and returns the CoAP message without
// padding, a sub-slice of dst. Unlike Open it changes neither ct nor the
// IV: a caller that wants the frame calls Advance(ct) next, one that does
// not leaves it to Open later. The gateway answers a parked session's
// keep-alive pings this way without waking the session.
func (o *FrameOpener) Peek(dst, ct []byte) ([]byte, error) {
	if err := o.CheckLen(len(ct)); err != nil {
		return nil, err
	}
	if len(dst) < len(ct) {
		return nil, fmt.Errorf("protocol: peek: %d bytes of room for %d", len(dst), len(ct))
	}
	prev := o.iv[:]
	for i := 0; i < len(ct); i += blockSize {
		blk := dst[i : i+blockSize]
		o.b.Decrypt(blk, ct[i:i+blockSize])
		subtle.XORBytes(blk, blk, prev)
		prev = ct[i : i+blockSize]
	}
	return unpad(dst[:len(ct)])
}

// Advance moves the IV past the frame body ct, as Open(ct) would.
func (o *FrameOpener) Advance(ct []byte) { copy(o.iv[:], ct[:blockSize]) }

// unpad checks the PKCS#7 padding of a decrypted frame body and strips it.
func unpad(pt []byte) ([]byte, error) {
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > blockSize {
		return nil, ErrBadPadding
	}
	bad := byte(0)
	for _, c := range pt[len(pt)-pad:] {
		bad |= c ^ byte(pad)
	}
	if bad != 0 {
		return nil, ErrBadPadding
	}
	return pt[:len(pt)-pad], nil
}

// FrameReader reads frames from a stream. The returned plaintext is valid
// until the next ReadFrame. It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	o   *FrameOpener
	hdr [frameHeaderLen]byte
	buf []byte
}

// NewFrameReader returns a reader of device→server (or server→device) frames
// under keys. maxLen bounds a frame's ciphertext (0 = DefaultMaxFrameLen).
func NewFrameReader(r io.Reader, keys SessionKeys, maxLen int) *FrameReader {
	return &FrameReader{r: r, o: NewFrameOpener(keys, maxLen)}
}

// ReadFrame reads, decrypts and unpads one frame. It returns io.EOF when the
// stream ends cleanly between frames, ErrFrameTruncated inside one, and other
// transport errors wrapped (errors.Is still matches, e.g. a deadline). The
// buffer grows to the largest frame seen, never beyond the maximum.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		switch {
		case err == io.EOF:
			return nil, io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, ErrFrameTruncated
		}
		return nil, fmt.Errorf("protocol: read frame: %w", err)
	}
	n := int(binary.BigEndian.Uint16(fr.hdr[:]))
	if err := fr.o.CheckLen(n); err != nil {
		return nil, err
	}
	if cap(fr.buf) < n {
		fr.buf = make([]byte, n)
	}
	body := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, ErrFrameTruncated
		}
		return nil, fmt.Errorf("protocol: read frame: %w", err)
	}
	return fr.o.Open(body)
}

// ReadMessage reads one frame and decodes it into m; m aliases the frame
// buffer until the next read.
func (fr *FrameReader) ReadMessage(m *Message) error {
	b, err := fr.ReadFrame()
	if err != nil {
		return err
	}
	return m.Decode(b)
}

// FrameWriter writes frames to a stream, one Write call per frame. It is not
// safe for concurrent use.
type FrameWriter struct {
	w   io.Writer
	s   *FrameSealer
	buf []byte // sealed frame
	msg []byte // encoded message, for WriteMessage
}

// NewFrameWriter returns a writer of frames under keys. maxLen bounds a
// frame's ciphertext (0 = DefaultMaxFrameLen).
func NewFrameWriter(w io.Writer, keys SessionKeys, maxLen int) *FrameWriter {
	return &FrameWriter{w: w, s: NewFrameSealer(keys, maxLen)}
}

// WriteFrame encrypts plaintext (one CoAP message) and writes the frame.
func (fw *FrameWriter) WriteFrame(plaintext []byte) error {
	var err error
	fw.buf, err = fw.s.Seal(fw.buf[:0], plaintext)
	if err != nil {
		return err
	}
	if _, err := fw.w.Write(fw.buf); err != nil {
		return fmt.Errorf("protocol: write frame: %w", err)
	}
	return nil
}

// WriteMessage encodes m and writes it as one frame.
func (fw *FrameWriter) WriteMessage(m *Message) error {
	enc, err := m.AppendBinary(fw.msg[:0])
	if err != nil {
		return err
	}
	fw.msg = enc
	return fw.WriteFrame(enc)
}
