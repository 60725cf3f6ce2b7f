package gateway

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// flakyDescribe is a store whose describe writes fail (as a store timeout)
// while fail is above zero.
type flakyDescribe struct {
	store.Store
	fail  atomic.Int64
	calls atomic.Int64
}

func (f *flakyDescribe) SetDeviceDescribe(ctx context.Context, id string, d store.Describe) error {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return fmt.Errorf("flaky store: %w", context.DeadlineExceeded)
	}
	return f.Store.SetDeviceDescribe(ctx, id, d)
}

func (f *flakyDescribe) ApplyPresence(ctx context.Context, ups []store.PresenceUpdate) ([]bool, error) {
	return f.Store.(store.PresenceBatcher).ApplyPresence(ctx, ups)
}

// TestDescribeSurvivesStoreTimeouts checks that a describe whose store
// write fails is written later: the device, online all along, ends up
// listed with its functions and variables, and its calls work meanwhile.
func TestDescribeSurvivesStoreTimeouts(t *testing.T) {
	cfg := testConfig()
	w := newWorld(t, cfg)
	w.g.Close()
	st := &flakyDescribe{Store: w.st}
	w.st = st
	w.g = w.newGateway(cfg)
	st.fail.Store(3) // the system part, the application part, and the first retry

	id, key := deviceID(0x72), testKey(w.t, "device_a")
	w.provision(id, key, "")
	d := w.dial(id, key)
	d.mu.Lock()
	d.functions["led"] = func(arg string) int32 { return int32(len(arg)) }
	d.appJSON = `{"f":["led"],"v":{"temp":2}}`
	d.mu.Unlock()
	d.hello(helloPayload(0))
	waitFor(t, "device online", func() bool { return w.g.Online(id.String()) })
	waitFor(t, "functions stored after the failed writes", func() bool {
		dev := w.device(id)
		return len(dev.Functions) == 1 && dev.Functions[0] == "led" && dev.Variables["temp"] == "int32"
	})
	if st.fail.Load() >= 0 {
		t.Fatalf("failures left %d: the describe was stored before the store recovered", st.fail.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := w.g.CallFunction(ctx, id.String(), "led", "abc"); err != nil || v != 3 {
		t.Fatalf("call = %d, %v; want 3", v, err)
	}
}

// TestDescribeRetryYieldsToNewer checks that a retried describe write
// never overwrites a newer description of the same part: the first write
// fails, a newer one is stored, and the retry then writes nothing.
func TestDescribeRetryYieldsToNewer(t *testing.T) {
	cfg := testConfig()
	w := newWorld(t, cfg)
	w.g.Close()
	st := &flakyDescribe{Store: w.st}
	w.st = st
	w.g = w.newGateway(cfg)
	id, key := deviceID(0x73), testKey(w.t, "device_a")
	w.provision(id, key, "")

	s := &session{g: w.g, id: id.String(), done: make(chan struct{})}
	defer close(s.done)
	st.fail.Store(1)
	if err := s.applyDescribe(protocol.DescribeApplication, []byte(`{"f":["old"],"v":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.applyDescribe(protocol.DescribeApplication, []byte(`{"f":["new"],"v":{}}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * describeRetryMin) // the retry's first attempt is due after describeRetryMin
	if f := w.device(id).Functions; len(f) != 1 || f[0] != "new" {
		t.Fatalf("functions %v, want [new]", f)
	}
	if n := st.calls.Load(); n != 2 {
		t.Fatalf("%d describe writes, want 2 (the retry of the replaced one must write nothing)", n)
	}
}
