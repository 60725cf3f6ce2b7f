package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds the schema, one directory per dialect, one file per
// step, named NNNN_name.sql. A file is applied once, in a transaction that
// also records its version in schema_migrations. Files are never edited once
// released: a change is a new file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises migrations
// of servers starting at once ("wick" in ASCII).
const migrationLockKey = 0x7769636b

// migration is one schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the steps of dialect d in version order. Versions must
// be unique and positive.
func migrations(fsys fs.FS, d dialect) ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration %s/%s: name must be NNNN_name.sql", dir, name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlstore: migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every embedded migration the database lacks.
func (db *DB) migrate(ctx context.Context) error {
	steps, err := migrations(migrationFS, db.dialect)
	if err != nil {
		return err
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if db.dialect == dialectPostgres {
		// Session-level lock on this connection: a second server starting
		// now waits here, then finds the steps applied.
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	name       TEXT   NOT NULL,
	applied_at BIGINT NOT NULL
)`
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	for _, m := range steps {
		applied, err := db.applyMigration(ctx, conn, m)
		if err != nil {
			return err
		}
		if applied {
			db.log.Info("sqlstore: applied migration", "dialect", db.dialect.String(), "version", m.version, "name", m.name)
		}
	}
	var latest sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&latest); err != nil {
		return fmt.Errorf("sqlstore: migrate: read version: %w", err)
	}
	if n := len(steps); n > 0 && latest.Int64 > int64(steps[n-1].version) {
		db.log.Warn("sqlstore: database schema is newer than this binary",
			"database_version", latest.Int64, "binary_version", steps[n-1].version)
	}
	return nil
}

// applyMigration runs m in a transaction unless schema_migrations already
// lists it, and reports whether it ran. On SQLite the transaction begins
// IMMEDIATE, so the check and the change happen under the write lock.
func (db *DB) applyMigration(ctx context.Context, conn *sql.Conn, m migration) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, db.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, toMS(now())); err != nil {
		return false, fmt.Errorf("sqlstore: migration %s: record: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlstore: migration %s: commit: %w", m.name, err)
	}
	return true, nil
}
