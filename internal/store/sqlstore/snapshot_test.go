package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestSnapshot: a database opened from a snapshot has the image's rows and
// schema, is independent of the database it came from and of other copies,
// and enforces foreign keys; where no snapshot can be loaded, Open warns
// and migrates from scratch.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	src, err := Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.CreateUser(ctx, &store.User{Username: "image@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	img, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(img, []byte("SQLite format 3\x00")) {
		t.Fatalf("image starts %q", img[:min(16, len(img))])
	}

	open := func(t *testing.T, dsn string, log *slog.Logger) *DB {
		t.Helper()
		db, err := Open(ctx, dsn, log, WithSnapshot(img))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(t, "sqlite::memory:", nil), open(t, "sqlite::memory:", nil)
	if _, err := a.UserByUsername(ctx, "image@example.com"); err != nil {
		t.Fatalf("copy lacks the image's user: %v", err)
	}
	if err := a.CreateUser(ctx, &store.User{Username: "only-a@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]*DB{"source": src, "other copy": b} {
		if _, err := db.UserByUsername(ctx, "only-a@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s sees a row written to a copy: %v", name, err)
		}
	}
	var fk int
	if err := a.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}

	// A file database does not take an image: Open says so and migrates.
	var logs bytes.Buffer
	f := open(t, "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "snapshot not loaded") {
		t.Errorf("no warning for a file database; log: %s", logs.String())
	}
	if _, err := f.UserByUsername(ctx, "image@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("file database has the image's user: %v", err)
	}
	if err := f.CreateUser(ctx, &store.User{Username: "file@example.com", PasswordHash: "x"}); err != nil {
		t.Errorf("migrated file database: %v", err)
	}
}
