package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// The Gen 3 side of the simulator: `wick sim --udp` runs devices over
// DTLS/UDP with P-256 keys (docs/operations.md, wick sim).

// UDPConfig is the part of Config for Gen 3 devices.
type UDPConfig struct {
	// Enabled runs the devices over DTLS/UDP with P-256 keys instead of
	// TCP with RSA keys.
	Enabled bool
	// Resume makes the devices resume their DTLS session with no
	// handshake whenever they reconnect, as Gen 3 firmware does.
	Resume bool
	// ReconnectEvery drops each device's connection this often (a lost
	// network; with Resume it comes back by resumption). Zero: never.
	ReconnectEvery time.Duration
	// MoveEvery moves each device to a new local port this often, keeping
	// its session (NAT rebinding). Zero: never.
	MoveEvery time.Duration
	// Faults make every device's link lose, repeat and reorder datagrams.
	Faults device.Faults
	// SessionsDir keeps each device's DTLS session between runs, as Device
	// OS keeps it in flash: a device resumes DIR/<id>.session at its first
	// connection (the file is removed as it is read, so a session is tried
	// once) and the run writes every device's last session there when it
	// ends. Empty: none.
	SessionsDir string
}

// sessionFile is where SessionsDir keeps device id's session.
func sessionFile(dir, id string) string { return filepath.Join(dir, id+".session") }

// udpServerKeyFile is the P-256 public key `wick serve` writes to its data
// directory for the DTLS transport.
const udpServerKeyFile = "server_ec_key.pub.pem"

// defaultUDPServer is the UDP address a --udp run uses when --server is
// left at its TCP default.
const defaultUDPServer = "127.0.0.1:5684"

// registerUDP binds the UDP flags of `wick sim` to c.
func (c *Config) registerUDP(fs *flag.FlagSet) {
	u := &c.UDP
	fs.BoolVar(&u.Enabled, "udp", u.Enabled, "simulate Gen 3 devices: DTLS over UDP (default server 127.0.0.1:5684), P-256 keys, provisioned with algorithm=ecc")
	fs.BoolVar(&u.Resume, "resume", u.Resume, "with --udp: reconnect by resuming the saved DTLS session, with no handshake")
	fs.DurationVar(&u.ReconnectEvery, "reconnect-every", u.ReconnectEvery, "drop each device's connection this often, as a lost network would (0: never)")
	fs.StringVar(&u.SessionsDir, "sessions-dir", u.SessionsDir, "with --udp: resume each device's DTLS session saved in DIR/<id>.session by the previous run (once), and save it there at the end")
	fs.DurationVar(&u.MoveEvery, "move-every", u.MoveEvery, "with --udp: move each device to a new local port this often, keeping its session (0: never)")
	fs.Float64Var(&u.Faults.Drop, "udp-drop", u.Faults.Drop, "with --udp: probability of losing a datagram in either direction (0-1)")
	fs.Float64Var(&u.Faults.Duplicate, "udp-duplicate", u.Faults.Duplicate, "with --udp: probability of sending a datagram twice (0-1)")
	fs.Float64Var(&u.Faults.Reorder, "udp-reorder", u.Faults.Reorder, "with --udp: probability of holding a datagram back behind the next (0-1)")
}

// validateUDP checks the UDP settings and picks the UDP defaults for the
// server address and key file.
func (c *Config) validateUDP() error {
	u := &c.UDP
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	for _, p := range []float64{u.Faults.Drop, u.Faults.Duplicate, u.Faults.Reorder} {
		if p < 0 || p > 1 {
			return bad("--udp-drop, --udp-duplicate and --udp-reorder are probabilities from 0 to 1")
		}
	}
	if u.ReconnectEvery < 0 || u.MoveEvery < 0 {
		return bad("durations must not be negative")
	}
	if !u.Enabled {
		if u.Resume || u.MoveEvery > 0 || u.Faults != (device.Faults{}) || u.SessionsDir != "" {
			return bad("--resume, --move-every, --sessions-dir and --udp-* need --udp")
		}
		return nil
	}
	if c.Server == Default().Server {
		c.Server = defaultUDPServer
	}
	if c.ServerKey == "" && c.Data != "" {
		c.ServerKey = filepath.Join(c.Data, udpServerKeyFile)
	}
	return nil
}

// LoadUDPServerKey reads the server's P-256 public key from path: PEM or
// DER (SPKI), or the 320-byte UDP blob `wick keys server --udp` writes.
func LoadUDPServerKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sim: no server key at %s: pass --data with the data directory of the wick serve "+
			"the devices connect to (it writes %s there on first start), or --server-key FILE: %w", path, udpServerKeyFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: server key: %w", err)
	}
	pub, err := protocol.ParsePublicKey(b)
	if err != nil {
		blob, berr := protocol.DecodeServerKeyBlob(protocol.TransportUDP, b)
		if berr != nil {
			return nil, fmt.Errorf("sim: server key %s: %w", path, err)
		}
		if pub, err = protocol.ParsePublicKey(blob.KeyDER); err != nil {
			return nil, fmt.Errorf("sim: server key %s: %w", path, err)
		}
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sim: server key %s is not a P-256 key (with --udp, use %s or the blob of wick keys server --udp)", path, udpServerKeyFile)
	}
	return ec, nil
}

