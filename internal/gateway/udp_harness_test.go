package gateway

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// The Gen 3 test device below drives protocol/dtls's ClientHandshake over a
// real loopback UDP socket and speaks CoAP over the session it yields, byte
// by byte, as Device OS does (docs/device-protocol.md#39-the-dtls-transport).

var (
	udpKeysMu sync.Mutex
	udpKeys   = map[string]*ecdsa.PrivateKey{}
)

// testUDPKey returns a P-256 test key, the same for a name within one run.
func testUDPKey(t testing.TB, name string) *ecdsa.PrivateKey {
	t.Helper()
	udpKeysMu.Lock()
	defer udpKeysMu.Unlock()
	if k := udpKeys[name]; k != nil {
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	udpKeys[name] = k
	return k
}

// countingSigner signs with a P-256 key and counts its signatures.
type countingSigner struct {
	key *ecdsa.PrivateKey
	n   atomic.Int64
}

func (c *countingSigner) Public() crypto.PublicKey { return c.key.Public() }

func (c *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.key.Sign(r, digest, opts)
}

// udpWorld is a world whose gateway also serves Gen 3 devices on loopback.
type udpWorld struct {
	*world
	addr   netip.AddrPort
	pcs    []net.PacketConn
	signer *countingSigner
}

// udpTestConfig is testConfig with fast DTLS retransmission.
func udpTestConfig() Config {
	cfg := testConfig()
	cfg.UDPHandshakeRetransmit = 200 * time.Millisecond
	cfg.UDPIdleTimeout = 5 * time.Second
	return cfg
}

func newUDPWorld(t testing.TB, cfg Config) *udpWorld {
	t.Helper()
	w := newWorld(t, cfg)
	uw := &udpWorld{world: w}
	uw.g = uw.newUDPGateway(cfg)
	return uw
}

// newUDPGateway starts a gateway serving UDP on a fresh loopback port (or
// the world's port again after a restart).
func (w *udpWorld) newUDPGateway(cfg Config) *Gateway {
	w.t.Helper()
	key := testUDPKey(w.t, "server")
	g, err := New(cfg, Deps{Store: w.st, Bus: w.b, ServerKey: testServerKey(w.t), UDPKey: key}, testLogger())
	if err != nil {
		w.t.Fatalf("gateway.New: %v", err)
	}
	w.signer = &countingSigner{key: key}
	g.udp.cfg.Signer = w.signer
	addr := "127.0.0.1:0"
	if w.addr.IsValid() {
		addr = w.addr.String()
	}
	pcs, err := ListenUDP(addr, 2)
	if err != nil {
		w.t.Fatalf("ListenUDP: %v", err)
	}
	w.pcs = pcs
	w.addr = netip.MustParseAddrPort(pcs[0].LocalAddr().String())
	for _, pc := range pcs {
		go g.ServeUDP(pc)
	}
	// Serving starts in those goroutines: wait until the gateway holds
	// every socket, or a call made at once (a reach after a restart)
	// finds no socket to send from.
	waitFor(w.t, "udp sockets served", func() bool {
		g.udp.mu.Lock()
		defer g.udp.mu.Unlock()
		return len(g.udp.sockets) == len(pcs)
	})
	w.t.Cleanup(func() { g.Close() })
	return g
}

// restart shuts the gateway down (saving sessions) and starts a new one on
// the same store and port.
func (w *udpWorld) restart() {
	w.t.Helper()
	if err := w.g.Close(); err != nil {
		w.t.Fatalf("close: %v", err)
	}
	w.g = w.newUDPGateway(w.g.cfg)
}

// provisionECC stores a Gen 3 device with the public half of key.
func (w *udpWorld) provisionECC(id protocol.DeviceID, key *ecdsa.PrivateKey, userID string) {
	w.t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.st.ProvisionDevice(ctx, id.String(), store.KeyECC, der, 0); err != nil {
		w.t.Fatalf("provision: %v", err)
	}
	if userID != "" {
		if _, err := w.st.ClaimDevice(ctx, id.String(), userID, ""); err != nil {
			w.t.Fatalf("claim: %v", err)
		}
	}
}

// udpDevice is a fake Gen 3 firmware on its own UDP socket.
type udpDevice struct {
	t      testing.TB
	id     protocol.DeviceID
	key    *ecdsa.PrivateKey
	server netip.AddrPort
	pc     *net.UDPConn

	wmu     sync.Mutex
	sess    *dtls.Session // Write guarded by wmu; Read by the reader
	ids     uint16        // the last message ID used
	tok     byte
	mark253 bool                         // send records as type 253 (a resumed session)
	replays atomic.Int64                 // server records whose sequence number an accepted record with other bytes used: a reused nonce
	stale   atomic.Int64                 // server records refused as too old or repeated byte for byte (harmless)
	alerts  atomic.Int64                 // alerts received in the session
	seen    map[uint64][sha256.Size]byte // accepted records by sequence number; reader only
	last    []byte                       // the last datagram sent

	inbox

	mu        sync.Mutex
	auto      bool
	lossy     bool                // drop messages when the inbox is full (benchmarks)
	answered  map[uint16]bool     // IDs of separate responses sent by answer
	drop      func(m devMsg) bool // drop incoming messages it matches (loss)
	functions map[string]func(string) int32
	variables map[string]variable
	appJSON   string
	got       []devMsg
}

// dialUDP runs a full handshake as device id with key against the world.
func (w *udpWorld) dialUDP(id protocol.DeviceID, key *ecdsa.PrivateKey) (*udpDevice, error) {
	d := newUDPDevice(w.t, id, key, w.addr)
	if err := d.handshake(&testUDPKey(w.t, "server").PublicKey, nil); err != nil {
		d.pc.Close()
		return nil, err
	}
	d.start()
	return d, nil
}

func newUDPDevice(t testing.TB, id protocol.DeviceID, key *ecdsa.PrivateKey, server netip.AddrPort) *udpDevice {
	t.Helper()
	d := udpDeviceOn(t, id, key, server)
	t.Cleanup(func() { d.pc.Close() })
	return d
}

// udpDeviceOn is newUDPDevice without the cleanup: the caller closes d.pc
// (the scale test, whose measured heap must hold no test bookkeeping).
func udpDeviceOn(t testing.TB, id protocol.DeviceID, key *ecdsa.PrivateKey, server netip.AddrPort) *udpDevice {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &udpDevice{t: t, id: id, key: key, server: server, pc: pc, tok: 0x40,
		inbox: newInbox(t, "udp device", 64), auto: true,
		functions: map[string]func(string) int32{}, variables: map[string]variable{},
		answered: map[uint16]bool{}, appJSON: `{"f":[],"v":{}}`}
}

// handshake runs the client handshake; filter, when set, may drop or
// reorder the server's datagrams (it returns what the device reads).
func (d *udpDevice) handshake(serverKey *ecdsa.PublicKey, filter func(n int, b []byte) [][]byte) error {
	hs, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: d.key, ServerKey: serverKey,
		InitialTimeout: 150 * time.Millisecond, MaxRetransmits: 8})
	if err != nil {
		return err
	}
	d.sendRaw(hs.Start(time.Now()))
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		wait := deadline
		if t, ok := hs.NextTimeout(); ok && t.Before(wait) {
			wait = t
		}
		d.pc.SetReadDeadline(wait)
		k, _, err := d.pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			out, err := hs.HandleTimeout(time.Now())
			if err != nil {
				return err
			}
			d.sendRaw(out)
			continue
		}
		if err != nil {
			return err
		}
		n++
		dgrams := [][]byte{append([]byte(nil), buf[:k]...)}
		if filter != nil {
			dgrams = filter(n, dgrams[0])
		}
		for _, dg := range dgrams {
			out, done, err := hs.HandleDatagram(time.Now(), dg)
			if err != nil {
				if a := hs.Alert(); a != nil {
					d.sendRaw([][]byte{a})
				}
				return err
			}
			d.sendRaw(out)
			if done {
				d.pc.SetReadDeadline(time.Time{})
				d.sess = hs.Session()
				return nil
			}
		}
	}
	return errors.New("test device: handshake timed out")
}

