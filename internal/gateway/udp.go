package gateway

// The Gen 3 transport's socket side (docs/device-protocol.md#39-the-dtls-transport): UDP sockets, the datagram demultiplexer and the tables that
// find a session for a datagram. Sessions are found by connection ID, never
// by address; only a handshake in progress is found by address.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/netlimit"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// maxDatagram is the largest datagram read; Device OS records carry at most
// 1152 bytes of content, so anything longer is not from a device.
const maxDatagram = 2048

// cookieRotateEvery is how often the HelloVerifyRequest cookie secret
// changes; a cookie made under the previous secret is still accepted.
const cookieRotateEvery = 2 * time.Minute

// Bounds of the demultiplexer's bookkeeping.
const (
	// udpInbox is the datagrams queued for one session's goroutine; more
	// are dropped (the device retransmits).
	udpInbox = 8
	// maxResumeLookups bounds the saved-session lookups running at once:
	// datagrams on unknown connection IDs beyond it are dropped.
	maxResumeLookups = 64
	// missCacheSize bounds the connection IDs remembered as unknown, so
	// that a device repeating records on a dead session, or a flood of
	// random IDs, costs one store lookup per ID and minute.
	missCacheSize = 4096
	missCacheTTL  = time.Minute
	// keyCacheSize and keyCacheTTL bound the device key cache.
	keyCacheSize = 10000
	keyCacheTTL  = time.Minute
)

// cidKey is a connection ID as a map key.
type cidKey [dtls.CIDLen]byte

// udpServer is the gateway's Gen 3 state, shared by every UDP socket.
type udpServer struct {
	g        *Gateway
	cfg      dtls.ServerConfig
	cookies  *dtls.Cookies
	saved    store.DTLSSessions // nil: the store cannot save sessions
	stateKey []byte             // seals saved sessions (udp_state.go)
	batch    saveBatcher        // saves of ended sessions (udp_save_batch.go)

	mu       sync.Mutex
	byCID    map[cidKey]*udpConn         // established and resuming sessions
	byAddr   map[netip.AddrPort]*udpConn // handshakes, until the first application record
	sockets  map[net.PacketConn]struct{}
	misses   map[cidKey]time.Time // connection IDs found in no saved session
	keys     map[string]keyEntry  // key's point (keyPoint) → device, for the handshake
	lookups  int                  // resume lookups running
	rotating bool                 // the cookie rotation goroutine runs
	// reachMisses are devices that did not answer on their saved session
	// (udp_reach.go), by device ID.
	reachMisses map[string]time.Time
	reachN      reachCounts // the start sweep (udp_reach_sweep.go)
}

// keyEntry is a cached answer of the device key index.
type keyEntry struct {
	id      string
	product int64
	ok      bool // an ECC key of a device that is not denied
	at      time.Time
}

// udpDatagram is one datagram on its way to a session's goroutine.
type udpDatagram struct {
	b    []byte
	addr netip.AddrPort
	pc   net.PacketConn
}

var datagramPool = sync.Pool{New: func() any { return &udpDatagram{b: make([]byte, 0, maxDatagram)} }}

func getDatagram() *udpDatagram { return datagramPool.Get().(*udpDatagram) }

func putDatagram(d *udpDatagram) {
	if d == nil {
		return
	}
	d.b, d.pc = d.b[:0], nil
	datagramPool.Put(d)
}

