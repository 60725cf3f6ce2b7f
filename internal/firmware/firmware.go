package firmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/store"
)

// Flasher starts an update of a device with the stored binary whose
// SHA-256 is hash, and returns once the device accepted it; the outcome
// follows as a spark/flash/status event. *gateway.Gateway is one.
type Flasher interface {
	Flash(ctx context.Context, deviceID, hash string) error
}

// Defaults of zero Config fields.
const (
	DefaultRate         = 60 // updates started per minute per product
	DefaultStaleAfter   = 25 * time.Minute
	DefaultRetryBackoff = 10 * time.Minute
	DefaultStartTimeout = 45 * time.Second
	DefaultMaxAttempts  = 3
	DefaultGCEvery      = time.Hour
	DefaultGCGrace      = time.Hour
	DefaultGCRetention  = 7 * 24 * time.Hour
)

// Config tunes the service.
type Config struct {
	// Rate is how many automatic updates start per minute in one product
	// (the --ota-rate flag); the starts are spaced evenly. Default 60.
	Rate int
	// StaleAfter is how long a started update may take before another may
	// start for the same device (the gateway's transfer timeout plus its
	// reboot wait, with room). Default 25 min.
	StaleAfter time.Duration
	// RetryBackoff is how long after a failed update the same binary is
	// not offered to that device again; then, if the device is online, it
	// is queued again. Default 10 min.
	RetryBackoff time.Duration
	// MaxAttempts is how many automatic updates in a row with one binary a
	// device gets before the service gives up on it (until another
	// release, lock or flash). Default 3.
	MaxAttempts int
	// StartTimeout bounds one Flash call (until the device accepts).
	// Default 45 s.
	StartTimeout time.Duration
	// Node, when set, limits automatic updates on a device coming online
	// to devices this gateway node holds, so that of several servers only
	// one acts (the store claim makes the others harmless anyway).
	Node string
	// GCEvery is how often unused binaries are collected (CollectBinaries)
	// while Run runs; of the servers sharing a database, one collects per
	// period. Default 1 h; negative never.
	GCEvery time.Duration
	// GCGrace keeps every binary stored (or stored again) within it, so
	// that an upload is not collected before it is named by a version or
	// an update. Default 1 h.
	GCGrace time.Duration
	// GCRetention keeps the binary of every device update started or
	// finished within it. Default 7 days.
	GCRetention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.GCEvery == 0 {
		c.GCEvery = DefaultGCEvery
	}
	if c.GCGrace <= 0 {
		c.GCGrace = DefaultGCGrace
	}
	if c.GCRetention <= 0 {
		c.GCRetention = DefaultGCRetention
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Errors of Flash, besides the bus's (offline, timeout).
var (
	// ErrInProgress means the device already has an update running.
	ErrInProgress = errors.New("firmware: an update of the device is in progress")
	// ErrRefused means the device refused to begin the update.
	ErrRefused = errors.New("firmware: the device refused the update")
)

// Service starts and tracks updates. Create it with New, start its bus
// listeners with Run.
type Service struct {
	cfg     Config
	st      store.Store
	flasher Flasher
	log     *slog.Logger

	mu     sync.Mutex
	queues map[int64]*queue // products with automatic updates waiting
	ctx    context.Context  // Run's; nil before Run
	wg     sync.WaitGroup

	// started, when set (tests), sees each automatic start with its slot.
	started func(deviceID string, slot time.Time)
}

// queue is the devices of one product waiting for an automatic update, in
// arrival order, each once.
type queue struct {
	ids     []string
	waiting map[string]bool
}

// New returns a service that updates devices through flasher and records
// in st. log may be nil.
func New(cfg Config, st store.Store, flasher Flasher, log *slog.Logger) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, st: st, flasher: flasher, log: log, queues: make(map[int64]*queue)}
}

// Interval is the spacing of automatic update starts within one product.
func (s *Service) Interval() time.Duration {
	return time.Minute / time.Duration(s.cfg.Rate)
}

