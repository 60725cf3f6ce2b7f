package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
)

// envNATS names an external NATS server (with JetStream) to run the suite
// against as well, e.g. nats://127.0.0.1:4222.
const envNATS = "WICK_TEST_NATS_URL"

// A mode is one way of running the bus; the whole suite runs in each.
type mode struct {
	name     string
	external bool
	js       bool // expect JetStream replay
	cfg      func(t *testing.T) bus.Config
}

func modes() []mode {
	url := os.Getenv(envNATS)
	return []mode{
		{name: "embedded-ring", cfg: func(t *testing.T) bus.Config { return bus.Config{} }},
		{name: "embedded-jetstream", js: true, cfg: func(t *testing.T) bus.Config {
			return bus.Config{JetStreamDir: t.TempDir()}
		}},
		{name: "external-jetstream", external: true, js: true, cfg: func(t *testing.T) bus.Config {
			return bus.Config{URL: url}
		}},
		{name: "external-ring", external: true, cfg: func(t *testing.T) bus.Config {
			return bus.Config{URL: url, NoJetStream: true}
		}},
	}
}

// eachMode runs fn as a subtest per mode. External modes are skipped
// unless WICK_TEST_NATS_URL is set.
func eachMode(t *testing.T, fn func(t *testing.T, m mode)) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			if m.external && os.Getenv(envNATS) == "" {
				t.Skipf("%s not set: skipping the suite against an external NATS (set it to e.g. nats://127.0.0.1:4222)", envNATS)
			}
			fn(t, m)
		})
	}
}

// uniquePrefix keeps parallel tests (and parallel runs on a shared
// external server) apart.
func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "wt-" + hex.EncodeToString(b[:])
}