// newUDPServer prepares the Gen 3 transport for key, the server's P-256 key.
func newUDPServer(g *Gateway, key *ecdsa.PrivateKey) (*udpServer, error) {
	cookies, err := dtls.NewCookies(randomBytes(dtls.CookieSecretLen))
	if err != nil {
		return nil, fmt.Errorf("gateway: cookies: %w", err)
	}
	sk, err := stateKey(key)
	if err != nil {
		return nil, err
	}
	u := &udpServer{g: g, cookies: cookies, stateKey: sk,
		byCID: make(map[cidKey]*udpConn), byAddr: make(map[netip.AddrPort]*udpConn),
		sockets: make(map[net.PacketConn]struct{}), misses: make(map[cidKey]time.Time),
		keys: make(map[string]keyEntry), reachMisses: make(map[string]time.Time)}
	u.saved, _ = g.store.(store.DTLSSessions)
	u.cfg = dtls.ServerConfig{Key: key, Cookies: cookies, DeviceKey: u.knownKey,
		InitialTimeout: g.cfg.UDPHandshakeRetransmit}
	if err := configureDTLS(&u.cfg); err != nil {
		return nil, err
	}
	return u, nil
}

// ListenUDP opens n UDP sockets on addr that share its port, so that one
// read loop per core serves devices (SO_REUSEPORT: the kernel spreads peers
// over the sockets). Where the platform has no SO_REUSEPORT, or n < 2, it
// opens one socket. With port 0 the first socket picks the port and the
// others join it. Pass each socket to Gateway.ServeUDP.
func ListenUDP(addr string, n int) ([]net.PacketConn, error) {
	if n < 1 || !reusePortSupported {
		n = 1
	}
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = setReusePort
	}
	first, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen udp %s: %w", addr, err)
	}
	pcs := []net.PacketConn{first}
	bound := first.LocalAddr().String()
	for len(pcs) < n {
		pc, err := lc.ListenPacket(context.Background(), "udp", bound)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			return nil, fmt.Errorf("gateway: listen udp %s: %w", bound, err)
		}
		pcs = append(pcs, pc)
	}
	for _, pc := range pcs {
		if uc, ok := pc.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20) // best effort: absorbs a reconnecting fleet
		}
	}
	return pcs, nil
}

// ServeUDP reads Gen 3 datagrams from pc and serves their sessions until
// Shutdown, when it returns ErrClosed and closes pc. It may be called for
// several sockets bound to one port (ListenUDP); a session moves between
// them as its device's address changes. It needs Deps.UDPKey.
func (g *Gateway) ServeUDP(pc net.PacketConn) error {
	u := g.udp
	if u == nil {
		return errors.New("gateway: ServeUDP needs Deps.UDPKey")
	}
	var ac udpAddrPortConn
	if uc, ok := pc.(*net.UDPConn); ok {
		ac = wrapUDP(uc)
		pc = ac // every write on this socket takes the same path
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		pc.Close()
		return ErrClosed
	}
	u.mu.Lock()
	u.sockets[pc] = struct{}{}
	startRotation := !u.rotating
	u.rotating = true
	u.mu.Unlock()
	if startRotation {
		g.bg.Add(3)
		go u.rotateCookies()
		go u.sweep()
		go u.reachRecent()
	}
	g.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.sockets, pc)
		u.mu.Unlock()
	}()
	buf := make([]byte, maxDatagram+1)
	var backoff time.Duration
	for {
		var (
			n    int
			addr netip.AddrPort
			err  error
		)
		if ac != nil {
			n, addr, err = ac.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = pc.ReadFrom(buf)
			if err == nil {
				addr, err = netip.ParseAddrPort(a.String())
			}
		}
		if err != nil {
			if g.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("gateway: read udp: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn("gateway: read udp", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-g.ctx.Done():
				return ErrClosed
			}
			continue
		}
		backoff = 0
		g.stats.udpIn.Add(1)
		if n > maxDatagram {
			g.stats.udpDropped.Add(1)
			continue
		}
		u.demux(pc, buf[:n], addr)
	}
}

// rotateCookies changes the cookie secret every cookieRotateEvery and
// deletes saved sessions older than Config.SavedSessionAge every hour.
func (u *udpServer) rotateCookies() {
	defer u.g.bg.Done()
	t := time.NewTicker(cookieRotateEvery)
	defer t.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-t.C:
			_ = u.cookies.Rotate(randomBytes(dtls.CookieSecretLen))
		case <-prune.C:
			u.pruneSavedSessions(u.g.cfg.SavedSessionAge)
		case <-u.g.ctx.Done():
			return
		}
	}
}

