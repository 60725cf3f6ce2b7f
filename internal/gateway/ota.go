package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Firmware updates over the air, OTA v1 (docs/device-protocol.md, "The transfer";
// the message shapes are in protocol/ota.go). Flash claims the device's one
// update slot, loads the binary by hash, and sends UpdateBegin; once the
// device answers UpdateReady, Flash returns and a goroutine of the session
// sends the chunks (streamed without answers in fast OTA, one at a time
// otherwise), then UpdateDone, resending what the device lists as missed
// until it takes the whole binary. The device then reboots; its next Hello
// says whether it runs the new firmware (HelloOTASucceeded). Each update
// publishes spark/flash/status "started " and then "success " or "failed "
// on the device's event stream, with Particle's trailing space.

// Errors of Flash besides the gateway's usual ones (ErrNotFound: no binary
// with that hash; ErrBadRequest: a binary the device cannot take; offline,
// timeout).
var (
	// ErrUpdateInProgress means the device already has an update running
	// (or is rebooting into one); one transfer at a time per device.
	ErrUpdateInProgress = errors.New("gateway: an update of the device is in progress")
	// ErrUpdateRefused means the device answered UpdateBegin with an
	// error (5.03: it cannot take an update now, e.g. updates disabled).
	ErrUpdateRefused = errors.New("gateway: the device refused the update")
)

// Defaults applied to zero OTAConfig fields.
const (
	DefaultOTAStallTimeout  = 30 * time.Second
	DefaultOTATimeout       = 15 * time.Minute
	DefaultOTARebootTimeout = 5 * time.Minute
	DefaultOTAMaxRounds     = 10
	// DefaultOTAUDPChunkInterval is OTAConfig.UDPChunkInterval's default.
	DefaultOTAUDPChunkInterval = time.Millisecond
)

// OTAConfig configures firmware updates (Config.OTA).
type OTAConfig struct {
	// StallTimeout bounds every wait for the device during an update:
	// UpdateReady, each chunk's answer outside fast OTA, the answer to
	// UpdateDone and the list of missed chunks. A device silent for longer
	// fails the update. Default 30 s.
	StallTimeout time.Duration
	// Timeout bounds a whole transfer, from UpdateBegin to the device's
	// acceptance of UpdateDone. Default 15 min.
	Timeout time.Duration
	// RebootTimeout is how long the gateway waits, after the device took
	// the binary, for it to come back with the "previous OTA succeeded"
	// Hello flag before the update counts as failed. Default 5 min: a
	// cellular device's reconnection, or any device's during a
	// reconnection storm with backoff, can take minutes (a device back
	// later still gets a success, otaElsewhere).
	RebootTimeout time.Duration
	// MaxRounds bounds the UpdateDone / missed-chunks rounds beyond those a
	// binary needs when a device lists at most protocol.MaxChunksMissed
	// chunks per round. Default 10.
	MaxRounds int
	// DisableFast sends every chunk awaiting the device's answer instead of
	// offering fast OTA (streaming, with missed chunks resent at the end).
	DisableFast bool
	// UDPChunkInterval spaces the fast-OTA chunks sent to a Gen 3 device
	// over UDP, which has no flow control: a device whose receive buffer
	// overflows lists the lost chunks as missed. Default 1 ms.
	UDPChunkInterval time.Duration
}

func (c *OTAConfig) setDefaults() {
	setDuration(&c.StallTimeout, DefaultOTAStallTimeout)
	setDuration(&c.Timeout, DefaultOTATimeout)
	setDuration(&c.RebootTimeout, DefaultOTARebootTimeout)
	if c.MaxRounds <= 0 {
		c.MaxRounds = DefaultOTAMaxRounds
	}
	setDuration(&c.UDPChunkInterval, DefaultOTAUDPChunkInterval)
}

// The flash status event (docs/particle-protocol.md#events-the-cloud-emits):
// Particle's data carries a trailing space.
const (
	EventFlashStatus = "spark/flash/status"
	FlashStarted     = "started "
	FlashSuccess     = "success "
	FlashFailed      = "failed "
)

// FirmwareSource loads firmware binaries by the hex SHA-256 of their
// bytes; store.FirmwareBinaries is one.
type FirmwareSource interface {
	FirmwareBinary(ctx context.Context, sha256hex string) ([]byte, error)
}

// chunkOverhead is what a fast-OTA Chunk adds to its data: header 4, token
// 1, Uri-Path "c" 2, CRC query 5, index query 3, payload marker 1.
const chunkOverhead = 16

// missedBuffer bounds the ChunkMissed lists waiting for the transfer.
const missedBuffer = 64

// otaState is the gateway's update bookkeeping. The zero value is ready.
type otaState struct {
	source FirmwareSource // nil: Flash fails

	mu   sync.Mutex
	byID map[string]*transfer // one per device, from Flash until the outcome
}

// transfer is one update of one device.
type transfer struct {
	g    *Gateway
	s    *session // the session that runs it
	hash string
	bin  []byte
	size int // chunk size
	n    int // chunks
	fast bool
	tok  byte // held for the transfer's fast chunks

	missed chan []uint16 // ChunkMissed lists, from the dispatcher
	begun  time.Time

	// OTA v3 (ota3.go).
	v3     bool
	window uint32             // chunks the device takes beyond its last in-order one
	offset uint32             // bytes the device already held (resumption)
	ackSig chan struct{}      // signals a new UpdateAck (cap 1)
	ackMu  sync.Mutex         // guards ack
	ack    protocol.UpdateAck // the device's latest UpdateAck

	// Guarded by g.ota.mu.
	rebooting bool        // the device took the binary; waiting for its Hello
	back      *session    // a newer session of the device, online before rebooting was set
	timer     *time.Timer // RebootTimeout while rebooting
	done      bool        // the outcome is published
	flagged   bool        // a Hello of the device said "previous OTA succeeded" (otaHello)
}

// firmwareSource picks the binary loader: Deps.Firmware, or the store when
// it holds binaries.
func firmwareSource(deps Deps) FirmwareSource {
	if deps.Firmware != nil {
		return deps.Firmware
	}
	if f, ok := deps.Store.(FirmwareSource); ok {
		return f
	}
	return nil
}

// Flash updates the device's firmware with the binary whose SHA-256 is hash
// (lower-case hex), loaded from the firmware store. It returns once the
// device accepted the update (UpdateReady); the transfer goes on in the
// background and its outcome is published as spark/flash/status. It fails
// with ErrUpdateInProgress while another update of the device runs,
// ErrUpdateRefused when the device refuses, ErrNotFound for an unknown
// hash and ErrBadRequest for a binary the device cannot take.
func (g *Gateway) Flash(ctx context.Context, deviceID, hash string) error {
	if s := g.lookup(deviceID); s != nil {
		return s.flash(ctx, hash)
	}
	_, err := g.remote(ctx, deviceID, bus.Call{Kind: bus.KindFlash, Name: hash})
	return err
}

// Updating reports whether this gateway runs an update of the device
// (sending, or waiting for the device to come back after it).
func (g *Gateway) Updating(deviceID string) bool {
	g.ota.mu.Lock()
	defer g.ota.mu.Unlock()
	return g.ota.byID[normalizeID(deviceID)] != nil
}

// claim makes t the device's update, unless one runs.
func (o *otaState) claim(id string, t *transfer) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byID[id] != nil {
		return false
	}
	if o.byID == nil {
		o.byID = make(map[string]*transfer)
	}
	o.byID[id] = t
	return true
}