// open opens a bus in mode m with a unique subject prefix; tweak may adjust
// the config. The bus (and its JetStream stream on an external server) is
// removed when the test ends.
func open(t *testing.T, m mode, tweak func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := m.cfg(t)
	cfg.SubjectPrefix = uniquePrefix()
	cfg.LocateTimeout = 300 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := bus.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", m.name, err)
	}
	if got := b.JetStream() != nil; got != m.js {
		b.Close()
		t.Fatalf("JetStream() != nil is %v, want %v", got, m.js)
	}
	t.Cleanup(func() {
		if js := b.JetStream(); js != nil && m.external {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = js.DeleteStream(ctx, b.EventStream())
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func peer(t *testing.T, b *bus.Bus, node string) *bus.Bus {
	t.Helper()
	p, err := bus.OpenPeer(context.Background(), b, node)
	if err != nil {
		t.Fatalf("OpenPeer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func publish(t testing.TB, b *bus.Bus, e bus.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatalf("Publish(%q): %v", e.Name, err)
	}
}

func names(evs []bus.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}

const (
	u1, u2 = "5a0000000000000000000001", "5a0000000000000000000002"
	c1, c2 = "c10000000000000000000001", "c10000000000000000000002"
	devA   = "0a0000000000000000000001"
	devB   = "0a0000000000000000000002"
	devC   = "0a0000000000000000000003"
	devD   = "0a0000000000000000000004"
	oddID  = "u.s*r> ~x"
)

// filterEvents is what TestFilter publishes, in order.
var filterEvents = []bus.Event{
	{Name: "temp", Data: "21.5", DeviceID: devA, UserID: u1},
	{Name: "temperature/basement", Data: "18", DeviceID: devA, UserID: u1},
	{Name: "temp.c", DeviceID: devB, UserID: u1, CustomerID: c1, ProductID: 7, ProductVersion: 3},
	{Name: "hum", Data: "40%", DeviceID: devC, UserID: u2, ProductID: 7, Public: true},
	{Name: "temp/x", DeviceID: devD, UserID: u2, CustomerID: c2, ProductID: 8, Public: true},
	{Name: "api-event", Data: "x", DeviceID: bus.DeviceAPI, UserID: u1},
	{Name: "hook-sent/temp", Data: "undefined", DeviceID: bus.DeviceInternal, UserID: u1},
	{Name: "a.b/c", Data: "\x00\xff binary", DeviceID: "dev.1*>", UserID: oddID},
	{Name: "unowned", DeviceID: devC, ProductID: 7},
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter bus.Filter
		want   []string
	}{
		{"all", bus.Filter{}, names(filterEvents)},
		{"user", bus.Filter{UserID: u1}, []string{"temp", "temperature/basement", "temp.c", "api-event", "hook-sent/temp"}},
		{"user prefix", bus.Filter{UserID: u1, NamePrefix: "temp"}, []string{"temp", "temperature/basement", "temp.c"}},
		{"prefix with slash", bus.Filter{NamePrefix: "temp/"}, []string{"temp/x"}},
		{"prefix with dot", bus.Filter{NamePrefix: "temp."}, []string{"temp.c"}},
		{"prefix is case-sensitive", bus.Filter{NamePrefix: "Temp"}, nil},
		{"customer", bus.Filter{CustomerID: c1}, []string{"temp.c"}},
		{"product", bus.Filter{ProductID: 7}, []string{"temp.c", "hum", "unowned"}},
		{"product device", bus.Filter{ProductID: 7, DeviceID: devB}, []string{"temp.c"}},
		{"device", bus.Filter{DeviceID: devA}, []string{"temp", "temperature/basement"}},
		{"api coreid", bus.Filter{DeviceID: bus.DeviceAPI}, []string{"api-event"}},
		{"public", bus.Filter{PublicOnly: true}, []string{"hum", "temp/x"}},
		{"public prefix", bus.Filter{PublicOnly: true, NamePrefix: "temp"}, []string{"temp/x"}},
		{"mine or public", bus.Filter{UserID: u1, AlsoPublic: true, NamePrefix: "t"}, []string{"temp", "temperature/basement", "temp.c", "temp/x"}},
		{"escaped user", bus.Filter{UserID: oddID}, []string{"a.b/c"}},
		{"escaped device", bus.Filter{DeviceID: "dev.1*>"}, []string{"a.b/c"}},
		{"dotted prefix", bus.Filter{NamePrefix: "a.b/"}, []string{"a.b/c"}},
		{"user and customer", bus.Filter{UserID: u2, CustomerID: c2}, []string{"temp/x"}},
		{"nobody", bus.Filter{UserID: "ffffffffffffffffffffffff"}, nil},
	}
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, nil)
		subs := make([]*bus.Subscription, len(tests))
		for i, tt := range tests {
			subs[i] = bustest.Subscribe(t, b, tt.filter, 64)
		}
		for _, e := range filterEvents {
			publish(t, b, e)
		}
		// One sentinel per filter, published last: by per-publisher
		// ordering, once a subscriber sees its sentinel it has seen
		// everything published before.
		for i, tt := range tests {
			f := tt.filter
			dev := f.DeviceID
			if dev == "" {
				dev = "sentinel"
			}
			publish(t, b, bus.Event{Name: f.NamePrefix + "zz-end-" + strconv.Itoa(i), DeviceID: dev,
				UserID: f.UserID, CustomerID: f.CustomerID, ProductID: f.ProductID, Public: f.PublicOnly})
		}
		for i, tt := range tests {
			end := tt.filter.NamePrefix + "zz-end-" + strconv.Itoa(i)
			got := bustest.Until(t, subs[i], 5*time.Second, func(e bus.Event) bool { return e.Name == end })
			got = slices.DeleteFunc(got, func(e bus.Event) bool { return containsEnd(e.Name) })
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("%s: got %q; want %q", tt.name, names(got), tt.want)
			}
			for j := 1; j < len(got); j++ {
				if got[j].ID <= got[j-1].ID {
					t.Errorf("%s: IDs not increasing: %d then %d", tt.name, got[j-1].ID, got[j].ID)
				}
			}
			// The replay window applies the same filter.
			past, err := b.Since(context.Background(), tt.filter, 0, 0)
			if err != nil {
				t.Fatalf("%s: Since: %v", tt.name, err)
			}
			past = slices.DeleteFunc(past, func(e bus.Event) bool { return containsEnd(e.Name) })
			if !slices.Equal(names(past), tt.want) {
				t.Errorf("%s: Since = %q; want %q", tt.name, names(past), tt.want)
			}
			if !slices.Equal(past, got) {
				t.Errorf("%s: replayed events differ from the live ones:\n%+v\n%+v", tt.name, past, got)
			}
		}
	})
}

