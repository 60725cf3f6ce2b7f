package benchmark

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// IdleResult is the outcome of the idle scenario: a `wick serve` child
// process holding every device online and idle, measured alone.
type IdleResult struct {
	Devices      int  `json:"devices"`
	UDP          bool `json:"udp"`
	SimProcesses int  `json:"sim_processes,omitempty"`
	// KeepAlive is the devices' ping interval ("" for their default).
	KeepAlive string `json:"keepalive,omitempty"`
	// Ramp is the time from the first simulator starting to connect until
	// every device had come online once (seconds; 0 with the in-process
	// simulator), RampRate the devices per second over it.
	Ramp     float64 `json:"ramp_s,omitempty"`
	RampRate float64 `json:"ramp_devices_per_s,omitempty"`
	Setup    Setup   `json:"setup"`
	// Window is the length of the measurement (seconds).
	Window float64 `json:"window_s"`
	// Online is the server's own count of devices online at the end
	// (wick_devices_online); Parked its idle sessions with no goroutine
	// (wick_udp_sessions_parked + wick_tcp_sessions_parked).
	Online int64 `json:"online"`
	Parked int64 `json:"parked,omitempty"`
	// ServerRSS is the server's resident set at the end of the window,
	// ServerRSSBase before any device, PerDevice their difference per
	// device (bytes).
	ServerRSS     uint64  `json:"server_rss_bytes"`
	ServerRSSBase uint64  `json:"server_rss_base_bytes"`
	PerDevice     float64 `json:"rss_per_device_bytes"`
	// ServerCores is the server's CPU over the window, in cores.
	ServerCores float64 `json:"server_cores"`
	// DatagramsIn, Wakes and DemuxPings are per second over the window
	// (Gen 3): datagrams from devices (their keep-alive pings, mostly),
	// parked sessions woken, and pings of parked sessions answered by the
	// gateway's demultiplexer without a wake-up.
	DatagramsIn float64 `json:"udp_datagrams_in_per_s,omitempty"`
	Wakes       float64 `json:"udp_wakes_per_s,omitempty"`
	DemuxPings  float64 `json:"udp_demux_pings_per_s,omitempty"`
	// PollerPings and SessionPings are the Gen 2 keep-alive pings per
	// second over the window answered by the gateway's poller (the session
	// stays parked) and by a session's read loop.
	PollerPings  float64 `json:"tcp_poller_pings_per_s,omitempty"`
	SessionPings float64 `json:"tcp_session_pings_per_s,omitempty"`
	// API is the latency of GET /v1/devices/:id of random devices at RPS
	// requests per second, APIErrors its failures.
	RPS        float64 `json:"api_rps"`
	API        Latency `json:"api_get_device_ms"`
	APIErrors  int64   `json:"api_errors"`
	FirstError string  `json:"first_error,omitempty"`
	// SimRSS is the simulator processes' resident sets added up.
	SimRSS     uint64     `json:"sim_rss_bytes,omitempty"`
	Conditions Conditions `json:"conditions"`
}

// DefaultIdleRPS paces the idle scenario's API reads: the API answering
// normally is what is measured, not its throughput.
const DefaultIdleRPS = 20

// idleSettle is how long the idle scenario waits, once the server holds
// every device, before it measures: Gen 3 sessions park after 2 s idle.
const idleSettle = 5 * time.Second

// idleOnlineWait bounds the wait for the server to list every device.
const idleOnlineWait = 2 * time.Minute

// Idle measures the server child process holding every device idle: it
// waits until the server counts them all online (and a little more, for
// Gen 3 sessions to park), then for m.Duration reads random devices with
// GET /v1/devices/:id at m.RPS and records the server's CPU, its memory
// and its datagrams.
func (e *Env) Idle(ctx context.Context, concurrency int, m Measure, progress io.Writer) (*IdleResult, error) {
	if e.proc == nil {
		return nil, fmt.Errorf("%w: idle measures a wick serve child process: it needs --server-process", ErrConfig)
	}
	res := &IdleResult{Devices: len(e.DeviceIDs), UDP: e.udp, RPS: m.RPS,
		Setup:         Setup{Seconds: e.Setup.Seconds(), Devices: len(e.DeviceIDs), KeysGenerated: e.KeysGenerated, Reused: e.Reused},
		ServerRSSBase: e.baseRSS}
	if e.sims != nil {
		res.SimProcesses = len(e.sims.procs)
		if r := e.sims.ramp(); r > 0 {
			res.Ramp = r.Seconds()
			res.RampRate = float64(res.Devices) / r.Seconds()
		}
	}
	deadline := time.Now().Add(idleOnlineWait)
	for {
		mt, err := e.proc.serverMetrics(ctx)
		if err != nil {
			return nil, err
		}
		online := int(mt["wick_devices_online"])
		if online >= len(e.DeviceIDs) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("benchmark: idle: the server lists %d of %d devices online after %s", online, len(e.DeviceIDs), idleOnlineWait)
		}
		if progress != nil {
			fmt.Fprintf(progress, "idle: server lists %d/%d online\n", online, len(e.DeviceIDs))
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	if err := sleepCtx(ctx, idleSettle); err != nil {
		return nil, err
	}

	m0, err := e.proc.serverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	cpu0, t0 := e.proc.cpu(), time.Now()
	cur, stop := requestLoad(ctx, concurrency, m.RPS, func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
		e.getDevice(ctx, e.DeviceIDs[rand.IntN(len(e.DeviceIDs))], start, cur)
	})
	w, err := measure(ctx, Idle, "reads/s", m, cur, nil)
	stop()
	if err != nil {
		return nil, err
	}
	cpu1, t1 := e.proc.cpu(), time.Now()
	m1, err := e.proc.serverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	wall := t1.Sub(t0).Seconds()
	res.Window = w.elapsed.Seconds()
	res.ServerCores = (cpu1 - cpu0).Seconds() / wall
	res.Online = int64(m1["wick_devices_online"])
	res.Parked = int64(m1["wick_udp_sessions_parked"] + m1["wick_tcp_sessions_parked"])
	poller, session := `wick_device_pings_total{answered_by="poller"}`, `wick_device_pings_total{answered_by="session"}`
	res.PollerPings = (m1[poller] - m0[poller]) / wall
	res.SessionPings = (m1[session] - m0[session]) / wall
	in := `wick_udp_datagrams_total{direction="in"}`
	res.DatagramsIn = (m1[in] - m0[in]) / wall
	res.Wakes = (m1["wick_udp_wakes_total"] - m0["wick_udp_wakes_total"]) / wall
	demux := `wick_device_pings_total{answered_by="demux"}`
	res.DemuxPings = (m1[demux] - m0[demux]) / wall
	res.ServerRSS, _ = e.proc.memory()
	if res.Devices > 0 && res.ServerRSS > res.ServerRSSBase {
		res.PerDevice = float64(res.ServerRSS-res.ServerRSSBase) / float64(res.Devices)
	}
	res.API = w.meter.hist.snapshot().latency()
	res.APIErrors = w.meter.errs.Load()
	_, res.FirstError = w.meter.errorKinds()
	if e.sims != nil {
		res.SimRSS = e.sims.memory()
	}
	res.Conditions = w.conditions
	return res, nil
}

