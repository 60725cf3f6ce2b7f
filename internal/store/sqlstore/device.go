package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const deviceColumns = `id, name, owner_id, customer_id, product_id, platform_id, public_key, key_algorithm,
	notes, online, node, session_id, last_heard, last_handshake_at, last_ip, system_version,
	system_module_version, product_version, functions, variables, subscriptions, status,
	firmware_updates_enabled, development, quarantined, denied, firmware_updates_forced,
	created_at, updated_at`

// deviceOrder is the order of DevicesByOwner and DevicesByCustomer: the
// most recent handshake first, devices that never connected last, then ID.
const deviceOrder = ` ORDER BY last_handshake_at IS NULL, last_handshake_at DESC, id`

// nameKey folds a device name for the per-owner uniqueness and lookup of
// names, which ignore case. The store computes it, rather than SQL's
// lower(), so that both dialects fold alike.
func nameKey(name string) string { return strings.ToLower(name) }

// ProvisionDevice registers device id, creating it when absent. A
// non-empty der replaces the key and its algorithm; an empty one keeps them
// (or leaves a new device without a key). A non-zero productID moves the
// device into that product. UpdatedAt becomes now.
//
// An ECC key gets its fingerprint in the unique index devices_key_fingerprint
// (migration 0007): the upsert fails on it, changing nothing, when another
// device has the key. A key that differs from the stored one removes the
// device's saved DTLS sessions in the same transaction.
func (db *DB) ProvisionDevice(ctx context.Context, id, alg string, der []byte, productID int64) (*store.Device, error) {
	t := toMS(now())
	var key, fingerprint any // NULL: keep the stored key; no fingerprint
	if len(der) > 0 {
		key = der
		if alg == store.KeyECC {
			fingerprint = store.KeyFingerprint(der)
		}
	} else {
		alg = ""
	}
	var d *store.Device
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var old []byte
		if len(der) > 0 {
			err := tx.QueryRowContext(ctx, db.rebind(`SELECT public_key FROM devices WHERE id = ?`), id).Scan(&old)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, db.rebind(`INSERT INTO devices
			(id, public_key, key_algorithm, key_fingerprint, product_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				public_key = COALESCE(excluded.public_key, devices.public_key),
				key_algorithm = CASE WHEN excluded.public_key IS NULL THEN devices.key_algorithm ELSE excluded.key_algorithm END,
				key_fingerprint = CASE WHEN excluded.public_key IS NULL THEN devices.key_fingerprint ELSE excluded.key_fingerprint END,
				product_id = CASE WHEN excluded.product_id = 0 THEN devices.product_id ELSE excluded.product_id END,
				updated_at = excluded.updated_at
			RETURNING `+deviceColumns), id, key, alg, fingerprint, productID, t, t))
		if err != nil {
			return err
		}
		if len(der) > 0 && !bytes.Equal(old, der) {
			_, err = db.exec(ctx, tx, `DELETE FROM dtls_sessions WHERE device_id = ?`, id)
		}
		return err
	})
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("sqlstore: provision device %q: the key is another device's key: %w", id, store.ErrConflict)
	}
	if err != nil {
		return nil, wrap(err, "provision device %q", id)
	}
	return d, nil
}

// DeviceByID returns the device or store.ErrNotFound.
func (db *DB) DeviceByID(ctx context.Context, id string) (*store.Device, error) {
	d, err := scanDevice(db.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "device %q", id)
	}
	return d, nil
}

