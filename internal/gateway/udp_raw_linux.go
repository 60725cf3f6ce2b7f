//go:build linux

package gateway

// Gen 3 sockets read and written without entersyscall (Linux).
//
// The net package makes each recvfrom and sendto a blocking-style system
// call (entersyscall), which wakes the runtime's monitor thread (sysmon)
// whenever it sleeps because every P is idle, as between an idle fleet's
// keep-alives; woken, sysmon then slept in 20 µs steps, each a context
// switch. A perf profile of an idle 20,000-device Gen 3 server put sysmon
// at a fifth of the process's CPU, as it was for Gen 2 before the poller's
// raw system calls (tcp_park_linux.go). The socket is non-blocking, so
// neither call blocks: rawUDPConn makes them raw inside the net package's
// RawConn, which still parks the goroutine in the poller on EAGAIN.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawUDPConn is a UDP socket whose datagram reads and writes are raw
// system calls. ReadFromUDPAddrPort is for one goroutine at a time (the
// socket's read loop); WriteToUDPAddrPort is safe for concurrent use.
type rawUDPConn struct {
	*net.UDPConn
	rc    syscall.RawConn
	v6    bool // an AF_INET6 socket: IPv4 peers are written v4-mapped
	rd    rawRecv
	sends sync.Pool // of *rawSend
}

// rawRecv is the read loop's recvfrom: its arguments and results live
// here, and fn is bound once, so that a read allocates nothing.
type rawRecv struct {
	buf   []byte
	n     int
	sa    syscall.RawSockaddrAny
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// rawSend is one sendto's arguments and results, pooled.
type rawSend struct {
	b     []byte
	sa4   syscall.RawSockaddrInet4
	sa6   syscall.RawSockaddrInet6
	sa    unsafe.Pointer
	salen uintptr
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// newRawUDPConn wraps uc, or returns nil if its descriptor cannot be
// reached (the caller keeps using uc).
func newRawUDPConn(uc *net.UDPConn) *rawUDPConn {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &rawUDPConn{UDPConn: uc, rc: rc}
	var serr error
	err = rc.Control(func(fd uintptr) {
		var sa syscall.Sockaddr
		sa, serr = syscall.Getsockname(int(fd))
		_, c.v6 = sa.(*syscall.SockaddrInet6)
	})
	if err != nil || serr != nil {
		return nil
	}
	c.rd.fn = c.rd.recv
	c.sends.New = func() any {
		s := new(rawSend)
		s.fn = s.send
		return s
	}
	return c
}

func (r *rawRecv) recv(fd uintptr) bool {
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)), 0,
			uintptr(unsafe.Pointer(&r.sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the RawConn waits in the poller, then calls again
		}
		r.n, r.errno = int(n), e
		return true
	}
}

func (s *rawSend) send(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(s.b))), uintptr(len(s.b)), 0,
			uintptr(s.sa), s.salen)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.n, s.errno = int(n), e
		return true
	}
}

// errAddrFamily is a datagram from an address family the gateway does
// not serve.
var errAddrFamily = errors.New("gateway: recvfrom: address family not served")

// ReadFromUDPAddrPort reads one datagram into b (truncated to len(b), as
// UDPConn's) and returns its length and sender.
func (c *rawUDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	r := &c.rd
	r.buf, r.n, r.errno = b, 0, 0
	err := c.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, os.NewSyscallError("recvfrom", r.errno)
	}
	switch r.sa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
		return r.n, netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(&sa.Port)), nil
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&r.sa))
		return r.n, netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), netPort(&sa.Port)), nil
	}
	return 0, netip.AddrPort{}, errAddrFamily
}

// WriteToUDPAddrPort sends b to addr in one datagram. Addresses with a
// zone, and IPv6 peers of an IPv4 socket, take UDPConn's own path.
func (c *rawUDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	ip := addr.Addr()
	if ip.Zone() != "" || (!c.v6 && !ip.Unmap().Is4()) {
		return c.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	s := c.sends.Get().(*rawSend)
	defer c.sends.Put(s)
	if c.v6 {
		s.sa6 = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
		setNetPort(&s.sa6.Port, addr.Port())
		s.sa, s.salen = unsafe.Pointer(&s.sa6), syscall.SizeofSockaddrInet6
	} else {
		s.sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.Unmap().As4()}
		setNetPort(&s.sa4.Port, addr.Port())
		s.sa, s.salen = unsafe.Pointer(&s.sa4), syscall.SizeofSockaddrInet4
	}
	s.b, s.n, s.errno = b, 0, 0
	err := c.rc.Write(s.fn)
	s.b = nil
	if err != nil {
		return 0, err
	}
	if s.errno != 0 {
		return 0, os.NewSyscallError("sendto", s.errno)
	}
	return s.n, nil
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// setNetPort stores port in network byte order.
func setNetPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// wrapUDP returns uc with raw reads and writes, or uc itself if that is
// not possible.
func wrapUDP(uc *net.UDPConn) udpAddrPortConn {
	if c := newRawUDPConn(uc); c != nil {
		return c
	}
	return uc
}
