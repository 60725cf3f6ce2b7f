package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// System events a device publishes that the gateway forwards to the bus
// as they are (docs/particle-protocol.md#events-the-cloud-emits, "forwarded
// device system events").
var forwardedSystemEvents = map[string]bool{
	"spark/device/last_reset":         true,
	"spark/device/safemode":           true,
	"spark/device/key/error":          true,
	"particle/device/updates/enabled": true,
	"particle/device/updates/forced":  true,
	"particle/device/updates/pending": true,
}

// Requests a device makes by publishing an event, answered with an event of
// the same name (docs/particle-protocol.md#events-devices-publish).
const (
	eventDeviceName   = "spark/device/name"
	eventDeviceNameP  = "particle/device/name" // the form in Device OS's documentation today
	eventDeviceRandom = "spark/device/random"
	eventDeviceIP     = "spark/device/ip"
	eventSafeModeDev  = "spark/device/safemode"
	eventUpdatesOn    = "particle/device/updates/enabled"
)

// handleEvent takes a device's publish (docs/particle-protocol.md#events ✔):
// POST E|e/<name> [Max-Age]. A confirmable publish is ACKed once the bus
// accepted it, answered 5.03 when the bus did not, and 4.00 when over the
// rate limit or malformed; a non-confirmable one over the limit is dropped. User events go to the bus with the device's owner; system events
// are handled by name (handleSystemEvent).
func (s *session) handleEvent(m *protocol.Message) {
	g := s.g
	ev, err := protocol.ParseEvent(m)
	if err != nil || len(ev.Name) > protocol.MaxEventNameLen || len(ev.Data) > protocol.MaxEventDataLen {
		g.stats.messagesBad.Add(1)
		s.refuse(m, protocol.CodeBadRequest)
		return
	}
	system := protocol.IsSystemEventName(ev.Name)
	now := time.Now().UnixNano()
	var ok bool
	switch {
	case system:
		ok = s.sysBurst.allow(now, systemEventRate, systemEventBurst)
	case g.cfg.EventRate < 0:
		ok = true
	default:
		ok = s.userBurst.allow(now, g.cfg.EventRate, g.cfg.EventBurst)
	}
	if !ok {
		g.stats.eventsLimited.Add(1)
		s.refuse(m, protocol.CodeBadRequest)
		return
	}
	if system && !forwardedSystemEvents[ev.Name] {
		if m.Type == protocol.Confirmable {
			s.sendACK(m.ID)
		}
		s.handleSystemEvent(ev)
		return
	}
	// An event for the bus is acknowledged only once the bus accepted it
	// (docs/device-protocol.md, "Events are acknowledged once published").
	if system {
		err = s.forwardSystemEvent(ev)
	} else {
		g.stats.eventsIn.Add(1)
		err = s.publish(ev)
	}
	if err == nil {
		if m.Type == protocol.Confirmable {
			s.sendACK(m.ID)
		}
		return
	}
	g.stats.eventsUnacked.Add(1)
	g.log.Warn("gateway: device event not published", "device", s.id, "event", ev.Name,
		"confirmable", m.Type == protocol.Confirmable, "err", err)
	// Device OS completes a publish answered with a 5.xx as failed
	// (Particle.publish with WITH_ACK returns false), so the application
	// can publish it again.
	s.refuse(m, protocol.CodeServiceUnavailable)
}

// publish sends a device's event to the bus with the device's owner and
// returns the bus's error.
func (s *session) publish(ev protocol.Event) error {
	s.mu.Lock()
	o, prodVer := s.own, s.prodVer
	s.mu.Unlock()
	return s.g.publish(bus.Event{Name: ev.Name, Data: string(ev.Data), TTL: int(ev.TTL), DeviceID: s.id,
		Public: !ev.Private}, o, prodVer)
}

