//go:build linux

package gateway

import (
	"net"
	"syscall"
)

// quickACK acknowledges a device's TCP segments at once instead of after
// the kernel's delayed-ACK timer (docs/device-protocol.md, "Quick
// acknowledgements"). Device OS writes the empty ACK of a request and its
// answer in two small writes with Nagle's algorithm on, so the answer waits
// until the server's TCP acknowledges the first write; Linux delays that
// acknowledgement up to 40 ms in interactive ("ping-pong") mode. Setting
// TCP_QUICKACK after reading a frame sends the pending acknowledgement now.
// Linux drops quick-ACK mode again on its own, so it is re-armed after
// every frame. The zero value does nothing (not a TCP socket).
type quickACK struct {
	raw syscall.RawConn
}

// newQuickACK returns the quickACK of c: of its TCP socket, also under a
// wrapper that exposes it with NetConn (as crypto/tls does); a no-op for
// anything else (net.Pipe, Unix sockets).
func newQuickACK(c net.Conn) quickACK {
	for range 4 {
		if tc, ok := c.(*net.TCPConn); ok {
			raw, err := tc.SyscallConn()
			if err != nil {
				return quickACK{}
			}
			return quickACK{raw: raw}
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return quickACK{}
		}
		c = w.NetConn()
	}
	return quickACK{}
}

// arm sends any delayed acknowledgement now and acknowledges the next
// segments at once. It does not allocate.
func (q quickACK) arm() {
	if q.raw != nil {
		q.raw.Control(setQuickACK) // best effort: a closed socket fails, the read loop notices
	}
}

func setQuickACK(fd uintptr) {
	syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}

// enabled reports whether arm reaches a TCP socket.
func (q quickACK) enabled() bool { return q.raw != nil }
