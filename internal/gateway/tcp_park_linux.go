//go:build linux

package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// tcpPark is a TCP session's parking state (tcp_park.go).
type tcpPark struct {
	raw   syscall.RawConn // the socket; nil: the session never parks
	fd    int32           // the descriptor + 1 armed in the poller; 0: none yet
	state atomic.Int32    // tcpRunning, tcpParked, tcpPolled or tcpPolledWake
	on    bool            // read loop only: the session is online and may park now
	// pinged: read loop only; the frame just handled was a ping, so the
	// next header read parks at once (see ping).
	pinged bool
	// carry holds bytes of the device's next frames that the poller read
	// and did not answer itself, from a frame boundary on: a frame cut
	// short while the session stays parked, or what followed the pings
	// when the poller woke the session. It belongs to whoever runs the
	// session (its read loop, or the poller while tcpPolled); the read
	// loop takes it before reading the socket. Nil for most sessions
	// (24 bytes of slice header each).
	carry []byte
}

// maxCarryKept is the largest carry buffer kept once empty: one a device
// that splits its pings' writes reuses (a ping's frame is 18 bytes).
const maxCarryKept = 32

// take moves up to len(b) carried bytes into b and reports how many.
func (p *tcpPark) take(b []byte) int {
	n := copy(b, p.carry)
	if n == 0 {
		return 0
	}
	p.carry = p.carry[:copy(p.carry, p.carry[n:])]
	if len(p.carry) == 0 && cap(p.carry) > maxCarryKept {
		p.carry = nil
	}
	return n
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
func (p *tcpPark) parkNow() bool { return p.pinged && len(p.carry) == 0 }

// online lets a session that may park do so from now on (read loop only).
func (p *tcpPark) online() { p.on = p.raw != nil }

// enable lets the session of conn park, if conn is a TCP socket (also
// under a wrapper with NetConn).
func (p *tcpPark) enable(conn net.Conn) { p.raw = newQuickACK(conn).raw }

// tcpPoller is the gateway's epoll instance of parked TCP sessions. Each
// socket is armed edge-triggered (EPOLLET) for input or the peer's
// hang-up when its session first parks, and stays in the instance until it
// is closed: each arrival of bytes (each segment) and the hang-up is one
// event. A session that parks from its read loop arms its socket again
// (EPOLL_CTL_MOD), which also reports bytes that came while it ran; the
// poller's goroutine, after answering pings, leaves the socket as it is,
// with no epoll_ctl: what comes after its read is a new event. Events for
// a session that runs meanwhile are ignored (its read loop reads the
// bytes, and arms the socket again when it parks). The instance's own
// descriptor is watched by Go's poller, so waiting for it takes no
// thread.
//
// The poller's goroutine answers keep-alive pings itself (serve): for a
// parked session whose socket has input it reads what arrived (one read),
// answers each whole ping frame with its empty ACK (one write) and re-arms
// the socket, without starting the session's goroutine. Only what is not
// a ping starts it: any other frame, the device's hang-up, an error, or a
// writer of the session busy at that moment.
type tcpPoller struct {
	epfd int
	f    *os.File // owns epfd
	raw  syscall.RawConn

	mu   sync.Mutex
	byFD []*session // guarded by mu; the session last armed on each descriptor

	// The poller's goroutine only: its event and wake-up lists, the
	// session serveFD works on and what came of it, and its buffers.
	evs     []syscall.EpollEvent
	woken   []*session
	wokenEv []uint32
	cur     *session
	curEv   uint32
	out     pollOutcome
	serveFn func(fd uintptr) // serveFD, bound once
	rbuf    [pollRead]byte
	pbuf    [pingFrameLen]byte
	wbuf    [2 + pingFrameLen]byte
}

// pollOutcome is what serveFD decided for a session.
type pollOutcome int8

const (
	pollWake        pollOutcome = iota // start the session's goroutine
	pollParked                         // re-armed: it stays parked
	pollWriteFailed                    // the ACK's write failed: close it
)

const (
	// pollRead is the most the poller reads from a socket at once: a
	// dozen pings, or the start of another frame, which the session's
	// goroutine reads the rest of.
	pollRead = 256
	// pingFrameLen is the length of a ping's frame body (a 4-byte
	// message padded to one AES block).
	pingFrameLen = 16
	// armEvents is what a parked socket is armed for. (EPOLLET is
	// negative as an int32 in package syscall.)
	armEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | uint32(1<<31)
	// hangUp are the events after which a socket is not armed again.
	hangUp = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
)

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
	const batch = 256
	p := &tcpPoller{epfd: epfd, f: f, raw: raw,
		evs:   make([]syscall.EpollEvent, batch),
		woken: make([]*session, 0, batch), wokenEv: make([]uint32, 0, batch)}
	p.serveFn = p.serveFD
	return p, nil
}

