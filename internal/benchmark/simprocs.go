package benchmark

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/sdk/device"
)

// simProcs runs the simulated devices as several `wick sim --status-json`
// child processes (EnvConfig.SimProcesses) and adds up their progress, so
// that more devices than one process may open sockets for (the descriptor
// limit) run against one server, and the simulator's CPU and memory stay
// out of the measuring process.
type simProcs struct {
	procs   []*simProc    // written only until started closes
	started chan struct{} // closed once procs holds every child (or the start failed)
	start   time.Time

	mu        sync.Mutex
	connected time.Time // when every device had come online once
	firstConn time.Time // when the first child reached its connect phase
}

// simProc is one `wick sim` child.
type simProc struct {
	cmd   *exec.Cmd
	count int
	log   string // its stderr, status lines excepted
	done  chan struct{}
	err   error // its exit, after done

	mu   sync.Mutex
	last sim.Status
}

// simProcConfig is what every child gets.
type simProcConfig struct {
	bin                       string
	processes, devices        int
	server, serverKey         string
	api, token                string
	idPrefix, keysDir, logDir string
	sessionsDir               string // sim.UDPConfig.SessionsDir
	concurrency               int    // devices connecting at once in all (0: sim's default)
	udp                       bool
	keepAlive                 time.Duration
	every                     time.Duration // publishing period of EventName, 0: none
	quirks                    string
	logLevel                  string
	// bind gives every child its own loopback address (Linux), so that
	// each has the ephemeral ports of one address to itself.
	bind bool
}

// splitDevices returns how many of devices each of n processes runs: as
// even as possible, the first ones taking the remainder.
func splitDevices(devices, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = devices / n
		if i < devices%n {
			out[i]++
		}
	}
	return out
}

// simArgs returns the `wick sim` arguments of child i running count
// devices from the counter idStart.
func (c simProcConfig) simArgs(i, count, idStart int) []string {
	args := []string{"sim", "--server", c.server, "--server-key", c.serverKey,
		"--count", strconv.Itoa(count), "--id-prefix", c.idPrefix, "--id-start", strconv.Itoa(idStart),
		"--progress", "1s", "--status-json", "--connect-timeout", "1m", "--log-level", c.logLevel,
		// As many devices connecting at once in all as one in-process
		// simulator has: the server sees the same ramp-up.
		"--concurrency", strconv.Itoa(max(1, cmp.Or(c.concurrency, sim.Default().Concurrency)/max(c.processes, 1)))}
	if c.api != "" {
		args = append(args, "--api", c.api, "--token", c.token)
	}
	if c.keysDir != "" {
		args = append(args, "--keys-dir", c.keysDir)
	}
	if c.udp {
		// Gen 3 firmware comes back on its saved session after a lost
		// connection rather than with a handshake.
		args = append(args, "--udp", "--resume")
		if c.sessionsDir != "" {
			args = append(args, "--sessions-dir", c.sessionsDir)
		}
	}
	if c.keepAlive > 0 {
		args = append(args, "--keepalive", c.keepAlive.String())
	}
	if c.every > 0 {
		args = append(args, "--publish", EventName, "--every", c.every.String(), "--publish-time")
	}
	if c.quirks != "" {
		args = append(args, "--firmware-quirks="+c.quirks)
	}
	if c.bind {
		args = append(args, "--bind", fmt.Sprintf("127.0.0.%d", 2+i%250))
	}
	return args
}

// startSimProcs starts the children and returns once each has begun; the
// ramp-up goes on in them (waitRamp).
func startSimProcs(c simProcConfig) (*simProcs, error) {
	if c.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("benchmark: simulator binary: %w", err)
		}
		c.bin = exe
	}
	c.bind = c.bind && runtime.GOOS == "linux"
	sp := &simProcs{start: time.Now(), started: make(chan struct{})}
	// A child may report before its siblings are started: observe waits
	// for started before it reads procs (closed before stop, which waits
	// for the children's readers).
	idStart := 1
	for i, n := range splitDevices(c.devices, c.processes) {
		if n == 0 {
			continue
		}
		p, err := startSimProc(c.bin, c.simArgs(i, n, idStart), filepath.Join(c.logDir, fmt.Sprintf("sim-%d.log", i)), n, sp.observe)
		if err != nil {
			close(sp.started)
			sp.stop()
			return nil, err
		}
		sp.procs = append(sp.procs, p)
		idStart += n
	}
	close(sp.started)
	return sp, nil
}

