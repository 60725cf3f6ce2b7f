package sqlstore

import (
	"context"
	"database/sql"

	"github.com/wick-cloud/wick/internal/store"
)

const customerColumns = `id, product_id, email, password_hash, created_at, updated_at`

// CreateCustomer inserts c, assigning c.ID when empty and the timestamps
// when zero. It fails with store.ErrConflict if the e-mail is already a
// customer of that product.
func (db *DB) CreateCustomer(ctx context.Context, c *store.Customer) error {
	if c.ID == "" {
		c.ID = newID()
	}
	t := now()
	stamp(&c.CreatedAt, t)
	stamp(&c.UpdatedAt, t)
	_, err := db.exec(ctx, db.w, `INSERT INTO customers (`+customerColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProductID, c.Email, c.PasswordHash, toMS(c.CreatedAt), toMS(c.UpdatedAt))
	return wrap(err, "create customer %q of product %d", c.Email, c.ProductID)
}

// CustomerByID returns the customer or store.ErrNotFound.
func (db *DB) CustomerByID(ctx context.Context, id string) (*store.Customer, error) {
	c, err := scanCustomer(db.queryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "customer %q", id)
	}
	return c, nil
}

// CustomerByEmail returns the product's customer or store.ErrNotFound.
func (db *DB) CustomerByEmail(ctx context.Context, productID int64, email string) (*store.Customer, error) {
	c, err := scanCustomer(db.queryRow(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE product_id = ? AND email = ?`, productID, email))
	if err != nil {
		return nil, wrap(err, "customer %q of product %d", email, productID)
	}
	return c, nil
}

// ListCustomers returns one page of a product's customers ordered by
// creation, then ID, and the product's total count. A Page with Size ≤ 0
// returns every customer; a Number below 1 is the first page.
func (db *DB) ListCustomers(ctx context.Context, productID int64, page store.Page) ([]store.Customer, int, error) {
	var (
		out   []store.Customer
		total int
	)
	tx, err := db.beginSnapshot(ctx)
	if err != nil {
		return nil, 0, wrap(err, "list customers of product %d", productID)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM customers WHERE product_id = ?`), productID).Scan(&total); err != nil {
		return nil, 0, wrap(err, "count customers of product %d", productID)
	}
	query := `SELECT ` + customerColumns + ` FROM customers WHERE product_id = ? ORDER BY created_at, id`
	args := []any{productID}
	if page.Size > 0 {
		number := max(page.Number, 1)
		query += ` LIMIT ? OFFSET ?`
		args = append(args, page.Size, (number-1)*page.Size)
	}
	err = db.queryRows(ctx, tx, func(rows *sql.Rows) error {
		c, err := scanCustomer(rows)
		if err != nil {
			return err
		}
		out = append(out, *c)
		return nil
	}, query, args...)
	if err != nil {
		return nil, 0, wrap(err, "list customers of product %d", productID)
	}
	return out, total, nil
}

// UpdateCustomer replaces PasswordHash and UpdatedAt (now, when zero), or
// fails with store.ErrNotFound.
func (db *DB) UpdateCustomer(ctx context.Context, c *store.Customer) error {
	stamp(&c.UpdatedAt, now())
	err := db.execOne(ctx, db.w, `UPDATE customers SET password_hash = ?, updated_at = ? WHERE id = ?`,
		c.PasswordHash, toMS(c.UpdatedAt), c.ID)
	return wrap(err, "update customer %q", c.ID)
}

// DeleteCustomer removes the customer with its access and refresh tokens
// and claim codes, and unclaims its devices (they stay in the product), in
// one transaction, or fails with store.ErrNotFound.
func (db *DB) DeleteCustomer(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, `DELETE FROM customers WHERE id = ?`, id); err != nil {
			return err
		}
		for _, q := range []struct {
			query string
			args  []any
		}{
			{`DELETE FROM access_tokens WHERE customer_id = ?`, []any{id}},
			{`DELETE FROM refresh_tokens WHERE customer_id = ?`, []any{id}},
			{`DELETE FROM claim_codes WHERE customer_id = ?`, []any{id}},
			{`UPDATE devices SET customer_id = '', updated_at = ? WHERE customer_id = ?`, []any{toMS(now()), id}},
		} {
			if _, err := db.exec(ctx, tx, q.query, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "delete customer %q", id)
}

// scanCustomer reads one row of customerColumns.
func scanCustomer(row rowScanner) (*store.Customer, error) {
	var (
		c                store.Customer
		created, updated int64
	)
	if err := row.Scan(&c.ID, &c.ProductID, &c.Email, &c.PasswordHash, &created, &updated); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return &c, nil
}
