package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

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
	var c changesRead
	query, args := changesQuery, changesArgs(productID, since)
	if db.dialect == dialectPostgres {
		query, args = changesQueryPostgres, []any{since, productID}
	}
	err = db.queryRows(ctx, db.r, func(rows *sql.Rows) error { return c.scan(rows) }, query, args...)
	if err != nil {
		return store.ProductDeviceList{}, nil, nil, false, wrap(err, "device changes of product %d since version %d", productID, since)
	}
	return c.result(since)
}

// changesQuery is ProductDeviceChanges' statement (changesArgs).
const changesQuery = `WITH l AS (SELECT devices, version, version = ? OR EXISTS (SELECT 1 FROM product_device_changes
			WHERE product_id = ? AND version = ?) AS complete
		FROM product_device_lists WHERE product_id = ?)
	SELECT l.devices, l.version, l.complete, c.device_id, d.id IS NOT NULL, COALESCE(d.name_key, ''),
		d.last_handshake_at, COALESCE(d.product_version, 0), COALESCE(d.quarantined, FALSE)
	FROM l
	LEFT JOIN (SELECT DISTINCT device_id FROM product_device_changes WHERE product_id = ? AND version > ?) c ON l.complete
	LEFT JOIN devices d ON d.id = c.device_id AND d.product_id = ?`

// changesQueryPostgres is changesQuery on PostgreSQL, since in $1 and
// the product in $2, written so that the server can keep one generic
// plan for it: the log is read up to the list's own version (the same
// rows: the log holds no later version), a bound the planner cannot see,
// so it estimates every execution alike and, after its first five,
// reuses the generic plan, where changesQuery's plan, estimated from
// since, was cheaper planned anew (custom) each time, and planning it
// cost the server about 0.4 ms per page, several times its execution.
// Its generic plan looks the log up by its primary key and the devices
// by ID.
const changesQueryPostgres = `WITH l AS (SELECT devices, version, version = $1 OR EXISTS (SELECT 1 FROM product_device_changes
			WHERE product_id = $2 AND version = $1 + 1) AS complete
		FROM product_device_lists WHERE product_id = $2)
	SELECT l.devices, l.version, l.complete, c.device_id, d.id IS NOT NULL, COALESCE(d.name_key, ''),
		d.last_handshake_at, COALESCE(d.product_version, 0), COALESCE(d.quarantined, FALSE)
	FROM l
	LEFT JOIN LATERAL (SELECT DISTINCT device_id FROM product_device_changes
		WHERE product_id = $2 AND version > $1 AND version <= l.version) c ON l.complete
	LEFT JOIN devices d ON d.id = c.device_id AND d.product_id = $2`

// changesArgs are changesQuery's arguments.
func changesArgs(productID, since int64) []any {
	return []any{since, productID, since + 1, productID, productID, since, productID}
}

// changesRead collects the rows of changesQuery.
type changesRead struct {
	l               store.ProductDeviceList
	changed         []store.ProductDeviceKey
	gone            []string
	found, complete bool
}

// scan reads one row of changesQuery.
func (c *changesRead) scan(row rowScanner) error {
	var (
		k      store.ProductDeviceKey
		id     sql.NullString
		hs     sql.NullInt64
		in, ok bool
	)
	if err := row.Scan(&c.l.Devices, &c.l.Version, &ok, &id, &in, &k.NameKey, &hs, &k.ProductVersion, &k.Quarantined); err != nil {
		return err
	}
	c.found, c.complete = true, ok
	switch {
	case !id.Valid:
	case !in:
		c.gone = append(c.gone, id.String)
	default:
		k.ID = id.String
		k.LastHandshake, k.HasHandshake = hs.Int64, hs.Valid
		c.changed = append(c.changed, k)
	}
	return nil
}

// result is ProductDeviceChanges' answer from the rows read.
func (c *changesRead) result(since int64) (store.ProductDeviceList, []store.ProductDeviceKey, []string, bool, error) {
	if !c.found { // no device ever: the zero state
		return store.ProductDeviceList{}, nil, nil, since == 0, nil
	}
	if !c.complete {
		return c.l, nil, nil, false, nil
	}
	return c.l, c.changed, c.gone, true, nil
}

var _ store.ProductDevicePages = (*DB)(nil)

// changedRowsQuery reads the devices logged in product $1's versions
// past $2 up to $3, with their row versions; the caller keeps those in
// the product. The bounded range keeps the plan on the log's primary key
// (PostgreSQL plans it anew for each execution, though:
// changedRowsQueryPostgres), and the devices are looked up by ID only
// (as in productVersionsQuery).
const changedRowsQuery = `SELECT row_version, ` + deviceColumns + ` FROM devices WHERE id IN
	(SELECT device_id FROM product_device_changes WHERE product_id = ? AND version > ? AND version <= ?)`

