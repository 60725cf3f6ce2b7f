package gateway

import (
	"os"
	"runtime"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultHelloTimeout     = 10 * time.Second
	DefaultIdleTimeout      = 40 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultCallTimeout      = 20 * time.Second
	DefaultEventRate        = 1.0
	DefaultEventBurst       = 4
	DefaultLastHeardFlush   = 30 * time.Second
	DefaultDescribeWait     = 10 * time.Second
	DefaultDeviceQueue      = 16
	DefaultRouterBuffer     = 4096
	DefaultHandshakeIdle    = 10 * time.Second
	DefaultHandshakeRate    = 10.0
	DefaultHandshakeBurst   = 100
	// DefaultUDPIdleTimeout is 2 × the 25 s Wi-Fi keepalive of a Gen 3
	// device plus its 45 s retransmission span.
	DefaultUDPIdleTimeout = 95 * time.Second
	// DefaultUDPCellularIdleTimeout is 2 × the 23 min cellular keepalive
	// plus the retransmission span.
	DefaultUDPCellularIdleTimeout = 46*time.Minute + 45*time.Second
	// DefaultUDPReachRate is wick serve's Config.UDPReachRate: Gen 3
	// devices reached per second at start.
	DefaultUDPReachRate = 200
	// DefaultUDPReachInFlight is Config.UDPReachInFlight's default: half
	// of the resume lookups that may run at once, so that devices resuming
	// on their own still find one free.
	DefaultUDPReachInFlight = maxResumeLookups / 2
	// DefaultUDPParkAfter is how long a quiet Gen 3 session keeps its
	// goroutine before it parks.
	DefaultUDPParkAfter = 2 * time.Second
	// DefaultMaxUDPHandshakes bounds the Gen 3 handshakes in progress.
	DefaultMaxUDPHandshakes = 10000
	// DefaultSavedSessionAge is how long a saved Gen 3 session may go
	// unused before it is deleted.
	DefaultSavedSessionAge = 30 * 24 * time.Hour
	// DefaultHandshakeKeys is how many addresses the handshake rate limit
	// tracks (the least recently seen are forgotten first).
	DefaultHandshakeKeys = 100000
	// DefaultStartQueue is how many TCP connections may wait for an
	// admission slot (Config.MaxStarting).
	DefaultStartQueue = 8192
	// DefaultAdmissionHold bounds how long an online session keeps its
	// admission slot while its describe is not stored yet.
	DefaultAdmissionHold = 2 * time.Second
	// startingPerCore is the default of Config.MaxStarting per core.
	startingPerCore = 128
)

// System events have their own, more generous bucket: the firmware sends a
// handful right after each handshake and limits itself to 255 per ~65 s.
const (
	systemEventRate  = 4.0
	systemEventBurst = 32
)

