package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// Device calls. Each method below runs the request on the session directly
// when this gateway holds the device, and otherwise through bus.Call, which
// reaches whichever process holds it (or reports bus.ErrDeviceOffline).
// The same requests arrive from other processes through the handler every
// online session registers with bus.HandleDevice (handleCall).
//
// Replies on the bus carry Reply.Status 200 on success, 404 for an unknown
// function or variable (ErrNotFound), 400 for a refused request
// (ErrBadRequest), 429 for a device with too many requests in flight
// (ErrBusy); offline and timeout are errors. A variable's Reply.Result
// is its raw value and Reply.Type its declared type ("int32", "double",
// "string", "bool"); DecodeVariable turns them into a Go value.

// CallFunction calls a function of the device with arg and returns its
// int32 result (docs/particle-protocol.md#functions). It waits until ctx ends
// or Config.CallTimeout.
func (g *Gateway) CallFunction(ctx context.Context, deviceID, name, arg string) (int32, error) {
	if s := g.lookup(deviceID); s != nil {
		return s.callFunction(ctx, name, arg)
	}
	r, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindFunction, Name: name, Arg: arg})
	if err != nil {
		return 0, err
	}
	return int32(r.ReturnValue), nil
}

// GetVariable reads a variable of the device and returns it as bool, int32,
// float64 or string according to its declared type
// (docs/particle-protocol.md#variables).
func (g *Gateway) GetVariable(ctx context.Context, deviceID, name string) (any, error) {
	var (
		t   protocol.VariableType
		raw []byte
	)
	if s := g.lookup(deviceID); s != nil {
		var err error
		if t, raw, err = s.readVariable(ctx, name); err != nil {
			return nil, err
		}
		return protocol.DecodeVariable(t, raw)
	}
	r, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindVariable, Name: name})
	if err != nil {
		return nil, err
	}
	return DecodeVariable(r.Type, r.Result)
}

// Signal starts (on) or stops the device's rainbow LED
// (docs/particle-protocol.md#signal).
func (g *Gateway) Signal(ctx context.Context, deviceID string, on bool) error {
	if s := g.lookup(deviceID); s != nil {
		return s.signal(ctx, on)
	}
	arg := "0"
	if on {
		arg = "1"
	}
	_, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindSignal, Arg: arg})
	return err
}

// Ping sends the device a CoAP ping and waits for its ACK.
func (g *Gateway) Ping(ctx context.Context, deviceID string) error {
	if s := g.lookup(deviceID); s != nil {
		return s.ping(ctx)
	}
	_, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindPing})
	return err
}

// SendEvent sends one event to the device, whatever its subscriptions
// (docs/particle-protocol.md#events,
// docs/particle-protocol.md#events-the-cloud-sends-to-devices: e.g.
// spark/device/reset or particle/device/updates/forced). It returns once the
// event is queued for the device.
func (g *Gateway) SendEvent(ctx context.Context, deviceID, name string, data []byte) error {
	if name == "" || len(name) > protocol.MaxEventNameLen || len(data) > protocol.MaxEventDataLen {
		return fmt.Errorf("gateway: event %q with %d bytes: %w", name, len(data), ErrBadRequest)
	}
	if s := g.lookup(deviceID); s != nil {
		return s.queueEvent(name, data)
	}
	_, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindEvent, Name: name, Data: data})
	return err
}

// Reload makes the device's session re-read its owner and product from the
// store; the API calls it after claiming, unclaiming or moving a device. It
// does nothing for an offline device.
func (g *Gateway) Reload(ctx context.Context, deviceID string) error {
	if s := g.lookup(deviceID); s != nil {
		return s.reload(ctx)
	}
	_, err := g.remote(ctx, deviceID, bus.Call{Kind: KindReload})
	if errors.Is(err, bus.ErrDeviceOffline) {
		return nil
	}
	return err
}

// DecodeVariable decodes a variable's raw value given its declared type
// name ("bool", "int32", "double", "string", or the older aliases) into
// bool, int32, float64 or string.
func DecodeVariable(typ string, raw []byte) (any, error) {
	t, err := protocol.ParseVariableType(typ)
	if err != nil {
		return nil, fmt.Errorf("gateway: variable type: %w", err)
	}
	v, err := protocol.DecodeVariable(t, raw)
	if err != nil {
		return nil, fmt.Errorf("gateway: variable value: %w", err)
	}
	return v, nil
}

