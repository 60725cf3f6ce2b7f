package dtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// sessionStateVersion is the first byte of a saved session; a new layout
// gets a new number and UnmarshalSession refuses the ones it does not know.
const sessionStateVersion = 1

// ErrBadSessionState means saved session bytes are not a session this
// package wrote: another version, a wrong length or an invalid field.
var ErrBadSessionState = errors.New("dtls: bad saved session")

// sessionFixedLen is the length of everything but the variable fields:
// version, master secret, two keys and IVs, two epochs, the write sequence
// number and the replay window.
const sessionFixedLen = 1 + MasterSecretLen + 2*(KeyLen+ImplicitIVLen) + 2 + 2 + 8 + 8 + 8

// MarshalBinary saves what a resumed session needs so that it survives a
// process restart (docs/dtls.md, Saving a session): both directions' keys
// and IVs, the master secret, the epochs, the next write sequence number,
// the replay window, both connection IDs and the device's public key. The
// result holds secrets; store it as such. Save it again after sending
// records, since a restored session must never reuse a sequence number.
func (s *Session) MarshalBinary() ([]byte, error) {
	if s.Read == nil || s.Write == nil || len(s.MasterSecret) != MasterSecretLen {
		return nil, errors.New("dtls: session has no keys to save")
	}
	if s.WriteSeq > MaxSeq {
		return nil, ErrSeqOverflow
	}
	for _, cid := range [][]byte{s.ServerCID, s.ClientCID} {
		if len(cid) != 0 && len(cid) != CIDLen {
			return nil, ErrBadCID
		}
	}
	b := make([]byte, 0, sessionFixedLen+2+2*CIDLen+2+len(p256SPKIPrefix)+p256PointLen)
	b = append(b, sessionStateVersion)
	b = append(b, s.MasterSecret...)
	b = append(b, s.Read.key[:]...)
	b = append(b, s.Read.iv[:]...)
	b = append(b, s.Write.key[:]...)
	b = append(b, s.Write.iv[:]...)
	b = binary.BigEndian.AppendUint16(b, s.ReadEpoch)
	b = binary.BigEndian.AppendUint16(b, s.WriteEpoch)
	b = binary.BigEndian.AppendUint64(b, s.WriteSeq)
	latest, bitmap := s.Replay.State()
	b = binary.BigEndian.AppendUint64(b, latest)
	b = binary.BigEndian.AppendUint64(b, bitmap)
	b = appendVec8(b, s.ServerCID)
	b = appendVec8(b, s.ClientCID)
	return appendDeviceKey(b, s.DeviceKey)
}

// The DER of a P-256 SubjectPublicKeyInfo (RFC 5480) is this prefix and
// the uncompressed point, 0x04 X Y:
//
//	30 59                          SEQUENCE, 89 bytes
//	   30 13                       SEQUENCE, 19 bytes: the algorithm
//	      06 07 2a8648ce3d0201     OID id-ecPublicKey
//	      06 08 2a8648ce3d030107   OID prime256v1
//	   03 42 00                    BIT STRING, 66 bytes, no unused bits
//	      04 X(32) Y(32)
const (
	p256SPKIPrefix = "\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00"
	p256PointLen   = 65
)

// appendDeviceKey appends the device key as a 16-bit length and its
// SubjectPublicKeyInfo DER (nothing but the length 0 for no key). A P-256
// key, every Particle device's, is written directly: the same bytes as
// x509.MarshalPKIXPublicKey at an eighth of its cost (every save of a
// session marshals it; a shutdown saves tens of thousands at once).
func appendDeviceKey(b []byte, key *ecdsa.PublicKey) ([]byte, error) {
	if key == nil {
		return appendVec16(b, nil), nil
	}
	if key.Curve == elliptic.P256() {
		if point, err := key.Bytes(); err == nil && len(point) == p256PointLen {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p256SPKIPrefix)+p256PointLen))
			return append(append(b, p256SPKIPrefix...), point...), nil
		}
	}
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("dtls: save session: %w", err)
	}
	return appendVec16(b, spki), nil
}

// UnmarshalSession restores a session saved with MarshalBinary. It is
// strict: an unknown version, trailing bytes, a connection ID that is
// neither absent nor CIDLen bytes, a sequence number over 48 bits, epoch 0,
// a replay window State cannot produce or a device key that is not P-256
// are refused with ErrBadSessionState.
func UnmarshalSession(b []byte) (*Session, error) {
	if len(b) < sessionFixedLen || b[0] != sessionStateVersion {
		return nil, fmt.Errorf("%w: version or length", ErrBadSessionState)
	}
	r := reader{b: b[1:]}
	s := &Session{MasterSecret: append([]byte(nil), r.bytes(MasterSecretLen)...)}
	readKey, readIV := r.bytes(KeyLen), r.bytes(ImplicitIVLen)
	writeKey, writeIV := r.bytes(KeyLen), r.bytes(ImplicitIVLen)
	s.ReadEpoch, s.WriteEpoch = r.u16(), r.u16()
	s.WriteSeq = binary.BigEndian.Uint64(r.bytes(8))
	latest := binary.BigEndian.Uint64(r.bytes(8))
	bitmap := binary.BigEndian.Uint64(r.bytes(8))
	serverCID, clientCID := r.vec8(), r.vec8()
	spki := r.vec16()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSessionState, err)
	}
	if s.WriteSeq > MaxSeq || latest > MaxSeq {
		return nil, fmt.Errorf("%w: sequence number over 48 bits", ErrBadSessionState)
	}
	if (bitmap == 0 && latest != 0) || (bitmap != 0 && bitmap&1 == 0) {
		return nil, fmt.Errorf("%w: replay window", ErrBadSessionState)
	}
	if s.ReadEpoch == 0 || s.WriteEpoch == 0 {
		return nil, fmt.Errorf("%w: epoch 0 is not protected", ErrBadSessionState)
	}
	for _, cid := range []*[]byte{&serverCID, &clientCID} {
		switch len(*cid) {
		case 0:
			*cid = nil
		case CIDLen:
			*cid = append([]byte(nil), *cid...)
		default:
			return nil, fmt.Errorf("%w: %w", ErrBadSessionState, ErrBadCID)
		}
	}
	s.ServerCID, s.ClientCID = serverCID, clientCID
	if len(spki) != 0 {
		pub, err := ParseDevicePublicKey(spki)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSessionState, err)
		}
		s.DeviceKey = pub
	}
	var err error
	if s.Read, err = NewCipher(readKey, readIV); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSessionState, err)
	}
	if s.Write, err = NewCipher(writeKey, writeIV); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSessionState, err)
	}
	s.Replay = RestoreReplayWindow(latest, bitmap)
	return s, nil
}

// MarkMoveSession turns a sealed connection-ID record into the record a
// device sends on a resumed session: the same bytes with TypeMoveSession as
// the outer type, which the additional data ignores (docs/dtls.md, Record
// layout). It refuses anything that is not one TypeCID record.
func MarkMoveSession(record []byte) error {
	rec, rest, err := ParseRecord(record)
	if err != nil {
		return err
	}
	if rec.Header.Type != TypeCID || len(rest) != 0 {
		return errors.New("dtls: move session: not one connection-ID record")
	}
	record[0] = byte(TypeMoveSession)
	return nil
}