// release forgets t and reports whether it was still the device's update
// with no outcome published (the caller publishes it).
func (o *otaState) release(id string, t *transfer) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
	}
	if o.byID[id] == t {
		delete(o.byID, id)
	}
	first := !t.done
	t.done = true
	return first
}

// flash runs the start of an update on this session (Flash).
func (s *session) flash(ctx context.Context, hash string) (err error) {
	g := s.g
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("gateway: firmware hash %q: %w", hash, ErrBadRequest)
	}
	if !s.isOnline() {
		return s.offline()
	}
	t := &transfer{g: g, s: s, hash: hash, missed: make(chan []uint16, missedBuffer), begun: time.Now()}
	if !g.ota.claim(s.id, t) {
		return fmt.Errorf("gateway: device %s: %w", s.id, ErrUpdateInProgress)
	}
	announced := false
	defer func() {
		if err != nil && g.ota.release(s.id, t) && announced {
			g.stats.otaFailed.Add(1)
			t.publish(s, FlashFailed)
			g.log.Info("gateway: update refused", "device", s.id, "hash", hash, "err", err)
		}
	}()
	if err := t.load(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.OTA.StallTimeout)
	defer cancel()
	announced = true
	g.stats.otaStarted.Add(1)
	t.publish(s, FlashStarted)
	if t.v3 {
		if err := t.start3(ctx); err != nil {
			return err
		}
		go t.run()
		return nil
	}
	resp, err := s.request(ctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewUpdateBegin(id, tok, protocol.UpdateBegin{
			Fast:      !g.cfg.OTA.DisableFast,
			ChunkSize: uint16(t.size),
			FileSize:  uint32(len(t.bin)),
		}), nil
	})
	if err != nil {
		return err
	}
	if !resp.Code.IsSuccess() {
		return fmt.Errorf("gateway: device %s answered %s: %w", s.id, resp.Code, ErrUpdateRefused)
	}
	fast, _ := protocol.ParseUpdateReady(&resp)
	t.fast = fast && !g.cfg.OTA.DisableFast
	if t.fast {
		s.mu.Lock()
		tok, ok := s.tokens.Acquire()
		s.mu.Unlock()
		if !ok {
			// Every token is taken by calls: send without fast OTA.
			t.fast = false
		}
		t.tok = tok
	}
	g.log.Info("gateway: update started", "device", s.id, "hash", hash, "bytes", len(t.bin),
		"chunk", t.size, "chunks", t.n, "fast", t.fast)
	go t.run()
	return nil
}