func containsEnd(s string) bool {
	for i := 0; i+7 <= len(s); i++ {
		if s[i:i+7] == "zz-end-" {
			return true
		}
	}
	return false
}

func TestEventFields(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, nil)
		s := bustest.Subscribe(t, b, bus.Filter{}, 64)
		at := time.Date(2015, 7, 18, 0, 12, 18, 174000000, time.FixedZone("x", 3600))
		in := []bus.Event{
			{Name: "temperature", Data: "25.34", TTL: 60, PublishedAt: at, DeviceID: devA, UserID: u1,
				CustomerID: c1, ProductID: 1234, ProductVersion: 7, Public: true},
			{Name: "spark/status", Data: "online", DeviceID: devB}, // zero TTL and time are defaulted
			{Name: "bin", Data: string([]byte{0, 1, 0xfe, 0xff, '\n'}), DeviceID: devC, TTL: 16777215},
		}
		before := time.Now()
		for _, e := range in {
			publish(t, b, e)
		}
		got := bustest.Collect(t, s, len(in), 5*time.Second)
		want := slices.Clone(in)
		want[0].PublishedAt = at.UTC()
		want[1].TTL = bus.DefaultTTL
		for i := range got {
			if got[i].ID == 0 {
				t.Errorf("event %d: ID 0", i)
			}
			if i > 0 && got[i].ID <= got[i-1].ID {
				t.Errorf("event %d: ID %d not above %d", i, got[i].ID, got[i-1].ID)
			}
			if want[i].PublishedAt.IsZero() {
				if got[i].PublishedAt.Before(before.Add(-time.Second)) || got[i].PublishedAt.Location() != time.UTC {
					t.Errorf("event %d: PublishedAt %v not defaulted to now (UTC)", i, got[i].PublishedAt)
				}
				want[i].PublishedAt = got[i].PublishedAt
			}
			want[i].ID = got[i].ID
			if got[i] != want[i] {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		if err := b.Publish(context.Background(), bus.Event{}); err == nil {
			t.Error("Publish without a name: want an error")
		}
	})
}

