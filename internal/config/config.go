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
	"net"
	"net/netip"
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
	// Empty disables the TCP gateway. Like HTTP it defaults to loopback:
	// serving a network is an explicit choice (":5683").
	DeviceTCP string
	// DeviceUDP is the device gateway's UDP listen address (Gen 3 devices,
	// DTLS). DeviceUDPAuto, the default, follows DeviceTCP: its host with
	// port 5684 (port 0 when DeviceTCP has port 0, as tests use; off when
	// DeviceTCP is off). Empty disables the UDP gateway.
	DeviceUDP string
	// DeviceUDPIdle and DeviceUDPCellularIdle are how long a Gen 3 device
	// may be silent before it counts as offline; zero: the gateway's
	// defaults (95 s; 46 min 45 s for cellular platforms). Devices never
	// tell the cloud their keep-alive, so a fleet whose firmware sets a
	// longer one needs a longer timeout (docs/device-protocol.md).
	DeviceUDPIdle, DeviceUDPCellularIdle time.Duration
	// DeviceUDPReachRate is how many Gen 3 devices per second the gateway
	// reaches at start on their saved sessions, so that devices that
	// stayed up through a restart are online (and get events) before
	// their next keep-alive; 0 turns it off.
	DeviceUDPReachRate int
	// NATS is the URL of an external NATS server or cluster; empty runs an
	// embedded in-process server with no listening port.
	NATS string
	// NATSReplicas is the JetStream replication factor of the streams and
	// buckets Wick creates on an external NATS (1; 3 in a cluster).
	NATSReplicas int
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
	// TrustProxy takes the client address from X-Forwarded-For added by
	// trusted proxies: TrustedProxies, or loopback and private addresses
	// when that is empty (docs/security.md, Behind a proxy).
	TrustProxy bool
	// TrustedProxies are the addresses or CIDR ranges of the proxies in
	// front of Wick; setting them implies TrustProxy.
	TrustedProxies []string
	// Metrics is the listen address of the operator endpoints, GET
	// /metrics (Prometheus) and GET /healthz, kept off the API listener;
	// empty disables them.
	Metrics string
	// DebugAddr is the listen address of Go's profiling endpoints
	// (/debug/pprof/); empty disables them. A bare ":PORT" listens on
	// 127.0.0.1 (docs/operations.md#profiling).
	DebugAddr string
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
	// HTTPBodyTimeout bounds the reading of a request body, from the end
	// of its headers: a slow upload ends with it. Responses (event
	// streams) are not bounded (docs/security.md, Connection limits).
	HTTPBodyTimeout time.Duration

	// Connection limits (docs/security.md, Connection limits). A Max of 0
	// is derived from the descriptor limit (netlimit.Budget): three
	// quarters of the budget for devices, the rest for the API and the
	// metrics listener.
	MaxDeviceConns       int           // device TCP connections open at once
	DeviceConnsPerIP     int           // device TCP connections per address (IPv6: per /64)
	MaxHTTPConns         int           // API connections open at once
	HTTPConnsPerIP       int           // API connections per address
	MaxMetricsConns      int           // metrics listener connections open at once
	MetricsConnsPerIP    int           // metrics listener connections per address
	DeviceHandshakeRate  float64       // device handshakes per second per address (sustained; negative: no limit)
	DeviceHandshakeBurst int           // device handshakes per address at once, above the rate
	DeviceHandshakeIdle  time.Duration // wait for a device's handshake block after the nonce
	DeviceAdmission      int           // device sessions starting at once (0: 128 per core; negative: no bound)
	DeviceAdmissionQueue int           // device connections waiting to start (0: 8192; negative: none)

	// Rate limits of the Particle API (docs/particle-api.md#rate-limits), per
	// client IP.
	Rate            int           // requests per RateWindow on every route
	RateWindow      time.Duration // window of Rate
	TokenRate       int           // POST /oauth/token requests per TokenWindow
	TokenWindow     time.Duration
	TokenFailures   int           // consecutive failed token requests before a lockout
	TokenLockout    time.Duration // lockout length
	SensitiveRate   int           // DELETE /v1/user and password resets per RateWindow
	ShutdownTimeout time.Duration

	// Credential limits (docs/security.md, Limits). TokenFailures and
	// TokenLockout count wrong credentials per client IP on every route
	// that checks them; these count them per account.
	AccountFailures int           // wrong passwords or codes for one account within AccountLockout
	AccountLockout  time.Duration // how long such an account refuses new addresses
	OTPAttempts     int           // wrong codes before an mfa_token is destroyed
	HashConcurrency int           // argon2id hashes at once (0: one per CPU)
	HashQueue       int           // password checks waiting for a hash slot
	HashWait        time.Duration // longest wait for a hash slot
	RateLimitKeys   int           // addresses, accounts or tokens each limit tracks
	SSEOpenRate     int           // event streams opened per SSEOpenWindow per IP
	SSEOpenWindow   time.Duration
	SSEMaxPerIP     int // event streams open at once per IP

	// PublishBurst and PublishInterval limit POST /v1/devices/events (and
	// the product route) per access token: a burst of PublishBurst events,
	// then one per PublishInterval. 0 turns the per-token limit off, as
	// Particle documents none for the API; Rate still applies (docs/api.md,
	// Publishing).
	PublishBurst    int
	PublishInterval time.Duration

	// Webhook delivery (docs/webhooks.md).
	WebhookAllowPrivate bool          // webhook URLs may reach loopback and private addresses
	WebhookTimeout      time.Duration // one webhook request, end to end
	WebhookRetries      int           // retries after a failed delivery (0: none)
	WebhookWorkers      int           // requests in flight per webhook

	// Per-account limits (docs/webhooks.md, Limits).
	MaxProductsPerUser  int // products one user may own
	MaxWebhooksPerOwner int // webhooks and integrations of one user sandbox or one product

	// Firmware over the air (docs/ota.md).
	OTARate          int   // automatic updates started per minute per product
	FirmwareMaxBytes int64 // largest firmware binary accepted

	// E-mail (docs/operations.md, E-mail): team invitations and password
	// reset tokens go through this SMTP relay. An empty SMTPAddr sends
	// nothing.
	SMTPAddr         string // relay host:port
	SMTPFrom         string // sender address
	SMTPUsername     string // AUTH PLAIN user; empty: no authentication
	SMTPPassword     string // prefer WICK_SMTP_PASSWORD or SMTPPasswordFile to the flag
	SMTPPasswordFile string // file holding the password (first line)
	SMTPTLS          string // starttls, tls or none

	// Access (docs/security.md, Streams end with access).
	StreamAuthCheck   time.Duration // how often an open stream re-checks its token
	StreamAuthRecheck time.Duration // how often it re-reads token and membership from the store
	InviteLifetime    time.Duration // how long a team invitation can be accepted
}

