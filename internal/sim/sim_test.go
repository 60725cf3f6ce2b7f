package sim

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

func TestDeviceID(t *testing.T) {
	tests := []struct {
		prefix string
		n      int
		want   string
		bad    bool
	}{
		{"51", 1, "510000000000000000000001", false},
		{"", 0, "000000000000000000000000", false},
		{"E00FCE68", 255, "e00fce6800000000000000ff", false},
		{"abc", 0xfff, "abc000000000000000000fff", false},
		{"0123456789abcdef0123456", 15, "0123456789abcdef0123456f", false},
		{"0123456789abcdef0123456", 16, "", true}, // does not fit in one digit
		{"0123456789abcdef01234567", 0, "", true}, // no room for a counter
		{"xyz", 1, "", true},
		{"51", -1, "", true},
	}
	for _, tt := range tests {
		got, err := DeviceID(tt.prefix, tt.n)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("DeviceID(%q, %d) = %q, %v; want %q, error %v", tt.prefix, tt.n, got, err, tt.want, tt.bad)
		}
		if err == nil {
			if _, perr := protocol.ParseDeviceID(got); perr != nil {
				t.Errorf("DeviceID(%q, %d) = %q is not a device ID", tt.prefix, tt.n, got)
			}
		}
	}
}

func TestBehaviourLED(t *testing.T) {
	var calls atomic.Int64
	b := NewBehaviour("sim-7", &calls)
	tests := []struct {
		arg    string
		want   int32
		wantOn bool
	}{
		{"on", 1, true}, {"on", 1, true}, {"off", 0, false}, {"toggle", -1, false},
		{"on", 1, true}, {"ON", -1, true}, {"", -1, true}, {"off", 0, false},
	}
	for i, tt := range tests {
		if got := b.LED(context.Background(), tt.arg); got != tt.want {
			t.Errorf("led(%q) = %d; want %d", tt.arg, got, tt.want)
		}
		if b.On() != tt.wantOn {
			t.Errorf("after led(%q): on = %v; want %v", tt.arg, b.On(), tt.wantOn)
		}
		if b.Count() != int32(i+1) {
			t.Errorf("count = %d after %d calls", b.Count(), i+1)
		}
	}
	if calls.Load() != int64(len(tests)) {
		t.Errorf("shared call counter %d; want %d", calls.Load(), len(tests))
	}
	if b.Label() != "sim-7" || b.Temp() != 21.5 || b.Sensor() != 2048 {
		t.Errorf("initial label %q temp %v sensor %d", b.Label(), b.Temp(), b.Sensor())
	}
}

func TestBehaviourSensor(t *testing.T) {
	b := NewBehaviour("s", nil)
	seenLow, seenHigh := false, false
	for range 20000 {
		old := b.Sensor()
		v := b.Step()
		d := v - old
		if d < 0 {
			d = -d
		}
		if v < 0 || v > 4095 || d <= 5 || d > 64 {
			t.Fatalf("step %d -> %d", old, v)
		}
		if tmp := b.Temp(); tmp < 16.4 || tmp > 26.6 {
			t.Fatalf("temp %v at sensor %d", tmp, v)
		}
		seenLow = seenLow || v < 1000
		seenHigh = seenHigh || v > 3000
	}
	if !seenLow || !seenHigh {
		t.Errorf("the random walk did not move through the range (low %v high %v)", seenLow, seenHigh)
	}
	if got := SensorData(4095); got != "4095" {
		t.Errorf("SensorData(4095) = %q", got)
	}
}

