package benchmark_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
)

// TestDataDirReuse runs an environment twice on one --data-dir: the first
// run provisions Gen 3 devices and saves their sessions, the second logs
// in with the recorded account, provisions nothing and every device
// resumes its session; a run with more devices, another prefix, or a
// directory holding something else is refused.
func TestDataDirReuse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const devices = 4
	dir := filepath.Join(t.TempDir(), "data")
	cfg := benchmark.EnvConfig{Devices: devices, UDP: true, KeysDir: t.TempDir(), DataDir: dir, IDPrefix: "d1"}

	env, err := benchmark.StartEnv(ctx, cfg, testLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if env.Reused || env.KeysGenerated != devices {
		t.Fatalf("first run: reused %v, %d keys generated", env.Reused, env.KeysGenerated)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	sessions, err := filepath.Glob(filepath.Join(dir, "sim-sessions", "*.session"))
	if err != nil || len(sessions) != devices {
		t.Fatalf("%d sessions saved (%v); want %d", len(sessions), err, devices)
	}
	if _, err := os.Stat(filepath.Join(dir, "wick-bench.json")); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		n    int
	}{{"same", devices}, {"fewer", devices - 1}} {
		t.Run(c.name, func(t *testing.T) {
			rc := cfg
			rc.Devices = c.n
			env, err := benchmark.StartEnv(ctx, rc, testLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer env.Close()
			sum := env.SimSummary()
			if !env.Reused || env.KeysGenerated != 0 || len(env.DeviceIDs) != c.n {
				t.Fatalf("reused %v, %d keys generated, %d devices", env.Reused, env.KeysGenerated, len(env.DeviceIDs))
			}
			if sum.Claimed != 0 || sum.Connected != c.n || sum.Resumptions != int64(c.n) || sum.Handshakes != int64(c.n) {
				t.Fatalf("claimed %d, connected %d, %d of %d connections resumed; want none claimed, all %d resumed",
					sum.Claimed, sum.Connected, sum.Resumptions, sum.Handshakes, c.n)
			}
			r, err := env.Calls(ctx, 2, benchmark.Measure{Duration: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops == 0 || r.Errors != 0 {
				t.Fatalf("%d calls, %d errors", r.Ops, r.Errors)
			}
		})
	}

	refused := map[string]func(*benchmark.EnvConfig){
		"more devices":   func(c *benchmark.EnvConfig) { c.Devices = devices + 1 },
		"other prefix":   func(c *benchmark.EnvConfig) { c.IDPrefix = "d2" },
		"other keys dir": func(c *benchmark.EnvConfig) { c.KeysDir = t.TempDir() },
		"gen 2":          func(c *benchmark.EnvConfig) { c.UDP = false },
		"not a bench dir": func(c *benchmark.EnvConfig) {
			c.DataDir = t.TempDir()
			os.WriteFile(filepath.Join(c.DataDir, "wick.db"), []byte("x"), 0o600)
		},
	}
	for name, change := range refused {
		t.Run(name, func(t *testing.T) {
			rc := cfg
			change(&rc)
			env, err := benchmark.StartEnv(ctx, rc, testLog(), nil)
			if err == nil {
				env.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, benchmark.ErrConfig) {
				t.Fatalf("%v; want ErrConfig", err)
			}
		})
	}
}
