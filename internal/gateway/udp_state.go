package gateway

// Saved Gen 3 sessions (docs/device-protocol.md#39-the-dtls-transport, resumption): what a
// session needs to be resumed by a device that sends records on it with no
// handshake, also after a restart of the gateway, sealed at rest.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// seqReserve is how many record sequence numbers one save reserves: the
// saved session claims WriteSeq+seqReserve, so a restart after a crash
// continues above every number the crashed process may have used, and the
// store is written once per seqReserve records sent, never per record.
const seqReserve = 1 << 16

// stateVersion is the first byte of a saved session's plaintext.
const stateVersion = 1

// stateInfo labels the key and additional data of sealed sessions.
const stateInfo = "wick gen3 saved session v1"

// gen3DeviceIDLen is the length of the device ID in a Gen 3 Hello.
const gen3DeviceIDLen = 12

// errBadState means a saved session that does not open or parse.
var errBadState = errors.New("gateway: saved dtls session does not open")

// stateKey derives the AES-128 key that seals saved sessions from the
// server's P-256 key, which the gateway holds anyway: a stolen database
// alone does not reveal session keys, and a new server key (which every
// device must be given, ending its sessions anyway) retires them.
func stateKey(key *ecdsa.PrivateKey) ([]byte, error) {
	ek, err := key.ECDH()
	if err != nil {
		return nil, fmt.Errorf("gateway: udp key: %w", err)
	}
	k, err := hkdf.Key(sha256.New, ek.Bytes(), nil, stateInfo, 16)
	if err != nil {
		return nil, fmt.Errorf("gateway: derive session sealing key: %w", err)
	}
	return k, nil
}

// sealState seals a saved session bound to its connection ID:
// nonce (12) ‖ AES-128-GCM(version ‖ hello length (2) ‖ hello ‖ dtls session).
func (u *udpServer) sealState(cid cidKey, h *protocol.Hello, sess []byte) ([]byte, error) {
	hello := h.AppendBinary(nil)
	plain := make([]byte, 0, 3+len(hello)+len(sess))
	plain = append(plain, stateVersion)
	plain = binary.BigEndian.AppendUint16(plain, uint16(len(hello)))
	plain = append(plain, hello...)
	plain = append(plain, sess...)
	aead, err := u.aead()
	if err != nil {
		return nil, err
	}
	nonce := randomBytes(aead.NonceSize())
	return aead.Seal(nonce, nonce, plain, stateAD(cid)), nil
}

// openState opens what sealState sealed.
func (u *udpServer) openState(cid cidKey, sealed []byte) (protocol.Hello, *dtls.Session, error) {
	aead, err := u.aead()
	if err != nil {
		return protocol.Hello{}, nil, err
	}
	ns := aead.NonceSize()
	if len(sealed) < ns {
		return protocol.Hello{}, nil, errBadState
	}
	plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], stateAD(cid))
	if err != nil || len(plain) < 3 || plain[0] != stateVersion {
		return protocol.Hello{}, nil, errBadState
	}
	n := int(binary.BigEndian.Uint16(plain[1:3]))
	if 3+n > len(plain) {
		return protocol.Hello{}, nil, errBadState
	}
	h, err := protocol.ParseHello(plain[3 : 3+n])
	if err != nil {
		return protocol.Hello{}, nil, fmt.Errorf("%w: %w", errBadState, err)
	}
	sess, err := dtls.UnmarshalSession(plain[3+n:])
	if err != nil {
		return protocol.Hello{}, nil, fmt.Errorf("%w: %w", errBadState, err)
	}
	return h, sess, nil
}

func (u *udpServer) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(u.stateKey)
	if err != nil {
		return nil, fmt.Errorf("gateway: session sealing key: %w", err)
	}
	return cipher.NewGCM(b)
}

func stateAD(cid cidKey) []byte { return append([]byte(stateInfo), cid[:]...) }

// reserveAhead is the write sequence number the next save reserves up to.
// Called with s.wmu held (every writer of WriteSeq holds it).
func (c *udpConn) reserveAhead() uint64 {
	c.smu.Lock()
	defer c.smu.Unlock()
	sess, err := c.sessLocked()
	if err != nil {
		return 0
	}
	return min(sess.WriteSeq+seqReserve, dtls.MaxSeq)
}

