package device

import (
	"bytes"
	"crypto/rsa"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		b      Backoff
		n      int
		lo, hi time.Duration
	}{
		{Backoff{}, 1, 500 * time.Millisecond, time.Second},
		{Backoff{}, 2, time.Second, 2 * time.Second},
		{Backoff{}, 3, 2 * time.Second, 4 * time.Second},
		{Backoff{}, 50, 30 * time.Second, time.Minute},
		{Backoff{Min: 10 * time.Millisecond, Max: 25 * time.Millisecond}, 3, 12500 * time.Microsecond, 25 * time.Millisecond},
		{Backoff{Min: time.Second, Max: time.Millisecond}, 5, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := tt.b.Delay(tt.n)
			if d < tt.lo || d > tt.hi {
				t.Fatalf("%+v.Delay(%d) = %s; want in [%s, %s]", tt.b, tt.n, d, tt.lo, tt.hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("%+v.Delay(%d): only %d distinct values, jitter missing", tt.b, tt.n, len(seen))
		}
	}
}

func TestDispatcherOrderAndIdle(t *testing.T) {
	var q dispatcher
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		if !q.submit(func() {
			defer wg.Done()
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
		}) {
			t.Fatalf("submit %d refused", i)
		}
	}
	wg.Wait()
	for i, v := range got {
		if v != i {
			t.Fatalf("ran %v; want submission order", got)
		}
	}
	// The worker exits when idle and a new one starts on demand.
	for deadline := time.Now().Add(time.Second); ; {
		q.mu.Lock()
		running := q.running
		q.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher goroutine still running while idle")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	q.submit(func() { close(done) })
	<-done
}

func TestDispatcherBacklog(t *testing.T) {
	var q dispatcher
	block := make(chan struct{})
	defer close(block)
	accepted := 0
	for range maxQueued + 10 {
		if q.submit(func() { <-block }) {
			accepted++
		}
	}
	// One runs, maxQueued wait; the rest are refused.
	if accepted < maxQueued || accepted > maxQueued+1 {
		t.Errorf("accepted %d; want %d or %d", accepted, maxQueued, maxQueued+1)
	}
}

var (
	fuzzKeysOnce           sync.Once
	fuzzServer, fuzzDevice *rsa.PrivateKey
)

func fuzzKeys(tb testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	fuzzKeysOnce.Do(func() {
		var err error
		if fuzzServer, err = protocol.GenerateServerKey(nil); err != nil {
			panic(err)
		}
		if fuzzDevice, err = protocol.GenerateDeviceKey(nil); err != nil {
			panic(err)
		}
	})
	return fuzzServer, fuzzDevice
}

// TestCountingReaderRestOfFrame: the keep-alive deadline is left alone at
// a frame's start and replaced, once per frame, as soon as the frame has
// begun, so that a reader descheduled past it between a frame's header and
// its body does not end the session (TestPingTimeout failed so under load:
// "read frame: i/o timeout", want ErrPingTimeout).
func TestCountingReaderRestOfFrame(t *testing.T) {
	calls := 0
	c := countingReader{r: bytes.NewReader([]byte{0, 3, 'a', 'b', 'c', 0, 1, 'd'}), midFrame: func() { calls++ }}
	read := func(n, wantCalls int) {
		t.Helper()
		if _, err := io.ReadFull(&c, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if calls != wantCalls {
			t.Fatalf("after %d bytes: midFrame called %d times, want %d", c.n, calls, wantCalls)
		}
	}
	c.frame()
	read(2, 0) // the header: the frame starts under the keep-alive deadline
	read(1, 1) // the body: the deadline is replaced
	read(2, 1) // once
	c.frame()
	read(2, 1)
	read(1, 2)
}
