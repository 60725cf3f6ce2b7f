package store

import (
	"context"
	"crypto/sha256"
	"time"
)

// KeyFingerprint returns the SHA-256 of a device key's canonical SPKI DER:
// what the device key index (Devices.DeviceByPublicKey) stores. The bytes
// are hashed as given; callers canonicalize the key first.
func KeyFingerprint(spkiDER []byte) []byte {
	sum := sha256.Sum256(spkiDER)
	return sum[:]
}

// DTLSSession is the saved state of one DTLS session of a Gen 3 device,
// found by its connection ID, so that a device that resumes its session
// (sends records on it with no handshake) is recognized even by another
// gateway process or after a restart.
type DTLSSession struct {
	// CID is the connection ID the server chose; unique.
	CID []byte
	// DeviceID is the device the session belongs to.
	DeviceID string
	// State is opaque to the store: the gateway decides what it holds and
	// seals it before it arrives here.
	State []byte
	// Addr is the device's last address, as "host:port"; "" when unknown.
	Addr string
	// UpdatedAt is when the session was last saved; zero means now.
	UpdatedAt time.Time
}

// DTLSSessions holds saved DTLS sessions.
//
// Besides these methods, Devices.DeleteDevice removes the device's
// sessions, and Devices.ProvisionDevice removes them when it changes the
// device's key, in the same transaction: a session made with an old key
// must not outlive it.
type DTLSSessions interface {
	// SaveDTLSSession inserts s or replaces the session with the same CID,
	// setting UpdatedAt to now when zero. It fails with ErrNotFound when
	// the device s.DeviceID is absent, so that a session saved as its
	// device is deleted does not outlive it. It is unconditional (tools,
	// tests); a gateway saves with ClaimDTLSSession.
	SaveDTLSSession(ctx context.Context, s DTLSSession) error
	// DTLSSession returns the session with that CID or ErrNotFound.
	DTLSSession(ctx context.Context, cid []byte) (*DTLSSession, error)
	// DeleteDTLSSession removes the session with that CID; removing an
	// absent one is not an error.
	DeleteDTLSSession(ctx context.Context, cid []byte) error
	// DeleteDeviceDTLSSessions removes every session of the device.
	DeleteDeviceDTLSSessions(ctx context.Context, deviceID string) error
	// DeleteDTLSSessionsBefore removes the sessions last saved before t and
	// returns how many went.
	DeleteDTLSSessionsBefore(ctx context.Context, t time.Time) (int, error)
	// ClaimDTLSSession saves s only when the stored state of the session
	// s.CID is still old (old nil: only when no session has s.CID, failing
	// with ErrNotFound when the device is absent), and reports whether it
	// did: a compare-and-set, so that of several processes continuing one
	// saved session (restoring it, or extending what they saved of it)
	// one goes on and no two seal under the same sequence numbers.
	ClaimDTLSSession(ctx context.Context, s DTLSSession, old []byte) (bool, error)
	// DeleteDTLSSessionState removes the session with that CID only when
	// its stored state is still state, and reports whether it did.
	DeleteDTLSSessionState(ctx context.Context, cid, state []byte) (bool, error)
}

// DTLSSessionBatches is implemented by stores that save many DTLS sessions
// in one transaction: a gateway that shuts down with tens of thousands of
// Gen 3 sessions saves them in batches, not one transaction each.
type DTLSSessionBatches interface {
	// SaveDTLSSessions saves each session of ss as ClaimDTLSSession(ss[i],
	// old[i]) does (len(old) == len(ss)), all in one transaction, and
	// reports which were saved: saved[i] is false when the stored state of
	// ss[i].CID is not old[i] or, old[i] nil, when the CID is taken or the
	// device absent (that session alone is left out). On an error none is
	// saved. Sessions of one CID in ss are claimed in their order, each
	// from what the earlier ones left, exactly as one by one.
	SaveDTLSSessions(ctx context.Context, ss []DTLSSession, old [][]byte) (saved []bool, err error)
}