func TestOverflow(t *testing.T) {
	const n = 1000
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, nil)
		slow := bustest.Subscribe(t, b, bus.Filter{UserID: u1}, 4) // never read while publishing
		fast := bustest.Subscribe(t, b, bus.Filter{UserID: u1}, n)
		other := bustest.Subscribe(t, b, bus.Filter{DeviceID: devA}, 16)

		var got []bus.Event
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for len(got) < n {
				e, err := fast.Next(ctx)
				if err != nil {
					return
				}
				got = append(got, e)
			}
		}()
		start := time.Now()
		for i := range n {
			publish(t, b, bus.Event{Name: "seq", Data: strconv.Itoa(i), DeviceID: devB, UserID: u1})
		}
		elapsed := time.Since(start)
		<-done
		if len(got) != n {
			t.Fatalf("fast subscriber got %d events; want %d", len(got), n)
		}
		for i, e := range got {
			if e.Data != strconv.Itoa(i) {
				t.Fatalf("fast subscriber event %d has data %q: order or loss", i, e.Data)
			}
		}
		if fast.Dropped() != 0 {
			t.Errorf("fast.Dropped() = %d; want 0", fast.Dropped())
		}
		// The slow subscriber kept the first 4 and lost the rest, counted.
		waitFor(t, func() bool { return slow.Dropped() == n-4 }, "slow.Dropped() == %d (is %d)", n-4, slow.Dropped())
		kept := bustest.Collect(t, slow, 4, time.Second)
		for i, e := range kept {
			if e.Data != strconv.Itoa(i) {
				t.Errorf("slow subscriber kept %q at %d; want %d", e.Data, i, i)
			}
		}
		if st := b.Stats(); st.Dropped < n-4 || st.Published < n {
			t.Errorf("Stats() = %+v; want Dropped >= %d and Published >= %d", st, n-4, n)
		}
		if other.Dropped() != 0 {
			t.Errorf("unrelated subscriber dropped %d", other.Dropped())
		}
		t.Logf("%d publishes with a stuck subscriber took %v", n, elapsed)
	})
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReplay(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, nil)
		f := bus.Filter{DeviceID: devA, NamePrefix: "r/"}
		pub := func(i int) {
			publish(t, b, bus.Event{Name: "r/n", Data: strconv.Itoa(i), DeviceID: devA, UserID: u1})
			publish(t, b, bus.Event{Name: "r/n", Data: "noise", DeviceID: devB, UserID: u1}) // other device
			publish(t, b, bus.Event{Name: "x/n", Data: "noise", DeviceID: devA, UserID: u1}) // other name
		}
		for i := range 10 {
			pub(i)
		}
		ctx := context.Background()
		past, err := b.Since(ctx, f, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(past) != 10 {
			t.Fatalf("Since(0) returned %d events; want 10", len(past))
		}
		lastID := past[3].ID // the client saw 0..3

		// Publish across the replay/live boundary while subscribing.
		const total = 300
		started := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 10; i < total; i++ {
				if i == 20 {
					close(started)
				}
				pub(i)
			}
		})
		<-started
		s := bustest.Subscribe(t, b, f, 4*total, bus.After(lastID, 0))
		wg.Wait()
		got := bustest.Collect(t, s, total-4, 10*time.Second)
		for i, e := range got {
			if want := strconv.Itoa(i + 4); e.Data != want {
				t.Fatalf("event %d: data %q; want %q (gap or duplicate at the live boundary)", i, e.Data, want)
			}
			if i > 0 && e.ID <= got[i-1].ID {
				t.Fatalf("event %d: ID %d not above %d", i, e.ID, got[i-1].ID)
			}
		}
		bustest.ExpectNone(t, s, 50*time.Millisecond)
		if s.Dropped() != 0 {
			t.Errorf("Dropped() = %d; want 0", s.Dropped())
		}

		// A client that is up to date replays nothing.
		s2 := bustest.Subscribe(t, b, f, 8, bus.After(got[len(got)-1].ID, 0))
		pub(total)
		if e := bustest.Collect(t, s2, 1, 5*time.Second)[0]; e.Data != strconv.Itoa(total) {
			t.Errorf("up-to-date client got %q first; want %q", e.Data, strconv.Itoa(total))
		}
		// max keeps the most recent events.
		recent, err := b.Since(ctx, f, lastID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{strconv.Itoa(total - 2), strconv.Itoa(total - 1), strconv.Itoa(total)}; !slices.Equal(data(recent), want) {
			t.Errorf("Since(max 3) = %q; want %q", data(recent), want)
		}
	})
}

func data(evs []bus.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Data
	}
	return out
}

func TestReplayWindow(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, func(c *bus.Config) { c.ReplayMaxEvents = 20 })
		for i := range 50 {
			publish(t, b, bus.Event{Name: "w", Data: strconv.Itoa(i), DeviceID: devA})
		}
		got, err := b.Since(context.Background(), bus.Filter{}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := 30; i < 50; i++ {
			want = append(want, strconv.Itoa(i))
		}
		if !slices.Equal(data(got), want) {
			t.Errorf("window of 20 replayed %q; want %q", data(got), want)
		}
		// A Last-Event-ID older than the window replays the window.
		s := bustest.Subscribe(t, b, bus.Filter{}, 4, bus.After(1, 0))
		if n := len(bustest.Collect(t, s, 20, 5*time.Second)); n != 20 {
			t.Errorf("replayed %d; want 20", n)
		}
	})
}

