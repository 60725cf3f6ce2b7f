package sqlstore

import (
	"context"
	"database/sql"

	"github.com/wick-cloud/wick/internal/store"
)

const productColumns = `id, slug, name, description, platform_id, owner_id, settings, created_at`

// CreateProduct inserts p, assigning p.ID (from 10000 up), and adds
// ownerUsername to its team with store.RoleOwner, in one transaction. Empty
// Settings are stored as "{}". It fails with store.ErrConflict if the slug
// exists.
func (db *DB) CreateProduct(ctx context.Context, p *store.Product, ownerUsername string) error {
	stamp(&p.CreatedAt, now())
	if len(p.Settings) == 0 {
		p.Settings = []byte("{}")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.rebind(`INSERT INTO products
			(slug, name, description, platform_id, owner_id, settings, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			p.Slug, p.Name, p.Description, p.PlatformID, p.OwnerID, string(p.Settings), toMS(p.CreatedAt)).Scan(&id)
		if err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO team_members (product_id, username, role, programmatic, created_at)
			VALUES (?, ?, ?, ?, ?)`, id, ownerUsername, store.RoleOwner, false, toMS(p.CreatedAt))
		if err != nil {
			return err
		}
		p.ID = id
		return nil
	})
	return wrap(err, "create product %q", p.Slug)
}

// ProductByID returns the product or store.ErrNotFound.
func (db *DB) ProductByID(ctx context.Context, id int64) (*store.Product, error) {
	p, err := scanProduct(db.queryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "product %d", id)
	}
	return p, nil
}

// ProductBySlug returns the product or store.ErrNotFound.
func (db *DB) ProductBySlug(ctx context.Context, slug string) (*store.Product, error) {
	p, err := scanProduct(db.queryRow(ctx, `SELECT `+productColumns+` FROM products WHERE slug = ?`, slug))
	if err != nil {
		return nil, wrap(err, "product %q", slug)
	}
	return p, nil
}

var _ store.TeamAccess = (*DB)(nil)

// productAccessSelect reads a product's productColumns, whether the user
// of the first parameter exists, and whether that user is on the
// product's team (by username, as TeamMember keys it); the product is
// picked by the WHERE clause appended.
const productAccessSelect = `SELECT p.id, p.slug, p.name, p.description, p.platform_id, p.owner_id, p.settings, p.created_at,
		EXISTS (SELECT 1 FROM users u WHERE u.id = ?),
		EXISTS (SELECT 1 FROM users u JOIN team_members m ON m.username = u.username
			WHERE u.id = ? AND m.product_id = p.id)
	FROM products p `

// ProductAccessByID returns the product, whether the user exists and
// whether the user is on its team, in one statement, or
// store.ErrNotFound when there is no such product.
func (db *DB) ProductAccessByID(ctx context.Context, productID int64, userID string) (*store.ProductAccess, error) {
	a, err := db.productAccess(ctx, store.ProductRef{ID: productID}, userID)
	return a, wrap(err, "product %d for user %q", productID, userID)
}

// ProductAccessBySlug is ProductAccessByID for a product's slug.
func (db *DB) ProductAccessBySlug(ctx context.Context, slug, userID string) (*store.ProductAccess, error) {
	a, err := db.productAccess(ctx, store.ProductRef{Slug: slug}, userID)
	return a, wrap(err, "product %q for user %q", slug, userID)
}

// productAccessQuery returns the productAccessSelect statement for the
// product of ref, with its arguments for the user with userID.
func productAccessQuery(ref store.ProductRef, userID string) (string, []any) {
	if ref.Slug != "" {
		return productAccessSelect + `WHERE p.slug = ?`, []any{userID, userID, ref.Slug}
	}
	return productAccessSelect + `WHERE p.id = ?`, []any{userID, userID, ref.ID}
}

