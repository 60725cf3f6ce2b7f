package benchmark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
)

// testLog logs to stderr with WICK_TEST_LOG set, else nowhere.
func testLog() *slog.Logger {
	if os.Getenv("WICK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// TestScenarios is the smoke test of the three scenarios on a small
// in-process environment: 20 devices publishing every second, 3 streams.
// Every scenario must complete operations without errors and report
// throughput, latency and memory.
func TestScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const devices, streams = 20, 3
	var progress bytes.Buffer
	env, err := benchmark.StartEnv(ctx, benchmark.EnvConfig{
		Devices: devices, Every: time.Second, Streams: streams, KeysDir: t.TempDir(), Progress: time.Second,
	}, testLog(), &progress)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if !env.InProcess || len(env.DeviceIDs) != devices || env.Token == "" || !strings.HasPrefix(env.URL, "http://127.0.0.1:") {
		t.Fatalf("env %+v", env)
	}
	if env.KeysGenerated != devices {
		t.Errorf("%d keys generated; want %d in a fresh keys directory", env.KeysGenerated, devices)
	}

	var ticks []benchmark.Tick
	m := benchmark.Measure{Duration: 1200 * time.Millisecond, Interval: 500 * time.Millisecond,
		Progress: func(tk benchmark.Tick) { ticks = append(ticks, tk) }}
	check := func(t *testing.T, r *benchmark.Result, err error, unit string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops <= 0 || r.Rate <= 0 || r.Unit != unit || r.Errors != 0 || r.Devices != devices || r.Target != "in-process" {
			t.Errorf("result %+v", r)
		}
		if l := r.Latency; l.Count != r.Ops || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 || l.Mean <= 0 {
			t.Errorf("latency %+v for %d ops", l, r.Ops)
		}
		if r.Elapsed < 1.1 || r.Elapsed > 5 {
			t.Errorf("measured %.2fs; want about 1.2s", r.Elapsed)
		}
		if r.Memory.HeapInuse == 0 || r.Memory.PeakHeapInuse < r.Memory.HeapInuse || r.Memory.Goroutines == 0 {
			t.Errorf("memory %+v", r.Memory)
		}
		if len(ticks) < 2 || ticks[0].Scenario != r.Scenario || ticks[0].Unit != unit || ticks[0].Heap == 0 {
			t.Errorf("ticks %+v", ticks)
		}
		if len(r.Timeline) != len(ticks) || r.Timeline[0].Heap == 0 {
			t.Errorf("timeline %+v for %d ticks", r.Timeline, len(ticks))
		}
		if c := r.Conditions; c.CPUs == 0 || c.Start == "" || (runtime.GOOS == "linux" && c.CoresUsed <= 0) {
			t.Errorf("conditions %+v", c)
		}
		var out bytes.Buffer
		r.WriteText(&out)
		if !strings.Contains(out.String(), "wick bench "+r.Scenario+":") || !strings.Contains(out.String(), unit) {
			t.Errorf("text:\n%s", out.String())
		}
		if _, err := json.Marshal(r); err != nil {
			t.Error(err)
		}
		t.Logf("%s", out.String())
		ticks = nil
	}

	t.Run("calls", func(t *testing.T) {
		r, err := env.Calls(ctx, 4, m)
		check(t, r, err, "calls/s")
		if r.Concurrency != 4 || r.Goal == nil {
			t.Errorf("concurrency %d, goal %v", r.Concurrency, r.Goal)
		}
	})
	t.Run("calls paced", func(t *testing.T) {
		mm := m
		mm.RPS = 200
		r, err := env.Calls(ctx, 4, mm)
		check(t, r, err, "calls/s")
		// The pacer must never exceed the goal; how close a loaded machine
		// comes to it is a measurement, not something a unit test can assert.
		if r.RPS != 200 || r.Rate <= 0 || r.Rate > 210 {
			t.Errorf("%.0f calls/s paced at %.0f", r.Rate, r.RPS)
		}
	})
	t.Run("list", func(t *testing.T) {
		r, err := env.List(ctx, 2, m)
		check(t, r, err, "lists/s")
		if r.BytesPerOp < devices*100 { // a device object is several hundred bytes
			t.Errorf("%.0f bytes per list of %d devices", r.BytesPerOp, devices)
		}
	})
	t.Run("events", func(t *testing.T) {
		st, err := env.OpenStreams(ctx, streams)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		mm := m
		mm.Warmup = 500 * time.Millisecond
		r, err := st.Measure(ctx, mm)
		check(t, r, err, "delivered/s")
		if r.Streams != streams || r.Published <= 0 || r.Expected != r.Published*streams || r.Dropped != 0 {
			t.Errorf("events: %d streams, %d published, %d expected, %d dropped", r.Streams, r.Published, r.Expected, r.Dropped)
		}
		// Deliveries match publications, give or take the events in
		// flight at the window's edges.
		if slack := int64(devices * streams); r.Ops < r.Expected-slack || r.Ops > r.Expected+slack {
			t.Errorf("%d delivered; want %d ± %d", r.Ops, r.Expected, slack)
		}
		if r.Latency.P99 > 5000 {
			t.Errorf("p99 %.1f ms: events are late", r.Latency.P99)
		}
	})
	t.Run("ops bound", func(t *testing.T) {
		r, err := env.Calls(ctx, 2, benchmark.Measure{Ops: 25})
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops+r.Errors < 25 || r.Ops > 30 {
			t.Errorf("%d ops, %d errors; want the window to end at 25", r.Ops, r.Errors)
		}
	})
	// The simulator writes its progress until Close: read it after.
	if err := env.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if !strings.Contains(progress.String(), "sim: connected 20/20") {
		t.Errorf("setup progress:\n%s", progress.String())
	}
}

// TestRunConfigErrors checks that New refuses bad configurations before
// starting anything.
func TestRunConfigErrors(t *testing.T) {
	c := benchmark.Default()
	c.Scenario = "nope"
	if _, err := benchmark.New(c, nil); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

// The Go benchmarks run the scenarios at the sizes (1,000
// devices; WICK_BENCH_DEVICES overrides it) on an in-process server, one
// environment per benchmark, keys cached in benchmark.DefaultKeysDir. An
// op is a call, a device list or a delivered event; allocations are the
// whole process's (server, clients and devices) per op.
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/benchmark/

func benchDevices(b *testing.B) int {
	if v := os.Getenv("WICK_BENCH_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("WICK_BENCH_DEVICES=%q", v)
		}
		return n
	}
	return 1000
}

func startEnv(b *testing.B, every time.Duration, streams int) *benchmark.Env {
	b.Helper()
	env, err := benchmark.StartEnv(context.Background(), benchmark.EnvConfig{
		Devices: benchDevices(b), Every: every, Streams: streams, KeysDir: benchmark.DefaultKeysDir(),
	}, testLog(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { env.Close() })
	return env
}

// report turns a result into benchmark metrics.
func report(b *testing.B, r *benchmark.Result, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Rate, r.Unit)
	b.ReportMetric(r.Latency.P50, "p50-ms")
	b.ReportMetric(r.Latency.P99, "p99-ms")
	if r.Errors > 0 {
		b.Errorf("%d errors: %v (first: %s)", r.Errors, r.ErrorKinds, r.FirstError)
	}
	if r.Ops+r.Errors < int64(b.N) {
		b.Errorf("%d of %d ops before the time limit", r.Ops+r.Errors, b.N)
	}
}

// BenchmarkFunctionCalls: POST /v1/devices/:id/led from 64 clients.
func BenchmarkFunctionCalls(b *testing.B) {
	env := startEnv(b, 0, 0)
	const concurrency = benchmark.DefaultCallConcurrency
	b.Run(fmt.Sprintf("devices=%d/concurrency=%d", len(env.DeviceIDs), concurrency), func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		r, err := env.Calls(context.Background(), concurrency, benchmark.Measure{Ops: int64(b.N)})
		b.StopTimer()
		report(b, r, err)
	})
}