// forwardSystemEvent publishes one of forwardedSystemEvents (after
// recording the updates flag it carries, if any) and returns the bus's
// error.
func (s *session) forwardSystemEvent(ev protocol.Event) error {
	g := s.g
	if ev.Name == eventUpdatesOn {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		if err := g.store.SetFirmwareUpdatesEnabled(ctx, s.id, string(ev.Data) == "true"); err != nil {
			g.log.Warn("gateway: store updates flag", "device", s.id, "err", err)
		}
		cancel()
	}
	g.stats.eventsIn.Add(1)
	if err := s.publish(ev); err != nil {
		return err
	}
	if ev.Name == eventSafeModeDev {
		s.publish(protocol.Event{Name: eventSafeMode, Data: ev.Data, TTL: ev.TTL, Private: true})
	}
	return nil
}

// handleSystemEvent handles the spark/ and particle/ events of
// docs/particle-protocol.md#events-devices-publish: the claim code claims the
// device and is never published; name, random and ip requests are answered with
// an event of the same name; a few are forwarded to the bus; the rest are
// swallowed.
func (s *session) handleSystemEvent(ev protocol.Event) {
	g := s.g
	switch name := ev.Name; {
	case name == protocol.ClaimCodeEventName:
		s.claim(ev)
	case name == eventDeviceName, name == eventDeviceNameP:
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		d, err := g.store.DeviceByID(ctx, s.id)
		cancel()
		if err == nil {
			s.sendEvent(name, []byte(d.Name))
		}
	case name == eventDeviceRandom:
		// "40 bytes of randomness from the cloud", as printable text so
		// that a C-string handler sees all of it.
		s.sendEvent(name, []byte(base64.RawURLEncoding.EncodeToString(randomBytes(30))))
	case name == eventDeviceIP:
		s.sendEvent(name, []byte(s.ip))
	case forwardedSystemEvents[name]:
		s.forwardSystemEvent(ev)
	default:
		g.log.Debug("gateway: system event swallowed", "device", s.id, "event", name)
	}
}

