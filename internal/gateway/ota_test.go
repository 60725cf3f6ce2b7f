package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// memFirmware is a FirmwareSource in memory.
type memFirmware struct {
	mu   sync.Mutex
	bins map[string][]byte
}

func (m *memFirmware) put(b []byte) string {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bins == nil {
		m.bins = map[string][]byte{}
	}
	m.bins[h] = b
	return h
}

func (m *memFirmware) FirmwareBinary(_ context.Context, h string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.bins[h]; ok {
		return b, nil
	}
	return nil, store.ErrNotFound
}

// testBinary returns n bytes of a recognisable pattern.
func testBinary(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// otaTestConfig has short OTA timeouts.
func otaTestConfig() Config {
	cfg := testConfig()
	cfg.OTA = OTAConfig{StallTimeout: time.Second, RebootTimeout: 2 * time.Second}
	return cfg
}

// otaWorld is a world whose gateway loads binaries from memory.
func otaWorld(t testing.TB, cfg Config) (*world, *memFirmware) {
	w := newWorld(t, cfg)
	fw := &memFirmware{}
	w.g.ota.source = fw
	return w, fw
}

// otaDevice plays Device OS's chunked transfer on a testDevice, answering
// from its inbox in a goroutine.
type otaDevice struct {
	d *testDevice

	refuse   bool            // answer UpdateBegin with 5.03
	slow     bool            // refuse fast OTA
	lose     map[uint16]bool // chunk indexes lost on their first sending
	badCRC   map[uint16]bool // slow mode: answer 4.00 the first time
	dropAt   int             // close the connection when this many chunks arrived (0: never)
	noAnswer bool            // never answer UpdateDone
	muteAt   int             // slow mode: answer no chunk from this many on (0: always answer)
	// takeSilently takes a complete image at UpdateDone without answering
	// it: the answer lost on the way, or with the connection when close
	// is set (the device rebooted at once).
	takeSilently bool
	close        bool
	got          map[uint16][]byte // chunks received, by index
	size         int               // chunk size from UpdateBegin
	fileSize     int
	dones        int // UpdateDones received
	chunks       int // chunk messages received
	result       chan []byte
}

func (o *otaDevice) run(t *testing.T) {
	o.got = map[uint16][]byte{}
	o.result = make(chan []byte, 1)
	d := o.d
	var next uint16 // slow mode: the device counts chunks itself
	go func() {
		for {
			var msg devMsg
			select {
			case msg = <-d.in:
			case <-d.done:
				return
			}
			m := &msg.m
			tok, _ := m.Token1()
			switch msg.kind() {
			case protocol.KindUpdateBegin:
				u, _, err := protocol.ParseUpdateBegin(m)
				if err != nil || len(m.Token) != 1 {
					t.Errorf("device: bad UpdateBegin % x: %v", msg.raw, err)
				}
				if o.refuse {
					d.send(protocol.NewACK(m.ID, m.Token, protocol.CodeServiceUnavailable, nil))
					continue
				}
				o.size, o.fileSize = int(u.ChunkSize), int(u.FileSize)
				d.send(protocol.NewEmptyACK(m.ID))
				d.send(protocol.NewUpdateReady(protocol.NonConfirmable, d.nextID(), tok, u.Fast && !o.slow))
			case protocol.KindChunk:
				o.chunks++
				if o.dropAt > 0 && o.chunks >= o.dropAt {
					d.conn.Close()
					return
				}
				c, err := protocol.ParseChunk(m)
				if err != nil {
					t.Errorf("device: bad chunk: %v", err)
					continue
				}
				idx := c.Index
				if !c.HasIndex {
					idx = next
				}
				if o.lose[idx] {
					delete(o.lose, idx)
					continue // lost on the way
				}
				good := protocol.ChunkCRC(c.Data) == c.CRC32 && len(c.Data) == o.size
				if o.muteAt > 0 && o.chunks >= o.muteAt {
					continue
				}
				if !c.HasIndex {
					d.send(protocol.NewEmptyACK(m.ID))
					if o.badCRC[idx] {
						delete(o.badCRC, idx)
						good = false
					}
					d.send(protocol.NewChunkReceived(protocol.NonConfirmable, d.nextID(), tok, good))
					if good {
						next++
					}
				}
				if good {
					o.got[idx] = c.Data
				}
			case protocol.KindUpdateDone:
				o.dones++
				if o.noAnswer {
					continue
				}
				var missing []uint16
				for i := range protocol.ChunkCount(o.fileSize, o.size) {
					if o.got[uint16(i)] == nil && len(missing) < protocol.MaxChunksMissed {
						missing = append(missing, uint16(i))
					}
				}
				if len(missing) > 0 {
					d.send(protocol.NewACK(m.ID, m.Token, protocol.CodeBadRequest, nil))
					cm := protocol.NewChunkMissed(d.nextID(), missing...)
					cm.Type = protocol.NonConfirmable
					d.send(cm)
					continue
				}
				if !o.takeSilently {
					d.send(protocol.NewACK(m.ID, m.Token, protocol.CodeChanged, nil))
				} else if o.close {
					d.conn.Close()
				}
				var img []byte
				for i := range protocol.ChunkCount(o.fileSize, o.size) {
					img = append(img, o.got[uint16(i)]...)
				}
				o.result <- img[:o.fileSize]
				return
			}
		}
	}()
}

// image waits for the binary the device assembled.
func (o *otaDevice) image(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-o.result:
		return b
	case <-time.After(waitTime):
		t.Fatal("device: no complete image")
		return nil
	}
}

