package protocol

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Gen 2 TCP handshake (docs/particle-protocol.md#tcp-handshake ✔):
//
//	server                                              device
//	  | -- nonce (40 random bytes, clear) ------------------> |
//	  | <-- RSA-2048 PKCS#1 v1.5 enc. with server key ------- |  256 B
//	  |     of nonce(40) ‖ deviceID(12) ‖ deviceSPKI(162)     |
//	  |                                                       |
//	  | -- ct(128) ‖ sig(256) --------------------------------> |  384 B
//	  |    cred = 40 random bytes                             |
//	  |    ct   = RSA-1024 PKCS#1 v1.5 enc. of cred, device key
//	  |    h    = HMAC-SHA1(key = cred, msg = ct)             |
//	  |    sig  = RSA-2048 PKCS#1 v1.5 type-1 signature of the
//	  |           raw 20-byte h (no DigestInfo), server key   |
//	  |                                                       |
//	  | <== AES-128-CBC frames (frame.go), first = CoAP Hello  |
//
//	cred: | key (16) | iv (16) | salt (8) |
const (
	NonceSize       = 40                // server nonce
	CredSize        = 40                // session credentials: key ‖ iv ‖ salt
	SessionKeySize  = 16                // AES-128 key
	SessionIVSize   = 16                // initial CBC IV of both directions
	SaltSize        = 8                 // seeds the device's message IDs (docs/particle-protocol.md#message-ids-and-tokens)
	DeviceHelloSize = ServerKeyBits / 8 // 256: device's RSA block, for a 2048-bit server key
	minDeviceHello  = NonceSize + DeviceIDSize
	sessionHMACSize = sha1.Size
)

// Handshake errors. A server should close the connection on any of them.
var (
	// ErrHandshakeDecrypt means an RSA block that does not decrypt with our key.
	ErrHandshakeDecrypt = errors.New("protocol: handshake: rsa decryption failed")
	// ErrHandshakeShort means a decrypted block shorter than the protocol needs.
	ErrHandshakeShort = errors.New("protocol: handshake: decrypted block too short")
	// ErrNonceMismatch means the device did not echo our nonce.
	ErrNonceMismatch = errors.New("protocol: handshake: nonce mismatch")
	// ErrHandshakeSignature means the server's session-key signature or HMAC is wrong.
	ErrHandshakeSignature = errors.New("protocol: handshake: bad session key signature")
	// ErrHandshakeSize means a handshake message of the wrong size.
	ErrHandshakeSize = errors.New("protocol: handshake: message has the wrong size")
	// ErrDeviceKeyMismatch means the key the device offered differs from the key on file.
	ErrDeviceKeyMismatch = errors.New("protocol: handshake: device key differs from the key on file")
)

// ServerKey is the server's RSA-2048 private key as the handshake uses it:
// Decrypt with nil opts is PKCS#1 v1.5 decryption (the device hello), Sign
// with crypto.Hash(0) is a PKCS#1 v1.5 type-1 signature of the raw bytes
// (no DigestInfo), and Public returns an *rsa.PublicKey. *rsa.PrivateKey
// implements it; another implementation (an OpenSSL- or HSM-backed key) must
// produce the same bytes and be safe for concurrent use if sessions share it.
type ServerKey interface {
	crypto.Signer
	crypto.Decrypter
}

// serverKeySize returns the modulus size in bytes of an RSA ServerKey.
func serverKeySize(k ServerKey) (int, error) {
	if k == nil {
		return 0, errors.New("protocol: handshake: no server key")
	}
	if rk, ok := k.(*rsa.PrivateKey); ok && rk == nil {
		return 0, errors.New("protocol: handshake: no server key")
	}
	pub, ok := k.Public().(*rsa.PublicKey)
	if !ok || pub == nil {
		return 0, fmt.Errorf("protocol: handshake: server key is %T, want RSA", k.Public())
	}
	return pub.Size(), nil
}

// SessionKeys are the AES parameters both sides derive from cred.
type SessionKeys struct {
	Key  [SessionKeySize]byte
	IV   [SessionIVSize]byte
	Salt [SaltSize]byte
}

// SessionKeysFromCred splits the 40-byte cred into key, IV and salt.
func SessionKeysFromCred(cred []byte) (SessionKeys, error) {
	var k SessionKeys
	if len(cred) != CredSize {
		return k, fmt.Errorf("%w: cred of %d bytes", ErrHandshakeSize, len(cred))
	}
	copy(k.Key[:], cred[0:16])
	copy(k.IV[:], cred[16:32])
	copy(k.Salt[:], cred[32:40])
	return k, nil
}

// Cred returns key ‖ iv ‖ salt.
func (k SessionKeys) Cred() []byte {
	b := make([]byte, 0, CredSize)
	b = append(b, k.Key[:]...)
	b = append(b, k.IV[:]...)
	return append(b, k.Salt[:]...)
}

// DeviceMessageIDs returns the message-ID counter a device starts with
// (first ID = LE16(salt[0:2]) + 1,
// docs/particle-protocol.md#message-ids-and-tokens ✔).
func (k SessionKeys) DeviceMessageIDs() MessageIDs {
	return NewMessageIDs(DeviceMessageIDSeed(k.Salt))
}

// NewNonce draws the 40-byte nonce the server sends first (step 1).
func NewNonce(random io.Reader) ([NonceSize]byte, error) {
	var n [NonceSize]byte
	if random == nil {
		random = rand.Reader
	}
	if _, err := io.ReadFull(random, n[:]); err != nil {
		return n, fmt.Errorf("protocol: handshake: read nonce randomness: %w", err)
	}
	return n, nil
}

// DeviceHello is what the server learns from the device's RSA block (step 3).
type DeviceHello struct {
	ID DeviceID
	// PublicKeyDER is the SPKI the device offered; nil for very old Core
	// firmware that sends only nonce ‖ id.
	PublicKeyDER []byte
}

// OpenDeviceHello decrypts the device's 256-byte block with the server key and
// checks it echoes nonce (step 3). It requires at least nonce ‖ id (52 bytes);
// anything after the id is returned as the offered public key, unparsed.
func OpenDeviceHello(serverKey ServerKey, nonce []byte, block []byte) (DeviceHello, error) {
	var h DeviceHello
	size, err := serverKeySize(serverKey)
	if err != nil {
		return h, err
	}
	if len(block) != size {
		return h, fmt.Errorf("%w: device block of %d bytes, want %d", ErrHandshakeSize, len(block), size)
	}
	// nil opts: PKCS#1 v1.5, what Particle firmware uses
	// (docs/particle-protocol.md#tcp-handshake).
	plain, err := serverKey.Decrypt(nil, block, nil)
	if err != nil {
		return h, ErrHandshakeDecrypt
	}
	if len(plain) < minDeviceHello {
		return h, ErrHandshakeShort
	}
	if len(nonce) != NonceSize || subtle.ConstantTimeCompare(plain[:NonceSize], nonce) != 1 {
		return h, ErrNonceMismatch
	}
	copy(h.ID[:], plain[NonceSize:minDeviceHello])
	if len(plain) > minDeviceHello {
		h.PublicKeyDER = plain[minDeviceHello:]
	}
	return h, nil
}

// SealDeviceHello is the device side of step 2: it encrypts nonce ‖ id ‖
// devicePublicKeyDER (SPKI, 162 bytes for RSA-1024) with the server key.
func SealDeviceHello(serverKey *rsa.PublicKey, nonce []byte, id DeviceID, devicePublicKeyDER []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrHandshakeSize, len(nonce))
	}
	plain := make([]byte, 0, minDeviceHello+len(devicePublicKeyDER))
	plain = append(plain, nonce...)
	plain = append(plain, id[:]...)
	plain = append(plain, devicePublicKeyDER...)
	//lint:ignore SA1019 protocol-mandated PKCS#1 v1.5 (docs/particle-protocol.md#tcp-handshake).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, serverKey, plain)
	if err != nil {
		return nil, fmt.Errorf("protocol: handshake: encrypt device hello: %w", err)
	}
	return ct, nil
}

