package gateway

import (
	"bufio"
	"context"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// The scale measurements of issue 3: idle memory per connected device and
// function-call latency with many devices connected. They are opt-in:
//
//	WICK_GATEWAY_SCALE=10000 go test -run TestScaleTCP -v -timeout 30m ./internal/gateway/
//	WICK_GATEWAY_SCALE_PIPE=50000 go test -run TestScalePipe -v -timeout 60m ./internal/gateway/
//
// TestScaleTCP runs the devices in a child process (this test binary,
// TestScaleSwarm) over loopback TCP, so the gateway process holds only
// server state; N is bounded by the file-descriptor limit (ulimit -n).
// TestScalePipe keeps both ends in-process over net.Pipe (no descriptors)
// and subtracts the cost of the pipes and their device-side state, measured
// alone.

func scaleN(t *testing.T, env string) int {
	v := os.Getenv(env)
	if v == "" {
		t.Skipf("set %s=N to run", env)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q", env, v)
	}
	return n
}

// scaleID is the ID of swarm device i.
func scaleID(i int) protocol.DeviceID {
	var id protocol.DeviceID
	copy(id[:], []byte{0xe0, 0x0f, 0xce, 0x68, 0x5c, 0xa1, 0xe0})
	id[8], id[9], id[10], id[11] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return id
}

func scaleConfig() Config {
	cfg := testConfig()
	cfg.HandshakeTimeout = 2 * time.Minute
	cfg.IdleTimeout = time.Hour
	cfg.CallTimeout = 10 * time.Second
	cfg.DescribeWait = time.Hour
	cfg.HandshakeRate = -1 // the swarm connects from one address
	return cfg
}

// provisionMany stores n devices sharing one key.
func (w *world) provisionMany(n int) {
	w.t.Helper()
	der, _ := protocol.MarshalPublicKeyDER(&testKey(w.t, "device_a").PublicKey)
	ctx := context.Background()
	start := time.Now()
	for i := range n {
		if _, err := w.st.ProvisionDevice(ctx, scaleID(i).String(), "rsa", der, 0); err != nil {
			w.t.Fatal(err)
		}
	}
	w.t.Logf("provisioned %d devices in %s", n, time.Since(start).Round(time.Millisecond))
}

// memory is what the process holds: Go heap and stacks, and resident size.
type memory struct{ heap, stack, rss uint64 }

func measure() memory {
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{heap: ms.HeapInuse, stack: ms.StackInuse, rss: rss()}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func (m memory) perDevice(base memory, n int) string {
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) / 1024 }
	return fmt.Sprintf("heap %.2f KB + stacks %.2f KB = %.2f KB; RSS %.2f KB",
		per(m.heap, base.heap), per(m.stack, base.stack), per(m.heap+m.stack, base.heap+base.stack), per(m.rss, base.rss))
}

