package gateway

import "syscall"

// reusePortSupported: Linux spreads the datagrams of different peers over
// sockets bound with SO_REUSEPORT to the same port.
const reusePortSupported = true

// setReusePort is a net.ListenConfig Control that sets SO_REUSEPORT.
func setReusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// soReusePort is SO_REUSEPORT on Linux (asm-generic/socket.h), which
// package syscall does not name.
const soReusePort = 0xf