// changedRowsQueryPostgres is changedRowsQuery on PostgreSQL (the same
// arguments) with the versions bounded by the list's own version too
// (the same rows) in a LATERAL subquery, where the planner cannot see
// it: with changedRowsQuery's bounds known it estimated an empty range
// for a caller with nothing new and planned each execution anew (custom
// plans), about 0.2 ms of the server's time per page; this one it
// estimates alike every time and plans once (the generic plan: the log
// by its primary key, the devices by ID).
const changedRowsQueryPostgres = `SELECT row_version, ` + deviceColumns + ` FROM devices WHERE id IN
	(SELECT c.device_id FROM product_device_lists l, LATERAL (SELECT DISTINCT device_id FROM product_device_changes
		WHERE product_id = $1 AND version > $2 AND version <= LEAST(l.version, $3)) c WHERE l.product_id = $1)`

// productVersionsQuery is ProductDeviceVersions' statement for n IDs
// (the arguments); the caller keeps the rows of its product. It names no
// product: with product_id in the WHERE clause PostgreSQL may scan the
// whole product through devices_product_keys instead of looking the IDs
// up, as it did for 132 IDs after a bulk insert (1.7 s against 0.1 ms,
// while the table's statistics were stale).
func productVersionsQuery(n int) string {
	return `SELECT id, row_version, product_id FROM devices WHERE id IN (?` + strings.Repeat(", ?", n-1) + `)`
}

// pageVersionsQuery is productVersionsQuery for a page
// (ReadProductDevicePage): with each device's owner and the name a list
// shows for it, its user's username, else its customer's e-mail, "" when
// that account is gone, so that a page of devices owned by many
// customers reads no account apart.
func pageVersionsQuery(n int) string {
	return `SELECT d.id, d.row_version, d.product_id, d.owner_id, d.customer_id, COALESCE(u.username, c.email, '')
	FROM devices d LEFT JOIN users u ON d.owner_id <> '' AND u.id = d.owner_id
	LEFT JOIN customers c ON d.owner_id = '' AND d.customer_id <> '' AND c.id = d.customer_id
	WHERE d.id IN (?` + strings.Repeat(", ?", n-1) + `)`
}

// pageVersionsArrayQuery is pageVersionsQuery on PostgreSQL with the
// IDs in one text[] parameter ($1) instead of one parameter each: one
// statement text whatever the page's length, one parameter to bind
// instead of a hundred, and a generic plan that looks each ID up in the
// primary key and each owner's account by its own key (nested loops),
// where pageVersionsQuery's generic plan, on analyzed tables, hashed
// every customer in the store for each page (2,000 in the benchmark:
// about 1.7 ms of the server's time against 1.0 ms for a page of 100).
const pageVersionsArrayQuery = `SELECT d.id, d.row_version, d.product_id, d.owner_id, d.customer_id, COALESCE(u.username, c.email, '')
	FROM devices d LEFT JOIN users u ON d.owner_id <> '' AND u.id = d.owner_id
	LEFT JOIN customers c ON d.owner_id = '' AND d.customer_id <> '' AND c.id = d.customer_id
	WHERE d.id = ANY($1::text[])`

// scanPageVersion appends a row of pageVersionsQuery to r's Versions and
// Owners when the device is in the product.
func scanPageVersion(row rowScanner, productID int64, r *store.ProductDevicePageRead) error {
	var (
		v store.DeviceVersion
		p int64
		o store.DeviceOwnerName
	)
	if err := row.Scan(&v.ID, &v.Version, &p, &o.OwnerID, &o.CustomerID, &o.Name); err != nil {
		return err
	}
	if p != productID {
		return nil
	}
	r.Versions = append(r.Versions, v)
	if o.OwnerID != "" || o.CustomerID != "" {
		r.Owners = append(r.Owners, o)
	}
	return nil
}

// scanProductVersion appends a row of productVersionsQuery to out when
// the device is in the product.
func scanProductVersion(row rowScanner, productID int64, out *[]store.DeviceVersion) error {
	var (
		v store.DeviceVersion
		p int64
	)
	if err := row.Scan(&v.ID, &v.Version, &p); err != nil {
		return err
	}
	if p == productID {
		*out = append(*out, v)
	}
	return nil
}

