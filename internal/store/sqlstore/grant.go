package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wick-cloud/wick/internal/store"
)

const grantColumns = `kind, subject_id, client_id, scope, created_at, updated_at`

// SaveOAuthGrant creates or updates the grant of (Kind, SubjectID,
// ClientID) with one upsert that reads the client row, so that a grant of
// a deleted client is store.ErrNotFound.
func (db *DB) SaveOAuthGrant(ctx context.Context, g *store.OAuthGrant) error {
	t := now()
	stamp(&g.CreatedAt, t)
	stamp(&g.UpdatedAt, t)
	res, err := db.exec(ctx, db.w, `INSERT INTO oauth_grants (`+grantColumns+`)
		SELECT ?, ?, id, ?, ?, ? FROM oauth_clients WHERE id = ?
		ON CONFLICT (kind, subject_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at`,
		g.Kind, g.SubjectID, g.Scope, toMS(g.CreatedAt), toMS(g.UpdatedAt), g.ClientID)
	if err != nil {
		return wrap(err, "save grant of client %q", g.ClientID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err, "save grant of client %q", g.ClientID)
	} else if n == 0 {
		return fmt.Errorf("sqlstore: save grant: client %q: %w", g.ClientID, store.ErrNotFound)
	}
	// CreatedAt of an updated grant is the stored one.
	got, err := db.oauthGrant(ctx, db.w, g.Kind, g.SubjectID, g.ClientID)
	if err != nil {
		return wrap(err, "save grant of client %q", g.ClientID)
	}
	*g = *got
	return nil
}

// OAuthGrant returns one grant or store.ErrNotFound.
func (db *DB) OAuthGrant(ctx context.Context, kind, subjectID, clientID string) (*store.OAuthGrant, error) {
	g, err := db.oauthGrant(ctx, db.r, kind, subjectID, clientID)
	return g, wrap(err, "grant of client %q", clientID)
}

func (db *DB) oauthGrant(ctx context.Context, q execer, kind, subjectID, clientID string) (*store.OAuthGrant, error) {
	var out []store.OAuthGrant
	err := db.queryRows(ctx, q, func(rows *sql.Rows) error {
		g, err := scanGrant(rows)
		if err == nil {
			out = append(out, *g)
		}
		return err
	}, `SELECT `+grantColumns+` FROM oauth_grants WHERE kind = ? AND subject_id = ? AND client_id = ?`, kind, subjectID, clientID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, store.ErrNotFound
	}
	return &out[0], nil
}

// OAuthGrantsBySubject lists a subject's grants, newest change first.
func (db *DB) OAuthGrantsBySubject(ctx context.Context, kind, subjectID string) ([]store.OAuthGrant, error) {
	var out []store.OAuthGrant
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		g, err := scanGrant(rows)
		if err == nil {
			out = append(out, *g)
		}
		return err
	}, `SELECT `+grantColumns+` FROM oauth_grants WHERE kind = ? AND subject_id = ? ORDER BY updated_at DESC, client_id`, kind, subjectID)
	return out, wrap(err, "grants of %s %q", kind, subjectID)
}

// DeleteOAuthGrant removes the grant and, in the same transaction, the
// tokens the client obtained for the subject.
func (db *DB) DeleteOAuthGrant(ctx context.Context, kind, subjectID, clientID string) ([]string, error) {
	column := ""
	switch kind {
	case store.KindUser:
		column = "user_id"
	case store.KindCustomer:
		column = "customer_id"
	default:
		return nil, fmt.Errorf("sqlstore: delete grant: kind %q: %w", kind, store.ErrNotFound)
	}
	var hashes []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := db.exec(ctx, tx, `DELETE FROM oauth_grants WHERE kind = ? AND subject_id = ? AND client_id = ?`, kind, subjectID, clientID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		// column is one of two fixed names, never caller input.
		if _, err := db.exec(ctx, tx, `DELETE FROM refresh_tokens WHERE (`+column+` = ? AND client_id = ?)
			OR access_hash IN (SELECT hash FROM access_tokens WHERE `+column+` = ? AND client_id = ?)`,
			subjectID, clientID, subjectID, clientID); err != nil {
			return err
		}
		hashes, err = db.collectStrings(ctx, tx, `DELETE FROM access_tokens WHERE `+column+` = ? AND client_id = ? RETURNING hash`,
			subjectID, clientID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("sqlstore: grant of client %q: %w", clientID, store.ErrNotFound)
	}
	return hashes, wrap(err, "delete grant of client %q", clientID)
}

// scanGrant reads one row of grantColumns.
func scanGrant(row rowScanner) (*store.OAuthGrant, error) {
	var (
		g                store.OAuthGrant
		created, updated int64
	)
	if err := row.Scan(&g.Kind, &g.SubjectID, &g.ClientID, &g.Scope, &created, &updated); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = fromMS(created), fromMS(updated)
	return &g, nil
}
