package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
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

// pageWindowStep rounds the devices a ProductDevicePage read on SQLite
// asks for up to a multiple of itself (padding with empty IDs), so that
// a few statement texts serve every page size.
const pageWindowStep = 16

// ProductDevicePage reads in one statement, so one snapshot on either
// store, what ProductDeviceChanges reads, the row versions of the devices
// of known and of the changed devices that are in the product, and the
// whole rows of those of known whose version is not the one given, and
// of the changed ones when the state is at most store.PageChangedRows
// versions past since. A cached page whose devices did not change costs
// one round trip.
func (db *DB) ProductDevicePage(ctx context.Context, productID, since int64, known []store.DeviceVersion) (store.ProductDevicePage, error) {
	pg := db.dialect == dialectPostgres
	n := (len(known) + pageWindowStep - 1) / pageWindowStep * pageWindowStep
	if n == 0 {
		n = pageWindowStep
	}
	args := make([]any, 0, 9+2*n)
	args = append(args, since, productID, since+1, since, productID)
	if pg { // two arrays: one statement text for any number
		ids := make([]string, len(known))
		vs := make([]int64, len(known))
		for i, k := range known {
			ids[i], vs[i] = k.ID, k.Version
		}
		args = append(args, ids, vs)
	} else {
		for i := range n {
			if i < len(known) {
				args = append(args, known[i].ID, known[i].Version)
			} else {
				args = append(args, "", int64(0))
			}
		}
	}
	args = append(args, productID, since, since, productID)
	var (
		p     store.ProductDevicePage
		found bool
		rest  []any // the device columns, scanned apart
	)
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var (
			k            store.ProductDeviceKey
			kind         sql.NullInt64
			id           sql.NullString
			hs           sql.NullInt64
			in, full, ok bool
			version      int64
		)
		head := []any{&p.State.Devices, &p.State.Version, &ok, &kind, &id, &in, &k.NameKey, &hs,
			&k.ProductVersion, &k.Quarantined, &version, &full}
		if rest == nil {
			cols, err := rows.Columns()
			if err != nil {
				return err
			}
			rest = make([]any, len(cols)-len(head))
			for i := range rest {
				rest[i] = new(any)
			}
		}
		if err := rows.Scan(append(head, rest...)...); err != nil {
			return err
		}
		found, p.Complete = true, ok
		if !id.Valid || !in {
			if id.Valid && kind.Int64 == 1 {
				p.Gone = append(p.Gone, id.String)
			}
			return nil
		}
		if kind.Int64 == 1 {
			k.ID = id.String
			k.LastHandshake, k.HasHandshake = hs.Int64, hs.Valid
			p.Changed = append(p.Changed, k)
		}
		p.Versions = append(p.Versions, store.DeviceVersion{ID: id.String, Version: version})
		if full {
			d, err := scanDevice(prefixScanner{rows, rest[:len(head)]})
			if err != nil {
				return err
			}
			p.Devices = append(p.Devices, store.VersionedDevice{Device: *d, Version: version})
		}
		return nil
	}, productDevicePageQuery(pg, n), args...)
	if err != nil {
		return store.ProductDevicePage{}, wrap(err, "device page of product %d since version %d", productID, since)
	}
	if !found { // no device ever: the zero state
		return store.ProductDevicePage{Complete: since == 0}, nil
	}
	if !p.Complete {
		p.Changed, p.Gone = nil, nil
	}
	return p, nil
}

// pageFullRow is true in a ProductDevicePage row whose device's whole
// row is wanted.
const pageFullRow = `d.id IS NOT NULL AND (x.kind = 1 AND l.recent OR x.kind = 2 AND d.row_version <> x.v)`

// pageDeviceColumns are deviceColumns, each NULL unless pageFullRow:
// one join of devices serves the keys, the versions and the rows (a
// second join for the rows took PostgreSQL three times as long to plan).
var pageDeviceColumns = func() string {
	cols := strings.Split(strings.Join(strings.Fields(deviceColumns), " "), ", ")
	for i, c := range cols {
		cols[i] = "CASE WHEN " + pageFullRow + " THEN d." + c + " END"
	}
	return strings.Join(cols, ", ")
}()

// changeLogLength is how many changes product_device_changes keeps per
// product (migration 0018).
const changeLogLength = 4096

// productDevicePageQuery is ProductDevicePage's statement: on PostgreSQL
// the devices asked about are two arrays; on SQLite n pairs of values.
// The log's versions are asked for as a range of at most the log's
// length (all a complete read needs), which PostgreSQL's generic plan
// reads through the index: with "version > ?" it guessed a third of the
// log, and the plan it kept after five executions scanned the whole
// table with parallel workers (180 ms a page).
func productDevicePageQuery(pg bool, n int) string {
	w := `SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]))`
	if !pg {
		w = `VALUES (CAST(? AS TEXT), CAST(? AS BIGINT))` + strings.Repeat(", (?, ?)", n-1)
	}
	return `WITH l AS (SELECT devices, version, version = ? OR EXISTS (SELECT 1 FROM product_device_changes
			WHERE product_id = ? AND version = ?) AS complete, version - ? <= ` + strconv.Itoa(store.PageChangedRows) + ` AS recent
		FROM product_device_lists WHERE product_id = ?),
	w(id, v) AS (` + w + `),
	x(kind, id, v) AS (SELECT DISTINCT 1, device_id, CAST(-1 AS BIGINT) FROM product_device_changes
			WHERE product_id = ? AND version BETWEEN ? + 1 AND ? + ` + strconv.Itoa(changeLogLength) + `
		UNION ALL SELECT 2, id, v FROM w WHERE id <> '')
	SELECT l.devices, l.version, l.complete, x.kind, x.id, d.id IS NOT NULL, COALESCE(d.name_key, ''),
		d.last_handshake_at, COALESCE(d.product_version, 0), COALESCE(d.quarantined, FALSE),
		COALESCE(d.row_version, 0), COALESCE(` + pageFullRow + `, FALSE), ` + pageDeviceColumns + `
	FROM l
	LEFT JOIN x ON x.kind = 2 OR l.complete
	LEFT JOIN devices d ON d.id = x.id AND d.product_id = ?`
}

// prefixScanner scans the columns before a row's deviceColumns into
// skip and the rest as scanDevice asks.
type prefixScanner struct {
	rows *sql.Rows
	skip []any
}

// Scan implements rowScanner.
func (s prefixScanner) Scan(dest ...any) error {
	return s.rows.Scan(append(s.skip[:len(s.skip):len(s.skip)], dest...)...)
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
