package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Server key blob, the file `particle keys server` flashes into the device
// (docs/particle-protocol.md#the-server-key-file). Offsets are fixed because
// the blob overlays adjacent DCT fields:
//
//	TCP (512 bytes)                          UDP (320 bytes)
//	0    key SPKI DER (RSA-2048, 294 B)      0    key SPKI DER (P-256, 91 B)
//	...  0xFF fill                           ...  0xFF fill
//	384  address TLV                         192  address TLV
//	450  port, u16 BE (0xFFFF = default)     258  port, u16 BE (0xFFFF = default)
//	452  0xFF fill to 512                    260  0xFF fill to 320
//
// Address TLV:
//
//	+------+-----+------------------------------------------+
//	| type | len | value                                    |
//	+------+-----+------------------------------------------+
//	 0x00    4     IPv4 octets
//	 0x01    n     domain name, ASCII, not NUL-terminated
//	 other         invalid: the firmware falls back to Particle's host
type serverKeyBlobLayout struct {
	size, addressOffset, portOffset int
}

func blobLayout(t Transport) serverKeyBlobLayout {
	if t == TransportUDP {
		return serverKeyBlobLayout{size: 320, addressOffset: 192, portOffset: 258}
	}
	return serverKeyBlobLayout{size: 512, addressOffset: 384, portOffset: 450}
}

// Address TLV types of the server key blob.
const (
	AddressTypeIPv4   = 0x00
	AddressTypeDomain = 0x01
)

// ServerKeyBlobSize returns the blob size for t: 512 (TCP) or 320 (UDP).
func ServerKeyBlobSize(t Transport) int { return blobLayout(t).size }

// ServerKeyBlob is the decoded form of the blob a device stores.
type ServerKeyBlob struct {
	// KeyDER is the server public key, canonical SPKI DER.
	KeyDER []byte
	// Host is the dotted IPv4 address or domain name; empty when the TLV is
	// invalid (the device then uses Particle's default host).
	Host string
	// Port is the server port; 0 when the blob holds 0xFFFF (use the default).
	Port uint16
}

// Errors returned by the server key blob codec.
var (
	// ErrServerKeyBlob means a blob of the wrong size or with an unreadable key.
	ErrServerKeyBlob = errors.New("protocol: malformed server key blob")
	// ErrServerHost means a host that does not fit the address TLV.
	ErrServerHost = errors.New("protocol: server host does not fit the key blob")
)

// EncodeServerKeyBlob builds the blob for transport t from the server's
// public key (SPKI DER, or any form ParsePublicKey accepts), host (IPv4
// literal or domain name, may be empty) and port (0 = default). Like
// particle-cli, a host of only digits and dots is written as IPv4.
func EncodeServerKeyBlob(t Transport, key []byte, host string, port uint16) ([]byte, error) {
	l := blobLayout(t)
	der, err := CanonicalPublicKeyDER(key)
	if err != nil {
		return nil, err
	}
	if len(der) > l.addressOffset {
		return nil, fmt.Errorf("%w: key of %d bytes exceeds %d", ErrServerKeyBlob, len(der), l.addressOffset)
	}
	blob := make([]byte, l.size)
	for i := range blob {
		blob[i] = 0xFF
	}
	copy(blob, der)
	if host != "" {
		tlv, err := addressTLV(host, l.portOffset-l.addressOffset-2)
		if err != nil {
			return nil, err
		}
		copy(blob[l.addressOffset:], tlv)
	}
	if port != 0 {
		binary.BigEndian.PutUint16(blob[l.portOffset:], port)
	}
	return blob, nil
}

func addressTLV(host string, maxLen int) ([]byte, error) {
	if isDottedDigits(host) {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%w: %q is not an IPv4 address", ErrServerHost, host)
		}
		ip := a.As4()
		return append([]byte{AddressTypeIPv4, 4}, ip[:]...), nil
	}
	if len(host) > maxLen || len(host) > 255 {
		return nil, fmt.Errorf("%w: %q is longer than %d bytes", ErrServerHost, host, maxLen)
	}
	return append([]byte{AddressTypeDomain, byte(len(host))}, host...), nil
}

func isDottedDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// DecodeServerKeyBlob parses a blob for transport t. The key must parse as a
// public key; an invalid address TLV yields an empty Host, as on the device.
func DecodeServerKeyBlob(t Transport, blob []byte) (ServerKeyBlob, error) {
	l := blobLayout(t)
	var out ServerKeyBlob
	if len(blob) != l.size {
		return out, fmt.Errorf("%w: %d bytes, want %d", ErrServerKeyBlob, len(blob), l.size)
	}
	der, err := CanonicalPublicKeyDER(trimDER(blob[:l.addressOffset]))
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrServerKeyBlob, err)
	}
	out.KeyDER = der
	typ, n := blob[l.addressOffset], int(blob[l.addressOffset+1])
	val := blob[l.addressOffset+2:]
	switch {
	case typ == AddressTypeIPv4 && n == 4:
		out.Host = netip.AddrFrom4([4]byte(val[:4])).String()
	case typ == AddressTypeDomain && n > 0 && n <= l.portOffset-l.addressOffset-2:
		out.Host = string(val[:n])
	}
	if p := binary.BigEndian.Uint16(blob[l.portOffset:]); p != 0xFFFF {
		out.Port = p
	}
	return out, nil
}
