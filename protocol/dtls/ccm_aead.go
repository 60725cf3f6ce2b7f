package dtls

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"sync"
)

// AES-CCM with an 8-byte tag and a 12-byte nonce, the AEAD of DTLS's
// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (docs/dtls.md, Record protection),
// computed block by block on the AES block cipher (RFC 3610, section 2:
// a CBC-MAC over a first block of flags, nonce and length, the
// length-prefixed additional data and the message, each zero-padded to a
// block; then counter mode, counter 0 masking the tag and 1, 2, ... the
// message). It allocates nothing per record: a Gen 3 node seals and opens
// every keep-alive of every device, and the library CCM it replaced made
// a CTR stream and two buffers per record: with the parked sessions' key
// unpacking, that garbage kept GC at 17% of an idle 100,000-device node's
// CPU (docs/dependencies.md, "Written here instead of imported").

// Sizes of the CCM parameters DTLS uses.
const (
	ccmNonceLen = ImplicitIVLen + ExplicitNonceLen // 12
	ccmLenLen   = 15 - ccmNonceLen                 // L: the message length's bytes (3)
	ccmMaxLen   = 1<<(8*ccmLenLen) - 1             // the longest message L bytes can count
	ccmMaxAAD   = 0xFF00 - 1                       // additional data with a 2-byte length prefix
)

// errCCMOpen is Open's error for a record that fails authentication.
var errCCMOpen = errors.New("dtls: ccm: message authentication failed")

// ccm8 is the AEAD on b, an AES block cipher. It is safe for concurrent
// use: its scratch blocks come from ccmScratchPool.
type ccm8 struct {
	b cipher.Block
}

// ccmScratch holds the blocks of one Seal or Open. They escape into the
// block cipher's interface calls, so they are pooled rather than
// allocated per record.
type ccmScratch struct {
	x, blk, ctr, s [aesBlockLen]byte
}

const aesBlockLen = 16

var ccmScratchPool = sync.Pool{New: func() any { return new(ccmScratch) }}

func (*ccm8) NonceSize() int { return ccmNonceLen }
func (*ccm8) Overhead() int  { return TagLen }

// Seal encrypts and authenticates plaintext with additional data aad and
// appends the result (ciphertext, then the 8-byte tag) to dst. dst may be
// plaintext[:0].
func (c *ccm8) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != ccmNonceLen || len(plaintext) > ccmMaxLen || len(aad) > ccmMaxAAD {
		panic("dtls: ccm: bad nonce, message or additional data length")
	}
	sc := ccmScratchPool.Get().(*ccmScratch)
	defer ccmScratchPool.Put(sc)
	c.mac(sc, nonce, plaintext, aad) // before the output, which may overwrite plaintext
	ret, out := sliceForAppend(dst, len(plaintext)+TagLen)
	c.ctrXOR(sc, nonce, out[:len(plaintext)], plaintext)
	c.counterBlock(sc, nonce, 0)
	for i := range TagLen {
		out[len(plaintext)+i] = sc.x[i] ^ sc.s[i]
	}
	return ret
}

// Open authenticates and decrypts ciphertext (with its tag) and appends
// the plaintext to dst, or returns an error and appends nothing. dst may
// be ciphertext[:0].
func (c *ccm8) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != ccmNonceLen {
		panic("dtls: ccm: bad nonce length")
	}
	if len(ciphertext) < TagLen || len(ciphertext)-TagLen > ccmMaxLen || len(aad) > ccmMaxAAD {
		return nil, errCCMOpen
	}
	n := len(ciphertext) - TagLen
	sc := ccmScratchPool.Get().(*ccmScratch)
	defer ccmScratchPool.Put(sc)
	var tag [TagLen]byte
	copy(tag[:], ciphertext[n:]) // out may overwrite it
	ret, out := sliceForAppend(dst, n)
	c.ctrXOR(sc, nonce, out, ciphertext[:n])
	c.mac(sc, nonce, out, aad)
	c.counterBlock(sc, nonce, 0)
	for i := range TagLen {
		sc.x[i] ^= sc.s[i]
	}
	if subtle.ConstantTimeCompare(sc.x[:TagLen], tag[:]) != 1 {
		clear(out)
		return nil, errCCMOpen
	}
	return ret, nil
}

// mac leaves the CBC-MAC of nonce, aad and plaintext in sc.x.
func (c *ccm8) mac(sc *ccmScratch, nonce, plaintext, aad []byte) {
	x := &sc.x
	flags := byte((TagLen-2)/2<<3 | (ccmLenLen - 1))
	if len(aad) > 0 {
		flags |= 1 << 6
	}
	x[0] = flags
	copy(x[1:], nonce)
	n := len(plaintext)
	x[13], x[14], x[15] = byte(n>>16), byte(n>>8), byte(n)
	c.b.Encrypt(x[:], x[:])
	if len(aad) > 0 {
		blk := &sc.blk
		*blk = [aesBlockLen]byte{}
		blk[0], blk[1] = byte(len(aad)>>8), byte(len(aad))
		k := copy(blk[2:], aad)
		c.macBlock(sc)
		c.macData(sc, aad[k:])
	}
	c.macData(sc, plaintext)
}

// macData feeds p to the CBC-MAC in sc.x, zero-padded to whole blocks.
func (c *ccm8) macData(sc *ccmScratch, p []byte) {
	for len(p) > 0 {
		sc.blk = [aesBlockLen]byte{}
		k := copy(sc.blk[:], p)
		p = p[k:]
		c.macBlock(sc)
	}
}

// macBlock chains sc.blk into the CBC-MAC in sc.x.
func (c *ccm8) macBlock(sc *ccmScratch) {
	for i := range sc.x {
		sc.x[i] ^= sc.blk[i]
	}
	c.b.Encrypt(sc.x[:], sc.x[:])
}

// counterBlock leaves the key stream block of counter i in sc.s.
func (c *ccm8) counterBlock(sc *ccmScratch, nonce []byte, i int) {
	a := &sc.ctr
	a[0] = ccmLenLen - 1
	copy(a[1:], nonce)
	a[13], a[14], a[15] = byte(i>>16), byte(i>>8), byte(i)
	c.b.Encrypt(sc.s[:], a[:])
}

// ctrXOR writes src XOR the key stream from counter 1 on into dst (same
// length; dst may be src).
func (c *ccm8) ctrXOR(sc *ccmScratch, nonce, dst, src []byte) {
	for i, off := 1, 0; off < len(src); i, off = i+1, off+aesBlockLen {
		c.counterBlock(sc, nonce, i)
		end := min(off+aesBlockLen, len(src))
		for j := off; j < end; j++ {
			dst[j] = src[j] ^ sc.s[j-off]
		}
	}
}

// sliceForAppend extends in by n bytes, reallocating if needed, and
// returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}