// Config configures a Gateway. The zero value is usable: New replaces each
// zero field with the default named in its comment.
type Config struct {
	// Node names this gateway process in the store (Device.Node) and in
	// presence messages. It must be stable across restarts and unique per
	// process: at start New marks offline every device the store still
	// shows as held by this node (crash recovery, store.ResetNode).
	// Default: the host name, or the bus's node name if that fails.
	Node string
	// HandshakeTimeout bounds the whole handshake, from accept to the
	// device's Hello; every read and write of it has this deadline.
	// Default 30 s (the firmware gives up on each handshake read after 20 s).
	HandshakeTimeout time.Duration
	// HandshakeIdle bounds the wait for the device's first handshake block
	// after the server sent its nonce (within HandshakeTimeout): a
	// connection that sends nothing is closed after it. Device OS sends the
	// block as soon as it has encrypted it. Default 10 s.
	HandshakeIdle time.Duration
	// HandshakeRate is the sustained number of handshakes per second one
	// address (IPv6: one /64) may start, and HandshakeBurst the burst above
	// it. Connections over it are closed before any RSA operation and
	// counted in Stats.HandshakesLimited. A negative HandshakeRate disables
	// the limit. Defaults 10 and 100 (a fleet behind one NAT reconnecting
	// after a restart comes back at 10 per second after the first 100).
	HandshakeRate  float64
	HandshakeBurst int
	// HelloTimeout bounds the wait for the device's Hello after the session
	// keys were sent (within HandshakeTimeout). Default 10 s.
	HelloTimeout time.Duration
	// IdleTimeout closes a session (device offline) after this long
	// without any frame from the device. Devices ping after 15 s of
	// silence and reconnect when the ping is not answered within 10 s, so
	// a live device is never silent for more than about 25 s. Default 40 s.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to a device; a device that does not
	// read is disconnected after it. Default 10 s.
	WriteTimeout time.Duration
	// MaxFrame is the largest frame (ciphertext bytes) accepted from a
	// device. Default protocol.DefaultMaxFrameLen (4096).
	MaxFrame int
	// MaxHandshakes caps the RSA operations that run at once. The slot is
	// held only for the CPU work (decrypting the device's hello, signing
	// the session key), never while waiting for the network, so more
	// slots than cores would add no throughput; waiting handshakes queue
	// until their handshake deadline. Default runtime.GOMAXPROCS(0).
	MaxHandshakes int
	// MaxStarting caps the device sessions that are starting: from the
	// device's handshake block (before the first RSA operation) until the
	// device is online and its application describe stored (or
	// AdmissionHold after online). StartQueue more connections wait for a
	// slot, each at most HandshakeIdle; connections beyond are closed at
	// once and counted (Stats.AdmissionRefused). Gen 3 starts share the
	// slots: a handshake from its ClientHello with a valid cookie (before
	// the signature), a resumption from its first record (before the store
	// reads); a Gen 3 start beyond the queue is dropped unanswered and the
	// device retransmits (Stats.UDPAdmissionDropped). This keeps a reconnect
	// storm's handshakes and store writes from starving the devices already
	// online (docs/operations.md, "Reconnect storms"). Size it as the
	// handshakes per second the node can do times the seconds a start takes
	// (about 1.5 round trips to the device plus two store writes).
	// Default 128 × GOMAXPROCS; negative: no admission.
	MaxStarting int
	// StartQueue bounds the connections waiting for an admission slot.
	// Default DefaultStartQueue; negative: none wait.
	StartQueue int
	// AdmissionHold bounds how long an online session whose application
	// describe is not stored yet keeps its admission slot. Default
	// DefaultAdmissionHold.
	AdmissionHold time.Duration
	// CallTimeout bounds a function call, variable read, signal or ping
	// when the caller's context has no earlier deadline, and each describe
	// request. Default 20 s.
	CallTimeout time.Duration
	// EventRate is the sustained number of events per second a device may
	// publish, and EventBurst the burst above it (a token bucket, like
	// Particle's "1 per second on average, bursts of 4"). Excess events are
	// dropped and counted; a confirmable one is answered with ACK 4.00
	// (docs/particle-protocol.md#events "slow down"). A negative EventRate
	// disables the limit. Defaults 1 and 4. System events (spark/...,
	// particle/...) use a separate bucket of 4 per second with bursts of 32.
	EventRate  float64
	EventBurst int
	// LastHeardFlush is how often the gateway looks for online devices
	// whose stored last-heard time is ten periods or more behind, and
	// writes those in one batch (docs/operations.md, idle CPU per ping).
	// Default 30 s.
	LastHeardFlush time.Duration
	// DescribeWait is how long the gateway waits for a device that
	// announces device-initiated describes (Hello flag 0x20) to post them
	// before it asks with GET d itself. Default 10 s.
	DescribeWait time.Duration
	// DeviceQueue bounds the events waiting to be written to one device;
	// beyond it events for that device are dropped and counted. Default 16.
	DeviceQueue int
	// RouterBuffer is the buffer of the gateway's one bus subscription that
	// feeds device subscriptions. Default 4096.
	RouterBuffer int
	// TrustOnFirstUse stores the key a device offers in its handshake when
	// the store has no key for it (unknown device ID, or a device known by
	// ID only), instead of refusing it
	// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key). Default
	// off.
	TrustOnFirstUse bool
	// DisableQuickACK turns off the prompt TCP acknowledgement of every
	// frame a device sends (TCP_QUICKACK on Linux; docs/device-protocol.md,
	// "Quick acknowledgements"). Calls to real firmware then take 40 ms
	// longer; it exists to measure that. Default off.
	DisableQuickACK bool
	// DisableTCPPark keeps a goroutine blocked in the read of every idle
	// Gen 2 session instead of parking it in the gateway's poller
	// (tcp_park.go, Linux). It exists to measure the difference. Default
	// off.
	DisableTCPPark bool
	// UDPIdleTimeout marks a Gen 3 device offline after this long without
	// a datagram from it (docs/device-protocol.md#39-the-dtls-transport, presence):
	// a device on Wi-Fi or Ethernet pings after 25 s of silence, and a
	// device does not notice a vanished server for minutes, so presence
	// comes from this timer. Default 95 s.
	UDPIdleTimeout time.Duration
	// UDPCellularIdleTimeout replaces UDPIdleTimeout for cellular
	// platforms (Boron, B SoM, B5 SoM, Tracker, M SoM...), which ping
	// only every 23 minutes. Default 46 min 45 s.
	UDPCellularIdleTimeout time.Duration
	// MaxUDPHandshakes caps the Gen 3 handshakes in progress (past the
	// cookie exchange); ClientHellos over it are dropped. Default 10000.
	MaxUDPHandshakes int
	// UDPHandshakeRetransmit is the first retransmission timeout of the
	// server's handshake flights (doubling up to 60 s). Default 1 s.
	UDPHandshakeRetransmit time.Duration
	// UDPAckTimeout is the first wait for the device's ACK of a confirmable
	// message before it is sent again (times a random 1–1.5, doubling,
	// 3 resends, then the device counts as gone). Default 4 s, as Device OS.
	UDPAckTimeout time.Duration
	// UDPParkAfter parks a Gen 3 session silent for this long with nothing
	// in flight: its goroutine exits and its keys are kept in compact form
	// until the next datagram, call or event (udp_park.go). Default
	// DefaultUDPParkAfter; negative: never park.
	UDPParkAfter time.Duration
	// UDPReachRate is how many Gen 3 devices per second the gateway
	// reaches at start on their saved sessions (udp_reach.go, "the start
	// sweep"): the devices saved within the last 47 minutes that the store
	// lists offline, at most 32 at once, so that they are online with
	// their subscriptions before their next keep-alive. 0 turns it off
	// (the default here; wick serve uses DefaultUDPReachRate).
	UDPReachRate int
	// UDPReachInFlight bounds the devices the start sweep reaches at once
	// (each waits up to 3 s for its device). Default DefaultUDPReachInFlight.
	UDPReachInFlight int
	// SavedSessionAge deletes saved Gen 3 sessions unused for this long
	// (checked every hour). Default 30 days.
	SavedSessionAge time.Duration
	// OTA configures firmware updates (Flash); zero fields get defaults.
	OTA OTAConfig
	// NodeHeartbeat is how often this gateway tells the others it lives;
	// NodeDeadAfter how long another node may stay silent before this one
	// marks that node's devices offline (cluster.go). Defaults:
	// DefaultNodeHeartbeat, DefaultNodeDeadAfter.
	NodeHeartbeat, NodeDeadAfter time.Duration
}