// flashStatus returns the data of the next spark/flash/status event.
func flashStatus(t *testing.T, sub *bus.Subscription) string {
	t.Helper()
	return nextEvent(t, sub, EventFlashStatus).Data
}

// reboot reconnects the device as after an update, with or without the
// "previous OTA succeeded" flag.
func (w *world) reboot(d *testDevice, ok bool) *testDevice {
	w.t.Helper()
	d.conn.Close()
	waitFor(w.t, "old session gone", func() bool { return !w.g.Online(d.id.String()) })
	var flags protocol.HelloFlags
	if ok {
		flags = protocol.HelloOTASucceeded
	}
	return w.online(d.id, testKey(w.t, "device_a"), flags)
}

func TestFlashFastWithLostChunks(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(1)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String()})
	bin := testBinary(100*512 + 77) // 101 chunks, the last one short
	h := fw.put(bin)
	// 45 lost chunks take two ChunkMissed rounds (at most 40 listed per round).
	lose := map[uint16]bool{}
	for i := uint16(3); i < 93; i += 2 {
		lose[i] = true
	}
	o := &otaDevice{d: d, lose: lose}
	o.run(t)
	if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if got := flashStatus(t, sub); got != FlashStarted {
		t.Fatalf("first status %q", got)
	}
	if img := o.image(t); !bytes.Equal(img, bin) {
		t.Fatalf("device assembled %d bytes that differ from the binary", len(img))
	}
	if o.dones != 3 {
		t.Errorf("UpdateDone sent %d times, want 3 (two rounds of resends)", o.dones)
	}
	if !w.g.Updating(id.String()) {
		t.Fatal("update forgotten before the device came back")
	}
	w.reboot(d, true)
	if got := flashStatus(t, sub); got != FlashSuccess {
		t.Fatalf("status after reboot %q, want %q", got, FlashSuccess)
	}
	waitFor(t, "update slot free", func() bool { return !w.g.Updating(id.String()) })
	// 101 chunks and the 45 lost ones again.
	if st := w.g.Stats(); st.OTAStarted != 1 || st.OTASucceeded != 1 || st.OTAFailed != 0 || st.OTAChunks != 146 {
		t.Fatalf("stats: started %d, succeeded %d, failed %d, chunks %d", st.OTAStarted, st.OTASucceeded, st.OTAFailed, st.OTAChunks)
	}
}

