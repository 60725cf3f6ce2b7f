package metrics

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// Runtime is the collector of the Go runtime and process gauges, under the
// names of the official Go client: goroutines, heap, memory obtained from
// the OS, completed GC cycles, and on Linux the open file descriptors and
// the resident set size (read from /proc; left out where /proc is
// missing). It costs one runtime.ReadMemStats, a pause of microseconds.
func Runtime(w *Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	w.Gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc))
	w.Gauge("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", float64(ms.HeapInuse))
	w.Gauge("go_memstats_sys_bytes", "Bytes of memory obtained from the OS.", float64(ms.Sys))
	w.Counter("go_gc_cycles_total", "Completed GC cycles.", uint64(ms.NumGC))
	w.Gauge("go_info", "Information about the Go environment.", 1, Label{"version", runtime.Version()})
	if n, ok := openFDs(); ok {
		w.Gauge("process_open_fds", "Number of open file descriptors.", float64(n))
	}
	if n, ok := residentBytes(); ok {
		w.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", float64(n))
	}
}

// openFDs counts the entries of /proc/self/fd, less the one the count
// itself holds open.
func openFDs() (int, bool) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil || len(names) == 0 {
		return 0, false
	}
	return len(names) - 1, true
}

// residentBytes reads the resident set size from /proc/self/statm (its
// second field, in pages).
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	pages, ok := parseStatm(b)
	if !ok {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// parseStatm returns the resident pages, the second space-separated field
// of /proc/self/statm ("size resident shared text lib data dt").
func parseStatm(b []byte) (uint64, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	return n, err == nil
}
