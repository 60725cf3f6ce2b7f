package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Call kinds understood by the gateway. Kind is free-form: the bus only
// carries it.
const (
	KindFunction = "function" // call function Name with Arg; Reply.ReturnValue
	KindVariable = "variable" // read variable Name; Reply.Result (raw bytes) and Reply.Type
	KindSignal   = "signal"   // start ("1") or stop ("0") the rainbow LED, in Arg
	KindPing     = "ping"     // liveness check
	KindEvent    = "event"    // send event Name with Data to the device
	KindDescribe = "describe" // ask for a fresh Describe
	KindFlash    = "flash"    // OTA update with the binary whose SHA-256 (hex) is Name; Arg: optional JSON options
)

// A Call is a request to the process that holds a device's connection.
type Call struct {
	// Kind is what to do (KindFunction, KindVariable, ...).
	Kind string `json:"kind"`
	// Name is the function, variable or event name.
	Name string `json:"name,omitempty"`
	// Arg is the function argument or signal state.
	Arg string `json:"arg,omitempty"`
	// Data is an opaque payload (event data, ...).
	Data []byte `json:"data,omitempty"`
}

// A Reply is a handler's answer to a Call.
type Reply struct {
	// Status is a handler-defined outcome code (for example 200, 404 for an
	// unknown function or variable).
	Status int `json:"status,omitempty"`
	// ReturnValue is a function's return value.
	ReturnValue int64 `json:"return_value,omitempty"`
	// Result is a variable's raw value (or any other result bytes).
	Result []byte `json:"result,omitempty"`
	// Type is the type of Result, e.g. a variable's declared type.
	Type string `json:"type,omitempty"`
	// Error is an error message the device or gateway reported.
	Error string `json:"error,omitempty"`
}

// A Handler answers calls for one device. It must honour ctx, which ends at
// the caller's deadline. Returning ErrDeviceOffline (wrapped or not) reports
// that the device went away; other errors reach the caller as *CallError.
type Handler func(ctx context.Context, c Call) (Reply, error)

// CallError is a handler failure other than offline or timeout.
type CallError struct {
	// Message is the handler's error text.
	Message string
	// Err is the handler's error itself when the call was handled in this
	// process (nil when it crossed NATS).
	Err error
}

// Error returns the message with the package prefix.
func (e *CallError) Error() string { return "bus: device call failed: " + e.Message }

// Unwrap returns the handler's error when it is known.
func (e *CallError) Unwrap() error { return e.Err }

// Wire shapes of P.dev requests and their final replies. The holder first
// answers with an empty message (the acknowledgement) and then with a
// callResponse.
type callRequest struct {
	Call
	TimeoutMS int64 `json:"timeout_ms"`
}

type callResponse struct {
	Reply *Reply `json:"reply,omitempty"`
	Code  string `json:"code,omitempty"` // "", "offline", "timeout", "error"
	Error string `json:"error,omitempty"`
}

const (
	codeOffline = "offline"
	codeTimeout = "timeout"
	codeError   = "error"
)

// calls routes device calls: one wildcard NATS subscription per process
// (P.dev.*) dispatches to an in-process map of handlers, and one inbox
// subscription collects the replies to this process's calls.
type calls struct {
	b *Bus

	mu       sync.RWMutex
	handlers map[string]*handlerEntry // by escaped device ID

	subMu sync.Mutex
	sub   *nats.Subscription // P.dev.*; created by the first HandleDevice

	inbox    string // replies arrive at inbox.<id>
	inboxSub *nats.Subscription
	nextID   atomic.Uint64
	waitMu   sync.Mutex
	waiting  map[string]chan *nats.Msg

	ctx    context.Context // ends at Close; parent of remote handler contexts
	cancel context.CancelFunc
	wg     sync.WaitGroup // remote handler goroutines
}

type handlerEntry struct{ h Handler }

func newCalls(b *Bus) *calls {
	ctx, cancel := context.WithCancel(context.Background())
	return &calls{
		b:        b,
		handlers: make(map[string]*handlerEntry),
		waiting:  make(map[string]chan *nats.Msg),
		ctx:      ctx,
		cancel:   cancel,
	}
}

