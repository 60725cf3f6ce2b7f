package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
)

// SQLite prepared-statement cache (docs/operations.md, "SQLite statement
// cache").
//
// The SQLite driver prepares every statement it is given as text, runs it
// once and finalizes it, and preparing is not cheap: SQLite parses the
// SQL and, for a statement that writes devices, compiles the devices
// table's triggers into it. In a Gen 3 reconnect storm that was about a
// quarter of a resumption's CPU (BenchmarkUDPResume), for the same few
// dozen statements over and over. Each connection therefore keeps the
// statements it prepared, by their text, and runs them again.
//
// The cache sits below database/sql, in the driver connection: a
// connection is used by one goroutine at a time, so the cache needs no
// lock, and a statement runs on the connection it was prepared on, inside
// or outside a transaction, with no pool involved (preparing through
// database/sql on the single write connection while a transaction holds
// it would wait for it forever). A statement whose rows are still open
// when its text comes again is not shared: that call prepares one of its
// own, as before; so does a statement prepared explicitly (PrepareContext)
// while its cached one is lent. SQLite re-prepares a cached statement by
// itself after a schema change.

// stmtCacheSize bounds the statements one connection keeps: about the
// store's distinct statements, with room for those whose text varies
// with a batch's size. A full cache drops one statement for each new one.
const stmtCacheSize = 128

// stmtConn is a driver connection that keeps its prepared statements.
type stmtConn struct {
	driver.Conn // the SQLite connection
	stmts       map[string]*cachedStmt
}

// cachedStmt is a prepared statement and whether rows of it are open.
type cachedStmt struct {
	ds   driver.Stmt
	busy bool
}

// sqliteStmt is what the SQLite driver's prepared statements implement.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// newStmtConn wraps conn, which must be a SQLite driver connection.
func newStmtConn(conn driver.Conn) (*stmtConn, error) {
	for _, ok := range []bool{
		is[driver.ConnBeginTx](conn), is[driver.ConnPrepareContext](conn), is[driver.ExecerContext](conn),
		is[driver.QueryerContext](conn), is[driver.Pinger](conn), is[driver.SessionResetter](conn),
		is[driver.Validator](conn),
	} {
		if !ok {
			return nil, errors.New("sqlstore: sqlite connection lacks a driver interface")
		}
	}
	return &stmtConn{Conn: conn, stmts: make(map[string]*cachedStmt)}, nil
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// Unwrap returns the SQLite connection (for sql.Conn.Raw).
func (c *stmtConn) Unwrap() driver.Conn { return c.Conn }

// unwrapConn returns the driver connection under a stmtConn, or dc.
func unwrapConn(dc any) any {
	if c, ok := dc.(*stmtConn); ok {
		return c.Conn
	}
	return dc
}

// stmt returns the cached statement for query, preparing it if needed;
// nil when the cached one is busy (the caller runs query uncached).
func (c *stmtConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if cs := c.stmts[query]; cs != nil {
		if cs.busy {
			return nil, nil
		}
		return cs, nil
	}
	ds, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if _, ok := ds.(sqliteStmt); !ok {
		ds.Close()
		return nil, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		for q, old := range c.stmts {
			if !old.busy {
				old.ds.Close()
				delete(c.stmts, q)
				break
			}
		}
	}
	cs := &cachedStmt{ds: ds}
	if len(c.stmts) < stmtCacheSize {
		c.stmts[query] = cs
	}
	return cs, nil
}

// ExecContext runs query as a cached statement.
func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	if c.stmts[query] != cs {
		defer cs.ds.Close() // not kept: the cache is full of busy statements
	}
	return cs.ds.(sqliteStmt).ExecContext(ctx, args)
}

// QueryContext runs query as a cached statement, which is busy until the
// rows are closed.
func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	kept := c.stmts[query] == cs
	rows, err := cs.ds.(sqliteStmt).QueryContext(ctx, args)
	if err != nil {
		if !kept {
			cs.ds.Close()
		}
		return nil, err
	}
	cs.busy = true
	return &stmtRows{Rows: rows, cs: cs, kept: kept}, nil
}

// PrepareContext lends the caller the cached statement for query, busy
// until the caller closes it (Tx.PrepareContext, DB.PrepareContext).
func (c *stmtConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	}
	cs.busy = true
	return &lentStmt{sqliteStmt: cs.ds.(sqliteStmt), cs: cs, kept: c.stmts[query] == cs}, nil
}

// lentStmt is a cached statement lent by PrepareContext.
type lentStmt struct {
	sqliteStmt
	cs   *cachedStmt
	kept bool
}

// Close gives the statement back to the cache (or finalizes it if the
// cache did not keep it).
func (s *lentStmt) Close() error {
	cs := s.cs
	if cs == nil {
		return nil
	}
	s.cs, cs.busy = nil, false
	if !s.kept {
		return cs.ds.Close()
	}
	return nil
}

// BeginTx begins a transaction on the connection.
func (c *stmtConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// Ping checks the connection.
func (c *stmtConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

// ResetSession is the driver's, before the pool reuses the connection.
func (c *stmtConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

// IsValid is the driver's.
func (c *stmtConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// dropStatements finalizes the cached statements that are not busy.
func (c *stmtConn) dropStatements() {
	for q, cs := range c.stmts {
		if !cs.busy {
			cs.ds.Close()
			delete(c.stmts, q)
		}
	}
}

// Close finalizes the cached statements and closes the connection.
func (c *stmtConn) Close() error {
	c.dropStatements()
	return c.Conn.Close()
}

// stmtRows are rows of a cached statement: closing them frees it.
type stmtRows struct {
	driver.Rows
	cs   *cachedStmt
	kept bool
}

// Close closes the rows (the driver resets the statement) and frees it.
func (r *stmtRows) Close() error {
	err := r.Rows.Close()
	if r.cs != nil {
		r.cs.busy = false
		if !r.kept {
			r.cs.ds.Close()
		}
		r.cs = nil
	}
	return err
}
