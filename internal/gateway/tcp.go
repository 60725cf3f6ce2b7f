package gateway

// The TCP transport (docs/particle-protocol.md#the-tcp-transport): the RSA
// handshake and the AES-128-CBC frames. This file and the session fields
// opener, sealer and hdr are all that is TCP-specific; the DTLS transport
// (udp*.go, dtls*.go) supplies its own handshake and frames through the same
// transport interface (transport.go) and reuses the session, dispatch and
// everything above them unchanged.

import (
	"context"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/wick-cloud/wick/internal/netlimit"
	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Handshake refusals
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key). They are
// logged at Info with the device ID and counted in Stats.
var (
	errUnknownDevice = errors.New("gateway: unknown device or no key on file")
	errKeyMismatch   = errors.New("gateway: device key differs from the key on file")
	errBadStoredKey  = errors.New("gateway: stored device key is not an RSA key")
	errDenied        = errors.New("gateway: device is denied")
	errHandshakeBusy = errors.New("gateway: no handshake slot before the deadline")
	errHandshakeRate = errors.New("gateway: too many handshakes from the address")
)

// handshakeLimiter returns the per-address handshake limit of cfg, nil
// when it is off.
func handshakeLimiter(cfg Config) *ratelimit.Buckets {
	if cfg.HandshakeRate < 0 {
		return nil
	}
	return ratelimit.NewBuckets(cfg.HandshakeBurst, time.Duration(float64(time.Second)/cfg.HandshakeRate), DefaultHandshakeKeys)
}

// handshake runs steps 1-5 of docs/particle-protocol.md#tcp-handshake on the
// session's connection:
//
//	nonce (40 B) → device block (256 B) → [RSA decrypt] → key lookup →
//	[RSA encrypt + sign] → ct ‖ sig (384 B)
//
// It uses protocol's pure steps rather than protocol.ServerHandshake so that
// a handshake slot (Config.MaxHandshakes) is held only during the two RSA
// private-key operations, never while a slow or silent peer is read from.
// The whole exchange, and the Hello after it, share one deadline.
func (tcpTransport) handshake(s *session) error {
	g := s.g
	deadline := s.start.Add(g.cfg.HandshakeTimeout)
	s.deadline = deadline
	if err := s.conn.SetDeadline(deadline); err != nil {
		return s.handshakeFailed("set deadline", err)
	}
	// The rate applies to network peers; in-process transports (net.Pipe
	// in tests and benchmarks) have no address to count.
	if ra, isTCP := s.conn.RemoteAddr().(*net.TCPAddr); isTCP {
		if ok, _ := g.hsRate.Allow(netlimit.Key(ra), s.start); !ok {
			g.stats.handshakesLimited.Add(1)
			s.close(reasonHandshakeRate)
			return errHandshakeRate
		}
	}
	nonce, err := protocol.NewNonce(nil)
	if err != nil {
		return s.handshakeFailed("nonce", err)
	}
	if _, err := s.conn.Write(nonce[:]); err != nil {
		return s.handshakeFailed("write nonce", err)
	}
	// A peer that sends nothing is let go after HandshakeIdle, not after
	// the whole handshake's deadline.
	if err := s.conn.SetReadDeadline(minTime(deadline, time.Now().Add(g.cfg.HandshakeIdle))); err != nil {
		return s.handshakeFailed("set deadline", err)
	}
	block := make([]byte, protocol.DeviceHelloSize) // New checked the key size
	if _, err := io.ReadFull(s.conn, block); err != nil {
		return s.handshakeFailed("read device hello", err)
	}
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return s.handshakeFailed("set deadline", err)
	}
	// From here to online with a stored describe the session holds an
	// admission slot (admission.go): a storm waits here, not in the RSA
	// slots and the store, where it would slow the devices already online.
	if err := s.admit(); err != nil {
		return s.handshakeFailed("admission", err)
	}
	var hello protocol.DeviceHello
	err = g.withHandshakeSlot(deadline, func() (err error) {
		hello, err = protocol.OpenDeviceHello(g.key, nonce[:], block)
		return err
	})
	if err != nil {
		return s.handshakeFailed("open device hello", err)
	}
	s.id = hello.ID.String()
	pub, err := s.deviceKey(deadline, hello.ID, hello.PublicKeyDER)
	if err != nil {
		return s.refused(err)
	}
	var (
		keys protocol.SessionKeys
		msg  []byte
	)
	err = g.withHandshakeSlot(deadline, func() (err error) {
		keys, msg, err = protocol.SealSessionKeys(nil, g.key, pub)
		return err
	})
	if err != nil {
		return s.handshakeFailed("seal session keys", err)
	}
	if _, err := s.conn.Write(msg); err != nil {
		return s.handshakeFailed("write session keys", err)
	}
	s.opener, s.sealer = protocol.NewFrameCiphers(keys, g.cfg.MaxFrame, protocol.MaxFrameLen)
	s.sid = newSessionID()
	seed := randomBytes(3)
	s.ids = protocol.NewMessageIDs(uint16(seed[0])<<8 | uint16(seed[1]))
	s.tokens = protocol.NewTokens(seed[2])
	return nil
}