// SealSessionKeys is the server side of step 4: it draws cred, encrypts it
// with the device's public key and signs it, returning the keys and the
// ct ‖ sig message (128 + 256 bytes for the standard key sizes).
func SealSessionKeys(random io.Reader, serverKey ServerKey, deviceKey *rsa.PublicKey) (SessionKeys, []byte, error) {
	if random == nil {
		random = rand.Reader
	}
	cred := make([]byte, CredSize)
	if _, err := io.ReadFull(random, cred); err != nil {
		return SessionKeys{}, nil, fmt.Errorf("protocol: handshake: read cred randomness: %w", err)
	}
	keys, _ := SessionKeysFromCred(cred)
	//lint:ignore SA1019 protocol-mandated PKCS#1 v1.5 (docs/particle-protocol.md#tcp-handshake).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, deviceKey, cred)
	if err != nil {
		return SessionKeys{}, nil, fmt.Errorf("protocol: handshake: encrypt cred: %w", err)
	}
	sig, err := signSessionKeys(serverKey, cred, ct)
	if err != nil {
		return SessionKeys{}, nil, err
	}
	return keys, append(ct, sig...), nil
}

// sessionHMAC is HMAC-SHA1 keyed with all 40 bytes of cred over ct.
func sessionHMAC(cred, ct []byte) []byte {
	mac := hmac.New(sha1.New, cred)
	mac.Write(ct)
	return mac.Sum(nil)
}

