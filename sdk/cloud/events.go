package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PublishOptions are the optional parameters of Publish.
type PublishOptions struct {
	// Product, when not "", publishes as the product (a team member's or
	// product token) to its devices.
	Product string
	// Public publishes a public event; events are private by default.
	Public bool
	// TTL is the time to live in seconds; 0 means the default (60).
	TTL int
}

// Publish is POST /v1/devices/events (or /v1/products/{p}/events): it
// publishes an event named name with data.
func (c *Client) Publish(ctx context.Context, name, data string, o *PublishOptions) error {
	if o == nil {
		o = &PublishOptions{}
	}
	form := url.Values{"name": {name}, "data": {data}, "private": {strconv.FormatBool(!o.Public)}}
	if o.TTL > 0 {
		form.Set("ttl", strconv.Itoa(o.TTL))
	}
	path := "/v1/devices/events"
	if o.Product != "" {
		path = productPath(o.Product) + "/events"
	}
	return c.do(ctx, call{method: "POST", path: path, form: form}, nil)
}

// Event is one event of a stream.
type Event struct {
	// ID is the event's ID on the server (its id: field), which
	// Last-Event-ID resumes after.
	ID string
	// Name is the event's name.
	Name string
	// Data is the event's data ("" when none).
	Data string
	// TTL is the time to live in seconds.
	TTL int
	// PublishedAt is when the cloud accepted the event.
	PublishedAt time.Time
	// CoreID is the publishing device's ID, or "api" for events
	// published through the API.
	CoreID string
	// ProductID is the product of a product stream's event, else 0.
	ProductID int64
	// Raw is the data: line as received, for fields this type lacks.
	Raw json.RawMessage
}

// eventJSON is the data: line of a Wick event.
type eventJSON struct {
	Data        *string `json:"data"`
	TTL         int     `json:"ttl"`
	PublishedAt string  `json:"published_at"`
	CoreID      string  `json:"coreid"`
	ProductID   int64   `json:"productID"`
}

// decodeEvent builds an Event of a parsed stream event. Data that is not
// Wick's JSON object is kept whole in Data.
func decodeEvent(id string, ev sseEvent) Event {
	out := Event{ID: id, Name: ev.name, Raw: json.RawMessage(ev.data)}
	var v eventJSON
	if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
		out.Data, out.Raw = ev.data, nil
		return out
	}
	if v.Data != nil {
		out.Data = *v.Data
	}
	out.TTL, out.CoreID, out.ProductID = v.TTL, v.CoreID, v.ProductID
	out.PublishedAt, _ = time.Parse(time.RFC3339Nano, v.PublishedAt)
	return out
}

// StreamOptions select the events of Subscribe and tune reconnection.
type StreamOptions struct {
	// Prefix keeps the events whose name starts with it ("" for all).
	Prefix string
	// DeviceID, when not "", keeps one device's events.
	DeviceID string
	// Product, when not "", reads the product's stream (with DeviceID,
	// one device of the product).
	Product string
	// Public reads the public stream, /v1/events/{prefix} (Prefix is
	// then required), instead of the caller's devices.
	Public bool
	// LastEventID, when not "", resumes after that event.
	LastEventID string
	// MinBackoff is the first wait before reconnecting (default 500 ms);
	// each failed attempt doubles it up to MaxBackoff (default 30 s). Each
	// wait is drawn from its upper half at random.
	MinBackoff, MaxBackoff time.Duration
	// OnComment, if set, is called with each comment line the server
	// sends (such as "events dropped" notices), from the stream's
	// goroutine.
	OnComment func(string)
}

// streamPath is the URL path of o's stream.
func (o *StreamOptions) streamPath() string {
	var b strings.Builder
	switch {
	case o.Product != "" && o.DeviceID != "":
		b.WriteString(productPath(o.Product) + "/devices/" + pathEscape(o.DeviceID) + "/events")
	case o.Product != "":
		b.WriteString(productPath(o.Product) + "/events")
	case o.DeviceID != "":
		b.WriteString(devicePath(o.DeviceID) + "/events")
	case o.Public:
		b.WriteString("/v1/events")
	default:
		b.WriteString("/v1/devices/events")
	}
	if o.Prefix != "" {
		for _, seg := range strings.Split(o.Prefix, "/") {
			b.WriteString("/" + pathEscape(seg))
		}
	}
	return b.String()
}

// Stream is an open event stream. Next returns its events in order; after
// a dropped connection the stream reconnects by itself, with backoff,
// sending Last-Event-ID so that the server replays what was missed.
type Stream struct {
	c      *Client
	opts   StreamOptions
	path   string
	cancel context.CancelFunc
	events chan Event
	done   chan struct{} // closed when the goroutine ends
	closed chan struct{} // closed by Close
	once   sync.Once

	mu         sync.Mutex
	lastID     string
	err        error // why the stream ended
	reconnects int
}