func (c *calls) start() error {
	c.inbox = c.b.cc.NewInbox()
	sub, err := c.b.cc.Subscribe(c.inbox+".*", c.reply)
	if err != nil {
		return fmt.Errorf("bus: call inbox: %w", err)
	}
	_ = sub.SetPendingLimits(pendingMsgs, pendingBytes)
	c.inboxSub = sub
	return nil
}

func (c *calls) stop() {
	c.cancel()
	c.mu.Lock()
	c.handlers = make(map[string]*handlerEntry)
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.b.log.Warn("bus: device handlers still running after close")
	}
}

func (c *calls) count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.handlers)
}

// HandleDevice routes calls for deviceID to handler, in this process and
// from every other process on the bus, until unregister is called. A later
// HandleDevice for the same device replaces the handler (a reconnect);
// the earlier unregister then does nothing.
func (b *Bus) HandleDevice(deviceID string, handler Handler) (unregister func()) {
	c := b.calls
	tok := EscapeToken(deviceID)
	e := &handlerEntry{h: handler}
	if b.isClosed() {
		return func() {}
	}
	c.mu.Lock()
	c.handlers[tok] = e
	c.mu.Unlock()
	if err := c.listen(); err != nil {
		b.log.Error("bus: cannot receive device calls", "device", deviceID, "err", err)
	}
	return func() {
		c.mu.Lock()
		if c.handlers[tok] == e {
			delete(c.handlers, tok)
		}
		c.mu.Unlock()
	}
}

// listen subscribes P.dev.* once.
func (c *calls) listen() error {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.sub != nil {
		return nil
	}
	sub, err := c.b.cc.Subscribe(c.b.subj.dev+"*", c.serve)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(pendingMsgs, pendingBytes)
	if err := c.b.cc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	c.sub = sub
	return nil
}

// serve handles a call from another process. A process that does not hold
// the device stays silent: the holder, if any, answers.
func (c *calls) serve(msg *nats.Msg) {
	tok := strings.TrimPrefix(msg.Subject, c.b.subj.dev)
	if msg.Reply == "" {
		return
	}
	c.mu.RLock()
	e := c.handlers[tok]
	if e != nil {
		c.wg.Add(1) // under mu: stop empties handlers before it waits
	}
	c.mu.RUnlock()
	if e == nil {
		return
	}
	cc := c.b.cc
	_ = cc.Publish(msg.Reply, nil) // acknowledge: the device is here
	var req callRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		c.wg.Done()
		c.b.malformed.Add(1)
		c.respond(msg.Reply, callResponse{Code: codeError, Error: "malformed call"})
		return
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 || timeout > c.b.cfg.CallTimeout {
		timeout = c.b.cfg.CallTimeout
	}
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		r, err := invoke(ctx, e.h, req.Call)
		resp := callResponse{}
		switch {
		case err == nil:
			resp.Reply = &r
		case errors.Is(err, ErrDeviceOffline):
			resp.Code = codeOffline
		case errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
			resp.Code = codeTimeout
		default:
			resp.Code, resp.Error = codeError, err.Error()
		}
		c.respond(msg.Reply, resp)
	}()
}

func (c *calls) respond(reply string, resp callResponse) {
	data, err := json.Marshal(resp)
	if err == nil {
		err = c.b.cc.Publish(reply, data)
	}
	if err != nil && !c.b.isClosed() {
		c.b.log.Warn("bus: call reply", "err", err)
	}
}

// reply routes a message on this process's inbox to the waiting Call.
func (c *calls) reply(msg *nats.Msg) {
	id := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	c.waitMu.Lock()
	ch := c.waiting[id]
	c.waitMu.Unlock()
	if ch == nil {
		return // the caller gave up
	}
	select {
	case ch <- msg:
	default:
	}
}

// invoke runs a handler, turning a panic into an error.
func invoke(ctx context.Context, h Handler, call Call) (r Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bus: device handler panic: %v", p)
		}
	}()
	return h(ctx, call)
}

