package benchmark_test

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
)

// TestCallsOverUDP runs the calls scenario with Gen 3 devices (`wick bench
// calls --udp`): the devices come online over DTLS and every call reaches
// one of them and returns.
func TestCallsOverUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const devices = 5
	env, err := benchmark.StartEnv(ctx, benchmark.EnvConfig{Devices: devices, UDP: true, KeysDir: t.TempDir()}, testLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if len(env.DeviceIDs) != devices || env.KeysGenerated != devices {
		t.Fatalf("%d devices, %d keys generated", len(env.DeviceIDs), env.KeysGenerated)
	}
	r, err := env.Calls(ctx, 2, benchmark.Measure{Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops == 0 || r.Errors != 0 || r.Latency.P50 <= 0 {
		t.Fatalf("%d calls, %d errors, p50 %v", r.Ops, r.Errors, r.Latency.P50)
	}
	t.Logf("%d calls over DTLS in %.1fs, p50 %.2f ms, p99 %.2f ms", r.Ops, r.Elapsed, r.Latency.P50, r.Latency.P99)
}
