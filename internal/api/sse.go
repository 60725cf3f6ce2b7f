package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// errPrefixRequired answers GET /v1/events without a prefix
// (docs/particle-api.md#event-streams).
var errPrefixRequired = errorf(http.StatusBadRequest, "event prefix filter is required")

// streamRetryAfter is the Retry-After of a stream refused because its IP
// has SSEMaxConnsPerIP streams open.
const streamRetryAfter = 10 * time.Second

// Batching of stream writes: events already waiting in a stream's buffer
// are written together, up to these bounds, with one flush.
const (
	maxBatchEvents = 64
	maxBatchBytes  = 32 << 10
)

// StreamStats are the counters of the API's event streams since New.
type StreamStats struct {
	// Open is the number of streams open now.
	Open int64
	// Opened counts streams that started (200 and ":ok").
	Opened uint64
	// Rejected counts opens refused with 429 by the per-IP limits.
	Rejected uint64
	// Dropped counts events lost to full stream buffers (slow clients).
	Dropped uint64
	// Replayed counts streams that resumed with Last-Event-ID.
	Replayed uint64
	// Gaps counts resumed streams told that events may be missing.
	Gaps uint64
	// Revoked counts streams closed because their access ended: token
	// revoked or expired, or the holder left the product's team.
	Revoked uint64
}

// StreamStats returns the counters of the event streams. The handler
// returned by New has this method.
func (s *server) StreamStats() StreamStats {
	g := s.streams
	return StreamStats{
		Open:     g.open.Load(),
		Opened:   g.opened.Load(),
		Rejected: g.rejected.Load(),
		Dropped:  g.dropped.Load(),
		Replayed: g.replayed.Load(),
		Gaps:     g.gaps.Load(),
		Revoked:  g.revoked.Load(),
	}
}

// CloseStreams ends every open event stream and refuses new ones, for a
// graceful shutdown: http.Server.Shutdown waits for active requests, and
// a stream never ends by itself. Register it with
// http.Server.RegisterOnShutdown. The handler returned by New has this
// method; it is idempotent.
func (s *server) CloseStreams() {
	s.streams.closeOnce.Do(func() { close(s.streams.done) })
}

// streamGate admits event streams under the per-IP limits of
// docs/particle-api.md#rate-limits and counts them.
type streamGate struct {
	opens   *limiter // opens per IP per window; nil: unlimited
	maxConn int      // simultaneous streams per IP; < 0: unlimited

	mu    sync.Mutex
	conns map[string]int // open streams per IP; guarded by mu

	done      chan struct{} // closed by CloseStreams
	closeOnce sync.Once

	open                                atomic.Int64
	opened, rejected, dropped, replayed atomic.Uint64
	gaps, revoked                       atomic.Uint64
}

func newStreamGate(openRate int, openWindow time.Duration, maxConn, maxKeys int) *streamGate {
	return &streamGate{
		opens:   newLimiter(openRate, openWindow, maxKeys),
		maxConn: maxConn,
		conns:   map[string]int{},
		done:    make(chan struct{}),
	}
}

// errStreamsClosed answers a stream opened after CloseStreams.
var errStreamsClosed = errorf(http.StatusServiceUnavailable, "The server is shutting down")

// admit counts one stream open from ip and takes a connection slot. The
// caller calls release when the stream ends.
func (g *streamGate) admit(ip string, now time.Time) (release func(), err error) {
	select {
	case <-g.done:
		return nil, errStreamsClosed
	default:
	}
	if ok, retry := g.opens.allow(ip, now); !ok {
		g.rejected.Add(1)
		return nil, &rateLimitError{retry}
	}
	g.mu.Lock()
	if g.maxConn >= 0 && g.conns[ip] >= g.maxConn {
		g.mu.Unlock()
		g.rejected.Add(1)
		return nil, &rateLimitError{streamRetryAfter}
	}
	g.conns[ip]++
	g.mu.Unlock()
	g.open.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.open.Add(-1)
			g.mu.Lock()
			if g.conns[ip]--; g.conns[ip] <= 0 {
				delete(g.conns, ip)
			}
			g.mu.Unlock()
		})
	}, nil
}