// signSessionKeys signs the raw 20-byte HMAC with PKCS#1 v1.5 type 1 and no
// DigestInfo prefix (crypto.Hash(0)); deterministic for a given key and input.
func signSessionKeys(serverKey ServerKey, cred, ct []byte) ([]byte, error) {
	sig, err := serverKey.Sign(nil, sessionHMAC(cred, ct), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("protocol: handshake: sign session key: %w", err)
	}
	return sig, nil
}

// OpenSessionKeys is the device side of step 5: it decrypts ct with the
// device key, recomputes the HMAC and verifies the server's raw signature.
func OpenSessionKeys(deviceKey *rsa.PrivateKey, serverKey *rsa.PublicKey, msg []byte) (SessionKeys, error) {
	ctLen, sigLen := deviceKey.Size(), serverKey.Size()
	if len(msg) != ctLen+sigLen {
		return SessionKeys{}, fmt.Errorf("%w: session message of %d bytes, want %d", ErrHandshakeSize, len(msg), ctLen+sigLen)
	}
	ct, sig := msg[:ctLen], msg[ctLen:]
	//lint:ignore SA1019 protocol-mandated PKCS#1 v1.5 (docs/particle-protocol.md#tcp-handshake).
	cred, err := rsa.DecryptPKCS1v15(nil, deviceKey, ct)
	if err != nil {
		return SessionKeys{}, ErrHandshakeDecrypt
	}
	if len(cred) != CredSize {
		return SessionKeys{}, ErrHandshakeShort
	}
	if err := rsa.VerifyPKCS1v15(serverKey, crypto.Hash(0), sessionHMAC(cred, ct), sig); err != nil {
		return SessionKeys{}, ErrHandshakeSignature
	}
	return SessionKeysFromCred(cred)
}

// ServerHandshakeConfig configures ServerHandshake.
type ServerHandshakeConfig struct {
	// PrivateKey is the server's RSA-2048 key (an *rsa.PrivateKey or
	// another ServerKey). Required.
	PrivateKey ServerKey
	// Random is the randomness for nonce and cred; nil means crypto/rand.
	Random io.Reader
	// DeviceKey returns the public key on file for id. offered is the SPKI
	// DER the device sent (nil for old Core firmware); the callback decides
	// about unknown devices (e.g. trust on first use,
	// docs/particle-protocol.md#how-the-cloud-learns-a-device-key). Use
	// CheckOfferedKey to require the offered key to match. Required.
	DeviceKey func(id DeviceID, offered []byte) (*rsa.PublicKey, error)
}

// HandshakeResult is the outcome of a completed server handshake.
type HandshakeResult struct {
	DeviceID DeviceID
	// OfferedKeyDER is the SPKI the device sent in its hello (may be nil).
	OfferedKeyDER []byte
	// DeviceKey is the key the session was encrypted to.
	DeviceKey *rsa.PublicKey
	Keys      SessionKeys
}