func TestFlashSlowWithBadCRC(t *testing.T) {
	cfg := otaTestConfig()
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("disable_fast=%v", disable), func(t *testing.T) {
			cfg.OTA.DisableFast = disable
			w, fw := otaWorld(t, cfg)
			id := deviceID(2)
			w.provision(id, testKey(t, "device_a"), owner1)
			d := w.online(id, testKey(t, "device_a"), 0)
			bin := testBinary(10*512 + 1)
			h := fw.put(bin)
			// The device refuses fast OTA in one case, the server does not
			// offer it in the other.
			o := &otaDevice{d: d, slow: !disable, badCRC: map[uint16]bool{4: true}}
			o.run(t)
			if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
				t.Fatalf("Flash: %v", err)
			}
			if img := o.image(t); !bytes.Equal(img, bin) {
				t.Fatal("image differs")
			}
			for _, m := range d.logged(protocol.KindChunk) {
				if c, _ := protocol.ParseChunk(&m.m); c.HasIndex {
					t.Fatal("chunk with an index outside fast OTA")
				}
			}
			if n := len(d.logged(protocol.KindChunk)); n != 12 {
				t.Errorf("%d chunks sent, want 11 and one resend", n)
			}
		})
	}
}

func TestFlashRefused(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(3)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String()})
	o := &otaDevice{d: d, refuse: true}
	o.run(t)
	err := w.g.Flash(context.Background(), id.String(), fw.put(testBinary(3000)))
	if !errors.Is(err, ErrUpdateRefused) {
		t.Fatalf("Flash = %v, want ErrUpdateRefused", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("statuses %q, %q", a, b)
	}
	if w.g.Updating(id.String()) {
		t.Fatal("refused update still holds the slot")
	}
	if st := w.g.Stats(); st.OTAStarted != 1 || st.OTAFailed != 1 || st.OTAChunks != 0 {
		t.Fatalf("stats: started %d, failed %d, chunks %d", st.OTAStarted, st.OTAFailed, st.OTAChunks)
	}
}

func TestFlashRequestErrors(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(4)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.dial(id, testKey(t, "device_a"))
	h := helloPayload(0)
	h.MaxBinarySize = 4096
	d.hello(h)
	waitFor(t, "online", func() bool { return w.g.Online(id.String()) })
	ctx := context.Background()
	for _, c := range []struct {
		name string
		hash string
		want error
	}{
		{"not hex", "xyz", ErrBadRequest},
		{"short hash", "abcd", ErrBadRequest},
		{"unknown", fw.put(nil)[:0] + hex.EncodeToString(make([]byte, 32)), ErrNotFound},
		{"empty binary", fw.put([]byte{}), ErrBadRequest},
		{"larger than the device takes", fw.put(testBinary(4097)), ErrBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := w.g.Flash(ctx, id.String(), c.hash); !errors.Is(err, c.want) {
				t.Fatalf("Flash = %v, want %v", err, c.want)
			}
			if w.g.Updating(id.String()) {
				t.Fatal("failed Flash holds the slot")
			}
		})
	}
	if err := w.g.Flash(ctx, deviceID(99).String(), fw.put(testBinary(10))); !errors.Is(err, bus.ErrDeviceOffline) {
		t.Fatalf("Flash of an offline device = %v", err)
	}
	if len(d.logged(protocol.KindUpdateBegin)) != 0 {
		t.Fatal("UpdateBegin sent for a refused request")
	}
}

func TestFlashDisconnectThenRestart(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(5)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String()})
	bin := testBinary(20 * 512)
	h := fw.put(bin)
	o := &otaDevice{d: d, dropAt: 6}
	o.run(t)
	if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("statuses %q, %q", a, b)
	}
	waitFor(t, "slot free", func() bool { return !w.g.Updating(id.String()) })
	// The device comes back (without the flag: it never rebooted into the
	// update) and the next flash starts from the beginning.
	d2 := w.online(id, testKey(t, "device_a"), 0)
	o2 := &otaDevice{d: d2}
	o2.run(t)
	if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
		t.Fatalf("second Flash: %v", err)
	}
	if img := o2.image(t); !bytes.Equal(img, bin) {
		t.Fatal("image differs")
	}
	w.reboot(d2, true)
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
		t.Fatalf("statuses of the second update %q, %q", a, b)
	}
}