// withHandshakeSlot runs fn while holding one of Config.MaxHandshakes
// slots, waiting for one until deadline.
func (g *Gateway) withHandshakeSlot(deadline time.Time, fn func() error) error {
	select {
	case g.hsSem <- struct{}{}:
	default:
		t := time.NewTimer(time.Until(deadline))
		select {
		case g.hsSem <- struct{}{}:
			t.Stop()
		case <-t.C:
			return errHandshakeBusy
		case <-g.ctx.Done():
			t.Stop()
			return ErrClosed
		}
	}
	defer func() { <-g.hsSem }()
	return fn()
}

// deviceKey returns the key the session is encrypted to: the stored key of
// the device, which the offered key must equal
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key). With
// Config.TrustOnFirstUse, a device without a stored key (unknown ID, or known
// by ID only) has its offered key stored instead.
func (s *session) deviceKey(deadline time.Time, id protocol.DeviceID, offered []byte) (*rsa.PublicKey, error) {
	g := s.g
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	d, err := g.store.DeviceByID(ctx, id.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		d = nil
	case err != nil:
		return nil, fmt.Errorf("gateway: look up device: %w", err)
	}
	if d != nil && d.Denied {
		return nil, errDenied
	}
	if d == nil || len(d.PublicKey) == 0 {
		if !g.cfg.TrustOnFirstUse || len(offered) == 0 {
			return nil, errUnknownDevice
		}
		return s.trustOnFirstUse(ctx, id, offered)
	}
	s.storedProduct = d.ProductID
	if d.KeyAlgorithm != "" && d.KeyAlgorithm != store.KeyRSA {
		return nil, errBadStoredKey
	}
	pub, err := protocol.ParseRSAPublicKey(d.PublicKey)
	if err != nil {
		return nil, errBadStoredKey
	}
	if err := protocol.CheckOfferedKey(pub, offered); err != nil {
		return nil, errKeyMismatch
	}
	return pub, nil
}

// trustOnFirstUse stores the key the device offered as its key.
func (s *session) trustOnFirstUse(ctx context.Context, id protocol.DeviceID, offered []byte) (*rsa.PublicKey, error) {
	pub, err := protocol.ParseRSAPublicKey(offered)
	if err != nil {
		return nil, errKeyMismatch
	}
	der, err := protocol.CanonicalPublicKeyDER(offered)
	if err != nil {
		return nil, errKeyMismatch
	}
	d, err := s.g.store.ProvisionDevice(ctx, id.String(), store.KeyRSA, der, 0)
	if err != nil {
		return nil, fmt.Errorf("gateway: store offered key: %w", err)
	}
	s.storedProduct = d.ProductID
	s.g.log.Info("gateway: device key trusted on first use", "device", id.String(), "addr", s.ip)
	return pub, nil
}

// handshakeFailed counts and logs a handshake that broke off (garbage, a
// silent peer, a wrong server key on the device...). These are logged at
// Debug: port scanners would otherwise fill the log.
func (s *session) handshakeFailed(step string, err error) error {
	s.g.stats.handshakesFailed.Add(1)
	s.g.log.Debug("gateway: handshake failed", "addr", s.ip, "device", s.id, "step", step, "err", err)
	return fmt.Errorf("gateway: handshake: %s: %w", step, err)
}

// refused counts and logs a device the gateway refuses to talk to.
func (s *session) refused(err error) error {
	g := s.g
	g.stats.handshakesFailed.Add(1)
	switch {
	case errors.Is(err, errUnknownDevice):
		g.stats.refusedUnknown.Add(1)
	case errors.Is(err, errKeyMismatch), errors.Is(err, errBadStoredKey):
		g.stats.refusedKey.Add(1)
	case errors.Is(err, errDenied):
		g.stats.refusedDeny.Add(1)
	default:
		g.log.Warn("gateway: handshake failed", "device", s.id, "addr", s.ip, "err", err)
		return err
	}
	g.log.Info("gateway: device refused", "device", s.id, "addr", s.ip, "reason", err)
	return err
}

// readFrame reads one frame and decrypts it in a pooled buffer, which the
// caller returns with putFrameBuf. The buffer is taken only after the
// length prefix arrived, so an idle session holds none. An online session
// of Serve with no byte waiting parks instead (errParked, tcp_park.go).
func (tcpTransport) readFrame(s *session) (*frameBuf, []byte, error) {
	if err := s.readHeader(); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, protocol.ErrFrameTruncated
		}
		return nil, nil, err
	}
	n := int(binary.BigEndian.Uint16(s.hdr[:]))
	if err := s.opener.CheckLen(n); err != nil {
		return nil, nil, err
	}
	fb := getFrameBuf()
	if cap(fb.b) < n {
		fb.b = make([]byte, n)
	}
	body := fb.b[:n]
	// The poller may have read the frame's start (tcp_park_linux.go).
	if k := s.tp.take(body); k < n {
		if _, err := io.ReadFull(s.conn, body[k:]); err != nil {
			putFrameBuf(fb)
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, nil, protocol.ErrFrameTruncated
			}
			return nil, nil, err
		}
	}
	plain, err := s.opener.Open(body)
	if err != nil {
		putFrameBuf(fb)
		return nil, nil, err
	}
	return fb, plain, nil
}

// writeFrame encrypts wb.enc into one frame and writes it. Called with wmu held.
func (tcpTransport) writeFrame(s *session, wb *writeBuf) error {
	frame, err := s.sealer.Seal(wb.frame[:0], wb.enc)
	if err != nil {
		return err
	}
	wb.frame = frame
	s.conn.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
	_, err = s.conn.Write(frame)
	return err
}
