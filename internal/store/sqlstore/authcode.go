package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const authCodeColumns = `hash, client_id, redirect_uri, code_challenge, kind, user_id, customer_id, product_id,
	scope, access_hash, used_at, expires_at, created_at`

// CreateAuthCode inserts c, setting CreatedAt when zero. It fails with
// store.ErrConflict if the hash exists.
func (db *DB) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	stamp(&c.CreatedAt, now())
	c.ExpiresAt = fromMS(toMS(c.ExpiresAt))
	_, err := db.exec(ctx, db.w, `INSERT INTO auth_codes (`+authCodeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Kind, c.UserID, c.CustomerID, c.ProductID,
		c.Scope, c.AccessHash, nullMS(c.UsedAt), toMS(c.ExpiresAt), toMS(c.CreatedAt))
	return wrap(err, "create authorization code")
}

// UseAuthCode marks the code used at now with one conditional UPDATE, so
// that of two concurrent uses exactly one changes the row, then reads it
// back from the writer (which has seen the update). A code used before is
// returned with an error wrapping store.ErrConflict.
func (db *DB) UseAuthCode(ctx context.Context, hash string, now time.Time) (*store.AuthCode, error) {
	res, err := db.exec(ctx, db.w, `UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL`, toMS(now), hash)
	if err != nil {
		return nil, wrap(err, "use authorization code")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, wrap(err, "use authorization code")
	}
	c, err := scanAuthCode(db.w.QueryRowContext(ctx, db.rebind(`SELECT `+authCodeColumns+` FROM auth_codes WHERE hash = ?`), hash))
	if err != nil {
		return nil, wrap(err, "use authorization code")
	}
	if n == 0 {
		return c, fmt.Errorf("sqlstore: authorization code used before: %w", store.ErrConflict)
	}
	return c, nil
}

// SetAuthCodeToken records the access token minted from a used code.
func (db *DB) SetAuthCodeToken(ctx context.Context, hash, accessHash string) error {
	err := db.execOne(ctx, db.w, `UPDATE auth_codes SET access_hash = ? WHERE hash = ?`, accessHash, hash)
	return wrap(err, "record authorization code token")
}

// deleteExpiredAuthCodes removes, within DeleteExpired's transaction, the
// codes that expired more than store.AuthCodeRetention before now.
func (db *DB) deleteExpiredAuthCodes(ctx context.Context, tx *sql.Tx, now time.Time) (int64, error) {
	res, err := db.exec(ctx, tx, `DELETE FROM auth_codes WHERE expires_at < ?`, toMS(now.Add(-store.AuthCodeRetention)))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// scanAuthCode reads one row of authCodeColumns.
func scanAuthCode(row rowScanner) (*store.AuthCode, error) {
	var (
		c                store.AuthCode
		used             sql.NullInt64
		expires, created int64
	)
	err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Kind, &c.UserID, &c.CustomerID,
		&c.ProductID, &c.Scope, &c.AccessHash, &used, &expires, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.UsedAt = fromNullMS(used)
	c.ExpiresAt, c.CreatedAt = fromMS(expires), fromMS(created)
	return &c, nil
}
