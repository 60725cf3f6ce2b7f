package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// fakeBatches records the batches it is given; the device "gone" is
// absent, a save from the old state "stale" loses, and each batch waits
// for hold (when set) before it is written.
type fakeBatches struct {
	mu    sync.Mutex
	sizes []int
	left  []time.Duration // each batch's time to its deadline
	hold  chan struct{}
	fail  error
}

func (f *fakeBatches) SaveDTLSSessions(ctx context.Context, ss []store.DTLSSession, old [][]byte) ([]bool, error) {
	f.mu.Lock()
	f.sizes = append(f.sizes, len(ss))
	if dl, ok := ctx.Deadline(); ok {
		f.left = append(f.left, time.Until(dl))
	}
	hold := f.hold
	f.hold = nil
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if f.fail != nil {
		return nil, f.fail
	}
	saved := make([]bool, len(ss))
	for i, s := range ss {
		saved[i] = s.DeviceID != "gone" && string(old[i]) != "stale"
	}
	return saved, nil
}

// TestSaveBatcher: saves that arrive while a batch is written go in the
// next ones, at most max each; each save gets its own outcome, conditional
// on its own old state (a conflict in a batch fails that save alone); a
// save that waited too long fails unwritten while the store fails, and is
// written when the store is only slow.
func TestSaveBatcher(t *testing.T) {
	t.Run("groups", func(t *testing.T) {
		const n = 600
		hold := make(chan struct{})
		f := &fakeBatches{hold: hold}
		b := saveBatcher{max: 256}
		errs := make([]error, n+1)
		saved := make([]bool, n+1)
		var wg sync.WaitGroup
		wg.Go(func() { saved[0], errs[0] = b.save(f, store.DTLSSession{DeviceID: "first"}, nil) })
		waitFor(t, "first batch", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sizes) == 1 })
		for i := 1; i <= n; i++ {
			id := fmt.Sprint("d", i)
			if i == 7 {
				id = "gone"
			}
			old := []byte("current")
			if i == 9 || i == 300 {
				old = []byte("stale") // another process saved it since
			}
			wg.Go(func() { saved[i], errs[i] = b.save(f, store.DTLSSession{DeviceID: id}, old) })
		}
		waitFor(t, "saves waiting", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.pending) == n })
		close(hold)
		wg.Wait()
		want := fmt.Sprint([]int{1, 256, 256, n - 2*256})
		if got := fmt.Sprint(f.sizes); got != want {
			t.Errorf("batches %s, want %s", got, want)
		}
		for i, err := range errs {
			if want := i != 7 && i != 9 && i != 300; err != nil || saved[i] != want {
				t.Errorf("save %d: saved %v, %v; want saved %v", i, saved[i], err, want)
			}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.running || len(b.pending) != 0 {
			t.Errorf("writer still running (%v) or saves pending (%d)", b.running, len(b.pending))
		}
	})
	t.Run("fails", func(t *testing.T) {
		f := &fakeBatches{fail: errors.New("disk full")}
		var b saveBatcher
		if _, err := b.save(f, store.DTLSSession{DeviceID: "d"}, nil); err == nil || err.Error() != "disk full" {
			t.Errorf("save on a failing store: %v", err)
		}
	})
	for _, tt := range []struct {
		name      string
		fail      error
		wantLate  error
		wantSizes string
	}{
		// The first batch fails after the late save waited past maxWait:
		// the late one fails unwritten.
		{"expires", errors.New("store timed out"), context.DeadlineExceeded, "[1]"},
		// The first batch is slow but succeeds: the late one is written.
		{"backlog", nil, nil, "[1 1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hold := make(chan struct{})
			f := &fakeBatches{hold: hold, fail: tt.fail}
			b := saveBatcher{maxWait: 50 * time.Millisecond}
			var wg sync.WaitGroup
			var first, late error
			wg.Go(func() { _, first = b.save(f, store.DTLSSession{DeviceID: "first"}, nil) })
			waitFor(t, "first batch", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sizes) == 1 })
			wg.Go(func() { _, late = b.save(f, store.DTLSSession{DeviceID: "late"}, nil) })
			waitFor(t, "save waiting", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.pending) == 1 })
			time.Sleep(100 * time.Millisecond)
			close(hold)
			wg.Wait()
			if !errors.Is(first, tt.fail) || !errors.Is(late, tt.wantLate) {
				t.Errorf("first save %v (want %v), save that waited past maxWait %v (want %v)", first, tt.fail, late, tt.wantLate)
			}
			if got := fmt.Sprint(f.sizes); got != tt.wantSizes {
				t.Errorf("batches %s, want %s", got, tt.wantSizes)
			}
		})
	}
	t.Run("shutdown", func(t *testing.T) {
		// A shutdown's save is written however long it waited, even
		// while the store fails, in a batch with the longer deadline.
		hold := make(chan struct{})
		f := &fakeBatches{hold: hold, fail: errors.New("store timed out")}
		b := saveBatcher{maxWait: 50 * time.Millisecond, patientTimeout: time.Hour}
		var wg sync.WaitGroup
		var first error
		wg.Go(func() { _, first = b.save(f, store.DTLSSession{DeviceID: "first"}, nil) })
		waitFor(t, "first batch", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sizes) == 1 })
		late := make(chan error, 1)
		b.enqueue(f, store.DTLSSession{DeviceID: "late"}, nil, true, func(_ bool, err error) { late <- err })
		time.Sleep(100 * time.Millisecond)
		close(hold)
		wg.Wait()
		if err := <-late; !errors.Is(first, f.fail) || !errors.Is(err, f.fail) {
			t.Errorf("first save %v, shutdown's save that waited past maxWait %v: want both %v from the store", first, err, f.fail)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if got := fmt.Sprint(f.sizes); got != "[1 1]" {
			t.Errorf("batches %s, want [1 1]", got)
		}
		if len(f.left) != 2 || f.left[0] > storeTimeout || f.left[1] <= storeTimeout {
			t.Errorf("time to the deadlines %v: want the first within %v, the shutdown's batch beyond", f.left, storeTimeout)
		}
	})
}
