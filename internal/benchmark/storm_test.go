package benchmark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
)

// TestStorm restarts a small in-process server under 20 connected devices:
// every device must come back through a new handshake, calls made during
// the storm must reach devices that are back, and the result must carry
// the per-second series and the memory peak.
func TestStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts an in-process server under simulated devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const devices = 20
	c := benchmark.Default()
	c.Scenario, c.Devices, c.KeysDir, c.IDPrefix = benchmark.Storm, devices, t.TempDir(), "5e"
	b, err := benchmark.New(c, testLog())
	if err != nil {
		t.Fatal(err)
	}
	var progress lockedBuffer
	r, err := b.RunStorm(ctx, &progress)
	if err != nil {
		t.Fatalf("%v; progress:\n%s", err, progress.String())
	}
	if !r.Complete || r.Recovered <= 0 || r.Handshakes < devices || r.Devices != devices {
		t.Errorf("storm did not complete: %+v", r)
	}
	if len(r.Series) == 0 || r.Series[len(r.Series)-1].Online != devices {
		t.Errorf("series %+v does not end with every device online", r.Series)
	}
	var hs int64
	for _, p := range r.Series {
		hs += p.Handshakes
	}
	if hs != r.Handshakes || r.PeakRate <= 0 {
		t.Errorf("series handshakes %d, total %d, peak %v", hs, r.Handshakes, r.PeakRate)
	}
	if r.CallErrors != 0 || r.Calls.Count+r.CallsOffline == 0 {
		t.Errorf("calls during the storm: %+v, offline %d, errors %d (%s)", r.Calls, r.CallsOffline, r.CallErrors, r.FirstError)
	}
	if r.Memory.PeakRSS == 0 && r.Memory.PeakHeapInuse == 0 {
		t.Errorf("no memory figures: %+v", r.Memory)
	}
	if !strings.Contains(progress.String(), "storm: t=") {
		t.Errorf("no per-second progress lines:\n%s", progress.String())
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "all online again after") {
		t.Errorf("text result:\n%s", out.String())
	}
	out.Reset()
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back benchmark.StormResult
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Handshakes != r.Handshakes {
		t.Errorf("JSON %s: %v", out.String(), err)
	}
}

// TestStormServerProcess runs the storm with the server as a `wick serve`
// child process: the restart is a process exit and start on the same data
// directory and ports, calls go only to devices back online, and the
// server's own peak memory and CPU are reported.
func TestStormServerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wick and restarts it under simulated devices")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wick")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wick")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const devices = 10
	c := benchmark.Default()
	c.Scenario, c.Devices, c.KeysDir, c.IDPrefix = benchmark.Storm, devices, t.TempDir(), "5f"
	c.ServerProcess, c.ServerBin, c.ServerArgs = true, bin, []string{"--device-admission=2"}
	b, err := benchmark.New(c, testLog())
	if err != nil {
		t.Fatal(err)
	}
	var progress lockedBuffer
	r, err := b.RunStorm(ctx, &progress)
	if err != nil {
		t.Fatalf("%v; progress:\n%s", err, progress.String())
	}
	if !r.Complete || r.Handshakes < devices || !r.ServerProcess {
		t.Errorf("storm did not complete: %+v", r)
	}
	if r.ServerPeakRSS == 0 || r.ServerCPU <= 0 {
		t.Errorf("server peak RSS %d, CPU %v s: want both measured", r.ServerPeakRSS, r.ServerCPU)
	}
	if r.CallErrors != 0 || r.Before.Count == 0 {
		t.Errorf("calls before %d, during %+v, errors %d (%s)", r.Before.Count, r.Calls, r.CallErrors, r.FirstError)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "server process           peak RSS") {
		t.Errorf("text result:\n%s", out.String())
	}
}

// lockedBuffer is a bytes.Buffer that the simulator's and the storm's
// progress lines may write to from different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