// load reads the binary and fits the chunk size to the device.
func (t *transfer) load(ctx context.Context) error {
	s, g := t.s, t.g
	if g.ota.source == nil {
		return fmt.Errorf("gateway: no firmware store configured")
	}
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	bin, err := g.ota.source.FirmwareBinary(lctx, t.hash)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("gateway: firmware %s: %w", t.hash, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("gateway: load firmware %s: %w", t.hash, err)
	}
	if sum := sha256.Sum256(bin); hex.EncodeToString(sum[:]) != t.hash {
		return fmt.Errorf("gateway: firmware %s: stored bytes do not match the hash", t.hash)
	}
	h := s.hello
	switch {
	case len(bin) == 0:
		return fmt.Errorf("gateway: firmware %s is empty: %w", t.hash, ErrBadRequest)
	case h.MaxBinarySize > 0 && len(bin) > int(h.MaxBinarySize):
		return fmt.Errorf("gateway: firmware of %d bytes, device %s takes at most %d: %w",
			len(bin), s.id, h.MaxBinarySize, ErrBadRequest)
	}
	if h.Flags&protocol.HelloOTAv3 != 0 {
		// Device OS builds OTA v3 instead of v1, never both.
		return t.load3(bin)
	}
	size := int(h.OTAChunkSize)
	if size == 0 {
		size = protocol.DefaultOTAChunkSize
	}
	if limit := s.maxIncomingLen(); limit > 0 && size+chunkOverhead > limit {
		size = (limit - chunkOverhead) &^ 3
	}
	if size <= 0 {
		return fmt.Errorf("gateway: device %s takes messages too small for a chunk: %w", s.id, ErrBadRequest)
	}
	n := protocol.ChunkCount(len(bin), size)
	if n >= protocol.MaxOTAChunks {
		return fmt.Errorf("gateway: firmware of %d chunks: %w", n, ErrBadRequest)
	}
	t.bin, t.size, t.n = bin, size, n
	return nil
}

// publish sends a spark/flash/status event for the device, with the owner
// and product version session s knows.
func (t *transfer) publish(s *session, data string) {
	s.mu.Lock()
	o, v := s.own, s.prodVer
	s.mu.Unlock()
	t.g.publish(bus.Event{Name: EventFlashStatus, Data: data, DeviceID: s.id}, o, v)
}

// run sends the binary and then waits for the device to come back.
func (t *transfer) run() {
	defer t.s.recoverBackground()
	ctx, cancel := context.WithTimeout(t.g.ctx, t.g.cfg.OTA.Timeout)
	var err error
	if t.v3 {
		err = t.send3(ctx)
	} else {
		err = t.send(ctx)
	}
	cancel()
	if t.fast {
		t.s.mu.Lock()
		t.s.tokens.Release(t.tok)
		t.s.mu.Unlock()
	}
	var ua *unansweredError
	if errors.As(err, &ua) {
		// The device may have taken the binary and rebooted at once: its
		// answer lost with the old session (a reset, a failed write, a
		// takeover by its new session) or on the way. Its next Hello
		// decides, as for an answered UpdateDone.
		t.g.log.Info("gateway: no answer to the end of the update; waiting for the device's next Hello",
			"device", t.s.id, "hash", t.hash, "err", ua.err)
		err = nil
	}
	if err != nil {
		t.end(t.s, err)
		return
	}
	t.awaitReboot()
}

