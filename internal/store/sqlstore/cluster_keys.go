package sqlstore

import (
	"context"
	"fmt"
)

// Shared reports whether other servers may use this database at once: true
// for PostgreSQL, false for SQLite (one server per data directory).
func (db *DB) Shared() bool { return db.dialect == dialectPostgres }

// ClusterKey returns the value stored under name or store.ErrNotFound.
func (db *DB) ClusterKey(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := db.queryRow(ctx, `SELECT value FROM cluster_keys WHERE name = ?`, name).Scan(&v)
	if err != nil {
		return nil, wrap(err, "cluster key %q", name)
	}
	return v, nil
}

// InsertClusterKey stores value under name unless one is stored already
// (INSERT ... ON CONFLICT DO NOTHING), then reads the stored value back, so
// that servers starting at once all end up with the first writer's value.
func (db *DB) InsertClusterKey(ctx context.Context, name string, value []byte) ([]byte, error) {
	if name == "" || len(value) == 0 {
		return nil, fmt.Errorf("sqlstore: insert cluster key %q: empty name or value", name)
	}
	if _, err := db.exec(ctx, db.w, `INSERT INTO cluster_keys (name, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, value, toMS(now())); err != nil {
		return nil, wrap(err, "insert cluster key %q", name)
	}
	var v []byte
	// Read on the writer: on SQLite the reader pool may not see the row yet.
	err := db.w.QueryRowContext(ctx, db.rebind(`SELECT value FROM cluster_keys WHERE name = ?`), name).Scan(&v)
	if err != nil {
		return nil, wrap(err, "read cluster key %q", name)
	}
	return v, nil
}