// save writes the session to the store with its write sequence number
// raised to limit (0: the exact number; the session sends nothing more)
// and the Hello h. Called with s.wmu held, so that no record is sealed
// beyond a reservation before it is stored.
//
// Every save is conditional (store.DTLSSessions.ClaimDTLSSession): it
// replaces only the state this session last saved or restored (c.stored;
// the first save of a handshaken session inserts a new row), so that a
// session another process restored meanwhile (the device moved to another
// node of a cluster, or was reached there) is never overwritten by this
// one's reservation. A save that loses fails with errClaimed and ends the
// session: it seals nothing more (sealAndSend), is not saved again and
// leaves the row to the other process. What it sealed is below the
// number its last save reserved, where the other process started.
func (c *udpConn) save(s *session, h *protocol.Hello, limit uint64) error {
	return c.saveState(s, h, limit, false)
}

// saveEnded is save for a session that ended: the save may go in a batch
// with other sessions' (udp_save_batch.go), and returns once the batch is
// stored, so the caller's order is save's. At a shutdown it returns once
// the save is queued (errSaveQueued): the sessions' goroutines end at once
// and the gateway's sessions count waits for the save, whose outcome is
// applied and logged when its batch is written.
func (c *udpConn) saveEnded(s *session, h *protocol.Hello, limit uint64) error {
	return c.saveState(s, h, limit, true)
}

// errClaimed means that the stored state of the session is no longer the
// one this process last saved or read (another process restored it
// first): this one must not continue it.
var errClaimed = errors.New("gateway: saved dtls session restored by another process")

// errSaveQueued is saveEnded's answer at a shutdown: the save is queued in
// a batch, its outcome logged when written (logEndedSave).
var errSaveQueued = errors.New("gateway: dtls session save queued")

// saveState is save; with batched set the save goes through the
// gateway's saveBatcher when the store saves batches. A session reached by
// the gateway that has not yet heard its device keeps the time of the
// save it was restored from (udpConn.keepSavedAt), so that a device that
// is gone does not look recent to the next restart's sweep.
func (c *udpConn) saveState(s *session, h *protocol.Hello, limit uint64, batched bool) error {
	c.smu.Lock()
	if c.lost {
		c.smu.Unlock()
		return errClaimed
	}
	sess, err := c.sessLocked()
	if err != nil {
		c.smu.Unlock()
		return fmt.Errorf("gateway: save dtls session: %w", err)
	}
	old := c.stored
	cp := *sess
	cp.WriteSeq = max(cp.WriteSeq, limit)
	b, err := cp.MarshalBinary()
	c.smu.Unlock()
	if err != nil {
		return fmt.Errorf("gateway: save dtls session: %w", err)
	}
	hh := *h
	hh.DeviceID = nil
	if id, err := protocol.ParseDeviceID(c.devID); err == nil {
		hh.DeviceID = id[:]
	}
	sealed, err := c.u.sealState(c.cid, &hh, b)
	if err != nil {
		return err
	}
	st := store.DTLSSession{CID: c.cid[:], DeviceID: c.devID, State: sealed, Addr: c.addrNow().String()}
	if ms := c.keepSavedAt.Load(); ms != 0 {
		st.UpdatedAt = time.UnixMilli(ms)
	}
	var won bool
	if bs, ok := c.u.saved.(store.DTLSSessionBatches); ok && batched {
		g := s.g
		if g.isClosed() {
			// Shutdown waits for the gateway's sessions; this save
			// counts as one until its batch is written. The session
			// seals nothing more meanwhile: the sockets are closed, and
			// a record past the reservation stored before (c.seqLimit,
			// raised only once this one is stored) would need a save of
			// its own from c.stored, which this one or it would lose.
			g.sessions.Add(1)
			c.u.batch.enqueue(bs, st, old, true, func(won bool, err error) {
				defer g.sessions.Done()
				c.logEndedSave(s, c.saved(s, sealed, limit, won, err))
			})
			return errSaveQueued
		}
		// The batch writer has its own deadline per transaction.
		won, err = c.u.batch.save(bs, st, old)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		won, err = c.u.saved.ClaimDTLSSession(ctx, st, old)
		cancel()
	}
	return c.saved(s, sealed, limit, won, err)
}

// saved applies the outcome of a save of state with limit (saveState):
// the state stored and the reservation raised, or, lost to another
// process, the session ended and errClaimed.
func (c *udpConn) saved(s *session, state []byte, limit uint64, won bool, err error) error {
	if err != nil {
		return fmt.Errorf("gateway: save dtls session: %w", err)
	}
	c.smu.Lock()
	if !won {
		c.lost = true
		c.smu.Unlock()
		c.persist.Store(false)
		s.close(reasonClaimed)
		return errClaimed
	}
	c.stored = state
	if limit > 0 {
		c.seqLimit = max(c.seqLimit, limit)
	}
	c.smu.Unlock()
	s.g.stats.udpSaves.Add(1)
	return nil
}

