package benchmark_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/benchmark"
)

// TestProductPages runs the list scenario's product mode on a product of
// 230 devices: every kind of page is read and checked (count, meta, the
// first device of the page sorted by ID), for pages of 25 and of 100 (the
// last page then holds 30), with no error.
func TestProductPages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const devices = 230
	env, err := benchmark.StartEnv(ctx, benchmark.EnvConfig{Devices: devices, ProductDevices: true}, testLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if env.ProductID == 0 || len(env.DeviceIDs) != devices {
		t.Fatalf("product %d, %d devices", env.ProductID, len(env.DeviceIDs))
	}
	for _, perPage := range []int{25, 100} {
		r, err := env.ProductPages(ctx, 2, perPage, benchmark.Measure{Ops: 60, Duration: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if r.Errors != 0 || r.Ops < 60 || r.ProductID != env.ProductID || r.PerPage != perPage || r.Devices != devices {
			t.Fatalf("per page %d: %d pages, %d errors (%v: %s), product %d", perPage, r.Ops, r.Errors, r.ErrorKinds, r.FirstError, r.ProductID)
		}
		if len(r.Pages) != len(benchmark.PageKinds) {
			t.Fatalf("per page %d: %d kinds of page", perPage, len(r.Pages))
		}
		var sum int64
		for i, p := range r.Pages {
			if p.Kind != benchmark.PageKinds[i] || p.Ops == 0 || p.Latency.Count != p.Ops || p.Latency.P50 <= 0 ||
				!strings.Contains(p.Query, "perPage=") {
				t.Errorf("per page %d: %+v", perPage, p)
			}
			sum += p.Ops
		}
		if sum != r.Ops {
			t.Errorf("per page %d: %d pages by kind, %d in all", perPage, sum, r.Ops)
		}
		if r.BytesPerOp < 100 || r.Goal == nil || r.Goal.Met {
			t.Errorf("per page %d: %.0f bytes a page, goal %+v (not met with %d devices)", perPage, r.BytesPerOp, r.Goal, devices)
		}
		var out bytes.Buffer
		r.WriteText(&out)
		for _, want := range []string{"pages/s", "middle-by-id", "pages of " + map[int]string{25: "25", 100: "100"}[perPage]} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, out.String())
			}
		}
	}
}

// TestProductPagesConfig checks the product mode's configuration: only
// for list, with an in-process server on a new store.
func TestProductPagesConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  func(*benchmark.Config)
	}{
		{"calls", func(c *benchmark.Config) { c.Scenario = benchmark.Calls }},
		{"url", func(c *benchmark.Config) {
			c.URL, c.Token, c.DeviceServer, c.ServerKey = "http://127.0.0.1:1", "t", "127.0.0.1:2", "k"
		}},
		{"data dir", func(c *benchmark.Config) { c.DataDir = t.TempDir() }},
		{"sim processes", func(c *benchmark.Config) { c.SimProcesses = 2 }},
		{"per page", func(c *benchmark.Config) { c.PerPage = 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := benchmark.Default()
			cfg.Scenario, cfg.Product = benchmark.List, true
			c.cfg(&cfg)
			if _, err := benchmark.New(cfg, nil); !errors.Is(err, benchmark.ErrConfig) {
				t.Fatalf("%v; want ErrConfig", err)
			}
		})
	}
	cfg := benchmark.Default()
	cfg.Scenario, cfg.Product = benchmark.List, true
	if _, err := benchmark.New(cfg, nil); err != nil {
		t.Fatal(err)
	}
}
