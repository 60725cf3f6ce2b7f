package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// A pending is a server request waiting for the device's answer. How
// answers find their request is written down in docs/device-protocol.md,
// "Acknowledgement matching".
type pending struct {
	id    uint16
	token byte
	kind  answerKind
	// acked: the empty ACK of a separate request arrived; the answer is
	// still to come. Guarded by the session's mu.
	acked bool
	ch    chan reply // buffered 1
}

// answerKind is how the device answers a request.
type answerKind uint8

const (
	// answerPiggyBacked: an ACK carrying the response code and the token
	// (signal).
	answerPiggyBacked answerKind = iota
	// answerSeparate: an empty ACK only acknowledges receipt; the answer
	// follows as a separate response with the token (function, variable,
	// describe).
	answerSeparate
	// answerPing: an empty ACK (CoAP ping; the request has no token).
	answerPing
)

// reply is how a pending request ends.
type reply struct {
	msg   protocol.Message // owns its memory
	reset bool             // the device answered RST
	gone  bool             // the session ended
}

func (p *pending) complete(r reply) {
	select {
	case p.ch <- r:
	default:
	}
}

// handleResponse completes the pending request an ACK, RST or response
// answers, and ACKs a confirmable separate response (Device OS sends its
// describe answer CON even over TCP).
//
// Device OS over TCP answers a ping and a signal in the buffer of the
// request, and its channel then stamps the reply with the device's own
// next message ID: the ACK of a signal carries the right token and a
// message ID the server never used, the ACK of a ping a foreign ID and no
// token. So an ACK that matches no request by ID is matched by token (ACK
// with a code) or taken as the answer of the oldest ping (empty ACK).
func (s *session) handleResponse(m *protocol.Message, kind protocol.Kind, plain []byte) {
	s.mu.Lock()
	p := s.matchLocked(m, kind)
	if p != nil {
		s.removePendingLocked(p)
	}
	s.mu.Unlock()
	if kind == protocol.KindResponse && m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	if p == nil {
		return
	}
	r := reply{reset: kind == protocol.KindReset}
	if !r.reset {
		b := append([]byte(nil), plain...)
		if err := r.msg.Decode(b); err != nil {
			return // decoded once already: cannot fail
		}
	}
	p.complete(r)
}

// matchLocked returns the pending request m answers, or nil when m
// completes none (an empty ACK of a separate request, a stale or unknown
// answer). Called with mu held.
func (s *session) matchLocked(m *protocol.Message, kind protocol.Kind) *pending {
	tok, hasTok := m.Token1()
	switch {
	case kind == protocol.KindEmptyACK:
		if p := s.pendingByID(m.ID); p != nil && !(p.kind == answerSeparate && p.acked) {
			if p.kind != answerSeparate {
				return p
			}
			p.acked = true // received; the answer comes separately
			return nil
		}
		// A foreign ID (the firmware's own counter) or a repeated ACK. An
		// empty ACK proves only that the device is alive, which is all a
		// ping asks: it answers the oldest ping, never any other request.
		for _, p := range s.pending {
			if p.kind == answerPing {
				return p
			}
		}
		return nil
	case kind == protocol.KindReset:
		return s.pendingByID(m.ID)
	case m.Type == protocol.Acknowledgement:
		// A piggy-backed response: by ID if the token agrees, else by
		// token. A ping is never answered with a code.
		if p := s.pendingByID(m.ID); p != nil && p.kind != answerPing && (!hasTok || p.token == tok) {
			return p
		}
		if hasTok {
			return s.pendingByToken(tok)
		}
		return nil
	case hasTok:
		return s.pendingByToken(tok)
	}
	return nil
}

// pendingByID returns the pending request with message ID id. Called with
// mu held.
func (s *session) pendingByID(id uint16) *pending {
	for _, p := range s.pending {
		if p.id == id {
			return p
		}
	}
	return nil
}

// pendingByToken returns the pending request (not a ping: pings carry no
// token) with token tok. Called with mu held.
func (s *session) pendingByToken(tok byte) *pending {
	for _, p := range s.pending {
		if p.token == tok && p.kind != answerPing {
			return p
		}
	}
	return nil
}

