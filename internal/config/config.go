// Package config holds the settings of the wick binary and binds them to
// command-line flags, each of which also reads an environment variable.
//
// The rule is uniform: flag --foo-bar reads WICK_FOO_BAR when it is not
// given on the command line. Command-line values win over the environment,
// and the environment over the defaults written here.
package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Serve is the configuration of `wick serve`. Its zero value is not
// meaningful: start from Default.
type Serve struct {
	// Data is the data directory (database, keys). Created if missing.
	Data string
	// HTTP is the REST API listen address.
	HTTP string
	// DB is "sqlite:PATH" or a postgres:// URL. Empty means
	// sqlite:<Data>/wick.db.
	DB string
	// SecretKeyFile holds the 32-byte key that seals secrets at rest
	// (hex). Empty means <Data>/secret.key, created on first start.
	SecretKeyFile string
	// DeviceTCP is the device gateway's TCP listen address (Gen 2 devices).
	// Empty disables the TCP gateway.
	DeviceTCP string
	// NATS is the URL of an external NATS server or cluster; empty runs an
	// embedded in-process server with no listening port.
	NATS string
	// Node names this process on the bus and in the store (which process
	// holds which device). It must be stable across restarts (at start the
	// process marks offline the devices it held before a crash) and unique
	// per process. Empty means the host name.
	Node string
	// Signup opens POST /v1/users to anyone.
	Signup bool
	// PublicURL is the externally visible base URL of the API, used in
	// links the API returns. Empty means http://<HTTP>.
	PublicURL string
	// TrustProxy takes the client address from X-Forwarded-For.
	TrustProxy bool
	// Metrics is the listen address of the operator endpoints, GET
	// /metrics (Prometheus) and GET /healthz, kept off the API listener;
	// empty disables them.
	Metrics string
	// StatsInterval is how often the server checks its drop counters and
	// logs a warning when events were dropped for slow subscribers; 0
	// disables the check. It has no flag.
	StatsInterval time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64

	// Rate limits of the Particle API (cloud-api.md §1.8), per client IP.
	Rate            int           // requests per RateWindow on every route
	RateWindow      time.Duration // window of Rate
	TokenRate       int           // POST /oauth/token requests per TokenWindow
	TokenWindow     time.Duration
	TokenFailures   int           // consecutive failed token requests before a lockout
	TokenLockout    time.Duration // lockout length
	SensitiveRate   int           // DELETE /v1/user and password resets per RateWindow
	ShutdownTimeout time.Duration

	// Webhook delivery (docs/webhooks.md).
	WebhookAllowPrivate bool          // webhook URLs may reach loopback and private addresses
	WebhookTimeout      time.Duration // one webhook request, end to end
	WebhookRetries      int           // retries after a failed delivery (0: none)
	WebhookWorkers      int           // requests in flight per webhook
}

// Default returns the embedded defaults: everything in ./wick-data, HTTP on
// 127.0.0.1:8080, Particle's production rate limits.
func Default() Serve {
	return Serve{
		Data:            "./wick-data",
		HTTP:            "127.0.0.1:8080",
		DeviceTCP:       ":5683",
		LogLevel:        "info",
		LogFormat:       "text",
		MaxBodyBytes:    1 << 20,
		Rate:            10000,
		RateWindow:      5 * time.Minute,
		TokenRate:       100,
		TokenWindow:     5 * time.Minute,
		TokenFailures:   10,
		TokenLockout:    30 * time.Minute,
		SensitiveRate:   100,
		ShutdownTimeout: 10 * time.Second,
		StatsInterval:   time.Minute,
		WebhookTimeout:  20 * time.Second,
		WebhookRetries:  6,
		WebhookWorkers:  8,
	}
}

// RegisterStorage binds the flags that locate the data (--data, --db,
// --secret-key-file); the admin subcommands use only these.
func (c *Serve) RegisterStorage(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", c.Data, "data directory (created if missing)")
	fs.StringVar(&c.DB, "db", c.DB, "database: sqlite:PATH or postgres://... (default sqlite:<data>/wick.db)")
	fs.StringVar(&c.SecretKeyFile, "secret-key-file", c.SecretKeyFile, "file with the hex key sealing secrets at rest (default <data>/secret.key)")
}

