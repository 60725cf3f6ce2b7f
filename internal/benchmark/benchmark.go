// Package benchmark measures Wick end to end, the engine of `wick bench`
// and of this package's Go benchmarks. A run has three parts:
//
//  1. an environment (Env): by default an in-process server (`wick serve`
//     with embedded defaults on a temporary data directory, HTTP and the
//     device gateway on 127.0.0.1:0), a user and a token, and Config.Devices
//     simulated devices (package sim) provisioned through the API and
//     connected over real TCP; or, with Config.URL, a running server;
//  2. a load through real HTTP clients on loopback: SSE readers (events),
//     function calls (calls) or device lists (list);
//  3. a measurement: after Config.Warmup, for Config.Duration (or a number
//     of operations, for `go test -bench`), throughput, latency quantiles,
//     errors and memory, with a progress line every second.
//
// Latency of events is publish to delivery: the simulated devices publish
// their send time (sim.Config.PublishTime) and the SSE readers, in the
// same process, subtract it from the time they parse the event.
package benchmark

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/sdk/device"
)

// Scenario names, the first argument of `wick bench`.
const (
	// Events fans device events out to SSE streams.
	Events = "events"
	// Calls calls a device function through POST /v1/devices/:id/:fn.
	Calls = "calls"
	// List reads GET /v1/devices.
	List = "list"
	// Storm restarts the server under connected devices and measures
	// their reconnection (Env.Storm).
	Storm = "storm"
	// Idle holds every device online and idle on a server child process
	// and measures the server alone (Env.Idle).
	Idle = "idle"
)

// Default concurrency of the request scenarios.
const (
	DefaultCallConcurrency = 64
	DefaultListConcurrency = 8
)

// EventName is the event the simulated devices publish in the events
// scenario; the streams subscribe to it.
const EventName = "wick-bench"

// Config configures a benchmark run. Start from Default; the flag names
// of Register are a contract (docs use them).
type Config struct {
	// Scenario is Events, Calls or List.
	Scenario string
	// Devices is the number of simulated devices.
	Devices int
	// Streams is the number of SSE streams (events).
	Streams int
	// Concurrency is the number of concurrent HTTP clients (calls, list);
	// zero means DefaultCallConcurrency or DefaultListConcurrency.
	Concurrency int
	// RPS paces calls and list at this many requests per second (open
	// loop, latency from each request's scheduled time); zero sends as
	// fast as the clients go.
	RPS float64
	// Duration is how long the measurement lasts.
	Duration time.Duration
	// Warmup is how long the load runs before the measurement starts.
	Warmup time.Duration
	// Every is each device's publishing period (events): 1,000 devices
	// every second publish 1,000 events per second, which 100 streams
	// receive as 100,000 deliveries per second.
	Every time.Duration

	// URL targets a running server's API instead of starting one in
	// process; Token, DeviceServer and ServerKey are then required.
	URL string
	// Token is an access token of the user the devices are given to.
	Token string
	// DeviceServer is the running server's device gateway, host:port.
	DeviceServer string
	// ServerKey is the running server's public key file (PEM, DER or the
	// `wick keys server` blob), for the devices' handshakes.
	ServerKey string

	// IDPrefix is the hex start of the simulated device IDs.
	IDPrefix string
	// KeysDir caches the device keys (and the in-process server's key)
	// between runs; empty means <user cache dir>/wick/bench-keys.
	KeysDir string
	// Bind lists local IP addresses the HTTP clients connect from, round
	// robin, to stay under the server's per-IP limits. Empty means the
	// default address, except that an in-process run on Linux spreads SSE
	// streams over 127.0.0.x, 50 per address.
	Bind []string
	// Progress is the interval of the progress lines (0: none).
	Progress time.Duration
	// CPUProfile, when set, receives a CPU profile of the measurement
	// (the whole process: in process, server and clients).
	CPUProfile string
	// LogLevel is the level of the server's and devices' logs.
	LogLevel string
	// Quirks makes the simulated devices behave on the wire like Device
	// OS firmware (docs/device-protocol.md, "Firmware quirks"): with them
	// the calls scenario measures what a call to real firmware costs.
	Quirks device.Quirks
	// UDP runs the simulated devices as Gen 3 devices, over DTLS/UDP with
	// P-256 keys, instead of Gen 2 devices over TCP.
	UDP bool
	// ServerProcess runs the storm's server as a `wick serve` child
	// process (ServerBin, default this executable, plus ServerArgs), so
	// that the devices are in another process and the server's memory
	// and CPU are measured alone.
	ServerProcess bool
	ServerBin     string
	ServerArgs    []string
	// SimProcesses runs the simulated devices in that many `wick sim`
	// child processes (SimBin, default this executable; zero: in this
	// process), so that one server may hold more devices than one
	// process has descriptors for (EnvConfig.SimProcesses).
	SimProcesses int
	SimBin       string
	// KeepAlive is the simulated devices' ping interval when idle (0:
	// their default, 15 s over TCP, 25 s over UDP).
	KeepAlive time.Duration
	// IdleFirst makes the storm measure the idle scenario first (for
	// Duration, with ServerProcess), on the same devices, before the cut.
	IdleFirst bool
	// KeepData keeps the server's temporary data directory (its database
	// and, with ServerProcess, server.log) after the run instead of
	// removing it; its path is logged.
	KeepData bool
	// DataDir is the server's data directory, kept between runs so that a
	// later run reuses the devices provisioned into it (EnvConfig.DataDir);
	// empty: a temporary directory.
	DataDir string
	// Product makes the list scenario read pages of PerPage devices of
	// GET /v1/products/:p/devices from a product of Devices devices
	// (EnvConfig.ProductDevices) instead of GET /v1/devices.
	Product bool
	PerPage int
	// DB is the database of the server the run starts (EnvConfig.DB).
	DB string
	// ConnectConcurrency is EnvConfig.ConnectConcurrency.
	ConnectConcurrency int
}

