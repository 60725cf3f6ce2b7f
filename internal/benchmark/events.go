package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Streams are SSE streams reading the devices' events, open until Close.
type Streams struct {
	env     *Env
	n       int
	cur     atomic.Pointer[meter]
	dropped atomic.Int64 // events announced dropped, since OpenStreams
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// OpenStreams opens n streams of GET /v1/devices/events/<EventName>, each
// on its own connection and read by its own goroutine, and returns once
// every one answered 200.
func (e *Env) OpenStreams(ctx context.Context, n int) (*Streams, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Streams{env: e, n: n, cancel: cancel}
	errc := make(chan error, n)
	for range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(sctx, errc)
		}()
	}
	for range n {
		select {
		case err := <-errc:
			if err != nil {
				s.Close()
				return nil, err
			}
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// open starts one stream and returns its body.
func (s *Streams) open(ctx context.Context) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.env.URL+"/v1/devices/events/"+EventName, nil)
	if err != nil {
		return nil, fmt.Errorf("benchmark: stream: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.env.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.env.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("benchmark: stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("benchmark: stream: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return resp.Body, nil
}

// run opens a stream, reports the result of the first open to errc, and
// reads it until ctx ends, reopening it (and counting an error) whenever
// it ends.
func (s *Streams) run(ctx context.Context, errc chan<- error) {
	body, err := s.open(ctx)
	errc <- err
	if err != nil {
		return
	}
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		err := s.read(br)
		body.Close()
		if ctx.Err() != nil {
			return
		}
		report(&s.cur, 0, "stream ended", fmt.Errorf("benchmark: stream ended: %w", err))
		for {
			pause(ctx)
			if ctx.Err() != nil {
				return
			}
			if body, err = s.open(ctx); err == nil {
				break
			}
			report(&s.cur, 0, "stream open", err)
		}
		br.Reset(body)
	}
}

// read parses one stream until it fails: every data line of a benchmark
// event is a delivery with the latency from its publish time; drop
// comments are counted.
func (s *Streams) read(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // not ours: skip the rest
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			return err
		}
		if ns, ok := parseStamp(line); ok {
			report(&s.cur, time.Duration(time.Now().UnixNano()-ns), "", nil)
		} else if n, ok := parseDropped(line); ok {
			s.dropped.Add(n)
		}
	}
}

// Measure measures the delivery of events to the open streams.
func (s *Streams) Measure(ctx context.Context, m Measure) (*Result, error) {
	e := s.env
	var pub0 int64
	start := m.OnStart
	m.OnStart = func() {
		pub0 = e.published()
		if start != nil {
			start()
		}
	}
	drop0 := s.dropped.Load()
	w, err := measure(ctx, Events, "delivered/s", m, &s.cur, s.dropped.Load)
	if err != nil {
		return nil, err
	}
	r := e.result(Events, "delivered/s", w)
	r.Streams = s.n
	r.Published = e.published() - pub0
	r.Expected = r.Published * int64(s.n)
	r.Dropped = s.dropped.Load() - drop0
	r.Goal = goal(Events, r)
	return r, nil
}

// Close ends the streams and waits for their readers.
func (s *Streams) Close() {
	s.cancel()
	s.wg.Wait()
}

// dataPrefix starts the data line of an event
// (docs/particle-api.md#event-streams), followed by the event's data as a JSON
// string.
var dataPrefix = []byte(`data: {"data":"`)

// parseStamp returns the publish time, in Unix nanoseconds, of an SSE data
// line whose event data is a decimal number (sim.Config.PublishTime).
func parseStamp(line []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(line, dataPrefix)
	if !ok {
		return 0, false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return 0, false
	}
	var v int64
	for _, c := range rest[:end] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// dropPrefix and dropSuffix frame the comment by which the server tells a
// stream that it lost events: ": 12 events dropped: ...".
var (
	dropPrefix = []byte(": ")
	dropSuffix = []byte(" events dropped")
)

// parseDropped returns the count of a drop comment.
func parseDropped(line []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(line, dropPrefix)
	if !ok {
		return 0, false
	}
	end := bytes.Index(rest, dropSuffix)
	if end <= 0 {
		return 0, false
	}
	var v int64
	for _, c := range rest[:end] {
		if c < '0' || c > '9' || v > math.MaxInt64/10-9 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