// Flash starts an update of the device with the stored binary hash (of
// product version version, 0 for none) and returns once the device
// accepted it. It claims the device's update slot in the store first
// (ErrInProgress when taken), and records a failed start at once; the
// outcome of an accepted one arrives as spark/flash/status (Outcome).
func (s *Service) Flash(ctx context.Context, deviceID string, productID int64, hash string, version int) error {
	err := s.st.StartDeviceOTA(ctx, deviceID, store.DeviceOTA{ProductID: productID, Hash: hash, Version: version,
		At: s.cfg.Now(), StaleAfter: s.cfg.StaleAfter})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("firmware: device %s: %w", deviceID, ErrInProgress)
	}
	if err != nil {
		return fmt.Errorf("firmware: start update of %s: %w", deviceID, err)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	ferr := s.flasher.Flash(fctx, deviceID, hash)
	cancel()
	if ferr != nil {
		if _, err := s.st.FinishDeviceOTA(context.WithoutCancel(ctx), deviceID, hash, "not started: "+ferr.Error(), s.cfg.Now()); err != nil {
			s.log.Warn("firmware: record failed start", "device", deviceID, "err", err)
		}
		switch {
		case errors.Is(ferr, gateway.ErrUpdateInProgress):
			return fmt.Errorf("firmware: device %s: %w", deviceID, ErrInProgress)
		case errors.Is(ferr, gateway.ErrUpdateRefused):
			return fmt.Errorf("firmware: device %s: %w (%v)", deviceID, ErrRefused, ferr)
		}
		return fmt.Errorf("firmware: update %s: %w", deviceID, ferr)
	}
	s.log.Info("firmware: update started", "device", deviceID, "product", productID, "version", version, "hash", hash)
	return nil
}

// Outcome records the end of the device's started update: ok, or failed
// with reason; a failure of a product update counts as success when the
// device already reports the version it was sent, and a success reported
// for an update recorded as failed (a device back after the gateway's
// reboot wait) turns it into one. It reports whether it changed the record.
func (s *Service) Outcome(ctx context.Context, deviceID string, ok bool, reason string) (bool, error) {
	df, err := s.st.DeviceFirmware(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("firmware: outcome of %s: %w", deviceID, err)
	}
	if ok && df.Status == store.OTAFailed && df.Hash != "" {
		// A device back with "previous OTA succeeded" after the gateway's
		// reboot wait had reported its update failed: it took it.
		applied, err := s.st.MarkDeviceOTASucceeded(ctx, deviceID, df.Hash, s.cfg.Now())
		if err != nil {
			return false, fmt.Errorf("firmware: outcome of %s: %w", deviceID, err)
		}
		if applied {
			s.log.Info("firmware: update reported failed succeeded after all", "device", deviceID, "hash", df.Hash)
		}
		return applied, nil
	}
	if df.Status != store.OTAStarted {
		return false, nil
	}
	// A device already back with the product version it was sent took
	// the update, whatever the report says (a gateway may lose track of
	// a device that reconnected quickly).
	if !ok && df.Version != 0 {
		if d, err := s.st.DeviceByID(ctx, deviceID); err == nil && d.ProductVersion == df.Version {
			s.log.Info("firmware: device reports the new version despite a failed update", "device", deviceID, "version", df.Version)
			ok = true
		}
	}
	if !ok && reason == "" {
		reason = "failed"
	}
	if ok {
		reason = ""
	}
	applied, err := s.st.FinishDeviceOTA(ctx, deviceID, df.Hash, reason, s.cfg.Now())
	if err != nil {
		return false, fmt.Errorf("firmware: outcome of %s: %w", deviceID, err)
	}
	if applied {
		s.log.Info("firmware: update finished", "device", deviceID, "ok", ok, "hash", df.Hash)
	}
	return applied, nil
}

// Target is the firmware a product device should run, and why.
type Target struct {
	Firmware *store.ProductFirmware // nil: none
	Locked   bool                   // the device is locked to it
}

// TargetFor returns the firmware device d should run: the version it is
// locked to, else the product default release. Firmware is nil when d is
// in no product or the product has released nothing.
func (s *Service) TargetFor(ctx context.Context, d *store.Device) (Target, error) {
	if d.ProductID == 0 {
		return Target{}, nil
	}
	df, err := s.st.DeviceFirmware(ctx, d.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Target{}, fmt.Errorf("firmware: state of %s: %w", d.ID, err)
	}
	if df != nil && df.DesiredVersion != nil && df.ProductID == d.ProductID {
		f, err := s.st.ProductFirmware(ctx, d.ProductID, *df.DesiredVersion)
		if errors.Is(err, store.ErrNotFound) {
			return Target{Locked: true}, nil
		}
		if err != nil {
			return Target{}, fmt.Errorf("firmware: locked version of %s: %w", d.ID, err)
		}
		return Target{Firmware: f, Locked: true}, nil
	}
	f, err := s.st.ProductDefaultFirmware(ctx, d.ProductID)
	if errors.Is(err, store.ErrNotFound) {
		return Target{}, nil
	}
	if err != nil {
		return Target{}, fmt.Errorf("firmware: release of product %d: %w", d.ProductID, err)
	}
	return Target{Firmware: f}, nil
}

