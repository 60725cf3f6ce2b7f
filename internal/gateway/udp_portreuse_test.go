package gateway

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestUDPHandshakePortReused: device A starts a full handshake and gives
// up at some step (its socket closes), and device B, whose key is also on
// file, gets the same local port at once (a simulator or a NAT hands ports
// out again) and runs its own full handshake. B must come online; neither
// device may be refused as a key mismatch (a bad CertificateVerify). (A
// 50,000-device storm once refused 117 devices that way; not reproduced.)
func TestUDPHandshakePortReused(t *testing.T) {
	for _, stop := range []struct {
		name  string
		reads int           // server datagrams A reads before it gives up
		flush bool          // A sends what its last read produced
		wait  time.Duration // before B starts: the server's resends to A reach B
	}{
		{"after the cookie", 1, true, 0},
		{"with the server flight unanswered", 2, false, 0},
		{"with the server flight unanswered, resent to B", 2, false, 500 * time.Millisecond},
		{"after its own flight", 2, true, 0},
		{"after its own flight, final flight resent to B", 2, true, 500 * time.Millisecond},
	} {
		t.Run(stop.name, func(t *testing.T) {
			w := newUDPWorld(t, udpTestConfig())
			keyA, keyB := testUDPKey(t, "device_a"), testUDPKey(t, "device_b")
			w.provisionECC(deviceID(1), keyA, "")
			w.provisionECC(deviceID(2), keyB, "")
			serverKey := &testUDPKey(t, "server").PublicKey

			a := newUDPDevice(t, deviceID(1), keyA, w.addr)
			port := a.pc.LocalAddr().(*net.UDPAddr).Port
			hs, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: keyA, ServerKey: serverKey, InitialTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			a.sendRaw(hs.Start(time.Now()))
			buf := make([]byte, 4096)
			for i := 1; i <= stop.reads; i++ {
				a.pc.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, _, err := a.pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("device A read %d: %v", i, err)
				}
				out, _, err := hs.HandleDatagram(time.Now(), buf[:n])
				if err != nil {
					t.Fatalf("device A: %v", err)
				}
				if i < stop.reads || stop.flush {
					a.sendRaw(out)
				}
			}
			a.pc.Close()

			var b *udpDevice
			for try := 0; ; try++ {
				pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
				if err == nil {
					b = udpDeviceOn(t, deviceID(2), keyB, w.addr)
					b.pc.Close()
					b.pc = pc
					t.Cleanup(func() { pc.Close() })
					break
				}
				if try > 50 {
					t.Fatalf("port %d not free again: %v", port, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(stop.wait)
			// B may read the server's resends of A's flight, which cannot
			// verify against B's own random: B's handshake then fails on
			// the client side (dtls.ErrBadServerKeyExchange), and so would
			// every retry on this port while the server resends the
			// flights of the attempts before. Like sdk/device, B then
			// dials again from a new socket.
			err = b.handshake(serverKey, nil)
			if errors.Is(err, dtls.ErrBadServerKeyExchange) {
				t.Logf("device B read a stale server flight meant for A: %v", err)
				b = newUDPDevice(t, deviceID(2), keyB, w.addr)
				err = b.handshake(serverKey, nil)
			}
			if err != nil {
				t.Fatalf("device B: %v (refused as key mismatch: %d)", err, w.g.Stats().RefusedKey)
			}
			b.start()
			b.hello(gen3Hello(deviceID(2)))
			waitFor(t, "device B online", func() bool { return w.g.Online(deviceID(2).String()) })
			if n := w.g.Stats().RefusedKey; n != 0 {
				t.Fatalf("%d handshakes refused as key mismatch", n)
			}
		})
	}
}
