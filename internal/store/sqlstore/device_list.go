package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
)

// The store keeps a row version per device (migration 0012): triggers give
// every inserted or updated row the next value of one counter (a sequence
// on PostgreSQL), so a version never repeats for a device ID, not even
// after the device is deleted and provisioned again, and no write to a
// device, whatever statement or node makes it, can leave it unchanged.

var _ store.DeviceLists = (*DB)(nil)

// idsPerQuery bounds the IDs of one DevicesByIDs query (SQLite allows
// 32,766 parameters; PostgreSQL 65,535).
const idsPerQuery = 500

// DeviceVersionsByOwner lists the IDs and row versions of a user's
// devices in the order of DevicesByOwner.
func (db *DB) DeviceVersionsByOwner(ctx context.Context, userID string) ([]store.DeviceVersion, error) {
	if userID == "" {
		return nil, nil
	}
	out, err := db.deviceVersions(ctx, `SELECT id, row_version FROM devices WHERE owner_id = ?`+deviceOrder, userID)
	return out, wrap(err, "device versions of user %q", userID)
}

// DeviceVersionsByCustomer lists the IDs and row versions of a customer's
// devices in the order of DevicesByCustomer.
func (db *DB) DeviceVersionsByCustomer(ctx context.Context, customerID string) ([]store.DeviceVersion, error) {
	if customerID == "" {
		return nil, nil
	}
	out, err := db.deviceVersions(ctx, `SELECT id, row_version FROM devices WHERE customer_id = ?`+deviceOrder, customerID)
	return out, wrap(err, "device versions of customer %q", customerID)
}

// deviceVersions runs a query of (id, row_version) rows.
func (db *DB) deviceVersions(ctx context.Context, query string, args ...any) ([]store.DeviceVersion, error) {
	var out []store.DeviceVersion
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var v store.DeviceVersion
		if err := rows.Scan(&v.ID, &v.Version); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

var _ store.DeviceRowVersions = (*DB)(nil)

// DeviceVersion returns the row version of device id, or store.ErrNotFound.
func (db *DB) DeviceVersion(ctx context.Context, id string) (int64, error) {
	var v int64
	err := db.queryRow(ctx, `SELECT row_version FROM devices WHERE id = ?`, id).Scan(&v)
	if err != nil {
		return 0, wrap(err, "device version %q", id)
	}
	return v, nil
}

// DevicesByIDs returns the devices of ids that exist, with their row
// versions, in no particular order.
func (db *DB) DevicesByIDs(ctx context.Context, ids []string) ([]store.VersionedDevice, error) {
	var out []store.VersionedDevice
	for len(ids) > 0 {
		n := min(len(ids), idsPerQuery)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		query := `SELECT row_version, ` + deviceColumns + ` FROM devices WHERE id IN (?` +
			strings.Repeat(", ?", n-1) + `)`
		rows, err := db.r.QueryContext(ctx, db.rebind(query), args...)
		if err != nil {
			return nil, wrap(err, "devices by ID")
		}
		for rows.Next() {
			var v int64
			d, err := scanDevice(versionScanner{rows, &v})
			if err != nil {
				rows.Close()
				return nil, wrap(err, "devices by ID")
			}
			out = append(out, store.VersionedDevice{Device: *d, Version: v})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap(err, "devices by ID")
		}
		ids = ids[n:]
	}
	return out, nil
}

// versionScanner scans a leading row_version column into v and the rest
// of the row, deviceColumns, as scanDevice asks.
type versionScanner struct {
	rows *sql.Rows
	v    *int64
}

// Scan implements rowScanner.
func (s versionScanner) Scan(dest ...any) error {
	return s.rows.Scan(append([]any{s.v}, dest...)...)
}

var _ store.DeviceListStamps = (*DB)(nil)

// DeviceListStampByOwner returns the stamp of a user's device list. Only
// SQLite's stamps are exact: its one writer assigns versions in commit
// order, while PostgreSQL's sequence hands them out before commit, so a
// later version may commit first.
func (db *DB) DeviceListStampByOwner(ctx context.Context, userID string) (store.DeviceListStamp, bool, error) {
	return db.deviceListStamp(ctx, "owner_id", userID)
}

// DeviceListStampByCustomer returns the stamp of a customer's device
// list, exact on SQLite only.
func (db *DB) DeviceListStampByCustomer(ctx context.Context, customerID string) (store.DeviceListStamp, bool, error) {
	return db.deviceListStamp(ctx, "customer_id", customerID)
}

// deviceListStamp reads the stamp of the devices whose column is id.
func (db *DB) deviceListStamp(ctx context.Context, column, id string) (store.DeviceListStamp, bool, error) {
	var s store.DeviceListStamp
	if db.dialect == dialectPostgres || id == "" {
		return s, false, nil
	}
	// The column's index (owner_id or customer_id, row_version) holds
	// only rows where it is not '' (migration 0019), and SQLite uses it
	// only for a query that says so.
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(row_version), 0) FROM devices WHERE `+
		column+` = ? AND `+column+` <> ''`, id).Scan(&s.Count, &s.MaxVersion)
	if err != nil {
		return s, false, wrap(err, "device list stamp of %s %q", column, id)
	}
	return s, true, nil
}