func (c *Config) setDefaults(busNode string) {
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Node = h
		} else {
			c.Node = busNode
		}
	}
	setDuration(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDuration(&c.HelloTimeout, DefaultHelloTimeout)
	setDuration(&c.HandshakeIdle, DefaultHandshakeIdle)
	if c.HandshakeRate == 0 {
		c.HandshakeRate = DefaultHandshakeRate
	}
	if c.HandshakeBurst <= 0 {
		c.HandshakeBurst = DefaultHandshakeBurst
	}
	setDuration(&c.IdleTimeout, DefaultIdleTimeout)
	setDuration(&c.WriteTimeout, DefaultWriteTimeout)
	setDuration(&c.CallTimeout, DefaultCallTimeout)
	setDuration(&c.LastHeardFlush, DefaultLastHeardFlush)
	setDuration(&c.DescribeWait, DefaultDescribeWait)
	setDuration(&c.UDPIdleTimeout, DefaultUDPIdleTimeout)
	setDuration(&c.UDPCellularIdleTimeout, DefaultUDPCellularIdleTimeout)
	setDuration(&c.SavedSessionAge, DefaultSavedSessionAge)
	if c.UDPParkAfter == 0 {
		c.UDPParkAfter = DefaultUDPParkAfter
	}
	if c.UDPReachInFlight <= 0 {
		c.UDPReachInFlight = DefaultUDPReachInFlight
	}
	setDuration(&c.UDPAckTimeout, protocol.AckTimeout)
	if c.MaxUDPHandshakes <= 0 {
		c.MaxUDPHandshakes = DefaultMaxUDPHandshakes
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = protocol.DefaultMaxFrameLen
	}
	c.MaxFrame = min(c.MaxFrame, protocol.MaxFrameLen)
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = runtime.GOMAXPROCS(0)
	}
	if c.MaxStarting == 0 {
		c.MaxStarting = startingPerCore * runtime.GOMAXPROCS(0)
	}
	switch {
	case c.StartQueue == 0:
		c.StartQueue = DefaultStartQueue
	case c.StartQueue < 0:
		c.StartQueue = 0
	}
	setDuration(&c.AdmissionHold, DefaultAdmissionHold)
	if c.EventRate == 0 {
		c.EventRate = DefaultEventRate
	}
	if c.EventBurst <= 0 {
		c.EventBurst = DefaultEventBurst
	}
	if c.DeviceQueue <= 0 {
		c.DeviceQueue = DefaultDeviceQueue
	}
	if c.RouterBuffer <= 0 {
		c.RouterBuffer = DefaultRouterBuffer
	}
	c.OTA.setDefaults()
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
