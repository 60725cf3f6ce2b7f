package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// cachedStatements returns the statements the connections of pool keep
// (stmtConn), by text.
func cachedStatements(t *testing.T, pool *sql.DB) map[string]bool {
	t.Helper()
	conn, err := pool.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := map[string]bool{}
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stmtConn)
		if !ok {
			return fmt.Errorf("connection %T keeps no statements", dc)
		}
		for q, cs := range sc.stmts {
			if cs.busy {
				return fmt.Errorf("statement %q still busy", q)
			}
			got[q] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSQLiteStatementCache: statements run again from each connection's
// cache give the same results as new ones, in every way a statement can
// be run: repeated, nested while its rows are open, after a failure,
// inside a transaction on the single write connection, after a schema
// change, and past the cache's bound.
func TestSQLiteStatementCache(t *testing.T) {
	db := openSQLiteFile(t)
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a deadlock fails, not hangs
	defer cancel()
	w := db.w
	must := func(_ sql.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.ExecContext(ctx, `CREATE TABLE cache_t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`))
	const insert = `INSERT INTO cache_t (k, v) VALUES (?, ?)`
	for k := range 10 {
		must(w.ExecContext(ctx, insert, k, fmt.Sprint("v", k)))
	}
	if !cachedStatements(t, w)[insert] {
		t.Fatal("the insert was not kept")
	}

	t.Run("failure then reuse", func(t *testing.T) {
		if _, err := w.ExecContext(ctx, insert, 3, "dup"); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
			t.Fatalf("duplicate key: err %v, want a UNIQUE constraint failure", err)
		}
		must(w.ExecContext(ctx, insert, 10, "v10"))
	})

	const sel = `SELECT k, v FROM cache_t WHERE k >= ? ORDER BY k`
	t.Run("nested rows of one statement", func(t *testing.T) {
		conn, err := w.Conn(ctx) // the write connection, held: both queries run on it
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		outer, err := conn.QueryContext(ctx, sel, 8)
		if err != nil {
			t.Fatal(err)
		}
		var ks []int
		for outer.Next() {
			var k int
			var v string
			if err := outer.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k)
			// The same text while outer's rows are open: a statement of its own.
			inner, err := conn.QueryContext(ctx, sel, k)
			if err != nil {
				t.Fatal(err)
			}
			m := 0
			for inner.Next() {
				m++
			}
			inner.Close()
			if want := 11 - k; m != want {
				t.Fatalf("inner query from %d: %d rows, want %d", k, m, want)
			}
		}
		outer.Close()
		if fmt.Sprint(ks) != "[8 9 10]" {
			t.Fatalf("outer rows %v, want [8 9 10]", ks)
		}
		conn.Close()
		cachedStatements(t, w) // none left busy
	})

	t.Run("transaction on the write connection", func(t *testing.T) {
		const upd = `UPDATE cache_t SET v = ? WHERE k = ?`
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			for k := range 3 {
				if _, err := tx.ExecContext(ctx, upd, "tx", k); err != nil {
					return err
				}
			}
			var v string
			return tx.QueryRowContext(ctx, `SELECT v FROM cache_t WHERE k = ?`, 2).Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := w.QueryRowContext(ctx, `SELECT COUNT(*) FROM cache_t WHERE v = ?`, "tx").Scan(&n); err != nil || n != 3 {
			t.Fatalf("updated rows %d, %v; want 3", n, err)
		}
		if !cachedStatements(t, w)[upd] {
			t.Fatal("the transaction's update was not kept")
		}
	})

	t.Run("prepared explicitly", func(t *testing.T) {
		const cnt = `SELECT COUNT(*) FROM cache_t WHERE k < ?`
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			a, err := tx.PrepareContext(ctx, cnt)
			if err != nil {
				return err
			}
			b, err := tx.PrepareContext(ctx, cnt) // a is lent: b is a statement of its own
			if err != nil {
				return err
			}
			for i, st := range []*sql.Stmt{a, b, a} {
				var n int
				if err := st.QueryRowContext(ctx, i+1).Scan(&n); err != nil || n != i+1 {
					return fmt.Errorf("statement %d: %d, %v; want %d", i, n, err, i+1)
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, cnt, 5).Scan(&n); err != nil || n != 5 { // while lent: uncached
				return fmt.Errorf("plain query while lent: %d, %v; want 5", n, err)
			}
			return errors.Join(a.Close(), b.Close())
		})
		if err != nil {
			t.Fatal(err)
		}
		if !cachedStatements(t, w)[cnt] { // and none left busy
			t.Fatal("the prepared statement was not kept")
		}
	})

	t.Run("schema change", func(t *testing.T) {
		const all = `SELECT * FROM cache_t WHERE k = ?`
		cols := func() int {
			rows, err := w.QueryContext(ctx, all, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			c, _ := rows.Columns()
			return len(c)
		}
		if n := cols(); n != 2 {
			t.Fatalf("%d columns, want 2", n)
		}
		must(w.ExecContext(ctx, `ALTER TABLE cache_t ADD COLUMN extra INTEGER NOT NULL DEFAULT 7`))
		if n := cols(); n != 3 {
			t.Fatalf("%d columns after ALTER TABLE, want 3", n)
		}
	})

	t.Run("bound", func(t *testing.T) {
		for i := range 3 * stmtCacheSize {
			var k int
			q := fmt.Sprintf(`SELECT k FROM cache_t WHERE k = ? AND %d = %d`, i, i)
			if err := w.QueryRowContext(ctx, q, i%10).Scan(&k); err != nil || k != i%10 {
				t.Fatalf("query %d: %d, %v", i, k, err)
			}
		}
		if n := len(cachedStatements(t, w)); n > stmtCacheSize {
			t.Fatalf("%d statements kept, want at most %d", n, stmtCacheSize)
		}
		must(w.ExecContext(ctx, insert, 11, "v11"))
	})
}

// BenchmarkSQLiteStatementCache runs store statements on the write
// connection through the driver, from the connection's cache (as the
// store runs them) and prepared, run and finalized each time (as before
// the cache): a primary-key read, and a device update, whose preparation
// compiles the devices table's triggers.
func BenchmarkSQLiteStatementCache(b *testing.B) {
	db := openSQLiteFile(b)
	defer db.Close()
	ctx := b.Context()
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE cache_b (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO cache_b (k, v) VALUES (1, 'one')`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO devices (id, created_at, updated_at) VALUES ('d1', 0, 0)`); err != nil {
		b.Fatal(err)
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, bc := range []struct {
		name, query string
		args        []driver.NamedValue
	}{
		{"read", `SELECT v FROM cache_b WHERE k = ?`, []driver.NamedValue{{Ordinal: 1, Value: int64(1)}}},
		{"device-update", `UPDATE devices SET last_heard = ? WHERE id = ?`,
			[]driver.NamedValue{{Ordinal: 1, Value: int64(1)}, {Ordinal: 2, Value: "d1"}}},
	} {
		for _, cached := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/cached=%v", bc.name, cached), func(b *testing.B) {
				dest := make([]driver.Value, 1)
				b.ReportAllocs()
				for b.Loop() {
					err := conn.Raw(func(dc any) error {
						q := dc.(driver.QueryerContext)
						if !cached {
							q = unwrapConn(dc).(driver.QueryerContext)
						}
						rows, err := q.QueryContext(ctx, bc.query, bc.args)
						if err != nil {
							return err
						}
						rows.Next(dest)
						return rows.Close()
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
