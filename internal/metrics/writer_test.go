package metrics

import (
	"bytes"
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWriter: what the writer renders for each kind of input, and which
// inputs it refuses (left out, with an error).
func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		collect func(w *Writer)
		want    string
		wantErr string // substring of Err; "" for none
	}{
		{
			name:    "empty",
			collect: func(w *Writer) {},
			want:    "",
		},
		{
			name:    "counter without labels",
			collect: func(w *Writer) { w.Counter("wick_x_total", "Things.", 42) },
			want:    "# HELP wick_x_total Things.\n# TYPE wick_x_total counter\nwick_x_total 42\n",
		},
		{
			name:    "counter max uint64 is exact",
			collect: func(w *Writer) { w.Counter("c_total", "h", math.MaxUint64) },
			want:    "# HELP c_total h\n# TYPE c_total counter\nc_total 18446744073709551615\n",
		},
		{
			name: "gauge values",
			collect: func(w *Writer) {
				for _, v := range []struct {
					l string
					v float64
				}{{"int", 3}, {"neg", -2}, {"frac", 0.25}, {"big", 1e20}, {"nan", math.NaN()}, {"inf", math.Inf(1)}, {"ninf", math.Inf(-1)}} {
					w.Gauge("g", "Gauge.", v.v, Label{"v", v.l})
				}
			},
			want: "# HELP g Gauge.\n# TYPE g gauge\n" +
				"g{v=\"big\"} 1e+20\ng{v=\"frac\"} 0.25\ng{v=\"inf\"} +Inf\ng{v=\"int\"} 3\n" +
				"g{v=\"nan\"} NaN\ng{v=\"neg\"} -2\ng{v=\"ninf\"} -Inf\n",
		},
		{
			name: "label escaping",
			collect: func(w *Writer) {
				w.Gauge("g", "h", 1, Label{"path", "C:\\dir\n\"q\""})
			},
			want: "# HELP g h\n# TYPE g gauge\ng{path=\"C:\\\\dir\\n\\\"q\\\"\"} 1\n",
		},
		{
			name:    "invalid UTF-8 in a label value is repaired",
			collect: func(w *Writer) { w.Gauge("g", "h", 1, Label{"v", "a\xffb"}) },
			want:    "# HELP g h\n# TYPE g gauge\ng{v=\"a\uFFFDb\"} 1\n",
		},
		{
			name:    "help escaping (quotes stay)",
			collect: func(w *Writer) { w.Gauge("g", "a \\ b\n\"c\"", 1) },
			want:    "# HELP g a \\\\ b\\n\"c\"\n# TYPE g gauge\ng 1\n",
		},
		{
			name: "families sorted by name, samples by labels, labels by name",
			collect: func(w *Writer) {
				w.Counter("b_total", "B.", 2, Label{"z", "1"}, Label{"a", "2"})
				w.Counter("b_total", "B.", 1, Label{"a", "1"}, Label{"z", "9"})
				w.Gauge("a", "A.", 1)
			},
			want: "# HELP a A.\n# TYPE a gauge\na 1\n" +
				"# HELP b_total B.\n# TYPE b_total counter\nb_total{a=\"1\",z=\"9\"} 1\nb_total{a=\"2\",z=\"1\"} 2\n",
		},
		{
			name: "first help wins",
			collect: func(w *Writer) {
				w.Counter("c_total", "First.", 1, Label{"r", "a"})
				w.Counter("c_total", "Second.", 2, Label{"r", "b"})
			},
			want: "# HELP c_total First.\n# TYPE c_total counter\nc_total{r=\"a\"} 1\nc_total{r=\"b\"} 2\n",
		},
		{
			name:    "invalid metric name",
			collect: func(w *Writer) { w.Gauge("0bad", "h", 1); w.Gauge("ok", "h", 1) },
			want:    "# HELP ok h\n# TYPE ok gauge\nok 1\n",
			wantErr: `invalid metric name "0bad"`,
		},
		{
			name:    "metric name with a dash",
			collect: func(w *Writer) { w.Gauge("a-b", "h", 1) },
			want:    "",
			wantErr: "invalid metric name",
		},
		{
			name:    "invalid label name",
			collect: func(w *Writer) { w.Gauge("g", "h", 1, Label{"a b", "x"}) },
			want:    "",
			wantErr: `invalid label name "a b"`,
		},
		{
			name:    "reserved label name",
			collect: func(w *Writer) { w.Gauge("g", "h", 1, Label{"__name__", "x"}) },
			want:    "",
			wantErr: "invalid label name",
		},
		{
			name:    "label given twice",
			collect: func(w *Writer) { w.Gauge("g", "h", 1, Label{"a", "x"}, Label{"a", "y"}) },
			want:    "",
			wantErr: `label "a" given twice`,
		},
		{
			name: "series written twice keeps the first",
			collect: func(w *Writer) {
				w.Counter("c_total", "h", 1, Label{"a", "x"}, Label{"b", "y"})
				w.Counter("c_total", "h", 2, Label{"b", "y"}, Label{"a", "x"})
			},
			want:    "# HELP c_total h\n# TYPE c_total counter\nc_total{a=\"x\",b=\"y\"} 1\n",
			wantErr: "series written twice",
		},
		{
			name: "type conflict keeps the first type",
			collect: func(w *Writer) {
				w.Counter("m", "h", 1, Label{"a", "1"})
				w.Gauge("m", "h", 2, Label{"a", "2"})
			},
			want:    "# HELP m h\n# TYPE m counter\nm{a=\"1\"} 1\n",
			wantErr: "written as counter and as gauge",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(context.Background())
			tt.collect(w)
			var b bytes.Buffer
			n, err := w.WriteTo(&b)
			if err != nil || n != int64(b.Len()) {
				t.Fatalf("WriteTo = %d, %v; buffer has %d", n, err, b.Len())
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			err = w.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Err = %v; want it to contain %q", err, tt.wantErr)
			}
			if _, err := parseExposition(b.String()); err != nil {
				t.Errorf("output does not parse back: %v", err)
			}
		})
	}
}

