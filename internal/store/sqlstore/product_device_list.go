package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
)

// A product's device list state (migration 0014): product_device_lists
// keeps per product its device count and an order version, moved by
// triggers in the same transaction as the device write that changes the
// product's membership or a sort or filter column; product_device_changes
// (migration 0018) logs which device moved each version, so that a cached
// order is brought up to date from the devices that changed. The keys are
// read from the covering index devices_product_keys.

var _ store.ProductDeviceLists = (*DB)(nil)

// ProductDeviceListState returns the product's device count and order
// version; zero for a product that never had a device.
func (db *DB) ProductDeviceListState(ctx context.Context, productID int64) (store.ProductDeviceList, error) {
	l, err := db.productListState(ctx, db.r, productID)
	return l, wrap(err, "device list state of product %d", productID)
}

// productListState reads a product_device_lists row on q.
func (db *DB) productListState(ctx context.Context, q execer, productID int64) (store.ProductDeviceList, error) {
	var l store.ProductDeviceList
	err := q.QueryRowContext(ctx, db.rebind(`SELECT devices, version FROM product_device_lists WHERE product_id = ?`),
		productID).Scan(&l.Devices, &l.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ProductDeviceList{}, nil
	}
	return l, err
}

// ProductDeviceKeys returns the product's list state and its devices' sort
// and filter keys, read in one snapshot.
func (db *DB) ProductDeviceKeys(ctx context.Context, productID int64) (store.ProductDeviceList, []store.ProductDeviceKey, error) {
	tx, err := db.beginSnapshot(ctx)
	if err != nil {
		return store.ProductDeviceList{}, nil, wrap(err, "device keys of product %d", productID)
	}
	defer tx.Rollback()
	l, err := db.productListState(ctx, tx, productID)
	if err != nil {
		return l, nil, wrap(err, "device keys of product %d", productID)
	}
	keys := make([]store.ProductDeviceKey, 0, l.Devices)
	err = db.queryRows(ctx, tx, func(rows *sql.Rows) error {
		var (
			k  store.ProductDeviceKey
			hs sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.NameKey, &hs, &k.ProductVersion, &k.Quarantined); err != nil {
			return err
		}
		k.LastHandshake, k.HasHandshake = hs.Int64, hs.Valid
		keys = append(keys, k)
		return nil
	}, `SELECT id, name_key, last_handshake_at, product_version, quarantined FROM devices WHERE product_id = ?`, productID)
	if err != nil {
		return l, nil, wrap(err, "device keys of product %d", productID)
	}
	return l, keys, nil
}

// ProductDeviceChanges returns the product's list state and the devices
// logged in product_device_changes (migration 0018) past version since:
// the keys of those in the product now and the IDs of those that left it.
// The log is complete when it still holds the change right after since
// (versions are logged without a gap and dropped from the oldest, so then
// it holds every change up to the state's version). It is one statement,
// so one snapshot on either store, and with nothing new it costs about
// what ProductDeviceListState does: callers that keep an order use it as
// their read of the state.
func (db *DB) ProductDeviceChanges(ctx context.Context, productID, since int64) (l store.ProductDeviceList, changed []store.ProductDeviceKey, gone []string, complete bool, err error) {
	found := false
	err = db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var (
			k      store.ProductDeviceKey
			id     sql.NullString
			hs     sql.NullInt64
			in, ok bool
		)
		if err := rows.Scan(&l.Devices, &l.Version, &ok, &id, &in, &k.NameKey, &hs, &k.ProductVersion, &k.Quarantined); err != nil {
			return err
		}
		found, complete = true, ok
		switch {
		case !id.Valid:
		case !in:
			gone = append(gone, id.String)
		default:
			k.ID = id.String
			k.LastHandshake, k.HasHandshake = hs.Int64, hs.Valid
			changed = append(changed, k)
		}
		return nil
	}, `WITH l AS (SELECT devices, version, version = ? OR EXISTS (SELECT 1 FROM product_device_changes
			WHERE product_id = ? AND version = ?) AS complete
		FROM product_device_lists WHERE product_id = ?)
	SELECT l.devices, l.version, l.complete, c.device_id, d.id IS NOT NULL, COALESCE(d.name_key, ''),
		d.last_handshake_at, COALESCE(d.product_version, 0), COALESCE(d.quarantined, FALSE)
	FROM l
	LEFT JOIN (SELECT DISTINCT device_id FROM product_device_changes WHERE product_id = ? AND version > ?) c ON l.complete
	LEFT JOIN devices d ON d.id = c.device_id AND d.product_id = ?`,
		since, productID, since+1, productID, productID, since, productID)
	if err != nil {
		return store.ProductDeviceList{}, nil, nil, false, wrap(err, "device changes of product %d since version %d", productID, since)
	}
	if !found { // no device ever: the zero state
		return store.ProductDeviceList{}, nil, nil, since == 0, nil
	}
	if !complete {
		return l, nil, nil, false, nil
	}
	return l, changed, gone, true, nil
}

// ProductDeviceVersions returns the row versions of the devices of ids
// that exist and are in the product.
func (db *DB) ProductDeviceVersions(ctx context.Context, productID int64, ids []string) ([]store.DeviceVersion, error) {
	var out []store.DeviceVersion
	for len(ids) > 0 {
		n := min(len(ids), idsPerQuery)
		args := make([]any, 0, n+1)
		args = append(args, productID)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		part, err := db.deviceVersions(ctx, `SELECT id, row_version FROM devices WHERE product_id = ? AND id IN (?`+
			strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, wrap(err, "device versions of product %d", productID)
		}
		out = append(out, part...)
		ids = ids[n:]
	}
	return out, nil
}

// InsertDevices adds new devices in one transaction, with the fields a
// product import or a benchmark sets: ID, Name, OwnerID, CustomerID,
// ProductID, PlatformID, PublicKey and KeyAlgorithm, Notes,
// LastHandshakeAt, ProductVersion, Quarantined, Development and
// CreatedAt (now when zero). It fails, adding none, if any ID exists.
// It is the fast path for filling a store with many devices.
func (db *DB) InsertDevices(ctx context.Context, devs []store.Device) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO devices (id, name, name_key, owner_id,
			customer_id, product_id, platform_id, public_key, key_algorithm, notes, last_handshake_at,
			product_version, quarantined, development, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		t := now()
		for i := range devs {
			d := &devs[i]
			created := d.CreatedAt
			if created.IsZero() {
				created = t
			}
			var hs any
			if d.LastHandshakeAt != nil {
				hs = toMS(*d.LastHandshakeAt)
			}
			if _, err := stmt.ExecContext(ctx, d.ID, d.Name, nameKey(d.Name), d.OwnerID, d.CustomerID,
				d.ProductID, d.PlatformID, d.PublicKey, d.KeyAlgorithm, d.Notes, hs, d.ProductVersion,
				d.Quarantined, d.Development, toMS(created), toMS(created)); err != nil {
				return fmt.Errorf("device %q: %w", d.ID, err)
			}
		}
		return nil
	})
	return wrap(err, "insert %d devices", len(devs))
}