// DeviceByPublicKey returns the device whose ECC key is spkiDER, through
// the fingerprint index, or store.ErrNotFound. The stored key is compared
// too, so that only the very key matches.
func (db *DB) DeviceByPublicKey(ctx context.Context, spkiDER []byte) (*store.Device, error) {
	if len(spkiDER) == 0 {
		return nil, fmt.Errorf("sqlstore: device by key: no key: %w", store.ErrNotFound)
	}
	d, err := scanDevice(db.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE key_fingerprint = ?`,
		store.KeyFingerprint(spkiDER)))
	if err == nil && !bytes.Equal(d.PublicKey, spkiDER) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, wrap(err, "device by key %x", store.KeyFingerprint(spkiDER)[:8])
	}
	return d, nil
}

// fillKeyFingerprints indexes the ECC keys stored without a fingerprint:
// those of rows written before migration 0007, or by an older binary
// sharing the database. A key that another device already has in the
// index stays unindexed, with a warning: that device cannot connect over
// DTLS until one of the two is given a new key.
func (db *DB) fillKeyFingerprints(ctx context.Context) error {
	type row struct {
		id  string
		key []byte
	}
	var rows []row
	err := db.queryRows(ctx, db.w, func(r *sql.Rows) error {
		var x row
		if err := r.Scan(&x.id, &x.key); err != nil {
			return err
		}
		rows = append(rows, x)
		return nil
	}, `SELECT id, public_key FROM devices
		WHERE key_algorithm = 'ecc' AND public_key IS NOT NULL AND key_fingerprint IS NULL ORDER BY id`)
	if err != nil {
		return wrap(err, "unindexed device keys")
	}
	filled := 0
	for _, x := range rows {
		_, err := db.exec(ctx, db.w, `UPDATE devices SET key_fingerprint = ?
			WHERE id = ? AND public_key = ? AND key_fingerprint IS NULL`, store.KeyFingerprint(x.key), x.id, x.key)
		switch {
		case isUniqueViolation(err):
			db.log.Warn("sqlstore: device key is another device's key; not indexed", "device", x.id)
		case err != nil:
			return wrap(err, "index key of device %q", x.id)
		default:
			filled++
		}
	}
	if filled > 0 {
		db.log.Info("sqlstore: indexed device keys", "devices", filled)
	}
	return nil
}

// DeviceByOwnerName returns the device that user userID owns under that
// name, ignoring case, or store.ErrNotFound.
func (db *DB) DeviceByOwnerName(ctx context.Context, userID, name string) (*store.Device, error) {
	d, err := db.deviceByName(ctx, "owner_id", userID, name)
	if err != nil {
		return nil, wrap(err, "device %q of user %q", name, userID)
	}
	return d, nil
}

// DeviceByCustomerName returns the device that customer customerID owns
// under that name, ignoring case, or store.ErrNotFound.
func (db *DB) DeviceByCustomerName(ctx context.Context, customerID, name string) (*store.Device, error) {
	d, err := db.deviceByName(ctx, "customer_id", customerID, name)
	if err != nil {
		return nil, wrap(err, "device %q of customer %q", name, customerID)
	}
	return d, nil
}

// deviceByName looks a name up among the devices whose column (owner_id or
// customer_id, never caller input) equals owner. The repeated non-empty
// conditions match the predicates of the partial unique indexes, so that
// SQLite uses them.
func (db *DB) deviceByName(ctx context.Context, column, owner, name string) (*store.Device, error) {
	key := nameKey(name)
	if owner == "" || key == "" {
		return nil, store.ErrNotFound
	}
	return scanDevice(db.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE `+column+` = ? AND name_key = ? AND `+column+` <> '' AND name_key <> ''`, owner, key))
}

// DevicesByOwner lists a user's devices, the most recently connected first,
// those that never connected last, then by ID.
func (db *DB) DevicesByOwner(ctx context.Context, userID string) ([]store.Device, error) {
	if userID == "" {
		return nil, nil
	}
	out, err := db.listDevices(ctx, db.r, `SELECT `+deviceColumns+` FROM devices WHERE owner_id = ?`+deviceOrder, userID)
	if err != nil {
		return nil, wrap(err, "devices of user %q", userID)
	}
	return out, nil
}

// DevicesByCustomer lists a customer's devices in the order of
// DevicesByOwner.
func (db *DB) DevicesByCustomer(ctx context.Context, customerID string) ([]store.Device, error) {
	if customerID == "" {
		return nil, nil
	}
	out, err := db.listDevices(ctx, db.r, `SELECT `+deviceColumns+` FROM devices WHERE customer_id = ?`+deviceOrder, customerID)
	if err != nil {
		return nil, wrap(err, "devices of customer %q", customerID)
	}
	return out, nil
}

