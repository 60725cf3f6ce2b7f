package bus_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wick-cloud/wick/internal/bus"
)

// TestReplicasEmbedded: the embedded server has no peers, so a replication
// factor asks for nothing it cannot give.
func TestReplicasEmbedded(t *testing.T) {
	for _, r := range []int{0, 1, 3} {
		b := open(t, mode{name: "embedded-jetstream", js: true, cfg: func(t *testing.T) bus.Config {
			return bus.Config{JetStreamDir: t.TempDir()}
		}}, func(c *bus.Config) { c.Replicas = r })
		if b.Replicas() != 1 {
			t.Errorf("Replicas %d on the embedded server: %d; want 1", r, b.Replicas())
		}
	}
}

// startNATSCluster runs n JetStream servers on loopback, each routed to
// all the others, and returns their client URLs.
func startNATSCluster(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]int, n) // cluster ports, reserved then released
	var routes []string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	servers := make([]*server.Server, n)
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("wt-n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "wt", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	var urls []string
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("nats server %d not ready", i)
		}
		urls = append(urls, s.ClientURL())
	}
	return urls
}

// TestReplicasCluster opens the bus on a 3-node NATS cluster with
// Replicas 3 and checks the event stream has three replicas.
func TestReplicasCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	urls := startNATSCluster(t, 3)
	var (
		b   *bus.Bus
		err error
	)
	deadline := time.Now().Add(30 * time.Second)
	for { // the JetStream meta leader is elected a few seconds after start
		b, err = bus.Open(context.Background(), bus.Config{URL: strings.Join(urls, ","), Replicas: 3,
			SubjectPrefix: uniquePrefix()}, nil)
		if err == nil && b.JetStream() != nil {
			break
		}
		if b != nil {
			b.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus on the cluster: %v (JetStream: %v)", err, b != nil && b.JetStream() != nil)
		}
		time.Sleep(500 * time.Millisecond)
	}
	defer b.Close()
	if b.Replicas() != 3 {
		t.Fatalf("Replicas() = %d; want 3", b.Replicas())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, b.EventStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream replicas %d, cluster %+v; want 3 (a leader and 2 replicas)", info.Config.Replicas, info.Cluster)
	}
}