// wickSample is a representative scrape: a few families of each kind,
// labelled and not, added out of order.
func wickSample(w *Writer) {
	w.Gauge("wick_sse_streams_open", "Event streams open now.", 3)
	w.Counter("wick_handshakes_total", "Device handshakes by result.", 7, Label{"result", "ok"})
	w.Counter("wick_handshakes_total", "Device handshakes by result.", 2, Label{"result", "failed"})
	w.Counter("wick_bus_events_published_total", "Events published by this process.", 123456789)
	w.Counter("wick_handshakes_refused_total", "Handshakes refused, by reason.", 1, Label{"reason", "unknown"})
	w.Counter("wick_handshakes_refused_total", "Handshakes refused, by reason.", 0, Label{"reason", "key"})
	w.Counter("wick_handshakes_refused_total", "Handshakes refused, by reason.", 1, Label{"reason", "denied"})
	w.Gauge("wick_devices_online", "Devices with an established session.", 0)
	w.Gauge("wick_test_label_escapes", "A help text with a \\ backslash\nand a second line.", 1,
		Label{"node", `host "a"`}, Label{"path", `C:\wick`})
}

// TestGolden compares a representative scrape with testdata/wick.golden
// (go test -run TestGolden -update rewrites it), and reads it back.
func TestGolden(t *testing.T) {
	w := NewWriter(context.Background())
	wickSample(w)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "wick.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("exposition differs from %s:\ngot\n%s\nwant\n%s", path, b.String(), want)
	}

	fams, err := parseExposition(string(want))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]parsedFamily{}
	for _, f := range fams {
		byName[f.Name] = f
	}
	if len(fams) != 6 {
		t.Errorf("families = %d; want 6", len(fams))
	}
	hs := byName["wick_handshakes_total"]
	if hs.Type != "counter" || len(hs.Samples) != 2 {
		t.Fatalf("wick_handshakes_total = %+v", hs)
	}
	if s := hs.Samples[1]; s.Labels["result"] != "ok" || s.Value != 7 {
		t.Errorf("handshakes ok sample = %+v", s)
	}
	esc := byName["wick_test_label_escapes"]
	if esc.Help != "A help text with a \\ backslash\nand a second line." {
		t.Errorf("help read back = %q", esc.Help)
	}
	if got := esc.Samples[0].Labels; !reflect.DeepEqual(got, map[string]string{"node": `host "a"`, "path": `C:\wick`}) {
		t.Errorf("labels read back = %q", got)
	}
	if v := byName["wick_bus_events_published_total"].Samples[0].Value; v != 123456789 {
		t.Errorf("published read back = %v", v)
	}
}

