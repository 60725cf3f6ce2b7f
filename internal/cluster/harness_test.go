package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/store/storetest"
	"github.com/wick-cloud/wick/internal/testproc"
)

// postgresEnv names the variable with the URL of a PostgreSQL database the
// tests may create and drop schemas in.
const postgresEnv = "WICK_TEST_POSTGRES_URL"

// buildBinaries compiles cmd/wick and the nats-server the module depends
// on into dir, concurrently.
func buildBinaries(t testing.TB, dir string) (wick, natsServer string) {
	t.Helper()
	bins := testproc.Build(t, dir, testproc.Binary{Name: "wick", Pkg: "./cmd/wick"},
		testproc.Binary{Name: "nats-server", Pkg: "github.com/nats-io/nats-server/v2"})
	return bins[0], bins[1]
}

// freshSchema creates a PostgreSQL schema with a random name, drops it when
// the test ends and returns a DSN whose connections use it; it skips the
// test without WICK_TEST_POSTGRES_URL.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skip(postgresEnv + " not set; the cluster test needs a shared PostgreSQL")
	}
	// Registered before the processes' cleanups, so the drop runs after them.
	return storetest.PostgresSchema(t, base, "wick_cluster_")
}

// natsCluster is a NATS cluster of separate nats-server processes with
// JetStream, on loopback.
type natsCluster struct {
	servers []*testproc.Proc
	urls    []string
}

// startNATS starts n nats-server processes routed into one cluster.
func startNATS(t testing.TB, bin, dir string, n int) *natsCluster {
	t.Helper()
	ports := testproc.FreePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &natsCluster{}
	for i := range n {
		name := fmt.Sprintf("nats%d", i+1)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		c.servers = append(c.servers, testproc.Start(t, name, nil, bin,
			"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", name,
			"-js", "-sd", filepath.Join(dir, name),
			"--cluster_name", "wickc", "--cluster", routes[i],
			"--routes", strings.Join(routes, ",")))
	}
	for i, u := range c.urls {
		testproc.WaitTCP(t, strings.TrimPrefix(u, "nats://"), c.servers[i])
	}
	c.waitJetStream(t)
	return c
}

// waitJetStream waits until the cluster's JetStream has a meta leader and
// can place a stream with one replica per server: a wick serve started
// before that fails to create its event stream (see the report of
// issue 14: a fresh cluster takes a few seconds to elect its leader).
func (c *natsCluster) waitJetStream(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(c.urls, ","))
	if err != nil {
		t.Fatalf("connect to the NATS cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"},
			Storage: jetstream.MemoryStorage, Replicas: len(c.urls)})
		if err == nil {
			err = js.DeleteStream(ctx, "PROBE")
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream of the NATS cluster not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// node is one `wick serve` process.
type node struct {
	*testproc.Proc
	api    string // http://127.0.0.1:port
	device string // device TCP address
	udp    string // device UDP address (Gen 3)
}

// cluster is the whole setup: NATS, the shared database and the nodes.
type cluster struct {
	wick   string
	dir    string
	db     string
	secret string
	nats   *natsCluster
	nodes  []*node
	client *http.Client
	// replicas is whether wick serve has --nats-replicas (streams
	// replicated over the NATS cluster).
	replicas bool
	// dead marks the nodes the test killed: the UDP "load balancer" of
	// the Gen 3 devices' Dial skips them (a UDP dial never fails).
	dead [nodeCount]atomic.Bool
}

// hasFlag reports whether wick serve has the flag --name.
func (c *cluster) hasFlag(t testing.TB, name string) bool {
	t.Helper()
	out, _ := exec.Command(c.wick, "serve", "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}

// wickArgs are the store flags every wick command of the cluster gets.
func (c *cluster) storeArgs(data string) []string {
	return []string{"--data", data, "--db", c.db, "--secret-key-file", c.secret}
}

// run runs a wick admin command and returns its output.
func (c *cluster) run(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.wick, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wick %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startNodes starts n wick serve processes on the cluster's store and NATS.
func (c *cluster) startNodes(t testing.TB, n int, extra ...string) {
	t.Helper()
	ports := testproc.FreePorts(t, 3*n)
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		nd := &node{api: fmt.Sprintf("http://127.0.0.1:%d", ports[i]), device: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			udp: fmt.Sprintf("127.0.0.1:%d", ports[2*n+i])} // a free TCP port number, free for UDP too in practice
		args := append([]string{"serve"}, c.storeArgs(filepath.Join(c.dir, name))...)
		args = append(args, "--nats", strings.Join(c.nats.urls, ","), "--node", name,
			"--http", strings.TrimPrefix(nd.api, "http://"), "--device-tcp", nd.device, "--device-udp", nd.udp,
			"--webhook-allow-private", "--webhook-timeout", "5s", "--log-level", "warn")
		args = append(args, extra...)
		nd.Proc = testproc.Start(t, name, nil, c.wick, args...)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		testproc.WaitTCP(t, strings.TrimPrefix(nd.api, "http://"), nd.Proc)
		testproc.WaitTCP(t, nd.device, nd.Proc)
	}
}

// do sends an API request to base and returns the status and body.
func (c *cluster) do(ctx context.Context, method, base, path, token string, form url.Values, js string) (int, []byte, error) {
	return testproc.Request(ctx, c.client, method, base, path, token, form, js)
}

// login returns an access token of the user, from node base.
func (c *cluster) login(t testing.TB, base, user, password string) string {
	t.Helper()
	status, body, err := c.do(t.Context(), "POST", base, "/oauth/token", "", url.Values{"grant_type": {"password"},
		"username": {user}, "password": {password}, "client_id": {"particle"}, "client_secret": {"particle"}}, "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tok)
	if err != nil || status != 200 || tok.AccessToken == "" {
		t.Fatalf("login at %s: %d %s %v", base, status, body, err)
	}
	return tok.AccessToken
}

// newDeviceKey makes an RSA-1024 device key (what Gen 2 hardware has) and
// writes its PEM to dir; it returns the key and the file.
func newDeviceKey(t testing.TB, dir, id string) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, id+".pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return k, file
}

// sseEvent is one event read from a server-sent event stream.
type sseEvent struct {
	ID   uint64
	Name string
	Data string // the "data" field of the JSON payload
}

// openStream opens an SSE stream at base+path and sends its events to the
// returned channel until ctx ends. lastID > 0 sends Last-Event-ID.
func (c *cluster) openStream(ctx context.Context, t testing.TB, base, path, token string, lastID uint64) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream %s%s: %v", base, path, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("open stream %s%s: %d %s", base, path, resp.StatusCode, b)
	}
	ch := make(chan sseEvent, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Data string `json:"data"`
				}
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				ev.Data = d.Data
			case line == "":
				if ev.Name != "" {
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			}
		}
	}()
	return ch
}
