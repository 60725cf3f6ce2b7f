package dtls

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
)

// ErrNotForSession means a record is not one the session accepts: another
// epoch or connection ID, a replay, or a type that cannot be application traffic.
var ErrNotForSession = errors.New("dtls: record does not belong to the session")

// Session is the result of a server handshake: the keys and counters that
// protect application data in epoch 1 (docs/dtls.md, Server handshake). It
// is not safe for concurrent use.
type Session struct {
	// ServerCID is the connection ID the device puts on its records (nil
	// when none was negotiated).
	ServerCID []byte
	// ClientCID is the connection ID the server puts on its records (nil
	// when the device asked for none).
	ClientCID []byte
	// DeviceKey is the device's public key from its Certificate.
	DeviceKey *ecdsa.PublicKey
	// MasterSecret is the 48-byte master secret.
	MasterSecret []byte
	// Read opens the device's records; Write seals the server's.
	Read, Write *Cipher
	// ReadEpoch and WriteEpoch are the epochs of each direction (1).
	ReadEpoch, WriteEpoch uint16
	// WriteSeq is the next record sequence number the server uses.
	WriteSeq uint64
	// Replay is the anti-replay window for the device's records.
	Replay ReplayWindow
}

// sessionMem is a server handshake's Session with the master secret and
// the connection IDs its slices hold, in one allocation (deriveKeys makes
// it; the Ciphers stay apart, so that a holder can drop them).
type sessionMem struct {
	s      Session
	master [MasterSecretLen]byte
	cids   [2 * CIDLen]byte
}

// newSession copies the handshake's result into its Session, once the
// keys are derived (hs.mem is set).
func (hs *ServerHandshake) newSession() *Session {
	m := hs.mem
	m.s = Session{
		ServerCID: cloneInto(m.cids[:0:CIDLen], hs.serverCID), ClientCID: cloneInto(m.cids[CIDLen:CIDLen], hs.clientCID),
		DeviceKey: hs.devKey, MasterSecret: m.master[:],
		Read: hs.read, Write: hs.write, ReadEpoch: 1, WriteEpoch: 1,
		Replay: hs.replay,
	}
	return &m.s
}

// cloneInto is slices.Clone into buf's spare capacity when it fits: nil
// for nil, capacity len(b) either way.
func cloneInto(buf, b []byte) []byte {
	if b == nil {
		return nil
	}
	if len(b) > cap(buf)-len(buf) {
		return slices.Clone(b)
	}
	return slices.Clip(append(buf, b...))
}

// Seal appends one application data record carrying content to dst, in the
// CID record format when the device asked for a connection ID.
func (s *Session) Seal(dst, content []byte) ([]byte, error) {
	return s.SealType(dst, TypeApplicationData, content)
}

// SealType is Seal for another content type (an alert).
func (s *Session) SealType(dst []byte, typ ContentType, content []byte) ([]byte, error) {
	if s.WriteSeq > MaxSeq {
		return dst, ErrSeqOverflow
	}
	out, err := s.Write.Seal(dst, typ, s.WriteEpoch, s.WriteSeq, s.ClientCID, content)
	if err != nil {
		return dst, err
	}
	s.WriteSeq++
	return out, nil
}

// Open authenticates one record from the device and appends its content to
// dst, returning the real content type. It refuses records of another epoch,
// without the session's connection ID when one was negotiated, and replays.
func (s *Session) Open(dst []byte, rec *Record) ([]byte, ContentType, error) {
	out, typ, err := s.Peek(dst, rec)
	if err != nil {
		return dst, 0, err
	}
	s.Replay.Mark(rec.Header.Seq)
	return out, typ, nil
}

// Peek is Open without marking the record's sequence number as seen: a
// caller that keeps the record marks it (Replay.Mark), one that hands it
// on leaves it to be opened again.
func (s *Session) Peek(dst []byte, rec *Record) ([]byte, ContentType, error) {
	if rec.Header.Epoch != s.ReadEpoch {
		return dst, 0, fmt.Errorf("%w: epoch %d", ErrNotForSession, rec.Header.Epoch)
	}
	if (s.ServerCID != nil) != rec.Header.Type.HasCID() ||
		(s.ServerCID != nil && !hmac.Equal(rec.Header.CID, s.ServerCID)) {
		return dst, 0, fmt.Errorf("%w: connection ID", ErrNotForSession)
	}
	if !s.Replay.Check(rec.Header.Seq) {
		return dst, 0, fmt.Errorf("%w: replayed sequence number %d", ErrNotForSession, rec.Header.Seq)
	}
	return s.Read.Open(dst, rec)
}
