//go:build linux

package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// BenchmarkParkedPing measures the server's CPU per keep-alive ping of a
// parked Gen 2 session (docs/operations.md, "Idle CPU per ping"): N devices
// online over loopback TCP, all parked, ping one after another (inflight=1:
// each ping alone, the next sent when its ACK came), 16 at a time, or at a
// fleet's rate (rate=R: R pings a second spread evenly over 256 devices,
// each device pinging alone every 256/R s, as a fleet of idle devices
// does; 6,700/s is 100,000 devices at a 15 s keep-alive). The devices run in
// a child process (this test binary, TestParkedPingSwarm), so the process
// CPU measured (getrusage) and the allocations are the server's only:
// cpu-ns/ping is what the figure in docs/operations.md is about, and ns/op
// is the round trip. wakes/ping counts the session goroutines started.
//
//	go test -run '^$' -bench BenchmarkParkedPing -benchtime 20000x ./internal/gateway/
//
// WICK_PINGBENCH_PROFILE=file writes a CPU profile of the pings alone.
func BenchmarkParkedPing(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		b.Run("inflight="+strconv.Itoa(inflight), func(b *testing.B) { benchParkedPing(b, 64, inflight, 0) })
	}
	for _, rate := range []int{1000, 6700} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) { benchParkedPing(b, 256, 0, rate) })
	}
}

func benchParkedPing(b *testing.B, n, inflight, rate int) {
	w := newWorld(b, scaleConfig())
	w.provisionMany(n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go w.g.Serve(ln)
	child := exec.Command(os.Args[0], "-test.run=^TestParkedPingSwarm$", "-test.timeout=0")
	child.Env = append(os.Environ(), "WICK_PINGSWARM_ADDR="+ln.Addr().String(), "WICK_PINGSWARM_N="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		child.Process.Kill()
		child.Wait()
	})
	replies := bufio.NewScanner(stdout)
	reply := func() string {
		if !replies.Scan() {
			b.Fatalf("swarm ended: %v", replies.Err())
		}
		return replies.Text()
	}
	if r := reply(); r != "online" {
		b.Fatalf("swarm: %q", r)
	}
	waitFor(b, "every session parked", func() bool {
		st := w.g.Stats()
		return st.Online == int64(n) && st.TCPParked == int64(n)
	})
	b.ReportAllocs()
	wakes := w.g.Stats().TCPWakes
	if path := os.Getenv("WICK_PINGBENCH_PROFILE"); path != "" {
		// The pings only, without the handshakes and the store's setup.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	b.ResetTimer()
	cpu := cpuTime()
	fmt.Fprintf(stdin, "%d %d %d\n", b.N, inflight, rate)
	if r := reply(); r != "done" {
		b.Fatalf("swarm: %q", r)
	}
	cpu = cpuTime() - cpu
	b.StopTimer()
	b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/ping")
	b.ReportMetric(float64(w.g.Stats().TCPWakes-wakes)/float64(b.N), "wakes/ping")
	if st := w.g.Stats(); st.Online != int64(n) {
		b.Fatalf("%d of %d devices online after the pings", st.Online, n)
	}
}

// TestParkedPingSwarm is the device side of BenchmarkParkedPing, run in a
// child process: it brings WICK_PINGSWARM_N devices online, says "online",
// then for each line "K P R" of its input sends K pings round-robin over
// the devices, each waiting for its ACK, and says "done": P at a time, or
// when R > 0, R a second, device i's m-th ping at (i + m·N)/R s.
func TestParkedPingSwarm(t *testing.T) {
	addr := os.Getenv("WICK_PINGSWARM_ADDR")
	if addr == "" {
		t.Skip("child process of BenchmarkParkedPing")
	}
	n, _ := strconv.Atoi(os.Getenv("WICK_PINGSWARM_N"))
	key := testKey(t, "device_a")
	serverPub := &testKey(t, "server").PublicKey
	devs := make([]*testDevice, n)
	for i := range devs {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		d, err := startDevice(t, conn, scaleID(i), key, serverPub, 64)
		if err != nil {
			t.Fatal(err)
		}
		d.noLog = true
		d.hello(helloPayload(0))
		devs[i] = d
	}
	fmt.Println("online")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var k, p, r int
		if _, err := fmt.Sscan(in.Text(), &k, &p, &r); err != nil {
			t.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		if r > 0 {
			start := time.Now()
			for i, d := range devs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := i; j < k; j += n {
						time.Sleep(time.Until(start.Add(time.Duration(j) * time.Second / time.Duration(r))))
						id := d.nextID()
						if err := d.send(protocol.NewPing(id)); err != nil {
							t.Error(err)
							return
						}
						d.expect("ping ACK", ackOf(id))
					}
				}()
			}
			p = 0
		}
		for worker := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Worker w pings devices w, w+p, w+2p...: never two
				// pings of one device at a time.
				for j := worker; ; j += p {
					if next.Add(1) > int64(k) {
						return
					}
					d := devs[j%(n-n%p)]
					id := d.nextID()
					if err := d.send(protocol.NewPing(id)); err != nil {
						t.Error(err)
						return
					}
					d.expect("ping ACK", ackOf(id))
				}
			}()
		}
		wg.Wait()
		fmt.Println("done")
	}
	if err := in.Err(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
}

// BenchmarkTCPSweepParked measures one pass of the idle sweep (tcpSweep)
// over n parked sessions, none of them silent for long: what an idle
// fleet costs the sweeper every tcpSweepEvery whatever its pings. Each
// session sits in its own 4 KB of other memory, as sessions do among their
// buffers and records in a server's heap.
func BenchmarkTCPSweepParked(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			p := &tcpPoller{byFD: make([]*session, n+16)}
			keep := make([][]byte, 0, n)
			now := time.Now().UnixNano()
			for i := range n {
				s := &session{}
				s.tp.state.Store(tcpParked)
				s.lastHeard.Store(now)
				p.byFD[16+i] = s
				keep = append(keep, make([]byte, 4096))
			}
			idle := DefaultIdleTimeout.Nanoseconds()
			var expired []*session
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				expired = p.parked(expired[:0], func(s *session) bool { return now-s.lastHeard.Load() > idle })
			}
			b.StopTimer()
			if len(expired) != 0 || len(keep) != n {
				b.Fatalf("%d sessions expired", len(expired))
			}
		})
	}
}
