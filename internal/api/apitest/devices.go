package apitest

import (
	"context"
	"sync"

	"github.com/wick-cloud/wick/internal/bus"
)

// FakeDevices is a deterministic api.DeviceCaller for API tests, standing
// in for the gateway (which has end-to-end tests of its own). Every device
// answers unless told to fail: a function returns the length of its
// argument, a variable the value set for its name (to begin with temp
// 21.5, count int32(42), on true and greeting "hello world";
// bus.ErrNoSuchName for others), Signal, Ping and Reload
// succeed. Every call is recorded. It is safe for concurrent use.
type FakeDevices struct {
	mu     sync.Mutex       // guards the fields below
	errs   map[string]error // by device ID + "/" + name, or device ID + "/"
	values map[string]any   // variable values by name
	calls  []DeviceCall
}

// DeviceCall is one call a FakeDevices received.
type DeviceCall struct {
	Kind     string // "function", "variable", "signal", "ping" or "reload"
	DeviceID string
	Name     string // function or variable name
	Arg      string // function argument; "1"/"0" for a signal
}

// NewFakeDevices returns a FakeDevices whose devices have a variable of
// each type.
func NewFakeDevices() *FakeDevices {
	return &FakeDevices{errs: map[string]error{}, values: map[string]any{
		"temp":     21.5,          // double
		"count":    int32(42),     // int32
		"on":       true,          // bool
		"greeting": "hello world", // string
	}}
}

// Fail makes calls to the device fail with err: calls of the function or
// variable name, or every call when name is "". A nil err clears it.
func (f *FakeDevices) Fail(deviceID, name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, deviceID+"/"+name)
		return
	}
	f.errs[deviceID+"/"+name] = err
}

// SetVariable sets the value every device returns for the variable name:
// bool, int32, float64 or string.
func (f *FakeDevices) SetVariable(name string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[name] = v
}

// Calls returns the calls received so far, oldest first.
func (f *FakeDevices) Calls() []DeviceCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DeviceCall(nil), f.calls...)
}

// record notes a call and returns the error it must fail with, if any.
func (f *FakeDevices) record(c DeviceCall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	if err := f.errs[c.DeviceID+"/"+c.Name]; err != nil {
		return err
	}
	return f.errs[c.DeviceID+"/"]
}

// CallFunction returns len(arg).
func (f *FakeDevices) CallFunction(ctx context.Context, deviceID, name, arg string) (int32, error) {
	if err := f.record(DeviceCall{Kind: "function", DeviceID: deviceID, Name: name, Arg: arg}); err != nil {
		return 0, err
	}
	return int32(len(arg)), nil
}

// GetVariable returns the value set for name, or bus.ErrNoSuchName.
func (f *FakeDevices) GetVariable(ctx context.Context, deviceID, name string) (any, error) {
	if err := f.record(DeviceCall{Kind: "variable", DeviceID: deviceID, Name: name}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, found := f.values[name]
	if !found {
		return nil, bus.ErrNoSuchName
	}
	return v, nil
}

// Signal records the call.
func (f *FakeDevices) Signal(ctx context.Context, deviceID string, on bool) error {
	arg := "0"
	if on {
		arg = "1"
	}
	return f.record(DeviceCall{Kind: "signal", DeviceID: deviceID, Arg: arg})
}

// Ping records the call.
func (f *FakeDevices) Ping(ctx context.Context, deviceID string) error {
	return f.record(DeviceCall{Kind: "ping", DeviceID: deviceID})
}

// Reload records the call.
func (f *FakeDevices) Reload(ctx context.Context, deviceID string) error {
	return f.record(DeviceCall{Kind: "reload", DeviceID: deviceID})
}
