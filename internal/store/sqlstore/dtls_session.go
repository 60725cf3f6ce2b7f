package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
	lock := ""
	if db.dialect == dialectPostgres {
		lock = " FOR SHARE"
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM devices WHERE id = ?`+lock), s.DeviceID).Scan(&one); err != nil {
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

// SaveDTLSSessions saves ss in one transaction
// (store.DTLSSessionBatches), each as SaveDTLSSession does: the device row
// found (and share-locked on PostgreSQL) before its session is written.
// A session whose device is absent is left out and reported unsaved.
func (db *DB) SaveDTLSSessions(ctx context.Context, ss []store.DTLSSession) ([]bool, error) {
	saved := make([]bool, len(ss))
	if len(ss) == 0 {
		return saved, nil
	}
	for _, s := range ss {
		if len(s.CID) == 0 {
			return nil, fmt.Errorf("sqlstore: save DTLS sessions: empty connection ID of device %q", s.DeviceID)
		}
	}
	lock := ""
	if db.dialect == dialectPostgres {
		lock = " FOR SHARE"
	}
	at0 := now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		find, err := tx.PrepareContext(ctx, db.rebind(`SELECT 1 FROM devices WHERE id = ?`+lock))
		if err != nil {
			return err
		}
		defer find.Close()
		put, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO dtls_sessions (cid, device_id, state, addr, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (cid) DO UPDATE SET device_id = excluded.device_id, state = excluded.state,
				addr = excluded.addr, updated_at = excluded.updated_at`))
		if err != nil {
			return err
		}
		defer put.Close()
		for i, s := range ss {
			var one int
			err := find.QueryRowContext(ctx, s.DeviceID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			state := s.State
			if state == nil {
				state = []byte{}
			}
			at := s.UpdatedAt
			if at.IsZero() {
				at = at0
			}
			if _, err := put.ExecContext(ctx, s.CID, s.DeviceID, state, s.Addr, toMS(at)); err != nil {
				return err
			}
			saved[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "save %d DTLS sessions", len(ss))
	}
	return saved, nil
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
