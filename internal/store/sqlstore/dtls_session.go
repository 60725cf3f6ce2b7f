package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// SaveDTLSSession inserts s or replaces the session with its CID, in a
// transaction that first finds the device: on PostgreSQL it holds a share
// lock on the device row, so that DeleteDevice, which deletes the device
// before its sessions, cannot leave this session behind. It fails with
// store.ErrNotFound when the device is absent.
func (db *DB) SaveDTLSSession(ctx context.Context, s store.DTLSSession) error {
	if len(s.CID) == 0 {
		return fmt.Errorf("sqlstore: save DTLS session of device %q: empty connection ID", s.DeviceID)
	}
	if s.State == nil {
		s.State = []byte{}
	}
	at := s.UpdatedAt
	if at.IsZero() {
		at = now()
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, db.rebind(findDeviceToSave(db)), s.DeviceID).Scan(&one); err != nil {
			return err
		}
		_, err := db.exec(ctx, tx, `INSERT INTO dtls_sessions (cid, device_id, state, addr, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (cid) DO UPDATE SET device_id = excluded.device_id, state = excluded.state,
				addr = excluded.addr, updated_at = excluded.updated_at`,
			s.CID, s.DeviceID, s.State, s.Addr, toMS(at))
		return err
	})
	return wrap(err, "save DTLS session %x of device %q", s.CID, s.DeviceID)
}

// The conditional writes of saved sessions (ClaimDTLSSession): a new
// session goes in only when its CID is free; a saved one is replaced only
// when its stored state is still the one the writer last read or wrote. A
// sealed state carries a random nonce, so no two saves store the same
// bytes and comparing them is an exact compare-and-set: one statement,
// atomic on both databases (on PostgreSQL a concurrent writer of the row
// waits, then finds the state changed).
const (
	insertNewDTLSSession = `INSERT INTO dtls_sessions (cid, device_id, state, addr, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (cid) DO NOTHING`
	replaceDTLSSessionState = `UPDATE dtls_sessions SET state = ?, addr = ?, updated_at = ?
		WHERE cid = ? AND device_id = ? AND state = ?`
)

// ClaimDTLSSession saves s only when the session's stored state is still
// old, or, old nil, only when no session has s.CID and the device exists
// (found, and share-locked on PostgreSQL, as SaveDTLSSession does); it
// reports whether it saved (store.DTLSSessions).
func (db *DB) ClaimDTLSSession(ctx context.Context, s store.DTLSSession, old []byte) (bool, error) {
	if len(s.CID) == 0 {
		return false, fmt.Errorf("sqlstore: claim DTLS session of device %q: empty connection ID", s.DeviceID)
	}
	state, at := s.State, s.UpdatedAt
	if state == nil {
		state = []byte{}
	}
	if at.IsZero() {
		at = now()
	}
	var (
		res sql.Result
		err error
	)
	if old != nil {
		// The row exists only while its device does (DeleteDevice
		// removes both): no device lookup.
		res, err = db.exec(ctx, db.w, replaceDTLSSessionState, state, s.Addr, toMS(at), s.CID, s.DeviceID, old)
	} else {
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			var one int
			if err := tx.QueryRowContext(ctx, db.rebind(findDeviceToSave(db)), s.DeviceID).Scan(&one); err != nil {
				return err
			}
			var err error
			res, err = db.exec(ctx, tx, insertNewDTLSSession, s.CID, s.DeviceID, state, s.Addr, toMS(at))
			return err
		})
	}
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return false, wrap(err, "claim DTLS session %x of device %q", s.CID, s.DeviceID)
	}
	return n == 1, nil
}

// findDeviceToSave finds the device of a session about to be saved: on
// PostgreSQL it share-locks the row, so that DeleteDevice, which deletes
// the device before its sessions, cannot leave the session behind.
func findDeviceToSave(db *DB) string {
	if db.dialect == dialectPostgres {
		return `SELECT 1 FROM devices WHERE id = ? FOR SHARE`
	}
	return `SELECT 1 FROM devices WHERE id = ?`
}

// DTLSSession returns the session with that connection ID or
// store.ErrNotFound.
func (db *DB) DTLSSession(ctx context.Context, cid []byte) (*store.DTLSSession, error) {
	var (
		s       store.DTLSSession
		updated int64
	)
	err := db.queryRow(ctx, `SELECT cid, device_id, state, addr, updated_at FROM dtls_sessions WHERE cid = ?`, cid).
		Scan(&s.CID, &s.DeviceID, &s.State, &s.Addr, &updated)
	if err != nil {
		return nil, wrap(err, "DTLS session %x", cid)
	}
	s.UpdatedAt = fromMS(updated)
	return &s, nil
}

// DeleteDTLSSession removes the session with that connection ID, if any.
func (db *DB) DeleteDTLSSession(ctx context.Context, cid []byte) error {
	_, err := db.exec(ctx, db.w, `DELETE FROM dtls_sessions WHERE cid = ?`, cid)
	return wrap(err, "delete DTLS session %x", cid)
}

// DeleteDTLSSessionState removes the session with that connection ID only
// when its stored state is still state, and reports whether it did.
func (db *DB) DeleteDTLSSessionState(ctx context.Context, cid, state []byte) (bool, error) {
	if state == nil {
		state = []byte{}
	}
	res, err := db.exec(ctx, db.w, `DELETE FROM dtls_sessions WHERE cid = ? AND state = ?`, cid, state)
	if err != nil {
		return false, wrap(err, "delete DTLS session %x", cid)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "delete DTLS session %x", cid)
	}
	return n == 1, nil
}

// DeleteDeviceDTLSSessions removes every session of the device.
func (db *DB) DeleteDeviceDTLSSessions(ctx context.Context, deviceID string) error {
	_, err := db.exec(ctx, db.w, `DELETE FROM dtls_sessions WHERE device_id = ?`, deviceID)
	return wrap(err, "delete DTLS sessions of device %q", deviceID)
}

// DeleteDTLSSessionsBefore removes the sessions last saved before t and
// returns how many went.
func (db *DB) DeleteDTLSSessionsBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM dtls_sessions WHERE updated_at < ?`, toMS(t))
	if err != nil {
		return 0, wrap(err, "delete DTLS sessions before %v", t)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(err, "delete DTLS sessions before %v", t)
	}
	return int(n), nil
}
