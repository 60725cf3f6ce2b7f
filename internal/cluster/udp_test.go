package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// Gen 3 device settings of the cluster test: a short keepalive and ping
// timeout, so that a device of a killed node notices within seconds (Device
// OS uses 25 s and 30 s), yet long enough that a loaded CI machine does not
// make the devices reconnect on their own.
const (
	udpKeepAlive   = 3 * time.Second
	udpPingTimeout = 6 * time.Second
)

// startUDPDevices provisions (P-256 keys) and claims n Gen 3 devices and
// runs them over UDP/DTLS with session resumption. The test's UDP "load
// balancer" is the devices' Dial: device i goes to node i%3 (or to its
// moveTo), skipping nodes marked dead. Like a balancer without stickiness
// it sends a device's datagrams to whichever node it picks; the DTLS
// connection ID is what lets that node find the session.
func startUDPDevices(t testing.TB, c *cluster, token string, n int) []*simDevice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	b, err := os.ReadFile(filepath.Join(c.dir, "node1", "server_ec_key.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("server_ec_key.pub.pem holds no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("server EC key is a %T", pub)
	}
	keyDir := t.TempDir()
	var devs []*simDevice
	for i := range n {
		var id [12]byte
		rand.Read(id[:])
		sd := &simDevice{id: hex.EncodeToString(id[:]), prefer: i % len(c.nodes)}
		sd.moveTo.Store(-1)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(keyDir, sd.id+".pem")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		c.run(t, "", append([]string{"device", "provision", sd.id, "--key", file}, c.storeArgs(filepath.Join(c.dir, "node1"))...)...)
		status, body, err := c.do(t.Context(), "POST", c.nodes[(i+1)%len(c.nodes)].api, "/v1/devices", token, url.Values{"id": {sd.id}}, "")
		if err != nil || status != 200 {
			t.Fatalf("claim %s: %d %s %v", sd.id, status, body, err)
		}
		d, err := device.New(device.Config{
			ID: sd.id, Transport: protocol.TransportUDP, ECPrivateKey: key, ECServerKey: serverKey,
			ServerAddr: c.nodes[sd.prefer].udp,
			KeepAlive:  udpKeepAlive, PingTimeout: udpPingTimeout,
			Backoff: device.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond},
			UDP:     device.UDPOptions{Resume: true},
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				first := sd.prefer
				if m := sd.moveTo.Load(); m >= 0 {
					first = int(m)
				}
				for k := range len(c.nodes) {
					j := (first + k) % len(c.nodes)
					if c.dead[j].Load() {
						continue
					}
					var dl net.Dialer
					conn, err := dl.DialContext(ctx, network, c.nodes[j].udp)
					if err != nil {
						return nil, err
					}
					sd.node.Store(int32(j))
					return conn, nil
				}
				return nil, errors.New("no live node")
			},
			OnState: func(device.State, error) { sd.changes.Add(1) },
			Logger:  slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		addHandlers(t, d, sd.id)
		sd.dev = d
		devs = append(devs, sd)
		wg.Go(func() { d.Run(ctx) })
	}
	return devs
}

// moveUDP moves a Gen 3 device to node to the way a balancer that
// rehashes (or a NAT rebinding) does: the same DTLS session, its datagrams
// from a new address arriving at another node, which holds no session for
// them. That node must resume the session saved in the store, so that the
// device stays online without a handshake (its state never changes) and
// calls through every node reach it.
func moveUDP(t *testing.T, c *cluster, token string, sd *simDevice, to int) {
	t.Helper()
	from := sd.node.Load()
	changes := sd.changes.Load()
	sd.moveTo.Store(int32(to))
	moveAt := time.Now()
	if err := sd.dev.ChangeAddress(t.Context()); err != nil {
		t.Fatalf("move device %s: %v", sd.id, err)
	}
	if sd.node.Load() != int32(to) {
		t.Fatalf("device %s dialled node%d; want node%d", sd.id, sd.node.Load()+1, to+1)
	}
	for n := range c.nodes {
		for {
			status, body, err := c.do(t.Context(), "POST", c.nodes[n].api, "/v1/devices/"+sd.id+"/echo", token, url.Values{"arg": {"6"}}, "")
			var fr struct {
				ReturnValue int `json:"return_value"`
			}
			json.Unmarshal(body, &fr)
			if err == nil && status == 200 && fr.ReturnValue == 7 {
				break
			}
			if time.Since(moveAt) > 15*time.Second {
				t.Fatalf("Gen 3 device %s moved from node%d to node%d: a call through node%d still fails %v after the move: %d %s %v",
					sd.id, from+1, to+1, n+1, time.Since(moveAt), status, body, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := sd.changes.Load(); got != changes || sd.dev.State() != device.Online {
		t.Errorf("Gen 3 device %s changed state %d times while moving (now %v): it reconnected instead of keeping its session",
			sd.id, got-changes, sd.dev.State())
	}
	t.Logf("Gen 3 device moved from node%d to node%d with its DTLS session (no handshake, no state change): reachable through every node %v after the move",
		from+1, to+1, time.Since(moveAt).Round(time.Millisecond))
}