// Default returns the defaults: the sizes (1,000 devices, 100
// streams, 64 concurrent calls) for 10 s after a 2 s warm-up; every device
// publishes once a second, the rate the gateway allows a device.
func Default() Config {
	return Config{
		Devices:  1000,
		Streams:  100,
		Duration: 10 * time.Second,
		Warmup:   2 * time.Second,
		Every:    time.Second,
		IDPrefix: "be",
		PerPage:  DefaultPerPage,
		Progress: time.Second,
		LogLevel: "warn",
	}
}

// Register binds the flags of `wick bench` to c.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.IntVar(&c.Devices, "devices", c.Devices, "simulated devices")
	fs.IntVar(&c.Streams, "streams", c.Streams, "SSE streams reading the events (events)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "concurrent HTTP clients (calls: default 64, list: default 8)")
	fs.Float64Var(&c.RPS, "rps", c.RPS, "pace calls or lists at this many requests per second, latency from the scheduled time (0: as fast as the clients go)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of the measurement")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the measurement starts, not counted")
	fs.DurationVar(&c.Every, "every", c.Every, "publishing period of each device (events)")
	fs.StringVar(&c.URL, "url", c.URL, "API base URL of a running server (default: start one in process)")
	fs.StringVar(&c.Token, "token", c.Token, "access token for --url; the devices become its user's")
	fs.StringVar(&c.DeviceServer, "device-server", c.DeviceServer, "device gateway HOST:PORT of the --url server")
	fs.StringVar(&c.ServerKey, "server-key", c.ServerKey, "server public key file of the --url server (PEM, DER or the blob of wick keys server)")
	fs.StringVar(&c.IDPrefix, "id-prefix", c.IDPrefix, "hex prefix of the simulated device IDs")
	fs.StringVar(&c.KeysDir, "keys-dir", c.KeysDir, "cache of device keys between runs (default <user cache dir>/wick/bench-keys)")
	fs.Var(config.List{P: &c.Bind}, "bind", "local IP addresses for the HTTP clients, comma-separated (e.g. 127.0.0.2,127.0.0.3)")
	fs.DurationVar(&c.Progress, "progress", c.Progress, "interval of the progress lines on stderr (0: none)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write a CPU profile of the measurement to this file")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level of the server and devices: debug, info, warn, error")
	fs.BoolVar(&c.UDP, "udp", c.UDP, "simulated devices are Gen 3: DTLS over UDP with P-256 keys (with --url, --device-server is the UDP address and --server-key the P-256 key)")
	fs.BoolVar(&c.ServerProcess, "server-process", c.ServerProcess, "storm: run the server as a wick serve child process (the devices stay in this one) and measure its memory and CPU alone")
	fs.StringVar(&c.ServerBin, "server-bin", c.ServerBin, "storm: wick binary for --server-process (default: this one)")
	fs.Var(config.List{P: &c.ServerArgs}, "server-args", "storm: extra wick serve flags for --server-process, comma-separated (e.g. --device-admission=32)")
	fs.IntVar(&c.SimProcesses, "sim-processes", c.SimProcesses, "run the simulated devices in this many wick sim child processes, each from its own 127.0.0.x (0: in this process); beyond ~19,000 devices, one per 17,000")
	fs.StringVar(&c.SimBin, "sim-bin", c.SimBin, "wick binary for --sim-processes (default: this one)")
	fs.DurationVar(&c.KeepAlive, "keepalive", c.KeepAlive, "simulated devices' ping interval when idle (0: their default, 15 s over TCP, 25 s over UDP)")
	fs.BoolVar(&c.KeepData, "keep-data", c.KeepData, "keep the server's temporary data directory (database, server.log) after the run; its path goes to stderr")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "server data directory kept between runs: the first run provisions the devices into it, a later run with the same --id-prefix, --udp and --keys-dir and at most as many --devices reuses them (no provisioning; Gen 3 devices resume their saved sessions)")
	fs.BoolVar(&c.Product, "product", c.Product, "list: read pages of GET /v1/products/:p/devices (first, middle, last, middle by ID) of a product of --devices devices, written to the store, none connected, instead of GET /v1/devices")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", c.ConnectConcurrency, "devices connecting at once during the setup, in all simulators (0: 100, or 48 when Gen 3 devices resume their sessions from --data-dir)")
	fs.IntVar(&c.PerPage, "per-page", c.PerPage, "list --product: devices per page")
	fs.StringVar(&c.DB, "db", c.DB, "database of the server the run starts: sqlite:PATH or postgres://... of an empty database or schema (default: SQLite in its data directory)")
	fs.BoolVar(&c.IdleFirst, "idle-first", c.IdleFirst, "storm: measure the idle scenario for --duration first, on the same devices, then restart the server (needs --server-process)")
	fs.Var(sim.QuirksFlag{P: &c.Quirks}, "firmware-quirks", "simulated devices behave like Device OS firmware on the wire: alone, every quirk; or a comma-separated list (see wick sim -h)")
}