// productAccess runs productAccessQuery.
func (db *DB) productAccess(ctx context.Context, ref store.ProductRef, userID string) (*store.ProductAccess, error) {
	query, args := productAccessQuery(ref, userID)
	var a store.ProductAccess
	if err := scanProductAccess(db.queryRow(ctx, query, args...), &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// scanProductAccess reads a row of productAccessQuery into a.
func scanProductAccess(row rowScanner, a *store.ProductAccess) error {
	p, err := scanProduct(row, &a.UserExists, &a.Member)
	if err != nil {
		return err
	}
	a.Product = *p
	return nil
}

// ProductsForMember returns the products whose team lists username, ordered
// by ID.
func (db *DB) ProductsForMember(ctx context.Context, username string) ([]store.Product, error) {
	var out []store.Product
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		p, err := scanProduct(rows)
		if err != nil {
			return err
		}
		out = append(out, *p)
		return nil
	}, `SELECT p.id, p.slug, p.name, p.description, p.platform_id, p.owner_id, p.settings, p.created_at
		FROM products p JOIN team_members m ON m.product_id = p.id
		WHERE m.username = ? ORDER BY p.id`, username)
	if err != nil {
		return nil, wrap(err, "products of member %q", username)
	}
	return out, nil
}

// AddTeamMember inserts m, setting CreatedAt when zero. It fails with
// store.ErrConflict if already a member.
func (db *DB) AddTeamMember(ctx context.Context, m *store.TeamMember) error {
	stamp(&m.CreatedAt, now())
	_, err := db.exec(ctx, db.w, `INSERT INTO team_members (product_id, username, role, programmatic, created_at)
		VALUES (?, ?, ?, ?, ?)`, m.ProductID, m.Username, m.Role, m.Programmatic, toMS(m.CreatedAt))
	return wrap(err, "add %q to team of product %d", m.Username, m.ProductID)
}

// TeamMember returns the membership or store.ErrNotFound.
func (db *DB) TeamMember(ctx context.Context, productID int64, username string) (*store.TeamMember, error) {
	m, err := scanTeamMember(db.queryRow(ctx, `SELECT product_id, username, role, programmatic, created_at
		FROM team_members WHERE product_id = ? AND username = ?`, productID, username))
	if err != nil {
		return nil, wrap(err, "team member %q of product %d", username, productID)
	}
	return m, nil
}

// TeamMembers lists a product's team ordered by creation, then username.
func (db *DB) TeamMembers(ctx context.Context, productID int64) ([]store.TeamMember, error) {
	var out []store.TeamMember
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		m, err := scanTeamMember(rows)
		if err != nil {
			return err
		}
		out = append(out, *m)
		return nil
	}, `SELECT product_id, username, role, programmatic, created_at
		FROM team_members WHERE product_id = ? ORDER BY created_at, username`, productID)
	if err != nil {
		return nil, wrap(err, "team of product %d", productID)
	}
	return out, nil
}

// RemoveTeamMember deletes the membership or fails with store.ErrNotFound.
func (db *DB) RemoveTeamMember(ctx context.Context, productID int64, username string) error {
	err := db.execOne(ctx, db.w, `DELETE FROM team_members WHERE product_id = ? AND username = ?`, productID, username)
	return wrap(err, "remove %q from team of product %d", username, productID)
}

// RenameTeamMember moves every membership of oldUsername to newUsername. It
// fails with store.ErrConflict, changing nothing, if newUsername is already
// on one of those teams; renaming a username with no memberships is not an
// error.
func (db *DB) RenameTeamMember(ctx context.Context, oldUsername, newUsername string) error {
	_, err := db.exec(ctx, db.w, `UPDATE team_members SET username = ? WHERE username = ?`, newUsername, oldUsername)
	return wrap(err, "rename team member %q to %q", oldUsername, newUsername)
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanProduct reads one row of productColumns, followed by the columns
// of extra when given.
func scanProduct(row rowScanner, extra ...any) (*store.Product, error) {
	var (
		p        store.Product
		settings string
		created  int64
	)
	dest := append([]any{&p.ID, &p.Slug, &p.Name, &p.Description, &p.PlatformID, &p.OwnerID, &settings, &created}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	p.Settings = []byte(settings)
	p.CreatedAt = fromMS(created)
	return &p, nil
}

// scanTeamMember reads product_id, username, role, programmatic, created_at.
func scanTeamMember(row rowScanner) (*store.TeamMember, error) {
	var (
		m       store.TeamMember
		created int64
	)
	if err := row.Scan(&m.ProductID, &m.Username, &m.Role, &m.Programmatic, &created); err != nil {
		return nil, err
	}
	m.CreatedAt = fromMS(created)
	return &m, nil
}
