package gateway

import (
	"context"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Limits on what a device may register.
const (
	maxSubscriptions   = 32
	maxSubscriptionLen = 64
	// subscriptionsDelay batches the subscriptions a device sends right
	// after its handshake into one store write.
	subscriptionsDelay = 500 * time.Millisecond
)

// dispatch handles one message from the device
// (docs/particle-protocol.md#a-minimal-server-session step 3). m is decoded in
// place and aliases the frame buffer; handlers copy what they keep. Undecodable
// messages are ignored (docs/particle-protocol.md#coap-encoding).
func (s *session) dispatch(m *protocol.Message, plain []byte) {
	if protocol.IsKeepAlive(plain) {
		return
	}
	if err := m.Decode(plain); err != nil {
		s.g.stats.messagesBad.Add(1)
		return
	}
	if hook := s.g.testHookDispatch; hook != nil {
		hook(m)
	}
	switch kind := protocol.Classify(m); kind {
	case protocol.KindPing:
		s.g.stats.sessionPings.Add(1)
		s.sendACK(m.ID)
	case protocol.KindTimeRequest:
		s.handleTime(m)
	case protocol.KindEvent:
		s.handleEvent(m)
	case protocol.KindSubscribe:
		s.handleSubscribe(m)
	case protocol.KindDescribePost:
		s.handleDescribePost(m)
	case protocol.KindGoodbye:
		s.handleGoodbye(m)
	case protocol.KindChunkMissed:
		s.handleChunkMissed(m)
	case protocol.KindUpdateDone:
		s.handleUpdateResult(m)
	case protocol.KindHello:
		// A repeated Hello: answer it like the first (harmless, and what
		// the firmware waits for if it restarted its protocol layer).
		if m.Type == protocol.Confirmable {
			s.sendACK(m.ID)
		}
		s.sendNew(func(id uint16) protocol.Message {
			return protocol.NewServerHello(protocol.NonConfirmable, id)
		})
	case protocol.KindEmptyACK, protocol.KindReset, protocol.KindResponse:
		s.handleResponse(m, kind, plain)
	default:
		if protocol.IsUpdateAck(m) {
			s.handleUpdateAck(m)
			return
		}
		// Anything else (OTA messages, requests only servers send): an
		// empty ACK for a CON so the device does not wait
		// (docs/particle-protocol.md#a-minimal-server-session).
		if m.Type == protocol.Confirmable {
			s.sendACK(m.ID)
		}
	}
}

// handleTime answers GET t with the piggy-backed 2.05 the firmware parses at
// fixed offsets (docs/particle-protocol.md#time ✔): 61 45 <id> <token> FF <u32
// unix seconds>.
func (s *session) handleTime(m *protocol.Message) {
	now := uint32(time.Now().Unix())
	tok, ok := m.Token1()
	var r protocol.Message
	if ok {
		r = protocol.NewTimeResponse(m.ID, tok, now)
	} else {
		r = protocol.NewACK(m.ID, m.Token, protocol.CodeContent, []byte{byte(now >> 24), byte(now >> 16), byte(now >> 8), byte(now)})
	}
	s.send(&r)
}

// refuse answers a confirmable message with a piggy-backed 4.xx.
func (s *session) refuse(m *protocol.Message, code protocol.Code) {
	if m.Type != protocol.Confirmable {
		return
	}
	r := protocol.NewACK(m.ID, m.Token, code, nil)
	s.send(&r)
}

// handleSubscribe records a device subscription
// (docs/particle-protocol.md#subscriptions): GET e/<prefix> with the scope in a
// Uri-Query ('u': my devices) or the payload (a device ID). A device re-sends
// all its subscriptions after each full handshake, so the first one of a
// session replaces the stored list; the list is written to the store once the
// burst is over.
func (s *session) handleSubscribe(m *protocol.Message) {
	sub, err := protocol.ParseSubscribe(m)
	if err != nil || len(sub.Prefix) > maxSubscriptionLen {
		s.g.stats.messagesBad.Add(1)
		s.refuse(m, protocol.CodeBadRequest)
		return
	}
	scope := store.ScopeAll
	if sub.MyDevices {
		scope = store.ScopeMine
	}
	if sub.DeviceID != "" {
		id, err := protocol.ParseDeviceID(sub.DeviceID)
		if err != nil {
			s.g.stats.messagesBad.Add(1)
			s.refuse(m, protocol.CodeBadRequest)
			return
		}
		scope = store.ScopeDevicePrefix + id.String()
	}
	want := store.Subscription{Prefix: sub.Prefix, Scope: scope}
	s.mu.Lock()
	if !s.subsFresh {
		s.subs, s.subsFresh = nil, true
	}
	known := false
	for _, x := range s.subs {
		known = known || x == want
	}
	full := !known && len(s.subs) >= maxSubscriptions
	if !known && !full {
		s.subs = append(s.subs, want)
	}
	if !full && s.subsTimer == nil && !s.closed {
		s.subsTimer = time.AfterFunc(subscriptionsDelay, s.flushSubscriptions)
	}
	s.mu.Unlock()
	if full {
		s.refuse(m, protocol.CodeBadRequest)
		return
	}
	s.g.router.update(s)
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
}

// flushSubscriptions writes the device's subscriptions after a burst.
func (s *session) flushSubscriptions() {
	defer s.recoverBackground()
	s.mu.Lock()
	subs := append([]store.Subscription(nil), s.subs...)
	s.subsTimer = nil
	s.mu.Unlock()
	if s.g.lookup(s.id) != s {
		return // replaced or gone: the current session owns the list
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	s.writeSubscriptions(ctx, subs)
}

func (s *session) writeSubscriptions(ctx context.Context, subs []store.Subscription) {
	if err := s.g.store.SetDeviceSubscriptions(ctx, s.id, subs); err != nil {
		s.g.log.Warn("gateway: store subscriptions", "device", s.id, "err", err)
	}
}

// handleGoodbye ends the session at the device's request
// (docs/particle-protocol.md#goodbye).
func (s *session) handleGoodbye(m *protocol.Message) {
	g, err := protocol.ParseGoodbye(m)
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	s.g.log.Info("gateway: device said goodbye", "device", s.id, "cloud_reason", g.CloudReason,
		"reset_reason", g.ResetReason, "sleep", g.SleepSeconds, "network_reason", g.NetworkReason, "err", err)
	s.close(reasonGoodbye)
}

// bucket is a token bucket for one device's publishes.
type bucket struct {
	tokens float64
	last   int64 // Unix nanoseconds; 0 before the first use
}

// allow takes a token if there is one, refilling at rate per second up to burst.
func (b *bucket) allow(now int64, rate float64, burst int) bool {
	if b.last == 0 {
		b.tokens = float64(burst)
	} else if now > b.last {
		b.tokens = min(float64(burst), b.tokens+float64(now-b.last)/1e9*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
