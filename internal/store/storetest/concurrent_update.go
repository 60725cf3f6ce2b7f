package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// checkStaleUpdate plays two servers updating one row from the same read:
// the first update wins, the second fails with store.ErrStale and changes
// nothing; then two updaters doing read-modify-write with retries on
// ErrStale in parallel lose no update. get reads the row's name and
// version; set writes a name from a read version (0: unchecked).
func checkStaleUpdate(t *testing.T, get func(ctx context.Context) (string, int64, error),
	set func(ctx context.Context, name string, version int64) (int64, error)) {
	ctx := t.Context()
	_, v1, err := get(ctx)
	must(t, err)
	if v1 != 1 {
		t.Fatalf("version of a new row = %d; want 1", v1)
	}
	nv, err := set(ctx, "first", v1)
	must(t, err)
	if nv != 2 {
		t.Errorf("version after a checked update = %d; want 2", nv)
	}
	if _, err := set(ctx, "second", v1); !errors.Is(err, store.ErrStale) {
		t.Fatalf("update from a stale read: %v; want ErrStale", err)
	}
	name, v, err := get(ctx)
	must(t, err)
	if name != "first" || v != 2 {
		t.Fatalf("after a stale update: %q at version %d; want \"first\" at 2", name, v)
	}
	if _, err := set(ctx, "0", 0); err != nil { // unchecked: always applies
		t.Fatal(err)
	}

	const updaters, each = 2, 10
	var wg sync.WaitGroup
	errs := make(chan error, updaters)
	for range updaters {
		wg.Go(func() {
			for range each {
				for {
					name, v, err := get(ctx)
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(name)
					_, err = set(ctx, strconv.Itoa(n+1), v)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrStale) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	name, v, err = get(ctx)
	must(t, err)
	if name != strconv.Itoa(updaters*each) || v != 3+updaters*each {
		t.Errorf("after %d concurrent increments: %q at version %d; want %d at %d", updaters*each, name, v, updaters*each, 3+updaters*each)
	}
}