// Register binds every serve flag to fs.
func (c *Serve) Register(fs *flag.FlagSet) {
	c.RegisterStorage(fs)
	fs.StringVar(&c.HTTP, "http", c.HTTP, "REST API listen address")
	fs.StringVar(&c.DeviceTCP, "device-tcp", c.DeviceTCP, "device gateway TCP address (Gen 2 devices); empty disables it")
	fs.StringVar(&c.NATS, "nats", c.NATS, "external NATS URL (default: embedded in-process NATS, no port)")
	fs.StringVar(&c.Node, "node", c.Node, "name of this process on the bus, stable across restarts and unique per process (default host name)")
	fs.BoolVar(&c.Signup, "signup", c.Signup, "open POST /v1/users to anyone")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "externally visible base URL (default http://<http>)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take client addresses from X-Forwarded-For")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "listen address of GET /metrics (Prometheus) and GET /healthz; keep it private (default: off)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "largest accepted request body in bytes")
	fs.IntVar(&c.Rate, "rate", c.Rate, "requests per --rate-window per client IP, all routes")
	fs.DurationVar(&c.RateWindow, "rate-window", c.RateWindow, "window of --rate and --sensitive-rate")
	fs.IntVar(&c.TokenRate, "token-rate", c.TokenRate, "POST /oauth/token requests per --token-window per IP")
	fs.DurationVar(&c.TokenWindow, "token-window", c.TokenWindow, "window of --token-rate")
	fs.IntVar(&c.TokenFailures, "token-failures", c.TokenFailures, "consecutive failed token requests before an IP is locked out")
	fs.DurationVar(&c.TokenLockout, "token-lockout", c.TokenLockout, "how long a locked-out IP is refused")
	fs.IntVar(&c.SensitiveRate, "sensitive-rate", c.SensitiveRate, "DELETE /v1/user and password resets per --rate-window per IP")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "grace period for open requests on shutdown")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "let webhooks reach loopback and private addresses (never link-local or cloud metadata)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "timeout of one webhook request")
	fs.IntVar(&c.WebhookRetries, "webhook-retries", c.WebhookRetries, "retries of a failed webhook delivery, with exponential backoff (0: none)")
	fs.IntVar(&c.WebhookWorkers, "webhook-workers", c.WebhookWorkers, "webhook requests in flight per webhook")
}

// Resolve fills the derived defaults (DB, SecretKeyFile, PublicURL) and
// checks the values.
func (c *Serve) Resolve() error {
	if c.Data == "" {
		return fmt.Errorf("config: --data must not be empty")
	}
	if c.DB == "" {
		c.DB = "sqlite:" + filepath.Join(c.Data, "wick.db")
	}
	if c.SecretKeyFile == "" {
		c.SecretKeyFile = filepath.Join(c.Data, "secret.key")
	}
	if c.Node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "wick"
		}
		c.Node = host
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTP
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("config: --max-body must be positive")
	}
	for name, v := range map[string]int{"rate": c.Rate, "token-rate": c.TokenRate, "token-failures": c.TokenFailures, "sensitive-rate": c.SensitiveRate} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	if c.Metrics != "" && c.Metrics == c.HTTP && !strings.HasSuffix(c.HTTP, ":0") {
		return fmt.Errorf("config: --metrics must differ from --http: metrics stay off the API listener")
	}
	if c.StatsInterval < 0 {
		return fmt.Errorf("config: StatsInterval must not be negative")
	}
	if c.WebhookRetries < 0 {
		return fmt.Errorf("config: --webhook-retries must not be negative")
	}
	if c.WebhookWorkers <= 0 {
		return fmt.Errorf("config: --webhook-workers must be positive")
	}
	for name, v := range map[string]time.Duration{"rate-window": c.RateWindow, "token-window": c.TokenWindow, "token-lockout": c.TokenLockout, "webhook-timeout": c.WebhookTimeout} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	return nil
}

// EnvName returns the environment variable read by the flag name:
// "device-tcp" → "WICK_DEVICE_TCP".
func EnvName(flagName string) string {
	return "WICK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse applies the environment to every flag of fs, then parses args, in
// which flags and positional arguments may be interleaved
// ("user create a@b.c --password-stdin"). It returns the positional
// arguments in order.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("config: %s=%q: %w", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
