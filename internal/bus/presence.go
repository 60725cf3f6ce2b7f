package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Presence reports that a device connected to or disconnected from a
// gateway process. It is carried as JSON on P.presence.<device>.
type Presence struct {
	// DeviceID is the device's ID.
	DeviceID string `json:"device_id"`
	// Online is true on connect (after the Hello) and false on disconnect.
	Online bool `json:"online"`
	// Node is the gateway process (Bus.Node of the publisher by default).
	Node string `json:"node"`
	// SessionID identifies the connection, so that an "offline" of a
	// replaced session can be told from one of the current session.
	SessionID string `json:"session_id"`
	// Addr is the device's remote address, if known.
	Addr string `json:"addr,omitempty"`
	// At is when the change happened (set by PublishPresence when zero).
	At time.Time `json:"at"`
}

// PublishPresence announces a device's online state to every process. It
// does not wait for subscribers. Node defaults to this bus's node.
func (b *Bus) PublishPresence(ctx context.Context, p Presence) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: presence: %w", err)
	}
	if p.DeviceID == "" {
		return fmt.Errorf("bus: presence without device ID")
	}
	if p.Node == "" {
		p.Node = b.cfg.Node
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("bus: presence: %w", err)
	}
	if err := b.nc.Publish(b.subj.pres+EscapeToken(p.DeviceID), data); err != nil {
		return fmt.Errorf("bus: presence: %w", err)
	}
	return nil
}

// A PresenceSubscription receives presence changes through a bounded
// buffer; when it is full, changes are dropped and counted.
type PresenceSubscription struct {
	b  *Bus
	ns *nats.Subscription

	mu     sync.Mutex
	ch     chan Presence
	closed bool

	dropped atomic.Uint64
}

// SubscribePresence receives the presence changes of one device, or of all
// devices when deviceID is empty, with a buffer of buf (DefaultBuffer when
// buf <= 0).
func (b *Bus) SubscribePresence(deviceID string, buf int) (*PresenceSubscription, error) {
	if buf <= 0 {
		buf = DefaultBuffer
	}
	subject := b.subj.pres + "*"
	if deviceID != "" {
		subject = b.subj.pres + EscapeToken(deviceID)
	}
	p := &PresenceSubscription{b: b, ch: make(chan Presence, buf)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.presSubs[p] = struct{}{}
	b.mu.Unlock()

	ns, err := b.nc.Subscribe(subject, p.handle)
	if err == nil {
		err = b.nc.Flush()
	}
	if err != nil {
		if ns != nil {
			_ = ns.Unsubscribe()
		}
		p.Close()
		return nil, fmt.Errorf("bus: subscribe presence: %w", err)
	}
	p.mu.Lock()
	p.ns = ns
	closed := p.closed
	p.mu.Unlock()
	if closed { // the bus closed meanwhile
		_ = ns.Unsubscribe()
	}
	return p, nil
}

func (p *PresenceSubscription) handle(msg *nats.Msg) {
	var pr Presence
	if err := json.Unmarshal(msg.Data, &pr); err != nil || pr.DeviceID == "" {
		p.b.malformed.Add(1)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	select {
	case p.ch <- pr:
	default:
		p.dropped.Add(1)
		p.b.dropped.Add(1)
	}
}

// Presences returns the channel the changes arrive on; Close closes it.
func (p *PresenceSubscription) Presences() <-chan Presence { return p.ch }

// Dropped returns how many changes were lost to a full buffer.
func (p *PresenceSubscription) Dropped() uint64 { return p.dropped.Load() }

// Close ends the subscription. It is idempotent.
func (p *PresenceSubscription) Close() error {
	if !p.closeLocal() {
		return nil
	}
	p.b.mu.Lock()
	delete(p.b.presSubs, p)
	p.b.mu.Unlock()
	p.mu.Lock()
	ns := p.ns
	p.mu.Unlock()
	if ns != nil {
		_ = ns.Unsubscribe()
	}
	return nil
}

func (p *PresenceSubscription) closeLocal() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closed = true
	close(p.ch)
	return true
}
