package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/rsakey"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// The test device below is built on protocol's device side only (not on
// sdk/device): it speaks the wire byte by byte, so the tests see exactly
// what a firmware would.

// waitTime bounds every wait for a condition or a message: generous, as
// -race tests on a loaded CI machine run many times slower than alone; a
// passing test never waits it out.
const waitTime = 20 * time.Second

var (
	keysOnce sync.Once
	keys     map[string]*rsa.PrivateKey

	loadedKeyOnce sync.Once
	loadedKey     protocol.ServerKey
	loadedKeyErr  error
)

// testServerKey is the "server" test key as rsakey.Load gives it: crypto/rsa,
// or OpenSSL in a build with -tags openssl.
func testServerKey(t testing.TB) protocol.ServerKey {
	t.Helper()
	k := testKey(t, "server")
	loadedKeyOnce.Do(func() { loadedKey, loadedKeyErr = rsakey.Load(k) })
	if loadedKeyErr != nil {
		t.Fatalf("rsakey.Load: %v", loadedKeyErr)
	}
	return loadedKey
}

// testKey loads a key of testdata/ (see gen.sh).
func testKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = make(map[string]*rsa.PrivateKey)
		for _, n := range []string{"server", "device_a", "device_b", "device_wrong"} {
			b, err := os.ReadFile(filepath.Join("testdata", n+"_key.pem"))
			if err != nil {
				panic(err)
			}
			k, err := protocol.ParseRSAPrivateKey(b)
			if err != nil {
				panic(err)
			}
			keys[n] = k
		}
	})
	k := keys[name]
	if k == nil {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// world is a gateway with a real SQLite store and an embedded bus.
type world struct {
	t  testing.TB
	g  *Gateway
	st store.Store
	b  *bus.Bus
}

// testConfig has small timeouts so that failure tests run fast. The
// handshake and Hello timeouts are generous (tests of them set their own):
// under -race on a loaded machine a test device's handshake, or its Hello
// right after, took longer than 3 s and 2 s.
func testConfig() Config {
	return Config{
		Node:             "test-node",
		HandshakeTimeout: 15 * time.Second,
		HelloTimeout:     10 * time.Second,
		IdleTimeout:      5 * time.Second,
		WriteTimeout:     2 * time.Second,
		CallTimeout:      2 * time.Second,
		DescribeWait:     time.Hour,
		LastHeardFlush:   time.Hour,
	}
}

func newWorld(t testing.TB, cfg Config) *world {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "wick.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	b := bustest.New(t, bus.Config{})
	w := &world{t: t, st: st, b: b}
	w.g = w.newGateway(cfg)
	return w
}

// testLogger logs to stderr at debug level with WICK_TEST_LOG set, and
// nowhere (nil) otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("WICK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (w *world) newGateway(cfg Config) *Gateway {
	w.t.Helper()
	g, err := New(cfg, Deps{Store: w.st, Bus: w.b, ServerKey: testServerKey(w.t)}, testLogger())
	if err != nil {
		w.t.Fatalf("gateway.New: %v", err)
	}
	w.t.Cleanup(func() { g.Close() })
	return g
}

// deviceID returns a fixed test device ID: 0x00..0x0a then n.
func deviceID(n byte) protocol.DeviceID {
	var id protocol.DeviceID
	for i := range id {
		id[i] = byte(i)
	}
	id[11] = n
	return id
}

// provision stores a device with the public half of key, owned by userID
// ("" for none).
func (w *world) provision(id protocol.DeviceID, key *rsa.PrivateKey, userID string) {
	w.t.Helper()
	ctx := context.Background()
	der, err := protocol.MarshalPublicKeyDER(&key.PublicKey)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.st.ProvisionDevice(ctx, id.String(), store.KeyRSA, der, 0); err != nil {
		w.t.Fatalf("provision: %v", err)
	}
	if userID != "" {
		if _, err := w.st.ClaimDevice(ctx, id.String(), userID, ""); err != nil {
			w.t.Fatalf("claim: %v", err)
		}
	}
}

