package benchmark

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of one measurement. Its JSON form is what
// `wick bench --json` prints.
type Result struct {
	Scenario    string `json:"scenario"`
	Target      string `json:"target"` // "in-process" or the API URL
	Devices     int    `json:"devices"`
	Streams     int    `json:"streams,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	// RPS is the paced request rate (calls, list); 0: closed loop.
	RPS float64 `json:"rps,omitempty"`
	// Elapsed is the measured time in seconds.
	Elapsed float64 `json:"elapsed_s"`
	// Ops counts the successful operations: delivered events, calls or
	// device lists.
	Ops  int64   `json:"ops"`
	Rate float64 `json:"rate"`
	Unit string  `json:"unit"`
	// Errors counts failed operations; ErrorKinds splits them by kind
	// ("HTTP 429", "connection", "stream ended", ...).
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	FirstError string           `json:"first_error,omitempty"`
	// Published counts the events the devices sent during the window
	// (events); Expected is Published times the streams, the deliveries
	// a lossless fan-out makes (give or take the events in flight at the
	// window's edges); Dropped counts the events the server announced as
	// dropped for slow streams.
	Published int64 `json:"published,omitempty"`
	Expected  int64 `json:"expected,omitempty"`
	Dropped   int64 `json:"dropped,omitempty"`
	// BytesPerOp is the average response size (list).
	BytesPerOp float64 `json:"bytes_per_op,omitempty"`
	// Loopback is the list's limit measured in the same run: round trips
	// of a response of BytesPerOp bytes over loopback TCP (list.go).
	Loopback *Loopback `json:"loopback,omitempty"`
	// ProductID and PerPage are the product and page size of the list
	// scenario's product mode (--product); Pages has the latency of each
	// kind of page read (PageKinds).
	ProductID  int64        `json:"product_id,omitempty"`
	PerPage    int          `json:"per_page,omitempty"`
	Pages      []PageResult `json:"pages,omitempty"`
	Latency    Latency      `json:"latency_ms"`
	Memory     Memory       `json:"memory"`
	Setup      Setup        `json:"setup"`
	Conditions Conditions   `json:"conditions"`
	Goal       *Goal        `json:"goal,omitempty"`
	// Timeline has one point per interval of the window: where a shared
	// machine's noise shows.
	Timeline []Point `json:"timeline"`
}

// Latency is the latency distribution of the successful operations in
// milliseconds: publish to delivery for events, request to complete
// response for calls and lists.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Memory is this process's memory during the window (in process that is
// server, clients and devices together), sampled every interval.
type Memory struct {
	HeapInuse     uint64 `json:"heap_inuse_bytes"`      // at the end
	PeakHeapInuse uint64 `json:"peak_heap_inuse_bytes"` // largest sample
	RSS           uint64 `json:"rss_bytes"`             // at the end; 0 where unknown
	PeakRSS       uint64 `json:"peak_rss_bytes"`        // largest sample
	Goroutines    int    `json:"goroutines"`            // at the end

	lastHeap, lastRSS uint64
}

// sampleMemory reads the heap, the resident size and the goroutines now.
func sampleMemory() Memory {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := readRSS()
	return Memory{HeapInuse: ms.HeapInuse, PeakHeapInuse: ms.HeapInuse, RSS: rss, PeakRSS: rss,
		Goroutines: runtime.NumGoroutine(), lastHeap: ms.HeapInuse, lastRSS: rss}
}

// peak returns the later sample s with the peaks of both.
func (m Memory) peak(s Memory) Memory {
	s.PeakHeapInuse = max(s.PeakHeapInuse, m.PeakHeapInuse)
	s.PeakRSS = max(s.PeakRSS, m.PeakRSS)
	return s
}

// readRSS returns the resident set size from /proc (Linux), else 0.
func readRSS() uint64 {
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

// Setup describes the environment's preparation.
type Setup struct {
	Seconds       float64 `json:"seconds"` // server start, keys, provisioning, connections, readiness
	Devices       int     `json:"devices"`
	KeysGenerated int     `json:"keys_generated"` // the rest came from the keys directory
	// Reused reports devices provisioned by an earlier run into --data-dir.
	Reused bool `json:"reused,omitempty"`
}

// what names the setup's steps for the text results.
func (s Setup) what() string {
	if s.Reused {
		return "devices reused from --data-dir"
	}
	return "with provisioning"
}

// Conditions records what the figures were measured on.
type Conditions struct {
	Start      string     `json:"start"` // RFC 3339
	Host       string     `json:"host"`
	GoVersion  string     `json:"go_version"`
	OS         string     `json:"os"`
	CPUs       int        `json:"cpus"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	CPUModel   string     `json:"cpu_model,omitempty"`
	LoadBefore [3]float64 `json:"load_before"` // load averages 1, 5, 15 min (Linux)
	LoadAfter  [3]float64 `json:"load_after"`
	// CoresUsed is the CPU this process used during the window, in cores
	// (CPU seconds per second); CoresOthers is what the rest of the
	// machine used meanwhile (Linux), the measure of interference on a
	// shared machine.
	CoresUsed   float64 `json:"cores_used"`
	CoresOthers float64 `json:"cores_others"`

	start            time.Time
	procCPU, machine time.Duration // at start
}

