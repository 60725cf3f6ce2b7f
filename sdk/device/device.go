package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// State is the connection state of a Device.
type State uint8

// Connection states.
const (
	// Offline: not connected (before Run, between attempts, after Run).
	Offline State = iota
	// Connecting: dialing, handshaking or waiting for the server's Hello.
	Connecting
	// Online: the server answered the Hello; the device is in the cloud.
	Online
)

// String returns "offline", "connecting" or "online".
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Online:
		return "online"
	}
	return "offline"
}

// Errors returned by Device methods.
var (
	// ErrOffline means the operation needs a connection and there is none.
	ErrOffline = errors.New("device: not connected to the cloud")
	// ErrRejected means the server refused a message (ACK with an error
	// code or RST), e.g. an event answered with 4.00 "slow down".
	ErrRejected = errors.New("device: rejected by the server")
	// ErrRunning means Run was called while the device is already running.
	ErrRunning = errors.New("device: already running")
	// ErrName means a function, variable, event or subscription name that
	// is empty or longer than the protocol allows (64 bytes).
	ErrName = errors.New("device: invalid name")
	// ErrVariableGetter means a variable getter of an unsupported type.
	ErrVariableGetter = errors.New("device: unsupported variable getter type")
)

// FunctionHandler is a cloud function: it receives the argument (at most
// 1024 bytes) and returns the int32 result the caller sees. ctx is Run's
// context.
type FunctionHandler func(ctx context.Context, arg string) int32

// EventHandler receives an event published to the device.
type EventHandler func(name, data string)

type function struct {
	name string
	fn   FunctionHandler
}

type variable struct {
	name string
	typ  protocol.VariableType
	get  any // func() int32 | func() int | func() float64 | func() string | func() bool
}

type subscription struct {
	prefix string
	fn     EventHandler
}

// Device is one simulated or real Gen 2 device. Create it with New,
// register functions, variables and subscriptions, then call Run.
type Device struct {
	cfg Config
	id  protocol.DeviceID

	mu        sync.Mutex
	functions []function
	variables []variable
	subs      []subscription
	claimCode string
	state     State
	running   bool
	sess      *session      // current connection, nil unless Connecting or Online
	timeDelta time.Duration // server time - local time, valid when timeSet
	timeSet   bool
	signaling bool
	ctx       context.Context // Run's context, for handlers
	ota       otaDevice       // firmware updates (ota.go)
	saved     *savedSession   // UDP: the session to resume at the next connection

	app dispatcher
}

// New validates cfg and returns a Device that is not yet connected.
func New(cfg Config) (*Device, error) {
	c, id, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: c, id: id, claimCode: c.ClaimCode}
	if len(c.UDP.Session) > 0 {
		if d.saved, err = parseSavedSession(c.UDP.Session); err != nil {
			return nil, fmt.Errorf("%w: UDP.Session: %w", ErrConfig, err)
		}
	}
	return d, nil
}

// ID returns the device ID (24 lowercase hex characters).
func (d *Device) ID() string { return d.id.String() }

// State returns the current connection state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Time returns the cloud's current time as learnt from the time reply
// after the last handshake; ok is false before the first reply.
func (d *Device) Time() (t time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.timeSet {
		return time.Time{}, false
	}
	return time.Now().Add(d.timeDelta), true
}

// Signaling reports whether the cloud asked the device to signal (shout
// rainbows) and has not stopped it yet.
func (d *Device) Signaling() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.signaling
}

// ClaimCode returns the claim code the device still reports; it becomes
// empty once the cloud acknowledged the claim (spark/device/claim/...).
func (d *Device) ClaimCode() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.claimCode
}

func checkName(kind, name string) error {
	if name == "" || len(name) > protocol.MaxFunctionNameLen {
		return fmt.Errorf("%w: %s name %q (1-%d bytes)", ErrName, kind, name, protocol.MaxFunctionNameLen)
	}
	return nil
}

