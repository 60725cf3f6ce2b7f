package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wick-cloud/wick/internal/store"
)

const clientColumns = `id, name, type, redirect_uri, scope, secret_hash, owner_id, product_id, created_at`

// CreateClient inserts c, setting CreatedAt when zero. It fails with
// store.ErrConflict if the ID exists.
func (db *DB) CreateClient(ctx context.Context, c *store.Client) error {
	stamp(&c.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO oauth_clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Type, c.RedirectURI, c.Scope, c.SecretHash, c.OwnerID, c.ProductID, toMS(c.CreatedAt))
	if err == nil {
		c.Version = 1
	}
	return wrap(err, "create client %q", c.ID)
}

// ClientByID returns the client or store.ErrNotFound.
func (db *DB) ClientByID(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(db.queryRow(ctx, `SELECT `+clientColumns+`, version FROM oauth_clients WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "client %q", id)
	}
	return c, nil
}

// ClientsByOwner lists a user's own clients ordered by creation, then ID.
func (db *DB) ClientsByOwner(ctx context.Context, userID string) ([]store.Client, error) {
	if userID == "" {
		return nil, nil // product clients have no owner
	}
	out, err := db.listClients(ctx, `SELECT `+clientColumns+`, version FROM oauth_clients
		WHERE owner_id = ? ORDER BY created_at, id`, userID)
	return out, wrap(err, "clients of user %q", userID)
}

// ClientsByProduct lists a product's clients ordered by creation, then ID.
func (db *DB) ClientsByProduct(ctx context.Context, productID int64) ([]store.Client, error) {
	if productID == 0 {
		return nil, nil // user clients have no product
	}
	out, err := db.listClients(ctx, `SELECT `+clientColumns+`, version FROM oauth_clients
		WHERE product_id = ? ORDER BY created_at, id`, productID)
	return out, wrap(err, "clients of product %d", productID)
}

// listClients runs a query over clientColumns.
func (db *DB) listClients(ctx context.Context, query string, args ...any) ([]store.Client, error) {
	var out []store.Client
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		c, err := scanClient(rows)
		if err != nil {
			return err
		}
		out = append(out, *c)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateClient replaces Name, Scope and RedirectURI, or fails with
// store.ErrNotFound, or with store.ErrStale when c.Version is set and the
// row's differs.
func (db *DB) UpdateClient(ctx context.Context, c *store.Client) error {
	err := db.execVersioned(ctx, "oauth_clients", c.ID, &c.Version, `UPDATE oauth_clients SET name = ?, scope = ?, redirect_uri = ?,
		version = version + 1 WHERE id = ? AND (? = 0 OR version = ?)`,
		c.Name, c.Scope, c.RedirectURI, c.ID, c.Version, c.Version)
	return wrap(err, "update client %q", c.ID)
}

// execVersioned runs a version-checked update of the row id of table:
// "... WHERE id = ? AND (? = 0 OR version = ?)" with version = version +
// 1. On success a set *version goes up by one. No row updated means
// store.ErrNotFound when the row is absent and store.ErrStale otherwise.
func (db *DB) execVersioned(ctx context.Context, table, id string, version *int64, query string, args ...any) error {
	res, err := db.exec(ctx, db.w, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		if *version > 0 {
			*version++
		}
		return nil
	}
	var one int
	err = db.w.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM `+table+` WHERE id = ?`), id).Scan(&one)
	if err == nil {
		return fmt.Errorf("at version %d: %w", *version, store.ErrStale)
	}
	return err
}

// DeleteClient removes the client or fails with store.ErrNotFound. The
// tokens it minted stay; DeleteTokensByClient removes them.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := db.execOne(ctx, db.w, `DELETE FROM oauth_clients WHERE id = ?`, id)
	return wrap(err, "delete client %q", id)
}

// scanClient reads one row of clientColumns and the version.
func scanClient(row rowScanner) (*store.Client, error) {
	var (
		c       store.Client
		created int64
	)
	err := row.Scan(&c.ID, &c.Name, &c.Type, &c.RedirectURI, &c.Scope, &c.SecretHash, &c.OwnerID, &c.ProductID, &created, &c.Version)
	if err != nil {
		return nil, err
	}
	c.CreatedAt = fromMS(created)
	return &c, nil
}
