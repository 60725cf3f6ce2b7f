//go:build linux

package gateway

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRawUDPConn: the raw socket reads and writes datagrams as UDPConn
// does, on IPv4 and dual-stack IPv6 sockets with IPv4 and IPv6 peers
// (an IPv4 peer of an IPv6 socket is read v4-mapped and may be written
// unmapped, as the gateway's demultiplexer stores it), allocates nothing
// per datagram, and reports a closed socket as net.ErrClosed.
func TestRawUDPConn(t *testing.T) {
	for _, tc := range []struct {
		name, server, peer string
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "[::1]:0", "[::1]:0"},
		{"ipv6 socket, ipv4 peer", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spc, err := net.ListenPacket("udp", tc.server)
			if err != nil {
				t.Skipf("no %s socket here: %v", tc.server, err)
			}
			c := newRawUDPConn(spc.(*net.UDPConn))
			if c == nil {
				t.Fatal("no raw socket")
			}
			defer c.Close()
			peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.peer)))
			if err != nil {
				t.Skipf("no %s socket here: %v", tc.peer, err)
			}
			defer peer.Close()
			srv := c.LocalAddr().(*net.UDPAddr).AddrPort()
			if tc.peer == "127.0.0.1:0" {
				srv = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), srv.Port())
			}
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			for i := range 3 {
				msg := []byte{'p', byte(i)}
				if _, err := peer.WriteToUDPAddrPort(msg, srv); err != nil {
					t.Fatal(err)
				}
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil || string(buf[:n]) != string(msg) {
					t.Fatalf("read %q from %v, %v; want %q", buf[:n], from, err, msg)
				}
				if want := peer.LocalAddr().(*net.UDPAddr).AddrPort(); from.Addr().Unmap() != want.Addr().Unmap() || from.Port() != want.Port() {
					t.Fatalf("sender %v, want %v", from, peer.LocalAddr())
				}
				to := from
				if i == 1 {
					to = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) // as demux keeps it
				}
				reply := []byte{'r', byte(i)}
				if n, err := c.WriteToUDPAddrPort(reply, to); err != nil || n != len(reply) {
					t.Fatalf("write to %v: %d, %v", to, n, err)
				}
				n, _, err = peer.ReadFromUDPAddrPort(buf)
				if err != nil || string(buf[:n]) != string(reply) {
					t.Fatalf("peer read %q, %v; want %q", buf[:n], err, reply)
				}
			}
			// No allocation per datagram either way.
			msg := []byte("x")
			to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			allocs := testing.AllocsPerRun(50, func() {
				peer.WriteToUDPAddrPort(msg, srv)
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
					t.Fatal(err)
				}
				peer.ReadFromUDPAddrPort(buf)
			})
			if allocs > 0 {
				t.Errorf("%v allocations per datagram read and written, want 0", allocs)
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := c.ReadFromUDPAddrPort(buf)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			c.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a read on a closed socket still waits")
			}
		})
	}
}