// Function registers (or replaces) the cloud function name, like
// Particle.function. Registering while online re-posts the application
// describe when Config.DeviceDescribe is set.
func (d *Device) Function(name string, fn FunctionHandler) error {
	if err := checkName("function", name); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("device: function %q: nil handler", name)
	}
	d.mu.Lock()
	replaced := false
	for i := range d.functions {
		if d.functions[i].name == name {
			d.functions[i].fn, replaced = fn, true
		}
	}
	if !replaced {
		d.functions = append(d.functions, function{name: name, fn: fn})
	}
	s := d.sess
	d.mu.Unlock()
	if !replaced {
		d.appChanged(s)
	}
	return nil
}

// Variable registers (or replaces) the cloud variable name, like
// Particle.variable. getter is called on every read and must return
// quickly; its type selects the variable type of the describe:
//
//	func() bool     BOOLEAN (1)
//	func() int32    INT32 (2)
//	func() int      INT32 (2), values outside int32 wrap
//	func() string   STRING (4), at most 1024 bytes are sent
//	func() float64  DOUBLE (9)
func (d *Device) Variable(name string, getter any) error {
	if err := checkName("variable", name); err != nil {
		return err
	}
	var typ protocol.VariableType
	switch getter.(type) {
	case func() bool:
		typ = protocol.VariableBool
	case func() int32, func() int:
		typ = protocol.VariableInt32
	case func() string:
		typ = protocol.VariableString
	case func() float64:
		typ = protocol.VariableDouble
	default:
		return fmt.Errorf("%w: %T for %q", ErrVariableGetter, getter, name)
	}
	d.mu.Lock()
	changed := true
	for i := range d.variables {
		if d.variables[i].name == name {
			changed = d.variables[i].typ != typ
			d.variables[i].typ, d.variables[i].get = typ, getter
			d.mu.Unlock()
			if changed {
				d.appChanged(d.session())
			}
			return nil
		}
	}
	d.variables = append(d.variables, variable{name: name, typ: typ, get: getter})
	s := d.sess
	d.mu.Unlock()
	d.appChanged(s)
	return nil
}

// Subscribe registers handler for events whose name starts with prefix,
// published by the devices of the same owner (scope "my devices"), like
// Particle.subscribe. The subscription is sent at every connection and,
// when online, at once.
func (d *Device) Subscribe(prefix string, handler EventHandler) error {
	if err := checkName("subscription", prefix); err != nil {
		return err
	}
	if handler == nil {
		return fmt.Errorf("device: subscription %q: nil handler", prefix)
	}
	d.mu.Lock()
	d.subs = append(d.subs, subscription{prefix: prefix, fn: handler})
	s := d.sess
	d.mu.Unlock()
	if s != nil && s.isOnline() {
		if err := s.subscribe(prefix); err != nil {
			d.cfg.Logger.Debug("device: subscribe", "device", d.ID(), "prefix", prefix, "err", err)
		}
	}
	return nil
}

// PublishOptions are the options of Publish.
type PublishOptions struct {
	// Public sends the event with the public path ('e'); the default is a
	// private event ('E'), which is all Device OS 6 sends.
	Public bool
	// TTL is the event's time to live, rounded down to seconds; zero means
	// 60 s (the protocol default, sent without Max-Age).
	TTL time.Duration
	// WithAck sends the event confirmable and waits for the server's ACK;
	// by default it is sent NON over TCP and Publish returns once written.
	WithAck bool
}