func (d *udpDevice) sendRaw(out [][]byte) {
	for _, o := range out {
		d.pc.WriteToUDPAddrPort(o, d.server)
	}
}

// noteSeq sorts a server record by its sequence number: one refused as
// replayed whose number an accepted record with other bytes carried is a
// reused CCM nonce (replays); one refused as too old, or a byte-for-byte
// resend, is a late record of an ended session and harmless (stale).
func (d *udpDevice) noteSeq(seq uint64, raw []byte, err error) {
	sum := sha256.Sum256(raw)
	if err == nil {
		if d.seen == nil {
			d.seen = make(map[uint64][sha256.Size]byte)
		}
		d.seen[seq] = sum
		return
	}
	if !strings.Contains(err.Error(), "replayed") {
		return
	}
	if prev, ok := d.seen[seq]; ok && prev != sum {
		d.replays.Add(1)
		return
	}
	d.stale.Add(1)
}

// start runs the reader: it opens the server's records, answers requests
// when auto is on and queues the rest.
func (d *udpDevice) start() {
	go func() {
		defer close(d.done)
		buf := make([]byte, 4096)
		for {
			n, _, err := d.pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for rest := buf[:n]; len(rest) > 0; {
				rec, after, err := dtls.ParseRecord(rest)
				if err != nil {
					break
				}
				raw := rest[:len(rest)-len(after)]
				rest = after
				plain, typ, err := d.sess.Open(nil, &rec)
				d.noteSeq(rec.Header.Seq, raw, err)
				if err == nil && typ == dtls.TypeAlert {
					d.alerts.Add(1)
				}
				if err != nil || typ != dtls.TypeApplicationData {
					continue
				}
				msg := devMsg{raw: plain}
				if err := msg.m.Decode(plain); err != nil {
					d.t.Errorf("udp device: undecodable message % x", plain)
					continue
				}
				d.mu.Lock()
				drop := d.drop != nil && d.drop(msg)
				if !drop {
					d.got = append(d.got, msg)
				}
				auto := d.auto
				ackOfAnswer := msg.kind() == protocol.KindEmptyACK && d.answered[msg.m.ID]
				delete(d.answered, msg.m.ID)
				d.mu.Unlock()
				if drop || ackOfAnswer {
					continue // the server's ACK of a separate response answer sent
				}
				if auto && d.answer(msg) {
					continue
				}
				select {
				case d.in <- msg:
				default:
					if !d.lossy {
						d.t.Errorf("udp device: inbox full")
					}
				}
			}
		}
	}()
}