// DevicesByProduct returns one page of the product's devices that match f,
// in f's order, and how many match in all, read from one snapshot. A Page
// with Size ≤ 0 returns every match; a Number below 1 is the first page.
func (db *DB) DevicesByProduct(ctx context.Context, productID int64, f store.DeviceFilter) ([]store.Device, int, error) {
	where := ` WHERE product_id = ?`
	args := []any{productID}
	if f.IDContains != "" {
		where += ` AND id LIKE ? ESCAPE '\'`
		args = append(args, "%"+escapeLike(strings.ToLower(f.IDContains))+"%")
	}
	if f.NameContains != "" {
		where += ` AND name_key LIKE ? ESCAPE '\'`
		args = append(args, "%"+escapeLike(nameKey(f.NameContains))+"%")
	}
	if f.Quarantined != nil {
		where += ` AND quarantined = ?`
		args = append(args, *f.Quarantined)
	}
	dir := " DESC"
	if f.Ascending {
		dir = " ASC"
	}
	var order string
	switch f.Sort {
	case store.SortByID:
		order = ` ORDER BY id` + dir
	case store.SortByFirmwareVersion:
		order = ` ORDER BY product_version` + dir + `, id`
	default:
		order = ` ORDER BY last_handshake_at IS NULL, last_handshake_at` + dir + `, id`
	}

	tx, err := db.beginSnapshot(ctx)
	if err != nil {
		return nil, 0, wrap(err, "devices of product %d", productID)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM devices`+where), args...).Scan(&total); err != nil {
		return nil, 0, wrap(err, "count devices of product %d", productID)
	}
	query := `SELECT ` + deviceColumns + ` FROM devices` + where + order
	if f.Page.Size > 0 {
		number := max(f.Page.Number, 1)
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Page.Size, (number-1)*f.Page.Size)
	}
	out, err := db.listDevices(ctx, tx, query, args...)
	if err != nil {
		return nil, 0, wrap(err, "devices of product %d", productID)
	}
	return out, total, nil
}

// escapeLike escapes the LIKE wildcards of s, and the escape character
// itself, for "LIKE ? ESCAPE '\'".
func escapeLike(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// listDevices runs a query over deviceColumns on q.
func (db *DB) listDevices(ctx context.Context, q execer, query string, args ...any) ([]store.Device, error) {
	var out []store.Device
	err := db.queryRows(ctx, q, func(rows *sql.Rows) error {
		d, err := scanDevice(rows)
		if err != nil {
			return err
		}
		out = append(out, *d)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountDevices returns how many devices exist.
func (db *DB) CountDevices(ctx context.Context) (int, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM devices`).Scan(&n); err != nil {
		return 0, wrap(err, "count devices")
	}
	return n, nil
}

// UpdateDevice replaces Name, Notes, OwnerID, CustomerID, ProductID,
// Development, Quarantined, Denied, FirmwareUpdatesForced and UpdatedAt
// (now, when zero). It fails with store.ErrConflict, changing nothing, when
// the owner has another device of that name, with store.ErrNotFound when
// the device is absent, and with a plain error when both OwnerID and
// CustomerID are set.
func (db *DB) UpdateDevice(ctx context.Context, d *store.Device) error {
	if d.OwnerID != "" && d.CustomerID != "" {
		return fmt.Errorf("sqlstore: update device %q: owned by both user %q and customer %q", d.ID, d.OwnerID, d.CustomerID)
	}
	stamp(&d.UpdatedAt, now())
	err := db.execOne(ctx, db.w, `UPDATE devices SET name = ?, name_key = ?, notes = ?, owner_id = ?,
		customer_id = ?, product_id = ?, development = ?, quarantined = ?, denied = ?,
		firmware_updates_forced = ?, updated_at = ? WHERE id = ?`,
		d.Name, nameKey(d.Name), d.Notes, d.OwnerID, d.CustomerID, d.ProductID, d.Development,
		d.Quarantined, d.Denied, d.FirmwareUpdatesForced, toMS(d.UpdatedAt), d.ID)
	return wrap(err, "update device %q", d.ID)
}