// removePendingLocked forgets p and frees its token. Called with mu held.
func (s *session) removePendingLocked(p *pending) {
	for i, q := range s.pending {
		if q == p {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
	if p.kind == answerPing {
		s.pings--
		return
	}
	s.tokens.Release(p.token)
}

// maxPendingPings bounds the pings waiting for an answer on one session.
const maxPendingPings = 16

// busyLogEvery is the least time between two log lines about one busy
// device.
const busyLogEvery = time.Minute

// busy counts a request refused because the device has too many in
// flight, and logs it at Info at most once per busyLogEvery per session: a
// device that stopped answering can be asked hundreds of times a second.
func (s *session) busy() {
	s.g.stats.callsBusy.Add(1)
	now := time.Now().UnixNano()
	last := s.busyLogged.Load()
	if now-last < int64(busyLogEvery) || !s.busyLogged.CompareAndSwap(last, now) {
		return
	}
	s.g.log.Info("gateway: device has too many requests in flight; refusing more", "device", s.id,
		"session", s.sid, "max", protocol.MaxOutstandingTokens)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Device OS over TCP receives a frame into a buffer of the size its Hello
// announces (MaxMessageSize: 960 on Gen 2), of which it keeps 2 bytes for
// the length prefix and 16 for padding; it builds the ACK of a function
// call in what the call leaves of that buffer. Larger messages make it drop
// the connection, or crash (docs/device-protocol.md, Message size limits).
const (
	deviceFrameReserve = 18 // length prefix and padding room
	functionACKRoom    = 34 // the ACK of a function call, built after it
)

// maxIncomingLen returns the largest encoded CoAP message the device can
// receive, or 0 when its Hello announced no size.
func (s *session) maxIncomingLen() int { return s.tr.maxIncomingLen(&s.hello) }

// maxRequestLen returns the largest encoded request m may be, 0 for no limit.
func (s *session) maxRequestLen(m *protocol.Message) int {
	limit := s.maxIncomingLen()
	if room := s.tr.functionACKRoom(); limit > 0 && room > 0 && m.PathKind() == protocol.PathFunction {
		limit = max(min(limit, int(s.hello.MaxMessageSize)-room), 1)
	}
	return limit
}

// messageLen returns the encoded length of m (0 if it cannot be encoded;
// sending reports that).
func (s *session) messageLen(m *protocol.Message) int {
	wb := getWriteBuf()
	defer putWriteBuf(wb)
	enc, err := m.AppendBinary(wb.enc[:0])
	wb.enc = enc
	if err != nil {
		return 0
	}
	return len(enc)
}

// request sends a server request built with a fresh message ID and 1-byte
// token and waits for its answer until ctx ends. The answer is the
// piggy-backed ACK or the separate response; an RST or the end of the
// session is an error.
func (s *session) request(ctx context.Context, kind answerKind, build func(id uint16, token byte) (protocol.Message, error)) (protocol.Message, error) {
	s.mu.Lock()
	if s.closed || !s.online {
		s.mu.Unlock()
		return protocol.Message{}, s.offline()
	}
	// Pings carry no token, so they do not compete with calls for one: a
	// device with every token taken by unanswered calls can still be
	// pinged (docs/device-protocol.md, "Requests in flight").
	var tok byte
	ok := true
	if kind == answerPing {
		ok = s.pings < maxPendingPings
		s.pings += b2i(ok)
	} else {
		tok, ok = s.tokens.Acquire()
	}
	if !ok {
		s.mu.Unlock()
		s.busy()
		return protocol.Message{}, fmt.Errorf("gateway: device %s: too many requests in flight: %w", s.id, ErrBusy)
	}
	p := &pending{id: s.ids.Next(), token: tok, kind: kind, ch: make(chan reply, 1)}
	s.pending = append(s.pending, p)
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		s.removePendingLocked(p)
		s.mu.Unlock()
	}
	m, err := build(p.id, p.token)
	if err != nil {
		forget()
		return protocol.Message{}, err
	}
	if n, limit := s.messageLen(&m), s.maxRequestLen(&m); limit > 0 && n > limit {
		forget()
		return protocol.Message{}, fmt.Errorf("gateway: device %s: request of %d bytes, the device takes at most %d: %w",
			s.id, n, limit, ErrBadRequest)
	}
	if err := s.send(&m); err != nil {
		forget()
		return protocol.Message{}, s.offline()
	}
	select {
	case r := <-p.ch:
		switch {
		case r.gone:
			return protocol.Message{}, s.offline()
		case r.reset:
			return protocol.Message{}, fmt.Errorf("gateway: device %s reset the request", s.id)
		}
		return r.msg, nil
	case <-ctx.Done():
		forget()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return protocol.Message{}, fmt.Errorf("gateway: device %s: %w", s.id, bus.ErrTimeout)
		}
		return protocol.Message{}, fmt.Errorf("gateway: device %s: %w", s.id, ctx.Err())
	}
}

// withCallTimeout bounds ctx by Config.CallTimeout.
func (s *session) withCallTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.g.cfg.CallTimeout)
}