// startSimProc starts one child; its status lines go to observe (with the
// child), its other stderr lines to the file logPath.
func startSimProc(bin string, args []string, logPath string, count int, observe func()) (*simProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("benchmark: simulator log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("benchmark: simulator: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("benchmark: start %s: %w", bin, err)
	}
	p := &simProc{cmd: cmd, count: count, log: logPath, done: make(chan struct{})}
	go func() {
		sim.ReadStatus(stderr, func(st sim.Status) {
			p.mu.Lock()
			p.last = st
			p.mu.Unlock()
			observe()
		}, func(line []byte) {
			logf.Write(append(line, '\n'))
		})
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// status returns the child's last status.
func (p *simProc) status() sim.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// exited reports the child's exit, nil while it runs.
func (p *simProc) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("benchmark: simulator process %d exited (see %s)", p.cmd.Process.Pid, p.log)
		}
		return fmt.Errorf("benchmark: simulator process %d: %v (%s)", p.cmd.Process.Pid, p.err, tailLog(p.log))
	default:
		return nil
	}
}

// tailLog returns the last lines of a log file, for an error message.
func tailLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "see " + path
	}
	b = bytes.TrimSpace(b)
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return fmt.Sprintf("%s: %s", path, bytes.Join(lines, []byte(" | ")))
}

// observe notes the moments of the ramp-up from the children's statuses.
func (sp *simProcs) observe() {
	<-sp.started
	s := sp.total()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.firstConn.IsZero() && s.phases["connect"]+s.phases["run"] > 0 {
		sp.firstConn = time.Now()
	}
	if sp.connected.IsZero() && s.Devices > 0 && s.Connected >= s.Devices {
		sp.connected = time.Now()
	}
}

// simTotal is the children's statuses added up.
type simTotal struct {
	sim.Summary
	Ready  int            // children past their ramp-up
	phases map[string]int // children per phase
}

// total adds up the children's last statuses.
func (sp *simProcs) total() simTotal {
	t := simTotal{phases: map[string]int{}}
	for _, p := range sp.procs {
		st := p.status()
		t.Devices += p.count
		t.KeysGenerated += int(st.KeysGenerated)
		t.ProvisionFailed += int(st.ProvisionFailed)
		t.Connected += int(st.Connected)
		t.Online += int(st.Online)
		t.Handshakes += st.Handshakes
		t.Resumptions += st.Resumptions
		t.ConnectErrors += st.ConnectErrors
		t.Disconnects += st.Disconnects
		t.Calls += st.Calls
		t.phases[st.Phase]++
		if st.Ready {
			t.Ready++
		}
	}
	t.Failed = t.Devices - t.Connected
	return t
}

// summary is total as a sim.Summary (Env.simStats).
func (sp *simProcs) summary() sim.Summary { return sp.total().Summary }

// ramp returns the time from the first child's connect phase until every
// device had come online once; 0 until then.
func (sp *simProcs) ramp() time.Duration {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.connected.IsZero() || sp.firstConn.IsZero() {
		return 0
	}
	return sp.connected.Sub(sp.firstConn)
}

