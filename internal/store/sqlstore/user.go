package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wick-cloud/wick/internal/store"
)

const userColumns = `id, username, password_hash, first_name, last_name, company_name,
	business_account, verified, mfa_enabled, mfa_secret, mfa_recovery_hashes, created_at, updated_at`

// userSelect is userColumns and the row version (migration 0011), which
// CreateUser leaves to its default of 1.
const userSelect = userColumns + `, version`

// CreateUser inserts u, assigning u.ID when empty and the timestamps when
// zero. It fails with store.ErrConflict if the username or ID exists.
func (db *DB) CreateUser(ctx context.Context, u *store.User) error {
	if u.ID == "" {
		u.ID = newID()
	}
	t := now()
	stamp(&u.CreatedAt, t)
	stamp(&u.UpdatedAt, t)
	recovery, err := encodeStrings(u.MFARecoveryHashes)
	if err != nil {
		return fmt.Errorf("sqlstore: create user %q: %w", u.Username, err)
	}
	_, err = db.exec(ctx, db.w, `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, u.AccountInfo.FirstName, u.AccountInfo.LastName,
		u.AccountInfo.CompanyName, u.AccountInfo.BusinessAccount, u.Verified, u.MFAEnabled,
		u.MFASecret, recovery, toMS(u.CreatedAt), toMS(u.UpdatedAt))
	if err == nil {
		u.Version = 1
	}
	return wrap(err, "create user %q", u.Username)
}

// UserByID returns the user or store.ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*store.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "user %q", id)
	}
	return u, nil
}

// UserByUsername returns the user with that username or store.ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (*store.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE username = ?`, username))
	if err != nil {
		return nil, wrap(err, "user %q", username)
	}
	return u, nil
}

// UpdateUser replaces every mutable field of the user with ID u.ID. A zero
// UpdatedAt is set to now. When u.Version is set (u was read from the
// store) the row must still have that version, so that two servers
// updating one user from the same read cannot undo each other: the second
// fails with store.ErrStale. On success the row's version, and u.Version
// when set, go up by one. It fails with store.ErrConflict on a username
// clash and store.ErrNotFound if absent.
func (db *DB) UpdateUser(ctx context.Context, u *store.User) error {
	stamp(&u.UpdatedAt, now())
	recovery, err := encodeStrings(u.MFARecoveryHashes)
	if err != nil {
		return fmt.Errorf("sqlstore: update user %q: %w", u.ID, err)
	}
	res, err := db.exec(ctx, db.w, `UPDATE users SET username = ?, password_hash = ?,
		first_name = ?, last_name = ?, company_name = ?, business_account = ?,
		verified = ?, mfa_enabled = ?, mfa_secret = ?, mfa_recovery_hashes = ?, updated_at = ?,
		version = version + 1
		WHERE id = ? AND (? = 0 OR version = ?)`,
		u.Username, u.PasswordHash, u.AccountInfo.FirstName, u.AccountInfo.LastName,
		u.AccountInfo.CompanyName, u.AccountInfo.BusinessAccount, u.Verified, u.MFAEnabled,
		u.MFASecret, recovery, toMS(u.UpdatedAt), u.ID, u.Version, u.Version)
	if err != nil {
		return wrap(err, "update user %q", u.ID)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		if err == nil && u.Version > 0 {
			u.Version++
		}
		return wrap(err, "update user %q", u.ID)
	}
	// No row: the user is gone, or another writer changed it first.
	var one int
	err = db.w.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM users WHERE id = ?`), u.ID).Scan(&one)
	if err == nil {
		return fmt.Errorf("sqlstore: update user %q at version %d: %w", u.ID, u.Version, store.ErrStale)
	}
	return wrap(err, "update user %q", u.ID)
}

// DeleteUser removes the user with its OAuth clients, access and refresh
// tokens, challenges, claim codes, team memberships and sandbox webhooks
// (with their delivery logs), and unclaims its devices (they keep their
// names and products), in one transaction. Product webhooks the user
// created stay. It fails with store.ErrNotFound if absent.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var username string
		err := tx.QueryRowContext(ctx, db.rebind(`DELETE FROM users WHERE id = ? RETURNING username`), id).Scan(&username)
		if err != nil {
			return err
		}
		for _, q := range []struct {
			query string
			args  []any
		}{
			{`DELETE FROM oauth_clients WHERE owner_id = ?`, []any{id}},
			{`DELETE FROM access_tokens WHERE user_id = ?`, []any{id}},
			{`DELETE FROM refresh_tokens WHERE user_id = ?`, []any{id}},
			{`DELETE FROM challenges WHERE user_id = ?`, []any{id}},
			{`DELETE FROM claim_codes WHERE user_id = ?`, []any{id}},
			{`UPDATE devices SET owner_id = '', updated_at = ? WHERE owner_id = ?`, []any{toMS(now()), id}},
			{`DELETE FROM team_members WHERE username = ?`, []any{username}},
			{`DELETE FROM webhook_deliveries WHERE webhook_id IN (
				SELECT id FROM webhooks WHERE user_id = ? AND product_id = 0)`, []any{id}},
			{`DELETE FROM webhooks WHERE user_id = ? AND product_id = 0`, []any{id}},
		} {
			if _, err := db.exec(ctx, tx, q.query, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "delete user %q", id)
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, wrap(err, "count users")
	}
	return n, nil
}

// scanUser reads one row of userSelect.
func scanUser(row rowScanner) (*store.User, error) {
	var (
		u                store.User
		recovery         sql.NullString
		created, updated int64
	)
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.AccountInfo.FirstName,
		&u.AccountInfo.LastName, &u.AccountInfo.CompanyName, &u.AccountInfo.BusinessAccount,
		&u.Verified, &u.MFAEnabled, &u.MFASecret, &recovery, &created, &updated, &u.Version)
	if err != nil {
		return nil, err
	}
	if u.MFARecoveryHashes, err = decodeStrings(recovery); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(updated)
	return &u, nil
}

// encodeStrings stores a string list as a JSON array; an empty list is NULL.
func encodeStrings(list []string) (sql.NullString, error) {
	if len(list) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// decodeStrings reverses encodeStrings; NULL is a nil list.
func decodeStrings(v sql.NullString) ([]string, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(v.String), &list); err != nil {
		return nil, fmt.Errorf("decode string list: %w", err)
	}
	return list, nil
}

// UseMFAStep records the user's newest spent TOTP step; an older or equal
// step is store.ErrConflict, an absent user store.ErrNotFound.
func (db *DB) UseMFAStep(ctx context.Context, userID string, step int64) error {
	err := db.execOne(ctx, db.w, `UPDATE users SET mfa_last_step = ? WHERE id = ? AND mfa_last_step < ?`,
		step, userID, step)
	if errors.Is(err, store.ErrNotFound) {
		var one int
		if qerr := db.w.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM users WHERE id = ?`), userID).Scan(&one); qerr == nil {
			err = store.ErrConflict
		}
	}
	return wrap(err, "use mfa step of %q", userID)
}