// answer plays the firmware for server requests over UDP: an empty ACK,
// then a CON separate response.
func (d *udpDevice) answer(msg devMsg) bool {
	m := &msg.m
	tok, _ := m.Token1()
	switch msg.kind() {
	case protocol.KindPing:
		d.send(protocol.NewEmptyACK(m.ID))
	case protocol.KindSignal:
		d.send(protocol.NewACK(m.ID, m.Token, protocol.CodeChanged, nil))
	case protocol.KindDescribeRequest:
		d.send(protocol.NewEmptyACK(m.ID))
		d.mu.Lock()
		body := d.appJSON
		d.mu.Unlock()
		req, _ := protocol.ParseDescribeRequest(m)
		if req.Flags == protocol.DescribeSystem {
			body = `{"p":12,"m":[]}`
		}
		r, _ := protocol.NewDescribeResponse(protocol.Confirmable, d.answerID(), tok, protocol.DescribeBody{Payload: []byte(body)})
		d.send(r)
	case protocol.KindFunctionCall:
		call, _ := protocol.ParseFunctionCall(m)
		d.mu.Lock()
		fn := d.functions[call.Name]
		d.mu.Unlock()
		d.send(protocol.NewEmptyACK(m.ID))
		if fn == nil {
			d.send(protocol.NewResponse(protocol.Confirmable, d.answerID(), tok, protocol.CodeNotFound, nil))
		} else {
			d.send(protocol.NewFunctionResult(protocol.Confirmable, d.answerID(), tok, fn(call.Argument)))
		}
	case protocol.KindVariableRequest:
		name, _ := protocol.ParseVariableRequest(m)
		d.mu.Lock()
		v, ok := d.variables[name]
		d.mu.Unlock()
		d.send(protocol.NewEmptyACK(m.ID))
		if !ok {
			d.send(protocol.NewResponse(protocol.Confirmable, d.answerID(), tok, protocol.CodeNotFound, nil))
			return true
		}
		val, _ := protocol.AppendVariable(nil, v.typ, v.value)
		d.send(protocol.NewVariableValue(protocol.Confirmable, d.answerID(), tok, val))
	default:
		return false
	}
	return true
}