// Skip reasons of Decide.
const (
	SkipNotInProduct = "not in a product"
	SkipOffline      = "offline"
	SkipDevelopment  = "development device"
	SkipQuarantined  = "quarantined or denied"
	SkipNoTarget     = "no released or locked firmware"
	SkipCurrent      = "runs the target version"
	SkipDisabled     = "firmware updates disabled on the device"
	SkipPlatform     = "target firmware is for another platform"
	SkipInProgress   = "an update is in progress"
	SkipFailedLately = "the same update failed recently"
	SkipGaveUp       = "the same update failed too many times"
	SkipDidNotTake   = "the same update succeeded but the device reports another version"
)

// Decide returns the firmware to send d now, or nil and the reason not to.
func (s *Service) Decide(ctx context.Context, d *store.Device) (*store.ProductFirmware, string, error) {
	switch {
	case d.ProductID == 0:
		return nil, SkipNotInProduct, nil
	case !d.Online:
		return nil, SkipOffline, nil
	case d.Development:
		return nil, SkipDevelopment, nil
	case d.Quarantined || d.Denied:
		return nil, SkipQuarantined, nil
	}
	t, err := s.TargetFor(ctx, d)
	if err != nil {
		return nil, "", err
	}
	f := t.Firmware
	switch {
	case f == nil:
		return nil, SkipNoTarget, nil
	case f.Version == d.ProductVersion:
		return nil, SkipCurrent, nil
	case !d.FirmwareUpdatesEnabled && !d.FirmwareUpdatesForced:
		return nil, SkipDisabled, nil
	case d.PlatformID != 0 && f.PlatformID != d.PlatformID:
		return nil, SkipPlatform, nil
	}
	df, err := s.st.DeviceFirmware(ctx, d.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("firmware: state of %s: %w", d.ID, err)
	}
	if df != nil && df.Hash == f.Hash {
		now := s.cfg.Now()
		switch {
		case df.Status == store.OTAStarted && df.StartedAt != nil && now.Sub(*df.StartedAt) < s.cfg.StaleAfter:
			return nil, SkipInProgress, nil
		case df.Status == store.OTAFailed && df.Attempts >= s.cfg.MaxAttempts:
			return nil, SkipGaveUp, nil
		case df.Status == store.OTAFailed && df.FinishedAt != nil && now.Sub(*df.FinishedAt) < s.cfg.RetryBackoff:
			return nil, SkipFailedLately, nil
		case df.Status == store.OTASuccess:
			return nil, SkipDidNotTake, nil
		}
	}
	return f, "", nil
}

// Run listens on b for devices coming online and for update outcomes until
// ctx ends, and runs the automatic updates queued meanwhile. It returns
// once every started goroutine has ended.
func (s *Service) Run(ctx context.Context, b *bus.Bus) error {
	online, err := b.Subscribe(bus.Filter{NamePrefix: "spark/status"}, 4096)
	if err != nil {
		return fmt.Errorf("firmware: subscribe: %w", err)
	}
	defer online.Close()
	flash, err := b.Subscribe(bus.Filter{NamePrefix: "spark/flash/status"}, 4096)
	if err != nil {
		return fmt.Errorf("firmware: subscribe: %w", err)
	}
	defer flash.Close()
	s.mu.Lock()
	s.ctx = ctx
	for id := range s.queues {
		s.startLocked(id)
	}
	s.mu.Unlock()
	defer s.wg.Wait()
	if s.cfg.GCEvery > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.collectEvery(ctx)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-online.Events():
			if !ok {
				return nil
			}
			if e.Name == "spark/status" && e.Data == "online" && e.ProductID != 0 {
				s.deviceOnline(ctx, e.DeviceID)
			}
		case e, ok := <-flash.Events():
			if !ok {
				return nil
			}
			if e.Name != "spark/flash/status" {
				continue
			}
			switch strings.TrimSpace(e.Data) {
			case "success":
				_, err = s.Outcome(ctx, e.DeviceID, true, "")
			case "failed":
				var applied bool
				if applied, err = s.Outcome(ctx, e.DeviceID, false, "the device reported a failed update"); applied {
					s.retryLater(ctx, e.DeviceID)
				}
			default:
				continue
			}
			if err != nil {
				s.log.Warn("firmware: record outcome", "device", e.DeviceID, "err", err)
			}
		}
	}
}