// streamSpec is what one stream delivers and how.
type streamSpec struct {
	filter bus.Filter
	// product streams add userid, version, public and productID to each
	// event's data (docs/particle-api.md#event-streams).
	product bool
}

// handleEventsNoPrefix is GET /v1/events: the prefix is required.
func (s *server) handleEventsNoPrefix(rq *request) error {
	return errPrefixRequired
}

// handlePublicEvents is GET /v1/events/{prefix...}: the caller's events
// (a user's, a customer's, or a product token's product's) and the public
// events of everyone, whose names start with the prefix.
func (s *server) handlePublicEvents(rq *request) error {
	f := bus.Filter{AlsoPublic: true, NamePrefix: rq.r.PathValue("prefix")}
	p := rq.principal
	switch p.Kind {
	case store.KindUser:
		f.UserID = p.UserID
	case store.KindCustomer:
		f.CustomerID = p.CustomerID
	case store.KindProduct:
		f.ProductID = p.ProductID
	default:
		return errForbidden
	}
	return s.stream(rq, streamSpec{filter: f})
}

// handleMyEvents is GET /v1/devices/events[/{prefix...}]: every event of
// the calling user (its devices and its API publishes), or of the calling
// customer.
func (s *server) handleMyEvents(rq *request) error {
	f, err := ownerFilter(rq)
	if err != nil {
		return err
	}
	return s.stream(rq, streamSpec{filter: f})
}

// ownerFilter selects the events owned by the calling user or customer,
// with the route's prefix.
func ownerFilter(rq *request) (bus.Filter, error) {
	f := bus.Filter{NamePrefix: rq.r.PathValue("prefix")}
	p := rq.principal
	switch p.Kind {
	case store.KindUser:
		f.UserID = p.UserID
	case store.KindCustomer:
		f.CustomerID = p.CustomerID
	default:
		return f, errForbidden
	}
	return f, nil
}

