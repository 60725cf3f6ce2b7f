package benchmark

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/server"
)

// StormResult is the outcome of the storm scenario: every device online,
// the in-process server restarted on the same data directory and ports,
// and the time until every device is online again.
type StormResult struct {
	Devices int `json:"devices"`
	// Shutdown is how long the old server took to stop, Restart from its
	// stop until the new one listened, in seconds.
	Shutdown float64 `json:"shutdown_s"`
	Restart  float64 `json:"restart_s"`
	// Recovered is the time from the new server's start until the
	// simulator had every device online again (seconds); 0 with Complete
	// false when the wait timed out.
	Recovered float64 `json:"recovered_s"`
	Complete  bool    `json:"complete"`
	// Handshakes counts the devices' connections that reached online
	// during the storm; PeakRate is the best second.
	Handshakes int64   `json:"handshakes"`
	PeakRate   float64 `json:"peak_handshakes_per_s"`
	// Resumptions counts Gen 3 sessions the new server resumed from
	// their saved state, with no handshake; PeakResumeRate is the best
	// second. With ServerView, Handshakes and Resumptions and the online
	// counts are the server's own (its metrics): Gen 3 devices do not
	// notice a restart, they come back on their next datagram.
	Resumptions    int64   `json:"resumptions,omitempty"`
	PeakResumeRate float64 `json:"peak_resumptions_per_s,omitempty"`
	ServerView     bool    `json:"server_view,omitempty"`
	UDP            bool    `json:"udp,omitempty"`
	SimProcesses   int     `json:"sim_processes,omitempty"`
	// Calls is the latency of successful function calls to devices
	// that were back online, made by Concurrency clients during the
	// storm; CallsOffline counts calls that found their device not yet
	// back (expected, not a failure) and CallErrors other failures.
	Concurrency int     `json:"concurrency"`
	Calls       Latency `json:"calls_ms"`
	// Before is the same calls' latency in the stormBaseline before the
	// cut, with every device online: the reference for Calls.
	Before       Latency          `json:"calls_before_ms"`
	CallsOffline int64            `json:"calls_offline"`
	CallErrors   int64            `json:"call_errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds,omitempty"`
	FirstError   string           `json:"first_error,omitempty"`
	// Memory is this process's (server and simulator together, or with
	// ServerProcess the simulator and clients alone).
	Memory Memory `json:"memory"`
	// ServerProcess reports a `wick serve` child process; ServerPeakRSS
	// is then the new server's peak resident set (VmHWM) during the
	// storm and ServerCPU the CPU seconds it used until all were back.
	// ShutdownError is the old server process's non-zero exit, if any.
	ShutdownError string       `json:"shutdown_error,omitempty"`
	ServerProcess bool         `json:"server_process,omitempty"`
	ServerPeakRSS uint64       `json:"server_peak_rss_bytes,omitempty"`
	ServerCPU     float64      `json:"server_cpu_s,omitempty"`
	Setup         Setup        `json:"setup"`
	Conditions    Conditions   `json:"conditions"`
	Series        []StormPoint `json:"series"`
	// Idle is the idle scenario measured on the same devices before the
	// cut (Config.IdleFirst), nil without.
	Idle *IdleResult `json:"idle,omitempty"`
}

// StormPoint is one second of the storm.
type StormPoint struct {
	T          float64 `json:"t_s"` // since the new server started
	Online     int     `json:"online"`
	Handshakes int64   `json:"handshakes"` // in this second
	// Resumptions in this second (with StormResult.ServerView).
	Resumptions int64   `json:"resumptions,omitempty"`
	CallP99     float64 `json:"call_p99_ms"`
	Calls       int64   `json:"calls"`
	RSS         uint64  `json:"rss_bytes"`
}

// stormTimeout bounds the wait for every device to come back.
const stormTimeout = 5 * time.Minute

// stormBaseline is how long the calls run before the cut.
const stormBaseline = 3 * time.Second

// Storm runs the storm scenario on an in-process Env whose devices are all
// online: it stops the server, starts it again on the same data directory
// and ports, and while the devices reconnect (each after its own backoff,
// 0.5–1 s after the cut, as Device OS does) concurrency clients call the
// function led of random devices. progress receives a line per second.
func (e *Env) Storm(ctx context.Context, concurrency int, progress io.Writer) (*StormResult, error) {
	return e.storm(ctx, concurrency, nil, progress)
}

