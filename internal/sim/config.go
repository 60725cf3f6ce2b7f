package sim

import (
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// Config is the configuration of a simulation. Start from Default; the
// flag names of Register are a contract (docs and scripts use them).
type Config struct {
	// Server is the device gateway, "host:port".
	Server string
	// API is the REST API base URL; when set, each device's key is
	// provisioned through POST {API}/v1/provisioning/{id}.
	API string
	// Token is the access token for API calls (required with API).
	Token string
	// Count is the number of simulated devices.
	Count int
	// IDPrefix is the hex start of every device ID; a counter fills the
	// rest of the 24 characters.
	IDPrefix string
	// IDStart is the counter of the first device (to run several
	// simulators without overlapping IDs).
	IDStart int
	// ClaimCode, when set, is reported by every device after connecting;
	// a code claims one device, the first to report it (docs/api.md,
	// Claim codes). With API, provisioning then leaves every device
	// without an owner, so that the code decides who owns it. Without
	// it and with API, each device is claimed to the token's owner
	// through POST {API}/v1/devices once it is online.
	ClaimCode string
	// Product, an ID or slug, makes provisioning put every device in that
	// product (product_id of POST {API}/v1/provisioning/{id}); the
	// token's owner must be on its team. It needs API.
	Product string
	// Publish names the sensor event every device publishes each Every.
	Publish string
	// Every is the publishing period (required with Publish).
	Every time.Duration
	// PublishTime makes the data of each published event its publish time
	// in Unix nanoseconds instead of a sensor reading, so that a subscriber
	// sharing the clock can measure publish-to-delivery latency (`wick
	// bench events` does).
	PublishTime bool
	// ServerKey is the file holding the server's public key: PEM, DER or
	// the blob `wick keys server` writes. Empty means
	// Data/server_key.pub.pem.
	ServerKey string
	// Data is a `wick serve` data directory to take the server key from.
	Data string
	// KeysDir persists the generated device keys (<id>.pem); a rerun with
	// the same directory reuses them, which saves the key generation.
	KeysDir string
	// Concurrency bounds the devices connecting (and provisioning) at once.
	Concurrency int
	// Duration stops the simulation after this long; zero runs until the
	// context ends (SIGINT).
	Duration time.Duration
	// Bind lists local IP addresses to spread connections over, so more
	// than ~28,000 connections fit between one pair of addresses.
	Bind []string
	// Platform is the platform ID the devices report (6 = Photon).
	Platform int
	// DeviceDescribe makes the devices post their describes (Hello flag
	// 0x20), as Device OS 1.x and later do.
	DeviceDescribe bool
	// KeepAlive is the devices' ping interval when idle.
	KeepAlive time.Duration
	// ProductVersion is the product firmware version the devices report
	// (0: none, reported as 0xFFFF like non-product firmware).
	ProductVersion int
	// OTA is how the devices take firmware updates.
	OTA OTAConfig
	// UDP runs Gen 3 devices over DTLS/UDP (`wick sim --udp`).
	UDP UDPConfig
	// Quirks makes the devices behave on the wire like real Device OS
	// firmware (docs/device-protocol.md, "Firmware quirks").
	Quirks device.Quirks
	// ConnectTimeout is how long the ramp waits for a device's first
	// connection before moving on (the device keeps trying).
	ConnectTimeout time.Duration
	// Progress is the interval of the progress line on stderr.
	Progress time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// StatusJSON makes the progress lines Status objects in JSON, one
	// every Progress in every phase and one at each phase change, for a
	// parent process to read (ReadStatus).
	StatusJSON bool
	// Ready, if set, is called once from Run when the ramp-up is over:
	// every device has come online or failed its first attempt, and the
	// claims started by then have finished. stats returns the summary so
	// far; it may be called from any goroutine until Run returns. Ready
	// must not block. It has no flag.
	Ready func(stats func() Summary)
	// OnState, if set, is called from a device's goroutine each time the
	// device comes online (after its handshake and Hello) or loses an
	// established connection, with its ID; `wick bench storm` uses it to
	// call only devices already back. It must not block. It has no flag.
	OnState func(id string, online bool)
}

// Default returns the defaults: 10 devices on 127.0.0.1:5683 with IDs
// 510000000000000000000001, ...0002 and so on, 100 connecting at a time.
func Default() Config {
	return Config{
		Server:         "127.0.0.1:5683",
		Count:          10,
		IDPrefix:       "51",
		IDStart:        1,
		Concurrency:    100,
		Platform:       device.PlatformPhoton,
		DeviceDescribe: true,
		KeepAlive:      device.DefaultKeepAlive,
		ConnectTimeout: 30 * time.Second,
		Progress:       time.Second,
		LogLevel:       "warn",
	}
}

// Register binds the flags of `wick sim` to c.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Server, "server", c.Server, "device gateway HOST:PORT")
	fs.StringVar(&c.API, "api", c.API, "REST API base URL; provisions each device's key (POST /v1/provisioning/ID)")
	fs.StringVar(&c.Token, "token", c.Token, "access token for --api")
	fs.IntVar(&c.Count, "count", c.Count, "number of devices")
	fs.StringVar(&c.IDPrefix, "id-prefix", c.IDPrefix, "hex prefix of the device IDs; a counter fills them to 24 characters")
	fs.IntVar(&c.IDStart, "id-start", c.IDStart, "counter of the first device ID")
	fs.StringVar(&c.ClaimCode, "claim-code", c.ClaimCode, "claim code every device reports (it claims the first device that does) and provisioning leaves devices unowned; without it devices are claimed to the --token owner (POST /v1/devices)")
	fs.StringVar(&c.Product, "product", c.Product, "product ID or slug to provision the devices into (needs --api; the --token owner must be on its team)")
	fs.StringVar(&c.Publish, "publish", c.Publish, "event name each device publishes every --every (a sensor value 0-4095)")
	fs.DurationVar(&c.Every, "every", c.Every, "publishing period of --publish")
	fs.BoolVar(&c.PublishTime, "publish-time", c.PublishTime, "publish the send time in Unix nanoseconds as the data of --publish (for latency measurements)")
	fs.StringVar(&c.ServerKey, "server-key", c.ServerKey, "server public key file: PEM, DER, or the blob that wick keys server writes (default <data>/server_key.pub.pem)")
	fs.StringVar(&c.Data, "data", c.Data, "wick serve data directory to read server_key.pub.pem from")
	fs.StringVar(&c.KeysDir, "keys-dir", c.KeysDir, "directory to keep device keys in (<id>.pem), reused by later runs")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "devices connecting at once during the ramp-up")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "stop after this long (default: run until interrupted)")
	fs.Var(config.List{P: &c.Bind}, "bind", "local IP addresses to spread connections over, comma-separated (e.g. 127.0.0.2,127.0.0.3)")
	fs.IntVar(&c.Platform, "platform", c.Platform, "platform ID reported by the devices (0 Core, 6 Photon, 8 P1, 10 Electron)")
	fs.BoolVar(&c.DeviceDescribe, "device-describe", c.DeviceDescribe, "devices post their describes after connecting (Hello flag 0x20)")
	fs.DurationVar(&c.KeepAlive, "keepalive", c.KeepAlive, "idle time before a device pings the server")
	fs.Var(QuirksFlag{P: &c.Quirks}, "firmware-quirks", "behave like Device OS firmware on the wire: alone, every quirk; or a comma-separated list of "+quirkNames)
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "how long the ramp-up waits for one device's first connection")
	fs.DurationVar(&c.Progress, "progress", c.Progress, "interval of the progress line on stderr (0: none)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.BoolVar(&c.StatusJSON, "status-json", c.StatusJSON, "progress lines as JSON objects, every --progress in every phase (for wick bench --sim-processes)")
	c.registerOTA(fs)
	c.registerUDP(fs)
}