func (w *world) device(id protocol.DeviceID) *store.Device {
	w.t.Helper()
	d, err := w.st.DeviceByID(context.Background(), id.String())
	if err != nil {
		w.t.Fatalf("device %s: %v", id, err)
	}
	return d
}

// subscribe collects the bus events of one device.
func (w *world) subscribe(f bus.Filter) *bus.Subscription {
	return bustest.Subscribe(w.t, w.b, f, 256)
}

// waitFor polls cond until it holds or the wait time is over.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent returns the next bus event named name, skipping others.
func nextEvent(t testing.TB, s *bus.Subscription, name string) bus.Event {
	t.Helper()
	var got bus.Event
	bustest.Until(t, s, waitTime, func(e bus.Event) bool {
		got = e
		return e.Name == name
	})
	return got
}

// devMsg is a message the test device received: its plaintext and decoding.
type devMsg struct {
	raw []byte
	m   protocol.Message
}

func (d devMsg) kind() protocol.Kind { return protocol.Classify(&d.m) }

// variable is a test device's variable.
type variable struct {
	typ   protocol.VariableType
	value any
}

// testDevice is a fake firmware over one connection.
type testDevice struct {
	t    testing.TB
	id   protocol.DeviceID
	conn net.Conn
	keys protocol.SessionKeys
	fr   *protocol.FrameReader

	wmu    sync.Mutex
	sealer *protocol.FrameSealer
	iv     [16]byte // the IV of the next frame the device sends
	ids    protocol.MessageIDs
	tok    byte

	inbox // messages not answered automatically

	mu        sync.Mutex
	log       []devMsg // every message received
	noLog     bool     // benchmarks: do not keep the log
	lossy     bool     // drop messages when the inbox is full
	auto      bool     // answer describes, functions, variables, signals and pings
	functions map[string]func(arg string) int32
	variables map[string]variable
	silent    map[string]bool // function names never answered
	sysJSON   string
	appJSON   string
	readErr   error
	paused    chan struct{} // reading stops while non-nil

	// firmwareIDs answers pings and signals as Device OS over TCP does:
	// with the device's own next message ID instead of the request's.
	firmwareIDs bool
}

// pauseReading stops the device reading (after the frame in progress), so
// that the server's writes to it block.
func (d *testDevice) pauseReading() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused == nil {
		d.paused = make(chan struct{})
	}
}

func (d *testDevice) resumeReading() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused != nil {
		close(d.paused)
		d.paused = nil
	}
}

// dial connects a device to the gateway through net.Pipe and runs the
// device side of the handshake. It fails the test if the handshake fails.
func (w *world) dial(id protocol.DeviceID, key *rsa.PrivateKey) *testDevice {
	w.t.Helper()
	d, err := w.tryDial(id, key)
	if err != nil {
		w.t.Fatalf("device handshake: %v", err)
	}
	return d
}

func (w *world) tryDial(id protocol.DeviceID, key *rsa.PrivateKey) (*testDevice, error) {
	client, server := net.Pipe()
	go w.g.ServeConn(context.Background(), server)
	return startDevice(w.t, client, id, key, &testKey(w.t, "server").PublicKey, 1024)
}