// anySocket returns one of the sockets ServeUDP reads, or nil. Called with
// u.mu held.
func (u *udpServer) anySocket() net.PacketConn {
	for pc := range u.sockets {
		return pc
	}
	return nil
}

// closeSockets closes every socket ServeUDP reads (Shutdown).
func (u *udpServer) closeSockets() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for pc := range u.sockets {
		pc.Close()
	}
}

// demux routes one datagram (docs/device-protocol.md#39-the-dtls-transport, finding the
// session). d is the read loop's buffer: whatever keeps it copies it.
//
//  1. A handshake in progress from the address gets every datagram from
//     that address (it holds epoch-0 and connection-ID records alike),
//     except a ClientHello that starts another handshake and a record on
//     the connection ID of a live session.
//  2. A connection-ID record (type 25, or 253 after a resumption) goes to
//     the session with that ID, or to a saved-session lookup when there is
//     none in memory.
//  3. A ClientHello without a valid cookie is answered statelessly with a
//     HelloVerifyRequest; one with a valid cookie starts a handshake.
//  4. Anything else is dropped.
func (u *udpServer) demux(pc net.PacketConn, d []byte, addr netip.AddrPort) {
	g := u.g
	if len(d) < dtls.HeaderLen {
		g.stats.udpDropped.Add(1)
		return
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	typ := dtls.ContentType(d[0])
	hello := isClientHello(d)
	u.mu.Lock()
	c := u.byAddr[addr]
	if c != nil && !hello {
		// A record on the connection ID of a live session goes to it even
		// so: a late copy of a device's cookie ClientHello starts a second
		// handshake on the address of the session it already made.
		if typ.HasCID() && len(d) >= dtls.CIDHeaderLen {
			if s := u.byCID[cidKey(d[11:11+dtls.CIDLen])]; s != nil {
				c = s
			}
		}
		u.mu.Unlock()
		c.deliver(pc, d, addr)
		return
	}
	if typ.HasCID() {
		if len(d) < dtls.CIDHeaderLen {
			u.mu.Unlock()
			g.stats.udpDropped.Add(1)
			return
		}
		var k cidKey
		copy(k[:], d[11:11+dtls.CIDLen])
		if c := u.byCID[k]; c != nil {
			u.mu.Unlock()
			c.deliver(pc, d, addr)
			return
		}
		u.resumeLocked(pc, d, addr, k) // unlocks
		return
	}
	u.mu.Unlock()
	if !hello {
		g.stats.udpDropped.Add(1)
		return
	}
	u.clientHello(pc, d, addr, c)
}

// isClientHello reports whether d starts with an epoch-0 handshake record
// whose first fragment is a ClientHello.
func isClientHello(d []byte) bool {
	return len(d) > dtls.HeaderLen && dtls.ContentType(d[0]) == dtls.TypeHandshake &&
		binary.BigEndian.Uint16(d[3:5]) == 0 && dtls.HandshakeType(d[dtls.HeaderLen]) == dtls.HandshakeClientHello
}

// clientHello answers a ClientHello from addr. Without a valid cookie the
// answer is a HelloVerifyRequest, made without any state or signature. With
// one, a handshake starts in a new session goroutine, which takes an
// admission slot (udpConn.admitStart) and signs under a handshake slot; old, the handshake already running for addr, gets the
// datagram instead when it is the same ClientHello repeated.
func (u *udpServer) clientHello(pc net.PacketConn, d []byte, addr netip.AddrPort, old *udpConn) {
	g := u.g
	ch, ok := parseClientHello(d)
	if !ok {
		g.stats.udpDropped.Add(1)
		return
	}
	if !u.cookies.Verify(addr, &ch) {
		out, _, err := u.cfg.HandleClientHello(time.Now(), addr, d)
		if err != nil {
			g.stats.udpDropped.Add(1)
			return
		}
		g.stats.udpCookies.Add(1)
		for _, o := range out {
			u.write(pc, o, addr)
		}
		if old != nil && old.random != ch.Random {
			old.hush() // the port is another handshake's now (udp_portreuse.go)
		}
		return
	}
	if old != nil {
		if old.random == ch.Random {
			old.deliver(pc, d, addr) // a retransmitted ClientHello: the handshake resends
			return
		}
		old.close() // the device gave up on it and started over
	}
	now := time.Now()
	if ok, _ := g.hsRate.Allow(netlimit.KeyOf(addr.Addr()), now); !ok {
		g.stats.handshakesLimited.Add(1)
		return
	}
	// Every admission slot is held and the queue is full: the ClientHello
	// is dropped before it costs a goroutine, and the device's own
	// retransmission, with its backoff, is the queue (udpConn.admitStart).
	if g.admission != nil && g.admission.full() {
		g.stats.udpAdmissionDropped.Add(1)
		g.admissionFullLog()
		return
	}
	c := newUDPConn(u, pc, addr)
	c.random = ch.Random
	c.deliver(pc, d, addr) // the handshake's first datagram
	u.mu.Lock()
	if len(u.byAddr) >= g.cfg.MaxUDPHandshakes {
		u.mu.Unlock()
		g.stats.handshakesLimited.Add(1)
		return
	}
	u.byAddr[addr] = c
	u.mu.Unlock()
	g.serveUDPConn(c)
}

// parseClientHello parses the whole ClientHello at the start of d.
func parseClientHello(d []byte) (dtls.ClientHello, bool) {
	var ch dtls.ClientHello
	rec, _, err := dtls.ParseRecord(d)
	if err != nil {
		return ch, false
	}
	h, frag, _, err := dtls.ParseHandshakeFragment(rec.Body)
	if err != nil || h.FragmentOffset != 0 || h.FragmentLength != h.Length {
		return ch, false
	}
	return ch, ch.Unmarshal(frag) == nil
}

// resumeLocked handles a record on a connection ID no session in memory
// has: unless the ID is known to be unknown, a session goroutine looks it
// up among the saved sessions (docs/device-protocol.md#39-the-dtls-transport, resumption),
// receiving the datagrams that follow meanwhile. Called with u.mu held; it
// releases it.
func (u *udpServer) resumeLocked(pc net.PacketConn, d []byte, addr netip.AddrPort, k cidKey) {
	g := u.g
	now := time.Now()
	if at, miss := u.misses[k]; u.saved == nil || (miss && now.Sub(at) < missCacheTTL) || u.lookups >= maxResumeLookups {
		u.mu.Unlock()
		g.stats.udpUnknownCID.Add(1)
		return
	}
	u.lookups++
	c := newUDPConn(u, pc, addr)
	c.cid, c.resuming, c.inCIDs = k, true, true
	u.byCID[k] = c
	u.mu.Unlock()
	c.deliver(pc, d, addr)
	g.serveUDPConn(c)
}

// noteMiss remembers a connection ID that no saved session has.
func (u *udpServer) noteMiss(k cidKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.misses) >= missCacheSize {
		clear(u.misses)
	}
	u.misses[k] = time.Now()
}

