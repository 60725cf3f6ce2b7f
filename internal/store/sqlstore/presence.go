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
		// SQLite parses a statement on every Exec of its text: the
		// onlines (two texts, with and without a product) are prepared
		// once per batch there. In the resumptions after a 50,000-device
		// Gen 3 restart that parsing was 12% of the server's CPU. pgx
		// keeps its own cache of prepared statements by text.
		var onlines map[string]*sql.Stmt
		defer func() {
			for _, st := range onlines {
				st.Close()
			}
		}()
		for i := range updates {
			u := &updates[i]
			if u.Online != nil {
				query, args := onlineUpdate(u.DeviceID, *u.Online)
				if db.dialect == dialectPostgres {
					if _, err := tx.ExecContext(ctx, db.rebind(query), args...); err != nil {
						return err
					}
				} else {
					st := onlines[query]
					if st == nil {
						var err error
						if st, err = tx.PrepareContext(ctx, query); err != nil {
							return err
						}
						if onlines == nil {
							onlines = make(map[string]*sql.Stmt, 2)
						}
						onlines[query] = st
					}
					if _, err := st.ExecContext(ctx, args...); err != nil {
						return err
					}
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
