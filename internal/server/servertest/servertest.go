// Package servertest starts a real Wick server and simulated devices inside
// a test process, for tests of code outside the server (sdk/cloud, the
// examples): only HTTP and Particle's device protocol connect that code to
// them, as in production.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server"
	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/sdk/cloud"
)

// Owner and OwnerPassword are the account Start creates.
const (
	Owner         = "owner@example.com"
	OwnerPassword = "a-long-password"
)

// Wick is one running server.
type Wick struct {
	// API is the REST API base URL.
	API string
	// DeviceAddr is the device gateway's HOST:PORT.
	DeviceAddr string
	// Data is the server's data directory.
	Data string
}

// Start runs a server on 127.0.0.1 with an empty data directory and the
// account Owner, and stops it at cleanup; each option may change the
// configuration first.
func Start(t testing.TB, options ...func(*config.Serve)) *Wick {
	t.Helper()
	cfg := config.Default()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.HTTP = "127.0.0.1:0"
	cfg.DeviceTCP = "127.0.0.1:0"
	for _, o := range options {
		o(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := server.CreateUser(ctx, cfg, log, Owner, OwnerPassword); err != nil {
		cancel()
		t.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("servertest: server: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("servertest: server stopped: %v", err)
	}
	return &Wick{API: "http://" + srv.HTTPAddr().String(), DeviceAddr: srv.DeviceTCPAddr().String(), Data: cfg.Data}
}

// Login returns a client acting for Owner.
func (w *Wick) Login(t testing.TB) *cloud.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cloud.New(w.API, "").Login(ctx, Owner, OwnerPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cloud.New(w.API, tok.AccessToken)
}

// Device says how StartDevice provisions its device.
type Device struct {
	// Token provisions the device's key (and, without ClaimCode, claims
	// the device to its owner).
	Token string
	// Product, when not "", puts the device in that product.
	Product string
	// ClaimCode, when not "", is reported by the device, which is left
	// without an owner for the code to claim.
	ClaimCode string
	// IDPrefix starts the device ID (hex); "c1" when empty.
	IDPrefix string
}

// StartDevice runs one simulated device (function led: "on" 1, "off" 0)
// until cleanup and returns its ID.
func (w *Wick) StartDevice(t testing.TB, d Device) string {
	t.Helper()
	cfg := sim.Default()
	cfg.Server, cfg.API, cfg.Token, cfg.Data = w.DeviceAddr, w.API, d.Token, w.Data
	cfg.Count, cfg.IDPrefix, cfg.Progress = 1, d.IDPrefix, 0
	cfg.Product, cfg.ClaimCode = d.Product, d.ClaimCode
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "c1"
	}
	cfg.KeysDir = filepath.Join(t.TempDir(), "keys")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sim.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	id, err := sim.DeviceID(cfg.IDPrefix, 1)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// WaitOnline waits until c sees device id online with its functions, or
// fails the test after 30 s.
func WaitOnline(t testing.TB, c *cloud.Client, id string) *cloud.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		d, err := c.GetDevice(ctx, id)
		if err == nil && d.Online && len(d.Functions) > 0 {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("servertest: device %s not online: %+v, %v", id, d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
