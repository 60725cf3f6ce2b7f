// Package sim runs many virtual Particle devices in one process on the
// public device SDK (sdk/device): the engine of `wick sim`, a load and
// conformance driver for Wick's device gateway.
//
// A run has four phases, each reported on a progress line:
//
//  1. keys: every device gets an RSA-1024 key, read from Config.KeysDir or
//     generated on all cores (≈10 ms of CPU each) and saved there;
//  2. provisioning (with Config.API): each public key is registered through
//     POST /v1/provisioning/{id}, Config.Concurrency at a time, into
//     Config.Product if set; with Config.ClaimCode the device is left
//     without an owner, for the code to claim;
//  3. ramp-up: devices connect, Config.Concurrency handshakes at a time; a
//     device counts as connected once the server answered its Hello, as
//     failed if its first attempt fails (it keeps retrying with backoff
//     and counts as connected if it gets there later);
//  4. steady state until the context ends or Config.Duration passes:
//     devices publish (Config.Publish), answer calls, reconnect when
//     dropped. Then every device says Goodbye and disconnects.
//
// Every device runs Behaviour: the function led and the variables temp,
// count, label and on.
package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/sdk/device"
)

// Summary is the outcome of a run.
type Summary struct {
	Devices         int           // devices configured
	KeysGenerated   int           // keys generated (the rest were read from KeysDir)
	ProvisionFailed int           // devices whose key the API refused
	Connected       int           // devices online at least once
	Failed          int           // devices never online: Devices - Connected
	Online          int           // devices online when the run ended
	Handshakes      int64         // connections that reached online, reconnections included
	Resumptions     int64         // of those, resumed DTLS sessions (no handshake)
	ConnectErrors   int64         // connection attempts that failed
	Disconnects     int64         // online connections that were lost
	RampTime        time.Duration // from the first connection attempt to the last first connection
	Published       int64         // events published
	PublishFailed   int64
	Claimed         int64 // devices claimed through POST /v1/devices
	ClaimFailed     int64
	Calls           int64 // calls of the function led
	Updates         int64 // firmware updates the devices took
	Elapsed         time.Duration
	// Failures says why the devices that never came online failed, by
	// kind, and Why in sentences with what to do (empty when none failed).
	Failures []Failure
	Why      string
}

// HandshakesPerSecond is the ramp-up rate: devices connected per second.
func (s Summary) HandshakesPerSecond() float64 {
	if s.RampTime <= 0 {
		return 0
	}
	return float64(s.Connected) / s.RampTime.Seconds()
}

// Write prints the summary as aligned lines.
func (s Summary) Write(w io.Writer) {
	fmt.Fprintf(w, "devices       %d (%d keys generated)\n", s.Devices, s.KeysGenerated)
	fmt.Fprintf(w, "connected     %d\n", s.Connected)
	fmt.Fprintf(w, "failed        %d (%d refused by provisioning)\n", s.Failed, s.ProvisionFailed)
	fmt.Fprintf(w, "online at end %d\n", s.Online)
	fmt.Fprintf(w, "handshakes    %d in total, %.1f/s during the ramp-up (%s)\n", s.Handshakes, s.HandshakesPerSecond(), s.RampTime.Round(time.Millisecond))
	fmt.Fprintf(w, "errors        %d failed connection attempts, %d connections lost\n", s.ConnectErrors, s.Disconnects)
	fmt.Fprintf(w, "events        %d published, %d failed\n", s.Published, s.PublishFailed)
	if s.Claimed+s.ClaimFailed > 0 {
		fmt.Fprintf(w, "claims        %d claimed, %d failed\n", s.Claimed, s.ClaimFailed)
	}
	fmt.Fprintf(w, "calls         %d of led\n", s.Calls)
	if s.Updates > 0 {
		fmt.Fprintf(w, "updates       %d firmware updates taken\n", s.Updates)
	}
	fmt.Fprintf(w, "elapsed       %s\n", s.Elapsed.Round(time.Millisecond))
	for _, f := range s.Failures {
		fmt.Fprintf(w, "never online  %d: %s: %s\n", f.Devices, f.Kind, f.Example)
	}
}

// counters are updated by devices concurrently.
type counters struct {
	keys, keysGenerated, provisioned, provisionFailed atomic.Int64
	connected, failing, online, calls                 atomic.Int64
	handshakes, connectErrors, disconnects            atomic.Int64
	published, publishFailed, claimed, claimFailed    atomic.Int64
	claiming                                          atomic.Int64 // claim calls in flight
	updates                                           atomic.Int64 // firmware updates taken
	resumptions                                       atomic.Int64 // onlines that resumed a saved DTLS session
	lastFirstOnline                                   atomic.Int64 // unix nanos
}

