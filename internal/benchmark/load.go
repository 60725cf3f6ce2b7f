package benchmark

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxOpsWait caps a measurement bounded by Measure.Ops alone.
const maxOpsWait = 5 * time.Minute

// Measure bounds and observes one measurement.
type Measure struct {
	// Warmup is how long the load runs before the measurement starts.
	Warmup time.Duration
	// Duration is the length of the measurement. With Ops it caps the
	// wait (zero: 5 minutes).
	Duration time.Duration
	// RPS paces the request scenarios (calls, list) at this many requests
	// per second, open loop, with latency counted from each request's
	// scheduled time; zero sends as fast as the clients go (closed loop).
	// The events scenario's load is set by the devices' publishing period.
	RPS float64
	// Ops ends the measurement once this many operations completed,
	// successes and errors together (for `go test -bench`); zero means
	// Duration alone.
	Ops int64
	// Interval is the period of progress ticks and memory samples
	// (default 1 s).
	Interval time.Duration
	// Progress, if set, is called every Interval during the measurement.
	Progress func(Tick)
	// OnStart and OnStop, if set, are called when the measured window
	// starts and ends (a CPU profile, say).
	OnStart, OnStop func()
}

// meter counts the operations of one measured window. Load generators
// find the current meter through an atomic pointer, nil outside windows.
type meter struct {
	target int64 // ops+errs that end the window; 0: none
	ops    atomic.Int64
	errs   atomic.Int64
	bytes  atomic.Int64 // response bytes (list)
	hist   histogram
	done   chan struct{} // closed once target is reached
	once   sync.Once

	mu    sync.Mutex
	kinds map[string]int64 // guarded by mu
	first string           // guarded by mu
}

func newMeter(target int64) *meter {
	return &meter{target: target, done: make(chan struct{}), kinds: map[string]int64{}}
}

// ok records a successful operation that took lat.
func (m *meter) ok(lat time.Duration) {
	m.hist.record(lat)
	m.check(m.ops.Add(1) + m.errs.Load())
}

// fail records a failed operation of kind (a short label such as
// "HTTP 429"); the first error is kept whole.
func (m *meter) fail(kind string, err error) {
	m.mu.Lock()
	m.kinds[kind]++
	if m.first == "" && err != nil {
		m.first = err.Error()
	}
	m.mu.Unlock()
	m.check(m.errs.Add(1) + m.ops.Load())
}

// check ends the window once n operations reach the target.
func (m *meter) check(n int64) {
	if m.target > 0 && n >= m.target {
		m.once.Do(func() { close(m.done) })
	}
}

// errorKinds returns a copy of the error counts by kind, nil for none.
func (m *meter) errorKinds() (map[string]int64, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.kinds) == 0 {
		return nil, ""
	}
	out := make(map[string]int64, len(m.kinds))
	for k, v := range m.kinds {
		out[k] = v
	}
	return out, m.first
}

// Tick is the progress of a measurement over one interval.
type Tick struct {
	Scenario string
	Elapsed  time.Duration // since the measurement started
	Ops      int64         // operations in the interval
	Rate     float64       // per second over the interval
	Unit     string        // "delivered/s", "calls/s", "lists/s"
	P50, P99 time.Duration // latency over the interval
	Errors   int64         // since the measurement started
	Dropped  int64         // events announced dropped since the start
	Heap     uint64        // Go heap in use, bytes
	RSS      uint64        // resident set size, bytes (0 where unknown)
}

// String renders t as one progress line.
func (t Tick) String() string {
	s := fmt.Sprintf("bench: %-6s %5.1fs %10s %s  p50 %s  p99 %s  errors %d",
		t.Scenario, t.Elapsed.Seconds(), thousands(int64(t.Rate+0.5)), t.Unit, ms(t.P50), ms(t.P99), t.Errors)
	if t.Scenario == Events {
		s += fmt.Sprintf("  dropped %d", t.Dropped)
	}
	return s + fmt.Sprintf("  heap %s  rss %s", mib(t.Heap), mib(t.RSS))
}

