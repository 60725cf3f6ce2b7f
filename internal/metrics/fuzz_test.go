package metrics

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
)

// FuzzRoundTrip writes a gauge with arbitrary help, label value and value,
// and reads it back: the text must parse, and hold what was written.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []struct {
		help, label string
		v           float64
	}{
		{"Plain.", "ok", 1},
		{"a \\ b\n\"c\"", "C:\\dir\n\"q\"", -0.25},
		{"", "", math.Inf(1)},
		{"\xff", "a\xffb", 1e300},
		{"\\n", "\\\"", math.NaN()},
	} {
		f.Add(s.help, s.label, s.v)
	}
	f.Fuzz(func(t *testing.T, help, label string, v float64) {
		w := NewWriter(context.Background())
		w.Gauge("wick_fuzz", help, v, Label{"l", label})
		w.Counter("wick_fuzz_total", help, math.Float64bits(v), Label{"l", label})
		if err := w.Err(); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w.WriteTo(&b)
		fams, err := parseExposition(b.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		if len(fams) != 2 {
			t.Fatalf("families = %d", len(fams))
		}
		g, c := fams[0], fams[1]
		wantHelp := strings.ToValidUTF8(help, "\uFFFD")
		wantLabel := strings.ToValidUTF8(label, "\uFFFD")
		if g.Help != wantHelp || g.Samples[0].Labels["l"] != wantLabel {
			t.Errorf("read back help %q label %q; want %q %q", g.Help, g.Samples[0].Labels["l"], wantHelp, wantLabel)
		}
		got := g.Samples[0].Value
		if !(got == v || math.IsNaN(got) && math.IsNaN(v)) {
			t.Errorf("read back value %v; want %v", got, v)
		}
		if want := float64(math.Float64bits(v)); c.Samples[0].Value != want {
			t.Errorf("read back counter %v; want %v", c.Samples[0].Value, want)
		}
	})
}

// FuzzParseStatm: parseStatm never panics, and what it accepts is the
// second field.
func FuzzParseStatm(f *testing.F) {
	for _, s := range []string{"5504 1234 890 1 0 3000 0\n", "", "1", "1 x", " \t\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := parseStatm(b)
		if !ok {
			return
		}
		fields := bytes.Fields(b)
		if len(fields) < 2 || string(fields[1]) == "" {
			t.Fatalf("accepted %q with fields %q", b, fields)
		}
		if n == 0 && strings.Trim(string(fields[1]), "0") != "" {
			t.Errorf("parseStatm(%q) = 0", b)
		}
	})
}
