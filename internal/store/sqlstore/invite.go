package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wick-cloud/wick/internal/store"
)

// inviteColumns are read by scanInvite.
const inviteColumns = `product_id, username, role, invited_by, token_hash, expires_at, created_at`

// PutInvite inserts inv or replaces the pending invitation of the same
// product and address; it fails with store.ErrConflict when the address
// is already on the team.
func (db *DB) PutInvite(ctx context.Context, inv *store.Invite) error {
	stamp(&inv.CreatedAt, now())
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM team_members WHERE product_id = ? AND username = ?`),
			inv.ProductID, inv.Username).Scan(&one)
		if err == nil {
			return store.ErrConflict
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := db.exec(ctx, tx, `DELETE FROM team_invites WHERE product_id = ? AND username = ?`,
			inv.ProductID, inv.Username); err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO team_invites (`+inviteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			inv.ProductID, inv.Username, inv.Role, inv.InvitedBy, inv.TokenHash, toMS(inv.ExpiresAt), toMS(inv.CreatedAt))
		return err
	})
	return wrap(err, "invite %q to team of product %d", inv.Username, inv.ProductID)
}

// InviteByHash returns the invitation with that secret hash or
// store.ErrNotFound.
func (db *DB) InviteByHash(ctx context.Context, hash string) (*store.Invite, error) {
	inv, err := scanInvite(db.queryRow(ctx, `SELECT `+inviteColumns+` FROM team_invites WHERE token_hash = ?`, hash))
	if err != nil {
		return nil, wrap(err, "invite by hash")
	}
	return inv, nil
}

// InvitesByProduct lists a product's pending invitations by creation.
func (db *DB) InvitesByProduct(ctx context.Context, productID int64) ([]store.Invite, error) {
	out, err := db.listInvites(ctx, `SELECT `+inviteColumns+` FROM team_invites
		WHERE product_id = ? ORDER BY created_at, username`, productID)
	return out, wrap(err, "invites of product %d", productID)
}

// InvitesByUsername lists an address's pending invitations by creation.
func (db *DB) InvitesByUsername(ctx context.Context, username string) ([]store.Invite, error) {
	out, err := db.listInvites(ctx, `SELECT `+inviteColumns+` FROM team_invites
		WHERE username = ? ORDER BY created_at, product_id`, username)
	return out, wrap(err, "invites of %q", username)
}

func (db *DB) listInvites(ctx context.Context, query string, arg any) ([]store.Invite, error) {
	var out []store.Invite
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		inv, err := scanInvite(rows)
		if err != nil {
			return err
		}
		out = append(out, *inv)
		return nil
	}, query, arg)
	return out, err
}

// DeleteInvite removes an invitation or fails with store.ErrNotFound.
func (db *DB) DeleteInvite(ctx context.Context, productID int64, username string) error {
	err := db.execOne(ctx, db.w, `DELETE FROM team_invites WHERE product_id = ? AND username = ?`, productID, username)
	return wrap(err, "delete invite of %q to product %d", username, productID)
}

// AcceptInvite replaces the invitation with a membership in one
// transaction (see store.Invites).
func (db *DB) AcceptInvite(ctx context.Context, productID int64, username string) (*store.TeamMember, error) {
	m := &store.TeamMember{ProductID: productID, Username: username, CreatedAt: now()}
	already := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.rebind(`DELETE FROM team_invites WHERE product_id = ? AND username = ? RETURNING role`),
			productID, username).Scan(&m.Role)
		if err != nil {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM team_members WHERE product_id = ? AND username = ?`),
			productID, username).Scan(&one)
		if err == nil {
			already = true // commit the deletion, report the conflict
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO team_members (product_id, username, role, programmatic, created_at)
			VALUES (?, ?, ?, ?, ?)`, m.ProductID, m.Username, m.Role, false, toMS(m.CreatedAt))
		return err
	})
	if err == nil && already {
		err = store.ErrConflict
	}
	if err != nil {
		return nil, wrap(err, "accept invite of %q to product %d", username, productID)
	}
	return m, nil
}

// scanInvite reads one row of inviteColumns.
func scanInvite(row rowScanner) (*store.Invite, error) {
	var (
		inv              store.Invite
		expires, created int64
	)
	if err := row.Scan(&inv.ProductID, &inv.Username, &inv.Role, &inv.InvitedBy, &inv.TokenHash, &expires, &created); err != nil {
		return nil, err
	}
	inv.ExpiresAt, inv.CreatedAt = fromMS(expires), fromMS(created)
	return &inv, nil
}
