// Package devicetest provides a minimal in-process device server for tests
// of code built on sdk/device, the way net/http/httptest serves tests of
// HTTP clients. It speaks the Gen 2 TCP protocol on a loopback port with
// the protocol package's server handshake, answers what a device sends
// (Hello, time, pings, describes, events, subscriptions) and lets a test
// drive each connection: call functions, read variables, request
// describes, signal, send events and drop the connection.
//
// It is deliberately small and strict (1-byte tokens, exact layouts); it is
// not the Wick gateway and keeps everything in memory.
package devicetest

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// Server is a running test server. Its exported fields may be set before
// the first device connects.
type Server struct {
	// Addr is the "127.0.0.1:port" the server listens on.
	Addr string
	// PublicKey is the server key devices must pin.
	PublicKey *rsa.PublicKey
	// TrustOnFirstUse accepts devices without a registered key, taking the
	// key they offer in the handshake.
	TrustOnFirstUse bool
	// NoHello makes the server never answer the device's Hello (to test
	// the device's 4 s timeout).
	NoHello bool
	// IgnorePings makes the server leave the device's pings unanswered (to
	// test the device's ping timeout).
	IgnorePings bool
	// Now is the clock of time replies; nil means time.Now.
	Now func() time.Time

	key *rsa.PrivateKey
	ln  net.Listener
	wg  sync.WaitGroup

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	keys       map[protocol.DeviceID]*rsa.PublicKey
	conns      map[protocol.DeviceID]*Conn
	handshakes int
	refused    int
	closed     bool
}

// NewServer starts a server with the RSA-2048 key key on a loopback port.
func NewServer(key *rsa.PrivateKey) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devicetest: listen: %w", err)
	}
	s := &Server{
		Addr: ln.Addr().String(), PublicKey: &key.PublicKey,
		key: key, ln: ln, changed: make(chan struct{}),
		keys: map[protocol.DeviceID]*rsa.PublicKey{}, conns: map[protocol.DeviceID]*Conn{},
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// AddDevice registers the public key of device id (24 hex characters).
func (s *Server) AddDevice(id string, key *rsa.PublicKey) error {
	did, err := protocol.ParseDeviceID(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys[did] = key
	s.mu.Unlock()
	return nil
}

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

// Handshakes returns how many handshakes completed.
func (s *Server) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// Refused returns how many handshakes were refused (unknown device or key).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// notify wakes every waiter; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait blocks until cond (called with s.mu held) is true or ctx ends.
func (s *Server) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitConn waits until device id (24 hex characters) has an open
// connection that completed its Hello, and returns it.
func (s *Server) WaitConn(ctx context.Context, id string) (*Conn, error) {
	did, err := protocol.ParseDeviceID(id)
	if err != nil {
		return nil, err
	}
	var c *Conn
	err = s.wait(ctx, func() bool {
		c = s.conns[did]
		return c != nil && c.hello != nil && !c.closed
	})
	if err != nil {
		return nil, fmt.Errorf("devicetest: device %s not connected: %w", id, err)
	}
	return c, nil
}

// Conns returns the open connections that completed their Hello.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Conn
	for _, c := range s.conns {
		if c.hello != nil && !c.closed {
			out = append(out, c)
		}
	}
	return out
}

// WaitOnline waits until n devices are connected.
func (s *Server) WaitOnline(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool {
		k := 0
		for _, c := range s.conns {
			if c.hello != nil && !c.closed {
				k++
			}
		}
		return k >= n
	})
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(nc)
		}()
	}
}

func (s *Server) deviceKey(id protocol.DeviceID, offered []byte) (*rsa.PublicKey, error) {
	s.mu.Lock()
	k, tofu := s.keys[id], s.TrustOnFirstUse
	s.mu.Unlock()
	if k == nil {
		if !tofu || len(offered) == 0 {
			return nil, errors.New("devicetest: unknown device")
		}
		return protocol.ParseRSAPublicKey(offered)
	}
	if err := protocol.CheckOfferedKey(k, offered); err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Server) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	res, err := protocol.ServerHandshake(nc, protocol.ServerHandshakeConfig{PrivateKey: s.key, DeviceKey: s.deviceKey})
	if err != nil {
		s.mu.Lock()
		s.refused++
		s.notify()
		s.mu.Unlock()
		return
	}
	nc.SetDeadline(time.Time{})
	c := &Conn{
		srv: s, nc: nc, ID: res.DeviceID.String(), Keys: res.Keys,
		fr: protocol.NewFrameReader(nc, res.Keys, 0), fw: protocol.NewFrameWriter(nc, res.Keys, 0),
		ids: protocol.NewMessageIDs(uint16(time.Now().UnixNano())), tokens: protocol.NewTokens(0x80),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	old := s.conns[res.DeviceID]
	s.conns[res.DeviceID] = c
	s.handshakes++
	s.notify()
	s.mu.Unlock()
	if old != nil {
		old.Close() // a second connection replaces the first
	}
	c.readLoop()
}
