package firmware

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

const testProduct = int64(4242)

// openStore returns an in-memory store with one product of Argons.
func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// addDevice provisions an online product device running version.
func addDevice(t *testing.T, st store.Store, id string, version int) {
	t.Helper()
	ctx := t.Context()
	if _, err := st.ProvisionDevice(ctx, id, "", nil, testProduct); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n1", SessionID: "s-" + id, PlatformID: 12,
		ProductID: testProduct, ProductVersion: version}); err != nil {
		t.Fatal(err)
	}
}

// addRelease uploads version (platform 12) and, when release, makes it the
// product default.
func addRelease(t *testing.T, st store.Store, version int, release bool) *store.ProductFirmware {
	t.Helper()
	ctx := t.Context()
	hash, err := st.PutFirmwareBinary(ctx, []byte(fmt.Sprintf("firmware v%d", version)))
	if err != nil {
		t.Fatal(err)
	}
	f := &store.ProductFirmware{ProductID: testProduct, Version: version, Hash: hash, Size: 11, PlatformID: 12}
	if err := st.CreateProductFirmware(ctx, f); err != nil {
		t.Fatal(err)
	}
	if release {
		if f, err = st.ReleaseProductFirmware(ctx, testProduct, version, "a@example.com", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// fakeFlasher records starts and ends each update as told.
type fakeFlasher struct {
	mu     sync.Mutex
	starts map[string]time.Time
	order  []time.Time
	// outcome decides what happens to a device's update: "refuse" fails
	// Flash, "success"/"failed" publishes that status on b.
	outcome func(id string) string
	b       *bus.Bus
}

func (f *fakeFlasher) Flash(ctx context.Context, id, hash string) error {
	f.mu.Lock()
	now := time.Now()
	if f.starts == nil {
		f.starts = make(map[string]time.Time)
	}
	f.starts[id] = now
	f.order = append(f.order, now)
	f.mu.Unlock()
	switch o := f.outcome(id); o {
	case "refuse":
		return errors.New("gateway: the device refused the update")
	default:
		go func() {
			time.Sleep(5 * time.Millisecond)
			f.b.Publish(context.Background(), bus.Event{Name: "spark/flash/status", Data: o + " ", DeviceID: id, ProductID: testProduct})
		}()
	}
	return nil
}

func TestDecide(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	v2 := addRelease(t, st, 2, true)
	v3 := addRelease(t, st, 3, false)
	s := New(Config{}, st, nil, nil)
	base := store.Device{ID: "d", ProductID: testProduct, Online: true, PlatformID: 12, ProductVersion: 1, FirmwareUpdatesEnabled: true}
	lock := func(id string, v int) {
		if err := st.SetDeviceFirmwareLock(ctx, id, testProduct, &v); err != nil {
			t.Fatal(err)
		}
	}
	lock("locked", 3)
	lock("lockedcurrent", 3)
	lock("lockedgone", 9)
	if err := st.StartDeviceOTA(ctx, "busy", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash}); err != nil {
		t.Fatal(err)
	}
	st.StartDeviceOTA(ctx, "failed", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash})
	st.FinishDeviceOTA(ctx, "failed", v2.Hash, "boom", time.Time{})
	st.StartDeviceOTA(ctx, "took", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash})
	st.FinishDeviceOTA(ctx, "took", v2.Hash, "", time.Time{})
	for range 3 {
		st.StartDeviceOTA(ctx, "gaveup", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash})
		st.FinishDeviceOTA(ctx, "gaveup", v2.Hash, "boom", time.Now().Add(-time.Hour))
	}
	st.StartDeviceOTA(ctx, "oldfail", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash})
	st.FinishDeviceOTA(ctx, "oldfail", v2.Hash, "boom", time.Now().Add(-time.Hour))

	tests := []struct {
		name string
		edit func(d *store.Device)
		want *store.ProductFirmware
		why  string
	}{
		{"behind the release", func(d *store.Device) {}, v2, ""},
		{"no product", func(d *store.Device) { d.ProductID = 0 }, nil, SkipNotInProduct},
		{"offline", func(d *store.Device) { d.Online = false }, nil, SkipOffline},
		{"development", func(d *store.Device) { d.Development = true }, nil, SkipDevelopment},
		{"quarantined", func(d *store.Device) { d.Quarantined = true }, nil, SkipQuarantined},
		{"current", func(d *store.Device) { d.ProductVersion = 2 }, nil, SkipCurrent},
		{"updates disabled", func(d *store.Device) { d.FirmwareUpdatesEnabled = false }, nil, SkipDisabled},
		{"disabled but forced", func(d *store.Device) { d.FirmwareUpdatesEnabled, d.FirmwareUpdatesForced = false, true }, v2, ""},
		{"other platform", func(d *store.Device) { d.PlatformID = 13 }, nil, SkipPlatform},
		{"locked to another version", func(d *store.Device) { d.ID = "locked"; d.ProductVersion = 2 }, v3, ""},
		{"locked to its version", func(d *store.Device) { d.ID = "lockedcurrent"; d.ProductVersion = 3 }, nil, SkipCurrent},
		{"locked to a deleted version", func(d *store.Device) { d.ID = "lockedgone" }, nil, SkipNoTarget},
		{"update running", func(d *store.Device) { d.ID = "busy" }, nil, SkipInProgress},
		{"failed lately", func(d *store.Device) { d.ID = "failed" }, nil, SkipFailedLately},
		{"failed long ago", func(d *store.Device) { d.ID = "oldfail" }, v2, ""},
		{"failed too often", func(d *store.Device) { d.ID = "gaveup" }, nil, SkipGaveUp},
		{"took but reports another version", func(d *store.Device) { d.ID = "took" }, nil, SkipDidNotTake},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			tc.edit(&d)
			got, why, err := s.Decide(ctx, &d)
			if err != nil {
				t.Fatal(err)
			}
			if why != tc.why || (got == nil) != (tc.want == nil) || got != nil && got.Version != tc.want.Version {
				t.Errorf("Decide = %+v, %q; want version %+v, %q", got, why, tc.want, tc.why)
			}
		})
	}
	if err := st.UnreleaseProductFirmware(ctx, testProduct); err != nil {
		t.Fatal(err)
	}
	if got, why, _ := s.Decide(ctx, &base); got != nil || why != SkipNoTarget {
		t.Errorf("after unrelease: %+v, %q", got, why)
	}
}

