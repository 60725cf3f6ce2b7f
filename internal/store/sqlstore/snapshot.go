package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// serializer and deserializer are the image methods of the SQLite
// driver's connection.
type (
	serializer   interface{ Serialize() ([]byte, error) }
	deserializer interface{ Deserialize([]byte) error }
)

// Snapshot returns an image of an SQLite database: the bytes of its file,
// or of the file it would be for an in-memory one. Tests take one of a
// freshly migrated database and start each test's private in-memory
// database from it (WithSnapshot) instead of applying every migration
// again. PostgreSQL has no image.
func (db *DB) Snapshot(ctx context.Context) ([]byte, error) {
	if db.dialect != dialectSQLite {
		return nil, fmt.Errorf("sqlstore: snapshot: only SQLite databases have an image")
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: snapshot: %w", err)
	}
	defer conn.Close()
	var img []byte
	err = conn.Raw(func(dc any) error {
		s, ok := unwrapConn(dc).(serializer)
		if !ok {
			return fmt.Errorf("connection %T cannot serialize", dc)
		}
		img, err = s.Serialize()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: snapshot: %w", err)
	}
	return img, nil
}

// WithSnapshot makes Open load img (from Snapshot) into a private
// in-memory SQLite database ("sqlite::memory:") before it brings the
// schema up to date, so that only the migrations newer than the image
// run. It is for tests; on any other database, or when the image cannot
// be loaded, Open logs a warning and starts from the empty database as
// usual.
func WithSnapshot(img []byte) Option {
	return func(db *DB) {
		if err := db.loadSnapshot(img); err != nil {
			db.log.Warn("sqlstore: snapshot not loaded; migrating from scratch", "err", err)
		}
	}
}

// loadSnapshot replaces the database of db's one in-memory connection
// with img.
func (db *DB) loadSnapshot(img []byte) error {
	if db.dialect != dialectSQLite || db.r != db.w {
		return fmt.Errorf("only a private in-memory SQLite database takes a snapshot")
	}
	ctx := context.Background()
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if sc, ok := dc.(*stmtConn); ok {
			sc.dropStatements() // they belong to the database being replaced
		}
		dc = unwrapConn(dc)
		d, ok := dc.(deserializer)
		if !ok {
			return fmt.Errorf("connection %T cannot deserialize", dc)
		}
		if err := d.Deserialize(img); err != nil {
			return err
		}
		// Deserialize leaves the connection's settings alone except the
		// ones stored in the image; foreign keys are per connection.
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			return nil
		}
		_, err := ex.ExecContext(ctx, "PRAGMA foreign_keys = ON", nil)
		return err
	})
}