// ClaimDevice sets the device's owner to the user ownerUserID or the
// customer customerID, clearing the other, and returns the device. A
// device without a name gets a generated one in the same statement. When
// the name, kept or generated, is one the new owner already uses, the
// statement fails on the unique index and changes nothing, and the next
// one sets a fresh candidate, up to store.NameAttempts statements.
func (db *DB) ClaimDevice(ctx context.Context, id, ownerUserID, customerID string) (*store.Device, error) {
	if (ownerUserID == "") == (customerID == "") {
		return nil, fmt.Errorf("sqlstore: claim device %q: want exactly one of a user and a customer", id)
	}
	t := toMS(now())
	for attempt := range store.NameAttempts {
		name := db.names.Name(attempt)
		query := `UPDATE devices SET owner_id = ?, customer_id = ?, name = ?, name_key = ?, updated_at = ?
			WHERE id = ? RETURNING ` + deviceColumns
		if attempt == 0 {
			// Keep the name the device has; name it if it has none.
			query = `UPDATE devices SET owner_id = ?, customer_id = ?,
				name = CASE WHEN name_key = '' THEN ? ELSE name END,
				name_key = CASE WHEN name_key = '' THEN ? ELSE name_key END, updated_at = ?
				WHERE id = ? RETURNING ` + deviceColumns
		}
		d, err := scanDevice(db.w.QueryRowContext(ctx, db.rebind(query),
			ownerUserID, customerID, name, nameKey(name), t, id))
		if isUniqueViolation(err) {
			continue
		}
		if err != nil {
			return nil, wrap(err, "claim device %q", id)
		}
		return d, nil
	}
	return nil, fmt.Errorf("sqlstore: claim device %q: %d names taken: %w", id, store.NameAttempts, store.ErrConflict)
}

// NameOwnedDevices names the owned devices without a name, one statement
// each; the partial index devices_unnamed (migration 0004) finds them
// without a scan. A device whose owner or name changed meanwhile is left
// as the other writer made it.
func (db *DB) NameOwnedDevices(ctx context.Context) (int, error) {
	type owned struct{ id, owner, customer string }
	var list []owned
	err := db.queryRows(ctx, db.w, func(rows *sql.Rows) error {
		var o owned
		if err := rows.Scan(&o.id, &o.owner, &o.customer); err != nil {
			return err
		}
		list = append(list, o)
		return nil
	}, `SELECT id, owner_id, customer_id FROM devices
		WHERE name_key = '' AND (owner_id <> '' OR customer_id <> '') ORDER BY id`)
	if err != nil {
		return 0, wrap(err, "unnamed devices")
	}
	named := 0
	for _, o := range list {
		t := toMS(now())
	attempts:
		for attempt := range store.NameAttempts {
			name := db.names.Name(attempt)
			res, err := db.exec(ctx, db.w, `UPDATE devices SET name = ?, name_key = ?, updated_at = ?
				WHERE id = ? AND name_key = '' AND owner_id = ? AND customer_id = ?`,
				name, nameKey(name), t, o.id, o.owner, o.customer)
			switch {
			case isUniqueViolation(err):
				continue
			case err != nil:
				return named, wrap(err, "name device %q", o.id)
			}
			if n, err := res.RowsAffected(); err == nil && n > 0 {
				named++
			}
			break attempts
		}
	}
	return named, nil
}

// UnclaimDevice clears the device's owner, user or customer, and sets
// UpdatedAt to now.
func (db *DB) UnclaimDevice(ctx context.Context, id string) error {
	err := db.execOne(ctx, db.w, `UPDATE devices SET owner_id = '', customer_id = '', updated_at = ? WHERE id = ?`,
		toMS(now()), id)
	return wrap(err, "unclaim device %q", id)
}

// lastHeardSet is the SET term that moves last_heard to a time, given
// twice as arguments, unless the stored time is later.
const lastHeardSet = `last_heard = CASE WHEN last_heard IS NULL OR last_heard < ? THEN ? ELSE last_heard END`

// SetDeviceOnline records a new session of the device and returns the
// device. A zero s.At is now; a zero s.ProductID keeps the product.
func (db *DB) SetDeviceOnline(ctx context.Context, id string, s store.DeviceSession) (*store.Device, error) {
	query, args := onlineUpdate(id, s)
	d, err := scanDevice(db.w.QueryRowContext(ctx, db.rebind(query+` RETURNING `+deviceColumns), args...))
	if err != nil {
		return nil, wrap(err, "set device %q online", id)
	}
	return d, nil
}

