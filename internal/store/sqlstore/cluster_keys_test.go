package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestClusterKeys checks the write-once semantics in both dialects: the
// first value stored under a name wins, also when several writers race.
func TestClusterKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		open   func(t *testing.T) *DB
		shared bool
	}{
		{"sqlite", func(t *testing.T) *DB { return openSQLiteFile(t) }, false},
		{"postgres", func(t *testing.T) *DB { return openPostgresSchema(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			defer db.Close()
			ctx := context.Background()
			if db.Shared() != tc.shared {
				t.Errorf("Shared() = %v; want %v", db.Shared(), tc.shared)
			}
			if _, err := db.ClusterKey(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("absent key: %v; want ErrNotFound", err)
			}
			if _, err := db.InsertClusterKey(ctx, "", []byte("x")); err == nil {
				t.Error("empty name accepted")
			}
			if _, err := db.InsertClusterKey(ctx, "k", nil); err == nil {
				t.Error("empty value accepted")
			}
			const writers = 8
			got := make([][]byte, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() { got[i], errs[i] = db.InsertClusterKey(ctx, "k", fmt.Appendf(nil, "value-%d", i)) })
			}
			wg.Wait()
			for i := range writers {
				if errs[i] != nil {
					t.Fatalf("writer %d: %v", i, errs[i])
				}
				if !bytes.Equal(got[i], got[0]) {
					t.Fatalf("writer %d read %q, writer 0 %q", i, got[i], got[0])
				}
			}
			stored, err := db.ClusterKey(ctx, "k")
			if err != nil || !bytes.Equal(stored, got[0]) {
				t.Fatalf("ClusterKey = %q, %v; want %q", stored, err, got[0])
			}
			if v, err := db.InsertClusterKey(ctx, "k", []byte("later")); err != nil || !bytes.Equal(v, stored) {
				t.Errorf("a later insert replaced the value: %q, %v", v, err)
			}
		})
	}
}
