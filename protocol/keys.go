package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DeviceIDSize is the length of a raw device ID
// (docs/particle-protocol.md#device-ids).
const DeviceIDSize = 12

// DeviceID is the 12-byte device identifier; its text form is 24 lowercase hex characters.
type DeviceID [DeviceIDSize]byte

// String returns the 24-character lowercase hex form.
func (id DeviceID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero bytes.
func (id DeviceID) IsZero() bool { return id == DeviceID{} }

// ErrDeviceID means a device ID that is not 24 hex characters.
var ErrDeviceID = errors.New("protocol: device id must be 24 hex characters")

// ParseDeviceID parses the 24-hex-character form, accepting upper case.
func ParseDeviceID(s string) (DeviceID, error) {
	var id DeviceID
	if len(s) != 2*DeviceIDSize {
		return id, ErrDeviceID
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, ErrDeviceID
	}
	return id, nil
}

// Key sizes of the Gen 2 TCP transport (docs/particle-protocol.md#key-types).
const (
	DeviceKeyBits        = 1024 // RSA device key
	ServerKeyBits        = 2048 // RSA server key
	DevicePublicKeyDER   = 162  // SPKI DER size of an RSA-1024 key
	ServerPublicKeyDER   = 294  // SPKI DER size of an RSA-2048 key
	DevicePrivateKeySlot = 612  // device flash slot for the PKCS#1 DER private key, 0xFF padded
)

// Errors returned by the key helpers.
var (
	// ErrKeyFormat means the input is neither a recognised PEM block nor DER.
	ErrKeyFormat = errors.New("protocol: unrecognised key encoding")
	// ErrKeyType means a key of an unsupported algorithm or the wrong kind.
	ErrKeyType = errors.New("protocol: unsupported key type")
)

// ParsePublicKey parses a public key given as PEM ("PUBLIC KEY" = PKIX/SPKI,
// "RSA PUBLIC KEY" = PKCS#1) or as DER of either form
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key). It returns
// *rsa.PublicKey or *ecdsa.PublicKey. Text before the PEM block is ignored; a
// private key is refused.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	if der, typ, ok := findPEM(data, "PUBLIC KEY", "RSA PUBLIC KEY"); ok {
		if typ == "RSA PUBLIC KEY" {
			return parsePKCS1Public(der)
		}
		return parsePKIXPublic(der)
	}
	if isPEM(data) {
		return nil, ErrKeyFormat
	}
	der := trimDER(data)
	if k, err := parsePKIXPublic(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	return nil, ErrKeyFormat
}

func parsePKIXPublic(der []byte) (crypto.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("protocol: parse PKIX public key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return k, nil
	}
	return nil, ErrKeyType
}

func parsePKCS1Public(der []byte) (crypto.PublicKey, error) {
	k, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("protocol: parse PKCS#1 public key: %w", err)
	}
	return k, nil
}

// ParseRSAPublicKey is ParsePublicKey restricted to RSA keys.
func ParseRSAPublicKey(data []byte) (*rsa.PublicKey, error) {
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, ErrKeyType
	}
	return rk, nil
}

// ParsePrivateKey parses a private key given as PEM ("RSA PRIVATE KEY" =
// PKCS#1, "PRIVATE KEY" = PKCS#8, "EC PRIVATE KEY" = SEC1) or DER of those
// forms, including a device key slot dump (DER followed by 0xFF fill). It
// returns *rsa.PrivateKey or *ecdsa.PrivateKey.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if der, typ, ok := findPEM(data, "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"); ok {
		switch typ {
		case "RSA PRIVATE KEY":
			return parsePrivateDER(der, x509.ParsePKCS1PrivateKey)
		case "EC PRIVATE KEY":
			return parsePrivateDER(der, x509.ParseECPrivateKey)
		}
		return parsePKCS8(der)
	}
	if isPEM(data) {
		return nil, ErrKeyFormat
	}
	der := trimDER(data)
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := parsePKCS8(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, ErrKeyFormat
}

