package metrics

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"testing"
)

// TestRuntime: the runtime collector's gauges parse back with plausible
// values; on Linux the /proc ones are there too.
func TestRuntime(t *testing.T) {
	w := NewWriter(context.Background())
	Runtime(w)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w.WriteTo(&b)
	fams, err := parseExposition(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	got := map[string]parsedFamily{}
	for _, f := range fams {
		got[f.Name] = f
	}
	positive := []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes", "go_info"}
	if _, err := os.Stat("/proc/self/statm"); err == nil {
		positive = append(positive, "process_open_fds", "process_resident_memory_bytes")
	}
	for _, name := range positive {
		f, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if v := f.Samples[0].Value; v <= 0 {
			t.Errorf("%s = %v; want > 0", name, v)
		}
	}
	if f := got["go_gc_cycles_total"]; f.Type != "counter" {
		t.Errorf("go_gc_cycles_total type %q", f.Type)
	}
	if v := got["go_info"].Samples[0].Labels["version"]; v != runtime.Version() {
		t.Errorf("go_info version = %q", v)
	}
}

// TestOpenFDs: opening a file raises the count by one.
func TestOpenFDs(t *testing.T) {
	before, ok := openFDs()
	if !ok {
		t.Skip("no /proc/self/fd on this system")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, _ := openFDs()
	if after != before+1 {
		t.Errorf("open fds %d → %d after one open; want +1", before, after)
	}
}

// TestParseStatm: the resident field, and what is refused.
func TestParseStatm(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"5504 1234 890 1 0 3000 0\n", 1234, true},
		{"1 2", 2, true},
		{"1", 0, false},
		{"", 0, false},
		{"1 -2 3", 0, false},
		{"1 x 3", 0, false},
	} {
		got, ok := parseStatm([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStatm(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
