package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const (
	tokenColumns   = `hash, kind, user_id, customer_id, product_id, client_id, scope, expires_at, created_at`
	refreshColumns = `hash, access_hash, kind, user_id, customer_id, product_id, client_id, scope, expires_at, created_at`
)

// CreateToken inserts t, setting CreatedAt when zero. It fails with
// store.ErrConflict if the hash exists.
func (db *DB) CreateToken(ctx context.Context, t *store.Token) error {
	stamp(&t.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO access_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.Kind, t.UserID, t.CustomerID, t.ProductID, t.ClientID, t.Scope, nullMS(t.ExpiresAt), toMS(t.CreatedAt))
	return wrap(err, "create %s token", t.Kind)
}

// TokenByHash returns the token, expired or not, or store.ErrNotFound.
func (db *DB) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(db.queryRow(ctx, `SELECT `+tokenColumns+` FROM access_tokens WHERE hash = ?`, hash))
	if err != nil {
		return nil, wrap(err, "token")
	}
	return t, nil
}

// TokensByUser lists a user's access tokens ordered by creation, then hash.
func (db *DB) TokensByUser(ctx context.Context, userID string) ([]store.Token, error) {
	if userID == "" {
		return nil, nil
	}
	var out []store.Token
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		t, err := scanToken(rows)
		if err != nil {
			return err
		}
		out = append(out, *t)
		return nil
	}, `SELECT `+tokenColumns+` FROM access_tokens WHERE user_id = ? ORDER BY created_at, hash`, userID)
	if err != nil {
		return nil, wrap(err, "tokens of user %q", userID)
	}
	return out, nil
}

// DeleteToken removes one access token and the refresh tokens issued with
// it, or fails with store.ErrNotFound.
func (db *DB) DeleteToken(ctx context.Context, hash string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, `DELETE FROM access_tokens WHERE hash = ?`, hash); err != nil {
			return err
		}
		_, err := db.exec(ctx, tx, `DELETE FROM refresh_tokens WHERE access_hash = ?`, hash)
		return err
	})
	return wrap(err, "delete token")
}

// DeleteTokensByUser removes every access and refresh token of a user and
// returns the removed access-token hashes.
func (db *DB) DeleteTokensByUser(ctx context.Context, userID string) ([]string, error) {
	hashes, err := db.deleteTokensWhere(ctx, "user_id", userID)
	return hashes, wrap(err, "delete tokens of user %q", userID)
}

// DeleteTokensByCustomer removes every access and refresh token of a
// customer and returns the removed access-token hashes.
func (db *DB) DeleteTokensByCustomer(ctx context.Context, customerID string) ([]string, error) {
	hashes, err := db.deleteTokensWhere(ctx, "customer_id", customerID)
	return hashes, wrap(err, "delete tokens of customer %q", customerID)
}

// DeleteTokensByClient removes every access and refresh token minted by a
// client and returns the removed access-token hashes.
func (db *DB) DeleteTokensByClient(ctx context.Context, clientID string) ([]string, error) {
	hashes, err := db.deleteTokensWhere(ctx, "client_id", clientID)
	return hashes, wrap(err, "delete tokens of client %q", clientID)
}

// deleteTokensWhere removes the access and refresh tokens whose column
// equals value, plus the refresh tokens issued with the removed access
// tokens. column is one of a fixed set of names, never caller input. An
// empty value matches nothing.
func (db *DB) deleteTokensWhere(ctx context.Context, column, value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	var hashes []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := db.exec(ctx, tx, `DELETE FROM refresh_tokens WHERE `+column+` = ?
			OR access_hash IN (SELECT hash FROM access_tokens WHERE `+column+` = ?)`, value, value)
		if err != nil {
			return err
		}
		hashes, err = db.collectStrings(ctx, tx, `DELETE FROM access_tokens WHERE `+column+` = ? RETURNING hash`, value)
		return err
	})
	if err != nil {
		return nil, err
	}
	return hashes, nil
}

// CreateRefreshToken inserts r, setting CreatedAt when zero. It fails with
// store.ErrConflict if the hash exists.
func (db *DB) CreateRefreshToken(ctx context.Context, r *store.RefreshToken) error {
	stamp(&r.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Hash, r.AccessHash, r.Kind, r.UserID, r.CustomerID, r.ProductID, r.ClientID, r.Scope,
		toMS(r.ExpiresAt), toMS(r.CreatedAt))
	return wrap(err, "create %s refresh token", r.Kind)
}

// TakeRefreshToken deletes and returns the refresh token in one statement,
// so that of concurrent callers exactly one gets it; the others get
// store.ErrNotFound.
func (db *DB) TakeRefreshToken(ctx context.Context, hash string) (*store.RefreshToken, error) {
	row := db.w.QueryRowContext(ctx, db.rebind(`DELETE FROM refresh_tokens WHERE hash = ? RETURNING `+refreshColumns), hash)
	var (
		r                store.RefreshToken
		expires, created int64
	)
	err := row.Scan(&r.Hash, &r.AccessHash, &r.Kind, &r.UserID, &r.CustomerID, &r.ProductID,
		&r.ClientID, &r.Scope, &expires, &created)
	if err != nil {
		return nil, wrap(err, "take refresh token")
	}
	r.ExpiresAt, r.CreatedAt = fromMS(expires), fromMS(created)
	return &r, nil
}

// DeleteExpired removes the access tokens, refresh tokens, challenges and
// claim codes whose expiry is before now, and returns how many rows went.
// Access tokens without an expiry stay.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := toMS(now)
	var total int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"access_tokens", "refresh_tokens", "challenges", "claim_codes", "team_invites"} {
			res, err := db.exec(ctx, tx, `DELETE FROM `+table+` WHERE expires_at < ?`, cutoff)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		n, err := db.deleteExpiredAuthCodes(ctx, tx, now)
		total += n
		return err
	})
	if err != nil {
		return 0, wrap(err, "delete expired")
	}
	return int(total), nil
}

// scanToken reads one row of tokenColumns.
func scanToken(row rowScanner) (*store.Token, error) {
	var (
		t       store.Token
		expires sql.NullInt64
		created int64
	)
	err := row.Scan(&t.Hash, &t.Kind, &t.UserID, &t.CustomerID, &t.ProductID, &t.ClientID, &t.Scope, &expires, &created)
	if err != nil {
		return nil, err
	}
	t.ExpiresAt = fromNullMS(expires)
	t.CreatedAt = fromMS(created)
	return &t, nil
}