// waitRamp waits until every child is past its ramp-up, printing the sum
// of their progress every interval (0: never). A child that exits first
// is an error.
func (sp *simProcs) waitRamp(ctx context.Context, progress io.Writer, every time.Duration) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		for _, p := range sp.procs {
			if err := p.exited(); err != nil {
				return err
			}
		}
		s := sp.total()
		if s.Ready == len(sp.procs) {
			return nil
		}
		if progress != nil && every > 0 && time.Since(last) >= every {
			fmt.Fprintf(progress, "bench: %d simulator processes: %s; connected %d/%d, online %d, handshakes %d (%d resumed)\n",
				len(sp.procs), phaseList(s.phases), s.Connected, s.Devices, s.Online, s.Handshakes, s.Resumptions)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// phaseList renders the children per phase, "connect 3, run 2".
func phaseList(phases map[string]int) string {
	var parts []string
	for _, ph := range []string{"", "keys", "provision", "connect", "run", "stop"} {
		if n := phases[ph]; n > 0 {
			if ph == "" {
				ph = "starting"
			}
			parts = append(parts, fmt.Sprintf("%s %d", ph, n))
		}
	}
	return strings.Join(parts, ", ")
}

// memory returns the children's resident sets added up.
func (sp *simProcs) memory() (rss uint64) {
	for _, p := range sp.procs {
		r, _ := procMemory(p.cmd.Process.Pid)
		rss += r
	}
	return rss
}

// stop ends every child with SIGTERM (their devices say Goodbye), waits up
// to 30 s, then kills those left. It returns the first failure.
func (sp *simProcs) stop() error {
	for _, p := range sp.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(30 * time.Second)
	var errs []error
	for _, p := range sp.procs {
		select {
		case <-p.done:
		case <-deadline:
			p.cmd.Process.Kill()
			<-p.done
		}
		var ee *exec.ExitError
		if p.err != nil && !(errors.As(p.err, &ee) && ee.ExitCode() == 1) {
			// Exit status 1 is a device that never came online, which
			// the readiness check has already reported.
			errs = append(errs, fmt.Errorf("simulator process %d: %w (see %s)", p.cmd.Process.Pid, p.err, p.log))
		}
	}
	return errors.Join(errs...)
}

// startDeviceProcs is startDevices with the devices in cfg.SimProcesses
// `wick sim` child processes: it waits until every child is past its
// ramp-up.
func (e *Env) startDeviceProcs(ctx context.Context, cfg EnvConfig, deviceServer, serverKey string, progress io.Writer) error {
	logDir := e.dataDir
	if logDir == "" {
		dir, err := os.MkdirTemp("", "wick-bench-sims-")
		if err != nil {
			return fmt.Errorf("benchmark: simulator logs: %w", err)
		}
		logDir = dir
	}
	quirks := ""
	if cfg.Quirks != (device.Quirks{}) {
		quirks = cfg.Quirks.String()
	}
	level := "warn"
	api, token := e.URL, e.Token
	if e.Reused { // provisioned and claimed by the earlier run
		api, token = "", ""
	}
	sp, err := startSimProcs(simProcConfig{bin: cfg.SimBin, processes: cfg.SimProcesses, devices: cfg.Devices,
		server: deviceServer, serverKey: serverKey, api: api, token: token, sessionsDir: e.sessionsDir(cfg), concurrency: e.rampConcurrency(cfg),
		idPrefix: cfg.IDPrefix, keysDir: cfg.KeysDir, logDir: logDir, udp: cfg.UDP, keepAlive: cfg.KeepAlive,
		every: cfg.Every, quirks: quirks, logLevel: level, bind: true})
	if err != nil {
		return err
	}
	e.sims = sp
	e.simStats = sp.summary
	e.simDone = make(chan simResult, 1)
	e.stopSim = func() { e.simDone <- simResult{err: sp.stop()} }
	e.DeviceIDs = make([]string, cfg.Devices)
	for i := range e.DeviceIDs {
		e.DeviceIDs[i], _ = sim.DeviceID(cfg.IDPrefix, 1+i)
	}
	if err := sp.waitRamp(ctx, progress, cfg.Progress); err != nil {
		return err
	}
	sum := sp.summary()
	e.KeysGenerated = sum.KeysGenerated
	if sum.ProvisionFailed > 0 {
		return fmt.Errorf("benchmark: the server refused %d of %d device keys (another user's devices with --id-prefix %q?)",
			sum.ProvisionFailed, sum.Devices, cfg.IDPrefix)
	}
	return nil
}