func TestFlashStalls(t *testing.T) {
	cfg := otaTestConfig()
	cfg.OTA.StallTimeout = 300 * time.Millisecond
	w, fw := otaWorld(t, cfg)
	id := deviceID(6)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String()})
	// The device stops answering chunks half way (an unanswered
	// UpdateDone is another case: TestFlashEndUnanswered).
	o := &otaDevice{d: d, slow: true, muteAt: 3}
	o.run(t)
	start := time.Now()
	if err := w.g.Flash(context.Background(), id.String(), fw.put(testBinary(3000))); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("statuses %q, %q", a, b)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 3*time.Second {
		t.Fatalf("stalled update failed after %s, want about the 300 ms stall timeout", el)
	}
	if !w.g.Online(id.String()) {
		t.Fatal("a stalled update ended the session")
	}
}

func TestFlashConcurrentRefused(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(7)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	g2 := w.newGateway(testConfig()) // another node on the same bus
	o := &otaDevice{d: d, noAnswer: true}
	o.run(t)
	h := fw.put(testBinary(2000))
	if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if err := w.g.Flash(context.Background(), id.String(), h); !errors.Is(err, ErrUpdateInProgress) {
		t.Fatalf("second local Flash = %v, want ErrUpdateInProgress", err)
	}
	if err := g2.Flash(context.Background(), id.String(), h); !errors.Is(err, ErrUpdateInProgress) {
		t.Fatalf("Flash over the bus = %v, want ErrUpdateInProgress", err)
	}
}

func TestFlashOverBus(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	id := deviceID(8)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	g2 := w.newGateway(testConfig())
	bin := testBinary(3000)
	o := &otaDevice{d: d}
	o.run(t)
	if err := g2.Flash(context.Background(), id.String(), fw.put(bin)); err != nil {
		t.Fatalf("Flash over the bus: %v", err)
	}
	if img := o.image(t); !bytes.Equal(img, bin) {
		t.Fatal("image differs")
	}
	refusing := &otaDevice{d: w.reboot(d, true), refuse: true}
	refusing.run(t)
	waitFor(t, "first update over", func() bool { return !w.g.Updating(id.String()) })
	if err := g2.Flash(context.Background(), id.String(), fw.put(bin)); !errors.Is(err, ErrUpdateRefused) {
		t.Fatalf("refused Flash over the bus = %v", err)
	}
}

func TestFlashRebootOutcomes(t *testing.T) {
	for _, c := range []struct {
		name   string
		back   bool // the device reconnects
		flag   bool // with HelloOTASucceeded
		status string
	}{
		{"back with the flag", true, true, FlashSuccess},
		{"back without the flag", true, false, FlashFailed},
		{"never back", false, false, FlashFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := otaTestConfig()
			cfg.OTA.RebootTimeout = 500 * time.Millisecond
			w, fw := otaWorld(t, cfg)
			id := deviceID(9)
			w.provision(id, testKey(t, "device_a"), owner1)
			d := w.online(id, testKey(t, "device_a"), 0)
			sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
			o := &otaDevice{d: d}
			o.run(t)
			if err := w.g.Flash(context.Background(), id.String(), fw.put(testBinary(1500))); err != nil {
				t.Fatal(err)
			}
			o.image(t)
			if c.back {
				w.reboot(d, c.flag)
			} else {
				d.conn.Close()
			}
			if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != c.status {
				t.Fatalf("statuses %q, %q; want %q last", a, b, c.status)
			}
			waitFor(t, "slot free", func() bool { return !w.g.Updating(id.String()) })
		})
	}
}