// simDevice is one virtual device and its bookkeeping.
type simDevice struct {
	n          int // device number (IDStart + index)
	id         string
	der        []byte
	dev        *device.Device
	app        *Behaviour
	first      chan struct{} // closed at the first online or failed attempt
	reported   atomic.Bool
	everOnline atomic.Bool
	failing    atomic.Bool
	onlineNow  atomic.Bool
	firstErr   atomic.Pointer[error]  // the first failed attempt's error while never online
	session    atomic.Pointer[[]byte] // the last DTLS session state (UDPConfig.SessionsDir)
}

// sim is one run.
type sim struct {
	cfg         Config
	log         *slog.Logger
	progress    io.Writer
	progressMu  sync.Mutex // serializes writes to progress
	serverKey   *rsa.PublicKey
	ecServerKey *ecdsa.PublicKey // with --udp
	api         *apiClient
	dialers     []*net.Dialer
	c           counters
	claims      chan struct{}   // bounds concurrent claim calls
	devCtx      context.Context // the devices' lifetime: Run's context, ended after the summary
	publishing  atomic.Int32    // publish callbacks running
	devices     []*simDevice
	wg          sync.WaitGroup // device goroutines
	warned      sync.Map       // kind → *atomic.Int32, for warnOnce

	phaseMu sync.Mutex
	phase   string
	start   time.Time
	ramp    time.Time // start of the ramp-up
}

// Run simulates cfg.Count devices until ctx ends (or cfg.Duration passes)
// and returns the summary. Progress lines go to progress (nil: none), logs
// to log. The error is for configuration and setup problems; devices that
// fail to connect are counted in Summary.Failed.
func Run(ctx context.Context, cfg Config, log *slog.Logger, progress io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var serverKey *rsa.PublicKey
	var ecServerKey *ecdsa.PublicKey
	var err error
	if cfg.UDP.Enabled {
		ecServerKey, err = LoadUDPServerKey(cfg.ServerKey)
	} else {
		serverKey, err = LoadServerKey(cfg.ServerKey)
	}
	if err != nil {
		return Summary{}, err
	}
	for _, dir := range []string{cfg.KeysDir, cfg.UDP.SessionsDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Summary{}, fmt.Errorf("sim: %w", err)
		}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	// The devices stop after the summary's snapshot of the end state.
	devCtx, stopDevices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDevices()
	s := &sim{cfg: cfg, log: log, progress: progress, serverKey: serverKey, ecServerKey: ecServerKey, start: time.Now(),
		claims: make(chan struct{}, cfg.Concurrency), devCtx: devCtx}
	if cfg.API != "" {
		s.api = newAPIClient(cfg.API, cfg.Token, cfg.Concurrency)
	}
	for _, b := range cfg.Bind {
		s.dialers = append(s.dialers, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(b)}})
	}
	if cfg.UDP.Enabled {
		s.dialers = udpDialers(cfg.Bind)
	}
	if len(s.dialers) == 0 {
		s.dialers = []*net.Dialer{{}}
	}
	s.devices = make([]*simDevice, cfg.Count)
	for i := range s.devices {
		n := cfg.IDStart + i
		id, _ := DeviceID(cfg.IDPrefix, n) // Validate checked the range
		s.devices[i] = &simDevice{n: n, id: id}
	}

	stopProgress := s.startProgress()
	s.setPhase("keys")
	s.makeKeys(ctx)
	if s.api != nil && ctx.Err() == nil {
		s.setPhase("provision")
		s.provisionAll(ctx)
	}
	if ctx.Err() == nil {
		s.setPhase("connect")
		s.connectAll(ctx)
		s.waitClaims(ctx)
	}
	if ctx.Err() == nil && s.c.connected.Load() == 0 {
		// Nothing can work: stop now and say why rather than retry
		// forever (docs/operations.md, wick sim).
		s.setPhase("stop")
		stopProgress()
		sum := s.summary()
		stopDevices()
		s.stop()
		sum.Elapsed = time.Since(s.start)
		s.explain(&sum)
		return sum, fmt.Errorf("%w: %s", ErrNoDeviceOnline, s.noDeviceReason(sum))
	}
	s.setPhase("run")
	if cfg.Ready != nil && ctx.Err() == nil {
		cfg.Ready(s.summary)
	}
	<-ctx.Done()
	s.setPhase("stop")
	stopProgress()
	sum := s.summary() // before the devices disconnect: Online is the state at the end
	stopDevices()
	s.stop()
	s.saveSessions()
	sum.Elapsed = time.Since(s.start)
	sum.Handshakes, sum.Published, sum.Calls = s.c.handshakes.Load(), s.c.published.Load(), s.c.calls.Load()
	s.explain(&sum)
	return sum, nil
}