// idArgs returns ids as query arguments.
func idArgs(ids []string) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// ReadProductDevicePage returns ProductDeviceChanges(productID, since),
// ProductDeviceVersions(productID, ids) with those devices' owners
// (pageVersionsQuery) and the devices in the product logged in the
// store.ChangedRows versions after since. On PostgreSQL the
// three statements go to the server in one batch (one round trip, each
// statement prepared on its own); on SQLite, and for more IDs than one
// statement takes, they run one after the other.
func (db *DB) ReadProductDevicePage(ctx context.Context, productID, since int64, ids []string) (store.ProductDevicePageRead, error) {
	var (
		r   store.ProductDevicePageRead
		err error
	)
	if db.dialect == dialectPostgres && len(ids) <= idsPerQuery {
		err = db.readProductDevicePageBatch(ctx, &r, nil, productID, since, ids, 0)
	} else {
		r.State, r.Changed, r.Gone, r.Complete, err = db.ProductDeviceChanges(ctx, productID, since)
		for rest := ids; err == nil && len(rest) > 0; {
			n := min(len(rest), idsPerQuery)
			err = db.queryRows(ctx, db.r, func(rows *sql.Rows) error { return scanPageVersion(rows, productID, &r) },
				pageVersionsQuery(n), idArgs(rest[:n])...)
			rest = rest[n:]
		}
		if err == nil {
			err = db.queryRows(ctx, db.r, func(rows *sql.Rows) error { return scanVersioned(rows, productID, &r.Rows) },
				changedRowsQuery, changedRowsArgs(productID, since)...)
		}
	}
	if err != nil {
		return store.ProductDevicePageRead{}, wrap(err, "device page of product %d since version %d", productID, since)
	}
	return r, nil
}

// changedRowsArgs are changedRowsQuery's arguments.
func changedRowsArgs(productID, since int64) []any {
	return []any{productID, since, since + store.ChangedRows}
}

// scanVersioned appends a row of row_version and deviceColumns to out
// when the device is in the product.
func scanVersioned(row rowScanner, productID int64, out *[]store.VersionedDevice) error {
	var v int64
	d, err := scanDevice(prefixScanner{row, &v})
	if err != nil {
		return err
	}
	if d.ProductID == productID {
		*out = append(*out, store.VersionedDevice{Device: *d, Version: v})
	}
	return nil
}

// prefixScanner scans a leading column into v, then the rest into the
// destinations asked for.
type prefixScanner struct {
	row rowScanner
	v   any
}

// Scan implements rowScanner.
func (s prefixScanner) Scan(dest ...any) error {
	return s.row.Scan(append([]any{s.v}, dest...)...)
}

var _ store.ProductDevicePageAccess = (*DB)(nil)

// ReadProductDevicePageFor returns the standing of the user with userID
// with the product of ref and, when it grants the user productID's
// devices, ReadProductDevicePage(productID, since, ids). On PostgreSQL
// the access statement (productAccessQuery) goes first in the page's
// batch: one round trip for both; a refused user's page is read there
// too, and dropped unseen, errors included. On SQLite, and for more IDs
// than one statement takes, the page is read only after access is
// granted.
func (db *DB) ReadProductDevicePageFor(ctx context.Context, ref store.ProductRef, userID string, productID, since int64,
	ids []string) (*store.ProductAccess, store.ProductDevicePageRead, error) {
	return db.readProductDevicePageFor(ctx, ref, userID, productID, since, ids, 0)
}

// readProductDevicePageFor is ReadProductDevicePageFor with the
// PostgreSQL statements as before says (0: today's).
func (db *DB) readProductDevicePageFor(ctx context.Context, ref store.ProductRef, userID string, productID, since int64,
	ids []string, before pageStatements) (*store.ProductAccess, store.ProductDevicePageRead, error) {
	if db.dialect != dialectPostgres || len(ids) > idsPerQuery {
		a, err := db.productAccess(ctx, ref, userID)
		if err != nil {
			return nil, store.ProductDevicePageRead{}, wrap(err, "product %d/%q for user %q", ref.ID, ref.Slug, userID)
		}
		if !a.Granted(productID) {
			return a, store.ProductDevicePageRead{}, nil
		}
		r, err := db.ReadProductDevicePage(ctx, productID, since, ids)
		return a, r, err
	}
	var (
		r   store.ProductDevicePageRead
		acc accessRead
	)
	acc.query, acc.args = productAccessQuery(ref, userID)
	err := db.readProductDevicePageBatch(ctx, &r, &acc, productID, since, ids, before)
	switch {
	case !acc.read: // the access statement failed
		if err == nil {
			err = errors.New("no access read")
		}
		return nil, store.ProductDevicePageRead{}, wrap(err, "product %d/%q for user %q", ref.ID, ref.Slug, userID)
	case !acc.found:
		return nil, store.ProductDevicePageRead{}, wrap(sql.ErrNoRows, "product %d/%q for user %q", ref.ID, ref.Slug, userID)
	case !acc.a.Granted(productID):
		return &acc.a, store.ProductDevicePageRead{}, nil
	case err != nil:
		return nil, store.ProductDevicePageRead{}, wrap(err, "device page of product %d since version %d", productID, since)
	}
	return &acc.a, r, nil
}