// TestFlashRebootLate: a device that takes the update but comes back only
// after the reboot wait (a reconnection storm can take minutes) has it
// published as failed at the timeout, and then, back with "previous OTA
// succeeded" while the store records that update as failed, as a success.
// Coming back late without the flag, or long after, publishes nothing.
func TestFlashRebootLate(t *testing.T) {
	for _, c := range []struct {
		name     string
		flag     bool
		finished time.Duration // how long ago the failure is recorded
		want     string        // "" none
	}{
		{"with the flag", true, 0, FlashSuccess},
		{"without the flag", false, 0, ""},
		{"with the flag, long after", true, lateReturn + time.Minute, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := otaTestConfig()
			cfg.OTA.RebootTimeout = 200 * time.Millisecond
			w, fw := otaWorld(t, cfg)
			id := deviceID(13)
			w.provision(id, testKey(t, "device_a"), owner1)
			d := w.online(id, testKey(t, "device_a"), 0)
			sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
			ctx := context.Background()
			h := fw.put(testBinary(2500))
			// As the firmware service records it.
			if err := w.st.StartDeviceOTA(ctx, id.String(), store.DeviceOTA{Hash: h}); err != nil {
				t.Fatal(err)
			}
			o := &otaDevice{d: d}
			o.run(t)
			if err := w.g.Flash(ctx, id.String(), h); err != nil {
				t.Fatal(err)
			}
			o.image(t)
			d.conn.Close()
			if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
				t.Fatalf("statuses %q, %q", a, b)
			}
			if _, err := w.st.FinishDeviceOTA(ctx, id.String(), h, "the device reported a failed update",
				time.Now().Add(-c.finished)); err != nil {
				t.Fatal(err)
			}
			var flags protocol.HelloFlags
			if c.flag {
				flags = protocol.HelloOTASucceeded
			}
			w.online(id, testKey(t, "device_a"), flags)
			if c.want != "" {
				if got := flashStatus(t, sub); got != c.want {
					t.Fatalf("late status %q, want %q", got, c.want)
				}
				return
			}
			select {
			case e := <-sub.Events():
				t.Fatalf("unexpected %q", e.Data)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// onlineFailer is a store whose device reads and online writes fail
// while fail is set (armed after a device's handshake, it fails the
// session's way online).
type onlineFailer struct {
	store.Store
	fail atomic.Bool
}

var errInjected = errors.New("store: injected failure")

func (f *onlineFailer) SetDeviceOnline(ctx context.Context, id string, s store.DeviceSession) (*store.Device, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Store.SetDeviceOnline(ctx, id, s)
}

func (f *onlineFailer) DeviceByID(ctx context.Context, id string) (*store.Device, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Store.DeviceByID(ctx, id)
}

// TestFlashFlagBeforeStoreError: the device reboots into the update and
// its Hello with "previous OTA succeeded" is answered, but its session
// fails before it is online (the store fails). The device counts the flag
// as delivered and comes back without it; the update is still a success.
func TestFlashFlagBeforeStoreError(t *testing.T) {
	w, fw := otaWorld(t, otaTestConfig())
	failer := &onlineFailer{Store: w.st}
	g, err := New(otaTestConfig(), Deps{Store: failer, Bus: w.b, ServerKey: testServerKey(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.ota.source = fw
	w.g = g // the harness's devices connect to this gateway from here on
	w.g.cfg.OTA.RebootTimeout = time.Minute
	id := deviceID(14)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
	o := &otaDevice{d: d}
	o.run(t)
	if err := g.Flash(context.Background(), id.String(), fw.put(testBinary(2500))); err != nil {
		t.Fatal(err)
	}
	o.image(t)
	d.conn.Close()
	waitFor(t, "old session gone", func() bool { return !g.Online(id.String()) })
	d2 := w.dial(id, testKey(t, "device_a"))
	failer.fail.Store(true) // after the handshake, before the Hello
	d2.hello(helloPayload(protocol.HelloOTASucceeded))
	d2.waitClosed() // the store failed: no session
	failer.fail.Store(false)
	w.online(id, testKey(t, "device_a"), 0) // the flag is spent
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
		t.Fatalf("statuses %q, %q", a, b)
	}
}

// TestFlashRebootThroughAnotherNode: the device reboots into the update
// and comes back through another gateway process. That one publishes the
// success (the store shows the update started, as the firmware service
// records it); the first, finding the success recorded at its reboot
// timeout, publishes no failure.
func TestFlashRebootThroughAnotherNode(t *testing.T) {
	cfg := otaTestConfig()
	cfg.OTA.RebootTimeout = 300 * time.Millisecond
	w, fw := otaWorld(t, cfg)
	cfg2 := cfg
	cfg2.Node = "node-2"
	g2 := w.newGateway(cfg2)
	id := deviceID(10)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), 0)
	sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
	ctx := context.Background()
	bin := testBinary(3000)
	h := fw.put(bin)
	if err := w.st.StartDeviceOTA(ctx, id.String(), store.DeviceOTA{Hash: h}); err != nil {
		t.Fatal(err)
	}
	o := &otaDevice{d: d}
	o.run(t)
	if err := w.g.Flash(ctx, id.String(), h); err != nil {
		t.Fatal(err)
	}
	o.image(t)
	d.conn.Close()
	waitFor(t, "old session gone", func() bool { return !w.g.Online(id.String()) })
	client, server := net.Pipe()
	go g2.ServeConn(ctx, server)
	d2, err := startDevice(t, client, id, testKey(t, "device_a"), &testKey(t, "server").PublicKey, 64)
	if err != nil {
		t.Fatal(err)
	}
	d2.hello(helloPayload(protocol.HelloOTASucceeded))
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashSuccess {
		t.Fatalf("statuses %q, %q", a, b)
	}
	// The firmware service records the outcome it saw.
	if _, err := w.st.FinishDeviceOTA(ctx, id.String(), h, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first node's slot free", func() bool { return !w.g.Updating(id.String()) })
	select {
	case e := <-sub.Events():
		t.Fatalf("unexpected %s %q after the success", e.Name, e.Data)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestFlashV3WireLevel drives OTA v3 with a wire-level device: it refuses
// once, then accepts with a resumption offset and acknowledges nothing,
// so the update fails after the stall timeout; the chunks sent start at
// the offset.
func TestFlashV3WireLevel(t *testing.T) {
	cfg := otaTestConfig()
	cfg.OTA.StallTimeout = 400 * time.Millisecond
	w, fw := otaWorld(t, cfg)
	id := deviceID(11)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloOTAv3)
	sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
	bin := testBinary(10 * 512)
	h := fw.put(bin)
	answer := func(code protocol.Code) {
		msg := d.expect("UpdateStart", func(m devMsg) bool { return m.kind() == protocol.KindUpdateStart })
		u, err := protocol.ParseUpdateStart(&msg.m)
		if err != nil || u.FileSize != uint32(len(bin)) || u.ChunkSize != 512 || hex.EncodeToString(u.SHA256) != h {
			t.Errorf("UpdateStart %+v, %v", u, err)
		}
		tok, _ := msg.m.Token1()
		d.send(protocol.NewEmptyACK(msg.m.ID))
		if code != protocol.CodeCreated {
			d.send(protocol.NewResponse(protocol.Confirmable, d.nextID(), tok, code, []byte("no")))
			return
		}
		d.send(protocol.NewUpdateStarted(protocol.Confirmable, d.nextID(), tok, protocol.UpdateStarted{Window: 4, Offset: 3 * 512}))
	}
	go answer(protocol.CodeServiceUnavailable)
	if err := w.g.Flash(context.Background(), id.String(), h); !errors.Is(err, ErrUpdateRefused) {
		t.Fatalf("refused v3 Flash = %v", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("statuses %q, %q", a, b)
	}
	go answer(protocol.CodeCreated)
	if err := w.g.Flash(context.Background(), id.String(), h); err != nil {
		t.Fatalf("Flash: %v", err)
	}
	if a, b := flashStatus(t, sub), flashStatus(t, sub); a != FlashStarted || b != FlashFailed {
		t.Fatalf("stalled update: statuses %q, %q", a, b)
	}
	// Only the window (4 chunks) past the offset went out; chunk 1 is the
	// binary's fourth chunk.
	chunks := d.logged(protocol.KindUpdateChunk)
	if len(chunks) < 4 {
		t.Fatalf("%d chunks sent", len(chunks))
	}
	for _, c := range chunks {
		idx, data, err := protocol.ParseUpdateChunk(&c.m)
		if err != nil || idx < 1 || idx > 4 || c.m.Type != protocol.NonConfirmable {
			t.Fatalf("chunk %d (%s): %v", idx, c.m.Type, err)
		}
		if want := bin[(3+int(idx)-1)*512 : (3+int(idx))*512]; !bytes.Equal(data, want) {
			t.Fatalf("chunk %d does not start at the offset", idx)
		}
	}
}

// TestFlashEndUnanswered is the regression test of the misreported
// failures seen under load: the device takes the binary and reboots at
// once, and its answer to UpdateDone never reaches the transfer (lost on
// the way, or unread when the old session ended: a reset discarding it, a
// failed write, the device's new session taking over). The gateway used to
// publish "failed " at once and the device then came back on the new
// firmware. Now the device's next Hello decides: success exactly when it
// carries "previous OTA succeeded", failed when it does not or when the
// device does not come back. Each case drives the order of events itself
// (the device closes, or reconnects, at a point of the protocol), so
// nothing depends on timing except the reboot timeout of the last case.
func TestFlashEndUnanswered(t *testing.T) {
	for _, c := range []struct {
		name     string
		close    bool // the device closes its connection instead of answering
		takeover bool // its new session replaces the old, still open one
		back     bool // it reconnects
		flag     bool // with HelloOTASucceeded
		status   string
	}{
		{"connection ends, back with the flag", true, false, true, true, FlashSuccess},
		{"answer lost, new session takes over with the flag", false, true, true, true, FlashSuccess},
		{"connection ends, back without the flag", true, false, true, false, FlashFailed},
		{"answer lost, new session takes over without the flag", false, true, true, false, FlashFailed},
		{"connection ends, never back", true, false, false, false, FlashFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := otaTestConfig()
			cfg.OTA.StallTimeout = time.Minute // the case, not the stall timeout, ends the wait
			cfg.OTA.RebootTimeout = 300 * time.Millisecond
			if c.back {
				cfg.OTA.RebootTimeout = time.Minute
			}
			w, fw := otaWorld(t, cfg)
			id := deviceID(12)
			w.provision(id, testKey(t, "device_a"), owner1)
			d := w.online(id, testKey(t, "device_a"), 0)
			sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: EventFlashStatus})
			bin := testBinary(4000)
			o := &otaDevice{d: d, takeSilently: true, close: c.close}
			o.run(t)
			if err := w.g.Flash(context.Background(), id.String(), fw.put(bin)); err != nil {
				t.Fatal(err)
			}
			if got := flashStatus(t, sub); got != FlashStarted {
				t.Fatalf("first status %q", got)
			}
			if img := o.image(t); !bytes.Equal(img, bin) {
				t.Fatal("image differs")
			}
			if c.close {
				waitFor(t, "old session gone", func() bool { return !w.g.Online(id.String()) })
				if !w.g.Updating(id.String()) {
					t.Fatal("the update ended with the old session, before the device's next Hello")
				}
			}
			var flags protocol.HelloFlags
			if c.flag {
				flags = protocol.HelloOTASucceeded
			}
			if c.back {
				// Over the old, still open connection in the takeover
				// cases: UpdateDone is still waiting for its answer.
				w.online(id, testKey(t, "device_a"), flags)
			}
			if got := flashStatus(t, sub); got != c.status {
				t.Fatalf("outcome %q, want %q", got, c.status)
			}
			waitFor(t, "slot free", func() bool { return !w.g.Updating(id.String()) })
			st := w.g.Stats()
			if ok := c.status == FlashSuccess; st.OTASucceeded != b2u(ok) || st.OTAFailed != b2u(!ok) {
				t.Fatalf("stats: succeeded %d, failed %d", st.OTASucceeded, st.OTAFailed)
			}
			select {
			case e := <-sub.Events():
				t.Fatalf("second outcome %q", e.Data)
			default:
			}
		})
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