func parsePrivateDER[K crypto.Signer](der []byte, parse func([]byte) (K, error)) (crypto.Signer, error) {
	k, err := parse(der)
	if err != nil {
		return nil, fmt.Errorf("protocol: parse private key: %w", err)
	}
	return k, nil
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("protocol: parse PKCS#8 private key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, ErrKeyType
}

// ParseRSAPrivateKey is ParsePrivateKey restricted to RSA keys.
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, ErrKeyType
	}
	return rk, nil
}

// CanonicalPublicKeyDER parses a public key in any accepted form and returns
// its canonical SPKI DER, the form to store and compare
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key).
func CanonicalPublicKeyDER(data []byte) ([]byte, error) {
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, err
	}
	return MarshalPublicKeyDER(k)
}

// MarshalPublicKeyDER returns the SPKI DER of an RSA or EC public key.
func MarshalPublicKeyDER(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("protocol: marshal public key: %w", err)
	}
	return der, nil
}

// MarshalPublicKeyPEM returns the "PUBLIC KEY" (SPKI) PEM of pub.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := MarshalPublicKeyDER(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivateKeyDER returns PKCS#1 DER for RSA keys (what a Gen 2 device
// stores) and SEC1 DER for EC keys (Gen 3).
func MarshalPrivateKeyDER(priv crypto.Signer) ([]byte, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return x509.MarshalPKCS1PrivateKey(k), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("protocol: marshal EC private key: %w", err)
		}
		return der, nil
	}
	return nil, ErrKeyType
}

// MarshalPrivateKeyPEM returns "RSA PRIVATE KEY" or "EC PRIVATE KEY" PEM,
// the traditional forms openssl and particle-cli produce.
func MarshalPrivateKeyPEM(priv crypto.Signer) ([]byte, error) {
	der, err := MarshalPrivateKeyDER(priv)
	if err != nil {
		return nil, err
	}
	typ := "RSA PRIVATE KEY"
	if _, ok := priv.(*ecdsa.PrivateKey); ok {
		typ = "EC PRIVATE KEY"
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
}

// GenerateDeviceKey creates an RSA-1024 device key for the TCP transport.
// Since Go 1.26 the random source is used only under GODEBUG=cryptocustomrand=1.
func GenerateDeviceKey(random io.Reader) (*rsa.PrivateKey, error) {
	return generateRSA(random, DeviceKeyBits)
}

// GenerateServerKey creates an RSA-2048 server key for the TCP transport.
func GenerateServerKey(random io.Reader) (*rsa.PrivateKey, error) {
	return generateRSA(random, ServerKeyBits)
}

func generateRSA(random io.Reader, bits int) (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(random, bits)
	if err != nil {
		return nil, fmt.Errorf("protocol: generate RSA-%d key: %w", bits, err)
	}
	return k, nil
}

// findPEM returns the first PEM block whose type is one of types, skipping
// others (openssl ecparam writes an "EC PARAMETERS" block first).
func findPEM(data []byte, types ...string) ([]byte, string, bool) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, "", false
		}
		for _, t := range types {
			if b.Type == t {
				return b.Bytes, t, true
			}
		}
	}
}

func isPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN ")) }

// trimDER cuts data to the length of its outer DER SEQUENCE when the rest is
// 0xFF or 0x00 fill, as in a key dumped from a device flash slot.
func trimDER(data []byte) []byte {
	if len(data) < 2 || data[0] != 0x30 {
		return data
	}
	n, hdr := 0, 2
	switch l := int(data[1]); {
	case l < 0x80:
		n = l
	case l == 0x81 || l == 0x82:
		k := l & 0x7F
		if len(data) < 2+k {
			return data
		}
		for _, c := range data[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	default:
		return data
	}
	end := hdr + n
	if end >= len(data) {
		return data
	}
	if strings.Trim(string(data[end:]), "\xff\x00") != "" {
		return data
	}
	return data[:end]
}