// deviceKeyFor returns the device's private key DER for the transport:
// RSA-1024 over TCP (deviceKey), P-256 over UDP, kept as <id>.p256.pem in
// dir so that TCP and UDP runs can share one keys directory.
func (s *sim) deviceKeyFor(id string) (der []byte, generated bool, err error) {
	if !s.cfg.UDP.Enabled {
		return deviceKey(s.cfg.KeysDir, id)
	}
	path := ""
	if dir := s.cfg.KeysDir; dir != "" {
		path = filepath.Join(dir, id+".p256.pem")
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			k, err := protocol.ParsePrivateKey(b)
			if err != nil {
				return nil, false, fmt.Errorf("sim: key %s: %w", path, err)
			}
			der, err := protocol.MarshalPrivateKeyDER(k)
			return der, false, err
		case !errors.Is(err, fs.ErrNotExist):
			return nil, false, fmt.Errorf("sim: key: %w", err)
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("sim: %w", err)
	}
	if der, err = protocol.MarshalPrivateKeyDER(k); err != nil {
		return nil, false, err
	}
	if path != "" {
		pemBytes, err := protocol.MarshalPrivateKeyPEM(k)
		if err != nil {
			return nil, false, err
		}
		if err := writeFileAtomic(path, pemBytes, 0o600); err != nil {
			return nil, false, fmt.Errorf("sim: save key: %w", err)
		}
	}
	return der, true, nil
}

// publicKeyPEM returns the public half of a device key DER as PEM, with the
// algorithm POST /v1/provisioning takes for it ("rsa" or "ecc").
func publicKeyPEM(der []byte) (pemKey []byte, algorithm string, err error) {
	k, err := protocol.ParsePrivateKey(der)
	if err != nil {
		return nil, "", err
	}
	algorithm = "rsa"
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		algorithm = "ecc"
	}
	pemKey, err = protocol.MarshalPublicKeyPEM(k.Public())
	return pemKey, algorithm, err
}

// udpDialers returns one dialer per --bind address for UDP sockets.
func udpDialers(bind []string) []*net.Dialer {
	var ds []*net.Dialer
	for _, b := range bind {
		ds = append(ds, &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(b)}})
	}
	return ds
}

// newDevice creates a device from cfg, set up for the simulation's
// transport, and starts its reconnect and move timers (which stop with
// ctx).
func (s *sim) newDevice(ctx context.Context, d *simDevice, cfg device.Config) (*device.Device, error) {
	u := s.cfg.UDP
	if u.Enabled {
		cfg.Transport = protocol.TransportUDP
		cfg.ServerKey, cfg.ECServerKey = nil, s.ecServerKey
		cfg.UDP = device.UDPOptions{Resume: u.Resume, Faults: u.Faults}
		if s.cfg.KeepAlive == device.DefaultKeepAlive {
			cfg.KeepAlive = 0 // the UDP default, like Wi-Fi firmware
		}
		if u.SessionsDir != "" {
			path := sessionFile(u.SessionsDir, d.id)
			if b, err := os.ReadFile(path); err == nil {
				os.Remove(path) // tried once: a stale session would cost a resumption timeout
				cfg.UDP.Session = b
			}
			cfg.UDP.OnSession = func(state []byte) { d.session.Store(&state) }
		}
	}
	dev, err := device.New(cfg)
	if err != nil && cfg.UDP.Session != nil {
		s.warn("session", "sim: saved session not used", "device", d.id, "err", err)
		cfg.UDP.Session = nil
		dev, err = device.New(cfg)
	}
	if err != nil {
		return nil, err
	}
	every(ctx, u.ReconnectEvery, func() {
		// Only a connection that is up is dropped: a handshake slower than
		// the period would otherwise never finish.
		if dev.State() == device.Online {
			dev.Disconnect()
		}
	})
	if u.Enabled {
		every(ctx, u.MoveEvery, func() {
			if err := dev.ChangeAddress(ctx); err != nil && !errors.Is(err, device.ErrNotUDP) {
				s.warn("move", "sim: change address", "device", dev.ID(), "err", err)
			}
		})
	}
	return dev, nil
}

// every calls fn every d (first after a random part of d, to spread the
// devices) until ctx ends; d ≤ 0 does nothing. A timer, not a goroutine,
// waits between calls, so idle devices cost no stack.
func every(ctx context.Context, d time.Duration, fn func()) {
	if d <= 0 {
		return
	}
	var tick func()
	tick = func() {
		if ctx.Err() != nil {
			return
		}
		fn()
		time.AfterFunc(d, tick)
	}
	time.AfterFunc(rand.N(d)+1, tick)
}

// saveSessions writes every device's last DTLS session to
// UDPConfig.SessionsDir (after the devices have stopped), on all cores.
func (s *sim) saveSessions() {
	dir := s.cfg.UDP.SessionsDir
	if dir == "" {
		return
	}
	var saved, failed atomic.Int64
	s.eachDevice(context.Background(), runtime.GOMAXPROCS(0), func(d *simDevice) {
		st := d.session.Load()
		if st == nil {
			return
		}
		if err := writeFileAtomic(sessionFile(dir, d.id), *st, 0o600); err != nil {
			if failed.Add(1) == 1 {
				s.log.Warn("sim: save session", "device", d.id, "err", err)
			}
			return
		}
		saved.Add(1)
	})
	s.log.Debug("sim: sessions saved", "dir", dir, "saved", saved.Load(), "failed", failed.Load())
}
