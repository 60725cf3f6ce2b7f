package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// serverProc is a `wick serve` child process on a fixed data directory and
// fixed addresses, so that it can be stopped and started again as a
// deploy does (EnvConfig.ServerProcess). Its memory is read from /proc.
type serverProc struct {
	bin     string
	args    []string
	http    string // API address, host:port
	dev     string // device gateway address, host:port
	udp     string // Gen 3 (UDP) device gateway address, host:port
	metrics string // GET /metrics address, host:port
	log     string // the child's stderr, appended to by every start

	cmd  *exec.Cmd
	done chan error
	// exitErr describes the last stop's non-zero exit, "" if clean.
	exitErr string
}

// freePorts returns n loopback addresses with distinct free ports.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("benchmark: free port: %w", err)
		}
		lns = append(lns, ln)
		addrs[i] = ln.Addr().String()
	}
	return addrs, nil
}

// newServerProc prepares a child server on dir. The per-address limits are
// lifted as for the in-process server (every simulated device connects
// from one address).
func newServerProc(bin, dir string, extra []string) (*serverProc, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("benchmark: server binary: %w", err)
		}
		bin = exe
	}
	addrs, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	_, udpPort, _ := net.SplitHostPort(addrs[2])
	p := &serverProc{bin: bin, http: addrs[0], dev: addrs[1], udp: "127.0.0.1:" + udpPort, metrics: addrs[3],
		log: filepath.Join(dir, "server.log")}
	p.args = append([]string{"serve", "--data", dir, "--http", p.http, "--device-tcp", p.dev,
		"--device-udp", p.udp, "--metrics", p.metrics, "--node", "bench", "--rate", strconv.Itoa(1 << 30),
		"--device-conns-per-ip", "0", "--http-conns-per-ip", "0", "--device-handshake-rate=-1",
		"--max-device-conns", strconv.Itoa(1 << 30), "--max-http-conns", strconv.Itoa(1 << 30),
		"--shutdown-timeout", "30s"}, extra...)
	return p, nil
}

// start runs the child and waits until both its API and its device
// gateway accept connections.
func (p *serverProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("benchmark: server log: %w", err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("benchmark: start %s: %w", p.bin, err)
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	go func() {
		p.done <- cmd.Wait()
		logf.Close()
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if err := p.ready(ctx); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("benchmark: server process not ready after a minute (%v); see %s", err, p.log)
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("benchmark: server process exited: %v; see %s", err, p.log)
		case <-ctx.Done():
			p.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ready checks that the API answers and the device port accepts.
func (p *serverProc) ready(ctx context.Context) error {
	c, err := net.DialTimeout("tcp", p.dev, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/v1/devices", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// stop sends SIGTERM (a graceful shutdown) and waits for the exit. A
// non-zero exit status (a shutdown that outlasted --shutdown-timeout) is
// not an error: the process is gone, which is all a restart needs; it is
// reported by exitErr.
func (p *serverProc) stop() error {
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		err = <-p.done
	}
	p.cmd = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		p.exitErr = fmt.Sprintf("%v (see %s)", err, p.log)
		return nil
	}
	return err
}

// kill ends the child at once.
func (p *serverProc) kill() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
	}
}

// memory returns the child's resident set now and its peak (VmRSS and
// VmHWM), 0 where /proc has none.
func (p *serverProc) memory() (rss, peak uint64) {
	if p.cmd == nil {
		return 0, 0
	}
	return procMemory(p.cmd.Process.Pid)
}

// procMemory returns a process's resident set now and its peak (VmRSS and
// VmHWM), 0 where /proc has none.
func procMemory(pid int) (rss, peak uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// cpu returns the CPU time the child has used, 0 where /proc has none.
func (p *serverProc) cpu() time.Duration {
	if p.cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
	st, _ := strconv.ParseUint(string(f[12]), 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// serverMetrics reads the child's GET /metrics: every sample by its name
// with its labels as written ("wick_udp_datagrams_total{direction=\"in\"}").
func (p *serverProc) serverMetrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metrics+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("benchmark: server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("benchmark: server metrics: HTTP %d", resp.StatusCode)
	}
	out := make(map[string]float64, 256)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			continue
		}
		out[string(line[:i])] = v
	}
	return out, sc.Err()
}