func TestFlashOneAtATime(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	addDevice(t, st, "d1", 1)
	block := make(chan struct{})
	fl := flasherFunc(func(ctx context.Context, id, hash string) error { <-block; return nil })
	s := New(Config{}, st, fl, nil)
	errc := make(chan error)
	go func() { errc <- s.Flash(ctx, "d1", 0, "h1", 0) }()
	// Wait until the first start holds the claim.
	for {
		if df, err := st.DeviceFirmware(ctx, "d1"); err == nil && df.Status == store.OTAStarted {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Flash(ctx, "d1", 0, "h2", 0); !errors.Is(err, ErrInProgress) {
		t.Errorf("second Flash = %v; want ErrInProgress", err)
	}
	close(block)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Outcome(ctx, "d1", true, ""); err != nil || !ok {
		t.Fatalf("Outcome = %v, %v", ok, err)
	}
	if ok, _ := s.Outcome(ctx, "d1", false, "late"); ok {
		t.Error("a second outcome applied")
	}
	df, _ := st.DeviceFirmware(ctx, "d1")
	if df.Status != store.OTASuccess || df.Hash != "h1" || df.Attempts != 1 {
		t.Errorf("state = %+v", df)
	}
	// A failure reported for a device that already runs the version it
	// was sent is a success.
	if err := st.StartDeviceOTA(ctx, "d1", store.DeviceOTA{ProductID: testProduct, Hash: "h-v1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Outcome(ctx, "d1", false, "lost track"); err != nil || !ok {
		t.Fatalf("Outcome = %v, %v", ok, err)
	}
	if df, _ := st.DeviceFirmware(ctx, "d1"); df.Status != store.OTASuccess {
		t.Errorf("failure of a device running the version sent recorded as %+v", df)
	}

	// A refused start is recorded as failed at once and frees the slot.
	refuse := New(Config{}, st, flasherFunc(func(context.Context, string, string) error {
		return errors.New("the device refused the update")
	}), nil)
	if err := refuse.Flash(ctx, "d1", 0, "h3", 0); err == nil {
		t.Fatal("refused Flash succeeded")
	}
	df, _ = st.DeviceFirmware(ctx, "d1")
	if df.Status != store.OTAFailed || df.Hash != "h3" || df.Error == "" {
		t.Errorf("after refusal = %+v", df)
	}
}

type flasherFunc func(ctx context.Context, id, hash string) error

func (f flasherFunc) Flash(ctx context.Context, id, hash string) error { return f(ctx, id, hash) }

// TestRollout200 releases a version to 200 online devices and checks that
// updates start at the configured rate and that every outcome is recorded.
func TestRollout200(t *testing.T) {
	const (
		n    = 200
		rate = 3000 // per minute: one start every 20 ms
	)
	st := openStore(t)
	ctx := t.Context()
	b := bustest.New(t, bus.Config{})
	for i := range n {
		addDevice(t, st, fmt.Sprintf("%024x", i), 1)
	}
	// Two devices that must be left alone.
	addDevice(t, st, "dev-current", 2)
	addDevice(t, st, "dev-development", 1)
	d, _ := st.DeviceByID(ctx, "dev-development")
	d.Development = true
	if err := st.UpdateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	v2 := addRelease(t, st, 2, true)

	outcome := func(id string) string {
		var i int
		fmt.Sscanf(id, "%x", &i)
		switch i % 10 {
		case 0:
			return "refuse"
		case 1:
			return "failed"
		}
		return "success"
	}
	fl := &fakeFlasher{outcome: outcome, b: b}
	s := New(Config{Rate: rate}, st, fl, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx, b) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	begin := time.Now()
	queued, err := s.ProductChanged(ctx, testProduct)
	if err != nil {
		t.Fatal(err)
	}
	if queued != n {
		t.Fatalf("queued %d devices; want %d", queued, n)
	}
	want := map[string]int{store.OTASuccess: n * 8 / 10, store.OTAFailed: n * 2 / 10}
	var got map[string]int
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := st.DeviceFirmwaresByProduct(ctx, testProduct)
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]int{}
		for _, df := range list {
			got[df.Status]++
		}
		if got[store.OTASuccess] == want[store.OTASuccess] && got[store.OTAFailed] == want[store.OTAFailed] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes = %v; want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(begin)

	fl.mu.Lock()
	defer fl.mu.Unlock()
	if len(fl.starts) != n {
		t.Errorf("%d devices were flashed; want %d", len(fl.starts), n)
	}
	for _, id := range []string{"dev-current", "dev-development"} {
		if _, ok := fl.starts[id]; ok {
			t.Errorf("%s was flashed", id)
		}
	}
	interval := s.Interval()
	// The rate: n starts span at least n-1 intervals (a ticker may fire
	// a little early or late, never bunch more than one tick).
	span := fl.order[len(fl.order)-1].Sub(fl.order[0])
	if min := time.Duration(n-1) * interval * 9 / 10; span < min {
		t.Errorf("%d starts took %v; at %d/min they take at least %v", n, span, rate, min)
	}
	// No bunching: any 11 consecutive starts span at least 10 intervals,
	// less two intervals of jitter (a start's own store writes).
	for i := 10; i < len(fl.order); i++ {
		if gap, min := fl.order[i].Sub(fl.order[i-10]), 8*interval; gap < min {
			t.Errorf("starts %d to %d took only %v; the rate allows 10 intervals, %v", i-10, i, gap, 10*interval)
			break
		}
	}
	list, _ := st.DeviceFirmwaresByProduct(ctx, testProduct)
	for _, df := range list {
		if df.Hash != v2.Hash || df.Version != 2 || df.StartedAt == nil || df.FinishedAt == nil || df.Attempts != 1 {
			t.Errorf("record %+v", df)
			break
		}
		if (df.Status == store.OTAFailed) != (df.Error != "") {
			t.Errorf("record %+v: error text does not match status", df)
			break
		}
	}
	t.Logf("%d devices at %d/min: all outcomes recorded in %v (%v of starts)", n, rate, elapsed.Round(time.Millisecond), span.Round(time.Millisecond))
}

// TestOnlineTriggersUpdate checks that a device coming online behind the
// release is updated without any API call.
func TestOnlineTriggersUpdate(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	b := bustest.New(t, bus.Config{})
	addRelease(t, st, 5, true)
	addDevice(t, st, "d-online", 4)
	started := make(chan string, 1)
	s := New(Config{Rate: 600}, st, flasherFunc(func(_ context.Context, id, _ string) error {
		started <- id
		return nil
	}), nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx, b) }()
	defer func() { stop(); <-done }()
	// Run subscribes asynchronously: publish until the update starts.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case id := <-started:
			if id != "d-online" {
				t.Fatalf("flashed %s", id)
			}
			return
		case <-tick.C:
			b.Publish(ctx, bus.Event{Name: "spark/status", Data: "online", DeviceID: "d-online", ProductID: testProduct, ProductVersion: 4})
		case <-timeout:
			t.Fatal("no update started after the device came online")
		}
	}
}