// Subscribe opens an event stream. The first connection is made before it
// returns, so that a refused stream (401, 404, 429) is its error; later
// connections are the stream's own business until Close or ctx ends it.
func (c *Client) Subscribe(ctx context.Context, o StreamOptions) (*Stream, error) {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Public && o.Prefix == "" {
		return nil, errors.New("cloud: the public stream needs a prefix")
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{c: c, opts: o, path: o.streamPath(), cancel: cancel,
		events: make(chan Event, 16), done: make(chan struct{}), closed: make(chan struct{}),
		lastID: o.LastEventID}
	resp, err := s.open(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go s.run(sctx, resp)
	return s, nil
}

// open connects once, sending the last event ID seen.
func (s *Stream) open(ctx context.Context) (*http.Response, error) {
	req, err := s.c.newRequest(ctx, call{method: "GET", path: s.path})
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if id := s.LastEventID(); id != "" {
		req.Header.Set("Last-Event-ID", id)
	}
	resp, err := s.c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("cloud: open stream %s: %w", s.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// permanent reports whether a failed open is not worth retrying: the
// credentials or the stream are wrong.
func permanent(err error) bool {
	switch StatusCode(err) {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// run reads connections until the context ends or a reconnection fails
// for good.
func (s *Stream) run(ctx context.Context, resp *http.Response) {
	defer close(s.done)
	defer close(s.events)
	var retry time.Duration
	for {
		p := newSSEParser(resp.Body, s.opts.OnComment)
		err := s.read(ctx, p)
		resp.Body.Close()
		if ctx.Err() != nil {
			s.finish(ctx.Err())
			return
		}
		if p.retry > 0 {
			retry = p.retry // the server's "retry:" holds until it sends another
		}
		backoff := s.opts.MinBackoff
		if retry > backoff {
			backoff = min(retry, s.opts.MaxBackoff)
		}
		_ = err // a dropped connection is retried whatever the cause
		for {
			wait := jitter(backoff)
			var ce *Error
			if errors.As(err, &ce) && ce.RetryAfter > wait {
				wait = ce.RetryAfter
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				s.finish(ctx.Err())
				return
			case <-t.C:
			}
			resp, err = s.open(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.finish(ctx.Err())
				return
			}
			if permanent(err) {
				s.finish(err)
				return
			}
			backoff = min(backoff*2, s.opts.MaxBackoff)
		}
		s.mu.Lock()
		s.reconnects++
		s.mu.Unlock()
	}
}

// jitter spreads a wait over [d/2, d], so that clients cut off together
// do not all reconnect at the same instant.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// read delivers the events of one connection until it ends.
func (s *Stream) read(ctx context.Context, p *sseParser) error {
	for {
		ev, err := p.next()
		if err != nil {
			return err
		}
		s.mu.Lock()
		if ev.hasID {
			s.lastID = ev.id
		}
		id := s.lastID
		s.mu.Unlock()
		if !ev.hasData {
			continue
		}
		select {
		case s.events <- decodeEvent(id, ev):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finish records why the stream ended.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Next returns the next event. It returns ctx's error when ctx ends first,
// and the stream's error once the stream is over (ErrStreamClosed after
// Close).
func (s *Stream) Next(ctx context.Context) (Event, error) {
	select {
	case <-s.closed:
		return Event{}, ErrStreamClosed
	default:
	}
	select {
	case ev, ok := <-s.events:
		if !ok {
			return Event{}, s.Err()
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Events returns the channel Next reads, for use in select; it is closed
// when the stream ends (Err says why).
func (s *Stream) Events() <-chan Event { return s.events }

// ErrStreamClosed is the error of a stream ended by Close or by the end of
// its context.
var ErrStreamClosed = errors.New("cloud: stream closed")

// Err returns why the stream ended, nil while it runs.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(s.err, context.Canceled) || errors.Is(s.err, context.DeadlineExceeded) {
		return ErrStreamClosed
	}
	return s.err
}

// LastEventID returns the ID of the last event received (or the one the
// stream started after): what a reconnection sends.
func (s *Stream) LastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// Reconnects returns how many times the stream has reconnected.
func (s *Stream) Reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnects
}

// Close ends the stream and waits for its goroutine; it always returns
// nil.
func (s *Stream) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.cancel()
		// Drain so that a blocked send sees the cancellation.
		go func() {
			for range s.events {
			}
		}()
	})
	<-s.done
	return nil
}

var _ io.Closer = (*Stream)(nil)