// deviceOnline queues an automatic update of a product device that just
// connected, if it runs another version than it should.
func (s *Service) deviceOnline(ctx context.Context, deviceID string) {
	d, err := s.st.DeviceByID(ctx, deviceID)
	if err != nil {
		s.log.Warn("firmware: device online", "device", deviceID, "err", err)
		return
	}
	// A device back with the version of an update reported failed took
	// it after all.
	if df, err := s.st.DeviceFirmware(ctx, deviceID); err == nil && df.Status == store.OTAFailed &&
		df.Version != 0 && df.Version == d.ProductVersion {
		if ok, err := s.st.MarkDeviceOTASucceeded(ctx, deviceID, df.Hash, s.cfg.Now()); err != nil {
			s.log.Warn("firmware: device online", "device", deviceID, "err", err)
		} else if ok {
			s.log.Info("firmware: device came back with the update reported failed", "device", deviceID, "version", df.Version)
		}
	}
	if s.cfg.Node != "" && d.Node != "" && d.Node != s.cfg.Node {
		return
	}
	f, _, err := s.Decide(ctx, d)
	if err != nil {
		s.log.Warn("firmware: device online", "device", deviceID, "err", err)
		return
	}
	if f != nil {
		s.Enqueue(d.ProductID, d.ID)
	}
}

// ProductChanged queues every online device of the product that should
// run another version: after a release, or a lock or development change.
// It returns how many it queued.
func (s *Service) ProductChanged(ctx context.Context, productID int64) (int, error) {
	devs, _, err := s.st.DevicesByProduct(ctx, productID, store.DeviceFilter{})
	if err != nil {
		return 0, fmt.Errorf("firmware: devices of product %d: %w", productID, err)
	}
	n := 0
	for i := range devs {
		f, _, err := s.Decide(ctx, &devs[i])
		if err != nil {
			return n, err
		}
		if f != nil {
			s.Enqueue(productID, devs[i].ID)
			n++
		}
	}
	return n, nil
}

// DeviceChanged queues one device if it should run another version.
func (s *Service) DeviceChanged(ctx context.Context, deviceID string) error {
	d, err := s.st.DeviceByID(ctx, deviceID)
	if err != nil {
		return fmt.Errorf("firmware: device %s: %w", deviceID, err)
	}
	f, _, err := s.Decide(ctx, d)
	if err != nil {
		return err
	}
	if f != nil {
		s.Enqueue(d.ProductID, d.ID)
	}
	return nil
}

// Enqueue adds a device to its product's automatic update queue (once).
// The queue drains at the configured rate while Run runs.
func (s *Service) Enqueue(productID int64, deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[productID]
	if q == nil {
		q = &queue{waiting: make(map[string]bool)}
		s.queues[productID] = q
		s.startLocked(productID)
	}
	if q.waiting[deviceID] {
		return
	}
	q.waiting[deviceID] = true
	q.ids = append(q.ids, deviceID)
}

// Queued returns how many devices of the product wait for an update.
func (s *Service) Queued(productID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[productID]; q != nil {
		return len(q.ids)
	}
	return 0
}

// startLocked starts the product's drain goroutine once Run has begun.
// The caller holds s.mu and has just created the queue (or Run starts the
// ones created before it).
func (s *Service) startLocked(productID int64) {
	if s.ctx == nil {
		return
	}
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.drain(ctx, productID)
	}()
}