// onlineUpdate returns the statement of SetDeviceOnline, without the
// columns it returns. A zero s.At is now; a zero s.ProductID keeps the
// product.
func onlineUpdate(id string, s store.DeviceSession) (string, []any) {
	at := s.At
	if at.IsZero() {
		at = now()
	}
	ms := toMS(at)
	query := `UPDATE devices SET online = TRUE, node = ?, session_id = ?, last_ip = ?, last_handshake_at = ?, ` +
		lastHeardSet + `, platform_id = ?, product_version = ?, system_module_version = ?`
	args := []any{s.Node, s.SessionID, s.IP, ms, ms, ms, s.PlatformID, s.ProductVersion, s.SystemModuleVersion}
	if s.ProductID != 0 {
		query += `, product_id = ?`
		args = append(args, s.ProductID)
	}
	return query + ` WHERE id = ?`, append(args, id)
}

// offlineUpdate is the statement of SetDeviceOffline; its arguments are
// the last-heard time (twice, in milliseconds), the ID and the session.
const offlineUpdate = `UPDATE devices SET online = FALSE, node = '', session_id = '', ` + lastHeardSet + `
		WHERE id = ? AND session_id = ?`

// SetDeviceOffline marks the device offline if sessionID is still its
// session, and reports whether it did. A zero at is now.
func (db *DB) SetDeviceOffline(ctx context.Context, id, sessionID string, at time.Time) (bool, error) {
	if sessionID == "" {
		return false, nil
	}
	if at.IsZero() {
		at = now()
	}
	ms := toMS(at)
	res, err := db.exec(ctx, db.w, offlineUpdate, ms, ms, id, sessionID)
	if err != nil {
		return false, wrap(err, "set device %q offline", id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "set device %q offline", id)
	}
	return n > 0, nil
}

