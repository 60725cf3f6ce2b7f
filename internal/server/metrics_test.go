package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/webhook"
)

// scrape GETs the metrics text at addr and returns its samples by series
// ("name" or `name{label="v"}`), failing on anything that is not a
// comment or a `series value` line.
func scrape(t *testing.T, addr net.Addr) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsEndpoint runs a server with --metrics, opens an event stream,
// publishes an event, and reads the effect in the scraped metrics; it
// checks /healthz, that the API listener serves no metrics, and that the
// metrics listener and the stats log end with the server.
func TestMetricsEndpoint(t *testing.T) {
	cfg := testConfig(t)
	cfg.Metrics = "127.0.0.1:0"
	cfg.StatsInterval = 20 * time.Millisecond
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := CreateUser(ctx, cfg, log, "ops@example.com", "correct-horse"); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	maddr := srv.MetricsAddr()
	if maddr == nil || maddr.String() == srv.HTTPAddr().String() {
		t.Fatalf("MetricsAddr = %v (API %v)", maddr, srv.HTTPAddr())
	}
	api := "http://" + srv.HTTPAddr().String()

	// Metrics stay off the public API listener.
	if resp, err := http.Get(api + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("API GET /metrics = %v, %v; want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + maddr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q", resp.StatusCode, body)
	}

	before := scrape(t, maddr)
	if before["wick_sse_streams_open"] != 0 || before["go_goroutines"] <= 0 {
		t.Fatalf("before: streams open %v, goroutines %v", before["wick_sse_streams_open"], before["go_goroutines"])
	}

	resp, err = http.PostForm(api+"/oauth/token", url.Values{
		"grant_type": {"password"}, "username": {"ops@example.com"}, "password": {"correct-horse"},
		"client_id": {"particle"}, "client_secret": {"particle"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	// Open a stream and read its ":ok".
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", api+"/v1/devices/events/metrics-test", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	if line, err := br.ReadString('\n'); stream.StatusCode != 200 || err != nil || line != ":ok\n" {
		t.Fatalf("stream: %d %q %v", stream.StatusCode, line, err)
	}

	// Publish, and wait for the event on the stream.
	req, _ = http.NewRequest("POST", api+"/v1/devices/events", strings.NewReader("name=metrics-test&data=1"))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the event: %v", err)
		}
		if line == "event: metrics-test\n" {
			break
		}
	}

	m := scrape(t, maddr)
	for series, min := range map[string]float64{
		"wick_sse_streams_open":              1,
		"wick_sse_streams_opened_total":      1,
		"wick_bus_events_published_total":    before["wick_bus_events_published_total"] + 1,
		"wick_bus_events_delivered_total":    1,
		"wick_bus_subscriptions":             1,
		`wick_handshakes_total{result="ok"}`: 0,
		"wick_webhook_queue_durable":         1, // embedded NATS has JetStream
		"process_resident_memory_bytes":      1,
	} {
		v, ok := m[series]
		if !ok || v < min {
			t.Errorf("%s = %v (present %v); want ≥ %v", series, v, ok, min)
		}
	}
	if m["wick_sse_streams_open"] != 1 {
		t.Errorf("wick_sse_streams_open = %v; want 1", m["wick_sse_streams_open"])
	}
	if m["wick_sse_events_dropped_total"] != 0 || m["wick_bus_events_dropped_total"] != 0 {
		t.Errorf("drops with one idle stream: sse %v bus %v", m["wick_sse_events_dropped_total"], m["wick_bus_events_dropped_total"])
	}

	// Close the stream: the gauge goes back to 0.
	scancel()
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, maddr)["wick_sse_streams_open"] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("wick_sse_streams_open stayed above 0 after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
	if c, err := net.DialTimeout("tcp", maddr.String(), time.Second); err == nil {
		c.Close()
		t.Error("metrics listener still accepts after Run returned")
	}
	var stacks bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	if strings.Contains(stacks.String(), "(*observer).statsLog") {
		t.Error("stats log goroutine still running after Run returned")
	}
	if strings.Contains(logs.String(), "events dropped") {
		t.Errorf("drop warning without drops:\n%s", logs.String())
	}
}