// accessRead is the access statement of readProductDevicePageBatch and
// what it read: found is false when there is no such product, read false
// until its result was read.
type accessRead struct {
	query       string
	args        []any
	a           store.ProductAccess
	found, read bool
}

// pageStatements picks statements of readProductDevicePageBatch as they
// were before, so that the tests and the paired benchmark
// (BenchmarkProductDevicePageRead) compare them with today's (0).
type pageStatements uint8

const (
	// pageIDsList passes the page's IDs one parameter each
	// (pageVersionsQuery) instead of in one array
	// (pageVersionsArrayQuery).
	pageIDsList pageStatements = 1 << iota
	// pageCustomPlans reads the changes with changesQuery and
	// changedRowsQuery, which the server plans anew each time, instead
	// of changesQueryPostgres and changedRowsQueryPostgres.
	pageCustomPlans
)

// readProductDevicePageBatch is ReadProductDevicePage on PostgreSQL: the
// statements in one pgx batch on one connection, after acc's access
// statement when acc is not nil, some statements as before says. When acc
// does not grant productID, the page's results are left unread (the
// batch's close discards them) and their errors are not returned.
func (db *DB) readProductDevicePageBatch(ctx context.Context, r *store.ProductDevicePageRead, acc *accessRead,
	productID, since int64, ids []string, before pageStatements) error {
	conn, err := db.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("connection is a %T, not pgx", dc)
		}
		var b pgx.Batch
		if acc != nil {
			b.Queue(rebindDollar(acc.query), acc.args...)
		}
		if before&pageCustomPlans != 0 {
			b.Queue(rebindDollar(changesQuery), changesArgs(productID, since)...)
		} else {
			b.Queue(changesQueryPostgres, since, productID)
		}
		switch {
		case len(ids) == 0:
		case before&pageIDsList != 0:
			b.Queue(rebindDollar(pageVersionsQuery(len(ids))), idArgs(ids)...)
		default:
			b.Queue(pageVersionsArrayQuery, ids)
		}
		if before&pageCustomPlans != 0 {
			b.Queue(rebindDollar(changedRowsQuery), changedRowsArgs(productID, since)...)
		} else {
			b.Queue(changedRowsQueryPostgres, changedRowsArgs(productID, since)...)
		}
		br := sc.Conn().SendBatch(ctx, &b)
		if acc != nil {
			err := eachRow(br, func(row rowScanner) error {
				acc.found = true
				return scanProductAccess(row, &acc.a)
			})
			if err != nil {
				br.Close()
				return err
			}
			acc.read = true
			if !acc.found || !acc.a.Granted(productID) {
				br.Close() // the page's results, unread; their errors are not the refused user's
				return nil
			}
		}
		err := readBatch(br, r, productID, since, len(ids) > 0)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// readBatch reads the results of readProductDevicePageBatch's batch.
func readBatch(br pgx.BatchResults, r *store.ProductDevicePageRead, productID, since int64, versions bool) error {
	var c changesRead
	if err := eachRow(br, c.scan); err != nil {
		return err
	}
	r.State, r.Changed, r.Gone, r.Complete, _ = c.result(since)
	if versions {
		err := eachRow(br, func(row rowScanner) error { return scanPageVersion(row, productID, r) })
		if err != nil {
			return err
		}
	}
	return eachRow(br, func(row rowScanner) error { return scanVersioned(row, productID, &r.Rows) })
}

// eachRow reads the rows of a batch's next result with scan.
func eachRow(br pgx.BatchResults, scan func(rowScanner) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ProductDeviceVersions returns the row versions of the devices of ids
// that exist and are in the product.
func (db *DB) ProductDeviceVersions(ctx context.Context, productID int64, ids []string) ([]store.DeviceVersion, error) {
	var out []store.DeviceVersion
	for len(ids) > 0 {
		n := min(len(ids), idsPerQuery)
		err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error { return scanProductVersion(rows, productID, &out) },
			productVersionsQuery(n), idArgs(ids[:n])...)
		if err != nil {
			return nil, wrap(err, "device versions of product %d", productID)
		}
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