// storm is Storm; with back (the devices' online state, fed by
// EnvConfig.OnState) the clients call only devices online at the time,
// so that every second of the storm has calls to devices already back.
func (e *Env) storm(ctx context.Context, concurrency int, back *onlineSet, progress io.Writer) (*StormResult, error) {
	if e.srv == nil && e.proc == nil {
		return nil, fmt.Errorf("%w: storm restarts the server: it needs the in-process server (no --url)", ErrConfig)
	}
	res := &StormResult{Devices: len(e.DeviceIDs), Concurrency: concurrency, ServerProcess: e.proc != nil,
		ServerView: e.serverView(), UDP: e.udp,
		Setup: Setup{Seconds: e.Setup.Seconds(), Devices: len(e.DeviceIDs), KeysGenerated: e.KeysGenerated, Reused: e.Reused}, Conditions: conditionsNow()}
	if e.sims != nil {
		res.SimProcesses = len(e.sims.procs)
	}
	mem := sampleMemory()

	// The same clients call random devices throughout: those online
	// answer, the rest 400 or 404 (counted apart). Outside the measured
	// phases (the restart itself) nothing is recorded.
	var cur atomic.Pointer[meter]
	var phase atomic.Int64 // bumped when measuring starts or stops; a call spanning a change is not counted
	var offline atomic.Int64
	callCtx, stopCalls := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for callCtx.Err() == nil {
				id := e.DeviceIDs[rand.IntN(len(e.DeviceIDs))]
				if back != nil {
					var ok bool
					if id, ok = back.random(); !ok {
						pause(callCtx)
						continue
					}
				}
				if e.stormCall(callCtx, id, time.Now(), &cur, &phase, &offline) {
					pause(callCtx)
				}
			}
		})
	}
	defer func() { stopCalls(); wg.Wait() }()
	base := newMeter(0)
	cur.Store(base)
	phase.Add(1)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(stormBaseline):
	}
	cur.Store(nil)
	phase.Add(1)
	res.Before = base.hist.snapshot().latency()
	offline.Store(0)
	if progress != nil {
		fmt.Fprintf(progress, "storm: before the cut, all online: calls %d p50 %.1f ms p99 %.1f ms\n", res.Before.Count, res.Before.P50, res.Before.P99)
	}
	before := e.stormCounts(ctx)

	t0 := time.Now()
	if e.proc != nil {
		if err := e.proc.stop(); err != nil {
			return nil, fmt.Errorf("benchmark: storm: stop server: %w", err)
		}
		res.Shutdown = time.Since(t0).Seconds()
		res.ShutdownError = e.proc.exitErr
		if err := e.proc.start(ctx); err != nil {
			return nil, fmt.Errorf("benchmark: storm: restart server: %w", err)
		}
	} else {
		e.stopSrv()
		if err := <-e.srvDone; err != nil {
			return nil, fmt.Errorf("benchmark: storm: stop server: %w", err)
		}
		e.stopSrv = nil
		res.Shutdown = time.Since(t0).Seconds()
		if err := e.restartServer(ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	cpu0 := e.serverCPU()
	res.Restart = start.Sub(t0).Seconds()
	if res.ServerView {
		before = stormCounts{} // the new process counts from zero
	}

	cur.Store(newMeter(0))
	phase.Add(1)
	all := newMeter(0) // every successful call of the storm, for the totals
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(stormTimeout)
	last := before
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			res.finish(ctx, e, all, &cur, &offline, before, mem)
			return res, nil
		case <-tick.C:
		}
		sum := e.stormCounts(ctx)
		mt := cur.Swap(newMeter(0))
		all.merge(mt)
		s := mt.hist.snapshot()
		m := sampleMemory()
		mem = mem.peak(m)
		rss := m.RSS
		if e.proc != nil {
			var peak uint64
			rss, peak = e.proc.memory()
			res.ServerPeakRSS = max(res.ServerPeakRSS, peak)
		}
		p := StormPoint{T: time.Since(start).Seconds(), Online: sum.Online, Handshakes: sum.Handshakes - last.Handshakes,
			Resumptions: sum.Resumptions - last.Resumptions, Calls: s.total, CallP99: float64(s.quantile(0.99)) / 1e6, RSS: rss}
		last = sum
		res.Series = append(res.Series, p)
		res.PeakRate = max(res.PeakRate, float64(p.Handshakes))
		res.PeakResumeRate = max(res.PeakResumeRate, float64(p.Resumptions))
		if progress != nil {
			fmt.Fprintf(progress, "storm: t=%5.1fs online %d/%d  handshakes %d/s  resumptions %d/s  calls %d p99 %.1f ms  rss %s\n",
				p.T, p.Online, res.Devices, p.Handshakes, p.Resumptions, p.Calls, p.CallP99, mib(p.RSS))
		}
		// Every device must have come back through a new handshake: a
		// device that has not noticed the cut yet still counts online.
		// In the server's view (Gen 3), online is the new process's own.
		back := sum.Online >= res.Devices && sum.Handshakes-before.Handshakes >= int64(res.Devices)
		if res.ServerView {
			back = sum.Online >= res.Devices
		}
		if back {
			res.Recovered = time.Since(start).Seconds()
			res.ServerCPU = (e.serverCPU() - cpu0).Seconds()
			res.Complete = true
			res.finish(ctx, e, all, &cur, &offline, before, mem)
			return res, nil
		}
	}
}

