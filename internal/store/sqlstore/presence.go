package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var _ store.PresenceBatcher = (*DB)(nil)

// ApplyPresence applies presence updates in order in one transaction:
// each update's online (SetDeviceOnline's statement), then its offline
// (SetDeviceOffline's), and all last-heard times in one statement at the
// end (TouchDevices'). One transaction for a batch costs one commit where
// the same updates one by one cost one each, which is what lets a
// reconnect storm's presence keep up with its handshakes.
func (db *DB) ApplyPresence(ctx context.Context, updates []store.PresenceUpdate) ([]bool, error) {
	applied := make([]bool, len(updates))
	var heard map[string]time.Time
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var off *sql.Stmt
		for i := range updates {
			u := &updates[i]
			if u.Online != nil {
				query, args := onlineUpdate(u.DeviceID, *u.Online)
				if _, err := tx.ExecContext(ctx, db.rebind(query), args...); err != nil {
					return err
				}
			}
			if u.OfflineSession != "" {
				if off == nil {
					var err error
					if off, err = tx.PrepareContext(ctx, db.rebind(offlineUpdate)); err != nil {
						return err
					}
					defer off.Close()
				}
				at := u.OfflineAt
				if at.IsZero() {
					at = now()
				}
				ms := toMS(at)
				res, err := off.ExecContext(ctx, ms, ms, u.DeviceID, u.OfflineSession)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				applied[i] = n > 0
			}
			if !u.LastHeard.IsZero() {
				if heard == nil {
					heard = make(map[string]time.Time)
				}
				if t, ok := heard[u.DeviceID]; !ok || u.LastHeard.After(t) {
					heard[u.DeviceID] = u.LastHeard
				}
			}
		}
		return db.touchDevices(ctx, tx, heard)
	})
	if err != nil {
		return nil, wrap(err, "apply %d presence updates", len(updates))
	}
	return applied, nil
}