// drain starts the product's queued updates, each in its own goroutine
// (a start waits for the device), until the queue is empty; then it
// removes the queue and ends. Each start takes a slot of the product's
// schedule in the store (ClaimOTASlot), which every server sharing the
// database follows: the rate holds for the cluster, not per server, and
// the slots stay evenly spaced however the starts are spread over servers.
func (s *Service) drain(ctx context.Context, productID int64) {
	interval := s.Interval()
	var next time.Time // this server's own schedule, if the store fails
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.mu.Lock()
		q := s.queues[productID]
		if len(q.ids) == 0 {
			delete(s.queues, productID)
			s.mu.Unlock()
			return
		}
		id := q.ids[0]
		q.ids = q.ids[1:]
		delete(q.waiting, id)
		s.mu.Unlock()

		d, f := s.decideQueued(ctx, id)
		if f == nil {
			continue
		}
		now := s.cfg.Now()
		slot, err := s.st.ClaimOTASlot(ctx, productID, now, interval)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("firmware: claim an update slot; pacing this server alone", "product", productID, "err", err)
			slot = now
			if next.After(now) {
				slot = next
			}
		}
		next = slot.Add(interval)
		wait := slot.Sub(now)
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		if wait > time.Second {
			// The device may have changed while its slot came.
			if d, f = s.decideQueued(ctx, id); f == nil {
				continue
			}
		}
		s.startAuto(ctx, d, f, slot)
	}
}

// retryLater re-checks the device once RetryBackoff has passed since its
// failed update: Decide queues it again while it is online and has
// attempts left.
func (s *Service) retryLater(ctx context.Context, deviceID string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(s.cfg.RetryBackoff + time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.DeviceChanged(ctx, deviceID); err != nil && ctx.Err() == nil {
			s.log.Warn("firmware: retry update", "device", deviceID, "err", err)
		}
	}()
}

// decideQueued re-checks a queued device and returns it with the firmware
// to send, or a nil firmware.
func (s *Service) decideQueued(ctx context.Context, deviceID string) (*store.Device, *store.ProductFirmware) {
	d, err := s.st.DeviceByID(ctx, deviceID)
	if err != nil {
		s.log.Warn("firmware: queued device", "device", deviceID, "err", err)
		return nil, nil
	}
	f, why, err := s.Decide(ctx, d)
	if err != nil {
		s.log.Warn("firmware: queued device", "device", deviceID, "err", err)
		return nil, nil
	}
	if f == nil {
		s.log.Debug("firmware: no update", "device", deviceID, "reason", why)
	}
	return d, f
}

// startAuto starts the update of d with f in the background, in its slot.
func (s *Service) startAuto(ctx context.Context, d *store.Device, f *store.ProductFirmware, slot time.Time) {
	if s.started != nil {
		s.started(d.ID, slot)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.Flash(ctx, d.ID, d.ProductID, f.Hash, f.Version); err != nil && !errors.Is(err, ErrInProgress) {
			s.log.Info("firmware: automatic update not started", "device", d.ID, "version", f.Version, "err", err)
			s.retryLater(ctx, d.ID)
		}
	}()
}

// gcKey is the cluster counter that elects one collector per GCEvery.
const gcKey = "firmware/gc"

// collectEvery collects unused binaries every GCEvery until ctx ends; when
// the store shares counters between servers, only the first server of
// each period does.
func (s *Service) collectEvery(ctx context.Context) {
	t := time.NewTicker(s.cfg.GCEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.collectOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("firmware: collect binaries", "err", err)
		}
	}
}

// collectOnce collects unused binaries unless another server sharing the
// store's counters did in this period (most of GCEvery); it reports
// whether it collected.
func (s *Service) collectOnce(ctx context.Context) (bool, error) {
	if c, ok := s.st.(store.Counters); ok {
		n, _, err := c.AddCounter(ctx, gcKey, s.cfg.Now(), s.cfg.GCEvery*9/10)
		if err != nil {
			return false, fmt.Errorf("firmware: collect binaries: %w", err)
		}
		if n > 1 {
			return false, nil // another server collects this period
		}
	}
	_, err := s.CollectBinaries(ctx)
	return err == nil, err
}

// CollectBinaries deletes the stored binaries nothing needs any more
// (docs/ota.md, "Binaries"): named by no product firmware version, by no
// device update started or finished within GCRetention, and not stored
// within GCGrace. It returns how many it deleted.
func (s *Service) CollectBinaries(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	n, err := s.st.DeleteUnusedFirmwareBinaries(ctx, store.FirmwareGC{
		UsedBefore: now.Add(-s.cfg.GCGrace), UpdatesSince: now.Add(-s.cfg.GCRetention)})
	if err != nil {
		return 0, fmt.Errorf("firmware: collect binaries: %w", err)
	}
	if n > 0 {
		s.log.Info("firmware: unused binaries deleted", "count", n)
	}
	return n, nil
}