func TestCall(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		gw := open(t, m, nil)          // the gateway process
		api := peer(t, gw, "api-node") // a process without devices
		ctx := context.Background()

		// No process handles any device yet: NATS reports no responders at once.
		start := time.Now()
		if _, err := api.Call(ctx, devA, bus.Call{Kind: bus.KindPing}); !errors.Is(err, bus.ErrDeviceOffline) {
			t.Fatalf("Call without any gateway: %v; want ErrDeviceOffline", err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("offline without gateways took %v; want an immediate answer", d)
		}

		var mu sync.Mutex
		var seen []bus.Call
		unregister := gw.HandleDevice(devA, func(ctx context.Context, c bus.Call) (bus.Reply, error) {
			mu.Lock()
			seen = append(seen, c)
			mu.Unlock()
			switch c.Kind {
			case bus.KindFunction:
				if c.Name != "led" {
					return bus.Reply{Status: 404, Error: "function not found"}, nil
				}
				v, ok := map[string]int64{"on": 1, "off": 0}[c.Arg]
				if !ok {
					v = -1
				}
				return bus.Reply{Status: 200, ReturnValue: v}, nil
			case bus.KindVariable:
				return bus.Reply{Status: 200, Result: []byte{0, 0, 0, 0, 0, 0x80, 0x35, 0x40}, Type: "double"}, nil
			case "sleep":
				<-ctx.Done()
				return bus.Reply{}, ctx.Err()
			case "gone":
				return bus.Reply{}, fmt.Errorf("session closed: %w", bus.ErrDeviceOffline)
			case "fail":
				return bus.Reply{}, errors.New("device said 4.00")
			case "panic":
				panic("boom")
			}
			return bus.Reply{Status: 200}, nil
		})

		for _, caller := range []struct {
			name string
			b    *bus.Bus
		}{{"remote", api}, {"local", gw}} {
			t.Run(caller.name, func(t *testing.T) {
				tests := []struct {
					call    bus.Call
					want    bus.Reply
					wantErr error
				}{
					{bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "on"}, bus.Reply{Status: 200, ReturnValue: 1}, nil},
					{bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "blink"}, bus.Reply{Status: 200, ReturnValue: -1}, nil},
					{bus.Call{Kind: bus.KindFunction, Name: "nope"}, bus.Reply{Status: 404, Error: "function not found"}, nil},
					{bus.Call{Kind: bus.KindVariable, Name: "temp"}, bus.Reply{Status: 200, Result: []byte{0, 0, 0, 0, 0, 0x80, 0x35, 0x40}, Type: "double"}, nil},
					{bus.Call{Kind: "gone"}, bus.Reply{}, bus.ErrDeviceOffline},
				}
				for _, tt := range tests {
					got, err := caller.b.Call(ctx, devA, tt.call)
					if !errors.Is(err, tt.wantErr) || got.Status != tt.want.Status || got.ReturnValue != tt.want.ReturnValue ||
						string(got.Result) != string(tt.want.Result) || got.Type != tt.want.Type || got.Error != tt.want.Error {
						t.Errorf("Call(%+v) = %+v, %v; want %+v, %v", tt.call, got, err, tt.want, tt.wantErr)
					}
				}
				var ce *bus.CallError
				if _, err := caller.b.Call(ctx, devA, bus.Call{Kind: "fail"}); !errors.As(err, &ce) || ce.Message != "device said 4.00" {
					t.Errorf("failing handler: %v; want CallError %q", err, "device said 4.00")
				}
				if _, err := caller.b.Call(ctx, devA, bus.Call{Kind: "panic"}); !errors.As(err, &ce) {
					t.Errorf("panicking handler: %v; want a CallError", err)
				}
				tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
				start := time.Now()
				_, err := caller.b.Call(tctx, devA, bus.Call{Kind: "sleep"})
				cancel()
				if !errors.Is(err, bus.ErrTimeout) {
					t.Errorf("slow device: %v; want ErrTimeout", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("timeout took %v", d)
				}
			})
		}
		mu.Lock()
		if len(seen) == 0 || seen[0].Kind != bus.KindFunction || seen[0].Name != "led" || seen[0].Arg != "on" {
			t.Errorf("handler saw %+v first; want the led call", seen)
		}
		mu.Unlock()

		// A device nobody holds while a gateway exists: offline after the
		// locate timeout (remote), at once (the gateway itself).
		start = time.Now()
		if _, err := api.Call(ctx, devB, bus.Call{Kind: bus.KindPing}); !errors.Is(err, bus.ErrDeviceOffline) {
			t.Errorf("remote call to an unheld device: %v; want ErrDeviceOffline", err)
		}
		t.Logf("remote offline answer after %v", time.Since(start))
		start = time.Now()
		if _, err := gw.Call(ctx, devB, bus.Call{Kind: bus.KindPing}); !errors.Is(err, bus.ErrDeviceOffline) {
			t.Errorf("gateway call to an unheld device: %v; want ErrDeviceOffline", err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("a lone gateway took %v to report its own unheld device offline", d)
		}

		// Reconnect: a new handler replaces the old; the old unregister is a no-op.
		unregister2 := gw.HandleDevice(devA, func(context.Context, bus.Call) (bus.Reply, error) {
			return bus.Reply{Status: 201}, nil
		})
		unregister()
		if r, err := api.Call(ctx, devA, bus.Call{Kind: bus.KindPing}); err != nil || r.Status != 201 {
			t.Errorf("after reconnect: %+v, %v; want status 201", r, err)
		}
		unregister2()
		if _, err := api.Call(ctx, devA, bus.Call{Kind: bus.KindPing}); !errors.Is(err, bus.ErrDeviceOffline) {
			t.Errorf("after unregister: %v; want ErrDeviceOffline", err)
		}
	})
}

