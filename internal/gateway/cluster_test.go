package gateway

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

func TestLivenessDead(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name string
		seen map[string]time.Time
		want []string
		left []string
	}{
		{name: "none", seen: map[string]time.Time{}},
		{name: "fresh", seen: map[string]time.Time{"a": now.Add(-time.Second)}, left: []string{"a"}},
		{name: "exactly silent", seen: map[string]time.Time{"a": now.Add(-10 * time.Second)}, want: []string{"a"}},
		{name: "one of two", seen: map[string]time.Time{"a": now.Add(-11 * time.Second), "b": now.Add(-9 * time.Second)},
			want: []string{"a"}, left: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lv := &liveness{deadAfter: 10 * time.Second, seen: tt.seen}
			got := lv.dead(now)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("dead = %q; want %q", got, tt.want)
			}
			var left []string
			for n := range lv.seen {
				left = append(left, n)
			}
			slices.Sort(left)
			if !slices.Equal(left, tt.left) {
				t.Errorf("still watched %q; want %q", left, tt.left)
			}
		})
	}
}

// TestSilentNodeDevicesOffline: a node that was heard and went silent has
// its devices marked offline by a survivor, with spark/status offline.
func TestSilentNodeDevicesOffline(t *testing.T) {
	cfg := testConfig()
	// A live node's heartbeats can be a few hundred ms apart under -race on
	// a loaded machine: the survivor declared node-gone dead while it lived.
	cfg.NodeHeartbeat, cfg.NodeDeadAfter = 20*time.Millisecond, 2*time.Second
	w := newWorld(t, cfg)
	id := deviceID(61)
	w.provision(id, testKey(t, "device_a"), owner1)
	other := cfg
	other.Node = "node-gone"
	g2 := w.newGateway(other)
	// The device is held by node-gone (as the store shows it).
	if _, err := w.st.SetDeviceOnline(context.Background(), id.String(), storeSession("node-gone")); err != nil {
		t.Fatal(err)
	}
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	waitFor(t, "test-node hears node-gone", func() bool {
		w.g.live.mu.Lock()
		defer w.g.live.mu.Unlock()
		_, heard := w.g.live.seen["node-gone"]
		return heard
	})
	if !w.device(id).Online {
		t.Fatal("device offline while its node lives")
	}
	g2.Close()
	if e := nextEvent(t, events, "spark/status"); e.Data != "offline" || e.UserID != owner1 {
		t.Errorf("event %+v", e)
	}
	if w.device(id).Online {
		t.Error("device of the silent node still online")
	}
}

// TestSessionLetGoWhenOnlineElsewhere: a device whose connection to one
// node went silent reconnects to another; the first node closes its
// session at once, so that a call through it reaches the device.
func TestSessionLetGoWhenOnlineElsewhere(t *testing.T) {
	w := newWorld(t, testConfig())
	other := testConfig()
	other.Node = "node-2"
	g2 := w.newGateway(other)
	id := deviceID(62)
	key := testKey(t, "device_a")
	w.provision(id, key, owner1)
	d1 := w.online(id, key, 0)
	defer d1.conn.Close() // stays open: node 1 sees a silent connection
	client, server := net.Pipe()
	go g2.ServeConn(context.Background(), server)
	d2, err := startDevice(t, client, id, key, &testKey(t, "server").PublicKey, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.conn.Close()
	d2.hello(helloPayload(0))
	waitFor(t, "node 2 holds the device", func() bool { return g2.Online(id.String()) })
	waitFor(t, "node 1 lets go", func() bool { return !w.g.Online(id.String()) })
	if d := w.device(id); !d.Online || d.Node != "node-2" {
		t.Errorf("store: online %v node %q; want online on node-2", d.Online, d.Node)
	}
}

// TestSilentNodeResetInChunks: the devices of a silent node that held
// more than one reset chunk are all marked offline, a chunk per
// transaction, and each announced offline once.
func TestSilentNodeResetInChunks(t *testing.T) {
	const chunk = 20
	const n = 2*chunk + 3
	cfg := testConfig()
	cfg.NodeHeartbeat, cfg.NodeDeadAfter = 20*time.Millisecond, 2*time.Second
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := bustest.New(t, bus.Config{})
	der, err := protocol.MarshalPublicKeyDER(&testKey(t, "device_a").PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.ProvisionDevice(ctx, scaleID(i).String(), "rsa", der, 0); err != nil {
			t.Fatal(err)
		}
	}
	cs := &offlineCountingStore{DB: db, resetLimit: chunk}
	g, err := New(cfg, Deps{Store: cs, Bus: b, ServerKey: testServerKey(t)}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	other := cfg
	other.Node = "node-gone"
	g2, err := New(other, Deps{Store: db, Bus: b, ServerKey: testServerKey(t)}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the survivor hears node-gone", func() bool {
		g.live.mu.Lock()
		defer g.live.mu.Unlock()
		_, heard := g.live.seen["node-gone"]
		return heard
	})
	ups := make([]store.PresenceUpdate, n)
	for i := range n {
		s := storeSession("node-gone")
		ups[i] = store.PresenceUpdate{DeviceID: scaleID(i).String(), Online: &s}
	}
	if _, err := db.ApplyPresence(ctx, ups); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(bus.Filter{}, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	g2.Close()
	announced := awaitOfflineAnnounced(t, sub, n)
	for i := range n {
		d, err := db.DeviceByID(ctx, scaleID(i).String())
		if err != nil {
			t.Fatal(err)
		}
		if d.Online {
			t.Errorf("device %d of the silent node still online", i)
		}
	}
	time.Sleep(50 * time.Millisecond) // a second announcement would follow the first
	for len(sub.Events()) > 0 {
		if e := <-sub.Events(); e.Name == eventStatus && e.Data == statusOffline {
			announced[e.DeviceID]++
		}
	}
	for id, k := range announced {
		if k != 1 {
			t.Errorf("device %s announced offline %d times", id, k)
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.resets) < 3 {
		t.Errorf("reset chunks %v; want at least 3 of at most %d", cs.resets, chunk)
	}
}