// explain fills the summary's Failures and Why.
func (s *sim) explain(sum *Summary) {
	sum.Failures = s.failures()
	sum.Why = explain(s.cfg, sum.Failures, s.api != nil && s.c.provisioned.Load() > 0)
}

// noDeviceReason says why no device came online: the failures, or the
// setup step that left no device to start.
func (s *sim) noDeviceReason(sum Summary) string {
	switch {
	case sum.Why != "":
		return sum.Why
	case s.c.keys.Load() == 0:
		return "no device key could be read or generated (see the warnings above)"
	case s.api != nil && s.c.provisioned.Load() == 0:
		return fmt.Sprintf("the API at %s refused every device key (see the warnings above)", s.cfg.API)
	}
	return fmt.Sprintf("no device connected within --connect-timeout %s", s.cfg.ConnectTimeout)
}

// setPhase switches the progress line to phase and prints the previous
// phase's final line.
func (s *sim) setPhase(phase string) {
	s.phaseMu.Lock()
	prev := s.phase
	s.phase = phase
	if phase == "connect" {
		s.ramp = time.Now()
	}
	s.phaseMu.Unlock()
	if s.cfg.StatusJSON && s.progress != nil && s.cfg.Progress > 0 {
		s.printProgress(statusLine(s.status(phase)))
		return
	}
	if prev != "" && prev != "run" && s.progress != nil && s.cfg.Progress > 0 {
		rate := 0.0
		if prev == "connect" { // the ramp-up's average
			rate = s.summary().HandshakesPerSecond()
		}
		s.printProgress(s.progressLine(prev, rate) + " (done)")
	}
}

// eachDevice runs fn for every device on workers goroutines, stopping
// early when ctx ends.
func (s *sim) eachDevice(ctx context.Context, workers int, fn func(*simDevice)) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(workers, len(s.devices)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(s.devices) {
					return
				}
				fn(s.devices[i])
			}
		}()
	}
	wg.Wait()
}

