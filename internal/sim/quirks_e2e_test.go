package sim

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/sdk/device"
)

// TestEndToEndFirmwareQuirks: `wick sim --firmware-quirks` devices (their
// own reply IDs, split writes, Nagle) against Wick's gateway: signal, ping,
// function calls and variable reads all succeed.
func TestEndToEndFirmwareQuirks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	const n = 2
	ctx := context.Background()
	g, dir, addr := startGateway(t, bustest.New(t, bus.Config{}))

	cfg := Default()
	cfg.Server, cfg.Data, cfg.Count, cfg.Progress = addr, dir, n, 0
	cfg.IDPrefix = "52"
	cfg.Quirks = device.AllQuirks()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Run(runCtx, cfg, nil, nil); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	id, _ := DeviceID(cfg.IDPrefix, cfg.IDStart)
	deadline := time.Now().Add(60 * time.Second)
	for !g.Online(id) {
		if time.Now().After(deadline) {
			t.Fatal("device not online")
		}
		time.Sleep(10 * time.Millisecond)
	}
	callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := g.Signal(callCtx, id, true); err != nil {
		t.Errorf("signal: %v", err)
	}
	if err := g.Ping(callCtx, id); err != nil {
		t.Errorf("ping: %v", err)
	}
	if ret, err := g.CallFunction(callCtx, id, "led", "on"); err != nil || ret != 1 {
		t.Errorf("led(on) = %d, %v", ret, err)
	}
	if got, err := g.GetVariable(callCtx, id, "on"); err != nil || got != true {
		t.Errorf("on = %#v, %v", got, err)
	}
}