// udpAddrPortConn is a UDP socket as the gateway reads and writes it:
// *net.UDPConn, or on Linux rawUDPConn (udp_raw_linux.go).
type udpAddrPortConn interface {
	net.PacketConn
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// write sends one datagram, without allocating on a UDP socket.
func (u *udpServer) write(pc net.PacketConn, b []byte, addr netip.AddrPort) error {
	var err error
	if uc, ok := pc.(udpAddrPortConn); ok {
		_, err = uc.WriteToUDPAddrPort(b, addr)
	} else {
		_, err = pc.WriteTo(b, net.UDPAddrFromAddrPort(addr))
	}
	if err == nil {
		u.g.stats.udpOut.Add(1)
	}
	return err
}

// knownKey is the handshake's device key check (dtls.ServerConfig.DeviceKey):
// the key must be the ECC key of a device that is not denied.
func (u *udpServer) knownKey(pub *ecdsa.PublicKey) bool {
	e, err := u.lookupKey(pub)
	return err == nil && e.ok
}

// lookupKey finds the device of a key through the cache, indexed by the
// key's point (keyPoint: no allocation, twice per handshake), then the
// store's key index, which is asked with the key's SubjectPublicKeyInfo.
func (u *udpServer) lookupKey(pub *ecdsa.PublicKey) (keyEntry, error) {
	pt, ok := keyPoint(pub)
	if !ok {
		return keyEntry{}, errors.New("gateway: device key is not a P-256 point")
	}
	now := time.Now()
	u.mu.Lock()
	e, hit := u.keys[string(pt[:])]
	u.mu.Unlock()
	if hit && now.Sub(e.at) < keyCacheTTL {
		return e, nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return keyEntry{}, fmt.Errorf("gateway: device key: %w", err)
	}
	ctx, cancel := context.WithTimeout(u.g.ctx, storeTimeout)
	defer cancel()
	d, err := u.g.store.DeviceByPublicKey(ctx, der)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e = keyEntry{at: now}
	case err != nil:
		return keyEntry{}, fmt.Errorf("gateway: look up device key: %w", err)
	default:
		e = keyEntry{id: d.ID, product: d.ProductID, ok: !d.Denied && d.KeyAlgorithm == store.KeyECC, at: now}
	}
	u.mu.Lock()
	if len(u.keys) >= keyCacheSize {
		clear(u.keys)
	}
	u.keys[string(pt[:])] = e
	u.mu.Unlock()
	return e, nil
}

