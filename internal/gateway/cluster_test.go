package gateway

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
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
