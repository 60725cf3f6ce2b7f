package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/wick-cloud/wick/internal/benchmark"
	"github.com/wick-cloud/wick/internal/config"
)

const benchUsage = `Usage: wick bench events|calls|list|storm|idle [flags]

Measures Wick end to end on this machine. By default it starts a server in
process (embedded defaults, a temporary data directory, 127.0.0.1), creates
a user and a token, provisions and connects --devices simulated devices
over TCP (Gen 2), or over DTLS/UDP with --udp (Gen 3), then drives real
HTTP clients:

  events   every device publishes every --every; --streams SSE streams read
           the events (publish-to-delivery latency)
  calls    --concurrency clients call a device function in turn
           (POST /v1/devices/ID/led)
  list     --concurrency clients read GET /v1/devices; with --product,
           pages of --per-page devices (first, middle, last, middle by
           ID) of GET /v1/products/:p/devices, from a product of
           --devices devices written to the store (none connected)
  storm    restarts the in-process server under --devices connected devices
           and measures until all are online again: handshakes/s each
           second, p99 of --concurrency clients' calls to devices already
           back, memory peak; with --server-process the server is a wick
           serve child process, stopped with SIGTERM and started again;
           with --udp (which needs --server-process) the server's own
           counts: Gen 3 devices come back on their saved sessions, with
           no handshake, on their next datagram
  idle     holds --devices idle on a wick serve child process
           (--server-process) and measures it alone for --duration: time
           to all online, RSS per device, CPU in cores, datagrams/s, and
           GET /v1/devices/:id of random devices at --rps (default 20)

--sim-processes N runs the devices in N wick sim child processes, each
from its own 127.0.0.x, so that one server holds more devices than one
process has descriptors for (100,000 Gen 3 devices: --udp
--sim-processes 6; a Gen 3 server needs one socket per core, whatever the
number of devices).

--data-dir DIR keeps the server's data directory: the first run
provisions the devices into it, later runs with the same --id-prefix,
--udp and --keys-dir and at most as many --devices reuse them, with no
provisioning and, for Gen 3 devices, no handshake (they resume the
sessions the previous run saved in DIR/sim-sessions).

After --warmup it measures for --duration: throughput, latency quantiles,
errors, memory. Progress goes to stderr every --progress, the result to
stdout (--json for JSON). With --url, --token, --device-server and
--server-key it targets a running server instead (start it with a high
--rate: the default per-IP limit stops the load after 10,000 requests).

Flags:
`

// benchCommand is `wick bench`: one scenario, its progress on stderr and
// its result on stdout.
func benchCommand(args []string, stdout, stderr io.Writer) error {
	cfg := benchmark.Default()
	fs := flag.NewFlagSet("wick bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	cfg.Register(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	rest, err := config.Parse(fs, args, nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) != 1 {
		fs.Usage()
		return errUsage
	}
	cfg.Scenario = rest[0]
	log, err := newLogger(stderr, cfg.LogLevel, "text")
	if err != nil {
		return err
	}
	b, err := benchmark.New(cfg, log)
	if err != nil {
		if errors.Is(err, benchmark.ErrConfig) {
			fmt.Fprintln(stderr, "wick", err)
			return errUsage
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Scenario == benchmark.Idle {
		ir, err := b.RunIdle(ctx, stderr)
		if err != nil {
			return err
		}
		if *asJSON {
			return ir.WriteJSON(stdout)
		}
		ir.WriteText(stdout)
		return nil
	}
	if cfg.Scenario == benchmark.Storm {
		sr, err := b.RunStorm(ctx, stderr)
		if err != nil {
			return err
		}
		if *asJSON {
			return sr.WriteJSON(stdout)
		}
		sr.WriteText(stdout)
		return nil
	}
	res, err := b.Run(ctx, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.WriteText(stdout)
	return nil
}
