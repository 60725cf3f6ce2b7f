package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
)

// API-user scopes of the product event routes (Particle's names).
const (
	scopeEventsGet  = "events:get"
	scopeEventsSend = "events:send"
)

// maxEventNameLen is Particle's limit on event names
// (docs/particle-api.md#publishing-events).
const maxEventNameLen = 64

// Publish failures (docs/particle-api.md#publishing-events; the texts are our
// choice).
var (
	errEventNameMissing = errorf(http.StatusBadRequest, "Event name is required")
	errEventNameBad     = errorf(http.StatusBadRequest,
		"Event name must be 1 to 64 printable ASCII characters")
	errEventNameReserved = errorf(http.StatusBadRequest,
		`Event names starting with "spark" or "particle" are reserved for the cloud`)
	errEventPrivate = errorf(http.StatusBadRequest, "private must be true or false")
	errEventTTL     = errorf(http.StatusBadRequest, "ttl must be a whole number of seconds")
)

// checkEventName validates the name of an event published through the
// API: 1–64 bytes of printable ASCII (space included; '/' and '.' too),
// and not starting, in any case, with "spark" or "particle", which are
// reserved for events the cloud itself publishes.
func checkEventName(name string) error {
	if name == "" {
		return errEventNameMissing
	}
	if len(name) > maxEventNameLen {
		return errEventNameBad
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e {
			return errEventNameBad
		}
	}
	if reservedEventName(name) {
		return errEventNameReserved
	}
	return nil
}

// reservedEventName reports whether name starts, ignoring case, with
// "spark" or "particle".
func reservedEventName(name string) bool {
	for _, p := range [...]string{"spark", "particle"} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// eventData returns the data parameter as a string: strings as given,
// numbers and booleans formatted, objects and arrays (a JSON client may
// send them) as compact JSON, and absent or null as "".
func eventData(p params) (string, error) {
	switch v := p["data"].(type) {
	case nil:
		return "", nil
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("api: encode event data: %w", err)
		}
		return string(b), nil
	default:
		return scalarString(v), nil
	}
}

// handlePublish is POST /v1/devices/events and POST
// /v1/products/{p}/events (docs/particle-api.md#publishing-events). Fields:
// name (required), data (at most Config.MaxEventData bytes), private (default
// true; false makes the event public) and ttl (seconds, default 60). The event
// is published with coreid "api" and the caller as its owner: the user, the
// customer (and its product), or on the product route the product alone. Answer
// {"ok":true}.
func (s *server) handlePublish(rq *request) error {
	p := rq.params
	name := p.str("name")
	if err := checkEventName(name); err != nil {
		return err
	}
	data, err := eventData(p)
	if err != nil {
		return err
	}
	if len(data) > s.cfg.MaxEventData {
		return errorf(http.StatusBadRequest, fmt.Sprintf("Event data must be at most %d bytes", s.cfg.MaxEventData))
	}
	private := true
	if p.has("private") && p["private"] != nil {
		v, ok := p.boolean("private")
		if !ok {
			return errEventPrivate
		}
		private = v
	}
	ttl := int64(bus.DefaultTTL)
	if n, ok, err := p.integer("ttl"); err != nil || (ok && (n < 0 || n > math.MaxInt32)) {
		return errEventTTL
	} else if ok && n > 0 {
		ttl = n
	}

	e := bus.Event{Name: name, Data: data, TTL: int(ttl), PublishedAt: rq.now, DeviceID: bus.DeviceAPI, Public: !private}
	pr := rq.principal
	switch {
	case rq.product != nil:
		e.ProductID = rq.product.ID
	case pr.Kind == store.KindUser:
		e.UserID = pr.UserID
	case pr.Kind == store.KindCustomer:
		e.CustomerID, e.ProductID = pr.CustomerID, pr.ProductID
	default:
		return errForbidden
	}
	if ok, retry := s.publish.allow(pr.TokenHash, rq.now); !ok {
		return &rateLimitError{retry}
	}
	if s.bus != nil {
		if err := s.bus.Publish(rq.ctx, e); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Message: "The event could not be published", Cause: err}
		}
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// tokenBuckets is a keyed token-bucket rate limiter (ratelimit.Buckets:
// sharded, memory bounded by maxKeys, a new key evicts the least recently
// used one in constant time, which only ever lets that key start afresh).
// A nil *tokenBuckets allows everything.
type tokenBuckets struct{ b *ratelimit.Buckets }

// newTokenBuckets returns a limiter, or nil (no limit) when burst is
// negative.
func newTokenBuckets(burst int, interval time.Duration, maxKeys int) *tokenBuckets {
	b := ratelimit.NewBuckets(burst, interval, maxKeys)
	if b == nil {
		return nil
	}
	return &tokenBuckets{b: b}
}

// allow takes a token for key at now. When none is left it reports false
// and how long until one is.
func (l *tokenBuckets) allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.b.Allow(key, now)
}

// size reports how many keys are tracked (for tests).
func (l *tokenBuckets) size() int {
	if l == nil {
		return 0
	}
	return l.b.Len()
}
