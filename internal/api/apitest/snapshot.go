package apitest

import (
	"context"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// migrated holds the image of a freshly migrated SQLite database, made
// once per test binary: under the race detector applying every migration
// costs about a second of CPU, and some tests build an Env per table cell.
// It is the one process-wide value of this package; the image is
// immutable once made.
var migrated struct {
	once sync.Once
	img  []byte
	err  error
}

// migratedImage returns the image of an empty, fully migrated database.
func migratedImage(tb testing.TB) []byte {
	tb.Helper()
	migrated.once.Do(func() {
		ctx := context.Background()
		db, err := sqlstore.Open(ctx, "sqlite::memory:", nil)
		if err != nil {
			migrated.err = err
			return
		}
		defer db.Close()
		migrated.img, migrated.err = db.Snapshot(ctx)
	})
	if migrated.err != nil {
		tb.Fatalf("apitest: migrated database image: %v", migrated.err)
	}
	return migrated.img
}