// parse runs the flags of `wick sim` as cmd/wick does.
func parse(args []string, env map[string]string) (Config, error) {
	cfg := Default()
	fs := flag.NewFlagSet("wick sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Register(fs)
	rest, err := config.Parse(fs, args, func(k string) string { return env[k] })
	if err != nil {
		return cfg, err
	}
	if len(rest) > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return cfg, cfg.Validate()
}

func TestFlags(t *testing.T) {
	key := "--server-key=/k.pem"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", args: []string{key}, check: func(c Config) bool {
			return c.Server == "127.0.0.1:5683" && c.Count == 10 && c.Concurrency == 100 && c.Platform == 6 &&
				c.DeviceDescribe && c.IDPrefix == "51" && c.IDStart == 1 && c.API == "" && c.Duration == 0
		}},
		{name: "all flags", args: []string{"--server", "10.0.0.1:6000", "--api", "http://h:8080/", "--token", "t0k",
			"--count", "50000", "--id-prefix", "e00fce68", "--id-start", "100", "--claim-code", "abc",
			"--publish", "sensorValueEvent", "--every", "2s", "--server-key", "/s.der", "--keys-dir", "/tmp/k",
			"--concurrency", "500", "--duration", "1m", "--bind", "127.0.0.2,127.0.0.3", "--bind", "127.0.0.4",
			"--platform", "10", "--device-describe=false", "--keepalive", "20s", "--connect-timeout", "5s",
			"--progress", "0", "--log-level", "debug"},
			check: func(c Config) bool {
				return c.Server == "10.0.0.1:6000" && c.API == "http://h:8080" && c.Token == "t0k" && c.Count == 50000 &&
					c.IDPrefix == "e00fce68" && c.IDStart == 100 && c.ClaimCode == "abc" && c.Publish == "sensorValueEvent" &&
					c.Every == 2*time.Second && c.ServerKey == "/s.der" && c.KeysDir == "/tmp/k" && c.Concurrency == 500 &&
					c.Duration == time.Minute && reflect.DeepEqual(c.Bind, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}) &&
					c.Platform == 10 && !c.DeviceDescribe && c.KeepAlive == 20*time.Second &&
					c.ConnectTimeout == 5*time.Second && c.Progress == 0 && c.LogLevel == "debug"
			}},
		{name: "server key from data dir", args: []string{"--data", "/srv/wick"},
			check: func(c Config) bool { return c.ServerKey == filepath.Join("/srv/wick", "server_key.pub.pem") }},
		{name: "environment", args: []string{key}, env: map[string]string{"WICK_COUNT": "7", "WICK_TOKEN": "envtok", "WICK_API": "https://x"},
			check: func(c Config) bool { return c.Count == 7 && c.Token == "envtok" && c.API == "https://x" }},
		{name: "flag beats environment", args: []string{key, "--count", "3"}, env: map[string]string{"WICK_COUNT": "7"},
			check: func(c Config) bool { return c.Count == 3 }},
		{name: "publish time", args: []string{key, "--publish", "bench", "--every", "1s", "--publish-time"},
			check: func(c Config) bool { return c.PublishTime && c.Publish == "bench" }},
		{name: "publish time without publish", args: []string{key, "--publish-time"}, wantErr: "--publish-time"},
		{name: "no server key", args: nil, wantErr: "--server-key"},
		{name: "api without token", args: []string{key, "--api", "http://h"}, wantErr: "--token"},
		{name: "product", args: []string{key, "--api", "http://h", "--token", "t", "--product", "widget"},
			check: func(c Config) bool { return c.Product == "widget" }},
		{name: "product without api", args: []string{key, "--product", "widget"}, wantErr: "--product needs --api"},
		{name: "api not a URL", args: []string{key, "--api", "h:8080", "--token", "t"}, wantErr: "http(s) URL"},
		{name: "publish without every", args: []string{key, "--publish", "x"}, wantErr: "--every"},
		{name: "every without publish", args: []string{key, "--every", "1s"}, wantErr: "--publish"},
		{name: "zero count", args: []string{key, "--count", "0"}, wantErr: "--count"},
		{name: "zero concurrency", args: []string{key, "--concurrency", "0"}, wantErr: "--concurrency"},
		{name: "server without port", args: []string{key, "--server", "localhost"}, wantErr: "HOST:PORT"},
		{name: "bad prefix", args: []string{key, "--id-prefix", "zz"}, wantErr: "not hex"},
		{name: "too many for prefix", args: []string{key, "--id-prefix", "0123456789abcdef012345", "--count", "300"}, wantErr: "does not fit"},
		{name: "bad bind", args: []string{key, "--bind", "localhost"}, wantErr: "not an IP"},
		{name: "long claim code", args: []string{key, "--claim-code", strings.Repeat("c", 64)}, wantErr: "--claim-code"},
		{name: "bad log level", args: []string{key, "--log-level", "loud"}, wantErr: "--log-level"},
		{name: "unknown flag", args: []string{key, "--nope"}, wantErr: "not defined"},
		{name: "firmware quirks off by default", args: []string{key},
			check: func(c Config) bool { return c.Quirks == device.Quirks{} }},
		{name: "firmware quirks alone: all", args: []string{key, "--firmware-quirks"},
			check: func(c Config) bool { return c.Quirks == device.AllQuirks() }},
		{name: "firmware quirks list", args: []string{key, "--firmware-quirks=reply-ids,nagle"},
			check: func(c Config) bool { return c.Quirks == device.Quirks{ReplyIDs: true, Nagle: true} }},
		{name: "firmware quirks from the environment", args: []string{key}, env: map[string]string{"WICK_FIRMWARE_QUIRKS": "split-writes"},
			check: func(c Config) bool { return c.Quirks == device.Quirks{SplitWrites: true} }},
		{name: "firmware quirks false", args: []string{key, "--firmware-quirks=false"},
			check: func(c Config) bool { return c.Quirks == device.Quirks{} }},
		{name: "unknown firmware quirk", args: []string{key, "--firmware-quirks=slow"}, wantErr: "unknown quirk"},
		{name: "positional", args: []string{key, "extra"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

var (
	serverKeyOnce sync.Once
	testServerKey *rsa.PrivateKey
)

func serverKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	serverKeyOnce.Do(func() {
		var err error
		if testServerKey, err = protocol.GenerateServerKey(nil); err != nil {
			panic(err)
		}
	})
	return testServerKey
}

func TestLoadServerKey(t *testing.T) {
	k := serverKey(t)
	dir := t.TempDir()
	pemKey, _ := protocol.MarshalPublicKeyPEM(&k.PublicKey)
	der, _ := protocol.MarshalPublicKeyDER(&k.PublicKey)
	blob, err := protocol.EncodeServerKeyBlob(protocol.TransportTCP, der, "127.0.0.1", 5683)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"key.pem": pemKey, "key.der": der, "blob.der": blob, "junk": []byte("junk")} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		got, err := LoadServerKey(path)
		if name == "junk" {
			if err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if err != nil || !got.Equal(&k.PublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadServerKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestDeviceKeyCache(t *testing.T) {
	dir := t.TempDir()
	const id = "510000000000000000000001"
	der1, gen1, err := deviceKey(dir, id)
	if err != nil || !gen1 {
		t.Fatalf("first: generated %v, %v", gen1, err)
	}
	info, err := os.Stat(filepath.Join(dir, id+".pem"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("saved key: %v, mode %v", err, info.Mode())
	}
	der2, gen2, err := deviceKey(dir, id)
	if err != nil || gen2 || !bytes.Equal(der1, der2) {
		t.Errorf("second: generated %v, same key %v, %v", gen2, bytes.Equal(der1, der2), err)
	}
	k, err := protocol.ParseRSAPrivateKey(der1)
	if err != nil || k.N.BitLen() != 1024 {
		t.Errorf("key: %v", err)
	}
	if _, gen, err := deviceKey("", id); err != nil || !gen {
		t.Errorf("without a dir: generated %v, %v", gen, err)
	}
}

// fakeAPI is an httptest API with the two endpoints the simulator calls;
// provisioning registers the key with the device server.
type fakeAPI struct {
	srv         *devicetest.Server
	claimStatus int
	refuse      string // device ID whose provisioning is refused
	// releaseStatus answers DELETE /v1/devices/{id}: 200, or 403 for a
	// device that is not the token owner's.
	releaseStatus int
	mu            sync.Mutex
	provisioned   []string
	products      []string // product_id of each provisioning, "" for none
	released      []string
	claims        []string
	tokens        []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("Authorization"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v1/provisioning/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/provisioning/")
		k, err := protocol.ParseRSAPublicKey([]byte(r.FormValue("publicKey")))
		if err != nil || r.FormValue("algorithm") != "rsa" || id == f.refuse {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"ok":false,"error":"Invalid public key"}`)
			return
		}
		f.srv.AddDevice(id, k)
		f.mu.Lock()
		f.provisioned = append(f.provisioned, id)
		f.products = append(f.products, r.FormValue("product_id"))
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "id": id})
	case r.Method == "POST" && r.URL.Path == "/v1/devices":
		f.mu.Lock()
		f.claims = append(f.claims, r.FormValue("id"))
		f.mu.Unlock()
		if f.claimStatus != http.StatusOK {
			w.WriteHeader(f.claimStatus)
			fmt.Fprint(w, `{"ok":false,"error":"Not Found"}`)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"id":%q}`, r.FormValue("id"))
	case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/v1/devices/"):
		f.mu.Lock()
		f.released = append(f.released, strings.TrimPrefix(r.URL.Path, "/v1/devices/"))
		status := f.releaseStatus
		f.mu.Unlock()
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"ok":false,"error":"Permission Denied","info":"I didn't recognize that device name or ID"}`)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"ok":false,"error":"Not Found"}`)
	}
}

// harness is a device server, a fake API and a config pointing at both.
type harness struct {
	srv *devicetest.Server
	api *fakeAPI
	cfg Config
}

func newHarness(t *testing.T, n int) *harness {
	t.Helper()
	srv, err := devicetest.NewServer(serverKey(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	api := &fakeAPI{srv: srv, claimStatus: http.StatusOK, releaseStatus: http.StatusOK}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	pemKey, _ := protocol.MarshalPublicKeyPEM(srv.PublicKey)
	os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pemKey, 0o644)
	cfg := Default()
	cfg.Server, cfg.API, cfg.Token, cfg.Count = srv.Addr, hs.URL, "sim-token", n
	cfg.Data, cfg.KeysDir = dir, filepath.Join(dir, "keys")
	cfg.Progress = 20 * time.Millisecond
	cfg.ConnectTimeout = 5 * time.Second
	return &harness{srv: srv, api: api, cfg: cfg}
}

// run starts the simulation and returns a function that stops it and
// returns its summary and progress output.
func (h *harness) run(t *testing.T) (stop func() (Summary, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var progress syncBuffer
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, h.cfg, nil, &progress)
		done <- result{sum, err}
	}()
	var once sync.Once
	var res result
	stop = func() (Summary, string) {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(20 * time.Second):
				res.err = errors.New("Run did not return")
			}
		})
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.sum, progress.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOnline waits until n devices are online on both sides: the device
// publishes the update flags only after the server's Hello.
func (h *harness) waitOnline(t *testing.T, n int) {
	t.Helper()
	ctx := testContext(t)
	if err := h.srv.WaitOnline(ctx, n); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.srv.Conns() {
		if _, err := c.WaitEvent(ctx, "particle/device/updates/forced"); err != nil {
			t.Fatal(err)
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunFiveDevices(t *testing.T) {
	h := newHarness(t, 5)
	h.cfg.Publish, h.cfg.Every = "sensorValueEvent", 30*time.Millisecond
	stop := h.run(t)
	ctx := testContext(t)
	h.waitOnline(t, 5)
	ids := make([]string, 5)
	for i := range ids {
		ids[i], _ = DeviceID("51", i+1)
	}
	c, err := h.srv.WaitConn(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	// The application: led and the four variables.
	if ret, err := c.Call(ctx, "led", "on"); err != nil || ret != 1 {
		t.Fatalf("led(on) = %d, %v", ret, err)
	}
	if ret, err := c.Call(ctx, "led", "blink"); err != nil || ret != -1 {
		t.Fatalf("led(blink) = %d, %v", ret, err)
	}
	for _, v := range []struct {
		name string
		typ  protocol.VariableType
		want any
	}{
		{"on", protocol.VariableBool, true},
		{"count", protocol.VariableInt32, int32(2)},
		{"label", protocol.VariableString, "sim-3"},
	} {
		got, err := c.Get(ctx, v.name, v.typ)
		if err != nil || got != v.want {
			t.Errorf("%s = %#v, %v; want %#v", v.name, got, err, v.want)
		}
	}
	temp, err := c.Get(ctx, "temp", protocol.VariableDouble)
	if tf, ok := temp.(float64); err != nil || !ok || tf < 16 || tf > 27 {
		t.Errorf("temp = %v, %v", temp, err)
	}
	// The describe lists exactly the simulator's application (the README's
	// Devices section: function led, variables temp, count, label, on).
	app, err := c.WaitDescribePost(ctx, protocol.DescribeApplication)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":["led"],"v":{"temp":9,"count":2,"label":4,"on":1}}`; string(app) != want {
		t.Errorf("describe %s; want %s", app, want)
	}
	// Sensor events: decimal readings 0-4095 from every device.
	for _, id := range ids {
		dc, err := h.srv.WaitConn(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		e, err := dc.WaitEvent(ctx, "sensorValueEvent")
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if _, err := fmt.Sscan(string(e.Data), &v); err != nil || v < 0 || v > 4095 {
			t.Errorf("%s published %q", id, e.Data)
		}
	}
	// Claims follow the devices coming online.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.api.mu.Lock()
		n := len(h.api.claims)
		h.api.mu.Unlock()
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d claims; want 5", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sum, progress := stop()
	if sum.Devices != 5 || sum.Connected != 5 || sum.Failed != 0 || sum.Online != 5 || sum.Handshakes != 5 ||
		sum.KeysGenerated != 5 || sum.Claimed != 5 || sum.ClaimFailed != 0 || sum.Calls != 2 || sum.Published < 5 {
		t.Errorf("summary %+v", sum)
	}
	if sum.HandshakesPerSecond() <= 0 {
		t.Errorf("handshake rate %v", sum.HandshakesPerSecond())
	}
	if !strings.Contains(progress, "sim: keys 5/5 (5 generated) (done)") ||
		!strings.Contains(progress, "sim: provisioned 5/5, 0 failed (done)") ||
		!strings.Contains(progress, "sim: connected 5/5, online 5, failed 0") {
		t.Errorf("progress output:\n%s", progress)
	}
	h.api.mu.Lock()
	defer h.api.mu.Unlock()
	if len(h.api.provisioned) != 5 {
		t.Errorf("provisioned %v", h.api.provisioned)
	}
	for _, tok := range h.api.tokens {
		if tok != "Bearer sim-token" {
			t.Fatalf("API called with Authorization %q", tok)
		}
	}
	var out bytes.Buffer
	sum.Write(&out)
	if !strings.Contains(out.String(), "connected     5") {
		t.Errorf("summary text:\n%s", out.String())
	}
	t.Logf("progress:\n%s\nsummary:\n%s", progress, out.String())
	// The devices said Goodbye when the run ended.
	<-c.Done()
	if _, ok := c.Goodbye(); !ok {
		t.Error("no Goodbye from a device at the end of the run")
	}
}

// TestRunReadyPublishTime checks the hooks `wick bench` uses: Ready comes
// once, after every device is online and claimed, with live counters, and
// PublishTime makes the event data the send time in Unix nanoseconds.
func TestRunReadyPublishTime(t *testing.T) {
	h := newHarness(t, 3)
	h.cfg.Publish, h.cfg.Every, h.cfg.PublishTime = "bench", 20*time.Millisecond, true
	ready := make(chan func() Summary, 2)
	h.cfg.Ready = func(stats func() Summary) { ready <- stats }
	before := time.Now().UnixNano()
	stop := h.run(t)
	ctx := testContext(t)
	var stats func() Summary
	select {
	case stats = <-ready:
	case <-ctx.Done():
		t.Fatal("Ready not called")
	}
	if sum := stats(); sum.Connected != 3 || sum.Claimed != 3 || sum.Failed != 0 {
		t.Fatalf("summary at Ready %+v; want 3 connected and claimed", sum)
	}
	h.waitOnline(t, 3)
	for _, c := range h.srv.Conns() {
		e, err := c.WaitEvent(ctx, "bench")
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(string(e.Data), 10, 64)
		if now := time.Now().UnixNano(); err != nil || ns < before || ns > now {
			t.Errorf("%s published %q; want a Unix time in ns between %d and %d", c.ID, e.Data, before, now)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); stats().Published < 6; {
		if time.Now().After(deadline) {
			t.Fatalf("published %d after Ready; the counters are not live", stats().Published)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if len(ready) != 0 {
		t.Error("Ready called more than once")
	}
}

func TestRunClaimCodeAndRerun(t *testing.T) {
	h := newHarness(t, 3)
	h.cfg.ClaimCode = "my-claim-code"
	h.cfg.IDPrefix, h.cfg.IDStart = "abcd", 40
	stop := h.run(t)
	ctx := testContext(t)
	h.waitOnline(t, 3)
	for _, c := range h.srv.Conns() {
		if !strings.HasPrefix(c.ID, "abcd") {
			t.Errorf("device %s", c.ID)
		}
		e, err := c.WaitEvent(ctx, protocol.ClaimCodeEventName)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Data) != "my-claim-code" {
			t.Errorf("%s reported claim code %q", c.ID, e.Data)
		}
	}
	sum, _ := stop()
	if sum.Connected != 3 || sum.Claimed+sum.ClaimFailed != 0 {
		t.Errorf("summary %+v; want 3 connected and no claim calls", sum)
	}
	// Provisioning through the token claimed them to its owner: each was
	// released again, so that the code decides the owner.
	h.api.mu.Lock()
	released := slices.Sorted(slices.Values(h.api.released))
	provisioned := slices.Sorted(slices.Values(h.api.provisioned))
	h.api.mu.Unlock()
	if !slices.Equal(released, provisioned) || len(released) != 3 {
		t.Errorf("released %v; want every provisioned device %v", released, provisioned)
	}
	// A rerun with the same keys directory generates no key.
	for len(h.srv.Conns()) > 0 {
		if ctx.Err() != nil {
			t.Fatal("connections of the first run still open")
		}
		time.Sleep(time.Millisecond)
	}
	stop = h.run(t)
	h.waitOnline(t, 3)
	sum, _ = stop()
	if sum.Connected != 3 || sum.KeysGenerated != 0 {
		t.Errorf("rerun summary %+v; want 3 connected, 0 keys generated", sum)
	}
}

// TestRunProduct: --product sends product_id with every provisioning.
// Without a claim code the devices are claimed to the token's owner and
// nothing is released; with one, each is released, and a device that was
// not the owner's (403) is no failure.
func TestRunProduct(t *testing.T) {
	tests := []struct {
		name          string
		claimCode     string
		releaseStatus int
		wantClaims    int
		wantReleases  int
	}{
		{"no claim code", "", http.StatusOK, 2, 0},
		{"claim code, devices unowned in the product", "code", http.StatusForbidden, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2)
			h.cfg.Product, h.cfg.ClaimCode = "widget", tt.claimCode
			h.api.releaseStatus = tt.releaseStatus
			stop := h.run(t)
			h.waitOnline(t, 2)
			ctx := testContext(t)
			for {
				h.api.mu.Lock()
				n := len(h.api.claims)
				h.api.mu.Unlock()
				if n >= tt.wantClaims {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("%d claims; want %d", n, tt.wantClaims)
				}
				time.Sleep(time.Millisecond)
			}
			sum, _ := stop()
			h.api.mu.Lock()
			defer h.api.mu.Unlock()
			if len(h.api.products) != 2 || h.api.products[0] != "widget" || h.api.products[1] != "widget" {
				t.Errorf("product_id of the provisionings %q; want widget twice", h.api.products)
			}
			if len(h.api.released) != tt.wantReleases || len(h.api.claims) != tt.wantClaims {
				t.Errorf("released %v, claims %v; want %d and %d", h.api.released, h.api.claims, tt.wantReleases, tt.wantClaims)
			}
			if sum.ProvisionFailed != 0 || sum.Connected != 2 {
				t.Errorf("summary %+v; want 2 connected, none refused", sum)
			}
		})
	}
}

func TestRunClaimRefused(t *testing.T) {
	h := newHarness(t, 2)
	h.api.claimStatus = http.StatusNotFound
	stop := h.run(t)
	h.waitOnline(t, 2)
	for deadline := time.Now().Add(10 * time.Second); ; {
		h.api.mu.Lock()
		n := len(h.api.claims)
		h.api.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("claims not attempted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the claim results be counted
	sum, _ := stop()
	if sum.ClaimFailed != 2 || sum.Claimed != 0 || sum.Connected != 2 || sum.Online != 2 || sum.Failed != 0 {
		t.Errorf("summary %+v; want 2 failed claims and both devices still online", sum)
	}
}

func TestRunFailures(t *testing.T) {
	t.Run("provisioning refused", func(t *testing.T) {
		h := newHarness(t, 3)
		h.api.refuse, _ = DeviceID("51", 2)
		stop := h.run(t)
		h.waitOnline(t, 2)
		sum, _ := stop()
		if sum.ProvisionFailed != 1 || sum.Connected != 2 || sum.Failed != 1 {
			t.Errorf("summary %+v", sum)
		}
	})
	t.Run("unknown keys", func(t *testing.T) {
		h := newHarness(t, 2)
		h.cfg.API, h.cfg.Token = "", "" // nothing provisions the keys: the server refuses
		h.cfg.Duration = time.Minute    // no device can come online: Run stops after the ramp-up
		sum, err := Run(context.Background(), h.cfg, nil, nil)
		if !errors.Is(err, ErrNoDeviceOnline) || !strings.Contains(err.Error(), "no key on file for the device") {
			t.Fatalf("Run = %v; want ErrNoDeviceOnline explaining the unknown keys", err)
		}
		if sum.Connected != 0 || sum.Failed != 2 || sum.ConnectErrors < 2 || h.srv.Refused() < 2 {
			t.Errorf("summary %+v, %d refused", sum, h.srv.Refused())
		}
	})
	t.Run("missing server key", func(t *testing.T) {
		h := newHarness(t, 1)
		h.cfg.Data = t.TempDir()
		if _, err := Run(context.Background(), h.cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "server key") {
			t.Errorf("error %v", err)
		}
	})
}
