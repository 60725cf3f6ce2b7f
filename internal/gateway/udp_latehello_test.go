package gateway

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestUDPLateClientHelloAfterOnline: a copy of the device's cookie
// ClientHello that arrives after its session is online (a duplicate, a
// late retransmission) starts a second handshake for the same client
// random, which then holds the device's address in the demultiplexer:
// the device's records must still reach its session.
func TestUDPLateClientHelloAfterOnline(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	d, hs := rawHandshakeDevice(t, w)
	var sent [][]byte
	send := func(out [][]byte) { sent = append(sent, out...); d.sendRaw(out) }
	send(hs.Start(time.Now()))
	buf := make([]byte, 4096)
	for done := false; !done; {
		d.pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := d.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		out, done, err = hs.HandleDatagram(time.Now(), buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		send(out)
	}
	d.pc.SetReadDeadline(time.Time{})
	d.sess = hs.Session()
	d.start()
	d.hello(gen3Hello(deviceID(1)))
	waitFor(t, "online", func() bool { return w.g.Online(deviceID(1).String()) })
	addr := netip.MustParseAddrPort(d.pc.LocalAddr().String())
	waitFor(t, "handshake left the address table", func() bool {
		w.g.udp.mu.Lock()
		defer w.g.udp.mu.Unlock()
		return w.g.udp.byAddr[addr] == nil
	})
	d.sendRaw(sent[1:2]) // the ClientHello with the cookie, again
	waitFor(t, "the late ClientHello read", func() bool { return w.signer.n.Load() == 2 })
	// The device's answers carry its session's connection ID: they must
	// reach the session, not the handshake the late copy started.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.g.Ping(ctx, deviceID(1).String()); err != nil {
		t.Fatalf("ping after a late copy of the ClientHello: %v", err)
	}
}

// rawHandshakeDevice provisions device 1 in w and returns its test device
// with a client handshake the test drives record by record.
func rawHandshakeDevice(t *testing.T, w *udpWorld) (*udpDevice, *dtls.ClientHandshake) {
	t.Helper()
	key := testUDPKey(t, "device_a")
	w.provisionECC(deviceID(1), key, "")
	d := newUDPDevice(t, deviceID(1), key, w.addr)
	hs, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: key, ServerKey: &testUDPKey(t, "server").PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	return d, hs
}