// remote sends a call through the bus and maps the reply's status back to
// the gateway's errors.
func (g *Gateway) remote(ctx context.Context, deviceID string, c bus.Call) (bus.Reply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.CallTimeout)
		defer cancel()
	}
	r, err := g.bus.Call(ctx, normalizeID(deviceID), c)
	if errors.Is(err, bus.ErrDeviceOffline) && reachable(c.Kind) {
		// A Gen 3 device may be up on a session saved by an earlier run.
		if s := g.reachSaved(ctx, deviceID); s != nil {
			r, err = s.handleCall(ctx, c)
		}
	}
	if err != nil {
		return r, fmt.Errorf("gateway: device %s: %w", deviceID, err)
	}
	switch r.Status {
	case http.StatusNotFound:
		return r, fmt.Errorf("gateway: device %s: %s: %w", deviceID, r.Error, ErrNotFound)
	case http.StatusBadRequest:
		return r, fmt.Errorf("gateway: device %s: %s: %w", deviceID, r.Error, ErrBadRequest)
	case http.StatusTooManyRequests:
		return r, fmt.Errorf("gateway: device %s: %s: %w", deviceID, r.Error, ErrBusy)
	case http.StatusConflict:
		return r, fmt.Errorf("gateway: device %s: %s: %w", deviceID, r.Error, ErrUpdateInProgress)
	case http.StatusServiceUnavailable:
		return r, fmt.Errorf("gateway: device %s: %s: %w", deviceID, r.Error, ErrUpdateRefused)
	}
	return r, nil
}

// handleCall answers the bus calls for this session's device.
func (s *session) handleCall(ctx context.Context, c bus.Call) (bus.Reply, error) {
	switch c.Kind {
	case bus.KindFunction:
		v, err := s.callFunction(ctx, c.Name, c.Arg)
		return callReply(bus.Reply{ReturnValue: int64(v)}, err)
	case bus.KindVariable:
		t, raw, err := s.readVariable(ctx, c.Name)
		return callReply(bus.Reply{Result: raw, Type: t.String()}, err)
	case bus.KindSignal:
		return callReply(bus.Reply{}, s.signal(ctx, c.Arg == "1"))
	case bus.KindPing:
		return callReply(bus.Reply{}, s.ping(ctx))
	case bus.KindEvent:
		if c.Name == "" || len(c.Name) > protocol.MaxEventNameLen || len(c.Data) > protocol.MaxEventDataLen {
			return callReply(bus.Reply{}, fmt.Errorf("gateway: event %q: %w", c.Name, ErrBadRequest))
		}
		return callReply(bus.Reply{}, s.queueEvent(c.Name, c.Data))
	case bus.KindDescribe:
		ctx, cancel := s.withCallTimeout(ctx)
		defer cancel()
		err := s.fetchDescribe(ctx, protocol.DescribeSystem)
		if err == nil {
			err = s.fetchDescribe(ctx, protocol.DescribeApplication)
		}
		return callReply(bus.Reply{}, err)
	case KindReload:
		return callReply(bus.Reply{}, s.reload(ctx))
	case bus.KindFlash:
		return callReply(bus.Reply{}, s.flash(ctx, c.Name))
	}
	return bus.Reply{}, fmt.Errorf("gateway: unknown call kind %q", c.Kind)
}

// queueEvent queues an event for the device, or reports that it could not.
func (s *session) queueEvent(name string, data []byte) error {
	if !s.sendEvent(name, data) {
		if !s.isOnline() {
			return s.offline()
		}
		return fmt.Errorf("gateway: device %s: event queue full", s.id)
	}
	return nil
}

// callReply turns a session result into a bus reply: not-found and
// bad-request outcomes are replies with a status, other errors stay errors.
func callReply(r bus.Reply, err error) (bus.Reply, error) {
	switch {
	case err == nil:
		r.Status = http.StatusOK
		return r, nil
	case errors.Is(err, ErrNotFound):
		return bus.Reply{Status: http.StatusNotFound, Error: err.Error()}, nil
	case errors.Is(err, ErrBadRequest):
		return bus.Reply{Status: http.StatusBadRequest, Error: err.Error()}, nil
	case errors.Is(err, ErrBusy):
		return bus.Reply{Status: http.StatusTooManyRequests, Error: err.Error()}, nil
	case errors.Is(err, ErrUpdateInProgress):
		return bus.Reply{Status: http.StatusConflict, Error: err.Error()}, nil
	case errors.Is(err, ErrUpdateRefused):
		return bus.Reply{Status: http.StatusServiceUnavailable, Error: err.Error()}, nil
	}
	return bus.Reply{}, err
}
