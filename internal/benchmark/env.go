package benchmark

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server"
	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/sdk/device"
)

// benchUser is the account an in-process environment creates.
const benchUser = "bench@wick.local"

// serverKeyFiles are the in-process server's RSA key and its public half,
// kept in the keys directory between runs (generating RSA-2048 takes a
// noticeable while).
var serverKeyFiles = []string{"server_key.pem", "server_key.pub.pem"}

// streamsPerAddress is how many SSE streams an in-process run on Linux
// opens from one loopback address: below the server's default limits of
// 100 open streams and 100 opens per 5 minutes per client IP.
const streamsPerAddress = 50

// readyTimeout bounds the wait for the devices to show online, with their
// functions, in GET /v1/devices.
const readyTimeout = 3 * time.Minute

// partialReadyWait is how long waitReady waits for the last devices when
// EnvConfig.MinReady of them are ready.
const partialReadyWait = 30 * time.Second

// EnvConfig configures an Env.
type EnvConfig struct {
	// Devices is the number of simulated devices.
	Devices int
	// Every is each device's publishing period of EventName, with the
	// send time as data; zero publishes nothing.
	Every time.Duration
	// Streams is the number of SSE streams that will be opened, used to
	// spread them over loopback addresses (in process, on Linux).
	Streams int
	// URL, Token, DeviceServer and ServerKey target a running server; with
	// URL empty an in-process server is started.
	URL, Token, DeviceServer, ServerKey string
	// IDPrefix is the hex start of the device IDs (default "be").
	IDPrefix string
	// KeysDir caches device keys and the in-process server key; empty
	// generates them every time.
	KeysDir string
	// Bind lists local addresses for the HTTP clients, round robin.
	Bind []string
	// Progress is the interval of the devices' progress lines (0: none).
	Progress time.Duration
	// Quirks makes the devices behave on the wire like Device OS firmware.
	Quirks device.Quirks
	// UDP runs the devices over DTLS/UDP (Gen 3) instead of TCP.
	UDP bool
	// ServerProcess runs the server as a `wick serve` child process
	// (ServerBin, default this executable, with ServerArgs added) instead
	// of in process, so that its memory and CPU are its own and a restart
	// is a real process exit and start.
	ServerProcess bool
	ServerBin     string
	ServerArgs    []string
	// OnState receives the simulated devices' online changes
	// (sim.Config.OnState).
	OnState func(id string, online bool)
	// SimProcesses, when positive, runs the devices in that many `wick
	// sim` child processes (SimBin, default this executable), each with
	// its own loopback address on Linux, instead of in this process: more
	// devices than one process has descriptors for, and the simulator's
	// CPU and memory out of the measuring process. OnState is then not
	// called.
	SimProcesses int
	SimBin       string
	// KeepAlive is the devices' ping interval when idle (0: the device
	// default, 15 s over TCP and 25 s over UDP as Device OS).
	KeepAlive time.Duration
	// MinReady, when positive, lets the setup go on once this share of
	// the devices is ready and the rest have had partialReadyWait: a
	// loaded store can lose a device's describe (it stays online without
	// functions until it reconnects), which would otherwise stop the run.
	MinReady float64
	// KeepData keeps the server's temporary data directory at Close
	// (logged): its database, and with ServerProcess its server.log.
	KeepData bool
	// DataDir, when set, is the server's data directory instead of a
	// temporary one, and is kept: a run on a new (or empty) directory
	// provisions the devices as usual and records them (dataDirState);
	// a later run with the same IDPrefix, UDP and KeysDir and at most as
	// many Devices reuses them: no user creation, no provisioning, no
	// claims, and with UDP the devices resume the sessions the previous
	// run saved (sim.UDPConfig.SessionsDir) instead of handshaking.
	DataDir string
	// ProductDevices puts the Devices devices in a product, written to the
	// in-process server's store before it starts, and connects none: the
	// environment of the list scenario's product mode (Env.ProductPages).
	ProductDevices bool
	// ConnectConcurrency is how many devices connect at once during the
	// setup, in all simulators; 0: the simulator's default (100), or
	// resumeConcurrency for devices resuming saved sessions.
	ConnectConcurrency int
	// DB is the in-process server's database (config.Serve.DB: sqlite:PATH
	// or a postgres:// URL of an empty database or schema); empty: SQLite
	// in the data directory.
	DB string
}

