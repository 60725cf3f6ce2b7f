package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// SetDeviceIP sets the device's last IP if sessionID is still its session
// (store.DeviceAddresses), and reports whether it did.
func (db *DB) SetDeviceIP(ctx context.Context, id, sessionID, ip string) (bool, error) {
	if sessionID == "" {
		return false, nil
	}
	res, err := db.exec(ctx, db.w, `UPDATE devices SET last_ip = ? WHERE id = ? AND session_id = ?`, ip, id, sessionID)
	if err != nil {
		return false, wrap(err, "set device %q ip", id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "set device %q ip", id)
	}
	return n == 1, nil
}

// LatestDTLSSession returns the device's most recently saved DTLS session
// (store.DeviceDTLSSessions) or store.ErrNotFound.
func (db *DB) LatestDTLSSession(ctx context.Context, deviceID string) (*store.DTLSSession, error) {
	var (
		s       store.DTLSSession
		updated int64
	)
	err := db.queryRow(ctx, `SELECT cid, device_id, state, addr, updated_at FROM dtls_sessions
		WHERE device_id = ? ORDER BY updated_at DESC LIMIT 1`, deviceID).
		Scan(&s.CID, &s.DeviceID, &s.State, &s.Addr, &updated)
	if err != nil {
		return nil, wrap(err, "latest DTLS session of device %q", deviceID)
	}
	s.UpdatedAt = fromMS(updated)
	return &s, nil
}

// RecentDTLSSessions returns a page of the latest saved sessions of
// offline devices saved at or after since (store.DeviceDTLSSessions),
// ordered by updated_at and cid, after the session after. The page is
// found through the updated_at index (a range, not a scan of every
// session), and each row costs two index lookups: its device's newer
// sessions and its device's presence.
func (db *DB) RecentDTLSSessions(ctx context.Context, since time.Time, after *store.DTLSSession, limit int) ([]store.DTLSSession, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT s.cid, s.device_id, s.addr, s.updated_at FROM dtls_sessions s
		JOIN devices d ON d.id = s.device_id AND d.online = FALSE
		WHERE s.updated_at >= ?`
	args := []any{toMS(since)}
	if after != nil {
		// The range starts at after's time, not at since, so that the
		// index range does too: with the OR alone each page would walk the
		// index from since, and listing n sessions would cost n²/limit.
		ms := toMS(after.UpdatedAt)
		args[0] = max(args[0].(int64), ms)
		q += ` AND (s.updated_at > ? OR (s.updated_at = ? AND s.cid > ?))`
		args = append(args, ms, ms, after.CID)
	}
	q += ` AND NOT EXISTS (SELECT 1 FROM dtls_sessions n WHERE n.device_id = s.device_id
			AND (n.updated_at > s.updated_at OR (n.updated_at = s.updated_at AND n.cid > s.cid)))
		ORDER BY s.updated_at, s.cid LIMIT ?`
	args = append(args, limit)
	var out []store.DTLSSession
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var (
			s       store.DTLSSession
			updated int64
		)
		if err := rows.Scan(&s.CID, &s.DeviceID, &s.Addr, &updated); err != nil {
			return err
		}
		s.UpdatedAt = fromMS(updated)
		out = append(out, s)
		return nil
	}, q, args...)
	if err != nil {
		return nil, wrap(err, "recent DTLS sessions")
	}
	return out, nil
}