// unansweredError is a transfer that ended without the device's answer to
// UpdateDone (v1) or UpdateFinish (v3): the device may have taken the
// binary, so the outcome is left to its next Hello (awaitReboot).
type unansweredError struct{ err error }

func (e *unansweredError) Error() string {
	return "gateway: end of update unanswered: " + e.err.Error()
}
func (e *unansweredError) Unwrap() error { return e.err }

// end publishes the outcome of the update, once: success when err is nil,
// else failed; s is the device's session to publish with.
func (t *transfer) end(s *session, err error) {
	if !t.g.ota.release(s.id, t) {
		return
	}
	in := time.Since(t.begun).Round(time.Millisecond)
	if err != nil {
		t.g.stats.otaFailed.Add(1)
		t.publish(s, FlashFailed)
		t.g.log.Info("gateway: update failed", "device", s.id, "hash", t.hash, "err", err, "after", in)
		return
	}
	t.g.stats.otaSucceeded.Add(1)
	t.publish(s, FlashSuccess)
	t.g.log.Info("gateway: update succeeded", "device", s.id, "hash", t.hash, "in", in)
}

// send transfers every chunk, then UpdateDone, resending missed chunks
// until the device takes the binary.
func (t *transfer) send(ctx context.Context) error {
	all := make([]uint16, t.n)
	for i := range all {
		all[i] = uint16(i)
	}
	if err := t.sendChunks(ctx, all); err != nil {
		return err
	}
	rounds := t.n/protocol.MaxChunksMissed + t.g.cfg.OTA.MaxRounds
	for round := 0; ; round++ {
		code, result, err := t.updateDone(ctx)
		if err != nil {
			return err
		}
		if code.IsSuccess() {
			t.g.log.Info("gateway: device took the update", "device", t.s.id, "hash", t.hash,
				"rounds", round, "result", string(result), "in", time.Since(t.begun).Round(time.Millisecond))
			return nil
		}
		if code != protocol.CodeBadRequest {
			return fmt.Errorf("gateway: device %s answered UpdateDone with %s", t.s.id, code)
		}
		if round >= rounds {
			return fmt.Errorf("gateway: device %s still misses chunks after %d rounds", t.s.id, round+1)
		}
		missed, err := t.waitMissed(ctx)
		if err != nil {
			return err
		}
		if err := t.sendChunks(ctx, missed); err != nil {
			return err
		}
	}
}

// sendChunks sends the chunks of the given indexes: streamed in fast OTA,
// else each awaiting the device's answer (a bad CRC is resent twice).
func (t *transfer) sendChunks(ctx context.Context, idx []uint16) error {
	var buf []byte
	_, udp := t.s.tr.(*udpConn)
	for _, i := range idx {
		if int(i) >= t.n {
			return fmt.Errorf("gateway: device %s asks for chunk %d of %d", t.s.id, i, t.n)
		}
		if err := ctx.Err(); err != nil {
			return t.ctxErr(ctx, "sending chunks")
		}
		t.g.stats.otaChunks.Add(1)
		buf = protocol.AppendChunkData(buf[:0], t.bin, t.size, int(i))
		c := protocol.Chunk{CRC32: protocol.ChunkCRC(buf), Data: buf}
		if t.fast {
			c.Index, c.HasIndex = i, true
			if err := t.s.sendNew(func(id uint16) protocol.Message {
				m := protocol.NewChunk(id, t.tok, c)
				if udp {
					// Device OS does not acknowledge fast-OTA chunks: a
					// CON would be retransmitted until the device counted
					// as gone. Lost ones are listed as missed instead.
					m.Type = protocol.NonConfirmable
				}
				return m
			}); err != nil {
				return t.s.offline()
			}
			if udp {
				time.Sleep(t.g.cfg.OTA.UDPChunkInterval)
			}
			continue
		}
		if err := t.sendSlow(ctx, c); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

// sendSlow sends one chunk outside fast OTA and waits for ChunkReceived.
func (t *transfer) sendSlow(ctx context.Context, c protocol.Chunk) error {
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, t.g.cfg.OTA.StallTimeout)
		resp, err := t.s.request(cctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
			return protocol.NewChunk(id, tok, c), nil
		})
		cancel()
		switch {
		case err != nil:
			return err
		case resp.Code.IsSuccess():
			return nil
		case try >= 2:
			return fmt.Errorf("gateway: device %s: chunk answered %s", t.s.id, resp.Code)
		}
	}
}

