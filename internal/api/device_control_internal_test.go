package api

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// TestDeviceRoutesLiteralsWin checks, on the real route table, that the
// {id}/{name} function and variable routes shadow none of the literal
// device routes (docs/particle-api.md#route-matching), the event streams
// included: if those are not in the table yet, they are added after the device
// routes, as a later section would, and must still win.
func TestDeviceRoutesLiteralsWin(t *testing.T) {
	table := (&server{}).routes()
	has := func(method, prefix string) bool {
		for _, rt := range table {
			if rt.method == method && strings.HasPrefix(rt.pattern, prefix) {
				return true
			}
		}
		return false
	}
	stub := func(pattern string) route { return route{method: "GET", pattern: pattern} }
	if !has("GET", "/v1/devices/{id}/events") {
		table = append(table, stub("/v1/devices/{id}/events"), stub("/v1/devices/{id}/events/{prefix...}"))
	}
	if !has("GET", "/v1/devices/events") {
		table = append(table, stub("/v1/devices/events"), stub("/v1/devices/events/{prefix...}"))
	}
	if !has("GET", "/v1/products/{p}/devices/{id}/events") {
		table = append(table, stub("/v1/products/{p}/devices/{id}/events"), stub("/v1/products/{p}/devices/{id}/events/{prefix...}"))
	}
	r := newRouter(table)
	tests := []struct {
		method, path string
		want         string // the pattern, or a prefix of it ending in "*"
	}{
		{"GET", "/v1/devices/abc/events", "/v1/devices/{id}/events*"},
		{"GET", "/v1/devices/abc/events/temp", "/v1/devices/{id}/events*"},
		{"GET", "/v1/devices/abc/events/temp/basement", "/v1/devices/{id}/events*"},
		{"GET", "/v1/devices/events", "/v1/devices/events*"},
		{"GET", "/v1/devices/events/temp", "/v1/devices/events*"},
		{"GET", "/v1/products/widget/devices/abc/events", "/v1/products/{p}/devices/{id}/events*"},
		{"GET", "/v1/devices/abc/temp", "/v1/devices/{id}/{name}"},
		{"GET", "/v1/devices/abc/ping", "/v1/devices/{id}/{name}"}, // only PUT .../ping is literal
		{"PUT", "/v1/devices/abc/ping", "/v1/devices/{id}/ping"},
		{"POST", "/v1/devices/abc/ping", "/v1/devices/{id}/{name}"},
		{"POST", "/v1/devices/abc/led", "/v1/devices/{id}/{name}"},
		{"POST", "/v1/devices", "/v1/devices"},
		{"DELETE", "/v1/devices/abc", "/v1/devices/{id}"},
		{"DELETE", "/v1/products/widget/devices/abc/owner", "/v1/products/{p}/devices/{id}/owner"},
		{"GET", "/v1/products/widget/devices/abc/owner", "/v1/products/{p}/devices/{id}/{name}"},
		{"PUT", "/v1/products/widget/devices/abc/ping", "/v1/products/{p}/devices/{id}/ping"},
		{"POST", "/v1/products/widget/device_claims", "/v1/products/{p}/device_claims"},
		{"POST", "/v1/device_claims", "/v1/device_claims"},
	}
	for _, tt := range tests {
		got, vals, _ := r.lookup(tt.method, tt.path)
		pattern := ""
		if got != nil {
			pattern = got.pattern
		}
		ok := pattern == tt.want
		if p, isPrefix := strings.CutSuffix(tt.want, "*"); isPrefix {
			ok = strings.HasPrefix(pattern, p)
		}
		if !ok {
			t.Errorf("%s %s = %q %v, want %q", tt.method, tt.path, pattern, vals, tt.want)
		}
	}
}

// TestFunctionArgLimit checks the argument limits of
// the table in docs/particle-api.md#function-and-variable-limits.
func TestFunctionArgLimit(t *testing.T) {
	tests := []struct {
		version  string
		module   int
		platform int
		want     int
	}{
		{"", 0, 12, 1024},         // nothing known
		{"", 207, 6, 63},          // 0.7.0 from the module number
		{"0.6.4", 0, 6, 63},       // described
		{"0.8.0-rc.1", 0, 6, 622}, // pre-release of 0.8.0
		{"1.5.2", 0, 12, 622},
		{"2.3.1", 0, 10, 622},
		{"3.3.1", 0, 6, 864},   // Gen 2
		{"3.3.1", 0, 12, 1024}, // Gen 3
		{"5.8.0", 0, 32, 1024},
		{"6.3.0", 0, 13, 1024},
		{"", 6200, 12, 1024},
		{"garbage", 0, 12, 1024},
		{"4", 0, 12, 1024},
	}
	for _, tt := range tests {
		d := &store.Device{SystemVersion: tt.version, SystemModuleVersion: tt.module, PlatformID: tt.platform}
		if got := functionArgLimit(d); got != tt.want {
			t.Errorf("%q/%d on platform %d: %d, want %d", tt.version, tt.module, tt.platform, got, tt.want)
		}
	}
	if protocol.MaxFunctionArgLen != 1024 {
		t.Errorf("protocol limit %d", protocol.MaxFunctionArgLen)
	}
}