// startDevice runs the device handshake on conn and starts its reader.
// inbox is the size of its inbox; 0 makes a lossy inbox of 4 messages
// (for swarms of devices that only answer requests).
func startDevice(t testing.TB, conn net.Conn, id protocol.DeviceID, key *rsa.PrivateKey, serverKey *rsa.PublicKey, inbox int) (*testDevice, error) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	k, err := protocol.DeviceHandshake(conn, protocol.DeviceHandshakeConfig{ID: id, PrivateKey: key, ServerKey: serverKey})
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	d := &testDevice{
		t: t, id: id, conn: conn, keys: k,
		fr:        protocol.NewFrameReader(conn, k, 0),
		sealer:    protocol.NewFrameSealer(k, 0),
		iv:        k.IV,
		ids:       k.DeviceMessageIDs(),
		tok:       0x70,
		inbox:     newInbox(t, "device", max(inbox, 4)),
		lossy:     inbox == 0,
		noLog:     inbox == 0,
		auto:      true,
		functions: map[string]func(string) int32{},
		variables: map[string]variable{},
		silent:    map[string]bool{},
		sysJSON:   `{"p":6,"m":[{"s":262144,"l":"m","vc":30,"vv":30,"u":"` + appHash + `","f":"u","n":"1","v":6,"d":[]}]}`,
		appJSON:   `{"f":[],"v":{}}`,
	}
	d.ended = d.err
	t.Cleanup(func() { conn.Close() })
	go d.read()
	return d, nil
}

const appHash = "5fa1a4c6d4c2b1c3f0f8e2b2c5c3f1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4"

func (d *testDevice) read() {
	defer close(d.done)
	for {
		d.mu.Lock()
		p := d.paused
		d.mu.Unlock()
		if p != nil {
			<-p
		}
		b, err := d.fr.ReadFrame()
		if err != nil {
			d.mu.Lock()
			d.readErr = err
			d.mu.Unlock()
			return
		}
		msg := devMsg{raw: append([]byte(nil), b...)}
		if err := msg.m.Decode(msg.raw); err != nil {
			d.t.Errorf("device: server sent undecodable message % x: %v", msg.raw, err)
			continue
		}
		d.mu.Lock()
		if !d.noLog {
			d.log = append(d.log, msg)
		}
		auto := d.auto
		d.mu.Unlock()
		if auto && answerable(msg.kind()) {
			// Answer off the reading goroutine: net.Pipe has no buffer, so
			// a device that writes while nobody reads on its side could
			// deadlock with the server's own writes.
			go d.answer(msg)
			continue
		}
		select {
		case d.in <- msg:
		default:
			if !d.lossy {
				d.t.Errorf("device: inbox full")
			}
		}
	}
}

// answerable reports whether answer handles a kind.
func answerable(k protocol.Kind) bool {
	switch k {
	case protocol.KindPing, protocol.KindDescribeRequest, protocol.KindFunctionCall,
		protocol.KindVariableRequest, protocol.KindSignal:
		return true
	}
	return false
}

// answer plays the firmware's part for server requests
// (docs/particle-protocol.md#message-catalogue).
func (d *testDevice) answer(msg devMsg) bool {
	m := &msg.m
	tok, _ := m.Token1()
	d.mu.Lock()
	firmwareIDs := d.firmwareIDs
	d.mu.Unlock()
	replyID := m.ID
	if firmwareIDs && (msg.kind() == protocol.KindPing || msg.kind() == protocol.KindSignal) {
		replyID = d.nextID()
	}
	switch msg.kind() {
	case protocol.KindPing:
		d.send(protocol.NewEmptyACK(replyID))
	case protocol.KindDescribeRequest:
		req, err := protocol.ParseDescribeRequest(m)
		if err != nil {
			d.send(protocol.NewACK(m.ID, m.Token, protocol.CodeBadRequest, nil))
			return true
		}
		d.mu.Lock()
		body := d.appJSON
		if req.Flags == protocol.DescribeSystem {
			body = d.sysJSON
		}
		d.mu.Unlock()
		d.send(protocol.NewEmptyACK(m.ID))
		r, _ := protocol.NewDescribeResponse(protocol.Confirmable, d.nextID(), tok, protocol.DescribeBody{Payload: []byte(body)})
		d.send(r)
	case protocol.KindFunctionCall:
		call, _ := protocol.ParseFunctionCall(m)
		d.mu.Lock()
		fn, silent := d.functions[call.Name], d.silent[call.Name]
		d.mu.Unlock()
		d.send(protocol.NewEmptyACK(m.ID))
		switch {
		case silent:
		case fn == nil:
			d.send(protocol.NewResponse(protocol.NonConfirmable, d.nextID(), tok, protocol.CodeNotFound, nil))
		default:
			d.send(protocol.NewFunctionResult(protocol.NonConfirmable, d.nextID(), tok, fn(call.Argument)))
		}
	case protocol.KindVariableRequest:
		name, _ := protocol.ParseVariableRequest(m)
		d.mu.Lock()
		v, ok := d.variables[name]
		d.mu.Unlock()
		d.send(protocol.NewEmptyACK(m.ID))
		if !ok {
			d.send(protocol.NewResponse(protocol.NonConfirmable, d.nextID(), tok, protocol.CodeNotFound, nil))
			return true
		}
		val, err := protocol.AppendVariable(nil, v.typ, v.value)
		if err != nil {
			d.t.Errorf("device: encode variable: %v", err)
		}
		d.send(protocol.NewVariableValue(protocol.NonConfirmable, d.nextID(), tok, val))
	case protocol.KindSignal:
		d.send(protocol.NewACK(replyID, m.Token, protocol.CodeChanged, nil))
	default:
		return false
	}
	return true
}