// BenchmarkListDevices: GET /v1/devices from 8 clients, every device
// owned by the token's user.
func BenchmarkListDevices(b *testing.B) {
	env := startEnv(b, 0, 0)
	const concurrency = benchmark.DefaultListConcurrency
	b.Run(fmt.Sprintf("devices=%d/concurrency=%d", len(env.DeviceIDs), concurrency), func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		r, err := env.List(context.Background(), concurrency, benchmark.Measure{Ops: int64(b.N)})
		b.StopTimer()
		report(b, r, err)
		b.ReportMetric(r.BytesPerOp, "resp-bytes")
	})
}

// BenchmarkEventFanout: every device publishes once a second (1,000
// events/s), 100 SSE streams read them all; an op is one delivery, so the
// rate is capped by the 100,000 deliveries/s offered.
func BenchmarkEventFanout(b *testing.B) {
	const streams = 100
	env := startEnv(b, time.Second, streams)
	st, err := env.OpenStreams(context.Background(), streams)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Run(fmt.Sprintf("devices=%d/streams=%d", len(env.DeviceIDs), streams), func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		r, err := st.Measure(context.Background(), benchmark.Measure{Ops: int64(b.N)})
		b.StopTimer()
		report(b, r, err)
		b.ReportMetric(float64(r.Dropped), "dropped")
	})
}