// getDevice reads one device with GET /v1/devices/:id and reports it with
// its latency from start.
func (e *Env) getDevice(ctx context.Context, id string, start time.Time, cur *atomic.Pointer[meter]) {
	resp := e.send(ctx, http.MethodGet, "/v1/devices/"+id, "", cur)
	if resp == nil {
		return
	}
	var d listedDevice
	derr := json.NewDecoder(resp.Body).Decode(&d)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	switch {
	case ctx.Err() != nil:
	case resp.StatusCode != http.StatusOK:
		report(cur, 0, "HTTP "+strconv.Itoa(resp.StatusCode), fmt.Errorf("GET /v1/devices/%s: HTTP %d", id, resp.StatusCode))
	case derr != nil || d.ID != id:
		report(cur, 0, "wrong answer", fmt.Errorf("GET /v1/devices/%s: id %q, %v", id, d.ID, derr))
	default:
		report(cur, lat, "", nil)
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// WriteText prints r for people.
func (r *IdleResult) WriteText(w io.Writer) {
	transport := "TCP (Gen 2)"
	if r.UDP {
		transport = "DTLS/UDP (Gen 3)"
	}
	procs := "in this process"
	if r.SimProcesses > 0 {
		procs = fmt.Sprintf("in %d wick sim processes", r.SimProcesses)
	}
	ka := r.KeepAlive
	if ka == "" {
		ka = "the device default"
	}
	fmt.Fprintf(w, "idle: %d %s devices %s (keep-alive %s), server a wick serve process\n", r.Devices, transport, procs, ka)
	if r.Ramp > 0 {
		fmt.Fprintf(w, "all online after         %.1f s of connecting (%.0f devices/s); setup %.1f s %s\n", r.Ramp, r.RampRate, r.Setup.Seconds, r.Setup.what())
	} else {
		fmt.Fprintf(w, "setup                    %.1f s %s\n", r.Setup.Seconds, r.Setup.what())
	}
	fmt.Fprintf(w, "server online            %d (%d parked) at the end of a %.0f s window\n", r.Online, r.Parked, r.Window)
	fmt.Fprintf(w, "server memory            RSS %s (%s before any device): %.0f B per device\n", mib(r.ServerRSS), mib(r.ServerRSSBase), r.PerDevice)
	fmt.Fprintf(w, "server CPU               %.3f cores", r.ServerCores)
	if r.UDP {
		fmt.Fprintf(w, " (%.0f datagrams/s in, %.0f wakes/s, %.0f pings/s answered without one)", r.DatagramsIn, r.Wakes, r.DemuxPings)
	} else {
		fmt.Fprintf(w, " (pings/s answered by the poller %.0f, by a session %.0f)", r.PollerPings, r.SessionPings)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "GET /v1/devices/:id      %d at %.0f/s: p50 %.1f ms  p99 %.1f ms  max %.1f ms; %d errors\n",
		r.API.Count, r.RPS, r.API.P50, r.API.P99, r.API.Max, r.APIErrors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error              %s\n", r.FirstError)
	}
	if r.SimRSS > 0 {
		fmt.Fprintf(w, "simulators               RSS %s together\n", mib(r.SimRSS))
	}
	fmt.Fprintf(w, "load average             %.2f before, %.2f after; other processes used %.2f cores\n",
		r.Conditions.LoadBefore[0], r.Conditions.LoadAfter[0], r.Conditions.CoresOthers)
}

// WriteJSON prints r as indented JSON.
func (r *IdleResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