// ErrConfig marks an invalid benchmark configuration.
var ErrConfig = errors.New("benchmark: invalid configuration")

// Validate checks c and fills the scenario's default concurrency and the
// keys directory.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch c.Scenario {
	case Events, Calls, List:
	case Storm:
		if c.URL != "" {
			return bad("storm restarts the server it starts: no --url")
		}
		if c.IdleFirst && !c.ServerProcess {
			return bad("--idle-first measures a wick serve child process: it needs --server-process")
		}
		if c.IdleFirst && c.RPS == 0 {
			c.RPS = DefaultIdleRPS
		}
		if c.UDP && !c.ServerProcess {
			return bad("storm --udp needs --server-process: Gen 3 devices do not see the restart, so it follows the server's own count of devices online")
		}
	case Idle:
		if c.URL != "" || !c.ServerProcess {
			return bad("idle measures a wick serve child process: it needs --server-process and no --url")
		}
		if c.RPS == 0 {
			c.RPS = DefaultIdleRPS
		}
	case "":
		return bad("a scenario is required: events, calls, list, storm or idle")
	default:
		return bad("unknown scenario %q: want events, calls, list, storm or idle", c.Scenario)
	}
	if c.SimProcesses < 0 {
		return bad("--sim-processes must not be negative")
	}
	if c.Product {
		switch {
		case c.Scenario != List:
			return bad("--product is the list scenario's")
		case c.URL != "" || c.DataDir != "" || c.SimProcesses > 0:
			return bad("list --product writes its product to the store of the server it starts: no --url, --data-dir or --sim-processes")
		case c.PerPage < 1:
			return bad("--per-page must be at least 1")
		}
	}
	if c.KeepAlive < 0 || c.ConnectConcurrency < 0 {
		return bad("--keepalive and --connect-concurrency must not be negative")
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultCallConcurrency
		if c.Scenario == List || c.Scenario == Storm || c.Scenario == Idle {
			c.Concurrency = DefaultListConcurrency
		}
	}
	switch {
	case c.Devices < 1:
		return bad("--devices must be at least 1")
	case c.Scenario == Events && c.Streams < 1:
		return bad("--streams must be at least 1")
	case c.Concurrency < 1:
		return bad("--concurrency must be at least 1")
	case c.RPS < 0:
		return bad("--rps must not be negative")
	case c.RPS > 0 && c.Scenario == Events:
		return bad("--rps paces calls and list; the events load is --devices / --every")
	case c.Duration <= 0:
		return bad("--duration must be positive")
	case c.Warmup < 0 || c.Progress < 0:
		return bad("durations must not be negative")
	case c.Scenario == Events && c.Every <= 0:
		return bad("--every must be positive")
	}
	if _, err := sim.DeviceID(c.IDPrefix, c.Devices); err != nil {
		return bad("%d devices: %v", c.Devices, err)
	}
	for _, b := range c.Bind {
		if net.ParseIP(b) == nil {
			return bad("--bind %q is not an IP address", b)
		}
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("--url %q: want an http(s) URL", c.URL)
		}
		c.URL = strings.TrimRight(c.URL, "/")
		switch {
		case c.Token == "":
			return bad("--url needs --token")
		case c.DeviceServer == "":
			return bad("--url needs --device-server HOST:PORT")
		case c.ServerKey == "":
			return bad("--url needs --server-key FILE")
		}
		if c.DataDir != "" || c.DB != "" {
			return bad("--data-dir and --db are the server's the run starts: no --url")
		}
	} else if c.Token != "" || c.DeviceServer != "" || c.ServerKey != "" {
		return bad("--token, --device-server and --server-key go with --url")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.KeysDir == "" {
		c.KeysDir = DefaultKeysDir()
	}
	return nil
}

