package sim

import (
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/module"
	"github.com/wick-cloud/wick/sdk/device"
)

// TestEndToEndOTA flashes simulated devices through Wick's gateway with
// binaries from the SQLite firmware store: devices that lose chunks still
// take the binary, reboot and report the product version of its module
// suffix; a refusing simulator makes Flash fail.
func TestEndToEndOTA(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	const n = 4
	ctx := context.Background()
	b := bustest.New(t, bus.Config{})
	flash := bustest.Subscribe(t, b, bus.Filter{NamePrefix: gateway.EventFlashStatus}, 4*n)
	dir := t.TempDir()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err := gateway.New(gateway.Config{Node: "e2e", TrustOnFirstUse: true}, gateway.Deps{Store: st, Bus: b, ServerKey: serverKey(t)}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	pemKey, err := protocol.MarshalPublicKeyPEM(&serverKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pemKey, 0o644); err != nil {
		t.Fatal(err)
	}

	bin := module.Build(module.Spec{PlatformID: device.PlatformPhoton, Function: module.FunctionUser, Index: 1,
		ModuleVersion: 6, StartAddress: 0x80A0000, Product: true, ProductID: 6, ProductVersion: 9,
		Code: make([]byte, 40*1024)})
	hash, err := st.PutFirmwareBinary(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}

	cfg := Default()
	cfg.Server, cfg.Data, cfg.Count = ln.Addr().String(), dir, n
	cfg.Progress = 0
	cfg.ProductVersion = 3
	cfg.OTA.LoseEvery = 4
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan Summary, 1)
	go func() {
		sum, err := Run(runCtx, cfg, testLog(), nil)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = DeviceID(cfg.IDPrefix, cfg.IDStart+i)
		deadline := time.Now().Add(30 * time.Second)
		for !g.Online(ids[i]) {
			if time.Now().After(deadline) {
				t.Fatalf("device %s never online", ids[i])
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d, err := st.DeviceByID(ctx, ids[i]); err != nil || d.ProductVersion != 3 {
			t.Fatalf("device before the update: %+v, %v", d, err)
		}
	}
	for _, id := range ids {
		if err := g.Flash(ctx, id, hash); err != nil {
			t.Fatalf("Flash %s: %v", id, err)
		}
	}
	outcome := map[string]string{}
	bustest.Until(t, flash, 60*time.Second, func(e bus.Event) bool {
		if e.Data != gateway.FlashStarted {
			outcome[e.DeviceID] = e.Data
		}
		return len(outcome) == n
	})
	for _, id := range ids {
		if outcome[id] != gateway.FlashSuccess {
			t.Errorf("device %s: %q", id, outcome[id])
		}
		if d, err := st.DeviceByID(ctx, id); err != nil || d.ProductVersion != 9 {
			t.Errorf("device after the update: version %d, %v; want 9", d.ProductVersion, err)
		}
	}
	stop()
	if sum := <-done; sum.Updates != n {
		t.Errorf("summary: %d updates, want %d", sum.Updates, n)
	}
}

func TestOTAFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
		want OTAConfig
	}{
		{nil, true, OTAConfig{}},
		{[]string{"--ota=refuse"}, true, OTAConfig{Mode: device.OTARefuse}},
		{[]string{"--ota", "drop", "--ota-drop-after", "10"}, true, OTAConfig{Mode: device.OTADrop, DropAfter: 10}},
		{[]string{"--ota-delay", "5ms", "--ota-lose", "3", "--ota-no-fast", "--ota-version", "12"}, true,
			OTAConfig{Delay: 5 * time.Millisecond, LoseEvery: 3, NoFast: true, Version: 12}},
		{[]string{"--ota-v3"}, true, OTAConfig{V3: true}},
		{[]string{"--ota=maybe"}, false, OTAConfig{}},
		{[]string{"--ota-lose", "1"}, false, OTAConfig{}},
		{[]string{"--ota-version", "65535"}, false, OTAConfig{}},
		{[]string{"--product-version", "-1"}, false, OTAConfig{}},
	} {
		cfg := Default()
		cfg.ServerKey = "key.pem"
		fs := flag.NewFlagSet("wick sim", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.Register(fs)
		err := fs.Parse(c.args)
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != c.ok {
			t.Errorf("%v: error %v, want ok %v", c.args, err, c.ok)
			continue
		}
		if c.ok && cfg.OTA != c.want {
			t.Errorf("%v: %+v, want %+v", c.args, cfg.OTA, c.want)
		}
	}
	// The device options carry the settings and read versions from module suffixes.
	cfg := Default()
	cfg.OTA = OTAConfig{Mode: device.OTADrop, DropAfter: 2, LoseEvery: 3, Version: 0}
	o := cfg.deviceOTA(func() {})
	if o.Mode != device.OTADrop || o.DropAfter != 2 || o.LoseEvery != 3 || o.VersionOf == nil {
		t.Fatalf("device options %+v", o)
	}
	bin := module.Build(module.Spec{PlatformID: 6, Function: module.FunctionUser, Product: true, ProductID: 6, ProductVersion: 42, Code: make([]byte, 64)})
	if v, ok := o.VersionOf(bin); !ok || v != 42 {
		t.Fatalf("VersionOf = %d, %v", v, ok)
	}
	if _, ok := o.VersionOf([]byte("not a module")); ok {
		t.Fatal("a version read from garbage")
	}
}