// Default returns the embedded defaults: everything in ./wick-data, HTTP on
// 127.0.0.1:8080 and the device gateway on 127.0.0.1:5683 (both loopback),
// Particle's production rate limits.
func Default() Serve {
	return Serve{
		Data:            "./wick-data",
		HTTP:            "127.0.0.1:8080",
		DeviceTCP:       "127.0.0.1:5683",
		DeviceUDP:       DeviceUDPAuto,
		NATSReplicas:    1,
		LogLevel:        "info",
		LogFormat:       "text",
		MaxBodyBytes:    1 << 20,
		HTTPBodyTimeout: time.Minute,

		DeviceConnsPerIP:     1024,
		HTTPConnsPerIP:       256,
		MaxMetricsConns:      64,
		MetricsConnsPerIP:    16,
		DeviceHandshakeRate:  10,
		DeviceHandshakeBurst: 100,
		DeviceHandshakeIdle:  10 * time.Second,
		DeviceUDPReachRate:   200,

		Rate:            10000,
		RateWindow:      5 * time.Minute,
		TokenRate:       100,
		TokenWindow:     5 * time.Minute,
		TokenFailures:   10,
		TokenLockout:    30 * time.Minute,
		SensitiveRate:   100,
		PublishInterval: time.Second,
		ShutdownTimeout: 10 * time.Second,
		AccountFailures: 20,
		AccountLockout:  15 * time.Minute,
		OTPAttempts:     5,
		HashQueue:       16,
		HashWait:        2 * time.Second,
		RateLimitKeys:   100000,
		SSEOpenRate:     100,
		SSEOpenWindow:   5 * time.Minute,
		SSEMaxPerIP:     100,
		StatsInterval:   time.Minute,
		WebhookTimeout:  20 * time.Second,
		WebhookRetries:  6,
		WebhookWorkers:  8,

		MaxProductsPerUser:  20,
		MaxWebhooksPerOwner: 100,

		OTARate:          60,
		FirmwareMaxBytes: 4 << 20,

		SMTPTLS:           "starttls",
		StreamAuthCheck:   2 * time.Second,
		StreamAuthRecheck: 30 * time.Second,
		InviteLifetime:    7 * 24 * time.Hour,
	}
}