// TestRetryAfterFailure checks that a failed automatic update is tried
// again once the backoff has passed, and counted as a second attempt.
func TestRetryAfterFailure(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	b := bustest.New(t, bus.Config{})
	addRelease(t, st, 2, true)
	addDevice(t, st, "d-retry", 1)
	var mu sync.Mutex
	calls := 0
	fl := flasherFunc(func(_ context.Context, id, _ string) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		data := "success "
		if n == 1 {
			data = "failed "
		}
		go b.Publish(context.Background(), bus.Event{Name: "spark/flash/status", Data: data, DeviceID: id, ProductID: testProduct})
		return nil
	})
	s := New(Config{Rate: 6000, RetryBackoff: 200 * time.Millisecond}, st, fl, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx, b) }()
	defer func() { stop(); <-done }()
	time.Sleep(100 * time.Millisecond) // Run subscribes
	if _, err := s.ProductChanged(ctx, testProduct); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		df, err := st.DeviceFirmware(ctx, "d-retry")
		if err == nil && df.Status == store.OTASuccess {
			if df.Attempts != 2 {
				t.Errorf("attempts = %d; want 2", df.Attempts)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful retry: %+v, %v (%d flashes)", df, err, calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOnlineReconcilesFailedUpdate checks that a device coming online with
// the version of an update reported failed has that update recorded as a
// success.
func TestOnlineReconcilesFailedUpdate(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	b := bustest.New(t, bus.Config{})
	v2 := addRelease(t, st, 2, true)
	addDevice(t, st, "d-back", 2)
	st.StartDeviceOTA(ctx, "d-back", store.DeviceOTA{ProductID: testProduct, Hash: v2.Hash, Version: 2})
	st.FinishDeviceOTA(ctx, "d-back", v2.Hash, "lost track", time.Time{})
	s := New(Config{}, st, flasherFunc(func(context.Context, string, string) error {
		t.Error("a device running the release was flashed")
		return nil
	}), nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx, b) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.Publish(ctx, bus.Event{Name: "spark/status", Data: "online", DeviceID: "d-back", ProductID: testProduct, ProductVersion: 2})
		if df, _ := st.DeviceFirmware(ctx, "d-back"); df.Status == store.OTASuccess && df.Error == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed update of a device back with its version stayed failed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOutcomeLateSuccess: a success reported for an update already
// recorded as failed (the device came back with "previous OTA succeeded"
// after the gateway's reboot wait) turns the record into a success, also
// for a plain flash with no product version; a second report changes
// nothing, and a failure reported for a failed record neither.
func TestOutcomeLateSuccess(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	s := New(Config{}, st, nil, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.StartDeviceOTA(ctx, "d-late", store.DeviceOTA{Hash: "h1"}))
	if _, err := st.FinishDeviceOTA(ctx, "d-late", "h1", "gateway: device did not come back", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if applied, err := s.Outcome(ctx, "d-late", false, "again"); err != nil || applied {
		t.Fatalf("failure for a failed record: applied %v, %v", applied, err)
	}
	if applied, err := s.Outcome(ctx, "d-late", true, ""); err != nil || !applied {
		t.Fatalf("late success: applied %v, %v", applied, err)
	}
	df, err := st.DeviceFirmware(ctx, "d-late")
	must(err)
	if df.Status != store.OTASuccess || df.Error != "" || df.Hash != "h1" {
		t.Fatalf("record %+v", df)
	}
	if applied, err := s.Outcome(ctx, "d-late", true, ""); err != nil || applied {
		t.Fatalf("second success: applied %v, %v", applied, err)
	}
}
