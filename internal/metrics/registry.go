package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
)

// A Collector adds a component's samples to the Writer of one scrape. It
// must be quick and safe to call from any goroutine.
type Collector func(w *Writer)

// Registry holds the collectors of one process. Its zero value is not
// usable: build it with NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu         sync.Mutex
	collectors []entry // guarded by mu; in registration order
}

// entry is one registered collector.
type entry struct {
	name string
	fn   Collector
}

// NewRegistry returns a Registry with no collectors.
func NewRegistry() *Registry { return &Registry{} }

// Register adds the collector c under name, which names it in errors and
// must be unique in the registry.
func (r *Registry) Register(name string, c Collector) error {
	if c == nil {
		return fmt.Errorf("metrics: register %q: nil collector", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.collectors {
		if e.name == name {
			return fmt.Errorf("metrics: collector %q registered twice", name)
		}
	}
	r.collectors = append(r.collectors, entry{name: name, fn: c})
	return nil
}

// Gather runs every collector into a new Writer and returns it; Err on it
// reports invalid samples and collectors that panicked (their samples
// added before the panic are kept).
func (r *Registry) Gather(ctx context.Context) *Writer {
	r.mu.Lock()
	cs := append([]entry(nil), r.collectors...)
	r.mu.Unlock()
	w := NewWriter(ctx)
	for _, e := range cs {
		collect(w, e)
	}
	return w
}

// collect runs one collector, turning a panic into a recorded error.
func collect(w *Writer, e entry) {
	defer func() {
		if v := recover(); v != nil {
			w.Errorf("collector %q panicked: %v", e.name, v)
		}
	}()
	e.fn(w)
}

// WriteTo gathers and writes the exposition text to out. It returns the
// bytes written and the write error or, failing that, the gather errors
// (the text is written in full either way).
func (r *Registry) WriteTo(ctx context.Context, out io.Writer) (int64, error) {
	w := r.Gather(ctx)
	n, err := w.WriteTo(out)
	if err != nil {
		return n, fmt.Errorf("metrics: write: %w", err)
	}
	return n, w.Err()
}

// Handler serves the exposition text (GET /metrics). Gather errors are
// logged at warn and do not fail the scrape: the valid samples are served.
func (r *Registry) Handler(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		var buf bytes.Buffer
		w := r.Gather(req.Context())
		w.WriteTo(&buf) // a bytes.Buffer does not fail
		if err := w.Err(); err != nil {
			log.Warn("metrics: scrape incomplete", "err", err)
		}
		h := rw.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
		h.Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		rw.Write(buf.Bytes())
	})
}
