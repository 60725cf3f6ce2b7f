package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestRegistry: collectors run on every gather, their samples merge into
// one sorted text, a panicking collector costs only its own samples, and
// names are unique.
func TestRegistry(t *testing.T) {
	r := NewRegistry()
	calls := 0
	if err := r.Register("b", func(w *Writer) {
		calls++
		w.Counter("wick_b_total", "B.", uint64(calls))
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("a", func(w *Writer) { w.Gauge("wick_a", "A.", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("a", func(w *Writer) {}); err == nil {
		t.Error("duplicate collector name accepted")
	}
	if err := r.Register("nil", nil); err == nil {
		t.Error("nil collector accepted")
	}
	if err := r.Register("boom", func(w *Writer) {
		w.Gauge("wick_boom_before", "Kept.", 1)
		panic("collector bug")
	}); err != nil {
		t.Fatal(err)
	}

	var b bytes.Buffer
	n, err := r.WriteTo(context.Background(), &b)
	if err == nil || !strings.Contains(err.Error(), `collector "boom" panicked: collector bug`) {
		t.Errorf("WriteTo err = %v; want the panic", err)
	}
	want := "# HELP wick_a A.\n# TYPE wick_a gauge\nwick_a 1\n" +
		"# HELP wick_b_total B.\n# TYPE wick_b_total counter\nwick_b_total 1\n" +
		"# HELP wick_boom_before Kept.\n# TYPE wick_boom_before gauge\nwick_boom_before 1\n"
	if b.String() != want || n != int64(len(want)) {
		t.Errorf("WriteTo = %d\n%s\nwant\n%s", n, b.String(), want)
	}
	b.Reset()
	r.WriteTo(context.Background(), &b)
	if !strings.Contains(b.String(), "wick_b_total 2\n") {
		t.Errorf("second gather did not run the collector again:\n%s", b.String())
	}
}

// TestRegistryContext: collectors see the scrape's context.
func TestRegistryContext(t *testing.T) {
	type key struct{}
	r := NewRegistry()
	var got any
	r.Register("ctx", func(w *Writer) { got = w.Context().Value(key{}) })
	r.Gather(context.WithValue(context.Background(), key{}, "scrape"))
	if got != "scrape" {
		t.Errorf("collector context value = %v", got)
	}
	if NewWriter(nil).Context() == nil { //nolint:staticcheck // nil is documented to mean Background
		t.Error("NewWriter(nil) has a nil context")
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRegistryWriteError: a failing destination is reported as such.
func TestRegistryWriteError(t *testing.T) {
	r := NewRegistry()
	r.Register("a", func(w *Writer) { w.Gauge("a", "A.", 1) })
	if _, err := r.WriteTo(context.Background(), failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteTo err = %v; want the write error", err)
	}
}

// TestHandler: the HTTP handler serves the text with the 0.0.4 content
// type, answers HEAD without a body, and serves the valid samples when a
// collector fails, logging the failure.
func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.Register("a", func(w *Writer) {
		w.Counter("wick_a_total", "A.", 5, Label{"result", "ok"})
		w.Gauge("bad name", "", 1)
	})
	var logBuf bytes.Buffer
	h := r.Handler(slog.New(slog.NewTextHandler(&logBuf, nil)))

	for _, method := range []string{"GET", "HEAD"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/metrics", nil))
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ContentType {
			t.Errorf("%s: status %d, content type %q", method, res.StatusCode, res.Header.Get("Content-Type"))
		}
		full := "# HELP wick_a_total A.\n# TYPE wick_a_total counter\nwick_a_total{result=\"ok\"} 5\n"
		want := full
		if method == "HEAD" {
			want = ""
		}
		if string(body) != want {
			t.Errorf("%s body = %q; want %q", method, body, want)
		}
		if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(full)) {
			t.Errorf("%s Content-Length = %q", method, cl)
		}
	}
	if !strings.Contains(logBuf.String(), "metrics: scrape incomplete") || !strings.Contains(logBuf.String(), `bad name`) {
		t.Errorf("log = %q; want the invalid sample reported", logBuf.String())
	}
}

// TestRegistryConcurrent: registering and gathering from several
// goroutines is race-free (run with -race).
func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	r.Register("runtime", Runtime)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r.Register(string(rune('a'+i)), func(w *Writer) { w.Gauge("g", "G.", float64(i), Label{"i", string(rune('a' + i))}) })
			for j := 0; j < 20; j++ {
				if _, err := r.WriteTo(context.Background(), io.Discard); err != nil {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	var b bytes.Buffer
	r.WriteTo(context.Background(), &b)
	fams, err := parseExposition(b.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.Name == "g" && len(f.Samples) != 4 {
			t.Errorf("g has %d samples; want 4", len(f.Samples))
		}
	}
}
