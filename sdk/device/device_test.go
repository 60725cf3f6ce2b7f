package device_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

// Keys are generated once per test binary: RSA-2048 takes a while.
var (
	keysOnce   sync.Once
	serverKey  *rsa.PrivateKey
	deviceKeys []*rsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, []*rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if serverKey, err = protocol.GenerateServerKey(nil); err != nil {
			panic(err)
		}
		for range 4 {
			k, err := protocol.GenerateDeviceKey(nil)
			if err != nil {
				panic(err)
			}
			deviceKeys = append(deviceKeys, k)
		}
	})
	return serverKey, deviceKeys
}

func newServer(t *testing.T) *devicetest.Server {
	t.Helper()
	sk, _ := testKeys(t)
	srv, err := devicetest.NewServer(sk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

const testID = "0123456789abcdef01234567"

// newDevice registers a device key with srv and returns a Device for it;
// edit adjusts the config.
func newDevice(t *testing.T, srv *devicetest.Server, edit func(*device.Config)) *device.Device {
	t.Helper()
	_, dks := testKeys(t)
	cfg := device.Config{
		ID: testID, PrivateKey: dks[0], ServerAddr: srv.Addr, ServerKey: srv.PublicKey,
		PlatformID: device.PlatformPhoton,
		Backoff:    device.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := srv.AddDevice(cfg.ID, &dks[0].PublicKey); err != nil {
		t.Fatal(err)
	}
	d, err := device.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs d until the test ends and returns a function that stops it
// and returns Run's error.
func start(t *testing.T, d *device.Device) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = errors.New("Run did not return within 5 s of cancellation")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, srv *devicetest.Server, d *device.Device) *devicetest.Conn {
	t.Helper()
	start(t, d)
	c, err := srv.WaitConn(testContext(t), d.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, d, device.Online)
	return c
}

func waitState(t *testing.T, d *device.Device, want device.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for d.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %s; want %s", d.State(), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConnectHello(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var states []device.State
	d := newDevice(t, srv, func(c *device.Config) {
		c.ProductVersion = 7
		c.OnState = func(s device.State, err error) {
			mu.Lock()
			states = append(states, s)
			mu.Unlock()
		}
	})
	c := connect(t, srv, d)
	h := c.Hello()
	want := protocol.Hello{ProductID: device.PlatformPhoton, ProductVersion: 7, Flags: protocol.HelloGoodbye,
		PlatformID: device.PlatformPhoton, SystemVersion: device.DefaultSystemVersion,
		MaxMessageSize: device.DefaultMaxMessageSize, MaxBinarySize: 131072, OTAChunkSize: 512}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("hello %+v; want %+v", h, want)
	}
	// docs/particle-protocol.md#message-ids-and-tokens ✔: the first message ID
	// is LE16(salt[0:2]) + 1.
	if got, want := c.HelloMessageID(), protocol.DeviceMessageIDSeed(c.Keys.Salt)+1; got != want {
		t.Errorf("hello message id %#04x; want %#04x", got, want)
	}
	mu.Lock()
	got := fmt.Sprint(states)
	mu.Unlock()
	if got != "[connecting online]" {
		t.Errorf("states %s; want [connecting online]", got)
	}
}

func TestAfterOnline(t *testing.T) {
	srv := newServer(t)
	serverNow := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	srv.Now = func() time.Time { return serverNow }
	d := newDevice(t, srv, func(c *device.Config) { c.DeviceDescribe = true })
	if err := d.Function("led", func(context.Context, string) int32 { return 1 }); err != nil {
		t.Fatal(err)
	}
	d.Variable("temp", func() float64 { return 21.5 })
	d.Variable("on", func() bool { return true })
	if err := d.Subscribe("sensor", func(string, string) {}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv, d)
	ctx := testContext(t)

	if h := c.Hello(); h.Flags != protocol.HelloGoodbye|protocol.HelloDeviceDescribe {
		t.Errorf("hello flags %#x; want goodbye|device-describe", h.Flags)
	}
	for _, p := range []string{"spark", "particle", "sensor"} {
		s, err := c.WaitSubscription(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !s.MyDevices {
			t.Errorf("subscription %q without the my-devices scope", p)
		}
	}
	for name, data := range map[string]string{"particle/device/updates/enabled": "true", "particle/device/updates/forced": "false"} {
		e, err := c.WaitEvent(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Data) != data || !e.Private {
			t.Errorf("%s = %q private=%v; want %q private", name, e.Data, e.Private, data)
		}
	}
	sys, err := c.WaitDescribePost(ctx, protocol.DescribeSystem)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := protocol.ParseDescription(protocol.DescribeSystem, sys)
	if err != nil || desc.System == nil {
		t.Fatalf("system describe %s: %v", sys, err)
	}
	if desc.System.Platform != device.PlatformPhoton || len(desc.System.Modules) != 3 {
		t.Errorf("system describe %s", sys)
	}
	if u, ok := desc.System.UserModule(); !ok || len(u.Hash) != 64 {
		t.Errorf("user module %+v without app hash", u)
	}
	app, err := c.WaitDescribePost(ctx, protocol.DescribeApplication)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":["led"],"v":{"temp":9,"on":1}}`; string(app) != want {
		t.Errorf("application describe %s; want %s", app, want)
	}
	// Time: the device asked once and adopted the server's clock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if now, ok := d.Time(); ok {
			if diff := now.Sub(serverNow); diff < -2*time.Second || diff > 2*time.Second {
				t.Errorf("device time %s; want about %s", now, serverNow)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no time reply adopted")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := c.TimeRequests(); n != 1 {
		t.Errorf("%d time requests; want 1", n)
	}
}

func TestDescribeRequests(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	d.Function("led", func(context.Context, string) int32 { return 0 })
	d.Variable("count", func() int { return 3 })
	c := connect(t, srv, d)
	ctx := testContext(t)

	tests := []struct {
		flags   protocol.DescribeFlags
		wantSys bool
		wantApp bool
		wantErr protocol.Code
	}{
		{flags: protocol.DescribeSystem, wantSys: true},
		{flags: protocol.DescribeApplication, wantApp: true},
		{flags: protocol.DescribeSystem | protocol.DescribeApplication, wantSys: true, wantApp: true},
		{flags: protocol.DescribeMetrics, wantErr: protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.flags.String(), func(t *testing.T) {
			p, err := c.Describe(ctx, tt.flags)
			if tt.wantErr != 0 {
				var re *devicetest.ResponseError
				if !errors.As(err, &re) || re.Code != tt.wantErr {
					t.Fatalf("err %v; want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			desc, err := protocol.ParseDescription(tt.flags, p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if (desc.System != nil) != tt.wantSys || (desc.App != nil) != tt.wantApp {
				t.Fatalf("describe %s: system %v app %v", p, desc.System != nil, desc.App != nil)
			}
			if tt.wantApp {
				if typ, ok := desc.App.VariableType("count"); !ok || typ != protocol.VariableInt32 || len(desc.App.Functions) != 1 {
					t.Errorf("app describe %s", p)
				}
			}
		})
	}
}

// manyFunctions registers enough functions that the describe needs blocks.
func manyFunctions(t *testing.T, d *device.Device, n int) {
	for i := range n {
		if err := d.Function(fmt.Sprintf("function_with_a_long_name_%03d", i), func(context.Context, string) int32 { return 0 }); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDescribeBlockwise(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, func(c *device.Config) { c.DeviceDescribe = true })
	manyFunctions(t, d, 60) // ≈ 2 KB of JSON: 4-5 blocks of 512
	c := connect(t, srv, d)
	ctx := testContext(t)
	check := func(how string, p []byte) {
		t.Helper()
		desc, err := protocol.ParseDescription(protocol.DescribeApplication, p)
		if err != nil || desc.App == nil || len(desc.App.Functions) != 60 {
			t.Fatalf("%s: describe of %d bytes: %v", how, len(p), err)
		}
	}
	p, err := c.WaitDescribePost(ctx, protocol.DescribeApplication)
	if err != nil {
		t.Fatal(err)
	}
	check("Block1 post", p)
	p, err = c.Describe(ctx, protocol.DescribeApplication)
	if err != nil {
		t.Fatal(err)
	}
	check("Block2 response", p)
}

func TestFunctionCall(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	var on atomic.Bool
	d.Function("led", func(_ context.Context, arg string) int32 {
		switch arg {
		case "on":
			on.Store(true)
			return 1
		case "off":
			on.Store(false)
			return 0
		}
		return -1
	})
	// A handler may publish with an ACK: handlers do not block the reader.
	d.Function("echo", func(ctx context.Context, arg string) int32 {
		if err := d.Publish(ctx, "echo", arg, device.PublishOptions{WithAck: true}); err != nil {
			return -2
		}
		return int32(len(arg))
	})
	c := connect(t, srv, d)
	ctx := testContext(t)
	tests := []struct {
		name, arg string
		want      int32
		wantOn    bool
	}{
		{"led", "on", 1, true},
		{"led", "off", 0, false},
		{"led", "blink", -1, false},
		{"led", "", -1, false},
		{"echo", "hello", 5, false},
	}
	for _, tt := range tests {
		got, err := c.Call(ctx, tt.name, tt.arg)
		if err != nil {
			t.Fatalf("%s(%q): %v", tt.name, tt.arg, err)
		}
		if got != tt.want || on.Load() != tt.wantOn {
			t.Errorf("%s(%q) = %d, on=%v; want %d, on=%v", tt.name, tt.arg, got, on.Load(), tt.want, tt.wantOn)
		}
	}
	if e, err := c.WaitEvent(ctx, "echo"); err != nil || string(e.Data) != "hello" {
		t.Errorf("echo event %+v, %v", e, err)
	}
	// Over-long argument: ACK 4.00 (docs/particle-protocol.md#functions).
	_, err := c.Call(ctx, "led", strings.Repeat("x", protocol.MaxFunctionArgLen+1))
	var re *devicetest.ResponseError
	if !errors.As(err, &re) || re.Code != protocol.CodeBadRequest {
		t.Errorf("long argument: %v; want 4.00", err)
	}
	// Unknown function: ACKed but never answered, like Device OS.
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := c.Call(short, "nope", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unknown function: %v; want no answer", err)
	}
}

func TestVariables(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	vars := []struct {
		name   string
		getter any
		typ    protocol.VariableType
		want   any
	}{
		{"flag", func() bool { return true }, protocol.VariableBool, true},
		{"i32", func() int32 { return -42 }, protocol.VariableInt32, int32(-42)},
		{"int", func() int { return 4095 }, protocol.VariableInt32, int32(4095)},
		{"temp", func() float64 { return 21.5 }, protocol.VariableDouble, 21.5},
		{"label", func() string { return "tank level" }, protocol.VariableString, "tank level"},
	}
	for _, v := range vars {
		if err := d.Variable(v.name, v.getter); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Variable("bad", func() uint8 { return 1 }); !errors.Is(err, device.ErrVariableGetter) {
		t.Errorf("uint8 getter: %v; want ErrVariableGetter", err)
	}
	c := connect(t, srv, d)
	ctx := testContext(t)
	for _, v := range vars {
		got, err := c.Get(ctx, v.name, v.typ)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if got != v.want {
			t.Errorf("%s = %#v; want %#v", v.name, got, v.want)
		}
	}
	// docs/particle-protocol.md#variables ✔: a double is little-endian, 21.5 =
	// 00 00 00 00 00 80 35 40.
	raw, err := c.Variable(ctx, "temp")
	if err != nil || fmt.Sprintf("% x", raw) != "00 00 00 00 00 80 35 40" {
		t.Errorf("temp raw % x, %v", raw, err)
	}
	_, err = c.Variable(ctx, "missing")
	var re *devicetest.ResponseError
	if !errors.As(err, &re) || re.Code != protocol.CodeNotFound {
		t.Errorf("unknown variable: %v; want 4.04", err)
	}
}

func TestPublish(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	ctx := testContext(t)
	if err := d.Publish(ctx, "early", "x", device.PublishOptions{}); !errors.Is(err, device.ErrOffline) {
		t.Errorf("publish before connecting: %v; want ErrOffline", err)
	}
	c := connect(t, srv, d)
	tests := []struct {
		name, data  string
		opts        device.PublishOptions
		wantPrivate bool
		wantTTL     uint32
	}{
		{"sensorValueEvent", "2048", device.PublishOptions{}, true, 60},
		{"public/one", "p", device.PublishOptions{Public: true, TTL: 5 * time.Minute}, false, 300},
		{"acked", "", device.PublishOptions{WithAck: true}, true, 60},
	}
	for _, tt := range tests {
		if err := d.Publish(ctx, tt.name, tt.data, tt.opts); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		e, err := c.WaitEvent(ctx, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Data) != tt.data || e.Private != tt.wantPrivate || e.TTL != tt.wantTTL {
			t.Errorf("%s: got %q private=%v ttl=%d", tt.name, e.Data, e.Private, e.TTL)
		}
	}
	for _, bad := range []struct{ name, data string }{
		{"", "x"}, {strings.Repeat("n", 65), "x"}, {"big", strings.Repeat("d", 1025)},
	} {
		if err := d.Publish(ctx, bad.name, bad.data, device.PublishOptions{}); err == nil {
			t.Errorf("publish %q with %d bytes: no error", bad.name, len(bad.data))
		}
	}
}

func TestSubscribeReceive(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	got := make(chan string, 10)
	d.Subscribe("alarm", func(name, data string) { got <- "alarm:" + name + "=" + data })
	c := connect(t, srv, d)
	ctx := testContext(t)
	if _, err := c.WaitSubscription(ctx, "alarm"); err != nil {
		t.Fatal(err)
	}
	// Subscribing while online sends the subscription at once.
	d.Subscribe("tank", func(name, data string) { got <- "tank:" + name + "=" + data })
	if _, err := c.WaitSubscription(ctx, "tank"); err != nil {
		t.Fatal(err)
	}
	for _, e := range [][2]string{{"other", "1"}, {"alarm/fire", "on"}, {"tank/level", "99"}} {
		if err := c.SendEvent(e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alarm:alarm/fire=on", "tank:tank/level=99"}
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Errorf("handler got %q; want %q", g, w)
			}
		case <-ctx.Done():
			t.Fatalf("no event %q", w)
		}
	}
	select {
	case g := <-got:
		t.Errorf("unexpected delivery %q", g)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestClaimCode(t *testing.T) {
	srv := newServer(t)
	code := strings.Repeat("c", protocol.MaxClaimCodeLen)
	d := newDevice(t, srv, func(c *device.Config) { c.ClaimCode = code })
	c := connect(t, srv, d)
	ctx := testContext(t)
	e, err := c.WaitEvent(ctx, protocol.ClaimCodeEventName)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Data) != code || !e.Private {
		t.Errorf("claim event %q private=%v", e.Data, e.Private)
	}
	if err := c.SendEvent(protocol.ClaimClearEventName, ""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); d.ClaimCode() != ""; {
		if time.Now().After(deadline) {
			t.Fatal("claim code kept after spark/device/claim/clear")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// After a reconnection the code is no longer reported.
	c.Close()
	c2, err := waitNewConn(ctx, srv, d.ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.WaitEvent(ctx, "particle/device/updates/forced"); err != nil {
		t.Fatal(err)
	}
	for _, e := range c2.Events() {
		if e.Name == protocol.ClaimCodeEventName {
			t.Error("claim code reported again after the claim")
		}
	}
	if _, err := device.New(device.Config{ID: testID, PrivateKey: deviceKeys[0], ServerAddr: "x:1",
		ServerKey: srv.PublicKey, ClaimCode: code + "c"}); !errors.Is(err, device.ErrConfig) {
		t.Errorf("64-character claim code: %v; want ErrConfig", err)
	}
}

// waitNewConn waits for a connection of id other than old.
func waitNewConn(ctx context.Context, srv *devicetest.Server, id string, old *devicetest.Conn) (*devicetest.Conn, error) {
	for {
		c, err := srv.WaitConn(ctx, id)
		if err != nil {
			return nil, err
		}
		if c != old {
			return c, nil
		}
		select {
		case <-old.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func TestReconnectAfterServerDrop(t *testing.T) {
	srv := newServer(t)
	var offline atomic.Int32
	d := newDevice(t, srv, func(c *device.Config) {
		c.OnState = func(s device.State, err error) {
			if s == device.Offline && err != nil {
				offline.Add(1)
			}
		}
	})
	d.Variable("count", func() int32 { return 7 })
	c := connect(t, srv, d)
	ctx := testContext(t)
	for i := range 2 {
		c.Close()
		var err error
		if c, err = waitNewConn(ctx, srv, d.ID(), c); err != nil {
			t.Fatalf("reconnect %d: %v", i+1, err)
		}
		if v, err := c.Get(ctx, "count", protocol.VariableInt32); err != nil || v != int32(7) {
			t.Fatalf("after reconnect %d: count = %v, %v", i+1, v, err)
		}
	}
	if n := srv.Handshakes(); n != 3 {
		t.Errorf("%d handshakes; want 3", n)
	}
	if n := offline.Load(); n != 2 {
		t.Errorf("%d offline transitions with an error; want 2", n)
	}
}

func TestPing(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, func(c *device.Config) { c.KeepAlive = 80 * time.Millisecond })
	c := connect(t, srv, d)
	ctx := testContext(t)
	if err := c.WaitPings(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if d.State() != device.Online || srv.Handshakes() != 1 {
		t.Errorf("state %s after answered pings, %d handshakes", d.State(), srv.Handshakes())
	}
	// The server may ping the device too.
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPingTimeout(t *testing.T) {
	srv := newServer(t)
	srv.IgnorePings = true
	errs := make(chan error, 10)
	d := newDevice(t, srv, func(c *device.Config) {
		c.KeepAlive, c.PingTimeout = 50*time.Millisecond, 50*time.Millisecond
		c.OnState = func(s device.State, err error) {
			if err != nil {
				errs <- err
			}
		}
	})
	connect(t, srv, d)
	select {
	case err := <-errs:
		if !errors.Is(err, device.ErrPingTimeout) {
			t.Errorf("disconnect error %v; want ErrPingTimeout", err)
		}
	case <-testContext(t).Done():
		t.Fatal("no disconnect after unanswered pings")
	}
}

func TestHelloTimeout(t *testing.T) {
	srv := newServer(t)
	srv.NoHello = true
	errs := make(chan error, 10)
	d := newDevice(t, srv, func(c *device.Config) {
		c.HelloTimeout = 100 * time.Millisecond
		c.OnState = func(s device.State, err error) {
			if s == device.Online {
				errs <- errors.New("online without a server hello")
			}
			if err != nil {
				errs <- err
			}
		}
	})
	start(t, d)
	select {
	case err := <-errs:
		if !errors.Is(err, device.ErrHelloTimeout) {
			t.Errorf("error %v; want ErrHelloTimeout", err)
		}
	case <-testContext(t).Done():
		t.Fatal("device waited for the server hello forever")
	}
}

func TestCancelSendsGoodbye(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	stop := start(t, d)
	c, err := srv.WaitConn(testContext(t), d.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, d, device.Online)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v; want context.Canceled", err)
	}
	if d.State() != device.Offline {
		t.Errorf("state %s after Run; want offline", d.State())
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after Run returned")
	}
	g, ok := c.Goodbye()
	if !ok || g.CloudReason != 2 {
		t.Errorf("goodbye %+v, %v; want cloud reason 2 (user)", g, ok)
	}
	if err := d.Publish(context.Background(), "x", "", device.PublishOptions{}); !errors.Is(err, device.ErrOffline) {
		t.Errorf("publish after Run: %v; want ErrOffline", err)
	}
}

func TestCancelWhileUnreachable(t *testing.T) {
	srv := newServer(t)
	srv.Close() // nothing listens: every attempt fails
	d := newDevice(t, srv, nil)
	stop := start(t, d)
	time.Sleep(50 * time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v; want context.Canceled", err)
	}
}

func TestRunTwice(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	connect(t, srv, d)
	if err := d.Run(context.Background()); !errors.Is(err, device.ErrRunning) {
		t.Errorf("second Run: %v; want ErrRunning", err)
	}
}

func TestSignal(t *testing.T) {
	srv := newServer(t)
	signals := make(chan bool, 4)
	d := newDevice(t, srv, func(c *device.Config) { c.OnSignal = func(on bool) { signals <- on } })
	c := connect(t, srv, d)
	ctx := testContext(t)
	for _, on := range []bool{true, false} {
		if err := c.Signal(ctx, on); err != nil {
			t.Fatal(err)
		}
		if got := <-signals; got != on || d.Signaling() != on {
			t.Errorf("signal %v: callback %v, Signaling %v", on, got, d.Signaling())
		}
	}
}

func TestWrongKeysNeverOnline(t *testing.T) {
	tests := []struct {
		name string
		edit func(*testing.T, *devicetest.Server, *device.Config)
	}{
		{"unpinned server key", func(t *testing.T, _ *devicetest.Server, c *device.Config) {
			_, dks := testKeys(t)
			c.ServerKey = &dks[1].PublicKey // RSA-1024: the wrong key entirely
		}},
		{"device key not on file", func(t *testing.T, srv *devicetest.Server, c *device.Config) {
			_, dks := testKeys(t)
			c.ID = "aaaaaaaaaaaaaaaaaaaaaaaa"
			srv.AddDevice(c.ID, &dks[2].PublicKey)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			failures := make(chan error, 100)
			_, dks := testKeys(t)
			cfg := device.Config{ID: testID, PrivateKey: dks[0], ServerAddr: srv.Addr, ServerKey: srv.PublicKey,
				Backoff: device.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond},
				OnState: func(s device.State, err error) {
					if s == device.Online {
						failures <- errors.New("online")
					} else if err != nil {
						failures <- err
					}
				}}
			srv.AddDevice(testID, &dks[0].PublicKey)
			tt.edit(t, srv, &cfg)
			d, err := device.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start(t, d)
			for i := range 2 { // it keeps retrying
				select {
				case err := <-failures:
					if err.Error() == "online" {
						t.Fatal("device came online")
					}
				case <-testContext(t).Done():
					t.Fatalf("attempt %d did not fail", i+1)
				}
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	sk, dks := testKeys(t)
	good := device.Config{ID: testID, PrivateKey: dks[0], ServerAddr: "127.0.0.1:5683", ServerKey: &sk.PublicKey}
	tests := []struct {
		name string
		edit func(*device.Config)
		ok   bool
	}{
		{"valid", func(*device.Config) {}, true},
		{"upper-case id", func(c *device.Config) { c.ID = strings.ToUpper(testID) }, true},
		{"host without port", func(c *device.Config) { c.ServerAddr = "cloud.example.com" }, true},
		{"DER key", func(c *device.Config) {
			c.PrivateKey = nil
			c.PrivateKeyDER, _ = protocol.MarshalPrivateKeyDER(dks[0])
		}, true},
		{"short id", func(c *device.Config) { c.ID = "0123" }, false},
		{"non-hex id", func(c *device.Config) { c.ID = strings.Repeat("z", 24) }, false},
		{"no key", func(c *device.Config) { c.PrivateKey = nil }, false},
		{"bad DER key", func(c *device.Config) { c.PrivateKey, c.PrivateKeyDER = nil, []byte{1, 2, 3} }, false},
		{"no server key", func(c *device.Config) { c.ServerKey = nil }, false},
		{"no server", func(c *device.Config) { c.ServerAddr = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := device.New(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v; want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, device.ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}
}

func TestPrivateKeyDER(t *testing.T) {
	srv := newServer(t)
	_, dks := testKeys(t)
	der, _ := protocol.MarshalPrivateKeyDER(dks[0])
	d := newDevice(t, srv, func(c *device.Config) { c.PrivateKey, c.PrivateKeyDER = nil, der })
	c := connect(t, srv, d)
	if err := c.Ping(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

func TestNames(t *testing.T) {
	srv := newServer(t)
	d := newDevice(t, srv, nil)
	long := strings.Repeat("n", 65)
	fn := func(context.Context, string) int32 { return 0 }
	for _, err := range []error{
		d.Function("", fn), d.Function(long, fn),
		d.Variable(long, func() int { return 0 }),
		d.Subscribe("", func(string, string) {}),
	} {
		if !errors.Is(err, device.ErrName) {
			t.Errorf("got %v; want ErrName", err)
		}
	}
	if err := d.Function(strings.Repeat("n", 64), fn); err != nil {
		t.Errorf("64-byte name: %v", err)
	}
}
