package gateway

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestUDPStaleFlightHushed: device A's handshake stops with the server's
// flight unanswered, and a ClientHello with another random (device B on
// A's port) comes from its address: the server sends nothing more of A's
// flight on its timer, which B would read and could not verify. A's own
// repeat of its ClientHello is still answered: the hush costs a device
// still in that handshake nothing but its own retransmission.
func TestUDPStaleFlightHushed(t *testing.T) {
	cfg := udpTestConfig() // the server resends after 200 ms, then 400, 800...
	cfg.HandshakeTimeout, cfg.HandshakeIdle = 30*time.Second, 30*time.Second
	w := newUDPWorld(t, cfg)
	keyA, keyB := testUDPKey(t, "device_a"), testUDPKey(t, "device_b")
	w.provisionECC(deviceID(1), keyA, "")
	serverKey := &testUDPKey(t, "server").PublicKey
	a := newUDPDevice(t, deviceID(1), keyA, w.addr)
	addr := netip.MustParseAddrPort(a.pc.LocalAddr().String())
	buf := make([]byte, 4096)
	read := func(what string, wait time.Duration) []byte {
		t.Helper()
		a.pc.SetReadDeadline(time.Now().Add(wait))
		n, _, err := a.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return append([]byte(nil), buf[:n]...)
	}

	hsA, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: keyA, ServerKey: serverKey, InitialTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a.sendRaw(hsA.Start(time.Now()))
	out, _, err := hsA.HandleDatagram(time.Now(), read("HelloVerifyRequest", 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cookieHello := out
	a.sendRaw(cookieHello)
	read("server flight", 10*time.Second)
	// A answers nothing; the server resends on its timer.
	if again := read("server flight resent on its timer", 10*time.Second); dtls.ContentType(again[0]) != dtls.TypeHandshake {
		t.Fatalf("unexpected datagram % x", again[:13])
	}

	// B's cookie-less ClientHello from A's port.
	hsB, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: keyB, ServerKey: serverKey, InitialTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a.sendRaw(hsB.Start(time.Now()))
	waitFor(t, "the old handshake hushed", func() bool {
		w.g.udp.mu.Lock()
		c := w.g.udp.byAddr[addr]
		w.g.udp.mu.Unlock()
		if c == nil {
			return false
		}
		c.amu.Lock()
		defer c.amu.Unlock()
		return c.hushed
	})
	// The server's datagram count: a resend counts each datagram before
	// it lets hush go on (both hold amu), so every one sent before the
	// hush is in it. Nothing else of this gateway sends from here on.
	sent := w.g.Stats().UDPDatagramsOut
	// The old handshake's timer fires in this time (200 ms, doubling; the
	// handshake is alive: it answers A's repeat below) and sends nothing.
	// What the device reads meanwhile was sent before the hush (B's
	// HelloVerifyRequest, earlier resends delivered late).
	late := 0
	for end := time.Now().Add(2 * time.Second); ; late++ {
		a.pc.SetReadDeadline(end)
		if _, _, err := a.pc.ReadFromUDPAddrPort(buf); errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	if n := w.g.Stats().UDPDatagramsOut - sent; n != 0 {
		t.Fatalf("the server sent %d datagrams of the old handshake on its timer after a new ClientHello from the port", n)
	}
	t.Logf("datagrams sent before the hush read after it: %d", late)
	a.sendRaw(cookieHello)
	if got := read("the flight on A's repeat", 10*time.Second); dtls.ContentType(got[0]) != dtls.TypeHandshake {
		t.Fatalf("answer to A's repeat: % x", got[:13])
	}
}