// DefaultKeysDir is where device keys are cached between runs:
// <user cache dir>/wick/bench-keys (~/.cache/wick/bench-keys on Linux).
func DefaultKeysDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "wick", "bench-keys")
}

// Bench is one configured benchmark run.
type Bench struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns the run. log receives the server's and
// the devices' logs (nil: discarded).
func New(cfg Config, log *slog.Logger) (*Bench, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bench{cfg: cfg, log: log}, nil
}

// Config returns the validated configuration.
func (b *Bench) Config() Config { return b.cfg }

// RunStorm runs the storm scenario (Env.Storm) on a new in-process
// environment and tears it down. Progress lines go to progress (nil: none).
func (b *Bench) RunStorm(ctx context.Context, progress io.Writer) (*StormResult, error) {
	c := b.cfg
	if c.Scenario != Storm {
		return nil, fmt.Errorf("%w: RunStorm runs the storm scenario, not %q", ErrConfig, c.Scenario)
	}
	// The clients call devices online as the simulator sees them; with
	// simulator processes, or Gen 3 devices (which do not see a restart,
	// and which the gateway reaches on their saved sessions), any device.
	var back *onlineSet
	ec := b.envConfig()
	ec.MinReady = 0.99
	if c.SimProcesses == 0 && !c.UDP {
		back = newOnlineSet()
		ec.OnState = back.set
	}
	env, err := StartEnv(ctx, ec, b.log, progress)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	if c.Progress <= 0 {
		progress = nil
	}
	var idle *IdleResult
	if c.IdleFirst {
		m := Measure{Duration: c.Duration, RPS: c.RPS}
		if idle, err = env.Idle(ctx, c.Concurrency, m, progress); err != nil {
			return nil, err
		}
		if c.KeepAlive > 0 {
			idle.KeepAlive = c.KeepAlive.String()
		}
		if progress != nil { // now, in case the storm never ends
			idle.WriteText(progress)
		}
	}
	r, err := env.storm(ctx, c.Concurrency, back, progress)
	if r != nil {
		r.Idle = idle
	}
	return r, err
}