// TestRawValue checks the text/plain forms of variable values.
func TestRawValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{int32(-7), "-7"}, {21.5, "21.5"}, {1e21, "1e+21"}, {true, "true"}, {false, "false"},
		{"a b", "a b"}, {"", ""}, {nil, ""}, {math.Inf(1), "+Inf"},
	}
	for _, tt := range tests {
		if got := rawValue(tt.in); got != tt.want {
			t.Errorf("rawValue(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDeviceCallError checks the mapping of DeviceCaller errors, wrapped
// as the gateway wraps them.
func TestDeviceCallError(t *testing.T) {
	notFound := errorf(404, "Function x not found")
	refused := errorf(400, "Function argument too long")
	other := errors.New("boom")
	tests := []struct {
		err  error
		want error
	}{
		{fmt.Errorf("gateway: device d: %w", bus.ErrDeviceOffline), errDeviceOffline},
		{fmt.Errorf("gateway: device d: %w", bus.ErrTimeout), errDeviceTimeout},
		{fmt.Errorf("gateway: x: %w", bus.ErrNoSuchName), notFound},
		{other, other},
	}
	for _, tt := range tests {
		if got := deviceCallError(tt.err, notFound, refused); got != tt.want {
			t.Errorf("%v → %v, want %v", tt.err, got, tt.want)
		}
	}
	got := deviceCallError(fmt.Errorf("gateway: %w", bus.ErrRefused), notFound, refused)
	var e *Error
	if !errors.As(got, &e) || e.Status != 400 || e.Message != refused.Message || !errors.Is(got, bus.ErrRefused) {
		t.Errorf("refused → %#v", got)
	}
	if refused.Cause != nil {
		t.Error("the shared error value was modified")
	}
}

// TestCheckDeviceName checks the rules for new device names.
func TestCheckDeviceName(t *testing.T) {
	for name, ok := range map[string]bool{
		"lamp": true, "Desk_Lamp-2": true, strings.Repeat("a", 63): true,
		"": false, strings.Repeat("a", 64): false, "my lamp": false, "a/b": false, "läm": false,
		"0123456789abcdef01234567": false, "EVENTS": false, "events2": true, "%20": false,
	} {
		if err := checkDeviceName(name); (err == nil) != ok {
			t.Errorf("checkDeviceName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// FuzzImportIdentifiers checks that any uploaded file splits into trimmed,
// non-empty identifiers without separators.
func FuzzImportIdentifiers(f *testing.F) {
	for _, seed := range []string{"", "\n\n", "a\r\nb\n", " 0123456789abcdef01234567 ,x\n", "a;b\tc d", "\xff\n\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, id := range appendIdentifiers(nil, text) {
			if id == "" || strings.TrimSpace(id) != id || strings.ContainsAny(id, "\n,;\t ") {
				t.Fatalf("identifier %q from %q", id, text)
			}
		}
	})
}

// stubCaller is a non-nil DeviceCaller whose methods are never called.
type stubCaller struct{ DeviceCaller }

// TestReachable checks which devices a call is tried on: online ones, and
// offline Gen 3 devices heard recently enough to be up on a session saved
// before a gateway restart; never with no DeviceCaller.
func TestReachable(t *testing.T) {
	now := time.Now()
	recent, old := now.Add(-time.Minute), now.Add(-2*savedSessionWindow)
	tests := []struct {
		name   string
		caller bool
		d      store.Device
		want   bool
	}{
		{"online", true, store.Device{Online: true, KeyAlgorithm: store.KeyRSA}, true},
		{"online, no caller", false, store.Device{Online: true}, false},
		{"offline Gen 2", true, store.Device{KeyAlgorithm: store.KeyRSA, LastHeard: &recent}, false},
		{"offline Gen 3 heard recently", true, store.Device{KeyAlgorithm: store.KeyECC, LastHeard: &recent}, true},
		{"offline Gen 3 heard long ago", true, store.Device{KeyAlgorithm: store.KeyECC, LastHeard: &old}, false},
		{"offline Gen 3 never heard", true, store.Device{KeyAlgorithm: store.KeyECC}, false},
		{"offline Gen 3, no caller", false, store.Device{KeyAlgorithm: store.KeyECC, LastHeard: &recent}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{}
			if tt.caller {
				s.devices = stubCaller{}
			}
			if got := s.reachable(&tt.d); got != tt.want {
				t.Errorf("reachable = %v, want %v", got, tt.want)
			}
		})
	}
}