// answerID returns a message ID for a separate response, whose ACK the
// reader then swallows.
func (d *udpDevice) answerID() uint16 {
	id := d.nextID()
	d.mu.Lock()
	d.answered[id] = true
	d.mu.Unlock()
	return id
}

// nextID returns the device's next message ID: 1 first on a fresh session.
func (d *udpDevice) nextID() uint16 {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.ids++
	return d.ids
}

// send seals one message into one record and sends it.
func (d *udpDevice) send(m protocol.Message) error {
	enc, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return d.sendPlain(enc)
}

func (d *udpDevice) sendPlain(enc []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	rec, err := d.sess.Seal(nil, enc)
	if err != nil {
		return err
	}
	if d.mark253 {
		if err := dtls.MarkMoveSession(rec); err != nil {
			return err
		}
	}
	d.last = rec
	_, err = d.pc.WriteToUDPAddrPort(rec, d.server)
	return err
}

// resend sends the last datagram again, byte for byte (a replay).
func (d *udpDevice) resend() {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.pc.WriteToUDPAddrPort(d.last, d.server)
}

// gen3Hello is the Hello of an Argon running Device OS 3.3.1.
func gen3Hello(id protocol.DeviceID) protocol.Hello {
	return protocol.Hello{ProductID: 12, ProductVersion: 0xFFFF, Flags: 0, PlatformID: 12,
		DeviceID: id[:], SystemVersion: 3302, MaxMessageSize: 1024, MaxBinarySize: 0x100000, OTAChunkSize: 512}
}

// hello sends the CON Hello and waits for its ACK.
func (d *udpDevice) hello(h protocol.Hello) {
	d.t.Helper()
	id := d.nextID()
	if err := d.send(protocol.NewHello(protocol.Confirmable, id, h)); err != nil {
		d.t.Fatalf("udp device: hello: %v", err)
	}
	d.expect("hello ACK", ackOf(id))
}

// count returns how many messages the device received that match.
func (d *udpDevice) count(match func(devMsg) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range d.got {
		if match(m) {
			n++
		}
	}
	return n
}

// onlineUDP provisions nothing: it dials, says Hello and waits until the
// device is online.
func (w *udpWorld) onlineUDP(id protocol.DeviceID, key *ecdsa.PrivateKey) *udpDevice {
	w.t.Helper()
	return w.onlineUDPWith(id, key, nil)
}

// onlineUDPWith is onlineUDP with the device's application set up by app
// (called with d.mu held) before its Hello.
func (w *udpWorld) onlineUDPWith(id protocol.DeviceID, key *ecdsa.PrivateKey, app func(d *udpDevice)) *udpDevice {
	w.t.Helper()
	d, err := w.dialUDP(id, key)
	if err != nil {
		w.t.Fatalf("udp handshake: %v", err)
	}
	if app != nil {
		d.mu.Lock()
		app(d)
		d.mu.Unlock()
	}
	d.hello(gen3Hello(id))
	waitFor(w.t, "device online", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
	return d
}
