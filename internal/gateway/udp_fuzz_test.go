package gateway

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// fakePacketConn records the datagrams written to it; reads block until
// Close.
type fakePacketConn struct {
	writes atomic.Int64
	done   chan struct{}
}

func (f *fakePacketConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-f.done
	return 0, nil, net.ErrClosed
}

func (f *fakePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	f.writes.Add(1)
	return len(b), nil
}

func (f *fakePacketConn) Close() error { return nil }
func (f *fakePacketConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5684}
}
func (f *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (f *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzUDPDemux feeds arbitrary datagrams from a few addresses to the
// datagram demultiplexer, with one established session in the tables: it
// must not panic, start a handshake without a cookie or give the
// session's connection ID to anything else, and it drops anything shorter
// than a record header.
func FuzzUDPDemux(f *testing.F) {
	w := newUDPWorld(f, udpTestConfig())
	id, key := deviceID(1), testUDPKey(f, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	d.wmu.Lock()
	rec, _ := d.sess.Seal(nil, []byte{0x40, 0, 0, 9}) // a CoAP ping
	d.wmu.Unlock()
	hs, _ := dtls.NewClientHandshake(&dtls.ClientConfig{Key: key, ServerKey: &testUDPKey(f, "server").PublicKey})
	hello := hs.Start(time.Now())[0]
	f.Add(hello, uint8(0))
	f.Add(rec, uint8(1))
	f.Add(rec[:dtls.CIDHeaderLen], uint8(2))
	f.Add([]byte{25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1}, uint8(3))
	f.Add([]byte{253, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, uint8(0))
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, uint8(1))
	pc := &fakePacketConn{done: make(chan struct{})}
	f.Cleanup(func() { close(pc.done) })
	u := w.g.udp
	var (
		sessCID cidKey
		c0      *udpConn
	)
	u.mu.Lock()
	for k, c := range u.byCID {
		sessCID, c0 = k, c
	}
	u.mu.Unlock()
	f.Fuzz(func(t *testing.T, b []byte, from uint8) {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2 + from%4}), 40000+uint16(from))
		dropped := w.g.stats.udpDropped.Load()
		u.demux(pc, b, addr)
		if len(b) < dtls.HeaderLen && w.g.stats.udpDropped.Load() == dropped {
			t.Fatalf("%d-byte datagram not dropped", len(b))
		}
		u.mu.Lock()
		c, handshakes := u.byCID[sessCID], len(u.byAddr)
		u.mu.Unlock()
		if handshakes != 0 {
			t.Fatalf("%d handshakes started without a cookie", handshakes)
		}
		if c != nil && c != c0 {
			t.Fatal("the session's connection ID was taken over")
		}
	})
}