// countCall counts a call and its failure.
func (s *session) countCall(err error) {
	s.g.stats.calls.Add(1)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrBusy) {
		s.g.stats.callsFailed.Add(1)
	}
}

// responseError maps a device's 4.xx/5.xx answer to an error.
func (s *session) responseError(what string, c protocol.Code) error {
	switch c {
	case protocol.CodeNotFound:
		return fmt.Errorf("gateway: device %s: %s: %w", s.id, what, ErrNotFound)
	case protocol.CodeBadRequest:
		return fmt.Errorf("gateway: device %s: %s: %w", s.id, what, ErrBadRequest)
	}
	return fmt.Errorf("gateway: device %s: %s answered %s", s.id, what, c)
}

// callFunction calls a device function (docs/particle-protocol.md#functions ✔):
// CON POST f/<name> ?<arg>, answered by an empty ACK and a separate 2.04 with
// an int32 BE.
func (s *session) callFunction(ctx context.Context, name, arg string) (ret int32, err error) {
	defer func() { s.countCall(err) }()
	if name == "" || len(name) > protocol.MaxFunctionNameLen {
		return 0, fmt.Errorf("gateway: function %q: %w", name, ErrNotFound)
	}
	if len(arg) > protocol.MaxFunctionArgLen {
		return 0, fmt.Errorf("gateway: function argument of %d bytes, max %d: %w", len(arg), protocol.MaxFunctionArgLen, ErrBadRequest)
	}
	s.mu.Lock()
	app := s.app
	s.mu.Unlock()
	if app != nil && !app.hasFunction(name) {
		return 0, fmt.Errorf("gateway: device %s has no function %q: %w", s.id, name, ErrNotFound)
	}
	ctx, cancel := s.withCallTimeout(ctx)
	defer cancel()
	resp, err := s.request(ctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewFunctionCall(id, tok, name, arg), nil
	})
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.CodeChanged {
		return 0, s.responseError("function "+name, resp.Code)
	}
	v, err := protocol.ParseFunctionResult(&resp)
	if err != nil {
		return 0, fmt.Errorf("gateway: device %s: function %s: %w", s.id, name, err)
	}
	return v, nil
}

// readVariable reads a device variable (docs/particle-protocol.md#variables ✔):
// CON GET v/<name>, answered by an empty ACK and a separate 2.05 with the raw
// value. The type comes from the application describe, fetched first if this
// session has none and the variable is not known from an earlier one.
func (s *session) readVariable(ctx context.Context, name string) (t protocol.VariableType, raw []byte, err error) {
	defer func() { s.countCall(err) }()
	if name == "" || len(name) > protocol.MaxVariableNameLen {
		return 0, nil, fmt.Errorf("gateway: variable %q: %w", name, ErrNotFound)
	}
	ctx, cancel := s.withCallTimeout(ctx)
	defer cancel()
	t, known := s.variableType(name)
	if !known {
		s.mu.Lock()
		fresh := s.gotParts&protocol.DescribeApplication != 0
		s.mu.Unlock()
		if !fresh {
			if err := s.fetchDescribe(ctx, protocol.DescribeApplication); err != nil {
				s.g.log.Info("gateway: describe for variable", "device", s.id, "err", err)
			}
			t, known = s.variableType(name)
		}
	}
	if !known {
		return 0, nil, fmt.Errorf("gateway: device %s has no variable %q: %w", s.id, name, ErrNotFound)
	}
	resp, err := s.request(ctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewVariableRequest(id, tok, name), nil
	})
	if err != nil {
		return 0, nil, err
	}
	if resp.Code != protocol.CodeContent {
		return 0, nil, s.responseError("variable "+name, resp.Code)
	}
	if _, err := protocol.DecodeVariable(t, resp.Payload); err != nil {
		return 0, nil, fmt.Errorf("gateway: device %s: variable %s: %w", s.id, name, err)
	}
	return t, resp.Payload, nil
}

func (s *session) variableType(name string) (protocol.VariableType, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return 0, false
	}
	for _, v := range s.app.variables {
		if v.Name == name {
			return v.Type, true
		}
	}
	return 0, false
}

