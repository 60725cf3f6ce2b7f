//go:build linux

package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// tcpPark is a TCP session's parking state (tcp_park.go).
type tcpPark struct {
	raw   syscall.RawConn // the socket; nil: the session never parks
	fd    int32           // the descriptor + 1 armed in the poller; 0: none yet
	state atomic.Int32    // tcpRunning or tcpParked
	on    bool            // read loop only: the session is online and may park now
	// pinged: read loop only; the frame just handled was a ping, so the
	// next header read parks at once (see ping).
	pinged bool
}

// ping notes that the frame just handled was the device's keep-alive ping
// (read loop only). A device sends its ping alone and then nothing until
// its next one, so the session parks without first trying a read that
// would only find the socket empty: arming is level-triggered (a socket
// with bytes waiting reports them at once), so a frame that did follow
// wakes the session as any other. This saves a read and a read deadline
// on every ping.
func (p *tcpPark) ping() { p.pinged = p.on }

// parkNow reports whether the read loop should park without setting a
// read deadline (read loop only).
func (p *tcpPark) parkNow() bool { return p.pinged }

// online lets a session that may park do so from now on (read loop only).
func (p *tcpPark) online() { p.on = p.raw != nil }

// enable lets the session of conn park, if conn is a TCP socket (also
// under a wrapper with NetConn).
func (p *tcpPark) enable(conn net.Conn) { p.raw = newQuickACK(conn).raw }

// tcpPoller is the gateway's epoll instance of parked TCP sessions. Each
// socket is armed one-shot (EPOLLONESHOT) for input or the peer's hang-up:
// its first event disarms it, and the woken session re-arms it when it
// parks again. The instance's own descriptor is watched by Go's poller, so
// waiting for it takes no thread.
type tcpPoller struct {
	epfd int
	f    *os.File // owns epfd
	raw  syscall.RawConn

	mu   sync.Mutex
	byFD []*session // guarded by mu; the session last armed on each descriptor
}

func newTCPPoller() (*tcpPoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "gateway-tcp-poller")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	return &tcpPoller{epfd: epfd, f: f, raw: raw}, nil
}

// run wakes the sessions whose sockets have input until close.
func (p *tcpPoller) run() {
	evs := make([]syscall.EpollEvent, 256)
	var n int
	var werr error
	wait := func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), evs, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil // nothing ready: Go's poller waits
	}
	woken := make([]*session, 0, len(evs))
	for {
		if err := p.raw.Read(wait); err != nil {
			return // closed
		}
		if werr != nil {
			return
		}
		p.mu.Lock()
		for _, ev := range evs[:n] {
			if fd := int(ev.Fd); fd >= 0 && fd < len(p.byFD) && p.byFD[fd] != nil {
				woken = append(woken, p.byFD[fd])
			}
		}
		p.mu.Unlock()
		for i, s := range woken {
			s.wakeTCP()
			woken[i] = nil
		}
		woken = woken[:0]
	}
}

// close stops run. Parked sessions are not woken: Shutdown closes them.
func (p *tcpPoller) close() { p.f.Close() }

// arm watches s's socket for its device's next frame and marks s parked
// just before; the event, and another goroutine running s, may come
// before arm returns. parked reports whether s was marked: when err is not
// nil and parked is true, s must be taken back (or was, by its waker).
func (p *tcpPoller) arm(s *session) (parked bool, err error) {
	var cerr error
	err = s.tp.raw.Control(func(fd uintptr) {
		p.mu.Lock()
		if int(fd) >= len(p.byFD) {
			p.byFD = append(p.byFD, make([]*session, int(fd)+1-len(p.byFD)+len(p.byFD)/4)...)
		}
		p.byFD[fd] = s
		p.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		op := syscall.EPOLL_CTL_MOD
		if s.tp.fd != int32(fd)+1 {
			op = syscall.EPOLL_CTL_ADD
		}
		s.tp.fd = int32(fd) + 1
		s.g.stats.tcpParked.Add(1)
		// From here on the session is the waker's: nothing of it is
		// written below.
		s.tp.state.Store(tcpParked)
		parked = true
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
		if op == syscall.EPOLL_CTL_MOD && errors.Is(cerr, syscall.ENOENT) {
			cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil {
		return parked, err
	}
	if cerr != nil {
		return parked, os.NewSyscallError("epoll_ctl", cerr)
	}
	return parked, nil
}

// forget drops an ended session from the table (its socket is closed, so
// the kernel removed it from the epoll instance).
func (p *tcpPoller) forget(s *session) {
	fd := int(s.tp.fd) - 1
	if fd < 0 {
		return
	}
	p.mu.Lock()
	if fd < len(p.byFD) && p.byFD[fd] == s {
		p.byFD[fd] = nil
	}
	p.mu.Unlock()
}

// parked appends to dst the parked sessions for which match is true.
func (p *tcpPoller) parked(dst []*session, match func(*session) bool) []*session {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.byFD {
		if s != nil && s.tp.state.Load() == tcpParked && match(s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// readHeader reads the length prefix of the device's next frame into
// s.hdr. A session that may park reads it without waiting and, when no
// byte has arrived, parks and returns errParked: its goroutine must then
// return without touching the session, which another goroutine may already
// run.
func (s *session) readHeader() error {
	if s.tp.raw == nil || !s.tp.on {
		_, err := io.ReadFull(s.conn, s.hdr[:])
		return err
	}
	if s.tp.pinged {
		s.tp.pinged = false
		return s.park()
	}
	var n int
	var rerr error
	err := s.tp.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), s.hdr[:])
		return true
	})
	switch {
	case err != nil:
		return err
	case rerr == syscall.EINTR:
		return s.readHeader()
	case rerr == syscall.EAGAIN:
		return s.park()
	case rerr != nil:
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return io.EOF
	case n == 1:
		if _, err := io.ReadFull(s.conn, s.hdr[1:]); err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// park arms the socket in the poller and returns errParked. If the socket
// cannot be armed it reads the length prefix as an unparked session would:
// a closed socket then reports its error, and a full epoll instance (its
// fs.epoll.max_user_watches) costs the session its goroutine only.
func (s *session) park() error {
	g := s.g
	parked, err := g.tpoll.arm(s)
	if err == nil {
		return errParked
	}
	if parked && !s.tp.state.CompareAndSwap(tcpParked, tcpRunning) {
		return errParked // woken meanwhile (closed): the waker ends it
	}
	if parked {
		g.stats.tcpParked.Add(-1)
	}
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		s.tp.raw = nil // it stays unparked
		g.log.Warn("gateway: cannot park an idle session", "device", s.id, "err", err)
	}
	if _, err := io.ReadFull(s.conn, s.hdr[:]); err != nil {
		return err
	}
	return nil
}