// updateDone sends UpdateDone and returns the code of the device's
// piggy-backed answer and its payload.
func (t *transfer) updateDone(ctx context.Context) (protocol.Code, []byte, error) {
	cctx, cancel := context.WithTimeout(ctx, t.g.cfg.OTA.StallTimeout)
	defer cancel()
	sent := false
	resp, err := t.s.request(cctx, answerPiggyBacked, func(id uint16, tok byte) (protocol.Message, error) {
		sent = true
		return protocol.NewUpdateDone(id, tok), nil
	})
	if err != nil && sent {
		return 0, nil, &unansweredError{err}
	}
	if err != nil {
		return 0, nil, err
	}
	return resp.Code, resp.Payload, nil
}

// waitMissed collects the chunks the device lists as missed after an
// UpdateDone answered 4.00: the lists already received and, if none, the
// next one.
func (t *transfer) waitMissed(ctx context.Context) ([]uint16, error) {
	seen := map[uint16]bool{}
	var out []uint16
	add := func(l []uint16) {
		for _, i := range l {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	for {
		select {
		case l := <-t.missed:
			add(l)
			continue
		default:
		}
		if len(out) > 0 {
			return out, nil
		}
		timer := time.NewTimer(t.g.cfg.OTA.StallTimeout)
		select {
		case l := <-t.missed:
			timer.Stop()
			add(l)
		case <-t.s.done:
			timer.Stop()
			return nil, t.s.offline()
		case <-ctx.Done():
			timer.Stop()
			return nil, t.ctxErr(ctx, "waiting for missed chunks")
		case <-timer.C:
			return nil, fmt.Errorf("gateway: device %s: no missed-chunk list after UpdateDone: %w", t.s.id, bus.ErrTimeout)
		}
	}
}

func (t *transfer) ctxErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("gateway: device %s: %s: %w", t.s.id, what, bus.ErrTimeout)
	}
	return fmt.Errorf("gateway: device %s: %s: %w", t.s.id, what, ctx.Err())
}

// awaitReboot waits, up to RebootTimeout, for the device to come back.
func (t *transfer) awaitReboot() {
	o := &t.g.ota
	o.mu.Lock()
	if t.done {
		o.mu.Unlock()
		return
	}
	if back := t.back; back != nil {
		// The device was quicker than this goroutine.
		o.mu.Unlock()
		t.cameBack(back)
		return
	}
	t.rebooting = true
	t.timer = time.AfterFunc(t.g.cfg.OTA.RebootTimeout, t.rebootTimedOut)
	o.mu.Unlock()
}

// rebootTimedOut fails the update of a device that did not come back to
// this process in time, unless the store shows that it came back through
// another one, which reported the success (otaElsewhere).
func (t *transfer) rebootTimedOut() {
	if df := t.g.storedUpdate(t.s.id); df != nil && df.Hash == t.hash && df.Status == store.OTASuccess &&
		df.FinishedAt != nil && !df.FinishedAt.Before(t.begun) {
		if t.g.ota.release(t.s.id, t) {
			t.g.log.Info("gateway: device came back with the update through another process", "device", t.s.id,
				"hash", t.hash)
		}
		return
	}
	t.end(t.s, fmt.Errorf("gateway: device did not come back within %s", t.g.cfg.OTA.RebootTimeout))
}

// storedUpdate returns the device's update as the store records it (the
// firmware service writes it), or nil.
func (g *Gateway) storedUpdate(deviceID string) *store.DeviceFirmware {
	ctx, cancel := context.WithTimeout(g.ctx, storeTimeout)
	defer cancel()
	df, err := g.store.DeviceFirmware(ctx, deviceID)
	if err != nil {
		return nil
	}
	return df
}

// lateReturn is how long after its update was reported failed a device
// coming back with "previous OTA succeeded" still has that update
// published as a success (otaElsewhere): it took the binary, but its
// reboot and reconnection outlasted OTAConfig.RebootTimeout.
const lateReturn = 30 * time.Minute