// signal starts or stops the rainbow LED (docs/particle-protocol.md#signal ✔):
// CON PUT s ?<0|1>, answered by a piggy-backed ACK 2.04.
func (s *session) signal(ctx context.Context, on bool) (err error) {
	defer func() { s.countCall(err) }()
	ctx, cancel := s.withCallTimeout(ctx)
	defer cancel()
	resp, err := s.request(ctx, answerPiggyBacked, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewSignal(id, tok, on), nil
	})
	if err != nil {
		return err
	}
	if resp.Code.Class() >= 4 {
		return s.responseError("signal", resp.Code)
	}
	return nil
}

// ping sends a CoAP ping (CON 0.00, no token) and waits for the empty ACK.
func (s *session) ping(ctx context.Context) (err error) {
	defer func() { s.countCall(err) }()
	ctx, cancel := s.withCallTimeout(ctx)
	defer cancel()
	_, err = s.request(ctx, answerPing, func(id uint16, _ byte) (protocol.Message, error) {
		return protocol.NewPing(id), nil
	})
	return err
}

// maxDescribeSize bounds a reassembled describe.
const maxDescribeSize = 64 << 10

// fetchDescribe asks the device for one describe part
// (docs/particle-protocol.md#describe ✔): CON GET d ?<flags> with a 1-byte
// token, answered by an empty ACK and a separate 2.05. A description larger
// than one message comes in Block2 blocks, fetched one GET at a time and
// reassembled by ETag.
func (s *session) fetchDescribe(ctx context.Context, flags protocol.DescribeFlags) error {
	var (
		body     []byte
		etag     []byte
		block    *protocol.Block
		restarts int
	)
	for {
		resp, err := s.request(ctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
			return protocol.NewDescribeRequest(id, tok, flags, block)
		})
		if err != nil {
			return err
		}
		if !resp.Code.IsSuccess() {
			return s.responseError("describe", resp.Code)
		}
		d, err := protocol.ParseDescribeResponse(&resp)
		if err != nil {
			return fmt.Errorf("gateway: device %s: describe: %w", s.id, err)
		}
		if d.Block == nil {
			if block != nil {
				return fmt.Errorf("gateway: device %s: describe: block %d answered without Block2", s.id, block.Num)
			}
			body = d.Payload
			break
		}
		switch {
		case block == nil && d.Block.Num == 0:
			etag = d.ETag
		case block != nil && d.Block.Num == block.Num && bytes.Equal(d.ETag, etag):
		default:
			// The description changed (new ETag) or the device answered
			// another block: start over, a few times at most.
			if restarts++; restarts > 2 {
				return fmt.Errorf("gateway: device %s: describe keeps changing", s.id)
			}
			body, etag, block = nil, nil, nil
			continue
		}
		body = append(body, d.Payload...)
		if len(body) > maxDescribeSize {
			return fmt.Errorf("gateway: device %s: describe larger than %d bytes", s.id, maxDescribeSize)
		}
		if !d.Block.More {
			break
		}
		block = &protocol.Block{Num: d.Block.Num + 1, Size: d.Block.Size}
	}
	return s.applyDescribe(flags, body)
}

// blockAssembly collects a device-initiated describe posted in Block1 blocks.
type blockAssembly struct {
	flags protocol.DescribeFlags
	next  uint32
	data  []byte
}

// handleDescribePost stores a describe the device posts itself (Hello flag
// 0x20): CON POST d ?<flags>, possibly in Block1 blocks, each with its own
// token, reassembled by flags and block number
// (docs/particle-protocol.md#describe). Every block is acknowledged with an
// empty ACK; the firmware sends the next block on it.
func (s *session) handleDescribePost(m *protocol.Message) {
	body, err := protocol.ParseDescribePost(m)
	if err != nil {
		s.g.stats.messagesBad.Add(1)
		s.refuse(m, protocol.CodeBadRequest)
		return
	}
	if b := body.Block; b != nil {
		if b.Num == 0 {
			s.block = &blockAssembly{flags: body.Flags}
		}
		if s.block == nil || s.block.flags != body.Flags || s.block.next != b.Num {
			s.block = nil
			s.refuse(m, protocol.CodeRequestEntityIncomplete)
			return
		}
		s.block.data = append(s.block.data, body.Payload...)
		if len(s.block.data) > maxDescribeSize {
			s.block = nil
			s.refuse(m, protocol.CodeRequestEntityTooLarge)
			return
		}
		s.block.next++
		if b.More {
			s.sendACK(m.ID)
			return
		}
		body.Payload, s.block = s.block.data, nil
	}
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	if err := s.applyDescribe(body.Flags, body.Payload); err != nil {
		s.g.stats.messagesBad.Add(1)
		s.g.log.Info("gateway: describe post", "device", s.id, "err", err)
	}
}