// TestParseBackRejects keeps the test parser honest: it refuses what a
// Prometheus server would refuse or what this package must never write.
func TestParseBackRejects(t *testing.T) {
	for _, text := range []string{
		"# HELP a h\n# TYPE a gauge\na 1",          // no final line feed
		"a 1\n",                                    // no HELP
		"# HELP a h\na 1\n",                        // no TYPE
		"# HELP a h\n# TYPE a gauge\nb 1\n",        // wrong family
		"# HELP a h\n# TYPE a gauge\na{x=\"1} 1\n", // unterminated value
		"# HELP a h\n# TYPE a gauge\na 1\n# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\n",      // family twice
		"# HELP a h\n# TYPE a gauge\na one\n",                                              // bad value
		"# HELP a h\n# TYPE a histogram\na 1\n",                                            // unsupported type
		"# HELP a h\n# TYPE a gauge\n",                                                     // no samples
		"# HELP a h\n# TYPE a gauge\na{x=\"\\t\"} 1\n",                                     // bad escape
		"# HELP a h\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",                               // label twice
		"# HELP a bad\\t escape\n# TYPE a gauge\na 1\n",                                    // bad help escape
		"# HELP a h\n# TYPE a gauge\na{x=\"1\"}1\n",                                        // no space
		"# HELP a h\n# TYPE a gauge\na{x=\"1\" 1\n",                                        // labels not closed
		"# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b counter\n",                  // second family empty
		"# HELP a h\n# TYPE a gauge\na{=\"1\"} 1\n",                                        // empty label name
		"# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\n# HELP b h\nb 1\n",      // TYPE before HELP
		"# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b h\n# TYPE b gauge\nb 1 1000\n", // timestamp
	} {
		if _, err := parseExposition(text); err == nil {
			t.Errorf("parseExposition(%q) succeeded", text)
		}
	}
}

// TestFormatFloat covers the boundary of the integer form.
func TestFormatFloat(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {999999999999999, "999999999999999"},
		{1e15, "1e+15"}, {-1.5, "-1.5"}, {1e-7, "1e-07"}, {0.1, "0.1"},
	} {
		if got := formatFloat(tt.v); got != tt.want {
			t.Errorf("formatFloat(%v) = %q; want %q", tt.v, got, tt.want)
		}
	}
}

// BenchmarkWriter measures a scrape of 60 samples in 12 families, about
// the size of Wick's own.
func BenchmarkWriter(b *testing.B) {
	b.ReportAllocs()
	var names [12]string
	for f := range names {
		names[f] = "wick_family_" + string(rune('a'+f)) + "_total"
	}
	var buf bytes.Buffer
	for i := 0; i < b.N; i++ {
		w := NewWriter(context.Background())
		for _, n := range names {
			for j := 0; j < 5; j++ {
				w.Counter(n, "A family.", uint64(i+j), Label{"result", string(rune('a' + j))})
			}
		}
		buf.Reset()
		w.WriteTo(&buf)
	}
}
