package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
)

// startLimited runs a server with cfg until the test ends and returns its
// API and device addresses.
func startLimited(t *testing.T, cfg config.Serve) (httpAddr, devAddr string) {
	_, httpAddr, devAddr = startLimitedServer(t, cfg)
	return httpAddr, devAddr
}

// startLimitedServer is startLimited that also returns the server.
func startLimitedServer(t *testing.T, cfg config.Serve) (srv *Server, httpAddr, devAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv, srv.httpAddr.String(), srv.devAddr.String()
}

// dialFrom connects to addr from the loopback address src (all of 127/8
// is loopback on Linux).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the peer closed c within d (reading and
// discarding whatever it sent first).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return true // EOF
	}
	ne, ok := err.(net.Error)
	return !ok || !ne.Timeout()
}

// getFrom sends GET /healthz-like request on a fresh connection from src
// and returns the status line.
func getFrom(t *testing.T, src, addr string) string {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /v1/devices HTTP/1.1\r\nHost: wick\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("GET from %s: %v", src, err)
	}
	return strings.TrimSpace(line)
}

// TestListenerPerIPCaps: from one address, connections beyond the per-IP
// cap of the API and of the device port are closed at once, while another
// address still connects and is served.
func TestListenerPerIPCaps(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTPConnsPerIP = 3
	cfg.DeviceConnsPerIP = 3
	cfg.Metrics = "127.0.0.1:0"
	srv, httpAddr, devAddr := startLimitedServer(t, cfg)
	metricsAddr := srv.MetricsAddr().String()
	for _, tc := range []struct{ name, addr string }{{"api", httpAddr}, {"device", devAddr}} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				c := dialFrom(t, "127.0.0.1", tc.addr)
				if closedWithin(c, 100*time.Millisecond) {
					t.Fatal("a connection within the cap was closed")
				}
			}
			if c := dialFrom(t, "127.0.0.1", tc.addr); !closedWithin(c, 2*time.Second) {
				t.Error("a 4th connection from 127.0.0.1 stayed open")
			}
			c := dialFrom(t, "127.0.0.2", tc.addr)
			if closedWithin(c, 200*time.Millisecond) {
				t.Error("the connection from 127.0.0.2 was closed")
			}
		})
	}
	if got := getFrom(t, "127.0.0.3", httpAddr); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Errorf("GET /v1/devices from another address: %q, want 400", got)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`wick_listener_connections_refused_total{listener="http"} 1`,
		`wick_listener_connections_refused_total{listener="device"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSlowBody: a request whose body does not arrive within
// --http-body-timeout is cut off and its connection closed.
func TestSlowBody(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTPBodyTimeout = 300 * time.Millisecond
	httpAddr, _ := startLimited(t, cfg)
	c := dialFrom(t, "127.0.0.1", httpAddr)
	start := time.Now()
	fmt.Fprintf(c, "POST /oauth/token HTTP/1.1\r\nHost: wick\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=")
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a stalled body kept its connection open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	// A body that arrives in time is served.
	resp, err := http.Post("http://"+httpAddr+"/oauth/token", "application/x-www-form-urlencoded",
		strings.NewReader("grant_type=password&username=a@b.c&password=x&client_id=particle&client_secret=particle"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusInternalServerError {
		t.Errorf("a timely body: %s", resp.Status)
	}
}

// floodChildEnv makes TestFloodChild run a server under a low descriptor
// limit for TestAPIAnswersUnderDeviceFlood.
const floodChildEnv = "WICK_TEST_FLOOD_CHILD"

// TestAPIAnswersUnderDeviceFlood: with the process limited to 512
// descriptors (a child process), 1,500 connections held open on the
// device port from one address do not stop the API from answering.
func TestAPIAnswersUnderDeviceFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodChild$", "-test.v")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var httpAddr, devAddr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "LISTENING %s %s", &httpAddr, &devAddr); err == nil {
			break
		}
	}
	if devAddr == "" {
		t.Fatal("the child did not start")
	}
	go io.Copy(io.Discard, out)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: time.Second}
	for range 1500 {
		c, err := d.Dial("tcp", devAddr)
		if err != nil {
			continue
		}
		held = append(held, c)
	}
	time.Sleep(time.Second) // the child accepts what the kernel queued
	if os.Getenv("WICK_TEST_FLOOD_DEBUG") != "" {
		lim, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		t.Logf("held %d; child fds %d\n%s", len(held), len(fds), lim)
	}
	for i, src := range []string{"127.0.0.2", "127.0.0.1"} {
		if got := getFrom(t, src, httpAddr); !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Errorf("API from %s (%d) while the device port is flooded: %q", src, i, got)
		}
	}
}

// TestFloodChild is the server of TestAPIAnswersUnderDeviceFlood.
func TestFloodChild(t *testing.T) {
	dir := os.Getenv(floodChildEnv)
	if dir == "" {
		t.Skip("run by TestAPIAnswersUnderDeviceFlood")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 512, Max: 512}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Data = dir
	cfg.HTTP = "127.0.0.1:0"
	cfg.DeviceTCP = "127.0.0.1:0"
	cfg.DeviceConnsPerIP = 0     // the total cap alone must protect the API,
	cfg.DeviceHandshakeRate = -1 // with no help from the handshake rate limit
	if os.Getenv("WICK_TEST_FLOOD_UNCAPPED") != "" {
		cfg.MaxDeviceConns, cfg.MaxHTTPConns = 1<<20, 1<<20 // shows the test failing without caps
	}
	httpAddr, devAddr := startLimited(t, cfg)
	fmt.Printf("LISTENING %s %s\n", httpAddr, devAddr)
	time.Sleep(time.Minute)
}

// TestConnLimits: the caps derived from the descriptor limit, and trusted
// proxies exempt from the API's per-address cap.
func TestConnLimits(t *testing.T) {
	tests := []struct {
		nofile           uint64
		maxDev, maxHTTP  int
		wantDev, wantAPI int
	}{
		{1024, 0, 0, 576, 128},
		{524288, 0, 0, 344064, 114624},
		{300, 0, 0, 48, 32},
		{1024, 100, 50, 100, 50},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.MaxDeviceConns, cfg.MaxHTTPConns = tt.maxDev, tt.maxHTTP
		l := connLimits(cfg, tt.nofile)
		if l.device.Max != tt.wantDev || l.http.Max != tt.wantAPI || l.device.PerIP != 1024 || l.http.PerIP != 256 {
			t.Errorf("nofile %d: device %+v, http %+v; want max %d and %d", tt.nofile, l.device, l.http, tt.wantDev, tt.wantAPI)
		}
		if l.http.Exempt != nil {
			t.Error("exempt addresses without a trusted proxy")
		}
	}
	cfg := config.Default()
	cfg.TrustedProxies = []string{"192.0.2.10"}
	ex := connLimits(cfg, 1024).http.Exempt
	if ex == nil || !ex(netip.MustParseAddr("192.0.2.10")) || ex(netip.MustParseAddr("192.0.2.11")) {
		t.Error("--trusted-proxies 192.0.2.10: wrong exemptions")
	}
	cfg = config.Default()
	cfg.TrustProxy = true
	ex = connLimits(cfg, 1024).http.Exempt
	if ex == nil || !ex(netip.MustParseAddr("10.1.2.3")) || ex(netip.MustParseAddr("8.8.8.8")) {
		t.Error("--trust-proxy: wrong exemptions")
	}
}