// keyPoint writes pub's uncompressed point (0x04 ‖ x ‖ y), the key cache's
// index, without allocating. The handshake's keys come from
// dtls.ParseDevicePublicKey, so they are P-256 points; ok is false for any
// other key. The coordinates are only read, and a public key has nothing
// for big.Int's variable time to leak.
func keyPoint(pub *ecdsa.PublicKey) (pt [65]byte, ok bool) {
	if pub == nil || pub.Curve != elliptic.P256() || pub.X == nil || pub.Y == nil || //nolint:staticcheck // read only
		pub.X.Sign() < 0 || pub.Y.Sign() < 0 || pub.X.BitLen() > 256 || pub.Y.BitLen() > 256 { //nolint:staticcheck // read only
		return pt, false
	}
	pt[0] = 4
	pub.X.FillBytes(pt[1:33]) //nolint:staticcheck // read only
	pub.Y.FillBytes(pt[33:])  //nolint:staticcheck // read only
	return pt, true
}

// forgetKeys empties the key cache (a device's key or state changed).
func (u *udpServer) forgetKeys() {
	u.mu.Lock()
	clear(u.keys)
	u.mu.Unlock()
}

// sessionCount returns the sessions in the connection-ID table.
func (u *udpServer) sessionCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.byCID)
}

// serveUDPConn runs the session of c in its own goroutine, tracked like a
// TCP connection.
func (g *Gateway) serveUDPConn(c *udpConn) { g.serveUDPSession(newUDPSession(g, c)) }

// serveUDPSession runs s, whose conn is s.tr, as serveUDPConn does.
func (g *Gateway) serveUDPSession(s *session) {
	c := s.tr.(*udpConn)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		c.close()
		c.unregister()
		return
	}
	g.conns[s] = struct{}{}
	g.sessions.Add(1)
	g.mu.Unlock()
	g.stats.connections.Add(1)
	go c.run(s.serve)
}
