package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// Platform IDs of the Gen 2 devices that use the TCP transport
// (docs/particle-protocol.md#hello).
const (
	PlatformCore     = 0
	PlatformPhoton   = 6
	PlatformP1       = 8
	PlatformElectron = 10
)

// Defaults applied by New to zero Config fields.
const (
	DefaultSystemVersion    = 3302 // Device OS 3.3.1, the version docs/particle-protocol.md was verified against
	DefaultKeepAlive        = 15 * time.Second
	DefaultPingTimeout      = 10 * time.Second
	DefaultHandshakeTimeout = 20 * time.Second
	DefaultHelloTimeout     = 4 * time.Second
	DefaultMaxMessageSize   = 1024
)

// Config configures a Device. ID, a private key, ServerAddr and ServerKey
// are required; every other zero field has a working default.
type Config struct {
	// ID is the device ID, 24 hex characters (upper case accepted).
	ID string
	// PrivateKey is the device's RSA key (RSA-1024 on real hardware).
	PrivateKey *rsa.PrivateKey
	// PrivateKeyDER may be given instead of PrivateKey: the key in PKCS#1
	// (or PKCS#8) DER. It is parsed at every connection, which keeps an idle
	// Device about 3 KB smaller; simulators of many devices use it.
	PrivateKeyDER []byte
	// ServerAddr is the gateway's "host:port" (TCP, default port 5683).
	ServerAddr string
	// ServerKey is the pinned server public key (RSA-2048).
	ServerKey *rsa.PublicKey

	// Transport is protocol.TransportTCP (the zero value: Gen 2, TCP 5683,
	// RSA) or protocol.TransportUDP (Gen 3, UDP 5684, DTLS 1.2 with P-256
	// keys). Over UDP, ECPrivateKey (or PrivateKeyDER holding a P-256 key)
	// and ECServerKey replace PrivateKey and ServerKey.
	Transport protocol.Transport
	// ECPrivateKey is the device's P-256 key for the UDP transport.
	ECPrivateKey *ecdsa.PrivateKey
	// ECServerKey is the pinned server P-256 public key for the UDP
	// transport (the key in the 320-byte UDP server key blob).
	ECServerKey *ecdsa.PublicKey
	// UDP holds the settings of the UDP transport: resumption, a saved
	// session and link faults.
	UDP UDPOptions

	// PlatformID goes into the Hello and the system describe; the zero
	// value is the Spark Core (PlatformCore), use PlatformPhoton for a Photon.
	PlatformID uint16
	// ProductID is the product the firmware was built for; zero means
	// PlatformID, as firmware that is not a product build reports.
	ProductID uint16
	// ProductVersion is the product firmware version; zero is reported as
	// 0xFFFF (undefined), as non-product firmware does.
	ProductVersion uint16
	// SystemVersion is the Device OS module version (3302 = 3.3.1);
	// zero means DefaultSystemVersion.
	SystemVersion uint16
	// MaxMessageSize is the largest CoAP message the device accepts,
	// announced in the Hello; zero means DefaultMaxMessageSize.
	MaxMessageSize uint16

	// DeviceDescribe makes the device post its system and application
	// describes itself after connecting (Hello flag 0x20), as Device OS
	// 1.x and later do. Without it the server must ask (GET d).
	DeviceDescribe bool
	// ClaimCode, when set, is published as spark/device/claim/code after
	// every connection until the cloud sends an event named
	// spark/device/claim/... (at most 63 characters).
	ClaimCode string

	// OTA is how the device takes firmware updates; the zero value
	// accepts them.
	OTA OTAOptions

	// Quirks makes the device reproduce wire behaviours of real Device OS
	// firmware that a server must cope with; the zero value is a
	// well-behaved device, AllQuirks turns them all on.
	Quirks Quirks

	// KeepAlive is the idle time (nothing received) after which the device
	// pings the server; zero means DefaultKeepAlive (15 s, like firmware).
	KeepAlive time.Duration
	// PingTimeout is how long a ping may stay unanswered before the device
	// reconnects; zero means DefaultPingTimeout.
	PingTimeout time.Duration
	// HandshakeTimeout bounds the dial and each handshake step; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// HelloTimeout is how long the device waits for the server's Hello;
	// zero means DefaultHelloTimeout (4 s, like TCP firmware).
	HelloTimeout time.Duration
	// Backoff spaces reconnection attempts.
	Backoff Backoff

	// Dial opens the TCP connection; nil means a net.Dialer. Simulators
	// use it to choose the local address.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnState, if set, is called on every state change with the error that
	// ended a connection (nil otherwise). It runs on Run's goroutine and
	// must not block.
	OnState func(s State, err error)
	// OnSignal, if set, is called when the cloud starts (true) or stops
	// (false) signaling ("shouting rainbows"). It must not block.
	OnSignal func(on bool)
	// Logger receives connection diagnostics; nil discards them.
	Logger *slog.Logger
}

