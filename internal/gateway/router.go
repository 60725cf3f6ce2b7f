package gateway

import (
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Event delivery to devices (docs/particle-protocol.md#events).
//
// The gateway has one bus subscription for every event (New). Its single
// goroutine, route, finds the sessions that may see an event through an
// index by owner, and queues the event on each session whose subscriptions
// match. Only sessions with at least one subscription are indexed, under up
// to three keys: the owning user, the owning customer and the product.
//
// A device receives an event when:
//   - the event is not a system event (spark/..., particle/...): those reach
//     a device only from the gateway itself (claim, name, random, ip
//     replies) or through a bus call of kind "event";
//   - the event belongs to the device's owner (user or customer) or to the
//     device's product: published by one of those devices, the device
//     itself included, or through the API on their behalf;
//   - one of its subscriptions is a prefix of the event name and, for a
//     device-scoped subscription, the event's device is that device.
//
// Public events of other owners are not delivered, whatever the scope: the
// scopes "mine" and "all" select the same events (Particle stopped
// delivering foreign public events to devices in 2020).

// routeKey is an index key: 'u' user, 'c' customer or 'p' product, and its ID.
type routeKey struct {
	kind byte
	id   string
}

// router indexes the sessions that subscribed to events.
type router struct {
	mu   sync.RWMutex
	sets map[routeKey]map[*session]struct{} // guarded by mu
}

// update re-indexes s from its current owner and subscriptions.
func (r *router) update(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.mu.Lock()
	var keys []routeKey
	if !s.closed && len(s.subs) > 0 {
		if s.own.user != "" {
			keys = append(keys, routeKey{'u', s.own.user})
		}
		if s.own.customer != "" {
			keys = append(keys, routeKey{'c', s.own.customer})
		}
		if s.own.product != 0 {
			keys = append(keys, routeKey{'p', strconv.FormatInt(s.own.product, 10)})
		}
	}
	s.mu.Unlock()
	r.setKeysLocked(s, keys)
}

// remove takes s out of the index.
func (r *router) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setKeysLocked(s, nil)
}

func (r *router) setKeysLocked(s *session, keys []routeKey) {
	for _, k := range s.rkeys {
		if set := r.sets[k]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(r.sets, k)
			}
		}
	}
	for _, k := range keys {
		set := r.sets[k]
		if set == nil {
			set = make(map[*session]struct{})
			r.sets[k] = set
		}
		set[s] = struct{}{}
	}
	s.rkeys = keys
}

// targets appends the sessions that should receive e to dst. gen marks the
// sessions already collected, so a session indexed under several keys is
// collected once.
func (r *router) targets(e *bus.Event, gen uint64, dst []*session) []*session {
	var keys [3]routeKey
	n := 0
	if e.UserID != "" {
		keys[n] = routeKey{'u', e.UserID}
		n++
	}
	if e.CustomerID != "" {
		keys[n] = routeKey{'c', e.CustomerID}
		n++
	}
	if e.ProductID != 0 {
		keys[n] = routeKey{'p', strconv.FormatInt(e.ProductID, 10)}
		n++
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range keys[:n] {
		for s := range r.sets[k] {
			if s.routeGen == gen {
				continue
			}
			s.routeGen = gen
			if s.wants(e) {
				dst = append(dst, s)
			}
		}
	}
	return dst
}

// wants reports whether one of the session's subscriptions selects e.
func (s *session) wants(e *bus.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, sub := range s.subs {
		if !strings.HasPrefix(e.Name, sub.Prefix) {
			continue
		}
		if dev, ok := strings.CutPrefix(sub.Scope, store.ScopeDevicePrefix); ok && dev != e.DeviceID {
			continue
		}
		return true
	}
	return false
}

// route delivers bus events to device subscriptions until the subscription
// closes. It never blocks on a device: enqueue drops when a device's queue
// is full, and the bus drops (and counts) when this loop falls behind.
func (g *Gateway) route() {
	defer g.bg.Done()
	var (
		gen     uint64
		targets []*session
	)
	for e := range g.sub.Events() {
		if protocol.IsSystemEventName(e.Name) {
			continue
		}
		gen++
		targets = g.routeOne(&e, gen, targets[:0])
		clear(targets)
	}
}

// routeOne delivers one event, recovering a panic so that one bad event
// cannot stop delivery for every device.
func (g *Gateway) routeOne(e *bus.Event, gen uint64, targets []*session) []*session {
	defer func() {
		if p := recover(); p != nil {
			g.stats.panics.Add(1)
			g.log.Error("gateway: panic in event router", "event", e.Name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	targets = g.router.targets(e, gen, targets)
	ttl := uint32(protocol.DefaultEventTTL)
	if e.TTL > 0 {
		ttl = uint32(min(e.TTL, protocol.MaxEventTTL))
	}
	for _, s := range targets {
		s.enqueue(outEvent{name: e.Name, data: e.Data, ttl: ttl, private: !e.Public})
	}
	return targets
}