// TestCallManyDevices checks that 10,000 handled devices cost one NATS
// subscription, and that calls reach each of them.
func TestCallManyDevices(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		if m.js {
			t.Skip("calls do not use JetStream; the ring modes cover them")
		}
		t.Parallel()
		gw := open(t, m, nil)
		api := peer(t, gw, "api")
		const n = 10000
		before := gw.Conn().NumSubscriptions()
		for i := range n {
			id := fmt.Sprintf("%024x", i)
			gw.HandleDevice(id, func(_ context.Context, c bus.Call) (bus.Reply, error) {
				return bus.Reply{Result: []byte(id)}, nil
			})
		}
		if st := gw.Stats(); st.Devices != n {
			t.Errorf("Stats().Devices = %d; want %d", st.Devices, n)
		}
		if got := gw.Conn().NumSubscriptions(); got != before {
			t.Errorf("events connection subscriptions grew from %d to %d", before, got)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 97 {
					id := fmt.Sprintf("%024x", i)
					r, err := api.Call(context.Background(), id, bus.Call{Kind: bus.KindPing})
					if err != nil || string(r.Result) != id {
						errs <- fmt.Errorf("Call(%s) = %q, %v", id, r.Result, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestPresence(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		t.Parallel()
		b := open(t, m, nil)
		other := peer(t, b, "gw-2")
		all, err := b.SubscribePresence("", 16)
		if err != nil {
			t.Fatal(err)
		}
		defer all.Close()
		one, err := b.SubscribePresence(devA, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer one.Close()
		ctx := context.Background()
		at := time.Now().UTC().Truncate(time.Millisecond)
		sent := []bus.Presence{
			{DeviceID: devA, Online: true, SessionID: "s1", Addr: "192.0.2.1:1234", At: at},
			{DeviceID: devB, Online: true, SessionID: "s2", At: at},
			{DeviceID: devA, Online: false, SessionID: "s1", At: at},
		}
		for _, p := range sent {
			if err := other.PublishPresence(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		recv := func(s *bus.PresenceSubscription, n int) []bus.Presence {
			var out []bus.Presence
			timeout := time.After(5 * time.Second)
			for len(out) < n {
				select {
				case p := <-s.Presences():
					out = append(out, p)
				case <-timeout:
					t.Fatalf("got %d presence changes; want %d", len(out), n)
				}
			}
			return out
		}
		got := recv(all, 3)
		for i, p := range got {
			want := sent[i]
			want.Node = "gw-2"
			if !p.At.Equal(want.At) || p.DeviceID != want.DeviceID || p.Online != want.Online ||
				p.Node != want.Node || p.SessionID != want.SessionID || p.Addr != want.Addr {
				t.Errorf("presence %d = %+v; want %+v", i, p, want)
			}
		}
		if got := recv(one, 2); got[0].Online != true || got[1].Online != false || got[0].DeviceID != devA {
			t.Errorf("device presence = %+v; want devA online then offline", got)
		}
		select {
		case p := <-one.Presences():
			t.Errorf("device subscription got %+v; want only devA", p)
		case <-time.After(30 * time.Millisecond):
		}
	})
}

// TestClose checks that Close ends every subscription and that the bus
// refuses work afterwards.
func TestClose(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		cfg := m.cfg(t)
		cfg.SubjectPrefix = uniquePrefix()
		b, err := bus.Open(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.external && b.JetStream() != nil {
			defer func() {
				p, err := bus.Open(context.Background(), cfg, nil)
				if err == nil {
					_ = p.JetStream().DeleteStream(context.Background(), p.EventStream())
					p.Close()
				}
			}()
		}
		s, err := b.Subscribe(bus.Filter{}, 4)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := b.SubscribePresence("", 4)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, b, bus.Event{Name: "last", DeviceID: devA})
		waitFor(t, func() bool { return len(s.Events()) == 1 }, "the event to be buffered")
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// The buffered event stays readable, then the channel is closed.
		if e, ok := <-s.Events(); !ok || e.Name != "last" {
			t.Errorf("after Close got %+v, %v; want the buffered event", e, ok)
		}
		if _, ok := <-s.Events(); ok {
			t.Error("event channel not closed by Close")
		}
		if _, ok := <-ps.Presences(); ok {
			t.Error("presence channel not closed by Close")
		}
		ctx := context.Background()
		if err := b.Publish(ctx, bus.Event{Name: "x"}); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Publish after Close: %v", err)
		}
		if _, err := b.Subscribe(bus.Filter{}, 1); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Subscribe after Close: %v", err)
		}
		if _, err := b.Call(ctx, devA, bus.Call{}); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Call after Close: %v", err)
		}
		if _, err := b.Since(ctx, bus.Filter{}, 0, 0); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Since after Close: %v", err)
		}
		s.Close() // closing after the bus is harmless
	})
}