// handleDeviceEvents is GET /v1/devices/{id}/events[/{prefix...}]: the
// events of one of the caller's devices, by ID or name
// (docs/particle-api.md#device-id-or-name). The filter keeps the caller as
// owner too, so that a replay never shows what the device published for a
// previous owner.
func (s *server) handleDeviceEvents(rq *request) error {
	d, err := s.callerDevice(rq, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	f, err := ownerFilter(rq)
	if err != nil {
		return err
	}
	f.DeviceID = d.ID
	return s.stream(rq, streamSpec{filter: f})
}

// handleProductEvents is GET /v1/products/{p}/events[/{prefix...}]: every
// event of the product's devices and of its API publishes, for its team
// and its product token.
func (s *server) handleProductEvents(rq *request) error {
	f := bus.Filter{ProductID: rq.product.ID, NamePrefix: rq.r.PathValue("prefix")}
	return s.stream(rq, streamSpec{filter: f, product: true})
}

// handleProductDeviceEvents is GET
// /v1/products/{p}/devices/{id}/events[/{prefix...}]: one device of the
// product, by ID.
func (s *server) handleProductDeviceEvents(rq *request) error {
	d, err := s.productDevice(rq, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	f := bus.Filter{ProductID: rq.product.ID, DeviceID: d.ID, NamePrefix: rq.r.PathValue("prefix")}
	return s.stream(rq, streamSpec{filter: f, product: true})
}

// lastEventID returns the ID a reconnecting client last received: the
// Last-Event-ID header (EventSource sends it), else the lastEventId or
// last_event_id parameter for clients that cannot set headers. An ID that
// is not a decimal number is ignored.
func lastEventID(rq *request) (uint64, bool) {
	v := rq.r.Header.Get("Last-Event-ID")
	if v == "" {
		v = rq.params.str("lastEventId")
	}
	if v == "" {
		v = rq.params.str("last_event_id")
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// stream serves one event stream (docs/particle-api.md#event-streams): it
// admits it under the per-IP limits, subscribes (replaying after
// Last-Event-ID), answers 200 with ":ok" at once, then writes events as they
// come and a keep-alive comment after SSEKeepAlive of silence, until the client
// goes away, the bus closes or CloseStreams is called. Errors before the 200
// are JSON.
func (s *server) stream(rq *request, sp streamSpec) error {
	g := s.streams
	release, err := g.admit(rq.ip, rq.now)
	if err != nil {
		return err
	}
	defer release()
	access := s.newStreamAccess(rq)
	s.watch.add(access)
	defer s.watch.remove(access)

	lastID, resume := lastEventID(rq)
	var (
		sub       *bus.Subscription
		events    <-chan bus.Event
		gap       bool
		seenDrops uint64 // drops already announced and counted
	)
	if s.bus != nil {
		var opts []bus.SubscribeOption
		if resume {
			opts = append(opts, bus.After(lastID, s.cfg.SSEReplayMax))
		}
		sub, err = s.bus.Subscribe(sp.filter, s.cfg.SSEBuffer, opts...)
		if err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Message: "Event stream unavailable", Cause: err}
		}
		defer func() {
			sub.Close()
			if d := sub.Dropped(); d > seenDrops {
				g.dropped.Add(d - seenDrops)
			}
		}()
		events = sub.Events()
		if resume {
			g.replayed.Add(1)
			// The bus keeps the newest SSEReplayMax: a full replay may
			// have left older ones out. Otherwise ask the window itself.
			gap = len(events) >= s.cfg.SSEReplayMax || s.beforeWindow(rq.ctx, lastID)
			if gap {
				g.gaps.Add(1)
			}
		}
	}

	w := rq.w
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if rq.r.ProtoMajor == 1 {
		// HTTP/2 forbids connection-specific headers.
		h.Set("Connection", "keep-alive")
	}
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// No server WriteTimeout applies to a stream; each write gets its own
	// deadline instead. Unsupported (a test recorder): ignored.
	_ = rc.SetWriteDeadline(time.Time{})
	defer rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	g.opened.Add(1)

	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SSEWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	buf := make([]byte, 0, 1024)
	buf = append(buf, ":ok\n\n"...)
	if gap {
		buf = append(buf, ": events after id "...)
		buf = strconv.AppendUint(buf, lastID, 10)
		buf = append(buf, " may be missing: they are older than the replay window\n\n"...)
	}
	if err := write(buf); err != nil {
		return nil
	}

	ctx := rq.ctx
	keepAlive := time.NewTimer(s.cfg.SSEKeepAlive)
	defer keepAlive.Stop()
	checks := s.newAccessTicker()
	defer checks.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.done:
			return nil
		case <-checks.C:
			if s.accessEnded(rq, access, checks.tick(), write) {
				return nil
			}
			continue
		case <-access.recheck:
			if s.accessEnded(rq, access, true, write) {
				return nil
			}
			continue
		case <-keepAlive.C:
			buf = append(buf[:0], ":\n\n"...)
		case ev, ok := <-events:
			if !ok {
				return nil // the bus closed
			}
			buf = buf[:0]
			if d := sub.Dropped(); d > seenDrops {
				buf = dropComment(buf, d-seenDrops)
				g.dropped.Add(d - seenDrops)
				if seenDrops == 0 {
					s.log.LogAttrs(ctx, slog.LevelWarn, "api: event stream too slow, dropping events",
						logPath(rq.r), slog.String("ip", rq.ip), slog.Uint64("dropped", d))
				}
				seenDrops = d
			}
			buf = appendSSEEvent(buf, &ev, sp.product)
			closed := false
		batch:
			for n := 1; n < maxBatchEvents && len(buf) < maxBatchBytes; n++ {
				select {
				case ev, ok = <-events:
					if !ok {
						closed = true
						break batch
					}
					buf = appendSSEEvent(buf, &ev, sp.product)
				default:
					break batch
				}
			}
			if closed {
				_ = write(buf)
				return nil
			}
		}
		if err := write(buf); err != nil {
			return nil
		}
		keepAlive.Reset(s.cfg.SSEKeepAlive)
		if cap(buf) > 4*maxBatchBytes {
			buf = make([]byte, 0, 1024) // do not keep a huge replay's buffer
		}
	}
}