func (d *testDevice) nextID() uint16 {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.ids.Next()
}

func (d *testDevice) nextToken() byte {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.tok++
	return d.tok
}

// send writes one message; errors are returned for failure tests.
func (d *testDevice) send(m protocol.Message) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	enc, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return d.writePlainLocked(enc)
}

// sendPlain seals and writes any plaintext, CoAP or not.
func (d *testDevice) sendPlain(plain []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.writePlainLocked(plain)
}

func (d *testDevice) writePlainLocked(enc []byte) error {
	frame, err := d.sealer.Seal(nil, enc)
	if err != nil {
		return err
	}
	copy(d.iv[:], frame[2:18])
	d.conn.SetWriteDeadline(time.Now().Add(waitTime))
	_, err = d.conn.Write(frame)
	return err
}

// sendRaw writes bytes as they are, bypassing the frame layer.
func (d *testDevice) sendRaw(b []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.conn.SetWriteDeadline(time.Now().Add(waitTime))
	_, err := d.conn.Write(b)
	return err
}

// helloPayload is the Hello of a 3.3.1 Photon without a product.
func helloPayload(flags protocol.HelloFlags) protocol.Hello {
	return protocol.Hello{ProductID: 6, ProductVersion: 0xFFFF, Flags: flags, PlatformID: 6,
		SystemVersion: 3302, MaxMessageSize: 1024, MaxBinarySize: 0x100000, OTAChunkSize: 512}
}

// hello sends the device's Hello and waits for the server Hello.
func (d *testDevice) hello(h protocol.Hello) devMsg {
	d.t.Helper()
	if err := d.send(protocol.NewHello(protocol.NonConfirmable, d.nextID(), h)); err != nil {
		d.t.Fatalf("device: send hello: %v", err)
	}
	return d.expect("server hello", func(m devMsg) bool { return m.kind() == protocol.KindHello })
}

// inbox is where a fake device queues the server's messages that it does
// not answer itself, and the test waits for them.
type inbox struct {
	t     testing.TB
	who   string        // "device", "udp device": starts failure messages
	in    chan devMsg   // the queued messages
	done  chan struct{} // closed when the device's reader ends
	ended func() error  // why the reader ended, if known
}

func newInbox(t testing.TB, who string, size int) inbox {
	return inbox{t: t, who: who, in: make(chan devMsg, size), done: make(chan struct{})}
}

