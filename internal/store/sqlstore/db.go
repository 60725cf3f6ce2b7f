// Package sqlstore implements store.Store on database/sql for two dialects:
// SQLite, through the pure-Go driver modernc.org/sqlite, and PostgreSQL,
// through pgx's database/sql adapter.
//
// Open takes a DSN: "sqlite:PATH" (or "sqlite::memory:" for a private
// in-memory database), or a "postgres://" / "postgresql://" URL. It applies
// the connection settings and the embedded schema migrations before it
// returns.
//
// The SQL is written once, with "?" placeholders that are rebound to "$n" for
// PostgreSQL. Times are stored as BIGINT milliseconds since the Unix epoch
// and read back in UTC; a nil *time.Time is NULL. There are no foreign keys
// between aggregates: the methods that remove a parent remove its dependent
// rows in the same transaction.
//
// SQLite allows one writer at a time. A DB therefore writes through a pool of
// exactly one connection, whose transactions start with BEGIN IMMEDIATE, and
// reads through a separate pool; every connection waits up to five seconds
// for a lock held by another process (busy_timeout), so a second process,
// such as the "wick user" command beside a running server, can share the
// file.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wick-cloud/wick/internal/store"
)

// dialect names the SQL flavour a DB speaks.
type dialect int

const (
	dialectSQLite dialect = iota + 1
	dialectPostgres
)

func (d dialect) String() string {
	switch d {
	case dialectSQLite:
		return "sqlite"
	case dialectPostgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// DB is a store.Store backed by SQLite or PostgreSQL. It is safe for
// concurrent use.
type DB struct {
	dialect dialect
	// w runs every statement that writes. On SQLite it holds one
	// connection, so writers of this process queue in Go instead of
	// contending for the database lock.
	w *sql.DB
	// r runs reads outside transactions. It is w itself on PostgreSQL and
	// for an in-memory SQLite database.
	r   *sql.DB
	log *slog.Logger
	// stmts caches prepared reads on r, by query text, for SQLite (pgx
	// caches prepared statements itself). Queries are constants, so the
	// cache is bounded by the code.
	stmts sync.Map // string -> *sql.Stmt
	// names proposes the names of devices claimed without one.
	names *store.DeviceNames
}

// Option changes how Open sets up a DB.
type Option func(*DB)

// WithDeviceNames makes the DB name claimed devices from n instead of a
// generator seeded from crypto/rand; tests pass a seeded one.
func WithDeviceNames(n *store.DeviceNames) Option {
	return func(db *DB) { db.names = n }
}

var _ store.Store = (*DB)(nil)

// Open connects to the database named by dsn, applies the per-connection
// settings and brings the schema up to date; then it indexes the ECC device
// keys stored without a fingerprint, and names the owned devices that have
// no name (store.Devices.NameOwnedDevices). log receives
// migration notices; nil discards them.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *DB
	switch cfg.dialect {
	case dialectSQLite:
		db, err = openSQLite(cfg.path, log)
	case dialectPostgres:
		db, err = openPostgres(cfg.url, log)
	}
	if err != nil {
		return nil, err
	}
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect to %s: %w", db.dialect, err)
	}
	db.names = store.NewRandomDeviceNames()
	for _, o := range opts {
		o(db)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.fillKeyFingerprints(ctx); err != nil {
		db.Close()
		return nil, err
	}
	n, err := db.NameOwnedDevices(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		db.log.Info("sqlstore: named devices claimed without a name", "devices", n)
	}
	return db, nil
}

// Close releases the database connections.
func (db *DB) Close() error {
	var err error
	db.stmts.Range(func(key, st any) bool {
		err = errors.Join(err, st.(*sql.Stmt).Close())
		db.stmts.Delete(key)
		return true
	})
	err = errors.Join(err, db.w.Close())
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// rebind rewrites the "?" placeholders of query into the dialect's form.
// Queries never contain a literal question mark.
func (db *DB) rebind(query string) string {
	if db.dialect != dialectPostgres {
		return query
	}
	return rebindDollar(query)
}

// rebindDollar turns each "?" of query into $1, $2, ... in order.
func rebindDollar(query string) string {
	n := strings.Count(query, "?")
	if n == 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 2*n)
	i := 0
	for {
		j := strings.IndexByte(query, '?')
		if j < 0 {
			b.WriteString(query)
			return b.String()
		}
		i++
		b.WriteString(query[:j])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
		query = query[j+1:]
	}
}

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// beginSnapshot starts a read-only transaction on the read pool whose
// queries all see one snapshot, so that a page and its total agree:
// SQLite's transactions are snapshots; PostgreSQL needs REPEATABLE READ for
// that. The caller rolls it back.
func (db *DB) beginSnapshot(ctx context.Context) (*sql.Tx, error) {
	var opts *sql.TxOptions
	if db.dialect == dialectPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return db.r.BeginTx(ctx, opts)
}

// exec runs one writing statement.
func (db *DB) exec(ctx context.Context, q execer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, db.rebind(query), args...)
}