// run serves the sessions whose sockets have input until close. The
// events are taken up to 256 at a time and handled inside the wait
// callback, so that a wake-up of Go's poller costs one epoll_wait of the
// instance: events that come while they are handled wake Go's poller
// again, which calls the callback again.
func (p *tcpPoller) run() {
	var werr error
	wait := func(fd uintptr) bool {
		for {
			n, err := rawEpollWait(int(fd), p.evs)
			switch {
			case err == syscall.EINTR:
				continue
			case err != 0:
				werr = err
				return true
			case n == 0:
				return false // Go's poller waits
			}
			p.handle(p.evs[:n])
			if n < len(p.evs) {
				return false
			}
		}
	}
	for {
		if err := p.raw.Read(wait); err != nil || werr != nil {
			return // closed
		}
	}
}

// handle serves the sessions of a batch of events.
func (p *tcpPoller) handle(evs []syscall.EpollEvent) {
	p.mu.Lock()
	for _, ev := range evs {
		if fd := int(ev.Fd); fd >= 0 && fd < len(p.byFD) && p.byFD[fd] != nil {
			p.woken = append(p.woken, p.byFD[fd])
			p.wokenEv = append(p.wokenEv, ev.Events)
		}
	}
	p.mu.Unlock()
	for i, s := range p.woken {
		p.serve(s, p.wokenEv[i])
		p.woken[i] = nil
	}
	p.woken, p.wokenEv = p.woken[:0], p.wokenEv[:0]
}

// serve answers the pings that woke a parked session and parks it again,
// or starts its goroutine for anything else. A session already running
// (closed, and woken by its close) is left to its goroutine.
func (p *tcpPoller) serve(s *session, events uint32) {
	if !s.tp.state.CompareAndSwap(tcpParked, tcpPolled) {
		return
	}
	p.cur, p.curEv, p.out = s, events, pollWake
	if err := s.tp.raw.Control(p.serveFn); err != nil {
		p.out = pollWake // closed: its goroutine ends it
	}
	p.cur = nil
	switch p.out {
	case pollParked:
		if s.tp.state.CompareAndSwap(tcpPolled, tcpParked) {
			return
		}
		// Closed meanwhile (tcpPolledWake): its goroutine ends it.
	case pollWriteFailed:
		// close waits for the descriptor's users (serveFD was one), so
		// it runs here; it leaves the session tcpPolledWake.
		s.close(reasonWriteFailed)
	}
	s.tp.state.Store(tcpRunning)
	s.startTCP()
}

// serveFD is serve's work on the socket fd of p.cur, which it may not
// close (the descriptor is held): one read of what arrived and the pings'
// answers; the socket stays armed (p.out = pollParked), or p.out says why
// the session's goroutine must run.
func (p *tcpPoller) serveFD(fd uintptr) {
	s := p.cur
	had := copy(p.rbuf[:], s.tp.carry)
	n, err := rawRead(int(fd), p.rbuf[had:])
	for err == syscall.EINTR {
		n, err = rawRead(int(fd), p.rbuf[had:])
	}
	switch {
	case err == syscall.EAGAIN:
		n = 0 // nothing new after all
	case err != 0 || n <= 0:
		return // the hang-up or the error is its read loop's to see
	}
	rest, ok := p.answerPings(s, int(fd), p.rbuf[:had+n])
	s.tp.carry = append(s.tp.carry[:0], rest...)
	// A full read may have left bytes in the socket, which no new event
	// will report (edge-triggered): the read loop reads them.
	if !ok || p.out == pollWriteFailed || p.curEv&hangUp != 0 || had+n == len(p.rbuf) {
		return
	}
	p.out = pollParked
}

