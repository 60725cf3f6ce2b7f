package dtls

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Lengths of the derived secrets (docs/dtls.md, Key derivation).
const (
	// MasterSecretLen is the length of the master secret.
	MasterSecretLen = 48
	// RandomLen is the length of a hello random.
	RandomLen = 32
	// VerifyDataLen is the length of Finished verify_data.
	VerifyDataLen = 12
	// KeyBlockLen is the key block this suite needs: two write keys and two
	// implicit IVs, no MAC keys.
	KeyBlockLen = 2*KeyLen + 2*ImplicitIVLen
)

// PRF fills out with the TLS 1.2 pseudo-random function P_SHA256(secret,
// label ‖ seed) (RFC 5246, section 5).
func PRF(out, secret []byte, label string, seed []byte) {
	if len(secret) <= sha256.BlockSize && len(label)+len(seed) <= prfMaxLabelSeed {
		prfSmall(out, secret, label, seed)
		return
	}
	prfHMAC(out, secret, label, seed)
}

// prfHMAC is PRF on crypto/hmac, for any sizes.
func prfHMAC(out, secret []byte, label string, seed []byte) {
	mac := hmac.New(sha256.New, secret)
	labelSeed := make([]byte, 0, len(label)+len(seed))
	labelSeed = append(append(labelSeed, label...), seed...)
	// A(1) = HMAC(secret, label ‖ seed); each output block is
	// HMAC(secret, A(i) ‖ label ‖ seed) and A(i+1) = HMAC(secret, A(i)).
	buf := make([]byte, 0, 2*sha256.Size)
	mac.Write(labelSeed)
	a := mac.Sum(buf[:0])
	for len(out) > 0 {
		mac.Reset()
		mac.Write(a)
		mac.Write(labelSeed)
		block := mac.Sum(buf[sha256.Size:sha256.Size])
		out = out[copy(out, block):]
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
}

// prfMaxLabelSeed bounds label ‖ seed for prfSmall: the longest label of
// this suite (15 bytes) and the longest seed (two randoms).
const prfMaxLabelSeed = 16 + 2*RandomLen

// prfSmall is PRF for a secret of at most one SHA-256 block and a short
// label ‖ seed, the only sizes a handshake uses. Every HMAC (RFC 2104:
// H(k⊕opad ‖ H(k⊕ipad ‖ m))) is two sha256.Sum256 calls over stack
// buffers, so the key schedule allocates nothing.
func prfSmall(out, secret []byte, label string, seed []byte) {
	const bs, hs = sha256.BlockSize, sha256.Size
	var first [bs + prfMaxLabelSeed]byte   // k⊕ipad ‖ label ‖ seed
	var in [bs + hs + prfMaxLabelSeed]byte // k⊕ipad ‖ A(i) ‖ label ‖ seed
	var outer [bs + hs]byte                // k⊕opad ‖ inner hash
	for i := range bs {
		k := byte(0)
		if i < len(secret) {
			k = secret[i]
		}
		first[i], in[i], outer[i] = k^0x36, k^0x36, k^0x5c
	}
	n := copy(first[bs:], label)
	n += copy(first[bs+n:], seed)
	copy(in[bs+hs:], first[bs:bs+n])
	a := hmacOuter(&outer, first[:bs+n]) // A(1) = HMAC(label ‖ seed)
	for len(out) > 0 {
		copy(in[bs:], a[:])
		block := hmacOuter(&outer, in[:bs+hs+n]) // HMAC(A(i) ‖ label ‖ seed)
		out = out[copy(out, block[:]):]
		if len(out) > 0 {
			a = hmacOuter(&outer, in[:bs+hs]) // A(i+1) = HMAC(A(i))
		}
	}
}

// hmacOuter finishes an HMAC-SHA256: inner is k⊕ipad ‖ message, outer
// starts with k⊕opad.
func hmacOuter(outer *[sha256.BlockSize + sha256.Size]byte, inner []byte) [sha256.Size]byte {
	h := sha256.Sum256(inner)
	copy(outer[sha256.BlockSize:], h[:])
	return sha256.Sum256(outer[:])
}

// MasterSecret derives the master secret from the ECDHE pre-master secret
// and the client and server randoms.
func MasterSecret(preMaster, clientRandom, serverRandom []byte) ([]byte, error) {
	if len(clientRandom) != RandomLen || len(serverRandom) != RandomLen {
		return nil, fmt.Errorf("dtls: hello randoms must be %d bytes", RandomLen)
	}
	out := make([]byte, MasterSecretLen)
	masterSecret(out, preMaster, (*[RandomLen]byte)(clientRandom), (*[RandomLen]byte)(serverRandom))
	return out, nil
}

// masterSecret is MasterSecret into out (MasterSecretLen bytes).
func masterSecret(out, preMaster []byte, clientRandom, serverRandom *[RandomLen]byte) {
	var seed [2 * RandomLen]byte
	copy(seed[:], clientRandom[:])
	copy(seed[RandomLen:], serverRandom[:])
	PRF(out, preMaster, "master secret", seed[:])
}

// Keys are the traffic keys of one connection, split from the key block.
type Keys struct {
	// ClientKey protects records from the device.
	ClientKey [KeyLen]byte
	// ServerKey protects records from the server.
	ServerKey [KeyLen]byte
	// ClientIV is the implicit nonce part for records from the device.
	ClientIV [ImplicitIVLen]byte
	// ServerIV is the implicit nonce part for records from the server.
	ServerIV [ImplicitIVLen]byte
}

// KeyBlock expands the master secret into this suite's traffic keys. Note
// that the seed is server random first, unlike MasterSecret.
func KeyBlock(master, clientRandom, serverRandom []byte) (Keys, error) {
	if len(master) != MasterSecretLen {
		return Keys{}, fmt.Errorf("dtls: master secret must be %d bytes", MasterSecretLen)
	}
	if len(clientRandom) != RandomLen || len(serverRandom) != RandomLen {
		return Keys{}, fmt.Errorf("dtls: hello randoms must be %d bytes", RandomLen)
	}
	var seed [2 * RandomLen]byte
	copy(seed[:], serverRandom)
	copy(seed[RandomLen:], clientRandom)
	var kb [KeyBlockLen]byte
	PRF(kb[:], master, "key expansion", seed[:])
	var k Keys
	b := kb[:]
	b = b[copy(k.ClientKey[:], b):]
	b = b[copy(k.ServerKey[:], b):]
	b = b[copy(k.ClientIV[:], b):]
	copy(k.ServerIV[:], b)
	return k, nil
}

// Finished labels for VerifyData.
const (
	// ClientFinished labels the device's Finished message.
	ClientFinished = "client finished"
	// ServerFinished labels the server's Finished message.
	ServerFinished = "server finished"
)

// VerifyData computes Finished verify_data from the master secret, the label
// (ClientFinished or ServerFinished) and the SHA-256 hash of the handshake
// messages so far.
func VerifyData(master []byte, label string, transcriptHash []byte) [VerifyDataLen]byte {
	var out [VerifyDataLen]byte
	PRF(out[:], master, label, transcriptHash)
	return out
}
