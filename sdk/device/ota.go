package device

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// OTAMode is how a device answers a firmware update (Config.OTA).
type OTAMode uint8

// OTA modes.
const (
	// OTAAccept takes the update, then reboots into it: the device
	// reconnects with the "previous OTA succeeded" Hello flag and the new
	// product version.
	OTAAccept OTAMode = iota
	// OTARefuse answers UpdateBegin with 5.03, as a device whose updates
	// are disabled does.
	OTARefuse
	// OTADrop drops the connection in the middle of the transfer
	// (OTAOptions.DropAfter), as a device losing its network does.
	OTADrop
)

// String returns "accept", "refuse" or "drop".
func (m OTAMode) String() string {
	switch m {
	case OTARefuse:
		return "refuse"
	case OTADrop:
		return "drop"
	}
	return "accept"
}

// ParseOTAMode parses "accept", "refuse" or "drop" ("" is accept).
func ParseOTAMode(s string) (OTAMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "accept":
		return OTAAccept, nil
	case "refuse":
		return OTARefuse, nil
	case "drop":
		return OTADrop, nil
	}
	return 0, fmt.Errorf("%w: OTA mode %q (want accept, refuse or drop)", ErrConfig, s)
}

// OTAOptions are how a Device takes firmware updates over the air (OTA
// v1, docs/device-protocol.md "The device side"). The zero value accepts every update,
// with fast OTA, as Device OS does.
type OTAOptions struct {
	// Mode accepts, refuses or drops updates.
	Mode OTAMode
	// DropAfter is the number of chunks after which OTADrop closes the
	// connection; zero means half the binary.
	DropAfter int
	// ChunkDelay is a pause before each chunk is handled (a slow flash):
	// the device reads nothing meanwhile.
	ChunkDelay time.Duration
	// LoseEvery loses every n-th chunk the first time it arrives (as if
	// the network dropped it), so that the server must resend it after
	// the device lists it as missed; zero loses none. Outside fast OTA a
	// lost chunk is answered as a bad CRC.
	LoseEvery int
	// NoFast refuses fast OTA: every chunk is answered.
	NoFast bool
	// MaxBinarySize is the largest binary the device takes, announced in
	// its Hello; zero means 128 KB (a Photon's user part).
	MaxBinarySize uint32
	// V3 makes the device speak OTA v3 instead of v1 (Hello flag 0x80), as
	// Device OS does on Gen 3 platforms: a windowed transfer that resumes
	// where an interrupted one stopped.
	V3 bool
	// Version is the product firmware version the device reports after
	// rebooting into an update; zero means the version VersionOf reads
	// from the binary, or else the version it had.
	Version uint16
	// VersionOf, if set, reads the product version from a binary (ok
	// false when the binary has none).
	VersionOf func(bin []byte) (version uint16, ok bool)
	// OnUpdate, if set, receives every binary the device took, before it
	// reboots. It runs on the connection's goroutine and must not block.
	OnUpdate func(bin []byte)
}

// otaDevice is a Device's OTA state across connections, guarded by its mu.
type otaDevice struct {
	succeeded bool        // the next Hello says "previous OTA succeeded"
	version   uint16      // product version after an update; 0: Config.ProductVersion
	updates   int         // updates taken
	partial   *otaPartial // OTA v3: an interrupted transfer, to resume
}

// ErrRebooting ends a connection when the device reboots into an update
// it took; Run reconnects after the usual backoff.
var ErrRebooting = errors.New("device: rebooting into a firmware update")

// otaRecv is an update in progress on one connection (reading goroutine
// only).
type otaRecv struct {
	size     int // chunk size
	fileSize int
	fast     bool
	n        int    // chunks
	data     []byte // n × size
	got      []bool
	next     int // outside fast OTA the device counts chunks itself
	arrived  int // chunk messages, for LoseEvery and DropAfter
	lost     map[int]bool
}

// OTAUpdates returns how many updates the device took since New.
func (d *Device) OTAUpdates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ota.updates
}

// ProductVersion returns the product firmware version the device reports
// in its Hello (0xFFFF: undefined); a taken update changes it.
func (d *Device) ProductVersion() uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ota.version != 0 {
		return d.ota.version
	}
	return d.cfg.ProductVersion
}

// helloOTA sets the OTA fields of the device's Hello: the "previous OTA
// succeeded" flag (after an update was taken, until the server's Hello),
// the product version and the largest binary the device takes.
func (d *Device) helloOTA(h *protocol.Hello) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ota.version != 0 {
		h.ProductVersion = d.ota.version
	}
	if d.ota.succeeded {
		h.Flags |= protocol.HelloOTASucceeded
	}
	if d.cfg.OTA.V3 {
		h.Flags |= protocol.HelloOTAv3
	}
	h.MaxBinarySize = d.maxBinarySize()
}

// maxBinarySize returns OTAOptions.MaxBinarySize or its default.
func (d *Device) maxBinarySize() uint32 {
	if d.cfg.OTA.MaxBinarySize > 0 {
		return d.cfg.OTA.MaxBinarySize
	}
	return userMaxSize
}

// otaHelloAnswered clears the "previous OTA succeeded" flag once the
// server answered the Hello that carried it.
func (d *Device) otaHelloAnswered() {
	d.mu.Lock()
	d.ota.succeeded = false
	d.mu.Unlock()
}

