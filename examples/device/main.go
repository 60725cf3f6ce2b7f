// Command device is a runnable example of the Go device SDK
// (github.com/wick-cloud/wick/sdk/device): one virtual Photon running the
// firmware of Particle app note AN032, an LED controlled by the cloud
// function "led" and a tank-level sensor published as "sensorValueEvent"
// when its reading changes.
//
//	# once: a device key, registered with the cloud (particle keys send does the same)
//	openssl genrsa -out device.pem 1024
//	openssl rsa -in device.pem -pubout -out device.pub.pem
//	wick device provision 0123456789abcdef01234567 --key device.pub.pem   # or POST /v1/provisioning/:id
//
//	go run ./examples/device --id 0123456789abcdef01234567 --key device.pem \
//	    --server 127.0.0.1:5683 --server-key wick-data/server_key.pub.pem
//
// Then, with particle-cli pointed at Wick: `particle call <id> led on`,
// `particle get <id> on`, `particle subscribe sensorValueEvent`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "device:", err)
		os.Exit(1)
	}
}

func run() error {
	id := flag.String("id", "", "device ID, 24 hex characters (required)")
	keyFile := flag.String("key", "", "device private key, PEM or DER (required)")
	server := flag.String("server", "127.0.0.1:5683", "device gateway HOST:PORT")
	serverKeyFile := flag.String("server-key", "wick-data/server_key.pub.pem", "server public key, PEM or DER")
	claimCode := flag.String("claim-code", "", "claim code to report (from POST /v1/device_claims)")
	period := flag.Duration("period", time.Second, "minimum time between two publications (MIN_PUBLISH_PERIOD)")
	flag.Parse()
	if *id == "" || *keyFile == "" {
		flag.Usage()
		return fmt.Errorf("--id and --key are required")
	}
	keyPEM, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := protocol.ParseRSAPrivateKey(keyPEM)
	if err != nil {
		return err
	}
	serverKeyPEM, err := os.ReadFile(*serverKeyFile)
	if err != nil {
		return err
	}
	serverKey, err := protocol.ParseRSAPublicKey(serverKeyPEM)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	d, err := device.New(device.Config{
		ID:             *id,
		PrivateKey:     key,
		ServerAddr:     *server,
		ServerKey:      serverKey,
		PlatformID:     device.PlatformPhoton,
		DeviceDescribe: true,
		ClaimCode:      *claimCode,
		Logger:         log,
		OnState: func(s device.State, err error) {
			log.Info("cloud connection", "state", s, "err", err)
		},
	})
	if err != nil {
		return err
	}

	// Particle.function("led", ledControl)
	var led atomic.Bool
	d.Function("led", func(_ context.Context, arg string) int32 {
		switch arg {
		case "on":
			led.Store(true)
		case "off":
			led.Store(false)
		default:
			return -1
		}
		log.Info("led", "on", led.Load())
		if led.Load() {
			return 1
		}
		return 0
	})
	d.Variable("on", led.Load)
	var reading atomic.Int32
	reading.Store(2048)
	d.Variable("sensor", func() int32 { return reading.Load() })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go sensorLoop(ctx, d, &reading, *period, log)
	if err := d.Run(ctx); err != context.Canceled {
		return err
	}
	return nil
}

// sensorLoop plays the potentiometer of AN032: the reading drifts, and it
// is published when it moved by more than 5 since the last publication, at
// most once per period, and only while connected.
func sensorLoop(ctx context.Context, d *device.Device, reading *atomic.Int32, period time.Duration, log *slog.Logger) {
	const minDelta = 5
	last := int32(-1)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := min(4095, max(0, reading.Load()+rand.Int32N(81)-40))
		reading.Store(v)
		if d.State() != device.Online || (last >= 0 && abs(v-last) <= minDelta) {
			continue
		}
		if err := d.Publish(ctx, "sensorValueEvent", strconv.Itoa(int(v)), device.PublishOptions{}); err != nil {
			log.Warn("publish", "err", err)
			continue
		}
		last = v
	}
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}
