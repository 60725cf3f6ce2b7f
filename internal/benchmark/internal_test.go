package benchmark

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	tests := []struct {
		v      uint64
		bucket int
	}{
		{0, 0}, {1, 1}, {127, 127}, {128, 128}, {129, 128}, {130, 129}, {255, 191}, {256, 192},
		{1 << 20, (20-histSubBits)*histSub + histSub}, {math.MaxUint64, histBuckets - 1},
	}
	for _, tt := range tests {
		if got := bucketOf(tt.v); got != tt.bucket {
			t.Errorf("bucketOf(%d) = %d; want %d", tt.v, got, tt.bucket)
		}
	}
	// Every bucket's range maps back to it, and the ranges tile the line.
	next := uint64(0)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d is [%d, %d]; want it to start at %d", i, lo, hi, next)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d: [%d, %d] maps to %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if i >= 2*histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d: [%d, %d] wider than 1/%d of its start", i, lo, hi, histSub)
		}
		next = hi + 1
	}
	if next != 0 { // wrapped past MaxUint64
		t.Errorf("the last bucket ends before MaxUint64 (next %d)", next)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name string
		gen  func(i int) time.Duration
		n    int
	}{
		{"uniform 0-100ms", func(int) time.Duration { return time.Duration(rand.Int64N(int64(100 * time.Millisecond))) }, 100000},
		{"exponential 2ms", func(int) time.Duration { return time.Duration(rand.ExpFloat64() * float64(2*time.Millisecond)) }, 100000},
		{"constant 7ms", func(int) time.Duration { return 7 * time.Millisecond }, 1000},
		{"sub-millisecond", func(i int) time.Duration { return time.Duration(i%100) * time.Microsecond }, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			vals := make([]time.Duration, tt.n)
			for i := range vals {
				vals[i] = tt.gen(i)
				h.record(vals[i])
			}
			slices.Sort(vals)
			s := h.snapshot()
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				want := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := s.quantile(q)
				// Within a bucket: 1/histSub relative, or a microsecond.
				tol := max(time.Duration(float64(want)/histSub), time.Microsecond)
				if diff := got - want; diff > tol || diff < -tol {
					t.Errorf("q%.3f = %v; want %v ± %v", q, got, want, tol)
				}
			}
			if got := time.Duration(s.maxNS); got != vals[len(vals)-1] {
				t.Errorf("max %v; want %v", got, vals[len(vals)-1])
			}
			if s.total != int64(tt.n) {
				t.Errorf("total %d; want %d", s.total, tt.n)
			}
		})
	}
	var empty histogram
	if q := empty.snapshot().quantile(0.99); q != 0 {
		t.Errorf("empty quantile %v", q)
	}
}

func TestSnapshotSince(t *testing.T) {
	var h histogram
	for range 100 {
		h.record(time.Millisecond)
	}
	first := h.snapshot()
	for range 100 {
		h.record(40 * time.Millisecond)
	}
	d := h.snapshot().since(first)
	if d.total != 100 {
		t.Fatalf("interval total %d; want 100", d.total)
	}
	if p50 := d.quantile(0.5); p50 < 39*time.Millisecond || p50 > 41*time.Millisecond {
		t.Errorf("interval p50 %v; want about 40ms (the first second's 1ms records excluded)", p50)
	}
	if m := d.mean(); m < 39*time.Millisecond || m > 41*time.Millisecond {
		t.Errorf("interval mean %v", m)
	}
}