// handleOTA plays Device OS's chunked transfer (OTA v1): the device side
// of protocol/ota.go. Errors end the connection.
func (s *session) handleOTA(m *protocol.Message) error {
	k := protocol.Classify(m)
	if v3 := k == protocol.KindUpdateStart || k == protocol.KindUpdateChunk || k == protocol.KindUpdateFinish; v3 != s.d.cfg.OTA.V3 {
		// Device OS builds one of the two protocols.
		if m.Type == protocol.Confirmable {
			return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeServiceUnavailable, nil))
		}
		return nil
	}
	switch k {
	case protocol.KindUpdateStart:
		return s.ota3Start(m)
	case protocol.KindUpdateChunk:
		return s.ota3Chunk(m)
	case protocol.KindUpdateFinish:
		return s.ota3Finish(m)
	case protocol.KindUpdateBegin:
		return s.otaBegin(m)
	case protocol.KindChunk:
		return s.otaChunk(m)
	case protocol.KindUpdateDone:
		return s.otaDone(m)
	}
	return nil
}

func (s *session) otaBegin(m *protocol.Message) error {
	opts := &s.d.cfg.OTA
	tok, hasTok := m.Token1()
	u, ok, err := protocol.ParseUpdateBegin(m)
	if err != nil || !ok || !hasTok || u.ChunkSize == 0 || u.FileSize == 0 ||
		protocol.ChunkCount(int(u.FileSize), int(u.ChunkSize)) >= protocol.MaxOTAChunks ||
		u.FileSize > s.d.maxBinarySize() || opts.Mode == OTARefuse || u.Destination != 0 {
		s.ota = nil
		return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeServiceUnavailable, nil))
	}
	n := protocol.ChunkCount(int(u.FileSize), int(u.ChunkSize))
	s.ota = &otaRecv{size: int(u.ChunkSize), fileSize: int(u.FileSize), fast: u.Fast && !opts.NoFast, n: n,
		data: make([]byte, n*int(u.ChunkSize)), got: make([]bool, n), lost: map[int]bool{}}
	s.d.cfg.Logger.Info("device: update begins", "device", s.d.ID(), "bytes", u.FileSize, "chunk", u.ChunkSize,
		"fast", s.ota.fast)
	r := protocol.NewUpdateReady(s.transport().DefaultType(), 0, tok, s.ota.fast)
	return s.sendSeparate(m.ID, &r)
}

func (s *session) otaChunk(m *protocol.Message) error {
	o, opts := s.ota, &s.d.cfg.OTA
	if o == nil {
		return nil // Device OS ignores a chunk outside an update
	}
	c, err := protocol.ParseChunk(m)
	if err != nil {
		return nil
	}
	if opts.ChunkDelay > 0 {
		time.Sleep(opts.ChunkDelay)
	}
	o.arrived++
	if opts.Mode == OTADrop {
		after := opts.DropAfter
		if after <= 0 {
			after = max(o.n/2, 1)
		}
		if o.arrived > after {
			s.ota = nil
			s.closeConn()
			return fmt.Errorf("device: dropped the connection after %d chunks (OTA drop mode)", after)
		}
	}
	idx := o.next
	if c.HasIndex {
		idx = int(c.Index)
	}
	good := idx < o.n && len(c.Data) <= o.size && protocol.ChunkCRC(c.Data) == c.CRC32
	if opts.LoseEvery > 0 && o.arrived%opts.LoseEvery == 0 && !o.lost[idx] {
		o.lost[idx] = true
		if c.HasIndex {
			return nil // lost on the way: fast OTA lists it after UpdateDone
		}
		good = false
	}
	if good {
		copy(o.data[idx*o.size:(idx+1)*o.size], c.Data)
		o.got[idx] = true
	}
	if c.HasIndex {
		return nil // fast OTA: no answer
	}
	tok, _ := m.Token1()
	if good {
		o.next++
	}
	r := protocol.NewChunkReceived(s.transport().DefaultType(), 0, tok, good)
	return s.sendSeparate(m.ID, &r)
}

func (s *session) otaDone(m *protocol.Message) error {
	o := s.ota
	if o == nil {
		return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeBadRequest, nil))
	}
	var missing []uint16
	for i, ok := range o.got {
		if !ok && len(missing) < protocol.MaxChunksMissed {
			missing = append(missing, uint16(i))
		}
	}
	if len(missing) > 0 {
		if err := s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeBadRequest, nil)); err != nil {
			return err
		}
		cm := protocol.NewChunkMissed(0, missing...)
		cm.Type = s.transport().DefaultType()
		return s.send(&cm, true, nil)
	}
	if err := s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeChanged, nil)); err != nil {
		return err
	}
	bin := o.data[:o.fileSize]
	s.ota = nil
	return s.otaTaken(bin)
}

// otaTaken records an update the device took and ends the connection to
// "reboot" into it.
func (s *session) otaTaken(bin []byte) error {
	d, opts := s.d, &s.d.cfg.OTA
	v := opts.Version
	if v == 0 && opts.VersionOf != nil {
		if pv, ok := opts.VersionOf(bin); ok {
			v = pv
		}
	}
	d.mu.Lock()
	d.ota.succeeded = true
	d.ota.updates++
	if v != 0 {
		d.ota.version = v
	}
	d.mu.Unlock()
	if opts.OnUpdate != nil {
		opts.OnUpdate(bin)
	}
	d.cfg.Logger.Info("device: update taken, rebooting", "device", d.ID(), "bytes", len(bin), "version", v)
	s.closeConn()
	return ErrRebooting
}