// Publish sends an event, like Particle.publish. name is at most 64 bytes
// and data at most 1024. It returns ErrOffline when the device is not
// online, and with WithAck waits for the ACK (ErrRejected when the server
// refuses the event) until ctx is done.
func (d *Device) Publish(ctx context.Context, name, data string, opts PublishOptions) error {
	if name == "" || len(name) > protocol.MaxEventNameLen {
		return fmt.Errorf("%w: event name %q (1-%d bytes)", ErrName, name, protocol.MaxEventNameLen)
	}
	if len(data) > protocol.MaxEventDataLen {
		return fmt.Errorf("device: event %q: data of %d bytes, max %d", name, len(data), protocol.MaxEventDataLen)
	}
	ttl := uint32(protocol.DefaultEventTTL)
	if opts.TTL > 0 {
		ttl = uint32(min(opts.TTL/time.Second, protocol.MaxEventTTL))
	}
	s := d.session()
	if s == nil || !s.isOnline() {
		return ErrOffline
	}
	return s.publish(ctx, protocol.Event{Name: name, Data: []byte(data), Private: !opts.Public, TTL: ttl}, opts.WithAck)
}

// session returns the current session, nil when offline.
func (d *Device) session() *session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sess
}

// appChanged re-posts the application describe after a change while online.
func (d *Device) appChanged(s *session) {
	if s == nil || !d.cfg.DeviceDescribe || !s.isOnline() {
		return
	}
	if err := s.postDescribe(protocol.DescribeApplication); err != nil {
		d.cfg.Logger.Debug("device: post describe", "device", d.ID(), "err", err)
	}
}

func (d *Device) setState(st State, err error) {
	d.mu.Lock()
	changed := d.state != st
	d.state = st
	d.mu.Unlock()
	if changed && d.cfg.OnState != nil {
		d.cfg.OnState(st, err)
	}
}

// Run connects the device and keeps it connected, reconnecting with
// backoff, until ctx is cancelled; it then says Goodbye, closes the
// connection and returns ctx's error. It returns early only for an error no
// retry can fix (ErrRunning).
func (d *Device) Run(ctx context.Context) error {
	if err := d.begin(ctx); err != nil {
		return err
	}
	defer d.end()
	failures := 0
	for {
		online, err := d.connectOnce(ctx)
		if !d.pause(ctx, online, err, &failures) {
			return ctx.Err()
		}
	}
}

func (d *Device) begin(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return ErrRunning
	}
	d.running, d.ctx = true, ctx
	return nil
}

func (d *Device) end() {
	d.mu.Lock()
	d.running = false
	d.mu.Unlock()
}

// pause records the end of a connection and waits out the backoff; it
// reports false when ctx ended. (Kept out of Run, whose frame stays on the
// stack of an idle device.)
func (d *Device) pause(ctx context.Context, online bool, err error, failures *int) bool {
	if ctx.Err() != nil {
		d.setState(Offline, nil)
		return false
	}
	d.setState(Offline, err)
	if online {
		*failures = 0
		d.cfg.Logger.Info("device: disconnected", "device", d.ID(), "err", err)
	} else {
		d.cfg.Logger.Debug("device: connection failed", "device", d.ID(), "err", err)
	}
	*failures++
	t := time.NewTimer(d.cfg.Backoff.Delay(*failures))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connectOnce runs one connection until it ends; online reports whether it
// got as far as the server's Hello.
func (d *Device) connectOnce(ctx context.Context) (online bool, err error) {
	d.setState(Connecting, nil)
	dialFn := dial
	if d.cfg.Transport == protocol.TransportUDP {
		dialFn = dialUDP
	}
	s, err := dialFn(ctx, d)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.sess = s
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.sess = nil
		d.signaling = false
		d.mu.Unlock()
	}()
	err = s.run(ctx)
	if s.resumed && !s.wasOnline {
		// The server did not know the session (restarted without it, or
		// expired): the next attempt runs a full handshake.
		if errors.Is(err, ErrHelloTimeout) {
			err = ErrResumeFailed
		}
	} else if s.wasOnline && !errors.Is(err, ErrRebooting) {
		// Only a session whose Hello the server took is worth resuming. A
		// device rebooting into an update starts with a full handshake,
		// so that its Hello says whether the update succeeded.
		d.saveSession(s)
	}
	return s.wasOnline, err
}

// handlerContext returns Run's context for handlers.
func (d *Device) handlerContext() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil {
		return context.Background()
	}
	return d.ctx
}