// quirkNames lists the quirks for flag help.
var quirkNames = strings.Join([]string{device.QuirkReplyIDs, device.QuirkSplitWrites, device.QuirkNagle, device.QuirkDescribeRequiresFlags}, ", ")

// QuirksFlag is the flag.Value of --firmware-quirks: given alone (a boolean
// flag) it turns every quirk on; =LIST turns on the named ones (see
// device.ParseQuirks).
type QuirksFlag struct{ P *device.Quirks }

// String returns the quirks that are on, comma-separated.
func (f QuirksFlag) String() string {
	if f.P == nil {
		return ""
	}
	return f.P.String()
}

// Set parses a list of quirk names, "true" or "all".
func (f QuirksFlag) Set(s string) error {
	q, err := device.ParseQuirks(s)
	if err != nil {
		return err
	}
	*f.P = q
	return nil
}

// IsBoolFlag lets the flag stand alone, meaning every quirk.
func (QuirksFlag) IsBoolFlag() bool { return true }

// ErrConfig marks an invalid simulation configuration.
var ErrConfig = errors.New("sim: invalid configuration")

// Validate checks c and resolves ServerKey from Data.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Count < 1:
		return bad("--count must be at least 1")
	case c.Concurrency < 1:
		return bad("--concurrency must be at least 1")
	case c.Server == "":
		return bad("--server is required")
	case c.API != "" && c.Token == "":
		return bad("--api needs --token")
	case c.Product != "" && c.API == "":
		return bad("--product needs --api (devices join a product when they are provisioned)")
	case c.Publish != "" && c.Every <= 0:
		return bad("--publish needs --every")
	case c.Publish == "" && c.Every > 0:
		return bad("--every needs --publish")
	case c.Publish == "" && c.PublishTime:
		return bad("--publish-time needs --publish")
	case len(c.Publish) > protocol.MaxEventNameLen:
		return bad("--publish name longer than %d bytes", protocol.MaxEventNameLen)
	case len(c.ClaimCode) > protocol.MaxClaimCodeLen:
		return bad("--claim-code longer than %d characters", protocol.MaxClaimCodeLen)
	case c.Platform < 0 || c.Platform > 0xFFFF:
		return bad("--platform out of range")
	case c.Duration < 0 || c.KeepAlive < 0 || c.ConnectTimeout <= 0 || c.Progress < 0:
		return bad("durations must not be negative")
	}
	if err := c.validateOTA(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return bad("--server %q: want HOST:PORT", c.Server)
	}
	if c.API != "" {
		u, err := url.Parse(c.API)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("--api %q: want an http(s) URL", c.API)
		}
		c.API = strings.TrimRight(c.API, "/")
	}
	if _, err := DeviceID(c.IDPrefix, c.IDStart); err != nil {
		return bad("%v", err)
	}
	if _, err := DeviceID(c.IDPrefix, c.IDStart+c.Count-1); err != nil {
		return bad("%d devices: %v", c.Count, err)
	}
	for _, b := range c.Bind {
		if net.ParseIP(b) == nil {
			return bad("--bind %q is not an IP address", b)
		}
	}
	if err := c.validateUDP(); err != nil {
		return err
	}
	if c.ServerKey == "" {
		if c.Data == "" {
			return bad("--server-key FILE (or --data DIR holding server_key.pub.pem) is required")
		}
		c.ServerKey = filepath.Join(c.Data, "server_key.pub.pem")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// LoadServerKey reads the server's public key from path: PEM or DER (SPKI
// or PKCS#1), or the 512-byte TCP blob `wick keys server` writes.
func LoadServerKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sim: no server key at %s: pass --data with the data directory of the wick serve "+
			"the devices connect to (it writes server_key.pub.pem there on first start), or --server-key FILE: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: server key: %w", err)
	}
	k, err := protocol.ParseRSAPublicKey(b)
	if err == nil {
		return k, nil
	}
	if blob, berr := protocol.DecodeServerKeyBlob(protocol.TransportTCP, b); berr == nil {
		if k, kerr := protocol.ParseRSAPublicKey(blob.KeyDER); kerr == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("sim: server key %s: %w", path, err)
}
