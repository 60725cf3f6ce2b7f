package webhook_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/internal/webhook"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// routeDevice is a device of the routing test with the events it got.
type routeDevice struct {
	id       string
	user     string
	product  int64
	mu       sync.Mutex
	received []string // names
}

func (d *routeDevice) got(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.received {
		if n == name {
			return true
		}
	}
	return false
}

func (d *routeDevice) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.received...)
}

// TestPublishedBackEventsReachOwners publishes the events of a sandbox
// hook and of a product hook on a real bus, with a real gateway and
// devices, and checks who gets them: the sandbox hook owner's devices and
// user streams, the product's devices and product stream, nobody else.
func TestPublishedBackEventsReachOwners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bustest.New(t, bus.Config{})
	serverKey, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Node: "route-test"}, gateway.Deps{Store: st, Bus: b, ServerKey: serverKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)

	const product = 7
	mine := &routeDevice{id: "aa0000000000000000000001", user: "u1"}
	other := &routeDevice{id: "aa0000000000000000000002", user: "u2"}
	prod := &routeDevice{id: "aa0000000000000000000003", product: product}
	for _, d := range []*routeDevice{mine, other, prod} {
		key, err := protocol.GenerateDeviceKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		der, err := protocol.MarshalPublicKeyDER(&key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ProvisionDevice(ctx, d.id, store.KeyRSA, der, d.product); err != nil {
			t.Fatal(err)
		}
		if d.user != "" {
			if _, err := st.ClaimDevice(ctx, d.id, d.user, ""); err != nil {
				t.Fatal(err)
			}
		}
		dev, err := device.New(device.Config{
			ID: d.id, PrivateKey: key, ServerAddr: ln.Addr().String(), ServerKey: &serverKey.PublicKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		record := func(name, data string) {
			d.mu.Lock()
			d.received = append(d.received, name)
			d.mu.Unlock()
		}
		for _, prefix := range []string{"probe", "hook-", d.id + "/hook-"} {
			if err := dev.Subscribe(prefix, record); err != nil {
				t.Fatal(err)
			}
		}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); dev.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
	}

	publish := func(evs ...bus.Event) {
		t.Helper()
		for _, e := range evs {
			if err := b.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// sync publishes probe events owned like d until d gets one: every
	// event published before has then been routed to d.
	probes := 0
	sync := func(d *routeDevice) {
		t.Helper()
		probes++
		name := "probe" + string(rune('a'+probes))
		for !d.got(name) {
			publish(bus.Event{Name: name, DeviceID: bus.DeviceAPI, UserID: d.user, ProductID: d.product})
			select {
			case <-ctx.Done():
				t.Fatalf("device %s never got %s", d.id, name)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for _, d := range []*routeDevice{mine, other, prod} {
		sync(d) // online and subscribed
	}

	// Stream subscriptions as the API opens them (internal/api/sse.go).
	userStream := bustest.Subscribe(t, b, bus.Filter{UserID: "u1", NamePrefix: "hook-"}, 64)
	otherStream := bustest.Subscribe(t, b, bus.Filter{UserID: "u2", NamePrefix: "hook-"}, 64)
	productStream := bustest.Subscribe(t, b, bus.Filter{ProductID: product}, 64)
	publicStream := bustest.Subscribe(t, b, bus.Filter{AlsoPublic: true, UserID: "nobody", NamePrefix: "hook-"}, 64)

	sandboxHook := &store.Webhook{UserID: "u1", Event: "temp"}
	e1 := bus.Event{Name: "temp", DeviceID: mine.id, UserID: "u1", Data: "21"}
	resp1, err := webhook.ResponseEvents(sandboxHook, e1, "text/plain", []byte("ok"))
	if err != nil {
		t.Fatal(err)
	}
	publish(webhook.SentEvent(sandboxHook, e1))
	publish(resp1...)
	publish(webhook.ErrorEvents(sandboxHook, e1, "error status 500 from x.test", nil)...)

	productHook := &store.Webhook{UserID: "creator", ProductID: product, Event: "temp"}
	e2 := bus.Event{Name: "temp", DeviceID: prod.id, ProductID: product, Data: "22"}
	resp2, err := webhook.ResponseEvents(productHook, e2, "text/plain", []byte("ok"))
	if err != nil {
		t.Fatal(err)
	}
	publish(webhook.SentEvent(productHook, e2))
	publish(resp2...)

	for _, d := range []*routeDevice{mine, other, prod} {
		sync(d)
	}
	wantDevice := map[*routeDevice][]string{
		mine:  {"hook-sent/temp", "hook-response/temp/0", "hook-error/temp/0"},
		other: nil,
		prod:  {"hook-sent/temp", prod.id + "/hook-response/temp/0"},
	}
	for d, want := range wantDevice {
		var hooks []string
		for _, n := range d.names() {
			if len(n) < 5 || n[:5] != "probe" {
				hooks = append(hooks, n)
			}
		}
		if !equal(hooks, want) {
			t.Errorf("device %s (user %q product %d) got %q; want %q", d.id, d.user, d.product, hooks, want)
		}
	}

	// Streams: read until a marker each can see.
	marker := bus.Event{Name: "hook-marker", DeviceID: bus.DeviceAPI, UserID: "u1", ProductID: product, Public: true}
	publish(marker)
	marker2 := marker
	marker2.UserID = "u2"
	publish(marker2)
	streamNames := func(s *bus.Subscription, markerUser string) []string {
		var names []string
		for _, e := range bustest.Until(t, s, 10*time.Second, func(e bus.Event) bool {
			return e.Name == "hook-marker" && e.UserID == markerUser
		}) {
			if e.Name != "hook-marker" && (len(e.Name) < 5 || e.Name[:5] != "probe") {
				names = append(names, e.Name)
			}
		}
		return names
	}
	if got, want := streamNames(userStream, "u1"), []string{"hook-sent/temp", "hook-response/temp/0", "hook-error/temp/0"}; !equal(got, want) {
		t.Errorf("owner's stream got %q; want %q", got, want)
	}
	if got := streamNames(otherStream, "u2"); len(got) != 0 {
		t.Errorf("another user's stream got %q", got)
	}
	if got, want := streamNames(productStream, "u1"), []string{"hook-sent/temp", prod.id + "/hook-response/temp/0"}; !equal(got, want) {
		t.Errorf("product stream got %q; want %q", got, want)
	}
	if got := streamNames(publicStream, "u1"); len(got) != 0 {
		t.Errorf("public stream got private hook events %q", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