// Call sends a call to whichever process holds deviceID's connection (this
// one included) and waits for the reply until ctx ends or, without a
// deadline, Config.CallTimeout. It returns ErrDeviceOffline when no process
// holds the device, ErrTimeout when the holder does not answer in time, and
// *CallError when the handler failed.
func (b *Bus) Call(ctx context.Context, deviceID string, call Call) (Reply, error) {
	if b.isClosed() {
		return Reply{}, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.CallTimeout)
		defer cancel()
	}
	c := b.calls
	tok := EscapeToken(deviceID)
	c.mu.RLock()
	e := c.handlers[tok]
	c.mu.RUnlock()
	if e != nil {
		return c.callLocal(ctx, e.h, call)
	}
	return c.callRemote(ctx, tok, call)
}

// callLocal runs the handler of a device held by this process, without NATS.
func (c *calls) callLocal(ctx context.Context, h Handler, call Call) (Reply, error) {
	type result struct {
		r   Reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := invoke(ctx, h, call)
		done <- result{r, err}
	}()
	select {
	case res := <-done:
		switch {
		case res.err == nil:
			return res.r, nil
		case errors.Is(res.err, ErrDeviceOffline):
			return Reply{}, ErrDeviceOffline
		case errors.Is(res.err, ErrTimeout) || errors.Is(res.err, context.DeadlineExceeded):
			return Reply{}, ErrTimeout
		default:
			return Reply{}, &CallError{Message: res.err.Error(), Err: res.err}
		}
	case <-ctx.Done():
		return Reply{}, ctxErr(ctx)
	}
}

func (c *calls) callRemote(ctx context.Context, tok string, call Call) (Reply, error) {
	deadline, _ := ctx.Deadline()
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return Reply{}, ErrTimeout
	}
	data, err := json.Marshal(callRequest{Call: call, TimeoutMS: max(timeout.Milliseconds(), 1)})
	if err != nil {
		return Reply{}, fmt.Errorf("bus: call: %w", err)
	}
	id := strconv.FormatUint(c.nextID.Add(1), 36)
	ch := make(chan *nats.Msg, 2)
	c.waitMu.Lock()
	c.waiting[id] = ch
	c.waitMu.Unlock()
	defer func() {
		c.waitMu.Lock()
		delete(c.waiting, id)
		c.waitMu.Unlock()
	}()
	if err := c.b.cc.PublishRequest(c.b.subj.dev+tok, c.inbox+"."+id, data); err != nil {
		if c.b.isClosed() {
			return Reply{}, ErrClosed
		}
		return Reply{}, fmt.Errorf("bus: call: %w", err)
	}
	locate := time.NewTimer(c.b.cfg.LocateTimeout)
	defer locate.Stop()
	locating := locate.C
	for {
		select {
		case m := <-ch:
			if m.Header.Get("Status") == "503" { // no process handles devices
				return Reply{}, ErrDeviceOffline
			}
			if len(m.Data) == 0 { // acknowledged: the holder is working on it
				locating = nil
				continue
			}
			var resp callResponse
			if err := json.Unmarshal(m.Data, &resp); err != nil {
				return Reply{}, fmt.Errorf("bus: call: malformed reply: %w", err)
			}
			switch resp.Code {
			case "":
				if resp.Reply == nil {
					return Reply{}, nil
				}
				return *resp.Reply, nil
			case codeOffline:
				return Reply{}, ErrDeviceOffline
			case codeTimeout:
				return Reply{}, ErrTimeout
			default:
				return Reply{}, &CallError{Message: resp.Error}
			}
		case <-locating: // handlers exist elsewhere, but none holds this device
			return Reply{}, ErrDeviceOffline
		case <-ctx.Done():
			return Reply{}, ctxErr(ctx)
		}
	}
}

// ctxErr maps a context's end to ErrTimeout (deadline) or a wrapped
// cancellation.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return fmt.Errorf("bus: call: %w", ctx.Err())
}
