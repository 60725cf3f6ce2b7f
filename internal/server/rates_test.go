package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// TestClusterRates: one server on SQLite gets no shared limits (nothing to
// sync, no cost); servers on PostgreSQL share the API limits' counts.
func TestClusterRates(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if r := clusterRates(lite, nil); r != nil {
		t.Fatal("SQLite store got cluster-wide rate limits")
	}

	dsn := postgresSchema(t) // skips without PostgreSQL
	var windows []interface {
		Allow(string, time.Time) (bool, time.Duration)
	}
	for range 2 {
		db, err := sqlstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := clusterRates(db, nil)
		if r == nil {
			t.Fatal("PostgreSQL store got no cluster-wide rate limits")
		}
		r.Start()
		t.Cleanup(func() { r.Close(); db.Close() })
		windows = append(windows, r.Window("global", 3, time.Hour, 100))
	}
	now := time.Now()
	for range 3 {
		if ok, _ := windows[0].Allow("203.0.113.5", now); !ok {
			t.Fatal("refused within the limit")
		}
	}
	// The other server sees the first one's counts at its first sync: it
	// admits less than its own limit of 3 (one request every 500 ms, two
	// sync intervals) before it refuses.
	deadline := time.Now().Add(10 * time.Second)
	for admitted := 0; ; admitted++ {
		ok, _ := windows[1].Allow("203.0.113.5", now)
		if !ok {
			if admitted >= 3 {
				t.Fatalf("the second server admitted %d: it counted alone", admitted)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second server never saw the first one's counts")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