// stormCounts is what the storm follows every second.
type stormCounts struct {
	Online                  int
	Handshakes, Resumptions int64
}

// serverView reports that the storm follows the server's own counts (its
// metrics) rather than the simulator's: Gen 3 devices on a server child
// process.
func (e *Env) serverView() bool { return e.udp && e.proc != nil }

// stormCounts returns the devices online and the connections so far, from
// the server's metrics (serverView) or the simulator.
func (e *Env) stormCounts(ctx context.Context) stormCounts {
	if e.serverView() {
		m, err := e.proc.serverMetrics(ctx)
		if err != nil {
			return stormCounts{}
		}
		return stormCounts{Online: int(m["wick_devices_online"]), Handshakes: int64(m["wick_udp_signatures_total"]),
			Resumptions: int64(m["wick_udp_resumptions_total"])}
	}
	s := e.simStats()
	c := stormCounts{Online: s.Online, Handshakes: s.Handshakes}
	if e.sims != nil {
		c.Resumptions = e.sims.total().Resumptions
	}
	return c
}

// serverCPU returns the CPU time of the server child process (0 in process).
func (e *Env) serverCPU() time.Duration {
	if e.proc == nil {
		return 0
	}
	return e.proc.cpu()
}

// onlineSet is the simulated devices online now, for picking one at random.
type onlineSet struct {
	mu  sync.Mutex
	pos map[string]int // index in ids
	ids []string
}

func newOnlineSet() *onlineSet { return &onlineSet{pos: make(map[string]int)} }

// set records a device's online state (EnvConfig.OnState).
func (o *onlineSet) set(id string, online bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i, in := o.pos[id]
	switch {
	case online && !in:
		o.pos[id] = len(o.ids)
		o.ids = append(o.ids, id)
	case !online && in:
		last := o.ids[len(o.ids)-1]
		o.ids[i] = last
		o.pos[last] = i
		o.ids = o.ids[:len(o.ids)-1]
		delete(o.pos, id)
	}
}

// random returns a device online now, false when there is none.
func (o *onlineSet) random() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.ids) == 0 {
		return "", false
	}
	return o.ids[rand.IntN(len(o.ids))], true
}

// finish fills the totals.
func (r *StormResult) finish(ctx context.Context, e *Env, all *meter, cur *atomic.Pointer[meter], offline *atomic.Int64, before stormCounts, mem Memory) {
	all.merge(cur.Swap(newMeter(0)))
	r.Calls = all.hist.snapshot().latency()
	r.CallsOffline = offline.Load()
	r.CallErrors = all.errs.Load()
	r.ErrorKinds, r.FirstError = all.errorKinds()
	now := e.stormCounts(ctx)
	r.Handshakes = now.Handshakes - before.Handshakes
	r.Resumptions = now.Resumptions - before.Resumptions
	if e.proc != nil {
		_, peak := e.proc.memory()
		r.ServerPeakRSS = max(r.ServerPeakRSS, peak)
	}
	r.Memory = mem.peak(sampleMemory())
	r.Conditions.finish()
}

// merge adds m's successes, errors and latencies to a.
func (a *meter) merge(m *meter) {
	a.hist.add(&m.hist)
	a.ops.Add(m.ops.Load())
	a.errs.Add(m.errs.Load())
	kinds, first := m.errorKinds()
	a.mu.Lock()
	for k, v := range kinds {
		a.kinds[k] += v
	}
	if a.first == "" {
		a.first = first
	}
	a.mu.Unlock()
}

// stormCall is call for the storm: it reports whether the device was not
// (yet) online, which the storm counts apart from errors.
func (e *Env) stormCall(ctx context.Context, id string, start time.Time, cur *atomic.Pointer[meter], phase, offlineCalls *atomic.Int64) (offline bool) {
	ph := phase.Load()
	probe := newMeter(0)
	var p atomic.Pointer[meter]
	p.Store(probe)
	e.call(ctx, id, start, &p)
	// 400: the device is offline; 404: it is back but has not described
	// its functions yet.
	mt := cur.Load()
	if phase.Load() != ph {
		mt = nil // the call began in another phase (the restart, say)
	}
	if kinds, _ := probe.errorKinds(); kinds["HTTP 400"]+kinds["HTTP 404"] > 0 {
		if mt != nil {
			offlineCalls.Add(1)
		}
		return true
	}
	if mt != nil {
		mt.merge(probe)
	}
	return probe.errs.Load() > 0 // a connection error during the restart: pause too
}