// logEndedSave logs a failed save of an ended session.
func (c *udpConn) logEndedSave(s *session, err error) {
	switch {
	case err == nil, errors.Is(err, errSaveQueued):
	case errors.Is(err, errClaimed):
		s.g.log.Info("gateway: saved dtls session restored by another process; not saved", "device", s.id)
	default:
		s.g.log.Warn("gateway: save dtls session", "device", s.id, "err", err)
	}
}

// restore resumes a saved session (docs/device-protocol.md#39-the-dtls-transport, resumption):
// the device sent a record on a connection ID no session in memory has.
// The device must still exist with the key the session was made with.
func (c *udpConn) restore(s *session) error {
	g, u := s.g, c.u
	s.deadline = s.start.Add(g.cfg.HandshakeTimeout)
	defer c.lookupDone()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	st, err := u.saved.DTLSSession(ctx, c.cid[:])
	if errors.Is(err, store.ErrNotFound) {
		u.noteMiss(c.cid)
		g.stats.udpUnknownCID.Add(1)
		s.close("unknown connection id")
		return errUnknownCID
	}
	if err != nil {
		s.close(reasonStore)
		return fmt.Errorf("gateway: look up dtls session: %w", err)
	}
	refuse := func(err error) error {
		_, _ = u.saved.DeleteDTLSSessionState(ctx, c.cid[:], st.State)
		u.noteMiss(c.cid)
		s.close("resumption refused")
		return s.refused(err)
	}
	h, sess, err := u.openState(c.cid, st.State)
	if err != nil {
		return refuse(fmt.Errorf("%w: %w", errUnknownDevice, err))
	}
	d, err := g.store.DeviceByID(ctx, st.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(errUnknownDevice)
	}
	if err != nil {
		s.close(reasonStore)
		return fmt.Errorf("gateway: look up device: %w", err)
	}
	if d.Denied {
		return refuse(errDenied)
	}
	der, err := x509.MarshalPKIXPublicKey(sess.DeviceKey)
	if err != nil || d.KeyAlgorithm != store.KeyECC || string(der) != string(d.PublicKey) {
		return refuse(errKeyMismatch)
	}
	c.smu.Lock()
	c.sess, c.stored = sess, st.State
	c.smu.Unlock()
	c.devID, c.product, c.resumedState = d.ID, d.ProductID, true
	s.id, s.storedProduct, s.hello = d.ID, d.ProductID, h
	s.remember(d)
	c.persist.Store(true)
	if c.reaching {
		c.keepSavedAt.Store(st.UpdatedAt.UnixMilli())
	}
	// The claim: of two processes restoring this state at once (a device
	// resuming on one node while another reaches it), one goes on; both
	// going on from one state would seal records under the same nonces.
	s.wmu.Lock()
	err = c.save(s, &h, c.reserveAhead())
	s.wmu.Unlock()
	if errors.Is(err, errClaimed) {
		g.log.Info("gateway: saved dtls session restored elsewhere", "device", d.ID)
		s.close(reasonClaimed)
		return err
	}
	if err != nil {
		// Without a stored reservation a later restart could reuse
		// sequence numbers: let the device make a new session.
		s.close(reasonStore)
		return err
	}
	c.newCounters(s)
	g.stats.udpResumptions.Add(1)
	if c.reaching {
		if err := c.ping(s); err != nil {
			return err
		}
	}
	return nil
}

// lookupDone releases c's place among the running resume lookups.
func (c *udpConn) lookupDone() {
	c.u.mu.Lock()
	defer c.u.mu.Unlock()
	if c.resuming {
		c.resuming = false
		c.u.lookups--
	}
}

// pruneSavedSessions removes saved sessions not used for maxAge.
func (u *udpServer) pruneSavedSessions(maxAge time.Duration) {
	if u.saved == nil || maxAge <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	n, err := u.saved.DeleteDTLSSessionsBefore(ctx, time.Now().Add(-maxAge))
	if err != nil {
		u.g.log.Warn("gateway: prune saved dtls sessions", "err", err)
		return
	}
	if n > 0 {
		u.g.log.Info("gateway: pruned saved dtls sessions", "count", n)
	}
}