// Quirks are wire behaviours of real Device OS firmware (Gen 2, TCP), off
// by default, for testing servers against them (docs/device-protocol.md,
// "Firmware quirks").
type Quirks struct {
	// ReplyIDs answers a ping, a signal and a key change with the device's
	// own next message ID instead of the request's, as Device OS does over
	// TCP: it builds these replies in the request's buffer, and its channel
	// stamps them with its own counter. The ACK of a signal keeps the
	// request's token.
	ReplyIDs bool
	// SplitWrites writes the empty ACK of a variable read or describe
	// request and the response after it as two writes, as Device OS does;
	// otherwise both frames go in one write. (A function's result is always
	// a write of its own: the handler runs later, on the application queue.)
	SplitWrites bool
	// Nagle leaves Nagle's algorithm on for the TCP connection, as on the
	// firmware's TCP stack (Go turns it off): a small write waits while an
	// earlier one is unacknowledged, so a response written right after an
	// empty ACK waits for the server's TCP acknowledgement of it.
	Nagle bool
	// DescribeRequiresFlags answers a describe request without flags (GET d
	// with no Uri-Query) with 4.00, as Device OS 3.3 and later do; otherwise
	// it gets the full describe, system and application in one object, as
	// from Device OS before 3.3 (and as other servers expect).
	DescribeRequiresFlags bool
}

// Names of the quirks, as ParseQuirks and Quirks.String spell them.
const (
	QuirkReplyIDs              = "reply-ids"
	QuirkSplitWrites           = "split-writes"
	QuirkNagle                 = "nagle"
	QuirkDescribeRequiresFlags = "describe-requires-flags"
)

// AllQuirks returns Quirks with every behaviour on.
func AllQuirks() Quirks {
	return Quirks{ReplyIDs: true, SplitWrites: true, Nagle: true, DescribeRequiresFlags: true}
}

func (q *Quirks) fields() []struct {
	name string
	on   *bool
} {
	return []struct {
		name string
		on   *bool
	}{
		{QuirkReplyIDs, &q.ReplyIDs}, {QuirkSplitWrites, &q.SplitWrites},
		{QuirkNagle, &q.Nagle}, {QuirkDescribeRequiresFlags, &q.DescribeRequiresFlags},
	}
}