func conditionsNow() Conditions {
	host, _ := os.Hostname()
	return Conditions{
		Start:      time.Now().Format(time.RFC3339),
		Host:       host,
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		LoadBefore: loadAverage(),
		start:      time.Now(),
		procCPU:    processCPU(),
		machine:    machineBusy(),
	}
}

// finish records the load and the CPU use since conditionsNow.
func (c *Conditions) finish() {
	c.LoadAfter = loadAverage()
	wall := time.Since(c.start).Seconds()
	if wall <= 0 {
		return
	}
	used := (processCPU() - c.procCPU).Seconds()
	c.CoresUsed = used / wall
	if m := machineBusy(); m > 0 && c.machine > 0 {
		c.CoresOthers = max((m-c.machine).Seconds()-used, 0) / wall
	}
}

// machineBusy returns the CPU time all CPUs spent busy (not idle or
// waiting for I/O) since boot, from /proc/stat; zero where unknown.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user already
			continue
		}
		busy += n
	}
	const userHZ = 100 // USER_HZ, 100 on every Linux architecture Go supports
	return time.Duration(busy) * time.Second / userHZ
}

// loadAverage reads /proc/loadavg; zeros where unknown.
func loadAverage() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// cpuModel reads the first model name of /proc/cpuinfo; "" where unknown.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Goal is the target of issue 4 for a scenario and whether the result
// meets it.
type Goal struct {
	Text string `json:"text"`
	Met  bool   `json:"met"`
}

// goal returns the target for the scenario, nil for none. A
// paced run (RPS) meets a throughput target when it is paced at or above
// it and keeps up within 1%.
func goal(scenario string, r *Result) *Goal {
	rateAtLeast := func(target float64) bool {
		if r.RPS > 0 {
			return r.RPS >= target && r.Rate >= 0.99*r.RPS
		}
		return r.Rate >= target
	}
	switch scenario {
	case Events:
		return &Goal{Text: "≥ 50,000 delivered/s, p99 < 50 ms (1,000 devices, 100 streams)",
			Met: rateAtLeast(50000) && r.Latency.P99 < 50 && r.Errors == 0}
	case Calls:
		return &Goal{Text: "≥ 5,000 calls/s, p99 < 20 ms (1,000 devices)",
			Met: rateAtLeast(5000) && r.Latency.P99 < 20 && r.Errors == 0}
	}
	return nil
}