// SetDeviceDescribe stores the parts of d named by d.Parts; with no part
// named it does nothing. An empty Status is store.DeviceStatusNormal.
func (db *DB) SetDeviceDescribe(ctx context.Context, id string, d store.Describe) error {
	var (
		sets []string
		args []any
	)
	if d.Parts&store.DescribeApplication != 0 {
		functions, err := encodeJSONList(d.Functions)
		if err != nil {
			return fmt.Errorf("sqlstore: describe device %q: %w", id, err)
		}
		variables := "{}"
		if len(d.Variables) > 0 {
			b, err := json.Marshal(d.Variables)
			if err != nil {
				return fmt.Errorf("sqlstore: describe device %q: %w", id, err)
			}
			variables = string(b)
		}
		sets = append(sets, "functions = ?", "variables = ?")
		args = append(args, functions, variables)
	}
	if d.Parts&store.DescribeSystem != 0 {
		status := d.Status
		if status == "" {
			status = store.DeviceStatusNormal
		}
		sets = append(sets, "system_version = ?", "status = ?")
		args = append(args, d.SystemVersion, status)
	}
	if len(sets) == 0 {
		return nil
	}
	err := db.execOne(ctx, db.w, `UPDATE devices SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
	return wrap(err, "describe device %q", id)
}

// SetDeviceSubscriptions replaces the device's subscriptions.
func (db *DB) SetDeviceSubscriptions(ctx context.Context, id string, subs []store.Subscription) error {
	list, err := encodeJSONList(subs)
	if err != nil {
		return fmt.Errorf("sqlstore: subscriptions of device %q: %w", id, err)
	}
	err = db.execOne(ctx, db.w, `UPDATE devices SET subscriptions = ? WHERE id = ?`, list, id)
	return wrap(err, "subscriptions of device %q", id)
}

// SetFirmwareUpdatesEnabled records whether the device accepts firmware
// updates.
func (db *DB) SetFirmwareUpdatesEnabled(ctx context.Context, id string, enabled bool) error {
	err := db.execOne(ctx, db.w, `UPDATE devices SET firmware_updates_enabled = ? WHERE id = ?`, enabled, id)
	return wrap(err, "firmware updates of device %q", id)
}

// TouchDevices moves LastHeard of many devices forward in one statement,
// which is its own transaction: PostgreSQL joins the batch as two arrays,
// SQLite as a JSON object of ID to milliseconds.
func (db *DB) TouchDevices(ctx context.Context, lastHeard map[string]time.Time) error {
	return wrap(db.touchDevices(ctx, db.w, lastHeard), "touch %d devices", len(lastHeard))
}

// touchDevices is TouchDevices on q.
func (db *DB) touchDevices(ctx context.Context, q execer, lastHeard map[string]time.Time) error {
	if len(lastHeard) == 0 {
		return nil
	}
	var err error
	if db.dialect == dialectPostgres {
		// Sorted, which makes a deadlock between two nodes' overlapping
		// batches unlikely; should one happen, PostgreSQL aborts one batch
		// and its error reaches the caller, which may retry it.
		ids := make([]string, 0, len(lastHeard))
		for id := range lastHeard {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		times := make([]int64, len(ids))
		for i, id := range ids {
			times[i] = toMS(lastHeard[id])
		}
		_, err = q.ExecContext(ctx, `UPDATE devices SET last_heard = v.t
			FROM unnest($1::text[], $2::bigint[]) AS v(id, t)
			WHERE devices.id = v.id AND (devices.last_heard IS NULL OR devices.last_heard < v.t)`, ids, times)
	} else {
		batch := make(map[string]int64, len(lastHeard))
		for id, t := range lastHeard {
			batch[id] = toMS(t)
		}
		var obj []byte
		if obj, err = json.Marshal(batch); err == nil {
			_, err = q.ExecContext(ctx, `UPDATE devices SET last_heard = j.value FROM json_each(?) AS j
				WHERE devices.id = j.key AND (devices.last_heard IS NULL OR devices.last_heard < j.value)`, string(obj))
		}
	}
	return err
}

// resetNodeChunk is how many devices each of ResetNode's transactions
// marks offline.
const resetNodeChunk = 2000

// ResetNode marks offline the devices that node holds from sessions whose
// handshake was before at, and returns their IDs, sorted. It writes them
// resetNodeChunk per transaction (ResetNodeBatch), so that a fleet of a
// hundred thousand does not hold the writer in one.
func (db *DB) ResetNode(ctx context.Context, node string, at time.Time) ([]string, error) {
	var ids []string
	for {
		chunk, err := db.ResetNodeBatch(ctx, node, at, resetNodeChunk)
		if err != nil {
			return nil, err
		}
		ids = append(ids, chunk...)
		if len(chunk) < resetNodeChunk {
			break
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ResetNodeBatch marks offline at most limit devices that node holds from
// sessions whose handshake was before at, in one statement, and returns
// their IDs, sorted. The devices_node index, which holds only devices
// with a node (migration 0019), finds them: the query excludes the empty
// node as the index does, so that SQLite and PostgreSQL may use it.
func (db *DB) ResetNodeBatch(ctx context.Context, node string, at time.Time, limit int) ([]string, error) {
	if node == "" || limit <= 0 {
		return nil, nil
	}
	// One statement, its own transaction: inside a longer one, SQLite
	// would keep a statement journal of every page it changes.
	ids, err := db.collectStrings(ctx, db.w, `UPDATE devices SET online = FALSE, node = '', session_id = ''
		WHERE id IN (SELECT id FROM devices
			WHERE node = ? AND node <> '' AND (last_handshake_at IS NULL OR last_handshake_at < ?) LIMIT ?)
		RETURNING id`, node, toMS(at), limit)
	if err != nil {
		return nil, wrap(err, "reset node %q", node)
	}
	slices.Sort(ids)
	return ids, nil
}

// SetDevicesOffline marks many devices offline in one statement, each
// only if its session is still the given one: PostgreSQL joins the batch
// as three arrays, SQLite as a JSON object of ID to [session, last heard
// in milliseconds]. One statement for a chunk of a shutdown's sessions
// costs one round trip and one commit where SetDeviceOffline costs one
// each.
func (db *DB) SetDevicesOffline(ctx context.Context, offs []store.DeviceOffline) ([]bool, error) {
	applied := make([]bool, len(offs))
	if len(offs) == 0 {
		return applied, nil
	}
	index := make(map[string]int, len(offs))
	nowMS := toMS(now())
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return nowMS
		}
		return toMS(t)
	}
	// order: the first entry of each device, those with a session.
	order := make([]int, 0, len(offs))
	for i, o := range offs {
		if o.SessionID == "" {
			continue
		}
		if _, dup := index[o.ID]; dup {
			continue
		}
		index[o.ID] = i
		order = append(order, i)
	}
	var (
		done []string
		err  error
	)
	if db.dialect == dialectPostgres {
		// Sorted by ID, as TouchDevices, against deadlocks with another
		// node's overlapping batch.
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(offs[a].ID, offs[b].ID) })
		ids, sids, times := make([]string, len(order)), make([]string, len(order)), make([]int64, len(order))
		for k, i := range order {
			ids[k], sids[k], times[k] = offs[i].ID, offs[i].SessionID, ms(offs[i].At)
		}
		done, err = db.collectStrings(ctx, db.w, `UPDATE devices SET online = FALSE, node = '', session_id = '',
				last_heard = CASE WHEN devices.last_heard IS NULL OR devices.last_heard < v.t THEN v.t ELSE devices.last_heard END
			FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(id, sid, t)
			WHERE devices.id = v.id AND devices.session_id = v.sid
			RETURNING devices.id`, ids, sids, times)
	} else {
		batch := make(map[string][2]any, len(order))
		for _, i := range order {
			batch[offs[i].ID] = [2]any{offs[i].SessionID, ms(offs[i].At)}
		}
		var obj []byte
		if obj, err = json.Marshal(batch); err == nil {
			done, err = db.collectStrings(ctx, db.w, `UPDATE devices SET online = FALSE, node = '', session_id = '',
					last_heard = CASE WHEN last_heard IS NULL OR last_heard < json_extract(j.value, '$[1]')
						THEN json_extract(j.value, '$[1]') ELSE last_heard END
				FROM json_each(?) AS j
				WHERE devices.id = j.key AND devices.session_id = json_extract(j.value, '$[0]')
				RETURNING devices.id`, string(obj))
		}
	}
	if err != nil {
		return nil, wrap(err, "set %d devices offline", len(offs))
	}
	for _, id := range done {
		if i, ok := index[id]; ok {
			applied[i] = true
		}
	}
	return applied, nil
}

// DeleteDevice removes the device and its saved DTLS sessions, or fails
// with store.ErrNotFound. The device goes first: on PostgreSQL a
// concurrent SaveDTLSSession, which locks the device row, then either
// finds it gone or commits before the sessions are deleted.
func (db *DB) DeleteDevice(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, `DELETE FROM devices WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := db.exec(ctx, tx, `DELETE FROM dtls_sessions WHERE device_id = ?`, id); err != nil {
			return err
		}
		_, err := db.exec(ctx, tx, `DELETE FROM device_firmware WHERE device_id = ?`, id)
		return err
	})
	return wrap(err, "delete device %q", id)
}

