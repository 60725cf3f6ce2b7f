package benchmark_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
	"github.com/wick-cloud/wick/internal/testproc"
)

// TestSimProcesses runs the devices in two `wick sim` child processes
// against a `wick serve` child process, over DTLS/UDP: the idle scenario
// must see every device online in the server's own count with its memory,
// CPU and API reads measured, and the storm must follow the server's own
// count back to every device after the restart.
func TestSimProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wick and runs it as a server and two simulators")
	}
	bin := testproc.Build(t, t.TempDir(), testproc.Binary{Name: "wick", Pkg: "./cmd/wick"})[0]
	const devices = 20
	config := func(scenario, prefix string) benchmark.Config {
		c := benchmark.Default()
		c.Scenario, c.Devices, c.KeysDir, c.IDPrefix, c.UDP = scenario, devices, t.TempDir(), prefix, true
		c.ServerProcess, c.ServerBin, c.SimProcesses, c.SimBin = true, bin, 2, bin
		c.Duration, c.Progress = 2*time.Second, 0
		return c
	}
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		b, err := benchmark.New(config(benchmark.Idle, "5d"), testLog())
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.RunIdle(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Online != devices || r.SimProcesses != 2 || !r.UDP || r.Ramp <= 0 {
			t.Errorf("online %d, %d simulator processes, udp %v, ramp %v s: want %d, 2, true, > 0", r.Online, r.SimProcesses, r.UDP, r.Ramp, devices)
		}
		if r.Parked > r.Online {
			t.Errorf("%d parked of %d online", r.Parked, r.Online)
		}
		if r.ServerRSS == 0 || r.ServerRSSBase == 0 || r.SimRSS == 0 || r.ServerCores < 0 {
			t.Errorf("server RSS %d (base %d), simulators %d, cores %v: want measured", r.ServerRSS, r.ServerRSSBase, r.SimRSS, r.ServerCores)
		}
		if r.API.Count == 0 || r.APIErrors != 0 {
			t.Errorf("GET /v1/devices/:id: %d reads, %d errors (%s)", r.API.Count, r.APIErrors, r.FirstError)
		}
		var out bytes.Buffer
		r.WriteText(&out)
		if !strings.Contains(out.String(), "in 2 wick sim processes") || !strings.Contains(out.String(), "B per device") {
			t.Errorf("text result:\n%s", out.String())
		}
	})
	t.Run("storm", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		b, err := benchmark.New(config(benchmark.Storm, "5c"), testLog())
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.RunStorm(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Complete || !r.ServerView || r.SimProcesses != 2 {
			t.Fatalf("storm: complete %v, server view %v, %d simulator processes: %+v", r.Complete, r.ServerView, r.SimProcesses, r)
		}
		if last := r.Series[len(r.Series)-1]; last.Online != devices || r.Resumptions+r.Handshakes < devices {
			t.Errorf("back: %d online, %d resumptions + %d handshakes: want %d", last.Online, r.Resumptions, r.Handshakes, devices)
		}
		if r.CallErrors != 0 || r.Before.Count == 0 {
			t.Errorf("calls before %d, during %+v, errors %d (%s)", r.Before.Count, r.Calls, r.CallErrors, r.FirstError)
		}
	})
}