// ServerHandshake runs steps 1-4 of the handshake on rw: send nonce, read the
// 256-byte device block, look up the device key, send ct ‖ sig. The caller
// sets deadlines on the connection and then switches to frames
// (NewFrameReader/NewFrameWriter with the returned keys).
func ServerHandshake(rw io.ReadWriter, cfg ServerHandshakeConfig) (HandshakeResult, error) {
	var res HandshakeResult
	size, err := serverKeySize(cfg.PrivateKey)
	if err != nil || cfg.DeviceKey == nil {
		return res, errors.New("protocol: handshake: ServerHandshakeConfig needs an RSA PrivateKey and DeviceKey")
	}
	nonce, err := NewNonce(cfg.Random)
	if err != nil {
		return res, err
	}
	if _, err := rw.Write(nonce[:]); err != nil {
		return res, fmt.Errorf("protocol: handshake: write nonce: %w", err)
	}
	block := make([]byte, size)
	if _, err := io.ReadFull(rw, block); err != nil {
		return res, fmt.Errorf("protocol: handshake: read device hello: %w", err)
	}
	hello, err := OpenDeviceHello(cfg.PrivateKey, nonce[:], block)
	if err != nil {
		return res, err
	}
	res.DeviceID, res.OfferedKeyDER = hello.ID, hello.PublicKeyDER
	deviceKey, err := cfg.DeviceKey(hello.ID, hello.PublicKeyDER)
	if err != nil {
		return res, fmt.Errorf("protocol: handshake: device %s: %w", hello.ID, err)
	}
	keys, msg, err := SealSessionKeys(cfg.Random, cfg.PrivateKey, deviceKey)
	if err != nil {
		return res, err
	}
	if _, err := rw.Write(msg); err != nil {
		return res, fmt.Errorf("protocol: handshake: write session key: %w", err)
	}
	res.DeviceKey, res.Keys = deviceKey, keys
	return res, nil
}

// CheckOfferedKey returns ErrDeviceKeyMismatch unless offered is absent or
// denotes the same key as onFile (compared as canonical SPKI DER).
func CheckOfferedKey(onFile *rsa.PublicKey, offered []byte) error {
	if len(offered) == 0 {
		return nil
	}
	k, err := ParseRSAPublicKey(offered)
	if err != nil || !k.Equal(onFile) {
		return ErrDeviceKeyMismatch
	}
	return nil
}

// DeviceHandshakeConfig configures DeviceHandshake.
type DeviceHandshakeConfig struct {
	ID DeviceID
	// PrivateKey is the device's RSA key (1024 bits on real hardware).
	PrivateKey *rsa.PrivateKey
	// ServerKey is the pinned server public key.
	ServerKey *rsa.PublicKey
}

// DeviceHandshake runs the device side of the handshake on rw: read the nonce,
// send the encrypted hello, read and verify the session keys.
func DeviceHandshake(rw io.ReadWriter, cfg DeviceHandshakeConfig) (SessionKeys, error) {
	if cfg.PrivateKey == nil || cfg.ServerKey == nil {
		return SessionKeys{}, errors.New("protocol: handshake: DeviceHandshakeConfig needs PrivateKey and ServerKey")
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rw, nonce[:]); err != nil {
		return SessionKeys{}, fmt.Errorf("protocol: handshake: read nonce: %w", err)
	}
	spki, err := MarshalPublicKeyDER(&cfg.PrivateKey.PublicKey)
	if err != nil {
		return SessionKeys{}, err
	}
	block, err := SealDeviceHello(cfg.ServerKey, nonce[:], cfg.ID, spki)
	if err != nil {
		return SessionKeys{}, err
	}
	if _, err := rw.Write(block); err != nil {
		return SessionKeys{}, fmt.Errorf("protocol: handshake: write device hello: %w", err)
	}
	msg := make([]byte, cfg.PrivateKey.Size()+cfg.ServerKey.Size())
	if _, err := io.ReadFull(rw, msg); err != nil {
		return SessionKeys{}, fmt.Errorf("protocol: handshake: read session key: %w", err)
	}
	return OpenSessionKeys(cfg.PrivateKey, cfg.ServerKey, msg)
}