// warn logs the first few problems of a kind at warning level and the
// rest at debug level, so 50,000 identical failures do not flood the log.
func (s *sim) warn(kind, msg string, args ...any) {
	v, _ := s.warned.LoadOrStore(kind, new(atomic.Int32))
	level := slog.LevelDebug
	if v.(*atomic.Int32).Add(1) <= 3 {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// makeKeys loads or generates every device key on all cores.
func (s *sim) makeKeys(ctx context.Context) {
	s.eachDevice(ctx, runtime.GOMAXPROCS(0), func(d *simDevice) {
		der, generated, err := s.deviceKeyFor(d.id)
		if err != nil {
			s.warn("key", "sim: device key", "device", d.id, "err", err)
			return
		}
		d.der = der
		s.c.keys.Add(1)
		if generated {
			s.c.keysGenerated.Add(1)
		}
	})
}

// provisionAll registers every public key through the API.
func (s *sim) provisionAll(ctx context.Context) {
	s.eachDevice(ctx, s.cfg.Concurrency, func(d *simDevice) {
		if d.der == nil {
			return
		}
		pemKey, algorithm, err := publicKeyPEM(d.der)
		if err == nil {
			err = s.api.provision(ctx, d.id, pemKey, algorithm, s.cfg.Product, s.cfg.ClaimCode != "")
		}
		if err != nil {
			if ctx.Err() == nil {
				s.c.provisionFailed.Add(1)
				s.warn("provision", "sim: provisioning failed", "device", d.id, "err", err)
			}
			d.der = nil // not started
			return
		}
		s.c.provisioned.Add(1)
	})
}

// connectAll starts the devices, Concurrency at a time: a worker starts a
// device and waits for its first connection (or first failure, or
// ConnectTimeout) before taking the next.
func (s *sim) connectAll(ctx context.Context) {
	s.eachDevice(ctx, s.cfg.Concurrency, func(d *simDevice) {
		if d.der == nil {
			return
		}
		if err := s.startDevice(d); err != nil {
			s.warn("start", "sim: device not started", "device", d.id, "err", err)
			return
		}
		t := time.NewTimer(s.cfg.ConnectTimeout)
		defer t.Stop()
		select {
		case <-d.first:
		case <-t.C:
		case <-ctx.Done():
		}
	})
}

func (s *sim) startDevice(d *simDevice) error {
	ctx := s.devCtx
	d.app = NewBehaviour(fmt.Sprintf("sim-%d", d.n), &s.c.calls)
	d.first = make(chan struct{})
	dev, err := s.newDevice(ctx, d, device.Config{
		ID:             d.id,
		PrivateKeyDER:  d.der,
		ServerAddr:     s.cfg.Server,
		ServerKey:      s.serverKey,
		PlatformID:     uint16(s.cfg.Platform),
		DeviceDescribe: s.cfg.DeviceDescribe,
		ClaimCode:      s.cfg.ClaimCode,
		KeepAlive:      s.cfg.KeepAlive,
		Quirks:         s.cfg.Quirks,
		ProductVersion: uint16(s.cfg.ProductVersion),
		OTA:            s.cfg.deviceOTA(func() { s.c.updates.Add(1) }),
		Dial:           s.dialers[d.n%len(s.dialers)].DialContext,
		Logger:         s.log,
		OnState:        func(st device.State, err error) { s.onState(ctx, d, st, err) },
	})
	if err != nil {
		return err
	}
	if err := d.app.Register(dev); err != nil {
		return err
	}
	d.dev = dev
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		dev.Run(ctx)
	}()
	if s.cfg.Publish != "" {
		// A random phase spreads the devices' publications over the period.
		time.AfterFunc(rand.N(s.cfg.Every), func() { s.publish(ctx, d) })
	}
	return nil
}

// onState keeps the counters; it runs on the device's goroutine.
func (s *sim) onState(ctx context.Context, d *simDevice, st device.State, err error) {
	switch st {
	case device.Online:
		d.onlineNow.Store(true)
		if s.cfg.OnState != nil {
			s.cfg.OnState(d.id, true)
		}
		s.c.online.Add(1)
		s.c.handshakes.Add(1)
		if d.dev != nil && d.dev.Resumed() {
			s.c.resumptions.Add(1)
		}
		if d.everOnline.CompareAndSwap(false, true) {
			s.c.connected.Add(1)
			s.c.lastFirstOnline.Store(time.Now().UnixNano())
			if d.failing.CompareAndSwap(true, false) {
				s.c.failing.Add(-1)
			}
			if s.api != nil && s.cfg.ClaimCode == "" {
				s.c.claiming.Add(1)
				go s.claim(ctx, d)
			}
		}
		s.firstResult(d)
	case device.Offline:
		if d.onlineNow.CompareAndSwap(true, false) {
			s.c.online.Add(-1)
			if s.cfg.OnState != nil {
				s.cfg.OnState(d.id, false)
			}
			if ctx.Err() == nil {
				s.c.disconnects.Add(1)
			}
			return
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		s.c.connectErrors.Add(1)
		if !d.everOnline.Load() {
			d.firstErr.CompareAndSwap(nil, &err)
		}
		if !d.everOnline.Load() && d.failing.CompareAndSwap(false, true) {
			s.c.failing.Add(1)
			s.warn("connect", "sim: connection failed", "device", d.id, "err", err,
				"why", hint(s.cfg, classify(err), s.api != nil))
		}
		s.firstResult(d)
	}
}

func (s *sim) firstResult(d *simDevice) {
	if d.reported.CompareAndSwap(false, true) {
		close(d.first)
	}
}

// claim claims a device to the token's owner once it is online
// (docs/particle-api.md#claiming-a-device-by-id). A refusal (e.g. 404 while the
// endpoint does not exist) is counted and logged; the device keeps running.
func (s *sim) claim(ctx context.Context, d *simDevice) {
	defer s.c.claiming.Add(-1)
	select {
	case s.claims <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.claims }()
	if err := s.api.claim(ctx, d.id); err != nil {
		if ctx.Err() == nil {
			s.c.claimFailed.Add(1)
			s.warn("claim", "sim: claim failed", "device", d.id, "err", err)
		}
		return
	}
	s.c.claimed.Add(1)
}

// waitClaims waits until no claim call is in flight, or ctx ends.
func (s *sim) waitClaims(ctx context.Context) {
	for s.c.claiming.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// publish sends one sensor reading (or, with PublishTime, the time of
// sending) when online and schedules the next, until ctx ends.
func (s *sim) publish(ctx context.Context, d *simDevice) {
	s.publishing.Add(1)
	defer s.publishing.Add(-1)
	if ctx.Err() != nil {
		return
	}
	if d.dev.State() == device.Online {
		data := SensorData(d.app.Step())
		if s.cfg.PublishTime {
			data = strconv.FormatInt(time.Now().UnixNano(), 10)
		}
		err := d.dev.Publish(ctx, s.cfg.Publish, data, device.PublishOptions{})
		switch {
		case err == nil:
			s.c.published.Add(1)
		case ctx.Err() == nil:
			s.c.publishFailed.Add(1)
			s.warn("publish", "sim: publish failed", "device", d.id, "err", err)
		}
	}
	time.AfterFunc(s.cfg.Every, func() { s.publish(ctx, d) })
}

// stop waits for the devices to say Goodbye and disconnect.
func (s *sim) stop() {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	deadline := time.After(15 * time.Second)
	select {
	case <-done:
	case <-deadline:
		s.log.Warn("sim: devices still disconnecting after 15 s")
		return
	}
	for s.publishing.Load() > 0 {
		select {
		case <-deadline:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// startProgress prints a progress line every cfg.Progress while devices
// are prepared and connect, and every ten intervals afterwards.
func (s *sim) startProgress() (stop func()) {
	if s.progress == nil || s.cfg.Progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.Progress)
		defer t.Stop()
		lastHandshakes, lastTime, tick := int64(0), time.Now(), 0
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				s.phaseMu.Lock()
				phase := s.phase
				s.phaseMu.Unlock()
				h := s.c.handshakes.Load()
				rate := float64(h-lastHandshakes) / now.Sub(lastTime).Seconds()
				lastHandshakes, lastTime = h, now
				tick++
				if s.cfg.StatusJSON {
					s.printProgress(statusLine(s.status(phase)))
					continue
				}
				if phase == "run" && tick%10 != 0 {
					continue
				}
				s.printProgress(s.progressLine(phase, rate))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// printProgress writes one progress line. Run's goroutine (at a phase's
// end) and the progress ticker both print; progressMu keeps their lines
// whole and the writer (which need not be safe for concurrent use) used by
// one goroutine at a time.
func (s *sim) printProgress(line string) {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	fmt.Fprintln(s.progress, line)
}

// progressLine renders the state of phase.
func (s *sim) progressLine(phase string, rate float64) string {
	n := len(s.devices)
	switch phase {
	case "keys":
		return fmt.Sprintf("sim: keys %d/%d (%d generated)", s.c.keys.Load(), n, s.c.keysGenerated.Load())
	case "provision":
		return fmt.Sprintf("sim: provisioned %d/%d, %d failed", s.c.provisioned.Load(), n, s.c.provisionFailed.Load())
	}
	return fmt.Sprintf("sim: connected %d/%d, online %d, failed %d | %.0f handshakes/s | %d events, %d calls",
		s.c.connected.Load(), n, s.c.online.Load(), s.c.failing.Load(), rate, s.c.published.Load(), s.c.calls.Load())
}

func (s *sim) summary() Summary {
	sum := Summary{
		Devices:         len(s.devices),
		KeysGenerated:   int(s.c.keysGenerated.Load()),
		ProvisionFailed: int(s.c.provisionFailed.Load()),
		Connected:       int(s.c.connected.Load()),
		Online:          int(s.c.online.Load()),
		Handshakes:      s.c.handshakes.Load(),
		Resumptions:     s.c.resumptions.Load(),
		ConnectErrors:   s.c.connectErrors.Load(),
		Disconnects:     s.c.disconnects.Load(),
		Published:       s.c.published.Load(),
		PublishFailed:   s.c.publishFailed.Load(),
		Claimed:         s.c.claimed.Load(),
		ClaimFailed:     s.c.claimFailed.Load(),
		Calls:           s.c.calls.Load(),
		Updates:         s.c.updates.Load(),
		Elapsed:         time.Since(s.start),
	}
	sum.Failed = sum.Devices - sum.Connected
	if last := s.c.lastFirstOnline.Load(); last > 0 && !s.ramp.IsZero() {
		sum.RampTime = time.Unix(0, last).Sub(s.ramp)
	}
	return sum
}
