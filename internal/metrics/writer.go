package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type, as written on its # TYPE line.
type Type string

// The metric types this package writes.
const (
	TypeCounter Type = "counter" // a value that only goes up (resets at restart)
	TypeGauge   Type = "gauge"   // a value that goes up and down
)

// Label is one name="value" pair of a sample.
type Label struct {
	Name, Value string
}

// Writer gathers the samples of one scrape; collectors add to it and
// WriteTo renders it. A Writer is not safe for concurrent use: collectors
// run one at a time.
type Writer struct {
	ctx  context.Context
	fams map[string]*family
	errs []error
}

// family is one metric name with its help, type and samples.
type family struct {
	name, help string
	typ        Type
	samples    map[string]string // rendered labels ("" or {a="b"}) → rendered value
}

// NewWriter returns an empty Writer whose Context is ctx.
func NewWriter(ctx context.Context) *Writer {
	if ctx == nil {
		ctx = context.Background()
	}
	return &Writer{ctx: ctx, fams: make(map[string]*family)}
}

// Context is the scrape's context: it ends when the scraper goes away.
func (w *Writer) Context() context.Context { return w.ctx }

// Counter adds a sample of the counter family name. help is written once
// per family (the first one given wins).
func (w *Writer) Counter(name, help string, value uint64, labels ...Label) {
	w.add(name, help, TypeCounter, strconv.FormatUint(value, 10), labels)
}

// Gauge adds a sample of the gauge family name.
func (w *Writer) Gauge(name, help string, value float64, labels ...Label) {
	w.add(name, help, TypeGauge, formatFloat(value), labels)
}

// Errorf records a collector's failure; Err and the Registry report it.
func (w *Writer) Errorf(format string, args ...any) {
	w.errs = append(w.errs, fmt.Errorf("metrics: "+format, args...))
}

// Err returns every error recorded so far, joined, or nil.
func (w *Writer) Err() error { return errors.Join(w.errs...) }

// add validates and stores one sample; an invalid one is recorded as an
// error and left out.
func (w *Writer) add(name, help string, typ Type, value string, labels []Label) {
	if !validMetricName(name) {
		w.Errorf("invalid metric name %q", name)
		return
	}
	f := w.fams[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ, samples: make(map[string]string)}
		w.fams[name] = f
	} else if f.typ != typ {
		w.Errorf("%s: written as %s and as %s", name, f.typ, typ)
		return
	}
	ls, err := renderLabels(labels)
	if err != nil {
		w.Errorf("%s: %v", name, err)
		return
	}
	if _, dup := f.samples[ls]; dup {
		w.Errorf("%s%s: series written twice", name, ls)
		return
	}
	f.samples[ls] = value
}

// WriteTo writes the exposition text: families sorted by name, each with
// its # HELP and # TYPE lines, then its samples sorted by labels. It
// returns the bytes written and the first write error; invalid samples
// are not write errors (see Err).
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	cw := &countWriter{w: out}
	bw := bufio.NewWriter(cw)
	names := make([]string, 0, len(w.fams))
	for n := range w.fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := w.fams[n]
		if len(f.samples) == 0 {
			continue // every sample was invalid
		}
		bw.WriteString("# HELP ")
		bw.WriteString(n)
		bw.WriteByte(' ')
		bw.WriteString(escapeHelp(f.help))
		bw.WriteString("\n# TYPE ")
		bw.WriteString(n)
		bw.WriteByte(' ')
		bw.WriteString(string(f.typ))
		bw.WriteByte('\n')
		keys := make([]string, 0, len(f.samples))
		for k := range f.samples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			bw.WriteString(n)
			bw.WriteString(k)
			bw.WriteByte(' ')
			bw.WriteString(f.samples[k])
			bw.WriteByte('\n')
		}
	}
	err := bw.Flush()
	return cw.n, err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// renderLabels returns {a="x",b="y"} with the labels sorted by name and
// their values escaped, or "" for none.
func renderLabels(labels []Label) (string, error) {
	if len(labels) == 0 {
		return "", nil
	}
	ls := append([]Label(nil), labels...)
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if !validLabelName(l.Name) {
			return "", fmt.Errorf("invalid label name %q", l.Name)
		}
		if i > 0 {
			if ls[i-1].Name == l.Name {
				return "", fmt.Errorf("label %q given twice", l.Name)
			}
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(escapeLabelValue(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// escapeHelp escapes a help text: backslash and line feed (format 0.0.4).
func escapeHelp(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, "\\\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabelValue escapes a label value: backslash, double quote and line
// feed; invalid UTF-8 becomes U+FFFD.
func escapeLabelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// formatFloat renders a sample value: whole numbers without an exponent
// (up to 1e15, where float64 is still exact), NaN and ±Inf as Prometheus
// spells them, anything else in the shortest exact form.
func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with the reserved "__".
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