// claim handles spark/device/claim/code (docs/device-protocol.md, Claim
// codes): the code, stored by its SHA-256 hex hash like every secret
// (auth.HashToken), claims the device to the user or customer who created
// it (and moves it into the code's product, if any; a product team's code,
// with neither user nor customer, only moves it into the product). The
// device is then sent ClaimDoneEventName (spark/device/claim/clear) so
// that it forgets the code. Nothing is published: the code is a secret.
//
// A code claims one device. It is looked up first and taken only once the
// claim is allowed: a refused claim (the device has another owner) leaves
// the code for the device it was meant for, and a code taken for a claim
// that then fails in the store is put back.
func (s *session) claim(ev protocol.Event) {
	g := s.g
	code, _, err := protocol.ClaimCode(ev)
	if err != nil {
		g.stats.claimsFailed.Add(1)
		g.log.Info("gateway: malformed claim code", "device", s.id)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	fail := func(msg string, err error) {
		g.stats.claimsFailed.Add(1)
		g.log.Info("gateway: claim code refused", "device", s.id, "reason", msg, "err", err)
	}
	hash, now := auth.HashToken(code), time.Now()
	cc, err := g.store.ClaimCodeByHash(ctx, hash, now)
	if errors.Is(err, store.ErrNotFound) {
		fail("unknown, used or expired claim code", nil)
		return
	}
	if err != nil {
		fail("store", err)
		return
	}
	d, err := g.store.DeviceByID(ctx, s.id)
	if err != nil {
		fail("store", err)
		return
	}
	if (d.OwnerID != "" && d.OwnerID != cc.UserID) || (d.CustomerID != "" && d.CustomerID != cc.CustomerID) {
		fail("device has another owner; the code stays valid", nil)
		return
	}
	if cc, err = g.store.TakeClaimCode(ctx, hash, now); err != nil {
		fail("claim code taken meanwhile", err)
		return
	}
	if d, err = s.claimWith(ctx, cc, d); err != nil {
		if perr := g.store.CreateClaimCode(ctx, cc); perr != nil {
			err = errors.Join(err, fmt.Errorf("gateway: put claim code back: %w", perr))
		}
		fail("claim", err)
		return
	}
	s.setDevice(d)
	g.stats.claimsOK.Add(1)
	g.log.Info("gateway: device claimed with a claim code", "device", s.id, "user", cc.UserID,
		"customer", cc.CustomerID, "product", d.ProductID, "name", d.Name)
	s.sendEvent(ClaimDoneEventName, nil)
}

// claimWith applies claim code cc to the device d: it moves the device
// into the code's product, then claims it to the code's owner (which names
// it, if it has no name), and returns the device as stored.
func (s *session) claimWith(ctx context.Context, cc *store.ClaimCode, d *store.Device) (*store.Device, error) {
	st := s.g.store
	if cc.ProductID != 0 && d.ProductID != cc.ProductID {
		if _, err := st.ProvisionDevice(ctx, s.id, "", nil, cc.ProductID); err != nil {
			return nil, fmt.Errorf("gateway: move device into product %d: %w", cc.ProductID, err)
		}
	}
	if cc.UserID == "" && cc.CustomerID == "" {
		// A product team's code: the device joins the product, unowned.
		return st.DeviceByID(ctx, s.id)
	}
	return st.ClaimDevice(ctx, s.id, cc.UserID, cc.CustomerID)
}

// setDevice takes the ownership of a freshly read device and re-indexes
// the session for event delivery.
func (s *session) setDevice(d *store.Device) {
	s.mu.Lock()
	s.own = ownerOf(d)
	s.mu.Unlock()
	s.g.router.update(s)
}

// reload re-reads the device's owner from the store.
func (s *session) reload(ctx context.Context) error {
	d, err := s.g.store.DeviceByID(ctx, s.id)
	if err != nil {
		return err
	}
	s.setDevice(d)
	return nil
}

// sendEvent queues a cloud→device event (docs/particle-protocol.md#events):
// POST E/<name>, NON, with no option but the name and, for a TTL other than 60,
// Max-Age. It reports false if the event was dropped.
func (s *session) sendEvent(name string, data []byte) bool {
	return s.enqueue(outEvent{name: name, data: string(data), ttl: protocol.DefaultEventTTL, private: true})
}

// eventOverhead bounds the bytes of an event message besides its name and
// data: header 4, path option 2, name option header up to 3, Max-Age 4,
// payload marker 1.
const eventOverhead = 14

// outEvent is an event waiting to be written to a device.
type outEvent struct {
	name    string
	data    string
	ttl     uint32
	private bool
}

// enqueue adds an event to the device's bounded queue and makes sure a
// writer goroutine drains it; the caller never blocks on the device. It
// reports false (and counts the drop) when the queue is full or the
// session over.
func (s *session) enqueue(e outEvent) bool {
	s.mu.Lock()
	if s.closed || len(s.queue) >= s.g.cfg.DeviceQueue {
		s.mu.Unlock()
		s.g.stats.eventsDropped.Add(1)
		return false
	}
	s.queue = append(s.queue, e)
	start := !s.draining
	s.draining = true
	s.mu.Unlock()
	if start {
		go s.drain()
	}
	return true
}

// drain writes queued events until the queue is empty, then exits: an idle
// session has no writer goroutine.
func (s *session) drain() {
	defer s.recoverBackground()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.closed {
			n := len(s.queue)
			s.queue, s.draining = nil, false
			s.mu.Unlock()
			s.g.stats.eventsDropped.Add(uint64(n))
			return
		}
		e := s.queue[0]
		s.queue = s.queue[1:]
		id := s.ids.Next()
		s.mu.Unlock()
		var err error
		switch {
		case e.name == "" || len(e.name) > protocol.MaxEventNameLen:
			err = errors.New("event name length")
		case s.hello.MaxMessageSize > 0 && len(e.name)+len(e.data)+eventOverhead > int(s.hello.MaxMessageSize):
			err = errors.New("event larger than the device accepts")
		default:
			var m protocol.Message
			m, err = protocol.NewEvent(protocol.NonConfirmable, id, protocol.Event{Name: e.name, Data: []byte(e.data),
				Private: e.private, TTL: min(e.ttl, protocol.MaxEventTTL)})
			if limit := s.maxIncomingLen(); err == nil && limit > 0 && s.messageLen(&m) > limit {
				err = errors.New("event larger than the device accepts")
			}
			if err == nil {
				err = s.send(&m)
			}
		}
		if err != nil {
			s.g.stats.eventsDropped.Add(1)
			continue
		}
		s.g.stats.eventsOut.Add(1)
	}
}