func TestParseStamp(t *testing.T) {
	tests := []struct {
		line string
		want int64
		ok   bool
	}{
		{`data: {"data":"1763930000123456789","ttl":60,"published_at":"2025-11-23T21:00:00.000Z","coreid":"be00"}` + "\n", 1763930000123456789, true},
		{`data: {"data":"0","ttl":60}`, 0, true},
		{`data: {"data":"9223372036854775807"}`, math.MaxInt64, true},
		{`data: {"data":"9223372036854775808"}`, 0, false}, // overflows int64
		{`data: {"data":"2048","ttl":60}`, 2048, true},
		{`data: {"data":"21.5","ttl":60}`, 0, false},
		{`data: {"data":"","ttl":60}`, 0, false},
		{`data: {"data":null,"ttl":60}`, 0, false},
		{`data: {"data":"-5"}`, 0, false},
		{`event: wick-bench`, 0, false},
		{`: 3 events dropped: this stream is reading too slowly`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseStamp([]byte(tt.line))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStamp(%q) = %d, %v; want %d, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseDropped(t *testing.T) {
	tests := []struct {
		line string
		want int64
		ok   bool
	}{
		{": 3 events dropped: this stream is reading too slowly\n", 3, true},
		{": 1024 events dropped: this stream is reading too slowly\n", 1024, true},
		{": events dropped", 0, false},
		{":ok\n", 0, false},
		{":\n", 0, false},
		{": x events dropped", 0, false},
		{": 99999999999999999999 events dropped", 0, false},
		{`data: {"data":"1"}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDropped([]byte(tt.line))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseDropped(%q) = %d, %v; want %d, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseStamp checks parseStamp against strconv on the same digits.
func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{`data: {"data":"1763930000123456789","ttl":60}`, `data: {"data":"9223372036854775808"}`,
		`data: {"data":"","ttl":60}`, `data: {"data":"12`, `event: x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := parseStamp(line)
		rest, isData := bytes.CutPrefix(line, dataPrefix)
		end := bytes.IndexByte(rest, '"')
		digits := ""
		if isData && end > 0 {
			digits = string(rest[:end])
		}
		want, err := strconv.ParseInt(digits, 10, 64)
		wantOK := err == nil && digits != "" && !strings.ContainsAny(digits, "+-")
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("parseStamp(%q) = %d, %v; strconv says %d, %v", line, got, ok, want, wantOK)
		}
	})
}

// FuzzParseDropped checks that parseDropped accepts exactly the comments
// of the server's shape, with the count strconv reads.
func FuzzParseDropped(f *testing.F) {
	for _, s := range []string{": 3 events dropped: this stream is reading too slowly\n", ":ok\n", ": 99999999999999999999 events dropped"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := parseDropped(line)
		if !ok {
			return
		}
		rest := bytes.TrimPrefix(line, dropPrefix)
		digits := string(rest[:bytes.Index(rest, dropSuffix)])
		want, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || want != got || strings.ContainsAny(digits, "+-") {
			t.Fatalf("parseDropped(%q) = %d; strconv says %d, %v", line, got, want, err)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
		check   func(Config) bool
	}{
		{name: "calls defaults", mod: func(c *Config) { c.Scenario = Calls },
			check: func(c Config) bool {
				return c.Concurrency == DefaultCallConcurrency && c.KeysDir != "" && c.Devices == 1000 && c.Every == time.Second
			}},
		{name: "list concurrency", mod: func(c *Config) { c.Scenario = List },
			check: func(c Config) bool { return c.Concurrency == DefaultListConcurrency }},
		{name: "explicit concurrency", mod: func(c *Config) { c.Scenario, c.Concurrency = List, 3 },
			check: func(c Config) bool { return c.Concurrency == 3 }},
		{name: "url", mod: func(c *Config) {
			c.Scenario, c.URL, c.Token, c.DeviceServer, c.ServerKey = Events, "http://h:8080/", "t", "h:5683", "/k.pem"
		}, check: func(c Config) bool { return c.URL == "http://h:8080" }},
		{name: "no scenario", mod: func(c *Config) {}, wantErr: "scenario is required"},
		{name: "unknown scenario", mod: func(c *Config) { c.Scenario = "fast" }, wantErr: `unknown scenario "fast"`},
		{name: "no devices", mod: func(c *Config) { c.Scenario, c.Devices = Calls, 0 }, wantErr: "--devices"},
		{name: "no streams", mod: func(c *Config) { c.Scenario, c.Streams = Events, 0 }, wantErr: "--streams"},
		{name: "streams ignored by calls", mod: func(c *Config) { c.Scenario, c.Streams = Calls, 0 }, check: func(Config) bool { return true }},
		{name: "negative concurrency", mod: func(c *Config) { c.Scenario, c.Concurrency = Calls, -1 }, wantErr: "--concurrency"},
		{name: "zero duration", mod: func(c *Config) { c.Scenario, c.Duration = Calls, 0 }, wantErr: "--duration"},
		{name: "zero every", mod: func(c *Config) { c.Scenario, c.Every = Events, 0 }, wantErr: "--every"},
		{name: "too many devices", mod: func(c *Config) { c.Scenario, c.IDPrefix, c.Devices = Calls, "0123456789abcdef012345", 300 }, wantErr: "does not fit"},
		{name: "bad bind", mod: func(c *Config) { c.Scenario, c.Bind = Calls, []string{"localhost"} }, wantErr: "not an IP"},
		{name: "url without token", mod: func(c *Config) { c.Scenario, c.URL = Calls, "http://h" }, wantErr: "--token"},
		{name: "url without device server", mod: func(c *Config) { c.Scenario, c.URL, c.Token = Calls, "http://h", "t" }, wantErr: "--device-server"},
		{name: "url without server key", mod: func(c *Config) {
			c.Scenario, c.URL, c.Token, c.DeviceServer = Calls, "http://h", "t", "h:1"
		}, wantErr: "--server-key"},
		{name: "bad url", mod: func(c *Config) { c.Scenario, c.URL = Calls, "h:8080" }, wantErr: "http(s) URL"},
		{name: "token without url", mod: func(c *Config) { c.Scenario, c.Token = Calls, "t" }, wantErr: "go with --url"},
		{name: "rps", mod: func(c *Config) { c.Scenario, c.RPS = Calls, 5000 }, check: func(c Config) bool { return c.RPS == 5000 }},
		{name: "negative rps", mod: func(c *Config) { c.Scenario, c.RPS = List, -1 }, wantErr: "--rps"},
		{name: "rps with events", mod: func(c *Config) { c.Scenario, c.RPS = Events, 10 }, wantErr: "--every"},
		{name: "bad log level", mod: func(c *Config) { c.Scenario, c.LogLevel = Calls, "loud" }, wantErr: "--log-level"},
		{name: "storm concurrency", mod: func(c *Config) { c.Scenario = Storm },
			check: func(c Config) bool { return c.Concurrency == DefaultListConcurrency }},
		{name: "storm with url", mod: func(c *Config) {
			c.Scenario, c.URL, c.Token, c.DeviceServer, c.ServerKey = Storm, "http://h:8080/", "t", "h:5683", "/k.pem"
		}, wantErr: "no --url"},
		{name: "storm over udp in process", mod: func(c *Config) { c.Scenario, c.UDP = Storm, true }, wantErr: "needs --server-process"},
		{name: "storm over udp", mod: func(c *Config) { c.Scenario, c.UDP, c.ServerProcess = Storm, true, true },
			check: func(c Config) bool { return c.UDP }},
		{name: "idle in process", mod: func(c *Config) { c.Scenario = Idle }, wantErr: "needs --server-process"},
		{name: "idle", mod: func(c *Config) { c.Scenario, c.ServerProcess, c.SimProcesses = Idle, true, 6 },
			check: func(c Config) bool { return c.RPS == DefaultIdleRPS && c.Concurrency == DefaultListConcurrency }},
		{name: "idle first in process", mod: func(c *Config) { c.Scenario, c.IdleFirst = Storm, true }, wantErr: "--idle-first"},
		{name: "idle first", mod: func(c *Config) { c.Scenario, c.IdleFirst, c.ServerProcess = Storm, true, true },
			check: func(c Config) bool { return c.RPS == DefaultIdleRPS }},
		{name: "negative sim processes", mod: func(c *Config) { c.Scenario, c.SimProcesses = Calls, -1 }, wantErr: "--sim-processes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want ErrConfig mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{thousands(0), "0"}, {thousands(999), "999"}, {thousands(1000), "1,000"},
		{thousands(1234567), "1,234,567"}, {thousands(-50000), "-50,000"},
		{ms(1500 * time.Microsecond), "1.50 ms"}, {mib(0), "?"}, {mib(3 << 20), "3.0 MiB"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

func TestEdgeCounter(t *testing.T) {
	var c edgeCounter
	for _, p := range []string{"\n  [", `{"id":1},`, `{"id":2}`, "]\n", "", "  "} {
		c.Write([]byte(p))
	}
	if c.first != '[' || c.last != ']' || c.n != int64(len("\n  [{\"id\":1},{\"id\":2}]\n  ")) {
		t.Errorf("edges %q %q, %d bytes", c.first, c.last, c.n)
	}
}

func TestMeter(t *testing.T) {
	m := newMeter(3)
	m.ok(time.Millisecond)
	m.fail("HTTP 429", errors.New("first"))
	select {
	case <-m.done:
		t.Fatal("done after 2 of 3")
	default:
	}
	m.fail("HTTP 429", errors.New("second"))
	select {
	case <-m.done:
	default:
		t.Fatal("not done after 3 of 3")
	}
	kinds, first := m.errorKinds()
	if kinds["HTTP 429"] != 2 || first != "first" || m.ops.Load() != 1 {
		t.Errorf("kinds %v, first %q, ops %d", kinds, first, m.ops.Load())
	}
}

func TestPacer(t *testing.T) {
	ctx := t.Context()
	var calls atomic.Int64
	var lateMu sync.Mutex
	var late time.Duration // largest delay between the schedule and the call
	cur, stop := requestLoad(ctx, 4, 1000, func(ctx context.Context, start time.Time, cur *atomic.Pointer[meter]) {
		lateMu.Lock()
		late = max(late, time.Since(start))
		lateMu.Unlock()
		calls.Add(1)
	})
	if cur == nil {
		t.Fatal("no meter pointer")
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	// 1,000/s for 0.3 s: about 300 calls (the timer's resolution and a
	// loaded machine allow some slack), never a burst far above it.
	if n := calls.Load(); n < 200 || n > 320 {
		t.Errorf("%d calls in 300 ms at 1,000/s", n)
	}
	if late > 200*time.Millisecond {
		t.Errorf("a call ran %v after its slot", late)
	}
	// Without a rate the workers run flat out until stopped.
	calls.Store(0)
	_, stop = requestLoad(ctx, 2, 0, func(context.Context, time.Time, *atomic.Pointer[meter]) { calls.Add(1) })
	time.Sleep(20 * time.Millisecond)
	stop()
	if n := calls.Load(); n < 1000 {
		t.Errorf("%d unpaced no-op calls in 20 ms", n)
	}
}

func TestGoal(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		rate     float64
		rps      float64
		p99      float64
		errors   int64
		met      bool
	}{
		{"calls met", Calls, 12000, 0, 11, 0, true},
		{"calls too slow", Calls, 4000, 0, 11, 0, false},
		{"calls too late", Calls, 12000, 0, 25, 0, false},
		{"calls with errors", Calls, 12000, 0, 11, 1, false},
		{"calls paced at the goal", Calls, 4990, 5000, 12, 0, true},
		{"calls paced but behind", Calls, 4800, 5000, 12, 0, false},
		{"calls paced below the goal", Calls, 4000, 4000, 5, 0, false},
		{"events met", Events, 99000, 0, 12, 0, true},
		{"events too late", Events, 99000, 0, 60, 0, false},
	}
	for _, tt := range tests {
		r := &Result{Rate: tt.rate, RPS: tt.rps, Errors: tt.errors, Latency: Latency{P99: tt.p99}}
		if g := goal(tt.scenario, r); g == nil || g.Met != tt.met {
			t.Errorf("%s: goal %+v; want met %v", tt.name, g, tt.met)
		}
	}
	if g := goal(List, &Result{}); g != nil {
		t.Errorf("list has a goal: %+v", g)
	}
}