// expect returns the next message in the inbox that matches, discarding
// others; it fails the test after the wait time, or once the reader ended
// and what it queued before is drained.
func (b *inbox) expect(what string, match func(devMsg) bool) devMsg {
	b.t.Helper()
	timeout := time.After(waitTime)
	for {
		select {
		case m := <-b.in:
			if match(m) {
				return m
			}
		case <-b.done:
			for {
				select {
				case m := <-b.in:
					if match(m) {
						return m
					}
				default:
					var err error
					if b.ended != nil {
						err = b.ended()
					}
					b.t.Fatalf("%s: connection ended (%v) before %s", b.who, err, what)
				}
			}
		case <-timeout:
			b.t.Fatalf("%s: no %s within %s", b.who, what, waitTime)
		}
	}
}

// expectNone fails if a matching message arrives within dur.
func (b *inbox) expectNone(what string, dur time.Duration, match func(devMsg) bool) {
	b.t.Helper()
	timeout := time.After(dur)
	for {
		select {
		case m := <-b.in:
			if match(m) {
				b.t.Fatalf("%s: unexpected %s: % x", b.who, what, m.raw)
			}
		case <-timeout:
			return
		}
	}
}

// ackOf matches the (empty or piggy-backed) ACK of message id.
func ackOf(id uint16) func(devMsg) bool {
	return func(m devMsg) bool { return m.m.Type == protocol.Acknowledgement && m.m.ID == id }
}

// eventNamed matches a server→device event.
func eventNamed(name string) func(devMsg) bool {
	return func(m devMsg) bool {
		if m.kind() != protocol.KindEvent {
			return false
		}
		n, _ := m.m.PathName()
		return n == name
	}
}

// logged returns the messages of a kind the device received so far.
func (d *testDevice) logged(k protocol.Kind) []devMsg {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []devMsg
	for _, m := range d.log {
		if m.kind() == k {
			out = append(out, m)
		}
	}
	return out
}

// waitClosed waits until the server closed the connection.
func (d *testDevice) waitClosed() {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(waitTime):
		d.t.Fatalf("device: connection still open")
	}
}

func (d *testDevice) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readErr
}

// publish sends an event as the firmware does (NON over TCP, no token).
func (d *testDevice) publish(e protocol.Event, typ protocol.Type) uint16 {
	d.t.Helper()
	id := d.nextID()
	m, err := protocol.NewEvent(typ, id, e)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.send(m); err != nil {
		d.t.Fatalf("device: publish: %v", err)
	}
	return id
}

// subscribe sends GET e/<prefix> (CON, no token) and waits for its ACK.
func (d *testDevice) subscribe(s protocol.Subscription) devMsg {
	d.t.Helper()
	id := d.nextID()
	if err := d.send(protocol.NewSubscribe(protocol.Confirmable, id, s)); err != nil {
		d.t.Fatalf("device: subscribe: %v", err)
	}
	return d.expect("subscribe ACK", ackOf(id))
}

// online connects, handshakes, says Hello and waits until the store shows
// the device online.
func (w *world) online(id protocol.DeviceID, key *rsa.PrivateKey, flags protocol.HelloFlags) *testDevice {
	w.t.Helper()
	// A session the device had before may still be registered while it
	// ends (its connection dropped, finish not yet run): wait for the new
	// one, not that one.
	prev := w.g.lookup(id.String())
	d := w.dial(id, key)
	d.hello(helloPayload(flags))
	waitFor(w.t, "device online", func() bool {
		s := w.g.lookup(id.String())
		return s != nil && s != prev && w.device(id).Online
	})
	return d
}

// sendBadPadding sends one frame whose plaintext ends in invalid PKCS#7
// padding, encrypted in the device's IV chain
// (docs/particle-protocol.md#frames).
func (d *testDevice) sendBadPadding() error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	block, _ := aes.NewCipher(d.keys.Key[:])
	plain := make([]byte, 16) // last byte 0: not a valid pad
	ct := make([]byte, 16)
	cipher.NewCBCEncrypter(block, d.iv[:]).CryptBlocks(ct, plain)
	copy(d.iv[:], ct)
	_, err := d.conn.Write(append([]byte{0, 16}, ct...))
	return err
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
