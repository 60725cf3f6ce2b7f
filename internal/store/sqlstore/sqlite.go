package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"runtime"

	"modernc.org/sqlite"
)

// sqlitePragmas are run, in this order, on every new SQLite connection.
// busy_timeout comes first so that the others wait for a lock held by
// another connection instead of failing with SQLITE_BUSY.
var sqlitePragmas = [...]string{
	"PRAGMA busy_timeout = 5000",
	"PRAGMA journal_mode = WAL",
	"PRAGMA synchronous = NORMAL",
	"PRAGMA foreign_keys = ON",
}

// sqliteConnector opens connections through the "sqlite" driver and runs
// sqlitePragmas, then extra, on each.
type sqliteConnector struct {
	driver.Connector
	extra []string
}

// Connect opens one configured connection.
func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlstore: sqlite connection %T cannot exec", conn)
	}
	run := func(stmt string) error {
		if _, err := ex.ExecContext(ctx, stmt, nil); err != nil {
			conn.Close()
			return fmt.Errorf("sqlstore: %s: %w", stmt, err)
		}
		return nil
	}
	for _, p := range sqlitePragmas {
		if err := run(p); err != nil {
			return nil, err
		}
	}
	for _, p := range c.extra {
		if err := run(p); err != nil {
			return nil, err
		}
	}
	return conn, nil
}

// openSQLite opens the database file at path (or a private in-memory
// database) as a write pool of one connection whose transactions begin
// IMMEDIATE, and a read pool of query-only connections.
func openSQLite(path string, log *slog.Logger) (*DB, error) {
	// A plain file name with a query: the driver strips the query and
	// interprets its underscore keys. _txlock=immediate makes BeginTx take
	// the write lock at once, so a transaction that reads before it writes
	// cannot fail to upgrade its lock when another process wrote meanwhile.
	wc, err := sqlite.NewConnector(path + "?_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: sqlite %q: %w", path, err)
	}
	w := sql.OpenDB(&sqliteConnector{Connector: wc})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db := &DB{dialect: dialectSQLite, w: w, r: w, log: log}
	if path == memoryPath {
		// Every connection to ":memory:" is a database of its own: keep the
		// one connection for everything.
		return db, nil
	}
	rc, err := sqlite.NewConnector(path)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: sqlite %q: %w", path, err)
	}
	r := sql.OpenDB(&sqliteConnector{Connector: rc, extra: []string{"PRAGMA query_only = ON"}})
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.r = r
	return db, nil
}
