package devicetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// Conn is one device connection to the Server. Its methods are safe for
// concurrent use.
type Conn struct {
	// ID is the device ID (24 lowercase hex characters).
	ID string
	// Keys are the session keys of the handshake.
	Keys protocol.SessionKeys

	srv *Server
	nc  net.Conn
	fr  *protocol.FrameReader // read loop only

	wmu sync.Mutex // guards fw, ids
	fw  *protocol.FrameWriter
	ids protocol.MessageIDs

	tmu     sync.Mutex // guards tokens, waiters, foreign
	tokens  protocol.Tokens
	waiters []*waiter
	foreign int

	// Guarded by srv.mu.
	hello     *protocol.Hello
	helloID   uint16
	closed    bool
	events    []protocol.Event
	subs      []protocol.Subscription
	describes []protocol.DescribeBody
	goodbye   *protocol.Goodbye
	pings     int
	timeReqs  int
	done      chan struct{}
	closeOnce sync.Once
}

// waiter awaits the answer to one request: an ACK carrying a code (or any
// ACK when emptyOK) for its message ID, or a separate response carrying
// its token.
type waiter struct {
	id      uint16
	tok     byte
	hasTok  bool
	emptyOK bool
	ch      chan *protocol.Message
}

// Hello returns the device's Hello payload.
func (c *Conn) Hello() protocol.Hello {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.hello == nil {
		return protocol.Hello{}
	}
	return *c.hello
}

// HelloMessageID returns the CoAP message ID of the device's Hello, the
// first message after the handshake
// (docs/particle-protocol.md#message-ids-and-tokens: LE16(salt)+1).
func (c *Conn) HelloMessageID() uint16 {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.helloID
}

// Close drops the connection.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.nc.Close()
	})
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.doneChan()
}

// doneChan returns the done channel; srv.mu must be held.
func (c *Conn) doneChan() chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Events returns the events the device published on this connection.
func (c *Conn) Events() []protocol.Event {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return append([]protocol.Event(nil), c.events...)
}

// WaitEvent waits for an event named name and returns the first one.
func (c *Conn) WaitEvent(ctx context.Context, name string) (protocol.Event, error) {
	var e protocol.Event
	err := c.srv.wait(ctx, func() bool {
		for _, x := range c.events {
			if x.Name == name {
				e = x
				return true
			}
		}
		return false
	})
	if err != nil {
		return e, fmt.Errorf("devicetest: event %q: %w", name, err)
	}
	return e, nil
}

// Subscriptions returns the subscriptions the device sent on this connection.
func (c *Conn) Subscriptions() []protocol.Subscription {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return append([]protocol.Subscription(nil), c.subs...)
}

// WaitSubscription waits for a subscription to prefix.
func (c *Conn) WaitSubscription(ctx context.Context, prefix string) (protocol.Subscription, error) {
	var s protocol.Subscription
	err := c.srv.wait(ctx, func() bool {
		for _, x := range c.subs {
			if x.Prefix == prefix {
				s = x
				return true
			}
		}
		return false
	})
	if err != nil {
		return s, fmt.Errorf("devicetest: subscription %q: %w", prefix, err)
	}
	return s, nil
}