// restartServer starts a new in-process server on the stopped one's data
// directory and addresses.
func (e *Env) restartServer(ctx context.Context) error {
	srv, err := server.New(ctx, e.srvCfg, e.srvLog)
	if err != nil {
		return fmt.Errorf("benchmark: storm: restart server: %w", err)
	}
	srvCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopSrv = stop
	e.srvDone = make(chan error, 1)
	go func() { e.srvDone <- srv.Run(srvCtx) }()
	select {
	case <-srv.Ready():
	case err := <-e.srvDone:
		e.srvDone <- err
		return fmt.Errorf("benchmark: storm: restart server: %w", err)
	}
	e.srv = srv
	return nil
}

// WriteText prints r for people.
func (r *StormResult) WriteText(w io.Writer) {
	// The means are over the time until all were back, or the whole
	// wait when they never were.
	secs := r.Recovered
	if !r.Complete && len(r.Series) > 0 {
		secs = r.Series[len(r.Series)-1].T
	}
	secs = max(secs, 1e-9)
	if r.Idle != nil {
		r.Idle.WriteText(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "storm: %d devices, server restarted (shutdown %.1f s, up again after %.1f s)\n", r.Devices, r.Shutdown, r.Restart)
	if r.Complete {
		fmt.Fprintf(w, "all online again after   %.1f s (from the new server's start)\n", r.Recovered)
	} else {
		fmt.Fprintf(w, "NOT all online after     %s\n", stormTimeout)
	}
	fmt.Fprintf(w, "handshakes               %d, peak %.0f/s, mean %.0f/s\n", r.Handshakes, r.PeakRate, float64(r.Handshakes)/secs)
	if r.ServerView || r.Resumptions > 0 {
		fmt.Fprintf(w, "resumptions (no handshake) %d, peak %.0f/s, mean %.0f/s\n", r.Resumptions, r.PeakResumeRate, float64(r.Resumptions)/secs)
	}
	if r.ServerView {
		fmt.Fprintf(w, "counted by               the server (Gen 3 devices do not notice the restart; they come back on their next datagram)\n")
	}
	fmt.Fprintf(w, "calls before the cut     %d by %d clients: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
		r.Before.Count, r.Concurrency, r.Before.P50, r.Before.P99, r.Before.Max)
	fmt.Fprintf(w, "calls to devices back    %d by %d clients: p50 %.1f ms  p99 %.1f ms  max %.1f ms; %d found the device offline, %d errors\n",
		r.Calls.Count, r.Concurrency, r.Calls.P50, r.Calls.P99, r.Calls.Max, r.CallsOffline, r.CallErrors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error              %s\n", r.FirstError)
	}
	if r.ShutdownError != "" {
		fmt.Fprintf(w, "old server's exit        %s\n", r.ShutdownError)
	}
	if r.ServerProcess {
		fmt.Fprintf(w, "server process           peak RSS %s during the storm, %.1f CPU-s until all back\n", mib(r.ServerPeakRSS), r.ServerCPU)
		fmt.Fprintf(w, "memory (devices+clients) peak RSS %s, peak heap %s\n", mib(r.Memory.PeakRSS), mib(r.Memory.PeakHeapInuse))
	} else {
		fmt.Fprintf(w, "memory (server+devices)  peak RSS %s, peak heap %s\n", mib(r.Memory.PeakRSS), mib(r.Memory.PeakHeapInuse))
	}
	fmt.Fprintf(w, "per second               t online handshakes resumptions calls p99_ms rss_MiB\n")
	for _, p := range r.Series {
		fmt.Fprintf(w, "                         %.0f %d %d %d %d %.1f %.0f\n", p.T, p.Online, p.Handshakes, p.Resumptions, p.Calls, p.CallP99, float64(p.RSS)/(1<<20))
	}
}

// WriteJSON prints r as indented JSON.
func (r *StormResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// add adds o's records to h.
func (h *histogram) add(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sumUS.Add(o.sumUS.Load())
	for m := o.maxNS.Load(); ; {
		cur := h.maxNS.Load()
		if m <= cur || h.maxNS.CompareAndSwap(cur, m) {
			return
		}
	}
}
