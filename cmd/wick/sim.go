package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/sim"
)

const simUsage = `Usage: wick sim --server HOST:PORT (--server-key FILE | --data DIR) [flags]

Runs --count virtual Gen 2 devices (the Go device SDK) against a device
gateway; with --udp, Gen 3 devices over DTLS/UDP with P-256 keys (the
server's UDP address, default 127.0.0.1:5684, and server_ec_key.pub.pem or
the blob of wick keys server --udp). --resume makes them reconnect by
resuming their saved DTLS session without a handshake; --reconnect-every
and --move-every drop their connections and move them to new ports
periodically; --udp-drop, --udp-duplicate and --udp-reorder make their
links misbehave. Every device registers the function led (on -> 1, off -> 0, else -1)
and the variables temp (double), count (int, calls of led), label (string)
and on (bool, set by led).

With --api URL --token TOKEN each device's key is provisioned through
POST /v1/provisioning/ID; without --claim-code each device is then claimed
to the token's owner (POST /v1/devices) once online. With --claim-code the
devices are left unowned and the code claims the first one that reports it.
--product P provisions them into product P (an ID or slug).

Gen 2 keys are RSA-1024 and take ~10 ms of CPU each to generate: keep them
with --keys-dir to rerun fast (Gen 3 keys are P-256, <id>.p256.pem).
Beyond ~28,000 devices, spread the connections over local addresses with
--bind 127.0.0.2,127.0.0.3,...

The devices take firmware updates (OTA v1, fast OTA) and reboot into them,
reconnecting with the product version of the binary (or --ota-version):
--ota=refuse answers every update with 5.03, --ota=drop disconnects in the
middle of a transfer, --ota-delay slows every chunk and --ota-lose loses
every n-th chunk once, so that the gateway must resend it. --ota-v3 makes
them speak OTA v3 (as Gen 3 Device OS does), which resumes a transfer that
broke off.

Progress goes to stderr every --progress; the summary goes to stdout. When
no device has come online by the end of the ramp-up, the run stops there
and says why (nothing listening, not a device port, a key the server does
not know, the wrong server key). The exit status is 0 when every device
came online at least once, 1 when some never did (or on an error), 2 for a
usage error.

Flags:
`

// simCommand is `wick sim`: it simulates devices until SIGINT/SIGTERM or
// --duration, prints the summary and fails when a device never connected.
func simCommand(args []string, stdout, stderr io.Writer) error {
	cfg := sim.Default()
	fs := flag.NewFlagSet("wick sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simUsage)
		fs.PrintDefaults()
	}
	cfg.Register(fs)
	rest, err := config.Parse(fs, args, nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "wick sim: unexpected argument %q\n", rest[0])
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, sim.ErrConfig) {
			fmt.Fprintln(stderr, "wick", err)
			return errUsage
		}
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, "text")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := sim.Run(ctx, cfg, log, stderr)
	if errors.Is(err, sim.ErrNoDeviceOnline) {
		sum.Write(stdout)
		return err
	}
	if err != nil {
		return err
	}
	sum.Write(stdout)
	if sum.Failed > 0 {
		err := fmt.Errorf("sim: %d of %d devices never came online", sum.Failed, sum.Devices)
		if sum.Why != "" {
			err = fmt.Errorf("%w: %s", err, sum.Why)
		}
		return err
	}
	return nil
}