func waitOnline(t *testing.T, g *Gateway, n int64, limit time.Duration) time.Duration {
	start := time.Now()
	last := time.Now()
	for g.Stats().Online != n {
		if time.Since(start) > limit {
			t.Fatalf("only %d of %d online after %s (stats %+v)", g.Stats().Online, n, limit, g.Stats())
		}
		if time.Since(last) > 5*time.Second {
			t.Logf("online %d / %d", g.Stats().Online, n)
			last = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestScaleTCP(t *testing.T) {
	n := scaleN(t, "WICK_GATEWAY_SCALE")
	w := newWorld(t, scaleConfig())
	w.provisionMany(n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go w.g.Serve(ln)
	base := measure()

	child := exec.Command(os.Args[0], "-test.run=^TestScaleSwarm$", "-test.timeout=0")
	child.Env = append(os.Environ(), "WICK_SWARM_ADDR="+ln.Addr().String(), "WICK_SWARM_N="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // swarm progress
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Log("swarm:", sc.Text())
		}
	}()
	defer child.Process.Kill()

	took := waitOnline(t, w.g, int64(n), 20*time.Minute)
	st := w.g.Stats()
	t.Logf("%d devices online in %s: %.0f handshakes/s (failed %d)", n, took.Round(time.Millisecond),
		float64(st.HandshakesOK)/took.Seconds(), st.HandshakesFailed)
	time.Sleep(2 * time.Second) // let describes and subscriptions settle
	m := measure()
	t.Logf("idle memory per device at %d (TCP): %s; goroutines %d", n, m.perDevice(base, n), runtime.NumGoroutine())
	if path := os.Getenv("WICK_GATEWAY_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}

	// Function-call round trips to random devices, sequential then 16 at once.
	ctx := context.Background()
	for _, par := range []int{1, 16} {
		const calls = 4000
		lat := make([]time.Duration, calls)
		var wg sync.WaitGroup
		var next sync.Mutex
		k := 0
		start := time.Now()
		for range par {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					next.Lock()
					i := k
					k++
					next.Unlock()
					if i >= calls {
						return
					}
					id := scaleID(rand.IntN(n)).String()
					t0 := time.Now()
					v, err := w.g.CallFunction(ctx, id, "led", "on")
					lat[i] = time.Since(t0)
					if err != nil || v != 1 {
						t.Errorf("call %s: %d, %v", id, v, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		t.Logf("function call with %d devices, %d in parallel: p50 %s p99 %s max %s (%.0f calls/s)", n, par,
			lat[calls/2].Round(time.Microsecond), lat[calls*99/100].Round(time.Microsecond),
			lat[calls-1].Round(time.Microsecond), calls/elapsed.Seconds())
	}

	// Kill the swarm: every device goes offline.
	start := time.Now()
	stdin.Close()
	child.Process.Kill()
	child.Wait()
	waitOnline(t, w.g, 0, 2*time.Minute)
	t.Logf("all %d offline %s after the swarm died", n, time.Since(start).Round(time.Millisecond))
}

// TestScaleSwarm is the device side of TestScaleTCP, run in a child process.
func TestScaleSwarm(t *testing.T) {
	addr := os.Getenv("WICK_SWARM_ADDR")
	if addr == "" {
		t.Skip("child process of TestScaleTCP")
	}
	n, _ := strconv.Atoi(os.Getenv("WICK_SWARM_N"))
	key := testKey(t, "device_a")
	serverPub := &testKey(t, "server").PublicKey
	sem := make(chan struct{}, 64) // handshakes in flight
	var online sync.WaitGroup
	var mu sync.Mutex
	ok, bad := 0, 0
	devices := make([]*testDevice, n)
	for i := range n {
		sem <- struct{}{}
		online.Add(1)
		go func() {
			defer online.Done()
			defer func() { <-sem }()
			// Each source address has its own ephemeral ports.
			local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/20000), 2)}
			conn, err := (&net.Dialer{LocalAddr: local, Timeout: time.Minute}).Dial("tcp", addr)
			if err == nil {
				var d *testDevice
				d, err = startDevice(t, conn, scaleID(i), key, serverPub, 0)
				if err == nil {
					d.appJSON = `{"f":["led"],"v":{"temp":9}}`
					d.functions["led"] = func(string) int32 { return 1 }
					err = d.send(protocol.NewHello(protocol.NonConfirmable, d.nextID(), helloPayload(protocol.HelloDeviceDescribe)))
					for _, part := range []struct {
						f    protocol.DescribeFlags
						body string
					}{{protocol.DescribeSystem, d.sysJSON}, {protocol.DescribeApplication, d.appJSON}} {
						m, _ := protocol.NewDescribePost(d.nextID(), d.nextToken(), protocol.DescribeBody{Flags: part.f, Payload: []byte(part.body)})
						if err == nil {
							err = d.send(m)
						}
					}
					devices[i] = d
				}
			}
			mu.Lock()
			if err != nil {
				bad++
			} else {
				ok++
			}
			mu.Unlock()
		}()
		if (i+1)%1000 == 0 {
			mu.Lock()
			fmt.Printf("started %d (ok %d, failed %d)\n", i+1, ok, bad)
			mu.Unlock()
		}
	}
	online.Wait()
	fmt.Printf("swarm: %d connected, %d failed\n", ok, bad)
	// Hold the connections until the parent closes stdin.
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func TestScalePipe(t *testing.T) {
	n := scaleN(t, "WICK_GATEWAY_SCALE_PIPE")
	w := newWorld(t, scaleConfig())
	w.provisionMany(n)
	serverPub := &testKey(t, "server").PublicKey
	key := testKey(t, "device_a")

	// The device side's residue alone: n pipes whose client ends did a
	// handshake-sized amount of work and are kept, as below.
	base0 := measure()
	pipes := make([]net.Conn, 0, 2*n)
	for range n {
		c, s := net.Pipe()
		c.SetReadDeadline(time.Now().Add(time.Hour)) // the gateway sets one per read
		s.SetReadDeadline(time.Now().Add(time.Hour))
		pipes = append(pipes, c, s)
	}
	pipeCost := measure()
	t.Logf("net.Pipe pairs alone: %s", pipeCost.perDevice(base0, n))
	pipePer := (float64(pipeCost.heap+pipeCost.stack) - float64(base0.heap+base0.stack)) / float64(n) / 1024
	for _, p := range pipes {
		p.Close()
	}
	pipes = nil

	base := measure()
	clients := make([]net.Conn, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			client, server := net.Pipe()
			go w.g.ServeConn(context.Background(), server)
			if err := pipeDevice(client, scaleID(i), key, serverPub); err != nil {
				t.Errorf("device %d: %v", i, err)
				return
			}
			clients[i] = client
		}()
	}
	wg.Wait()
	waitOnline(t, w.g, int64(n), 30*time.Minute)
	t.Logf("%d devices online in %s", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	m := measure()
	t.Logf("idle memory per device at %d (net.Pipe, both ends in process): %s; goroutines %d", n, m.perDevice(base, n), runtime.NumGoroutine())
	total := (float64(m.heap+m.stack) - float64(base.heap+base.stack)) / float64(n) / 1024
	t.Logf("gateway state per device (minus the pipe pair): %.2f KB heap+stacks", total-pipePer)
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
	waitOnline(t, w.g, 0, 5*time.Minute)
}

// pipeDevice does what a firmware does up to idle, then keeps nothing but
// the connection: handshake, Hello, both describes (reading the server's
// answers, which net.Pipe would otherwise block on).
func pipeDevice(conn net.Conn, id protocol.DeviceID, key *rsa.PrivateKey, serverPub *rsa.PublicKey) error {
	k, err := protocol.DeviceHandshake(conn, protocol.DeviceHandshakeConfig{ID: id, PrivateKey: key, ServerKey: serverPub})
	if err != nil {
		return err
	}
	fr := protocol.NewFrameReader(conn, k, 0)
	fw := protocol.NewFrameWriter(conn, k, 0)
	ids := k.DeviceMessageIDs()
	hello := protocol.NewHello(protocol.NonConfirmable, ids.Next(), helloPayload(protocol.HelloDeviceDescribe))
	if err := fw.WriteMessage(&hello); err != nil {
		return err
	}
	var m protocol.Message
	if err := fr.ReadMessage(&m); err != nil {
		return err
	}
	for i, body := range []string{`{"p":6,"m":[]}`, `{"f":["led"],"v":{"temp":9}}`} {
		post, _ := protocol.NewDescribePost(ids.Next(), byte(i), protocol.DescribeBody{Flags: protocol.DescribeFlags(1 << i), Payload: []byte(body)})
		if err := fw.WriteMessage(&post); err != nil {
			return err
		}
		if err := fr.ReadMessage(&m); err != nil {
			return err
		}
	}
	return nil
}
