package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/storetest"
)

// openSQLiteFile opens a store on a new file in a temporary directory.
func openSQLiteFile(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openSQLiteFile(t) })
}

// TestSQLiteMemoryConformance starts each test's database from the image of
// one migrated in-memory database (WithSnapshot), as the API tests do; the
// file variant above applies every migration to each of its databases.
func TestSQLiteMemoryConformance(t *testing.T) {
	src, err := Open(t.Context(), "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := src.Snapshot(t.Context())
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(t.Context(), "sqlite::memory:", nil, WithSnapshot(img))
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestSQLiteMemoryIsPrivate(t *testing.T) {
	ctx := t.Context()
	a, err := Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateUser(ctx, &store.User{Username: "a@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]*DB{"a": a, "b": b} {
		n, err := db.CountUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"a": 1, "b": 0}[name]; n != want {
			t.Errorf("store %s has %d users; want %d", name, n, want)
		}
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := openSQLiteFile(t)
	defer db.Close()
	ctx := t.Context()
	for _, tc := range []struct {
		pool *sql.DB
		name string
		want map[string]string
	}{
		{db.w, "writer", map[string]string{"busy_timeout": "5000", "journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "query_only": "0", "temp_store": "2"}},
		{db.r, "reader", map[string]string{"busy_timeout": "5000", "journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "query_only": "1"}},
	} {
		for pragma, want := range tc.want {
			var got string
			if err := tc.pool.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", tc.name, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s; want %s", tc.name, pragma, got, want)
			}
		}
	}
	if got := db.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections; want 1", got)
	}
	// The read pool refuses writes.
	if _, err := db.r.ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestSQLiteMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "wick.db")
	steps, err := migrations(migrationFS, dialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	db, err := Open(ctx, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "applied migration"); got != len(steps) {
		t.Errorf("first Open logged %d applied migrations; want %d:\n%s", got, len(steps), logs.String())
	}
	u := &store.User{Username: "kept@example.com", PasswordHash: "h"}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	logs.Reset()
	db, err = Open(ctx, dsn, log)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer db.Close()
	if strings.Contains(logs.String(), "applied migration") {
		t.Errorf("second Open applied migrations again:\n%s", logs.String())
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(steps) {
		t.Errorf("schema_migrations has %d rows; want %d", n, len(steps))
	}
	if _, err := db.UserByID(ctx, u.ID); err != nil {
		t.Errorf("user written before reopening: %v", err)
	}
}

// TestSQLiteTwoProcesses opens two stores on one file, as the server and the
// "wick user" command do, and writes through both at once.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wick.db")
	var dbs [2]*DB
	// Both open (and migrate) at the same time.
	var wg sync.WaitGroup
	var openErrs [2]error
	for i := range dbs {
		wg.Go(func() { dbs[i], openErrs[i] = Open(ctx, "sqlite:"+path, nil) })
	}
	wg.Wait()
	for i, err := range openErrs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}

	const writers, ops = 4, 15
	errs := make(chan error, 2*writers*ops)
	for i, db := range dbs {
		for w := range writers {
			wg.Go(func() {
				for op := range ops {
					name := fmt.Sprintf("p%d-w%d-%d", i, w, op)
					u := &store.User{Username: name + "@example.com", PasswordHash: "h"}
					if err := db.CreateUser(ctx, u); err != nil {
						errs <- fmt.Errorf("%s: create user: %w", name, err)
						continue
					}
					tok := &store.Token{Hash: name, Kind: store.KindUser, UserID: u.ID}
					if err := db.CreateToken(ctx, tok); err != nil {
						errs <- fmt.Errorf("%s: create token: %w", name, err)
					}
					if op%3 == 0 { // a multi-statement transaction
						if err := db.DeleteUser(ctx, u.ID); err != nil {
							errs <- fmt.Errorf("%s: delete user: %w", name, err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each store sees the other's writes.
	want := 2 * writers * (ops - (ops+2)/3)
	for i, db := range dbs {
		n, err := db.CountUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("store %d counts %d users; want %d", i, n, want)
		}
	}
}

func TestProductIDsStartAt10000(t *testing.T) {
	db := openSQLiteFile(t)
	defer db.Close()
	checkFirstProductID(t, db)
}

// checkFirstProductID creates two products and checks they get 10000 and
// 10001.
func checkFirstProductID(t *testing.T, db *DB) {
	t.Helper()
	ctx := t.Context()
	for i, want := range []int64{10000, 10001} {
		p := &store.Product{Slug: fmt.Sprintf("p%d", i), Name: "P"}
		if err := db.CreateProduct(ctx, p, "owner@example.com"); err != nil {
			t.Fatal(err)
		}
		if p.ID != want {
			t.Errorf("product %d ID = %d; want %d", i, p.ID, want)
		}
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	db := openSQLiteFile(t)
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateUser(ctx, &store.User{Username: "dup@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	err := db.CreateUser(ctx, &store.User{Username: "dup@example.com", PasswordHash: "h"})
	if want := `sqlstore: create user "dup@example.com": store: conflict`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("conflict error = %v; want prefix %q", err, want)
	}
	_, err = db.UserByID(ctx, "nope")
	if want := `sqlstore: user "nope": store: not found`; err == nil || err.Error() != want {
		t.Errorf("not-found error = %v; want %q", err, want)
	}
}

func TestTimesAreMilliseconds(t *testing.T) {
	// The encoding is the documented one: integer milliseconds, so other
	// tools and later migrations can rely on it.
	db := openSQLiteFile(t)
	defer db.Close()
	ctx := t.Context()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	if err := db.CreateToken(ctx, &store.Token{Hash: "h", Kind: store.KindUser, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	var ms int64
	if err := db.r.QueryRowContext(ctx, "SELECT expires_at FROM access_tokens WHERE hash = 'h'").Scan(&ms); err != nil {
		t.Fatal(err)
	}
	if ms != exp.UnixMilli() {
		t.Errorf("stored expires_at = %d; want %d", ms, exp.UnixMilli())
	}
}
