// Package metrics writes Wick's counters and gauges in the Prometheus text
// exposition format, version 0.0.4, with the standard library only.
//
// A Registry holds named collectors. A Collector is a function that reads
// a component's counters (its Stats method, typically) and adds them to
// the Writer of one scrape:
//
//	reg := metrics.NewRegistry()
//	reg.Register("runtime", metrics.Runtime)
//	reg.Register("bus", func(w *metrics.Writer) {
//		st := b.Stats()
//		w.Counter("wick_bus_events_published_total", "Events published.", st.Published)
//		w.Gauge("wick_bus_subscriptions", "Open event subscriptions.", float64(st.Subscriptions))
//	})
//	http.Handle("GET /metrics", reg.Handler(log))
//
// Collectors run one after another on every scrape, in no particular
// order, and must be quick: read atomics, do not query a database. A
// collector that needs a context (a queue depth read over the network)
// takes the scrape's from Writer.Context.
//
// The output is deterministic: families are sorted by name, the samples of
// a family by their labels, and labels by name, whatever order the
// collectors add them in. Every family has its # HELP and # TYPE lines.
// Label values and help texts are escaped as the format requires; label
// values that are not UTF-8 are repaired with U+FFFD.
//
// A sample that is invalid (a bad metric or label name, a family that
// changes type, a series written twice) is left out and reported as an
// error, and the rest of the scrape is still written: one collector's bug
// does not blind the operator to everything else.
//
// Names of Wick's own metrics start with "wick_"; counters end with
// "_total". The runtime collector uses the names of the official Go client
// (go_goroutines, process_resident_memory_bytes, ...) so that existing
// dashboards work.
package metrics
