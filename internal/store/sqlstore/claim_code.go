package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const claimCodeColumns = `hash, user_id, customer_id, product_id, expires_at, created_at`

// CreateClaimCode inserts c, setting CreatedAt when zero. It fails with
// store.ErrConflict if the hash exists.
func (db *DB) CreateClaimCode(ctx context.Context, c *store.ClaimCode) error {
	stamp(&c.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO claim_codes (`+claimCodeColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		c.Hash, c.UserID, c.CustomerID, c.ProductID, toMS(c.ExpiresAt), toMS(c.CreatedAt))
	return wrap(err, "create claim code")
}

// ClaimCodeByHash returns the claim code without deleting it, or
// store.ErrNotFound when it is absent or expired before now (compared in
// whole milliseconds, as TakeClaimCode does).
func (db *DB) ClaimCodeByHash(ctx context.Context, hash string, now time.Time) (*store.ClaimCode, error) {
	var (
		c                store.ClaimCode
		expires, created int64
	)
	err := db.queryRow(ctx, `SELECT `+claimCodeColumns+` FROM claim_codes WHERE hash = ? AND expires_at >= ?`,
		hash, toMS(now)).Scan(&c.Hash, &c.UserID, &c.CustomerID, &c.ProductID, &expires, &created)
	if err != nil {
		return nil, wrap(err, "claim code")
	}
	c.ExpiresAt, c.CreatedAt = fromMS(expires), fromMS(created)
	return &c, nil
}

// TakeClaimCode deletes and returns the claim code in one statement, so
// that of concurrent callers at most one gets it. A code that expired
// before now (compared in whole milliseconds, as DeleteExpired does) is
// deleted too, and reported as store.ErrNotFound.
func (db *DB) TakeClaimCode(ctx context.Context, hash string, now time.Time) (*store.ClaimCode, error) {
	var (
		c                store.ClaimCode
		expires, created int64
	)
	err := db.w.QueryRowContext(ctx, db.rebind(`DELETE FROM claim_codes WHERE hash = ? RETURNING `+claimCodeColumns), hash).
		Scan(&c.Hash, &c.UserID, &c.CustomerID, &c.ProductID, &expires, &created)
	if err != nil {
		return nil, wrap(err, "take claim code")
	}
	if expires < toMS(now) {
		return nil, fmt.Errorf("sqlstore: take claim code: expired: %w", store.ErrNotFound)
	}
	c.ExpiresAt, c.CreatedAt = fromMS(expires), fromMS(created)
	return &c, nil
}

// DeleteClaimCodesByUser removes a user's claim codes and returns how many
// went.
func (db *DB) DeleteClaimCodesByUser(ctx context.Context, userID string) (int, error) {
	n, err := db.deleteClaimCodesWhere(ctx, "user_id", userID)
	return n, wrap(err, "delete claim codes of user %q", userID)
}

// DeleteClaimCodesByCustomer removes a customer's claim codes and returns
// how many went.
func (db *DB) DeleteClaimCodesByCustomer(ctx context.Context, customerID string) (int, error) {
	n, err := db.deleteClaimCodesWhere(ctx, "customer_id", customerID)
	return n, wrap(err, "delete claim codes of customer %q", customerID)
}

// deleteClaimCodesWhere removes the claim codes whose column (a fixed name,
// never caller input) equals value. An empty value matches nothing.
func (db *DB) deleteClaimCodesWhere(ctx context.Context, column, value string) (int, error) {
	if value == "" {
		return 0, nil
	}
	res, err := db.exec(ctx, db.w, `DELETE FROM claim_codes WHERE `+column+` = ?`, value)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