// scanDevice reads one row of deviceColumns.
func scanDevice(row rowScanner) (*store.Device, error) {
	var (
		d                          store.Device
		heard, handshake           sql.NullInt64
		functions, variables, subs string
		created, updated           int64
	)
	err := row.Scan(&d.ID, &d.Name, &d.OwnerID, &d.CustomerID, &d.ProductID, &d.PlatformID, &d.PublicKey,
		&d.KeyAlgorithm, &d.Notes, &d.Online, &d.Node, &d.SessionID, &heard, &handshake, &d.LastIP,
		&d.SystemVersion, &d.SystemModuleVersion, &d.ProductVersion, &functions, &variables, &subs,
		&d.Status, &d.FirmwareUpdatesEnabled, &d.Development, &d.Quarantined, &d.Denied,
		&d.FirmwareUpdatesForced, &created, &updated)
	if err != nil {
		return nil, err
	}
	d.LastHeard, d.LastHandshakeAt = fromNullMS(heard), fromNullMS(handshake)
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	if d.Functions, err = decodeJSONList[string](functions); err != nil {
		return nil, fmt.Errorf("device %s: functions: %w", d.ID, err)
	}
	if d.Subscriptions, err = decodeJSONList[store.Subscription](subs); err != nil {
		return nil, fmt.Errorf("device %s: subscriptions: %w", d.ID, err)
	}
	if variables != "{}" && variables != "" {
		if err := json.Unmarshal([]byte(variables), &d.Variables); err != nil {
			return nil, fmt.Errorf("device %s: variables: %w", d.ID, err)
		}
		if len(d.Variables) == 0 {
			d.Variables = nil
		}
	}
	return &d, nil
}

// encodeJSONList stores a list as a JSON array; an empty list is "[]".
func encodeJSONList[T any](list []T) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeJSONList reverses encodeJSONList; an empty array is a nil list.
func decodeJSONList[T any](s string) ([]T, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var list []T
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}
