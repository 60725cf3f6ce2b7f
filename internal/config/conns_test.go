package config

import (
	"flag"
	"testing"
	"time"
)

// TestConnectionLimitFlags: the connection, body and device handshake
// limits have flags with the defaults of docs/security.md, Connection
// limits, read WICK_* variables, and refuse negative values.
func TestConnectionLimitFlags(t *testing.T) {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Register(fs)
	if c.MaxDeviceConns != 0 || c.DeviceConnsPerIP != 1024 || c.MaxHTTPConns != 0 || c.HTTPConnsPerIP != 256 ||
		c.MaxMetricsConns != 64 || c.MetricsConnsPerIP != 16 || c.HTTPBodyTimeout != time.Minute ||
		c.DeviceHandshakeRate != 10 || c.DeviceHandshakeBurst != 100 || c.DeviceHandshakeIdle != 10*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	env := map[string]string{"WICK_MAX_DEVICE_CONNS": "5000", "WICK_HTTP_BODY_TIMEOUT": "5s"}
	args := []string{"--device-conns-per-ip=10", "--http-conns-per-ip", "20", "--device-handshake-rate=-1",
		"--device-handshake-burst=3", "--device-handshake-idle=2s", "--max-http-conns=7"}
	if _, err := Parse(fs, args, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.MaxDeviceConns != 5000 || c.HTTPBodyTimeout != 5*time.Second || c.DeviceConnsPerIP != 10 || c.HTTPConnsPerIP != 20 ||
		c.DeviceHandshakeRate != -1 || c.DeviceHandshakeBurst != 3 || c.DeviceHandshakeIdle != 2*time.Second || c.MaxHTTPConns != 7 {
		t.Errorf("parsed %+v", c)
	}
	for name, bad := range map[string]func(*Serve){
		"max-device-conns":       func(c *Serve) { c.MaxDeviceConns = -1 },
		"device-conns-per-ip":    func(c *Serve) { c.DeviceConnsPerIP = -1 },
		"max-http-conns":         func(c *Serve) { c.MaxHTTPConns = -1 },
		"http-conns-per-ip":      func(c *Serve) { c.HTTPConnsPerIP = -1 },
		"max-metrics-conns":      func(c *Serve) { c.MaxMetricsConns = -1 },
		"metrics-conns-per-ip":   func(c *Serve) { c.MetricsConnsPerIP = -1 },
		"device-handshake-burst": func(c *Serve) { c.DeviceHandshakeBurst = -1 },
		"http-body-timeout":      func(c *Serve) { c.HTTPBodyTimeout = -time.Second },
		"device-handshake-idle":  func(c *Serve) { c.DeviceHandshakeIdle = -time.Second },
	} {
		c := Default()
		c.Data = "/tmp/w"
		bad(&c)
		if err := c.Resolve(); err == nil {
			t.Errorf("%s: resolve accepted a negative value", name)
		}
	}
}