// RegisterStorage binds the flags that locate the data (--data, --db,
// --secret-key-file); the admin subcommands use only these.
func (c *Serve) RegisterStorage(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", c.Data, "data directory: database, keys, event store (wick serve creates it)")
	fs.StringVar(&c.DB, "db", c.DB, "database: sqlite:PATH or postgres://... (default sqlite:<data>/wick.db)")
	fs.StringVar(&c.SecretKeyFile, "secret-key-file", c.SecretKeyFile, "file with the hex key sealing secrets at rest (default <data>/secret.key)")
}

// Register binds every serve flag to fs.
func (c *Serve) Register(fs *flag.FlagSet) {
	c.RegisterStorage(fs)
	fs.StringVar(&c.HTTP, "http", c.HTTP, "REST API listen address")
	fs.StringVar(&c.DeviceTCP, "device-tcp", c.DeviceTCP, "device gateway TCP address (Gen 2 devices); empty disables it")
	fs.StringVar(&c.DeviceUDP, "device-udp", c.DeviceUDP, "device gateway UDP address (Gen 3 devices, DTLS); auto: the --device-tcp host with port 5684; empty disables it")
	fs.DurationVar(&c.DeviceUDPIdle, "device-udp-idle", c.DeviceUDPIdle, "how long a Gen 3 device may be silent before it counts as offline (0: 95s, twice the 25 s keep-alive plus 45 s; raise it for firmware with a longer Particle.keepAlive)")
	fs.DurationVar(&c.DeviceUDPCellularIdle, "device-udp-cellular-idle", c.DeviceUDPCellularIdle, "the same for cellular Gen 3 platforms (0: 46m45s)")
	fs.IntVar(&c.DeviceUDPReachRate, "device-udp-reach-rate", c.DeviceUDPReachRate, "Gen 3 devices per second reached at start on their saved sessions (those saved in the last 47 min and offline), so that they are online and get events before their next keep-alive (0: off)")
	fs.StringVar(&c.NATS, "nats", c.NATS, "external NATS URL (default: embedded in-process NATS, no port)")
	fs.IntVar(&c.NATSReplicas, "nats-replicas", c.NATSReplicas, "JetStream replicas of the streams wick creates on an external NATS cluster (1; 3 for a cluster)")
	fs.StringVar(&c.Node, "node", c.Node, "name of this process on the bus, stable across restarts and unique per process (default host name)")
	fs.BoolVar(&c.Signup, "signup", c.Signup, "open POST /v1/users to anyone")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "externally visible base URL (default http://<http>)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take client addresses from X-Forwarded-For added by trusted proxies (default: loopback and private addresses)")
	fs.Var(List{&c.TrustedProxies}, "trusted-proxies", "addresses or CIDR ranges of the proxies in front of wick, comma-separated (implies --trust-proxy)")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "listen address of GET /metrics (Prometheus) and GET /healthz; keep it private (default: off)")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "listen address of Go's profiling endpoints /debug/pprof/ (a bare :PORT is 127.0.0.1:PORT); never expose it (default: off)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "largest accepted request body in bytes")
	fs.DurationVar(&c.HTTPBodyTimeout, "http-body-timeout", c.HTTPBodyTimeout, "longest time to receive a request body after its headers (responses and event streams are not limited; 0: none)")
	fs.IntVar(&c.MaxDeviceConns, "max-device-conns", c.MaxDeviceConns, "device TCP connections open at once (0: 3/4 of the descriptor limit less headroom)")
	fs.IntVar(&c.DeviceConnsPerIP, "device-conns-per-ip", c.DeviceConnsPerIP, "device TCP connections open at once from one address (IPv6: one /64); raise it for large fleets behind one NAT; 0: no cap")
	fs.IntVar(&c.MaxHTTPConns, "max-http-conns", c.MaxHTTPConns, "API connections open at once (0: 1/4 of the descriptor limit less headroom)")
	fs.IntVar(&c.HTTPConnsPerIP, "http-conns-per-ip", c.HTTPConnsPerIP, "API connections open at once from one address (IPv6: one /64; 0: no cap)")
	fs.IntVar(&c.MaxMetricsConns, "max-metrics-conns", c.MaxMetricsConns, "metrics listener connections open at once (0: no cap)")
	fs.IntVar(&c.MetricsConnsPerIP, "metrics-conns-per-ip", c.MetricsConnsPerIP, "metrics listener connections open at once from one address (0: no cap)")
	fs.Float64Var(&c.DeviceHandshakeRate, "device-handshake-rate", c.DeviceHandshakeRate, "device handshakes per second from one address, sustained (negative: no limit)")
	fs.IntVar(&c.DeviceHandshakeBurst, "device-handshake-burst", c.DeviceHandshakeBurst, "device handshakes from one address at once, above --device-handshake-rate")
	fs.DurationVar(&c.DeviceHandshakeIdle, "device-handshake-idle", c.DeviceHandshakeIdle, "how long a new device connection may stay silent before its handshake")
	fs.IntVar(&c.DeviceAdmission, "device-admission", c.DeviceAdmission, "device sessions starting at once, from the handshake until online with the describe stored (0: 128 per core; negative: no bound)")
	fs.IntVar(&c.DeviceAdmissionQueue, "device-admission-queue", c.DeviceAdmissionQueue, "device connections waiting for --device-admission, each at most --device-handshake-idle; more are closed (0: 8192; negative: none wait)")
	fs.IntVar(&c.Rate, "rate", c.Rate, "requests per --rate-window per client IP, all routes")
	fs.DurationVar(&c.RateWindow, "rate-window", c.RateWindow, "window of --rate and --sensitive-rate")
	fs.IntVar(&c.TokenRate, "token-rate", c.TokenRate, "POST /oauth/token requests per --token-window per IP")
	fs.DurationVar(&c.TokenWindow, "token-window", c.TokenWindow, "window of --token-rate")
	fs.IntVar(&c.TokenFailures, "token-failures", c.TokenFailures, "wrong passwords, client secrets or codes from one IP within --token-lockout before it is locked out")
	fs.DurationVar(&c.TokenLockout, "token-lockout", c.TokenLockout, "how long a locked-out IP is refused (and the window of --token-failures)")
	fs.IntVar(&c.AccountFailures, "account-failures", c.AccountFailures, "wrong passwords or codes for one account, from any IPs, within --account-lockout before it refuses new IPs")
	fs.DurationVar(&c.AccountLockout, "account-lockout", c.AccountLockout, "how long a locked account refuses IPs it was not logged into from (and the window of --account-failures)")
	fs.IntVar(&c.OTPAttempts, "otp-attempts", c.OTPAttempts, "wrong codes before an mfa_token is destroyed")
	fs.IntVar(&c.HashConcurrency, "hash-concurrency", c.HashConcurrency, "password hashes computed at once (0: one per CPU)")
	fs.IntVar(&c.HashQueue, "hash-queue", c.HashQueue, "password checks that may wait for a hash; more are answered 503")
	fs.DurationVar(&c.HashWait, "hash-wait", c.HashWait, "longest wait for a hash before a password check is answered 503")
	fs.IntVar(&c.RateLimitKeys, "rate-limit-keys", c.RateLimitKeys, "IPs, accounts or tokens each limit tracks (least recently seen forgotten first)")
	fs.IntVar(&c.SSEOpenRate, "sse-open-rate", c.SSEOpenRate, "event streams opened per --sse-open-window per IP")
	fs.DurationVar(&c.SSEOpenWindow, "sse-open-window", c.SSEOpenWindow, "window of --sse-open-rate")
	fs.IntVar(&c.SSEMaxPerIP, "sse-max-per-ip", c.SSEMaxPerIP, "event streams open at once per IP")
	fs.IntVar(&c.SensitiveRate, "sensitive-rate", c.SensitiveRate, "DELETE /v1/user and password resets per --rate-window per IP")
	fs.IntVar(&c.PublishBurst, "publish-burst", c.PublishBurst, "events one access token may publish through the API at once, then one per --publish-interval (0: no per-token limit; --rate applies)")
	fs.DurationVar(&c.PublishInterval, "publish-interval", c.PublishInterval, "refill interval of --publish-burst")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "grace period for open requests on shutdown")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "let webhooks reach loopback and private addresses (never link-local or cloud metadata)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "timeout of one webhook request")
	fs.IntVar(&c.WebhookRetries, "webhook-retries", c.WebhookRetries, "retries of a failed webhook delivery, with exponential backoff (0: none)")
	fs.IntVar(&c.WebhookWorkers, "webhook-workers", c.WebhookWorkers, "webhook requests in flight per webhook")
	fs.IntVar(&c.MaxProductsPerUser, "max-products-per-user", c.MaxProductsPerUser, "products one user may own")
	fs.IntVar(&c.MaxWebhooksPerOwner, "max-webhooks-per-owner", c.MaxWebhooksPerOwner, "webhooks and integrations of one user sandbox or one product")
	fs.IntVar(&c.OTARate, "ota-rate", c.OTARate, "automatic firmware updates started per minute per product")
	fs.Int64Var(&c.FirmwareMaxBytes, "firmware-max-bytes", c.FirmwareMaxBytes, "largest firmware binary accepted for flashing or product firmware")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", c.SMTPAddr, "SMTP relay host:port for team invitations and password resets (default: no e-mail)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "sender address of e-mail (required with --smtp-addr)")
	fs.StringVar(&c.SMTPUsername, "smtp-username", c.SMTPUsername, "SMTP AUTH PLAIN user name (default: no authentication)")
	fs.StringVar(&c.SMTPPassword, "smtp-password", c.SMTPPassword, "SMTP password; prefer the WICK_SMTP_PASSWORD variable or --smtp-password-file")
	fs.StringVar(&c.SMTPPasswordFile, "smtp-password-file", c.SMTPPasswordFile, "file whose first line is the SMTP password")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", c.SMTPTLS, "SMTP TLS: starttls (required), tls (from the first byte, port 465) or none (clear text)")
	fs.DurationVar(&c.StreamAuthCheck, "stream-auth-check", c.StreamAuthCheck, "how often an open event stream re-checks its access token")
	fs.DurationVar(&c.StreamAuthRecheck, "stream-auth-recheck", c.StreamAuthRecheck, "how often an open event stream re-reads its token and team membership from the database")
	fs.DurationVar(&c.InviteLifetime, "invite-lifetime", c.InviteLifetime, "how long a team invitation can be accepted")
}