// TestMetricsOff: without --metrics nothing listens for them.
func TestMetricsOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.DeviceTCP = ""
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	if a := srv.MetricsAddr(); a != nil {
		t.Errorf("MetricsAddr = %v; want nil", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDropLog: one warning per check in which a drop counter rose, with
// the increases; silence otherwise.
func TestDropLog(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		prev dropCounts
		cur  dropCounts
		want string // substring of the log; "" for no line
	}{
		{name: "nothing new", prev: dropCounts{sse: 5, bus: 2}, cur: dropCounts{sse: 5, bus: 2}},
		{name: "all zero", cur: dropCounts{}},
		{
			name: "sse and bus",
			prev: dropCounts{sse: 5, bus: 2},
			cur:  dropCounts{sse: 12, bus: 3},
			want: "level=WARN msg=\"events dropped for slow subscribers\" since=1m0s sse_dropped=7 bus_dropped=1 bus_slow_consumer=0 device_dropped=0 webhook_dropped=0",
		},
		{
			name: "device, webhook, slow consumer",
			cur:  dropCounts{busSlow: 4, device: 2, webhook: 9},
			want: "sse_dropped=0 bus_dropped=0 bus_slow_consumer=4 device_dropped=2 webhook_dropped=9",
		},
		{name: "a counter going down is no drop", prev: dropCounts{webhook: 9}, cur: dropCounts{webhook: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			d := &dropLog{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})), prev: tt.prev, last: t0}
			d.check(tt.cur, t0.Add(time.Minute))
			got := buf.String()
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("log = %q; want %q", got, tt.want)
			}
			if d.prev != tt.cur || !d.last.Equal(t0.Add(time.Minute)) {
				t.Errorf("state after check = %+v %v", d.prev, d.last)
			}
			// The same counters again: nothing more.
			buf.Reset()
			d.check(tt.cur, t0.Add(2*time.Minute))
			if buf.Len() != 0 {
				t.Errorf("second check logged %q", buf.String())
			}
		})
	}
}

// TestWebhookTotals: per-hook counters sum into totals that never go
// down, across hook deletion and counter resets; gauges are current.
func TestWebhookTotals(t *testing.T) {
	var tot webhookTotals
	var last map[string]webhook.HookStats
	steps := []struct {
		name                   string
		hooks                  map[string]webhook.HookStats
		delivered, dropped     uint64
		pending, inFlight      int64
		failed, retried, skips uint64
	}{
		{name: "start", hooks: map[string]webhook.HookStats{
			"a": {Delivered: 3, Queued: 2, InFlight: 1},
			"b": {Delivered: 1, Failed: 2, Retried: 2, Dropped: 1, Skipped: 1},
		}, delivered: 4, dropped: 1, pending: 2, inFlight: 1, failed: 2, retried: 2, skips: 1},
		{name: "b deleted, a grows", hooks: map[string]webhook.HookStats{
			"a": {Delivered: 5},
		}, delivered: 6, dropped: 1, failed: 2, retried: 2, skips: 1},
		{name: "new hook c", hooks: map[string]webhook.HookStats{
			"a": {Delivered: 5},
			"c": {Delivered: 2, Dropped: 4, Queued: 7},
		}, delivered: 8, dropped: 5, pending: 7, failed: 2, retried: 2, skips: 1},
		{name: "a's counters recreated", hooks: map[string]webhook.HookStats{
			"a": {Delivered: 1},
			"c": {Delivered: 2, Dropped: 4},
		}, delivered: 9, dropped: 5, failed: 2, retried: 2, skips: 1},
	}
	for _, s := range steps {
		last = tot.add(last, webhook.Stats{Durable: true, Events: 10, Sleeping: []string{"h"}, Hooks: s.hooks})
		if tot.Delivered != s.delivered || tot.Dropped != s.dropped || tot.Pending != s.pending || tot.InFlight != s.inFlight ||
			tot.Failed != s.failed || tot.Retried != s.retried || tot.Skipped != s.skips {
			t.Errorf("%s: totals %+v; want delivered %d dropped %d pending %d in flight %d failed %d retried %d skipped %d",
				s.name, tot, s.delivered, s.dropped, s.pending, s.inFlight, s.failed, s.retried, s.skips)
		}
		if !tot.Durable || tot.Events != 10 || tot.Sleeping != 1 {
			t.Errorf("%s: engine-wide values %+v", s.name, tot)
		}
	}
}