// WaitDescribePost waits for a complete device-initiated describe with
// flags (Block1 blocks reassembled) and returns its payload.
func (c *Conn) WaitDescribePost(ctx context.Context, flags protocol.DescribeFlags) ([]byte, error) {
	var out []byte
	err := c.srv.wait(ctx, func() bool {
		var buf []byte
		for _, b := range c.describes {
			if b.Flags != flags {
				continue
			}
			switch {
			case b.Block == nil:
				out = b.Payload
				return true
			case b.Block.Num == 0:
				buf = append([]byte(nil), b.Payload...)
			default:
				buf = append(buf, b.Payload...)
			}
			if b.Block != nil && !b.Block.More {
				out = buf
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("devicetest: describe post %s: %w", flags, err)
	}
	return out, nil
}

// Goodbye returns the device's Goodbye, if it sent one.
func (c *Conn) Goodbye() (protocol.Goodbye, bool) {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.goodbye == nil {
		return protocol.Goodbye{}, false
	}
	return *c.goodbye, true
}

// Pings returns how many pings the device sent.
func (c *Conn) Pings() int {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.pings
}

// WaitPings waits until the device has sent n pings.
func (c *Conn) WaitPings(ctx context.Context, n int) error {
	return c.srv.wait(ctx, func() bool { return c.pings >= n })
}

// TimeRequests returns how many time requests the device sent.
func (c *Conn) TimeRequests() int {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.timeReqs
}

// send assigns a message ID and writes m.
func (c *Conn) send(m *protocol.Message, newID bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if newID {
		m.ID = c.ids.Next()
	}
	return c.fw.WriteMessage(m)
}

// Send writes m with the next server message ID.
func (c *Conn) Send(m protocol.Message) error { return c.send(&m, true) }

// SendEvent publishes a private event to the device (NON POST E,
// docs/particle-protocol.md#events).
func (c *Conn) SendEvent(name, data string) error {
	m, err := protocol.NewEvent(protocol.NonConfirmable, 0, protocol.Event{
		Name: name, Data: []byte(data), Private: true, TTL: protocol.DefaultEventTTL})
	if err != nil {
		return err
	}
	return c.send(&m, true)
}

// ErrClosed means the connection ended before the answer arrived.
var ErrClosed = errors.New("devicetest: connection closed")

// errGoodbye ends the read loop after the device's Goodbye.
var errGoodbye = errors.New("devicetest: device said goodbye")

// request sends the message build returns for a fresh ID and token and
// waits for its answer.
func (c *Conn) request(ctx context.Context, emptyOK bool, build func(id uint16, tok byte) (protocol.Message, error)) (*protocol.Message, error) {
	c.tmu.Lock()
	tok, ok := c.tokens.Acquire()
	c.tmu.Unlock()
	if !ok {
		return nil, errors.New("devicetest: too many outstanding requests")
	}
	w := &waiter{tok: tok, hasTok: true, emptyOK: emptyOK, ch: make(chan *protocol.Message, 1)}
	defer func() {
		c.tmu.Lock()
		c.tokens.Release(tok)
		for i, x := range c.waiters {
			if x == w {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		c.tmu.Unlock()
	}()
	c.wmu.Lock()
	id := c.ids.Next()
	m, err := build(id, tok)
	if err == nil {
		w.id = id
		c.tmu.Lock()
		c.waiters = append(c.waiters, w)
		c.tmu.Unlock()
		err = c.fw.WriteMessage(&m)
	}
	c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-w.ch:
		if r == nil {
			return nil, ErrClosed
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Request sends m with the next message ID and, when m has a token, a
// fresh one in its place, and returns the device's answer: a piggy-backed
// ACK or a separate response (an empty ACK is awaited only when m has no
// token). It lets tests send requests the other methods do not build.
func (c *Conn) Request(ctx context.Context, m protocol.Message) (*protocol.Message, error) {
	hasTok := len(m.Token) > 0
	return c.request(ctx, !hasTok, func(id uint16, tok byte) (protocol.Message, error) {
		m.ID = id
		if hasTok {
			m.Token = []byte{tok}
		}
		return m, nil
	})
}

// deliver hands an answer to its waiter; it reports whether one took it.
// Like Wick's gateway (docs/device-protocol.md, "Acknowledgement
// matching"), it copes with firmware that stamps its replies with its own
// message IDs: an ACK with a code whose ID matches no request goes by
// token, an empty one to the oldest ping.
func (c *Conn) deliver(m *protocol.Message) bool {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	tok, hasTok := m.Token1()
	byID := func(w *waiter) bool { return w.id == m.ID }
	byToken := func(w *waiter) bool { return hasTok && w.hasTok && w.tok == tok && !w.emptyOK }
	var first, fallback func(*waiter) bool
	switch {
	case m.Type == protocol.Reset:
		first = byID
	case m.Type == protocol.Acknowledgement && m.Code == protocol.CodeEmpty:
		for _, w := range c.waiters {
			if byID(w) && !w.emptyOK {
				return true // received; the answer follows by token
			}
		}
		first = func(w *waiter) bool { return w.emptyOK && byID(w) }
		fallback = func(w *waiter) bool { return w.emptyOK }
	case m.Type == protocol.Acknowledgement:
		first = func(w *waiter) bool { return !w.emptyOK && byID(w) && (!hasTok || w.tok == tok) }
		fallback = byToken
	default:
		first = byToken
	}
	for pass, match := range []func(*waiter) bool{first, fallback} {
		if match == nil {
			continue
		}
		for i, w := range c.waiters {
			if match(w) {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				w.ch <- cloneMessage(m)
				if pass == 1 {
					c.foreign++
				}
				return true
			}
		}
	}
	return false
}

// ForeignReplies returns how many ACKs answered a request although their
// message ID was not the request's (matched by token, or an empty ACK
// taken by a ping): the replies of a device with device.Quirks.ReplyIDs.
func (c *Conn) ForeignReplies() int {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	return c.foreign
}

func cloneMessage(m *protocol.Message) *protocol.Message {
	out := &protocol.Message{Type: m.Type, Code: m.Code, ID: m.ID,
		Token: bytes.Clone(m.Token), Payload: bytes.Clone(m.Payload)}
	for _, o := range m.Options {
		out.Options = append(out.Options, protocol.Option{Number: o.Number, Value: bytes.Clone(o.Value)})
	}
	return out
}

// ResponseError is a request answered with an error code.
type ResponseError struct {
	Code protocol.Code
}

// Error returns "devicetest: device answered 4.04".
func (e *ResponseError) Error() string { return "devicetest: device answered " + e.Code.String() }

// Call calls function name with arg and returns its result.
func (c *Conn) Call(ctx context.Context, name, arg string) (int32, error) {
	r, err := c.request(ctx, false, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewFunctionCall(id, tok, name, arg), nil
	})
	if err != nil {
		return 0, err
	}
	if !r.Code.IsSuccess() {
		return 0, &ResponseError{Code: r.Code}
	}
	return protocol.ParseFunctionResult(r)
}

// Variable reads variable name and returns the raw value.
func (c *Conn) Variable(ctx context.Context, name string) ([]byte, error) {
	r, err := c.request(ctx, false, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewVariableRequest(id, tok, name), nil
	})
	if err != nil {
		return nil, err
	}
	if r.Code != protocol.CodeContent {
		return nil, &ResponseError{Code: r.Code}
	}
	return r.Payload, nil
}

// Get reads variable name and decodes it with its declared type.
func (c *Conn) Get(ctx context.Context, name string, typ protocol.VariableType) (any, error) {
	raw, err := c.Variable(ctx, name)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeVariable(typ, raw)
}

// Describe requests a describe with flags (GET d?flags) and returns the
// payload, fetching Block2 blocks until the last one.
func (c *Conn) Describe(ctx context.Context, flags protocol.DescribeFlags) ([]byte, error) {
	var out, etag []byte
	var block *protocol.Block
	for range 64 {
		r, err := c.request(ctx, false, func(id uint16, tok byte) (protocol.Message, error) {
			return protocol.NewDescribeRequest(id, tok, flags, block)
		})
		if err != nil {
			return nil, err
		}
		if !r.Code.IsSuccess() {
			return nil, &ResponseError{Code: r.Code}
		}
		body, err := protocol.ParseDescribeResponse(r)
		if err != nil {
			return nil, err
		}
		if body.Block == nil {
			return body.Payload, nil
		}
		if block != nil && !bytes.Equal(etag, body.ETag) {
			return nil, errors.New("devicetest: describe ETag changed between blocks")
		}
		etag = body.ETag
		out = append(out, body.Payload...)
		if !body.Block.More {
			return out, nil
		}
		block = &protocol.Block{Num: body.Block.Num + 1, Size: body.Block.Size}
	}
	return nil, errors.New("devicetest: describe has too many blocks")
}

// Signal starts (on) or stops the device's signaling (PUT s).
func (c *Conn) Signal(ctx context.Context, on bool) error {
	r, err := c.request(ctx, false, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewSignal(id, tok, on), nil
	})
	if err != nil {
		return err
	}
	if r.Code != protocol.CodeChanged {
		return &ResponseError{Code: r.Code}
	}
	return nil
}

// Ping sends a CoAP ping and waits for the device's empty ACK.
func (c *Conn) Ping(ctx context.Context) error {
	r, err := c.request(ctx, true, func(id uint16, _ byte) (protocol.Message, error) {
		return protocol.NewPing(id), nil
	})
	if err != nil {
		return err
	}
	if r.Type != protocol.Acknowledgement || r.Code != protocol.CodeEmpty {
		return fmt.Errorf("devicetest: ping answered %s %s", r.Type, r.Code)
	}
	return nil
}

// readLoop answers the device until the connection ends.
func (c *Conn) readLoop() {
	defer c.finish()
	var m protocol.Message
	for {
		if err := c.fr.ReadMessage(&m); err != nil {
			return
		}
		if err := c.handle(&m); err != nil {
			return
		}
	}
}

func (c *Conn) finish() {
	c.Close()
	c.tmu.Lock()
	ws := c.waiters
	c.waiters = nil
	c.tmu.Unlock()
	for _, w := range ws {
		w.ch <- nil
	}
	s := c.srv
	s.mu.Lock()
	c.closed = true
	close(c.doneChan())
	if s.conns[mustID(c.ID)] == c {
		delete(s.conns, mustID(c.ID))
	}
	s.notify()
	s.mu.Unlock()
}

func mustID(s string) protocol.DeviceID {
	id, _ := protocol.ParseDeviceID(s)
	return id
}

func (c *Conn) ack(m *protocol.Message) error {
	if m.Type != protocol.Confirmable {
		return nil
	}
	a := protocol.NewEmptyACK(m.ID)
	return c.send(&a, false)
}

// record updates the connection's state under the server lock.
func (c *Conn) record(fn func()) {
	c.srv.mu.Lock()
	fn()
	c.srv.notify()
	c.srv.mu.Unlock()
}

func (c *Conn) handle(m *protocol.Message) error {
	switch protocol.Classify(m) {
	case protocol.KindHello:
		h, err := protocol.ParseHelloMessage(m)
		if err != nil {
			return err
		}
		first := false
		id := m.ID
		c.record(func() {
			if c.hello == nil {
				first = true
				c.hello, c.helloID = &h, id
			}
		})
		if err := c.ack(m); err != nil {
			return err
		}
		if first && !c.srv.NoHello {
			sh := protocol.NewServerHello(protocol.NonConfirmable, 0)
			return c.send(&sh, true)
		}
	case protocol.KindPing:
		c.record(func() { c.pings++ })
		if c.srv.IgnorePings {
			return nil
		}
		return c.ack(m)
	case protocol.KindTimeRequest:
		tok, ok := m.Token1()
		if !ok {
			return c.ack(m)
		}
		c.record(func() { c.timeReqs++ })
		now := time.Now()
		if c.srv.Now != nil {
			now = c.srv.Now()
		}
		r := protocol.NewTimeResponse(m.ID, tok, uint32(now.Unix()))
		return c.send(&r, false)
	case protocol.KindEvent:
		e, err := protocol.ParseEvent(m)
		if err == nil {
			c.record(func() { c.events = append(c.events, e) })
		}
		return c.ack(m)
	case protocol.KindSubscribe:
		sub, err := protocol.ParseSubscribe(m)
		if err == nil {
			c.record(func() { c.subs = append(c.subs, sub) })
		}
		return c.ack(m)
	case protocol.KindDescribePost:
		body, err := protocol.ParseDescribePost(m)
		if err == nil {
			c.record(func() { c.describes = append(c.describes, body) })
		}
		return c.ack(m)
	case protocol.KindGoodbye:
		g, err := protocol.ParseGoodbye(m)
		if err == nil {
			c.record(func() { c.goodbye = &g })
		}
		if err := c.ack(m); err != nil {
			return err
		}
		return errGoodbye // the device has left: close, as a cloud does
	case protocol.KindEmptyACK, protocol.KindReset, protocol.KindResponse:
		// Separate CON responses (the describe answer) are ACKed first.
		if err := c.ack(m); err != nil {
			return err
		}
		c.deliver(m)
	default:
		return c.ack(m)
	}
	return nil
}