// execOne runs one writing statement that must touch exactly one row, and
// reports store.ErrNotFound when it touched none.
func (db *DB) execOne(ctx context.Context, q execer, query string, args ...any) error {
	res, err := db.exec(ctx, q, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// queryRow runs a single-row read on the read pool.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := db.preparedOn(ctx, db.r, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.r.QueryRowContext(ctx, db.rebind(query), args...)
}

// preparedOn returns the cached prepared form of a read about to run on q,
// preparing it on first use, when q is the SQLite read pool. nil means
// "run it unprepared": on PostgreSQL, in a transaction, or when preparing
// failed (running it then reports the error). Preparing once halves the
// cost of a lookup by primary key.
func (db *DB) preparedOn(ctx context.Context, q execer, query string) *sql.Stmt {
	if db.dialect != dialectSQLite || q != execer(db.r) {
		return nil
	}
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// queryRows runs a read on the read pool and passes each row to scan.
func (db *DB) queryRows(ctx context.Context, q execer, scan func(*sql.Rows) error, query string, args ...any) error {
	var (
		rows *sql.Rows
		err  error
	)
	if st := db.preparedOn(ctx, q, query); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = q.QueryContext(ctx, db.rebind(query), args...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// collectStrings runs a query whose rows are one string each, such as
// "DELETE ... RETURNING hash".
func (db *DB) collectStrings(ctx context.Context, q execer, query string, args ...any) ([]string, error) {
	var out []string
	err := db.queryRows(ctx, q, func(rows *sql.Rows) error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}, query, args...)
	return out, err
}

// mapErr translates driver errors into the store's sentinels: a missing row
// becomes store.ErrNotFound and a unique-key violation store.ErrConflict.
// Other errors pass through unchanged.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("%w (%v)", store.ErrConflict, err)
	}
	return err
}

// isUniqueViolation reports whether err is a unique or primary-key
// constraint failure in either dialect.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	return false
}

// wrap maps err with mapErr and prefixes it with the operation.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: "+format+": %w", append(args, mapErr(err))...)
}

// newID returns 24 lower-case hex characters from crypto/rand.
func newID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b[:])
}

// now is the current time as the store keeps it: UTC, whole milliseconds.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// stamp sets *t to now when it is zero, and otherwise normalises it to the
// stored precision, so that the caller's struct matches what reads return.
func stamp(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
		return
	}
	*t = fromMS(toMS(*t))
}

// toMS encodes t as milliseconds since the Unix epoch.
func toMS(t time.Time) int64 { return t.UnixMilli() }

// fromMS decodes milliseconds since the Unix epoch into a UTC time.
func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMS encodes an optional time; nil is NULL.
func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toMS(*t), Valid: true}
}

// fromNullMS decodes an optional time; NULL is nil.
func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
