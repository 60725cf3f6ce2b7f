package sqlstore

import (
	"context"

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