// answerPings answers the whole ping frames at the start of buf and
// returns the rest, with ok false if the rest starts with anything the
// session's read loop must handle (another frame, a bad one) or the
// session's writer was busy. It stops after a failed write.
func (p *tcpPoller) answerPings(s *session, fd int, buf []byte) (rest []byte, ok bool) {
	for len(buf) >= 2 && p.out != pollWriteFailed {
		if binary.BigEndian.Uint16(buf) != pingFrameLen {
			return buf, false
		}
		if len(buf) < 2+pingFrameLen {
			break // the rest of the frame comes later
		}
		ct := buf[2 : 2+pingFrameLen]
		plain, err := s.opener.Peek(p.pbuf[:], ct)
		if err != nil || !isPingFrame(plain) || !s.wmu.TryLock() {
			return buf, false
		}
		s.opener.Advance(ct)
		s.lastHeard.Store(time.Now().UnixNano())
		s.g.stats.tcpPollerPings.Add(1)
		p.ack(s, fd, uint16(plain[2])<<8|uint16(plain[3]))
		buf = buf[2+pingFrameLen:]
	}
	return buf, true
}

// ack writes the empty ACK of ping id, with s.wmu held, which it
// releases. A socket whose send buffer is full (the device does not read)
// takes the rest from a goroutine of its own, which holds the lock until
// it is written or the write timed out, as a blocked send would.
func (p *tcpPoller) ack(s *session, fd int, id uint16) {
	msg := [4]byte{0x60, 0x00, byte(id >> 8), byte(id)} // ACK 0.00 id, no token
	frame, err := s.sealer.Seal(p.wbuf[:0], msg[:])
	if err != nil {
		s.wmu.Unlock()
		return
	}
	n, e := rawWrite(fd, frame)
	for e == syscall.EINTR {
		n, e = rawWrite(fd, frame)
	}
	switch {
	case e == 0 && n == len(frame):
		s.wmu.Unlock()
	case e == 0 || e == syscall.EAGAIN:
		go s.finishWrite(bytes.Clone(frame[max(n, 0):]))
	default:
		s.wmu.Unlock()
		p.out = pollWriteFailed
	}
}

// The poller's system calls never block (its sockets are non-blocking and
// its epoll_wait does not wait), so it makes them raw: without the
// runtime's entersyscall, which wakes the runtime's monitor thread (sysmon)
// from its sleep whenever every P was idle, as in an idle server each ping
// found them. That wake-up, and the 20 µs sleeps sysmon then took before
// sleeping again, were a third of a lone ping's CPU (BenchmarkParkedPing
// rate=1000; docs/operations.md, "Idle CPU per ping").

// rawRead is read(2) on fd without entersyscall.
func rawRead(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}

// rawWrite is write(2) on fd without entersyscall.
func rawWrite(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}

// rawEpollWait is epoll_pwait(2) on epfd that returns at once, without
// entersyscall.
func rawEpollWait(epfd int, evs []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(evs))), uintptr(len(evs)), 0, 0, 0)
	return int(n), e
}

// finishWrite writes the rest of a frame the poller began, then releases
// s.wmu, which the poller took.
func (s *session) finishWrite(rest []byte) {
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
	if _, err := s.conn.Write(rest); err != nil {
		s.close(reasonWriteFailed)
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
		ev := syscall.EpollEvent{Events: armEvents, Fd: int32(fd)}
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
	if len(s.tp.carry) > 0 {
		if k := s.tp.take(s.hdr[:]); k < len(s.hdr) {
			return readRest(s.conn, s.hdr[k:])
		}
		return nil
	}
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
		return readRest(s.conn, s.hdr[1:])
	}
	return nil
}

// readRest reads the rest of a length prefix begun.
func readRest(c net.Conn, b []byte) error {
	if _, err := io.ReadFull(c, b); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
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
