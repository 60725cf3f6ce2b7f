package gateway

import (
	"crypto"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// countingKey counts the server key's private-key operations.
type countingKey struct {
	protocol.ServerKey
	ops atomic.Int64
}

func (k *countingKey) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k.ops.Add(1)
	return k.ServerKey.Decrypt(r, msg, opts)
}

func (k *countingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.ops.Add(1)
	return k.ServerKey.Sign(r, digest, opts)
}

// serveTCP runs a second gateway over w's store and bus, with key, on a
// loopback listener, and returns its address.
func serveTCP(t *testing.T, w *world, cfg Config, key protocol.ServerKey) (*Gateway, string) {
	t.Helper()
	cfg.Node = "tcp-node"
	g, err := New(cfg, Deps{Store: w.st, Bus: w.b, ServerKey: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	return g, ln.Addr().String()
}

// garbageHandshake connects from src, reads the nonce, sends 256 bytes of
// garbage as the device's block and waits for the gateway to close.
func garbageHandshake(t *testing.T, src, addr string) (gotNonce bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var nonce [protocol.NonceSize]byte
	if _, err := io.ReadFull(c, nonce[:]); err != nil {
		return false
	}
	c.Write(make([]byte, protocol.DeviceHelloSize))
	io.Copy(io.Discard, c)
	return true
}

// TestHandshakeRateLimit: a flood of garbage handshakes from one address
// costs at most HandshakeBurst RSA operations; the others are closed
// before the nonce. Another address is not affected.
func TestHandshakeRateLimit(t *testing.T) {
	w := newWorld(t, testConfig())
	cfg := testConfig()
	cfg.HandshakeRate = 0.01
	cfg.HandshakeBurst = 3
	key := &countingKey{ServerKey: testServerKey(t)}
	g, addr := serveTCP(t, w, cfg, key)

	nonces := 0
	for range 20 {
		if garbageHandshake(t, "127.0.0.1", addr) {
			nonces++
		}
	}
	if ops := key.ops.Load(); ops != 3 || nonces != 3 {
		t.Errorf("20 garbage handshakes from one address: %d RSA operations, %d nonces; want 3 and 3", ops, nonces)
	}
	if got := g.Stats().HandshakesLimited; got != 17 {
		t.Errorf("HandshakesLimited = %d, want 17", got)
	}
	if !garbageHandshake(t, "127.0.0.2", addr) || key.ops.Load() != 4 {
		t.Errorf("another address: %d RSA operations, want 4", key.ops.Load())
	}
}

// TestHandshakeIdle: a connection that never sends its handshake block is
// closed after HandshakeIdle, long before HandshakeTimeout.
func TestHandshakeIdle(t *testing.T) {
	w := newWorld(t, testConfig())
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Minute
	cfg.HandshakeIdle = 200 * time.Millisecond
	g, addr := serveTCP(t, w, cfg, testServerKey(t))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != protocol.NonceSize {
		t.Fatalf("read %d bytes, %v; want the nonce, then EOF", n, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a silent connection was closed after %v", d)
	}
	waitFor(t, "connection gone", func() bool { return g.Stats().Connections == 0 })
}