// dataDirStateFile records in EnvConfig.DataDir the devices provisioned
// into it.
const dataDirStateFile = "wick-bench.json"

// dataDirSessions is the directory of EnvConfig.DataDir where the
// simulated Gen 3 devices keep their sessions between runs.
const dataDirSessions = "sim-sessions"

// dataDirState is what EnvConfig.DataDir holds about its devices.
type dataDirState struct {
	IDPrefix string `json:"id_prefix"`
	Devices  int    `json:"devices"`
	UDP      bool   `json:"udp"`
	KeysDir  string `json:"keys_dir"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// readDataDir reads the state of a kept data directory: nil (and no
// error) for a directory that does not exist or is empty, an error for
// one that holds something else or other devices than cfg's.
func readDataDir(cfg EnvConfig) (*dataDirState, error) {
	dir := cfg.DataDir
	b, err := os.ReadFile(filepath.Join(dir, dataDirStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		entries, derr := os.ReadDir(dir)
		if derr == nil && len(entries) > 0 {
			return nil, fmt.Errorf("%w: --data-dir %s is not empty and holds no %s (a first run that did not finish?): remove it or use another",
				ErrConfig, dir, dataDirStateFile)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("benchmark: data dir: %w", err)
	}
	var st dataDirState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("benchmark: data dir %s: %w", dir, err)
	}
	keys, _ := filepath.Abs(cfg.KeysDir)
	switch {
	case st.IDPrefix != cfg.IDPrefix || st.UDP != cfg.UDP:
		return nil, fmt.Errorf("%w: --data-dir %s holds devices with --id-prefix %q, udp %v, not %q, udp %v: use another",
			ErrConfig, dir, st.IDPrefix, st.UDP, cfg.IDPrefix, cfg.UDP)
	case st.Devices < cfg.Devices:
		return nil, fmt.Errorf("%w: --data-dir %s holds %d devices, fewer than --devices %d: use another",
			ErrConfig, dir, st.Devices, cfg.Devices)
	case st.KeysDir != keys:
		return nil, fmt.Errorf("%w: --data-dir %s holds devices whose keys are in --keys-dir %s, not %s",
			ErrConfig, dir, st.KeysDir, keys)
	}
	return &st, nil
}

// writeDataDir records cfg's devices in cfg.DataDir, once they are ready.
func writeDataDir(cfg EnvConfig, password string) error {
	keys, _ := filepath.Abs(cfg.KeysDir)
	b, err := json.MarshalIndent(dataDirState{IDPrefix: cfg.IDPrefix, Devices: cfg.Devices, UDP: cfg.UDP,
		KeysDir: keys, User: benchUser, Password: password}, "", "  ")
	if err != nil {
		return fmt.Errorf("benchmark: data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, dataDirStateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("benchmark: data dir: %w", err)
	}
	return nil
}

// Env is a Wick server with simulated devices connected to it, ready for
// a scenario. Close it.
type Env struct {
	// URL is the API base URL, without a trailing slash.
	URL string
	// Token is the access token of the devices' owner.
	Token string
	// DeviceIDs are the simulated devices, all online.
	DeviceIDs []string
	// InProcess reports that the server runs in this process.
	InProcess bool
	// Setup is the time from StartEnv to all devices being ready.
	Setup time.Duration
	// KeysGenerated is how many device keys had to be generated.
	KeysGenerated int
	// Reused reports that the devices were provisioned by an earlier run
	// into EnvConfig.DataDir.
	Reused bool
	// ProductID is the product of EnvConfig.ProductDevices, 0 without.
	ProductID int64

	client    *http.Client
	transport *http.Transport
	bind      []string // local addresses, round robin; nil: default
	nextBind  atomic.Uint64
	simStats  func() sim.Summary
	stopSim   context.CancelFunc
	simDone   chan simResult
	stopSrv   context.CancelFunc
	srvDone   chan error
	srv       *server.Server // in process: the running server
	srvCfg    config.Serve   // in process: its configuration, with the addresses it got
	srvLog    *slog.Logger
	proc      *serverProc // with EnvConfig.ServerProcess: the child server
	baseRSS   uint64      // with proc: the child's resident set before any device
	sims      *simProcs   // with EnvConfig.SimProcesses: the simulators
	udp       bool        // the devices are Gen 3
	dataDir   string      // in process: removed by Close
	keepData  bool        // EnvConfig.KeepData, or a DataDir
	password  string      // of benchUser, in process
	log       *slog.Logger
}

type simResult struct {
	sum sim.Summary
	err error
}

// StartEnv starts the server (unless cfg.URL is set), provisions and
// connects cfg.Devices simulated devices and waits until the API lists
// them online with their functions. Setup progress goes to progress.
func StartEnv(ctx context.Context, cfg EnvConfig, log *slog.Logger, progress io.Writer) (env *Env, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "be"
	}
	if cfg.ProductDevices && (cfg.URL != "" || cfg.ServerProcess || cfg.SimProcesses > 0 || cfg.DataDir != "") {
		return nil, fmt.Errorf("%w: a product's devices are written to an in-process server's new store: no --url, --server-process, --sim-processes or --data-dir", ErrConfig)
	}
	start := time.Now()
	e := &Env{URL: cfg.URL, Token: cfg.Token, bind: cfg.Bind, udp: cfg.UDP, keepData: cfg.KeepData, log: log}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.transport = &http.Transport{
		DialContext:         e.dial,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	e.client = &http.Client{Transport: e.transport}
	deviceServer, serverKey := cfg.DeviceServer, cfg.ServerKey
	if cfg.URL == "" {
		if deviceServer, serverKey, err = e.startServer(ctx, cfg, log); err != nil {
			return nil, err
		}
		if len(e.bind) == 0 && runtime.GOOS == "linux" && cfg.Streams > streamsPerAddress {
			for i := range (cfg.Streams + streamsPerAddress - 1) / streamsPerAddress {
				e.bind = append(e.bind, fmt.Sprintf("127.0.0.%d", 1+i%250))
			}
		}
	}
	if cfg.ProductDevices {
		e.DeviceIDs = make([]string, cfg.Devices)
		for i := range e.DeviceIDs {
			if e.DeviceIDs[i], err = sim.DeviceID(cfg.IDPrefix, 1+i); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrConfig, err)
			}
		}
		e.Setup = time.Since(start)
		return e, nil
	}
	if e.Reused && progress != nil {
		fmt.Fprintf(progress, "bench: %d devices provisioned by an earlier run into %s: no provisioning\n", cfg.Devices, cfg.DataDir)
	}
	if cfg.SimProcesses > 0 {
		err = e.startDeviceProcs(ctx, cfg, deviceServer, serverKey, progress)
	} else {
		err = e.startDevices(ctx, cfg, deviceServer, serverKey, log, progress)
	}
	if err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx, progress, cfg.Progress, cfg.MinReady); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" && cfg.URL == "" && !e.Reused {
		if err := writeDataDir(cfg, e.password); err != nil {
			return nil, err
		}
	}
	e.Setup = time.Since(start)
	return e, nil
}

// sessionsDir is where the simulated Gen 3 devices keep their sessions
// between runs: in EnvConfig.DataDir, "" without one.
func (e *Env) sessionsDir(cfg EnvConfig) string {
	if cfg.DataDir == "" || !cfg.UDP || cfg.URL != "" {
		return ""
	}
	return filepath.Join(cfg.DataDir, dataDirSessions)
}

// resumeConcurrency is how many devices resume their saved sessions at
// once while a reused environment comes up: the gateway looks up at most
// 64 saved sessions at once and drops the datagrams of the rest (which
// the devices resend only after 4 s); its start sweep, which reaches
// recently saved sessions with up to 32 of those lookups, is over in
// seconds, and a device holds a lookup for only part of its resumption.
const resumeConcurrency = 48

// rampConcurrency is how many devices connect at once during the setup:
// EnvConfig.ConnectConcurrency if set, resumeConcurrency when they
// resume saved sessions, else 0 (the simulator's default).
func (e *Env) rampConcurrency(cfg EnvConfig) int {
	if cfg.ConnectConcurrency > 0 {
		return cfg.ConnectConcurrency
	}
	if e.Reused && e.sessionsDir(cfg) != "" {
		return resumeConcurrency
	}
	return 0
}

// dial connects from the next local address of e.bind.
func (e *Env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if len(e.bind) > 0 {
		ip := e.bind[int(e.nextBind.Add(1)-1)%len(e.bind)]
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	return d.DialContext(ctx, network, addr)
}

// startServer runs an in-process server on a temporary data directory and
// logs a new user in; it returns the device gateway's address and the
// server's public key file.
func (e *Env) startServer(ctx context.Context, cfg EnvConfig, log *slog.Logger) (deviceServer, serverKey string, err error) {
	var dir string
	var reuse *dataDirState
	if cfg.DataDir != "" {
		if reuse, err = readDataDir(cfg); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return "", "", fmt.Errorf("benchmark: data directory: %w", err)
		}
		dir, e.keepData, e.Reused = cfg.DataDir, true, reuse != nil
	} else if dir, err = os.MkdirTemp("", "wick-bench-"); err != nil {
		return "", "", fmt.Errorf("benchmark: data directory: %w", err)
	}
	e.dataDir = dir
	e.InProcess = true
	sc := config.Default()
	sc.Data = dir
	sc.HTTP = "127.0.0.1:0"
	sc.DeviceTCP = "127.0.0.1:0"
	sc.DeviceUDP = "127.0.0.1:0"
	sc.Node = "bench"
	sc.Rate = 1 << 30 // the global per-IP limit would stop the load after 10,000 requests
	// Every simulated device connects from one address: lift the
	// per-address connection caps and handshake rate (docs/security.md,
	// Connection limits), and the derived totals.
	sc.DeviceConnsPerIP, sc.HTTPConnsPerIP, sc.DeviceHandshakeRate = 0, 0, -1
	sc.MaxDeviceConns, sc.MaxHTTPConns = 1<<30, 1<<30
	sc.ShutdownTimeout = 5 * time.Second
	sc.DB = cfg.DB
	var password string
	if reuse != nil {
		password = reuse.Password
	} else {
		if cfg.KeysDir != "" {
			if err := copyFiles(cfg.KeysDir, dir, serverKeyFiles); err != nil {
				return "", "", fmt.Errorf("benchmark: server key: %w", err)
			}
		}
		pw := make([]byte, 16)
		rand.Read(pw)
		password = hex.EncodeToString(pw)
		if _, err := server.CreateUser(ctx, sc, log, benchUser, password); err != nil {
			return "", "", fmt.Errorf("benchmark: %w", err)
		}
	}
	e.password = password
	if cfg.ProductDevices {
		if e.ProductID, err = fillProduct(ctx, sc, cfg, log); err != nil {
			return "", "", err
		}
	}
	if cfg.ServerProcess {
		return e.startServerProcess(ctx, cfg, dir, password)
	}
	srv, err := server.New(ctx, sc, log)
	if err != nil {
		return "", "", fmt.Errorf("benchmark: %w", err)
	}
	srvCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopSrv = stop
	e.srvDone = make(chan error, 1)
	go func() { e.srvDone <- srv.Run(srvCtx) }()
	select {
	case <-srv.Ready():
	case err := <-e.srvDone:
		e.srvDone <- err
		return "", "", fmt.Errorf("benchmark: server: %w", err)
	}
	e.URL = "http://" + srv.HTTPAddr().String()
	// A restart (the storm scenario) takes the same addresses again.
	e.srv, e.srvLog, e.srvCfg = srv, log, sc
	e.srvCfg.HTTP, e.srvCfg.DeviceTCP = srv.HTTPAddr().String(), srv.DeviceTCPAddr().String()
	if a := srv.DeviceUDPAddr(); a != nil {
		e.srvCfg.DeviceUDP = a.String()
	}
	if cfg.KeysDir != "" { // keep the server key for the next run
		if err := os.MkdirAll(cfg.KeysDir, 0o700); err == nil {
			copyFiles(dir, cfg.KeysDir, serverKeyFiles)
		}
	}
	if e.Token, err = e.login(ctx, benchUser, password); err != nil {
		return "", "", err
	}
	if cfg.UDP {
		return srv.DeviceUDPAddr().String(), filepath.Join(dir, "server_ec_key.pub.pem"), nil
	}
	return srv.DeviceTCPAddr().String(), filepath.Join(dir, "server_key.pub.pem"), nil
}

// startServerProcess is startServer with the server in a child process
// (EnvConfig.ServerProcess) on the data directory dir, which holds the
// user already.
func (e *Env) startServerProcess(ctx context.Context, cfg EnvConfig, dir, password string) (deviceServer, serverKey string, err error) {
	args := cfg.ServerArgs
	if cfg.DB != "" {
		args = append([]string{"--db", cfg.DB}, args...)
	}
	p, err := newServerProc(cfg.ServerBin, dir, args)
	if err != nil {
		return "", "", err
	}
	if err := p.start(ctx); err != nil {
		return "", "", err
	}
	e.proc = p
	e.URL = "http://" + p.http
	if cfg.KeysDir != "" { // keep the server key for the next run
		if err := os.MkdirAll(cfg.KeysDir, 0o700); err == nil {
			copyFiles(dir, cfg.KeysDir, serverKeyFiles)
		}
	}
	if e.Token, err = e.login(ctx, benchUser, password); err != nil {
		return "", "", err
	}
	// The server before any device, for the memory per device.
	time.Sleep(time.Second)
	e.baseRSS, _ = p.memory()
	if cfg.UDP {
		return p.udp, filepath.Join(dir, "server_ec_key.pub.pem"), nil
	}
	return p.dev, filepath.Join(dir, "server_key.pub.pem"), nil
}

// copyFiles copies the named files from one directory to another (mode
// 0600) when all of them exist in the first, and does nothing otherwise.
func copyFiles(from, to string, names []string) error {
	data := make([][]byte, len(names))
	for i, name := range names {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return nil
		}
		data[i] = b
	}
	for i, name := range names {
		if err := os.WriteFile(filepath.Join(to, name), data[i], 0o600); err != nil {
			return err
		}
	}
	return nil
}

// login gets an access token with the password grant.
func (e *Env) login(ctx context.Context, user, password string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("benchmark: login: %w", err)
	}
	req.SetBasicAuth("particle", "particle")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("benchmark: login: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("benchmark: login: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// startDevices runs the simulator until Close and waits until its ramp-up
// is over.
func (e *Env) startDevices(ctx context.Context, cfg EnvConfig, deviceServer, serverKey string, log *slog.Logger, progress io.Writer) error {
	sc := sim.Default()
	sc.Server, sc.ServerKey = deviceServer, serverKey
	if !e.Reused { // provisioned and claimed by the earlier run
		sc.API, sc.Token = e.URL, e.Token
	}
	sc.Count, sc.IDPrefix, sc.IDStart = cfg.Devices, cfg.IDPrefix, 1
	sc.KeysDir = cfg.KeysDir
	sc.Progress = cfg.Progress
	sc.ConnectTimeout = time.Minute
	sc.Quirks = cfg.Quirks
	if cfg.KeepAlive > 0 {
		sc.KeepAlive = cfg.KeepAlive
	}
	sc.UDP.Enabled = cfg.UDP
	sc.UDP.SessionsDir = e.sessionsDir(cfg)
	if n := e.rampConcurrency(cfg); n > 0 {
		sc.Concurrency = n
	}
	sc.OnState = cfg.OnState
	if cfg.Every > 0 {
		sc.Publish, sc.Every, sc.PublishTime = EventName, cfg.Every, true
	}
	ready := make(chan func() sim.Summary, 1)
	sc.Ready = func(stats func() sim.Summary) { ready <- stats }
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("benchmark: devices: %w", err)
	}
	e.DeviceIDs = make([]string, cfg.Devices)
	for i := range e.DeviceIDs {
		e.DeviceIDs[i], _ = sim.DeviceID(sc.IDPrefix, sc.IDStart+i) // Validate checked the range
	}
	simCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopSim = stop
	e.simDone = make(chan simResult, 1)
	go func() {
		sum, err := sim.Run(simCtx, sc, log, progress)
		e.simDone <- simResult{sum, err}
	}()
	select {
	case e.simStats = <-ready:
	case r := <-e.simDone:
		e.simDone <- r
		if r.err != nil {
			return fmt.Errorf("benchmark: devices: %w", r.err)
		}
		return errors.New("benchmark: the simulator stopped before its devices were ready")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Devices whose first attempt failed keep trying; waitReady waits for
	// them. A refused key never connects.
	sum := e.simStats()
	e.KeysGenerated = sum.KeysGenerated
	if sum.ProvisionFailed > 0 {
		return fmt.Errorf("benchmark: the server refused %d of %d device keys (another user's devices with --id-prefix %q?)",
			sum.ProvisionFailed, sum.Devices, cfg.IDPrefix)
	}
	return nil
}

// waitReady polls GET /v1/devices until every simulated device is listed
// online with the function led (its describe stored), so that calls do
// not race the describe.
func (e *Env) waitReady(ctx context.Context, progress io.Writer, every time.Duration, minReady float64) error {
	// A list of 100,000 devices is tens of megabytes: poll a large fleet
	// less often, and give it longer.
	n := len(e.DeviceIDs)
	poll := 100*time.Millisecond + time.Duration(n/20)*time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, readyTimeout+time.Duration(n)*10*time.Millisecond)
	defer cancel()
	began := time.Now()
	want := make(map[string]bool, len(e.DeviceIDs))
	for _, id := range e.DeviceIDs {
		want[id] = true
	}
	lastLine := time.Now()
	for {
		devices, err := e.listDevices(ctx)
		if err != nil {
			return err
		}
		ready := 0
		for _, d := range devices {
			if want[d.ID] && d.Online && slices.Contains(d.Functions, "led") {
				ready++
			}
		}
		if ready == len(want) {
			return nil
		}
		if minReady > 0 && float64(ready) >= minReady*float64(len(want)) && time.Since(began) >= partialReadyWait {
			if progress != nil {
				fmt.Fprintf(progress, "bench: going on with %d/%d devices ready (the rest are online without their functions)\n", ready, len(want))
			}
			return nil
		}
		if progress != nil && every > 0 && time.Since(lastLine) >= every {
			fmt.Fprintf(progress, "bench: %d/%d devices online with their functions\n", ready, len(want))
			lastLine = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("benchmark: only %d of %d devices ready: %w", ready, len(want), ctx.Err())
		case <-time.After(poll):
		}
	}
}

// listedDevice is the part of a device object the readiness check reads.
type listedDevice struct {
	ID        string   `json:"id"`
	Online    bool     `json:"online"`
	Functions []string `json:"functions"`
}

// listDevices reads GET /v1/devices.
func (e *Env) listDevices(ctx context.Context) ([]listedDevice, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/devices", nil)
	if err != nil {
		return nil, fmt.Errorf("benchmark: list devices: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("benchmark: list devices: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("benchmark: list devices: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var list []listedDevice
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("benchmark: list devices: %w", err)
	}
	return list, nil
}

// published returns the events the devices have published so far.
func (e *Env) published() int64 {
	if e.simStats == nil {
		return 0
	}
	return e.simStats().Published
}

// Close disconnects the devices, stops an in-process server and removes
// its data directory. It returns the first error of the simulator or the
// server.
func (e *Env) Close() error {
	var err error
	if e.stopSim != nil {
		e.stopSim()
		if r := <-e.simDone; r.err != nil {
			err = r.err
		}
		e.stopSim = nil
	}
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	if e.stopSrv != nil {
		e.stopSrv()
		if serr := <-e.srvDone; serr != nil && err == nil {
			err = serr
		}
		e.stopSrv = nil
	}
	if e.proc != nil {
		if serr := e.proc.stop(); serr != nil && err == nil {
			err = serr
		}
		e.proc = nil
	}
	if e.dataDir != "" {
		if e.keepData {
			if e.log != nil {
				e.log.Warn("bench: server data directory kept", "dir", e.dataDir)
			}
		} else {
			os.RemoveAll(e.dataDir)
		}
		e.dataDir = ""
	}
	if err != nil {
		return fmt.Errorf("benchmark: close: %w", err)
	}
	return nil
}

// SimSummary returns the simulated devices' counters so far.
func (e *Env) SimSummary() sim.Summary {
	if e.simStats == nil {
		return sim.Summary{}
	}
	return e.simStats()
}
