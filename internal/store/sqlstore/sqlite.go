package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// writeCachePragma sets the write connection's page cache to 32 MiB
// instead of SQLite's 2 MiB: with 2 MiB, writing the rows of tens of
// thousands of devices at once (a shutdown's session saves and offlines)
// read most B-tree pages from the file again, one pread each (a quarter
// of the CPU of the saves that ended a 50,000-device shutdown). The cache
// grows only as pages are read, and it stays valid between transactions:
// this connection is the only writer. Read connections keep SQLite's
// default: theirs is dropped whenever the database changed.
const writeCachePragma = "PRAGMA cache_size = -32768" // KiB

// writeTempStorePragma keeps the write connection's temporary files in
// memory, above all its statement journals. Every statement that changes
// devices inside a transaction (ApplyPresence's onlines and offlines, one
// per device) keeps a statement journal of the pages it changes, because
// the devices triggers could make it fail halfway; from 64 KiB on SQLite
// writes that journal to a temporary file, one pwrite per page, and in
// the onlines of a reconnect storm that was a quarter of ApplyPresence's
// CPU (BenchmarkApplyPresenceFleet). A statement's journal holds each page
// it changes once, and is dropped when the statement ends.
const writeTempStorePragma = "PRAGMA temp_store = MEMORY"

// sqliteConnector opens connections through the "sqlite" driver and runs
// sqlitePragmas, then extra, on each; each keeps its prepared statements
// (stmtConn).
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
		if err := execRetryBusy(ctx, ex, stmt); err != nil {
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
	sc, err := newStmtConn(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return sc, nil
}

// sqliteBusyWait bounds how long execRetryBusy retries, as busy_timeout
// bounds the waits SQLite does itself.
const sqliteBusyWait = 5 * time.Second

// execRetryBusy runs stmt, retrying while it fails with SQLITE_BUSY for up
// to sqliteBusyWait. SQLite returns SQLITE_BUSY at once, without calling the
// busy handler, where waiting could deadlock: when two processes open a new
// file at the same moment, both hold a shared lock and want to turn it
// into WAL, and one of them is refused. Retrying after the other finished
// then succeeds (the file is in WAL mode already).
func execRetryBusy(ctx context.Context, ex driver.ExecerContext, stmt string) error {
	deadline := time.Now().Add(sqliteBusyWait)
	delay := time.Millisecond
	for {
		_, err := ex.ExecContext(ctx, stmt, nil)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
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
	w := sql.OpenDB(&sqliteConnector{Connector: wc, extra: []string{writeCachePragma, writeTempStorePragma}})
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