// Point is a Tick in the result's timeline, in JSON-friendly units.
type Point struct {
	Seconds float64 `json:"t_s"` // since the measurement started
	Rate    float64 `json:"rate"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Errors  int64   `json:"errors"`
	Dropped int64   `json:"dropped,omitempty"`
	Heap    uint64  `json:"heap_inuse_bytes"`
	RSS     uint64  `json:"rss_bytes"`
}

// point converts t for the timeline.
func (t Tick) point() Point {
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Point{Seconds: t.Elapsed.Seconds(), Rate: t.Rate, P50: msf(t.P50), P99: msf(t.P99),
		Errors: t.Errors, Dropped: t.Dropped, Heap: t.Heap, RSS: t.RSS}
}

// window is what measure observed.
type window struct {
	meter      *meter
	elapsed    time.Duration
	memory     Memory
	conditions Conditions
	timeline   []Point
}

// measure runs one measured window over a load that is already running:
// after m.Warmup it installs a fresh meter in cur, ticks every m.Interval
// until m.Duration passes, m.Ops operations are done or ctx ends, and
// removes the meter. dropped, if not nil, reads a cumulative count of lost
// events for the ticks.
func measure(ctx context.Context, scenario, unit string, m Measure, cur *atomic.Pointer[meter], dropped func() int64) (window, error) {
	if m.Duration <= 0 && m.Ops <= 0 {
		return window{}, errors.New("benchmark: a measurement needs a duration or a number of operations")
	}
	limit := m.Duration
	if m.Ops > 0 && limit <= 0 {
		limit = maxOpsWait
	}
	interval := m.Interval
	if interval <= 0 {
		interval = time.Second
	}
	if m.Warmup > 0 {
		select {
		case <-time.After(m.Warmup):
		case <-ctx.Done():
			return window{}, ctx.Err()
		}
	}
	cond := conditionsNow()
	mt := newMeter(m.Ops)
	var drop0 int64
	if dropped != nil {
		drop0 = dropped()
	}
	if m.OnStart != nil {
		m.OnStart()
	}
	start := time.Now()
	cur.Store(mt)
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	mem := sampleMemory()
	prev, prevOps, prevTime := (*snapshot)(nil), int64(0), start
	var timeline []Point
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-mt.done:
			break loop
		case <-deadline.C:
			break loop
		case now := <-ticker.C:
			mem = mem.peak(sampleMemory())
			snap := mt.hist.snapshot()
			d := snap.since(prev)
			ops := mt.ops.Load()
			t := Tick{Scenario: scenario, Elapsed: now.Sub(start), Ops: ops - prevOps, Unit: unit,
				Rate: float64(ops-prevOps) / now.Sub(prevTime).Seconds(), P50: d.quantile(0.5), P99: d.quantile(0.99),
				Errors: mt.errs.Load(), Heap: mem.lastHeap, RSS: mem.lastRSS}
			if dropped != nil {
				t.Dropped = dropped() - drop0
			}
			timeline = append(timeline, t.point())
			if m.Progress != nil {
				m.Progress(t)
			}
			prev, prevOps, prevTime = snap, ops, now
		}
	}
	cur.Store(nil)
	elapsed := time.Since(start)
	if m.OnStop != nil {
		m.OnStop()
	}
	mem = mem.peak(sampleMemory())
	if ctx.Err() != nil {
		return window{}, ctx.Err()
	}
	cond.finish()
	return window{meter: mt, elapsed: elapsed, memory: mem, conditions: cond, timeline: timeline}, nil
}

// result fills the common fields of a Result from w.
func (e *Env) result(scenario, unit string, w window) *Result {
	mt := w.meter
	snap := mt.hist.snapshot()
	kinds, first := mt.errorKinds()
	r := &Result{
		Scenario:   scenario,
		Target:     "in-process",
		Devices:    len(e.DeviceIDs),
		Elapsed:    w.elapsed.Seconds(),
		Ops:        snap.total, // not mt.ops: a late report may land between the two reads
		Unit:       unit,
		Errors:     mt.errs.Load(),
		ErrorKinds: kinds,
		FirstError: first,
		Latency:    snap.latency(),
		Memory:     w.memory,
		Setup:      Setup{Seconds: e.Setup.Seconds(), Devices: len(e.DeviceIDs), KeysGenerated: e.KeysGenerated, Reused: e.Reused},
		Conditions: w.conditions,
		Timeline:   w.timeline,
	}
	if !e.InProcess {
		r.Target = e.URL
	}
	if w.elapsed > 0 {
		r.Rate = float64(r.Ops) / w.elapsed.Seconds()
	}
	return r
}

// requestLoad runs concurrency workers that repeat do until ctx ends or
// the returned stop function is called; do reports to the current meter.
// With rps > 0 the workers share a schedule of rps requests per second
// (open loop) and do gets each request's scheduled time, from which its
// latency counts: a server that falls behind shows as latency rather than
// as fewer requests (no coordinated omission). Without, do gets the time
// the worker started the request. stop lets the requests under way finish
// rather than cancelling them, so that the server sees no aborted
// requests.
func requestLoad(ctx context.Context, concurrency int, rps float64, do func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter])) (cur *atomic.Pointer[meter], stop func()) {
	cur = new(atomic.Pointer[meter])
	stopc := make(chan struct{})
	var p *pacer
	if rps > 0 {
		p = &pacer{start: time.Now(), interval: float64(time.Second) / rps}
	}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start, ok := p.wait(ctx, stopc)
				if !ok {
					return
				}
				do(ctx, start, cur)
			}
		}()
	}
	return cur, func() {
		close(stopc)
		wg.Wait()
	}
}

// pacer hands out request times spaced interval apart from start.
type pacer struct {
	start    time.Time
	interval float64 // nanoseconds
	next     atomic.Int64
}

// wait sleeps until the next free slot of the schedule and returns it;
// without a pacer (nil) it returns now. It returns false when ctx ends or
// stop is closed first.
func (p *pacer) wait(ctx context.Context, stop <-chan struct{}) (time.Time, bool) {
	select {
	case <-stop:
		return time.Time{}, false
	default:
	}
	if p == nil {
		return time.Now(), true
	}
	at := p.start.Add(time.Duration(float64(p.next.Add(1)-1) * p.interval))
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
	return at, true
}

// Calls runs the calls scenario: concurrency clients call the function
// led ("on") of the devices in turn, through POST /v1/devices/:id/led, and
// check that it returned 1; m.RPS paces them.
func (e *Env) Calls(ctx context.Context, concurrency int, m Measure) (*Result, error) {
	var next atomic.Uint64
	cur, stop := requestLoad(ctx, concurrency, m.RPS, func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
		id := e.DeviceIDs[int(next.Add(1)%uint64(len(e.DeviceIDs)))]
		e.call(ctx, id, start, cur)
	})
	w, err := measure(ctx, Calls, "calls/s", m, cur, nil)
	stop()
	if err != nil {
		return nil, err
	}
	r := e.result(Calls, "calls/s", w)
	r.Concurrency, r.RPS = concurrency, m.RPS
	r.Goal = goal(Calls, r)
	return r, nil
}

// answerBufs hold the answers of calls: enough for the small JSON of a
// function call, reused so that the client allocates little per call.
var answerBufs = sync.Pool{New: func() any { return new([1024]byte) }}

// callOK is in the answer of a successful led("on").
var callOK = []byte(`"return_value":1`)

// call makes one function call and reports it with its latency from
// start.
func (e *Env) call(ctx context.Context, id string, start time.Time, cur *atomic.Pointer[meter]) {
	path := "/v1/devices/" + id + "/led"
	resp := e.send(ctx, http.MethodPost, path, "arg=on", cur)
	if resp == nil {
		return
	}
	bp := answerBufs.Get().(*[1024]byte)
	defer answerBufs.Put(bp)
	buf := bp[:]
	n, _ := io.ReadFull(resp.Body, buf)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	switch {
	case ctx.Err() != nil:
	case resp.StatusCode != http.StatusOK:
		report(cur, 0, "HTTP "+strconv.Itoa(resp.StatusCode), fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(buf[:n])))
	case !bytes.Contains(buf[:n], callOK):
		report(cur, 0, "wrong answer", fmt.Errorf("POST %s: %s", path, buf[:n]))
	default:
		report(cur, lat, "", nil)
	}
}

// send makes one API request with the benchmark's token, and a form body
// when form is not empty. When the request fails before an answer it
// reports the failure to cur (unless ctx ended, and then pauses) and
// returns nil; else the caller reads and closes the answer.
func (e *Env) send(ctx context.Context, method, path, form string, cur *atomic.Pointer[meter]) *http.Response {
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, body)
	if err != nil {
		report(cur, 0, "request", err)
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			report(cur, 0, "connection", err)
			pause(ctx)
		}
		return nil
	}
	return resp
}

// List runs the list scenario: concurrency clients read GET /v1/devices
// and check that each answer is a complete JSON array; m.RPS paces them.
func (e *Env) List(ctx context.Context, concurrency int, m Measure) (*Result, error) {
	cur, stop := requestLoad(ctx, concurrency, m.RPS, func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
		e.list(ctx, start, cur)
	})
	w, err := measure(ctx, List, "lists/s", m, cur, nil)
	stop()
	if err != nil {
		return nil, err
	}
	r := e.result(List, "lists/s", w)
	r.Concurrency, r.RPS = concurrency, m.RPS
	if r.Ops > 0 {
		r.BytesPerOp = float64(w.meter.bytes.Load()) / float64(r.Ops)
		if lb, err := measureLoopback(ctx, int(r.BytesPerOp+0.5), time.Second); err == nil {
			r.Loopback = lb
		}
	}
	r.Goal = goal(List, r)
	return r, nil
}

// list reads the device list once and reports it with its latency from
// start.
func (e *Env) list(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
	resp := e.send(ctx, http.MethodGet, "/v1/devices", "", cur)
	if resp == nil {
		return
	}
	var c edgeCounter
	_, rerr := io.Copy(&c, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	switch {
	case ctx.Err() != nil:
	case resp.StatusCode != http.StatusOK:
		report(cur, 0, "HTTP "+strconv.Itoa(resp.StatusCode), fmt.Errorf("GET /v1/devices: HTTP %d", resp.StatusCode))
	case rerr != nil:
		report(cur, 0, "read", fmt.Errorf("GET /v1/devices: %w", rerr))
	case c.first != '[' || c.last != ']' || c.n < int64(len(e.DeviceIDs))*2:
		report(cur, 0, "wrong answer", fmt.Errorf("GET /v1/devices: %d bytes from %q to %q", c.n, c.first, c.last))
	default:
		if mt := cur.Load(); mt != nil {
			mt.bytes.Add(c.n)
		}
		report(cur, lat, "", nil)
	}
}

// edgeCounter is an io.Writer that keeps the size and the first and last
// non-space bytes of what is written.
type edgeCounter struct {
	n           int64
	first, last byte
}

func (c *edgeCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			if c.first == 0 {
				c.first = b
			}
			break
		}
	}
	for i := len(p) - 1; i >= 0; i-- {
		if b := p[i]; b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			c.last = b
			break
		}
	}
	c.n += int64(len(p))
	return len(p), nil
}

// report records an operation in the current meter, if a window is open:
// a success taking lat when kind is "", else an error of that kind.
func report(cur *atomic.Pointer[meter], lat time.Duration, kind string, err error) {
	mt := cur.Load()
	if mt == nil {
		return
	}
	if kind == "" {
		mt.ok(lat)
		return
	}
	mt.fail(kind, err)
}

// pause waits a little after a connection error, so that a refusing
// server is not hammered in a tight loop.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Millisecond):
	}
}