// DeviceUDPAuto is the DeviceUDP value that follows DeviceTCP.
const DeviceUDPAuto = "auto"

// autoDeviceUDP returns the UDP address that goes with a TCP device
// address: the same host, port 5684 (0 when the TCP port is 0).
func autoDeviceUDP(tcp string) string {
	if tcp == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(tcp)
	if err != nil {
		return ""
	}
	if port != "0" {
		port = "5684"
	}
	return net.JoinHostPort(host, port)
}

// Resolve fills the derived defaults (DB, SecretKeyFile, PublicURL) and
// checks the values.
func (c *Serve) Resolve() error {
	if c.Data == "" {
		return fmt.Errorf("config: --data must not be empty")
	}
	if c.DB == "" {
		c.DB = DefaultDB(c.Data)
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
	if c.DeviceUDP == DeviceUDPAuto {
		c.DeviceUDP = autoDeviceUDP(c.DeviceTCP)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("config: --max-body must be positive")
	}
	for name, v := range map[string]int{"max-device-conns": c.MaxDeviceConns, "device-conns-per-ip": c.DeviceConnsPerIP,
		"max-http-conns": c.MaxHTTPConns, "http-conns-per-ip": c.HTTPConnsPerIP, "max-metrics-conns": c.MaxMetricsConns,
		"metrics-conns-per-ip": c.MetricsConnsPerIP, "device-handshake-burst": c.DeviceHandshakeBurst} {
		if v < 0 {
			return fmt.Errorf("config: --%s must not be negative", name)
		}
	}
	for name, v := range map[string]time.Duration{"http-body-timeout": c.HTTPBodyTimeout, "device-handshake-idle": c.DeviceHandshakeIdle} {
		if v < 0 {
			return fmt.Errorf("config: --%s must not be negative", name)
		}
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		return err
	}
	if c.SMTPAddr != "" && c.SMTPFrom == "" {
		return fmt.Errorf("config: --smtp-from is required with --smtp-addr")
	}
	switch c.SMTPTLS {
	case "starttls", "tls", "none":
	default:
		return fmt.Errorf("config: --smtp-tls must be starttls, tls or none, not %q", c.SMTPTLS)
	}
	for name, v := range map[string]int{"account-failures": c.AccountFailures, "otp-attempts": c.OTPAttempts,
		"rate-limit-keys": c.RateLimitKeys, "sse-open-rate": c.SSEOpenRate, "sse-max-per-ip": c.SSEMaxPerIP} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	for name, v := range map[string]int{"hash-concurrency": c.HashConcurrency, "hash-queue": c.HashQueue} {
		if v < 0 {
			return fmt.Errorf("config: --%s must not be negative", name)
		}
	}
	for name, v := range map[string]time.Duration{"account-lockout": c.AccountLockout, "sse-open-window": c.SSEOpenWindow, "hash-wait": c.HashWait} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	for name, v := range map[string]int{"rate": c.Rate, "token-rate": c.TokenRate, "token-failures": c.TokenFailures, "sensitive-rate": c.SensitiveRate} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	if c.Metrics != "" && c.Metrics == c.HTTP && !strings.HasSuffix(c.HTTP, ":0") {
		return fmt.Errorf("config: --metrics must differ from --http: metrics stay off the API listener")
	}
	if c.DebugAddr != "" && (c.DebugAddr == c.HTTP || c.DebugAddr == c.Metrics) && !strings.HasSuffix(c.DebugAddr, ":0") {
		return fmt.Errorf("config: --debug-addr must differ from --http and --metrics")
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
	if c.MaxProductsPerUser <= 0 || c.MaxWebhooksPerOwner <= 0 {
		return fmt.Errorf("config: --max-products-per-user and --max-webhooks-per-owner must be positive")
	}
	if c.OTARate <= 0 || c.FirmwareMaxBytes <= 0 {
		return fmt.Errorf("config: --ota-rate and --firmware-max-bytes must be positive")
	}
	if c.PublishBurst < 0 {
		return fmt.Errorf("config: --publish-burst must not be negative (0 turns the limit off)")
	}
	if c.PublishBurst > 0 && c.PublishInterval <= 0 {
		return fmt.Errorf("config: --publish-interval must be positive")
	}
	for name, v := range map[string]time.Duration{"rate-window": c.RateWindow, "token-window": c.TokenWindow, "token-lockout": c.TokenLockout, "webhook-timeout": c.WebhookTimeout} {
		if v <= 0 {
			return fmt.Errorf("config: --%s must be positive", name)
		}
	}
	return nil
}

// DefaultDB is the database of data directory data when --db is not
// given: SQLite in <data>/wick.db.
func DefaultDB(data string) string {
	return "sqlite:" + filepath.Join(data, "wick.db")
}

// TrustedProxyPrefixes parses TrustedProxies: CIDR ranges, or single
// addresses (a /32 or /128).
func (c *Serve) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range c.TrustedProxies {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("config: --trusted-proxies: %q is neither an address nor a CIDR range", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
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