// String lists the quirks that are on, comma-separated ("" for none).
func (q Quirks) String() string {
	var names []string
	for _, f := range q.fields() {
		if *f.on {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ",")
}

// ParseQuirks parses a comma-separated list of quirk names; "all" (or
// "true") turns every quirk on, "" (or "none", "false") none.
func ParseQuirks(list string) (Quirks, error) {
	var q Quirks
	for _, name := range strings.Split(list, ",") {
		switch name = strings.TrimSpace(strings.ToLower(name)); name {
		case "", "none", "false":
			continue
		case "all", "true":
			q = AllQuirks()
			continue
		}
		found := false
		for _, f := range q.fields() {
			if f.name == name {
				*f.on, found = true, true
			}
		}
		if !found {
			return Quirks{}, fmt.Errorf("%w: unknown quirk %q (want %s, %s, %s, %s or all)", ErrConfig, name,
				QuirkReplyIDs, QuirkSplitWrites, QuirkNagle, QuirkDescribeRequiresFlags)
		}
	}
	return q, nil
}

// Backoff is the reconnection schedule: the n-th consecutive failed attempt
// waits a random duration in [d/2, d] where d = min(Max, Min·2ⁿ⁻¹). The
// count restarts once a connection has come online.
type Backoff struct {
	// Min is the first delay; zero means 1 s.
	Min time.Duration
	// Max caps the delay; zero means 60 s.
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = time.Second
	}
	if b.Max <= 0 {
		b.Max = time.Minute
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// Delay returns the wait before attempt n (n ≥ 1 failed attempts so far),
// with jitter.
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Config errors returned by New.
var (
	// ErrConfig means a Config without a required field or with an invalid one.
	ErrConfig = errors.New("device: invalid config")
)

// normalize validates c and fills in its defaults.
func (c Config) normalize() (Config, protocol.DeviceID, error) {
	id, err := protocol.ParseDeviceID(c.ID)
	if err != nil {
		return c, id, fmt.Errorf("%w: ID %q: %w", ErrConfig, c.ID, err)
	}
	udp := c.Transport == protocol.TransportUDP
	switch {
	case c.Transport != protocol.TransportTCP && !udp:
		return c, id, fmt.Errorf("%w: unknown Transport %d", ErrConfig, c.Transport)
	case !udp && c.PrivateKey == nil && len(c.PrivateKeyDER) == 0:
		return c, id, fmt.Errorf("%w: PrivateKey or PrivateKeyDER is required", ErrConfig)
	case !udp && c.ServerKey == nil:
		return c, id, fmt.Errorf("%w: ServerKey is required", ErrConfig)
	case udp && c.ECPrivateKey == nil && len(c.PrivateKeyDER) == 0:
		return c, id, fmt.Errorf("%w: ECPrivateKey or PrivateKeyDER is required over UDP", ErrConfig)
	case udp && (c.ECServerKey == nil || c.ECServerKey.Curve != elliptic.P256()):
		return c, id, fmt.Errorf("%w: ECServerKey (P-256) is required over UDP", ErrConfig)
	case c.ServerAddr == "":
		return c, id, fmt.Errorf("%w: ServerAddr is required", ErrConfig)
	case len(c.ClaimCode) > protocol.MaxClaimCodeLen:
		return c, id, fmt.Errorf("%w: ClaimCode longer than %d", ErrConfig, protocol.MaxClaimCodeLen)
	}
	port := protocol.DefaultTCPPort
	if udp {
		port = protocol.DefaultUDPPort
		if _, err := c.ecKey(); err != nil {
			return c, id, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if c.KeepAlive <= 0 {
			c.KeepAlive = DefaultUDPKeepAlive
		}
		if c.PingTimeout <= 0 {
			c.PingTimeout = DefaultUDPPingTimeout
		}
	} else if c.PrivateKey == nil {
		// Parse once to fail early; the parsed key is not kept.
		if _, err := protocol.ParseRSAPrivateKey(c.PrivateKeyDER); err != nil {
			return c, id, fmt.Errorf("%w: PrivateKeyDER: %w", ErrConfig, err)
		}
	}
	if _, _, err := net.SplitHostPort(c.ServerAddr); err != nil {
		c.ServerAddr = net.JoinHostPort(c.ServerAddr, fmt.Sprint(port))
	}
	if c.ProductID == 0 {
		c.ProductID = c.PlatformID
	}
	if c.ProductVersion == 0 {
		c.ProductVersion = 0xFFFF
	}
	if c.SystemVersion == 0 {
		c.SystemVersion = DefaultSystemVersion
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.KeepAlive, DefaultKeepAlive}, {&c.PingTimeout, DefaultPingTimeout},
		{&c.HandshakeTimeout, DefaultHandshakeTimeout}, {&c.HelloTimeout, DefaultHelloTimeout}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, id, nil
}

// privateKey returns the parsed private key.
func (c *Config) privateKey() (*rsa.PrivateKey, error) {
	if c.PrivateKey != nil {
		return c.PrivateKey, nil
	}
	k, err := protocol.ParseRSAPrivateKey(c.PrivateKeyDER)
	if err != nil {
		return nil, fmt.Errorf("device: private key: %w", err)
	}
	return k, nil
}

// ecKey returns the device's P-256 key for the UDP transport.
func (c *Config) ecKey() (*ecdsa.PrivateKey, error) {
	if c.ECPrivateKey != nil {
		if c.ECPrivateKey.Curve != elliptic.P256() {
			return nil, errors.New("device: ECPrivateKey is not a P-256 key")
		}
		return c.ECPrivateKey, nil
	}
	k, err := protocol.ParsePrivateKey(c.PrivateKeyDER)
	if err != nil {
		return nil, fmt.Errorf("device: private key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("device: PrivateKeyDER is not a P-256 key")
	}
	return ec, nil
}