// envConfig is the environment of the configured run.
func (b *Bench) envConfig() EnvConfig {
	c := b.cfg
	return EnvConfig{Devices: c.Devices, URL: c.URL, Token: c.Token, DeviceServer: c.DeviceServer, ServerKey: c.ServerKey,
		IDPrefix: c.IDPrefix, KeysDir: c.KeysDir, Bind: c.Bind, Progress: c.Progress, Quirks: c.Quirks, UDP: c.UDP,
		ServerProcess: c.ServerProcess, ServerBin: c.ServerBin, ServerArgs: c.ServerArgs,
		SimProcesses: c.SimProcesses, SimBin: c.SimBin, KeepAlive: c.KeepAlive, KeepData: c.KeepData, DataDir: c.DataDir, DB: c.DB, ConnectConcurrency: c.ConnectConcurrency}
}

// RunIdle runs the idle scenario (Env.Idle) on a new environment whose
// server is a child process, and tears it down. Progress lines go to
// progress (nil: none).
func (b *Bench) RunIdle(ctx context.Context, progress io.Writer) (*IdleResult, error) {
	c := b.cfg
	if c.Scenario != Idle {
		return nil, fmt.Errorf("%w: RunIdle runs the idle scenario, not %q", ErrConfig, c.Scenario)
	}
	env, err := StartEnv(ctx, b.envConfig(), b.log, progress)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	m := Measure{Duration: c.Duration, RPS: c.RPS}
	if progress != nil && c.Progress > 0 {
		m.Interval = c.Progress
		m.Progress = func(t Tick) { fmt.Fprintln(progress, t.String()) }
	} else {
		progress = nil
	}
	r, err := env.Idle(ctx, c.Concurrency, m, progress)
	if err != nil {
		return nil, err
	}
	if c.KeepAlive > 0 {
		r.KeepAlive = c.KeepAlive.String()
	}
	return r, nil
}

// Run sets up the environment, runs the scenario and tears everything
// down. Progress lines go to progress (nil: none).
func (b *Bench) Run(ctx context.Context, progress io.Writer) (*Result, error) {
	c := b.cfg
	ec := b.envConfig()
	ec.ServerProcess, ec.ServerBin, ec.ServerArgs = false, "", nil // the server process is the storm's and idle's
	if c.Scenario == Events {
		ec.Every = c.Every
		ec.Streams = c.Streams
	}
	ec.ProductDevices = c.Product
	env, err := StartEnv(ctx, ec, b.log, progress)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	m := Measure{Warmup: c.Warmup, Duration: c.Duration, RPS: c.RPS}
	if progress != nil && c.Progress > 0 {
		m.Interval = c.Progress
		m.Progress = func(t Tick) { fmt.Fprintln(progress, t.String()) }
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("benchmark: cpu profile: %w", err)
		}
		defer f.Close()
		m.OnStart = func() {
			if err := pprof.StartCPUProfile(f); err != nil {
				b.log.Warn("benchmark: cpu profile", "err", err)
			}
		}
		m.OnStop = pprof.StopCPUProfile
	}
	var res *Result
	switch c.Scenario {
	case Events:
		var st *Streams
		if st, err = env.OpenStreams(ctx, c.Streams); err != nil {
			return nil, err
		}
		defer st.Close()
		res, err = st.Measure(ctx, m)
	case Calls:
		res, err = env.Calls(ctx, c.Concurrency, m)
	case List:
		if c.Product {
			res, err = env.ProductPages(ctx, c.Concurrency, c.PerPage, m)
		} else {
			res, err = env.List(ctx, c.Concurrency, m)
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
