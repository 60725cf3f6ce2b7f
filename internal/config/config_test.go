package config

import (
	"flag"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantPos  []string
		wantHTTP string
		wantSign bool
		wantWin  time.Duration
		wantErr  bool
	}{
		{name: "defaults", wantHTTP: "127.0.0.1:8080", wantWin: 5 * time.Minute},
		{name: "flag", args: []string{"--http", ":9000"}, wantHTTP: ":9000", wantWin: 5 * time.Minute},
		{name: "env", env: map[string]string{"WICK_HTTP": ":7000", "WICK_SIGNUP": "true", "WICK_TOKEN_WINDOW": "1m"},
			wantHTTP: ":7000", wantSign: true, wantWin: time.Minute},
		{name: "flag beats env", args: []string{"-http=:1"}, env: map[string]string{"WICK_HTTP": ":2"}, wantHTTP: ":1", wantWin: 5 * time.Minute},
		{name: "interleaved positionals", args: []string{"a@b.c", "--signup", "x", "--http", ":3", "y"},
			wantPos: []string{"a@b.c", "x", "y"}, wantHTTP: ":3", wantSign: true, wantWin: 5 * time.Minute},
		{name: "double dash", args: []string{"--", "--http"}, wantPos: []string{"--http"}, wantHTTP: "127.0.0.1:8080", wantWin: 5 * time.Minute},
		{name: "bad env value", env: map[string]string{"WICK_SIGNUP": "maybe"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Register(fs)
			pos, err := Parse(fs, tt.args, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !reflect.DeepEqual(pos, tt.wantPos) && !(len(pos) == 0 && len(tt.wantPos) == 0) {
				t.Errorf("positional = %q; want %q", pos, tt.wantPos)
			}
			if c.HTTP != tt.wantHTTP || c.Signup != tt.wantSign || c.TokenWindow != tt.wantWin {
				t.Errorf("got http=%q signup=%v window=%v; want %q %v %v", c.HTTP, c.Signup, c.TokenWindow, tt.wantHTTP, tt.wantSign, tt.wantWin)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	c := Default()
	c.Data = "/tmp/w"
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if c.DB != "sqlite:/tmp/w/wick.db" || c.SecretKeyFile != "/tmp/w/secret.key" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Errorf("derived defaults: db=%q key=%q url=%q", c.DB, c.SecretKeyFile, c.PublicURL)
	}
	bad := Default()
	bad.TokenRate = 0
	if err := bad.Resolve(); err == nil {
		t.Error("token-rate 0 accepted")
	}
	if got := EnvName("device-tcp"); got != "WICK_DEVICE_TCP" {
		t.Errorf("EnvName = %q", got)
	}
}

// TestWebhookFlags: the webhook flags (--webhook-allow-private is a
// contract the tests and docs rely on), their environment variables and
// their checks.
func TestWebhookFlags(t *testing.T) {
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	if c.WebhookTimeout != 20*time.Second || c.WebhookRetries != 6 || c.WebhookWorkers != 8 || c.WebhookAllowPrivate {
		t.Errorf("defaults = %v %d %d %v", c.WebhookTimeout, c.WebhookRetries, c.WebhookWorkers, c.WebhookAllowPrivate)
	}
	env := map[string]string{"WICK_WEBHOOK_TIMEOUT": "5s"}
	if _, err := Parse(fs, []string{"--webhook-allow-private", "--webhook-retries", "0", "--webhook-workers=3"},
		func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if !c.WebhookAllowPrivate || c.WebhookTimeout != 5*time.Second || c.WebhookRetries != 0 || c.WebhookWorkers != 3 {
		t.Errorf("parsed = %v %v %d %d", c.WebhookAllowPrivate, c.WebhookTimeout, c.WebhookRetries, c.WebhookWorkers)
	}
	c.Data = "/tmp/w"
	if err := c.Resolve(); err != nil {
		t.Errorf("resolve: %v", err)
	}
	for _, bad := range []func(*Serve){
		func(c *Serve) { c.WebhookTimeout = 0 },
		func(c *Serve) { c.WebhookRetries = -1 },
		func(c *Serve) { c.WebhookWorkers = 0 },
	} {
		c := Default()
		c.Data = "/tmp/w"
		bad(&c)
		if err := c.Resolve(); err == nil {
			t.Errorf("resolve accepted %+v", c)
		}
	}
}

// TestMetricsFlag: --metrics is off by default, reads WICK_METRICS, loses
// to the command line, and may not share the API's address; the stats
// interval defaults to a minute and may be 0 (off) but not negative.
func TestMetricsFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr bool // from Resolve
	}{
		{name: "default off", want: ""},
		{name: "environment", env: map[string]string{"WICK_METRICS": "127.0.0.1:9090"}, want: "127.0.0.1:9090"},
		{name: "flag wins", args: []string{"--metrics", ":9100"}, env: map[string]string{"WICK_METRICS": "127.0.0.1:9090"}, want: ":9100"},
		{name: "same as http", args: []string{"--http", "127.0.0.1:8080", "--metrics", "127.0.0.1:8080"}, want: "127.0.0.1:8080", wantErr: true},
		{name: "both ephemeral", args: []string{"--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, want: "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Register(fs)
			if _, err := Parse(fs, tt.args, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			if c.Metrics != tt.want {
				t.Errorf("Metrics = %q; want %q", c.Metrics, tt.want)
			}
			c.Data = "/tmp/w"
			if err := c.Resolve(); (err != nil) != tt.wantErr {
				t.Errorf("Resolve = %v; want error %v", err, tt.wantErr)
			}
		})
	}
	c := Default()
	c.Data = "/tmp/w"
	if c.StatsInterval != time.Minute {
		t.Errorf("StatsInterval default = %v", c.StatsInterval)
	}
	c.StatsInterval = 0
	if err := c.Resolve(); err != nil {
		t.Errorf("StatsInterval 0: %v", err)
	}
	c.StatsInterval = -time.Second
	if err := c.Resolve(); err == nil {
		t.Error("negative StatsInterval accepted")
	}
}

// TestPublishAndListenerDefaults: the API publish limit is off by default
// (Particle documents none) and settable per flag and environment; both
// listeners default to loopback.
func TestPublishAndListenerDefaults(t *testing.T) {
	c := Default()
	if c.PublishBurst != 0 || c.PublishInterval != time.Second {
		t.Errorf("publish defaults = %d per %v; want 0 (off) and 1s", c.PublishBurst, c.PublishInterval)
	}
	if c.HTTP != "127.0.0.1:8080" || c.DeviceTCP != "127.0.0.1:5683" {
		t.Errorf("listeners = %q, %q; want both on loopback", c.HTTP, c.DeviceTCP)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	env := map[string]string{"WICK_PUBLISH_INTERVAL": "100ms"}
	if _, err := Parse(fs, []string{"--publish-burst", "50"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.PublishBurst != 50 || c.PublishInterval != 100*time.Millisecond {
		t.Errorf("parsed %d per %v", c.PublishBurst, c.PublishInterval)
	}
	for _, tt := range []struct {
		burst    int
		interval time.Duration
		ok       bool
	}{{0, 0, true}, {10, time.Second, true}, {-1, time.Second, false}, {10, 0, false}} {
		c := Default()
		c.PublishBurst, c.PublishInterval = tt.burst, tt.interval
		if err := c.Resolve(); (err == nil) != tt.ok {
			t.Errorf("burst %d interval %v: Resolve = %v; want ok %v", tt.burst, tt.interval, err, tt.ok)
		}
	}
	if got := DefaultDB("/srv/wick"); got != "sqlite:/srv/wick/wick.db" {
		t.Errorf("DefaultDB = %q", got)
	}
}

// TestAccountLimitFlags: --max-products-per-user and
// --max-webhooks-per-owner default to 20 and 100, read their WICK_
// variables, and must be positive.
func TestAccountLimitFlags(t *testing.T) {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Register(fs)
	if c.MaxProductsPerUser != 20 || c.MaxWebhooksPerOwner != 100 {
		t.Errorf("defaults = %d %d", c.MaxProductsPerUser, c.MaxWebhooksPerOwner)
	}
	env := map[string]string{"WICK_MAX_PRODUCTS_PER_USER": "3"}
	if _, err := Parse(fs, []string{"--max-webhooks-per-owner=7"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.MaxProductsPerUser != 3 || c.MaxWebhooksPerOwner != 7 {
		t.Errorf("parsed = %d %d", c.MaxProductsPerUser, c.MaxWebhooksPerOwner)
	}
	for _, bad := range []func(*Serve){
		func(c *Serve) { c.MaxProductsPerUser = 0 },
		func(c *Serve) { c.MaxWebhooksPerOwner = -1 },
	} {
		c := Default()
		c.Data = "/tmp/w"
		bad(&c)
		if err := c.Resolve(); err == nil {
			t.Errorf("resolve accepted %+v", c)
		}
	}
}

// TestCredentialAndProxyFlags: the credential, stream and proxy limits
// have flags with the documented defaults (docs/security.md, Limits), and
// bad values are refused.
func TestCredentialAndProxyFlags(t *testing.T) {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Register(fs)
	if c.AccountFailures != 20 || c.AccountLockout != 15*time.Minute || c.OTPAttempts != 5 || c.HashConcurrency != 0 ||
		c.HashQueue != 16 || c.HashWait != 2*time.Second || c.RateLimitKeys != 100000 || c.SSEOpenRate != 100 || c.SSEOpenWindow != 5*time.Minute ||
		c.SSEMaxPerIP != 100 || c.TrustProxy || len(c.TrustedProxies) != 0 {
		t.Errorf("defaults = %+v", c)
	}
	env := map[string]string{"WICK_TRUSTED_PROXIES": "10.1.2.3", "WICK_SSE_OPEN_RATE": "7"}
	args := []string{"--trusted-proxies", "192.0.2.0/24, 2001:db8::/32", "--account-failures=9", "--hash-queue=0"}
	if _, err := Parse(fs, args, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c.Data = t.TempDir()
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	got, err := c.TrustedProxyPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if err != nil || !slices.Equal(got, want) || c.AccountFailures != 9 || c.SSEOpenRate != 7 || c.HashQueue != 0 {
		t.Errorf("parsed: proxies %v (%v), %+v", got, err, c)
	}
	for name, bad := range map[string]func(*Serve){
		"proxy":            func(c *Serve) { c.TrustedProxies = []string{"10.0.0.0/33"} },
		"proxy name":       func(c *Serve) { c.TrustedProxies = []string{"proxy.example.com"} },
		"account-failures": func(c *Serve) { c.AccountFailures = 0 },
		"account-lockout":  func(c *Serve) { c.AccountLockout = 0 },
		"otp-attempts":     func(c *Serve) { c.OTPAttempts = 0 },
		"hash-queue":       func(c *Serve) { c.HashQueue = -1 },
		"hash-concurrency": func(c *Serve) { c.HashConcurrency = -1 },
		"rate-limit-keys":  func(c *Serve) { c.RateLimitKeys = 0 },
		"sse-open-rate":    func(c *Serve) { c.SSEOpenRate = 0 },
		"sse-open-window":  func(c *Serve) { c.SSEOpenWindow = 0 },
		"sse-max-per-ip":   func(c *Serve) { c.SSEMaxPerIP = 0 },
		"hash-wait":        func(c *Serve) { c.HashWait = 0 },
	} {
		c := Default()
		c.Data = "/tmp/w"
		bad(&c)
		if err := c.Resolve(); err == nil {
			t.Errorf("%s: resolve accepted a bad value", name)
		}
	}
}
