//go:build !linux

package gateway

import (
	"io"
	"net"
	"sync/atomic"
)

// tcpPark is a TCP session's parking state: sessions never park here
// (tcp_park.go needs epoll), so it only holds tcpRunning.
type tcpPark struct {
	state atomic.Int32
}

func (*tcpPark) enable(net.Conn) {}

func (*tcpPark) online() {}

func (*tcpPark) ping() {}

func (*tcpPark) parkNow() bool { return false }

// take moves carried bytes into b: there are none here.
func (*tcpPark) take([]byte) int { return 0 }

// tcpPoller does not exist here; newTCPPoller returns nil.
type tcpPoller struct{}

func newTCPPoller() (*tcpPoller, error) { return nil, nil }

func (*tcpPoller) run()                                                    {}
func (*tcpPoller) close()                                                  {}
func (*tcpPoller) forget(*session)                                         {}
func (*tcpPoller) parked(dst []*session, _ func(*session) bool) []*session { return dst }

// readHeader reads the length prefix of the device's next frame.
func (s *session) readHeader() error {
	_, err := io.ReadFull(s.conn, s.hdr[:])
	return err
}