// WriteText prints r as aligned lines for people.
func (r *Result) WriteText(w io.Writer) {
	shape := fmt.Sprintf("%d devices", r.Devices)
	switch r.Scenario {
	case Events:
		shape += fmt.Sprintf(", %d streams", r.Streams)
	default:
		shape += fmt.Sprintf(", %d concurrent clients", r.Concurrency)
		if r.RPS > 0 {
			shape += fmt.Sprintf(" paced at %s/s", thousands(int64(r.RPS+0.5)))
		}
	}
	if r.ProductID != 0 {
		shape = fmt.Sprintf("product %d of %d devices (none connected), pages of %d, %d concurrent clients", r.ProductID, r.Devices, r.PerPage, r.Concurrency)
		if r.RPS > 0 {
			shape += fmt.Sprintf(" paced at %s/s", thousands(int64(r.RPS+0.5)))
		}
	}
	fmt.Fprintf(w, "wick bench %s: %s, %s server\n", r.Scenario, shape, r.Target)
	fmt.Fprintf(w, "  throughput   %s %s (%s in %.1fs)\n", thousands(int64(r.Rate+0.5)), r.Unit, thousands(r.Ops), r.Elapsed)
	l := r.Latency
	fmt.Fprintf(w, "  latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (mean %.2f ms)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if r.Scenario == Events {
		fmt.Fprintf(w, "  events       %s published, %s deliveries expected, %s dropped\n",
			thousands(r.Published), thousands(r.Expected), thousands(r.Dropped))
	}
	if r.BytesPerOp > 0 {
		fmt.Fprintf(w, "  response     %s bytes\n", thousands(int64(r.BytesPerOp+0.5)))
	}
	for _, p := range r.Pages {
		fmt.Fprintf(w, "  %-12s %s pages (%s): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
			p.Kind, thousands(p.Ops), p.Query, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max)
	}
	if lb := r.Loopback; lb != nil {
		fmt.Fprintf(w, "  limit        raw loopback TCP write of the same bytes, one connection: %.0f/s, p50 %.2f ms (lists/s at %.1f%% of it)\n",
			lb.PerSec, lb.P50, 100*r.Rate/lb.PerSec)
	}
	fmt.Fprintf(w, "  errors       %d", r.Errors)
	if len(r.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, v := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, " (%s; first: %s)", strings.Join(kinds, ", "), r.FirstError)
	}
	fmt.Fprintln(w)
	who := "server, clients and devices"
	if r.Target != "in-process" {
		who = "clients and devices only"
	}
	m := r.Memory
	fmt.Fprintf(w, "  memory       heap %s in use (peak %s), RSS %s (peak %s), %s goroutines (%s)\n",
		mib(m.HeapInuse), mib(m.PeakHeapInuse), mib(m.RSS), mib(m.PeakRSS), thousands(int64(m.Goroutines)), who)
	reused := ""
	if r.Setup.Reused {
		reused = ", " + r.Setup.what()
	}
	fmt.Fprintf(w, "  setup        %d devices ready in %.1fs (%d keys generated%s)\n", r.Setup.Devices, r.Setup.Seconds, r.Setup.KeysGenerated, reused)
	c := r.Conditions
	fmt.Fprintf(w, "  conditions   %s on %s, %s %s, %d CPUs (GOMAXPROCS %d) %s, load %.2f → %.2f\n",
		c.Start, c.Host, c.GoVersion, c.OS, c.CPUs, c.GOMAXPROCS, c.CPUModel, c.LoadBefore[0], c.LoadAfter[0])
	fmt.Fprintf(w, "  cpu          %.2f cores used by this process, %.2f by other processes\n", c.CoresUsed, c.CoresOthers)
	if r.Goal != nil {
		verdict := "missed"
		if r.Goal.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "  goal         %s: %s\n", r.Goal.Text, verdict)
	}
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// mib formats a byte count in MiB; "?" for zero (unknown).
func mib(n uint64) string {
	if n == 0 {
		return "?"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