// accessEnded re-checks a stream's access (streamwatch.go) and reports
// whether the stream must end, after telling the client why in a comment.
func (s *server) accessEnded(rq *request, a *streamAccess, full bool, write func([]byte) error) bool {
	err := s.streamAllowed(rq.ctx, a, full)
	if err == nil {
		return false
	}
	if !errors.Is(err, errAccessEnded) {
		s.log.LogAttrs(rq.ctx, slog.LevelDebug, "api: stream access check failed; will retry",
			logPath(rq.r), slog.Any("err", err))
		return false
	}
	s.streams.revoked.Add(1)
	s.log.LogAttrs(rq.ctx, slog.LevelDebug, "api: stream closed: access ended", logPath(rq.r), slog.String("ip", rq.ip))
	_ = write([]byte(": access ended: the token was revoked or expired, or its holder lost access\n\n"))
	return true
}

// dropComment appends the comment telling a client that n events were
// dropped because it read too slowly.
func dropComment(b []byte, n uint64) []byte {
	b = append(b, ": "...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, " events dropped: this stream is reading too slowly\n\n"...)
}

// beforeWindow reports whether events after lastID have already left the
// bus's replay window, so that a resumed stream may miss some. It can tell
// only with JetStream (the stream's first sequence); the in-process ring
// does not say where its window starts, so there it reports false.
func (s *server) beforeWindow(ctx context.Context, lastID uint64) bool {
	js := s.bus.JetStream()
	if js == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, s.bus.EventStream())
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelDebug, "api: replay window", slog.Any("err", err))
		return false
	}
	info, err := st.Info(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.LogAttrs(ctx, slog.LevelDebug, "api: replay window", slog.Any("err", err))
		}
		return false
	}
	return lastID+1 < info.State.FirstSeq
}

// appendSSEEvent appends one event in the wire format of
// docs/particle-api.md#event-streams:
//
//	id: <ID>
//	event: <name>
//	data: {"data":"…","ttl":60,"published_at":"2025-03-01T14:00:00.000Z","coreid":"…"}
//	(blank line)
//
// data is null when empty. Product streams add "userid" (the owner user,
// or null), "version" (the product firmware version), "public" and
// "productID". A CR or LF in a name (never accepted from the API) becomes
// a space, so that it cannot break the framing.
func appendSSEEvent(b []byte, e *bus.Event, product bool) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, "\nevent: "...)
	for i := 0; i < len(e.Name); i++ {
		c := e.Name[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	b = append(b, "\ndata: {\"data\":"...)
	if e.Data == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, e.Data)
	}
	b = append(b, ",\"ttl\":"...)
	b = strconv.AppendInt(b, int64(e.TTL), 10)
	b = append(b, ",\"published_at\":\""...)
	b = e.PublishedAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, "\",\"coreid\":"...)
	b = appendJSONString(b, e.DeviceID)
	if product {
		b = append(b, ",\"userid\":"...)
		if e.UserID == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, e.UserID)
		}
		b = append(b, ",\"version\":"...)
		b = strconv.AppendInt(b, int64(e.ProductVersion), 10)
		b = append(b, ",\"public\":"...)
		b = strconv.AppendBool(b, e.Public)
		b = append(b, ",\"productID\":"...)
		b = strconv.AppendInt(b, e.ProductID, 10)
	}
	return append(b, "}\n\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string on one line: quotes,
// backslashes and control characters escaped, each invalid UTF-8 byte
// replaced by U+FFFD (as encoding/json does), U+2028 and U+2029 escaped,
// and, unlike encoding/json, no HTML escaping of <, > and &.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