// otaElsewhere handles a device that comes back with "previous OTA
// succeeded" and no update of it in this process, by the store's record
// of its latest update (the firmware service writes it):
//
//   - started: another process sent it (the device reconnected through
//     this one after its reboot); the success is published here, and that
//     process finds it recorded at its reboot timeout and stays silent;
//   - failed within lateReturn: the device came back after the reboot wait
//     (of this process or another) had published "failed ", running the
//     update; the success is published now and corrects the record
//     (firmware.Service.Outcome).
//
// The flag is the device's word that the last update it was sent took, and
// Device OS sends it in the first Hello after that update only.
func (s *session) otaElsewhere() {
	df := s.g.storedUpdate(s.id)
	if df == nil || df.Hash == "" {
		return
	}
	how := "sent by another process"
	switch {
	case df.Status == store.OTAStarted:
	case df.Status == store.OTAFailed && df.FinishedAt != nil && time.Since(*df.FinishedAt) < lateReturn:
		how = "back after the reboot wait"
	default:
		return
	}
	t := &transfer{g: s.g, s: s, hash: df.Hash}
	s.g.stats.otaSucceeded.Add(1)
	t.publish(s, FlashSuccess)
	s.g.log.Info("gateway: update succeeded ("+how+")", "device", s.id, "hash", df.Hash)
}

// otaHello notes a Hello with "previous OTA succeeded" from a device whose
// update this process runs, as soon as it is read and before it is
// answered: the device counts the flag as delivered once its Hello is
// answered and sends it no more, so should this session fail before it is
// online (a store error), the device's next session comes back without it
// and cameBack still knows.
func (s *session) otaHello() {
	if s.hello.Flags&protocol.HelloOTASucceeded == 0 {
		return
	}
	s.g.ota.mu.Lock()
	if t := s.g.ota.byID[s.id]; t != nil && t.s != s {
		t.flagged = true
	}
	s.g.ota.mu.Unlock()
}

// cameBack decides the update by the Hello of the device's new session,
// or an earlier Hello of the device with the flag (otaHello).
func (t *transfer) cameBack(s *session) {
	t.g.ota.mu.Lock()
	flagged := t.flagged
	t.g.ota.mu.Unlock()
	if s.hello.Flags&protocol.HelloOTASucceeded == 0 && !flagged {
		t.end(s, errors.New("gateway: the device came back without the new firmware"))
		return
	}
	t.end(s, nil)
}

// otaOnline is called when a session of the device comes online: a device
// that was rebooting into an update reports with HelloOTASucceeded whether
// it runs the new firmware.
func (s *session) otaOnline() {
	g := s.g
	g.ota.mu.Lock()
	t := g.ota.byID[s.id]
	if t == nil {
		g.ota.mu.Unlock()
		if s.hello.Flags&protocol.HelloOTASucceeded != 0 {
			s.otaElsewhere()
		}
		return
	}
	if t.s == s {
		g.ota.mu.Unlock()
		return
	}
	if !t.rebooting {
		// Still sending (the old session's end fails the transfer, unless
		// it was waiting for the answer to UpdateDone: see run), or just
		// done sending: awaitReboot looks here.
		t.back = s
		g.ota.mu.Unlock()
		return
	}
	g.ota.mu.Unlock()
	t.cameBack(s)
}

// handleChunkMissed takes the device's list of missed chunks (GET c) for
// the update this session runs.
func (s *session) handleChunkMissed(m *protocol.Message) {
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	idx, err := protocol.ParseChunkMissed(m)
	if err != nil {
		s.g.stats.messagesBad.Add(1)
		return
	}
	s.g.ota.mu.Lock()
	t := s.g.ota.byID[s.id]
	s.g.ota.mu.Unlock()
	if t == nil || t.s != s {
		return
	}
	select {
	case t.missed <- idx:
	default: // the device lists them again after the next UpdateDone
	}
}

// handleUpdateResult takes a device's own PUT u (its update result, sent
// by some firmware instead of a piggy-backed answer): it is acknowledged
// and logged; the Hello after the reboot decides the outcome.
func (s *session) handleUpdateResult(m *protocol.Message) {
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	s.g.log.Info("gateway: device update result", "device", s.id, "result", string(m.Payload))
}
