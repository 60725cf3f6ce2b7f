package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// PutFirmwareBinary stores data once under its SHA-256 hex and returns the
// hash; storing the same bytes again changes nothing.
func (db *DB) PutFirmwareBinary(ctx context.Context, data []byte) (string, error) {
	if data == nil {
		data = []byte{} // an empty binary, not NULL
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	t := toMS(now())
	_, err := db.exec(ctx, db.w, `INSERT INTO firmware_binaries (hash, size, data, created_at, used_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET used_at = excluded.used_at`, hash, len(data), data, t, t)
	if err != nil {
		return "", wrap(err, "put firmware binary %s", hash)
	}
	return hash, nil
}

// FirmwareBinary returns the binary with that SHA-256 hex or
// store.ErrNotFound.
func (db *DB) FirmwareBinary(ctx context.Context, hash string) ([]byte, error) {
	var data []byte
	if err := db.queryRow(ctx, `SELECT data FROM firmware_binaries WHERE hash = ?`, hash).Scan(&data); err != nil {
		return nil, wrap(err, "firmware binary %s", hash)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// DeleteUnusedFirmwareBinaries deletes the binaries g says nothing needs.
// The checks and the deletion are one statement; a binary being uploaded
// is protected by its used_at, renewed by PutFirmwareBinary before the
// caller names it.
func (db *DB) DeleteUnusedFirmwareBinaries(ctx context.Context, g store.FirmwareGC) (int, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM firmware_binaries
		WHERE used_at < ?
		AND NOT EXISTS (SELECT 1 FROM product_firmware p WHERE p.hash = firmware_binaries.hash)
		AND NOT EXISTS (SELECT 1 FROM device_firmware d WHERE d.hash = firmware_binaries.hash
			AND COALESCE(d.finished_at, d.started_at, d.updated_at) >= ?)`,
		toMS(g.UsedBefore), toMS(g.UpdatesSince))
	if err != nil {
		return 0, wrap(err, "delete unused firmware binaries")
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err, "delete unused firmware binaries")
}

// otaSlotKey is the cluster counter (cluster_counters) whose expiry is the
// product's next free automatic update slot.
func otaSlotKey(productID int64) string {
	return "ota/slot/" + strconv.FormatInt(productID, 10)
}

// ClaimOTASlot reserves the product's next automatic update slot in one
// upsert of a cluster counter: its expires_at is the next free slot, its
// count the slots claimed (a counter expired and collected restarts the
// schedule at now, which it would anyway).
func (db *DB) ClaimOTASlot(ctx context.Context, productID int64, now time.Time, interval time.Duration) (time.Time, error) {
	step := max(interval.Milliseconds(), 1)
	n := toMS(now)
	var next int64
	err := db.w.QueryRowContext(ctx, db.rebind(`INSERT INTO cluster_counters (key, count, expires_at) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET count = cluster_counters.count + 1,
			expires_at = CASE WHEN cluster_counters.expires_at <= ? THEN excluded.expires_at
				ELSE cluster_counters.expires_at + ? END
		RETURNING expires_at`), otaSlotKey(productID), n+step, n, step).Scan(&next)
	if err != nil {
		return time.Time{}, wrap(err, "claim update slot of product %d", productID)
	}
	return fromMS(next - step), nil
}

// productFirmwareColumns are read by scanProductFirmware.
const productFirmwareColumns = `product_id, version, title, description, file_name, hash, size, platform_id,
	uploaded_by, product_default, released_at, released_by, created_at, updated_at`

// CreateProductFirmware inserts f as an unreleased version, or fails with
// store.ErrConflict when the product has that version.
func (db *DB) CreateProductFirmware(ctx context.Context, f *store.ProductFirmware) error {
	t := now()
	stamp(&f.CreatedAt, t)
	stamp(&f.UpdatedAt, f.CreatedAt)
	f.ProductDefault, f.ReleasedAt, f.ReleasedBy = false, nil, ""
	_, err := db.exec(ctx, db.w, `INSERT INTO product_firmware (`+productFirmwareColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ProductID, f.Version, f.Title, f.Description, f.FileName, f.Hash, f.Size, f.PlatformID,
		f.UploadedBy, false, nil, "", toMS(f.CreatedAt), toMS(f.UpdatedAt))
	return wrap(err, "create firmware version %d of product %d", f.Version, f.ProductID)
}

// ProductFirmware returns one version or store.ErrNotFound.
func (db *DB) ProductFirmware(ctx context.Context, productID int64, version int) (*store.ProductFirmware, error) {
	f, err := scanProductFirmware(db.queryRow(ctx, `SELECT `+productFirmwareColumns+`
		FROM product_firmware WHERE product_id = ? AND version = ?`, productID, version))
	if err != nil {
		return nil, wrap(err, "firmware version %d of product %d", version, productID)
	}
	return f, nil
}

// ProductFirmwares lists a product's firmware, newest version first.
func (db *DB) ProductFirmwares(ctx context.Context, productID int64) ([]store.ProductFirmware, error) {
	var out []store.ProductFirmware
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		f, err := scanProductFirmware(rows)
		if err != nil {
			return err
		}
		out = append(out, *f)
		return nil
	}, `SELECT `+productFirmwareColumns+` FROM product_firmware WHERE product_id = ? ORDER BY version DESC`, productID)
	if err != nil {
		return nil, wrap(err, "firmware of product %d", productID)
	}
	return out, nil
}

// UpdateProductFirmware replaces Title, Description and UpdatedAt.
func (db *DB) UpdateProductFirmware(ctx context.Context, f *store.ProductFirmware) error {
	f.UpdatedAt = time.Time{}
	stamp(&f.UpdatedAt, now())
	err := db.execOne(ctx, db.w, `UPDATE product_firmware SET title = ?, description = ?, updated_at = ?
		WHERE product_id = ? AND version = ?`, f.Title, f.Description, toMS(f.UpdatedAt), f.ProductID, f.Version)
	return wrap(err, "update firmware version %d of product %d", f.Version, f.ProductID)
}

// ReleaseProductFirmware makes version the only product default.
func (db *DB) ReleaseProductFirmware(ctx context.Context, productID int64, version int, by string, at time.Time) (*store.ProductFirmware, error) {
	stamp(&at, now())
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.exec(ctx, tx, `UPDATE product_firmware SET product_default = ?
			WHERE product_id = ? AND product_default = ? AND version <> ?`, false, productID, true, version); err != nil {
			return err
		}
		return db.execOne(ctx, tx, `UPDATE product_firmware SET product_default = ?, released_at = ?, released_by = ?, updated_at = ?
			WHERE product_id = ? AND version = ?`, true, toMS(at), by, toMS(at), productID, version)
	})
	if err != nil {
		return nil, wrap(err, "release firmware version %d of product %d", version, productID)
	}
	return db.ProductFirmware(ctx, productID, version)
}

// UnreleaseProductFirmware leaves the product without a default release.
func (db *DB) UnreleaseProductFirmware(ctx context.Context, productID int64) error {
	_, err := db.exec(ctx, db.w, `UPDATE product_firmware SET product_default = ?
		WHERE product_id = ? AND product_default = ?`, false, productID, true)
	return wrap(err, "unrelease firmware of product %d", productID)
}

// ProductDefaultFirmware returns the released version or store.ErrNotFound.
func (db *DB) ProductDefaultFirmware(ctx context.Context, productID int64) (*store.ProductFirmware, error) {
	f, err := scanProductFirmware(db.queryRow(ctx, `SELECT `+productFirmwareColumns+`
		FROM product_firmware WHERE product_id = ? AND product_default = ?`, productID, true))
	if err != nil {
		return nil, wrap(err, "default firmware of product %d", productID)
	}
	return f, nil
}

// DeleteProductFirmware removes one version or fails with
// store.ErrNotFound.
func (db *DB) DeleteProductFirmware(ctx context.Context, productID int64, version int) error {
	err := db.execOne(ctx, db.w, `DELETE FROM product_firmware WHERE product_id = ? AND version = ?`, productID, version)
	return wrap(err, "delete firmware version %d of product %d", version, productID)
}

// scanProductFirmware reads one row of productFirmwareColumns.
func scanProductFirmware(row rowScanner) (*store.ProductFirmware, error) {
	var (
		f                  store.ProductFirmware
		released           sql.NullInt64
		created, updated   int64
		version, size, pid int64
	)
	if err := row.Scan(&f.ProductID, &version, &f.Title, &f.Description, &f.FileName, &f.Hash, &size, &pid,
		&f.UploadedBy, &f.ProductDefault, &released, &f.ReleasedBy, &created, &updated); err != nil {
		return nil, err
	}
	f.Version, f.Size, f.PlatformID = int(version), int(size), int(pid)
	f.ReleasedAt = fromNullMS(released)
	f.CreatedAt, f.UpdatedAt = fromMS(created), fromMS(updated)
	return &f, nil
}

// deviceFirmwareColumns are read by scanDeviceFirmware.
const deviceFirmwareColumns = `device_id, product_id, desired_version, hash, version, status, error, attempts,
	started_at, finished_at, updated_at`

// DeviceFirmware returns the device's firmware state or store.ErrNotFound.
func (db *DB) DeviceFirmware(ctx context.Context, deviceID string) (*store.DeviceFirmware, error) {
	d, err := scanDeviceFirmware(db.queryRow(ctx, `SELECT `+deviceFirmwareColumns+`
		FROM device_firmware WHERE device_id = ?`, deviceID))
	if err != nil {
		return nil, wrap(err, "firmware state of device %s", deviceID)
	}
	return d, nil
}

// DeviceFirmwaresByProduct lists the firmware state recorded with one
// product, by device ID.
func (db *DB) DeviceFirmwaresByProduct(ctx context.Context, productID int64) ([]store.DeviceFirmware, error) {
	var out []store.DeviceFirmware
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		d, err := scanDeviceFirmware(rows)
		if err != nil {
			return err
		}
		out = append(out, *d)
		return nil
	}, `SELECT `+deviceFirmwareColumns+` FROM device_firmware WHERE product_id = ? ORDER BY device_id`, productID)
	if err != nil {
		return nil, wrap(err, "device firmware of product %d", productID)
	}
	return out, nil
}

// SetDeviceFirmwareLock locks the device to version, or unlocks it.
func (db *DB) SetDeviceFirmwareLock(ctx context.Context, deviceID string, productID int64, version *int) error {
	var v sql.NullInt64
	if version != nil {
		v = sql.NullInt64{Int64: int64(*version), Valid: true}
	}
	_, err := db.exec(ctx, db.w, `INSERT INTO device_firmware (device_id, product_id, desired_version, updated_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET product_id = excluded.product_id,
			desired_version = excluded.desired_version, updated_at = excluded.updated_at`,
		deviceID, productID, v, toMS(now()))
	return wrap(err, "lock firmware of device %s", deviceID)
}

// StartDeviceOTA records a started update, unless another one is started
// and not stale (store.ErrConflict). The check and the write are one
// statement, so two servers cannot both start one.
func (db *DB) StartDeviceOTA(ctx context.Context, deviceID string, o store.DeviceOTA) error {
	stamp(&o.At, now())
	at := toMS(o.At)
	staleBefore := int64(math.MinInt64)
	if o.StaleAfter > 0 {
		staleBefore = at - o.StaleAfter.Milliseconds()
	}
	res, err := db.exec(ctx, db.w, `INSERT INTO device_firmware
		(device_id, product_id, hash, version, status, error, attempts, started_at, finished_at, updated_at)
		VALUES (?, ?, ?, ?, ?, '', 1, ?, NULL, ?)
		ON CONFLICT (device_id) DO UPDATE SET
			product_id = CASE WHEN excluded.product_id <> 0 THEN excluded.product_id ELSE device_firmware.product_id END,
			hash = excluded.hash, version = excluded.version, status = excluded.status, error = '',
			attempts = CASE WHEN device_firmware.hash = excluded.hash THEN device_firmware.attempts + 1 ELSE 1 END,
			started_at = excluded.started_at,
			finished_at = NULL, updated_at = excluded.updated_at
		WHERE device_firmware.status <> ? OR device_firmware.started_at IS NULL OR device_firmware.started_at < ?`,
		deviceID, o.ProductID, o.Hash, o.Version, store.OTAStarted, at, at, store.OTAStarted, staleBefore)
	if err != nil {
		return wrap(err, "start update of device %s", deviceID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "start update of device %s", deviceID)
	}
	if n == 0 {
		return wrap(store.ErrConflict, "start update of device %s: an update is in progress", deviceID)
	}
	return nil
}

// FinishDeviceOTA records the outcome of the started update of hash and
// reports whether one was started.
func (db *DB) FinishDeviceOTA(ctx context.Context, deviceID, hash, errText string, at time.Time) (bool, error) {
	stamp(&at, now())
	status := store.OTASuccess
	if errText != "" {
		status = store.OTAFailed
	}
	res, err := db.exec(ctx, db.w, `UPDATE device_firmware SET status = ?, error = ?, finished_at = ?, updated_at = ?
		WHERE device_id = ? AND hash = ? AND status = ?`,
		status, errText, toMS(at), toMS(at), deviceID, hash, store.OTAStarted)
	if err != nil {
		return false, wrap(err, "finish update of device %s", deviceID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "finish update of device %s", deviceID)
	}
	return n > 0, nil
}

// MarkDeviceOTASucceeded turns the latest update of hash into a success
// and reports whether it applied.
func (db *DB) MarkDeviceOTASucceeded(ctx context.Context, deviceID, hash string, at time.Time) (bool, error) {
	stamp(&at, now())
	res, err := db.exec(ctx, db.w, `UPDATE device_firmware SET status = ?, error = '', finished_at = ?, updated_at = ?
		WHERE device_id = ? AND hash = ? AND hash <> '' AND status <> ?`,
		store.OTASuccess, toMS(at), toMS(at), deviceID, hash, store.OTASuccess)
	if err != nil {
		return false, wrap(err, "mark update of device %s succeeded", deviceID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "mark update of device %s succeeded", deviceID)
	}
	return n > 0, nil
}

// DeleteDeviceFirmware forgets the device's firmware state.
func (db *DB) DeleteDeviceFirmware(ctx context.Context, deviceID string) error {
	_, err := db.exec(ctx, db.w, `DELETE FROM device_firmware WHERE device_id = ?`, deviceID)
	return wrap(err, "delete firmware state of device %s", deviceID)
}

// scanDeviceFirmware reads one row of deviceFirmwareColumns.
func scanDeviceFirmware(row rowScanner) (*store.DeviceFirmware, error) {
	var (
		d                 store.DeviceFirmware
		desired           sql.NullInt64
		started, finished sql.NullInt64
		version, attempts int64
		updated           int64
	)
	if err := row.Scan(&d.DeviceID, &d.ProductID, &desired, &d.Hash, &version, &d.Status, &d.Error, &attempts,
		&started, &finished, &updated); err != nil {
		return nil, err
	}
	if desired.Valid {
		v := int(desired.Int64)
		d.DesiredVersion = &v
	}
	d.Version, d.Attempts = int(version), int(attempts)
	d.StartedAt, d.FinishedAt = fromNullMS(started), fromNullMS(finished)
	d.UpdatedAt = fromMS(updated)
	return &d, nil
}