// TestNoLeak opens and closes buses and subscriptions and checks that the
// goroutine count returns to where it was (no goleak dependency). It does
// not run in parallel with other tests.
func TestNoLeak(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		base := runtime.NumGoroutine()
		func() {
			cfg := m.cfg(t)
			cfg.SubjectPrefix = uniquePrefix()
			b, err := bus.Open(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if m.external && b.JetStream() != nil {
				defer b.JetStream().DeleteStream(context.Background(), b.EventStream())
			}
			publish(t, b, bus.Event{Name: "warm", DeviceID: devA})
			// The first HandleDevice starts the one call subscription (and
			// its goroutine) that lives until Close.
			b.HandleDevice(devB, func(context.Context, bus.Call) (bus.Reply, error) { return bus.Reply{}, nil })()
			inBus := settle(-1)
			for round := range 3 {
				var subs []*bus.Subscription
				for i := range 100 {
					f := bus.Filter{DeviceID: fmt.Sprintf("%024x", i%10)}
					var opts []bus.SubscribeOption
					if i%3 == 0 {
						opts = append(opts, bus.After(0, 10))
					}
					s, err := b.Subscribe(f, 2, opts...)
					if err != nil {
						t.Fatal(err)
					}
					subs = append(subs, s)
				}
				for i := range 50 { // overflow some buffers, then vanish without reading
					publish(t, b, bus.Event{Name: "e", DeviceID: fmt.Sprintf("%024x", i%10)})
				}
				unreg := b.HandleDevice(devA, func(context.Context, bus.Call) (bus.Reply, error) { return bus.Reply{}, nil })
				if _, err := b.Call(context.Background(), devA, bus.Call{}); err != nil {
					t.Fatal(err)
				}
				unreg()
				for _, s := range subs {
					s.Close()
				}
				if got := settle(inBus); got > inBus {
					t.Errorf("round %d: %d goroutines after closing 100 subscriptions; want %d", round, got, inBus)
				}
			}
			if st := b.Stats(); st.Subscriptions != 0 || st.Groups != 0 {
				t.Errorf("Stats() after closing every subscription = %+v", st)
			}
		}()
		if got := settle(base); got > base {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines after Close; want %d\n%s", got, base, buf[:runtime.Stack(buf, true)])
		}
	})
}

// settle waits (up to 5 s) for the goroutine count to drop to want and
// returns it; want < 0 just lets it settle briefly.
func settle(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	if want < 0 {
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	for n > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.Config
	}{
		{"bad prefix", bus.Config{SubjectPrefix: "a.*"}},
		{"empty prefix token", bus.Config{SubjectPrefix: "a..b"}},
		{"unreachable external", bus.Config{URL: "nats://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bus.Open(context.Background(), tt.cfg, nil)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded; want an error")
			}
		})
	}
}
