package sqlstore

import (
	"context"

	"github.com/wick-cloud/wick/internal/store"
)

// CreateChallenge inserts c, setting CreatedAt when zero. It fails with
// store.ErrConflict if the hash exists.
func (db *DB) CreateChallenge(ctx context.Context, c *store.Challenge) error {
	stamp(&c.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO challenges (hash, purpose, user_id, data, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.Hash, c.Purpose, c.UserID, c.Data, toMS(c.ExpiresAt), toMS(c.CreatedAt))
	return wrap(err, "create %s challenge", c.Purpose)
}

// ChallengeByHash returns the challenge with that hash and purpose, expired
// or not, or store.ErrNotFound.
func (db *DB) ChallengeByHash(ctx context.Context, hash, purpose string) (*store.Challenge, error) {
	var (
		c                store.Challenge
		expires, created int64
	)
	err := db.queryRow(ctx, `SELECT hash, purpose, user_id, data, expires_at, created_at
		FROM challenges WHERE hash = ? AND purpose = ?`, hash, purpose).
		Scan(&c.Hash, &c.Purpose, &c.UserID, &c.Data, &expires, &created)
	if err != nil {
		return nil, wrap(err, "%s challenge", purpose)
	}
	c.ExpiresAt, c.CreatedAt = fromMS(expires), fromMS(created)
	return &c, nil
}

// DeleteChallenge removes the challenge, or fails with store.ErrNotFound
// when it is absent (already used).
func (db *DB) DeleteChallenge(ctx context.Context, hash string) error {
	err := db.execOne(ctx, db.w, `DELETE FROM challenges WHERE hash = ?`, hash)
	return wrap(err, "delete challenge")
}
