package sqlstore

import (
	"context"
	"os"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/storetest"
)

// postgresEnv names the variable holding the URL of a PostgreSQL database
// the tests may create and drop schemas in.
const postgresEnv = "WICK_TEST_POSTGRES_URL"

// postgresURL returns the test server's URL, or skips the test.
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(postgresEnv)
	if u == "" {
		t.Skip(postgresEnv + " not set; skipping PostgreSQL conformance")
	}
	return u
}

// freshSchema creates a schema with a random name, drops it when the test
// ends, and returns a DSN whose connections use it.
func freshSchema(t testing.TB) string {
	t.Helper()
	return storetest.PostgresSchema(t, postgresURL(t), "wick_test_")
}

// openPostgresSchema opens a store in a fresh schema.
func openPostgresSchema(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), freshSchema(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestPostgresConformance(t *testing.T) {
	postgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgresSchema(t) })
}

func TestPostgresProductIDsStartAt10000(t *testing.T) {
	db := openPostgresSchema(t)
	defer db.Close()
	checkFirstProductID(t, db)
}

// TestPostgresConcurrentOpen starts several servers on one empty schema at
// once: the advisory lock lets exactly one apply each migration.
func TestPostgresConcurrentOpen(t *testing.T) {
	ctx := t.Context()
	dsn := freshSchema(t)
	steps, err := migrations(migrationFS, dialectPostgres)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var (
		wg   sync.WaitGroup
		dbs  [n]*DB
		errs [n]error
	)
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, dsn, nil) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	var rows int
	if err := dbs[0].r.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(steps) {
		t.Errorf("schema_migrations has %d rows; want %d", rows, len(steps))
	}
	// Reopening applies nothing and keeps data.
	u := &store.User{Username: "kept@example.com", PasswordHash: "h"}
	if err := dbs[1].CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.UserByID(ctx, u.ID); err != nil {
		t.Errorf("user after reopening: %v", err)
	}
}

// TestPostgresAnalyze: Analyze leaves the device lists' tables analyzed in
// the store's own schema; on SQLite it does nothing.
func TestPostgresAnalyze(t *testing.T) {
	postgresURL(t)
	db := openPostgresSchema(t)
	defer db.Close()
	ctx := context.Background()
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND last_analyze IS NOT NULL
		AND relname IN ('users', 'customers', 'devices', 'product_device_lists', 'product_device_changes')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("%d of 5 tables analyzed", n)
	}
	lite, err := Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if err := lite.Analyze(ctx); err != nil {
		t.Fatalf("sqlite: %v", err)
	}
}
