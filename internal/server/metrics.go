package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/metrics"
	"github.com/wick-cloud/wick/internal/webhook"
)

// This file is the operator's view of a running server: the counters of
// every component as Prometheus metrics on their own listener (--metrics),
// and a warning in the log when events were dropped for slow subscribers.
//
// Metrics never go on the API listener: the API may face the internet, and
// the counters tell an attacker how busy the server is, how many devices
// it holds and whether its attack is working. Bind --metrics to loopback
// or a private network.
//
// Adding a component's counters: give the component a Stats method that
// reads atomics (no database queries), and register a collector in
// registerCollectors:
//
//	o.reg.Register("console", func(w *metrics.Writer) {
//		st := console.Stats()
//		w.Counter("wick_console_logins_total", "Console logins.", st.Logins)
//	})
//
// Counters must only go up. A component whose counters sum over things
// that come and go (subscriptions, hooks) is read through statsSource,
// which keeps the sums monotonic; see webhookTotals.

// observer owns the metrics registry, the metrics listener and the stats
// log of one Server.
type observer struct {
	log      *slog.Logger
	reg      *metrics.Registry
	src      *statsSource
	interval time.Duration // of the stats log; 0: off
	http     *http.Server

	mu   sync.Mutex
	addr net.Addr // guarded by mu; the metrics listener, nil when off

	quit     chan struct{} // closed by stop
	stopOnce sync.Once
	wg       sync.WaitGroup // the stats log and the metrics server
}

// newObserver builds the observer of s; apiHandler is the API's handler,
// which reports its event streams' counters.
func (s *Server) newObserver(apiHandler http.Handler) *observer {
	src := &statsSource{bus: s.bus, gw: s.gw, hooks: s.hooks}
	if h, ok := apiHandler.(interface{ StreamStats() api.StreamStats }); ok {
		src.sse = h.StreamStats
	}
	o := &observer{
		log:      s.log,
		reg:      metrics.NewRegistry(),
		src:      src,
		interval: s.cfg.StatsInterval,
		quit:     make(chan struct{}),
	}
	o.registerCollectors()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.reg.Handler(s.log))
	// /healthz says that the process serves; it checks no dependency, so
	// that a database outage does not make an orchestrator restart every
	// process (which fixes nothing) — watch the metrics and the log for that.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	})
	o.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return o
}

// registerCollectors is where the server's components register their
// metrics collectors.
func (o *observer) registerCollectors() {
	o.reg.Register("runtime", metrics.Runtime)
	o.reg.Register("wick", func(w *metrics.Writer) {
		ctx, cancel := context.WithTimeout(w.Context(), 5*time.Second)
		defer cancel()
		sn := o.src.read(ctx)
		writeBus(w, sn.bus)
		writeGateway(w, sn.gw)
		if o.src.sse != nil {
			writeSSE(w, sn.sse)
		}
		if o.src.hooks != nil {
			writeWebhook(w, sn.hooks)
		}
	})
}

// MetricsAddr is the address of the metrics listener, nil before Ready or
// when --metrics is empty.
func (s *Server) MetricsAddr() net.Addr {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return s.obs.addr
}

// listen opens the metrics listener on addr; "" opens none (nil, nil).
func (o *observer) listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen metrics %s: %w", addr, err)
	}
	o.mu.Lock()
	o.addr = ln.Addr()
	o.mu.Unlock()
	return ln, nil
}

// start serves the metrics on ln (when not nil), reporting a failure on
// errc, and starts the stats log. stop ends both.
func (o *observer) start(ln net.Listener, errc chan<- error) {
	if ln != nil {
		o.log.Info("metrics listening", "addr", ln.Addr().String())
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			if err := o.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				select {
				case errc <- fmt.Errorf("metrics: %w", err):
				default: // Run is already returning for another reason
				}
			}
		}()
	}
	if o.interval > 0 {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.statsLog()
		}()
	}
}

// stop closes the metrics listener, ends the stats log (after a last
// check), and waits for both. It is idempotent, and a no-op before start.
func (o *observer) stop() {
	o.stopOnce.Do(func() {
		close(o.quit)
		o.http.Close()
	})
	o.wg.Wait()
}

// statsLog checks the drop counters every interval until stop, and once
// more when stopped, so that a partial last interval is reported too.
func (o *observer) statsLog() {
	read := func() dropCounts {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return o.src.read(ctx).drops()
	}
	d := &dropLog{log: o.log, prev: read(), last: time.Now()}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-o.quit:
			d.check(read(), time.Now())
			return
		case now := <-t.C:
			d.check(read(), now)
		}
	}
}

// dropCounts are the counters of events lost to slow consumers.
type dropCounts struct {
	sse, bus, busSlow, device, webhook uint64
}

// dropLog logs one warning per check in which a drop counter went up.
type dropLog struct {
	log  *slog.Logger
	prev dropCounts
	last time.Time
}

// check compares cur with the previous check and logs the increases, if
// any; otherwise it logs nothing.
func (d *dropLog) check(cur dropCounts, now time.Time) {
	p := d.prev
	delta := dropCounts{
		sse:     increase(p.sse, cur.sse),
		bus:     increase(p.bus, cur.bus),
		busSlow: increase(p.busSlow, cur.busSlow),
		device:  increase(p.device, cur.device),
		webhook: increase(p.webhook, cur.webhook),
	}
	since := now.Sub(d.last).Round(time.Second)
	d.prev, d.last = cur, now
	if delta == (dropCounts{}) {
		return
	}
	d.log.Warn("events dropped for slow subscribers",
		"since", since,
		"sse_dropped", delta.sse,
		"bus_dropped", delta.bus,
		"bus_slow_consumer", delta.busSlow,
		"device_dropped", delta.device,
		"webhook_dropped", delta.webhook)
}

// increase is cur-prev, or 0 when the counter did not go up.
func increase(prev, cur uint64) uint64 {
	if cur > prev {
		return cur - prev
	}
	return 0
}

// statsSource reads every component's counters in one snapshot. Reads are
// serialised, so that the sums it keeps monotonic see the counters in
// order (a scrape and the stats log may run together).
type statsSource struct {
	bus   *bus.Bus
	gw    *gateway.Gateway
	sse   func() api.StreamStats // nil without event streams
	hooks *webhook.Engine        // nil without webhooks

	mu       sync.Mutex
	slowLast uint64                       // guarded by mu; bus.Stats.SlowConsumer at the last read
	slowSum  uint64                       // guarded by mu; its monotonic total
	hookLast map[string]webhook.HookStats // guarded by mu; per hook, at the last read
	hookSum  webhookTotals                // guarded by mu; the monotonic totals
}

// snapshot is one read of every component.
type snapshot struct {
	bus   bus.Stats // SlowConsumer made monotonic
	gw    gateway.Stats
	sse   api.StreamStats
	hooks webhookTotals
}

// drops returns the drop counters of sn.
func (sn snapshot) drops() dropCounts {
	return dropCounts{
		sse:     sn.sse.Dropped,
		bus:     sn.bus.Dropped,
		busSlow: sn.bus.SlowConsumer,
		device:  sn.gw.EventsDropped,
		webhook: sn.hooks.Dropped,
	}
}

// read takes a snapshot. bus.Stats.SlowConsumer sums over the open
// subscriptions only, and drops when one closes; read turns it into a
// counter by adding only its increases (an increase in a subscription
// that closed between two reads is missed).
func (s *statsSource) read(ctx context.Context) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := snapshot{bus: s.bus.Stats(), gw: s.gw.Stats()}
	s.slowSum += increase(s.slowLast, sn.bus.SlowConsumer)
	s.slowLast = sn.bus.SlowConsumer
	sn.bus.SlowConsumer = s.slowSum
	if s.sse != nil {
		sn.sse = s.sse()
	}
	if s.hooks != nil {
		st := s.hooks.Stats(ctx)
		s.hookLast = s.hookSum.add(s.hookLast, st)
		sn.hooks = s.hookSum
	}
	return sn
}

// webhookTotals are the webhook engine's counters summed over its hooks.
// The engine forgets a deleted hook's counters, so the sums keep what
// each hook counted while it existed (add).
type webhookTotals struct {
	Durable                    bool
	Events, Queued, Malformed  uint64
	LogWritten, LogDropped     uint64
	Sleeping                   int
	Pending, InFlight          int64 // gauges: jobs queued now, deliveries now
	Delivered, Failed, Retried uint64
	Skipped, Dropped           uint64
}

// add folds the engine stats st into t: engine-wide values are copied,
// per-hook counters add their increase since last (a hook's counter that
// went down was reset, and counts in full). It returns the per-hook
// values to pass as last next time.
func (t *webhookTotals) add(last map[string]webhook.HookStats, st webhook.Stats) map[string]webhook.HookStats {
	t.Durable = st.Durable
	t.Events, t.Queued, t.Malformed = st.Events, st.Queued, st.Malformed
	t.LogWritten, t.LogDropped = st.LogWritten, st.LogDropped
	t.Sleeping = len(st.Sleeping)
	t.Pending, t.InFlight = 0, 0
	for id, h := range st.Hooks {
		p := last[id]
		t.Pending += h.Queued
		t.InFlight += h.InFlight
		t.Delivered += grown(p.Delivered, h.Delivered)
		t.Failed += grown(p.Failed, h.Failed)
		t.Retried += grown(p.Retried, h.Retried)
		t.Skipped += grown(p.Skipped, h.Skipped)
		t.Dropped += grown(p.Dropped, h.Dropped)
	}
	return st.Hooks
}

// grown is how much a per-hook counter counted since prev: cur-prev, or
// cur when it went down (the hook's counters were recreated).
func grown(prev, cur uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	return cur
}

// result is the label of a by-result counter.
func result(v string) metrics.Label { return metrics.Label{Name: "result", Value: v} }

// boolGauge is 1 for true.
func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func writeBus(w *metrics.Writer, st bus.Stats) {
	w.Counter("wick_bus_events_published_total", "Events published to the bus by this process.", st.Published)
	w.Counter("wick_bus_events_delivered_total", "Events placed into subscriber buffers.", st.Delivered)
	w.Counter("wick_bus_events_dropped_total", "Events and presence changes dropped because a subscriber's buffer was full.", st.Dropped)
	w.Counter("wick_bus_slow_consumer_total", "Events NATS dropped before the bus saw them because the process fell behind.", st.SlowConsumer)
	w.Counter("wick_bus_messages_malformed_total", "Undecodable messages received on bus subjects.", st.Malformed)
	w.Gauge("wick_bus_subscriptions", "Open event subscriptions.", float64(st.Subscriptions))
	w.Gauge("wick_bus_subscription_groups", "NATS subscriptions serving the event subscriptions.", float64(st.Groups))
	w.Gauge("wick_bus_device_handlers", "Devices with a call handler in this process.", float64(st.Devices))
}

func writeGateway(w *metrics.Writer, st gateway.Stats) {
	w.Gauge("wick_devices_online", "Devices with an established session on this process.", float64(st.Online))
	w.Gauge("wick_device_connections", "Open device connections, handshaking or online.", float64(st.Connections))
	const hs = "Device handshakes by result (refusals count as failed)."
	w.Counter("wick_handshakes_total", hs, st.HandshakesOK, result("ok"))
	w.Counter("wick_handshakes_total", hs, st.HandshakesFailed, result("failed"))
	const rf = "Device handshakes refused, by reason: unknown device or no key, key mismatch, device denied."
	w.Counter("wick_handshakes_refused_total", rf, st.RefusedUnknown, metrics.Label{Name: "reason", Value: "unknown"})
	w.Counter("wick_handshakes_refused_total", rf, st.RefusedKey, metrics.Label{Name: "reason", Value: "key"})
	w.Counter("wick_handshakes_refused_total", rf, st.RefusedDenied, metrics.Label{Name: "reason", Value: "denied"})
	w.Counter("wick_device_frames_bad_total", "Device sessions closed for a framing error.", st.FramesBad)
	w.Counter("wick_device_messages_bad_total", "Device frames that held no valid CoAP message (ignored).", st.MessagesBad)
	w.Counter("wick_device_sessions_replaced_total", "Device sessions closed by a newer connection of the same device.", st.Replaced)
	w.Counter("wick_device_idle_timeouts_total", "Device sessions closed for silence.", st.IdleTimeouts)
	w.Counter("wick_device_events_total", "Events published by devices and accepted.", st.EventsIn)
	w.Counter("wick_device_events_rate_limited_total", "Events published by devices and dropped by the rate limit.", st.EventsLimited)
	w.Counter("wick_device_events_sent_total", "Events written to devices (their subscriptions).", st.EventsOut)
	w.Counter("wick_device_events_dropped_total", "Events for devices lost to a full device queue, a full router buffer or a failed write.", st.EventsDropped)
	w.Counter("wick_device_calls_total", "Function calls, variable reads, signals and pings sent to devices.", st.Calls)
	w.Counter("wick_device_calls_failed_total", "Device calls that ended in an error or a timeout.", st.CallsFailed)
	w.Counter("wick_device_calls_busy_total", "Device calls refused unsent (429) because the device had 200 requests in flight.", st.CallsBusy)
	w.Counter("wick_handshakes_rate_limited_total", "Device connections closed before the handshake by the per-address handshake rate limit.", st.HandshakesLimited)
	w.Gauge("wick_device_sessions_starting", "Device sessions (TCP and Gen 3) holding an admission slot: from the handshake until online with the describe stored.", float64(st.Starting))
	w.Gauge("wick_device_admission_waiting", "Device sessions (TCP and Gen 3) waiting for an admission slot.", float64(st.StartWaiting))
	w.Counter("wick_device_admission_queued_total", "Device sessions (TCP and Gen 3) that waited for an admission slot.", st.AdmissionQueued)
	const adm = "Device sessions (TCP and Gen 3) closed by the admission, by reason (queue full, or waited too long)."
	w.Counter("wick_device_admission_refused_total", adm, st.AdmissionRefused, metrics.Label{Name: "reason", Value: "queue_full"})
	w.Counter("wick_device_admission_refused_total", adm, st.AdmissionTimeouts, metrics.Label{Name: "reason", Value: "timeout"})
	w.Counter("wick_device_events_unacked_total", "Events published by devices that the bus refused (not acknowledged; 5.03 when confirmable).", st.EventsUnacked)
	const claims = "Claim codes reported by devices, by result."
	w.Counter("wick_device_claims_total", claims, st.ClaimsOK, result("ok"))
	w.Counter("wick_device_claims_total", claims, st.ClaimsFailed, result("failed"))
	w.Counter("wick_gateway_panics_total", "Panics recovered in a device session or the event router.", st.Panics)
	w.Counter("wick_ota_updates_started_total", "Firmware updates announced to devices (spark/flash/status started).", st.OTAStarted)
	const ota = "Firmware updates by outcome (spark/flash/status success or failed)."
	w.Counter("wick_ota_updates_total", ota, st.OTASucceeded, result("success"))
	w.Counter("wick_ota_updates_total", ota, st.OTAFailed, result("failed"))
	w.Counter("wick_ota_chunks_total", "Firmware chunks sent to devices, resends included.", st.OTAChunks)
	w.Gauge("wick_tcp_sessions_parked", "Gen 2 sessions parked now: idle, no goroutine, waiting in the gateway's poller.", float64(st.TCPParked))
	w.Counter("wick_tcp_wakes_total", "Parked Gen 2 sessions whose goroutine was started again (a frame other than a ping, a hang-up, a close).", st.TCPWakes)
	const pings = "Keep-alive pings answered, by the gateway's poller of parked Gen 2 sessions (no goroutine), by the Gen 3 demultiplexer for parked Gen 3 sessions (no goroutine), or by a session's goroutine (running sessions)."
	w.Counter("wick_device_pings_total", pings, st.TCPPollerPings, metrics.Label{Name: "answered_by", Value: "poller"})
	w.Counter("wick_device_pings_total", pings, st.UDPParkedPings, metrics.Label{Name: "answered_by", Value: "demux"})
	w.Counter("wick_device_pings_total", pings, st.SessionPings, metrics.Label{Name: "answered_by", Value: "session"})
	writeGatewayUDP(w, st)
}

// writeGatewayUDP writes the Gen 3 (DTLS over UDP) counters of the gateway.
func writeGatewayUDP(w *metrics.Writer, st gateway.Stats) {
	w.Gauge("wick_udp_sessions", "Gen 3 sessions in the gateway's connection-ID table.", float64(st.UDPSessions))
	const dg = "UDP datagrams read from and written to devices."
	w.Counter("wick_udp_datagrams_total", dg, st.UDPDatagramsIn, metrics.Label{Name: "direction", Value: "in"})
	w.Counter("wick_udp_datagrams_total", dg, st.UDPDatagramsOut, metrics.Label{Name: "direction", Value: "out"})
	w.Counter("wick_udp_datagrams_dropped_total", "UDP datagrams dropped before any session saw them.", st.UDPDropped)
	w.Counter("wick_udp_cookies_total", "HelloVerifyRequests sent (ClientHellos without a valid cookie).", st.UDPCookies)
	w.Counter("wick_udp_signatures_total", "ServerKeyExchange signatures made (one per handshake past the cookie).", st.UDPSignatures)
	w.Counter("wick_udp_unknown_cid_total", "Records on a connection ID no session has (dropped).", st.UDPUnknownCID)
	w.Counter("wick_udp_resumptions_total", "Gen 3 sessions resumed from a saved session, with no handshake.", st.UDPResumptions)
	w.Counter("wick_udp_sessions_saved_total", "Gen 3 sessions written to the store.", st.UDPSaves)
	w.Counter("wick_udp_retransmissions_total", "Handshake flights and CoAP messages sent again.", st.UDPRetransmits)
	w.Counter("wick_udp_gave_up_total", "Gen 3 sessions ended because a confirmable message went unacknowledged.", st.UDPGaveUp)
	w.Counter("wick_udp_duplicates_total", "Repeated confirmable messages answered from the cache.", st.UDPDuplicates)
	w.Counter("wick_udp_bad_records_total", "Records that did not open: bad MAC, replay, wrong epoch.", st.UDPBadRecords)
	w.Counter("wick_udp_moves_total", "Gen 3 sessions re-bound to a new device address.", st.UDPMoves)
	w.Counter("wick_udp_admitted_total", "Gen 3 session starts (handshakes, resumptions) that got an admission slot.", st.UDPAdmitted)
	w.Counter("wick_udp_admission_dropped_total", "Gen 3 ClientHellos and resuming records dropped by the admission (queue full or waited too long); the device retransmits.", st.UDPAdmissionDropped)
	w.Counter("wick_udp_end_alerts_total", "Fatal alerts sent to Gen 3 devices whose session ended for a store failure or a refusal (they handshake again at once).", st.UDPEndAlerts)
	w.Gauge("wick_udp_sessions_parked", "Gen 3 sessions parked now: idle, no goroutine, keys released.", float64(st.UDPParked))
	w.Counter("wick_udp_parks_total", "Gen 3 sessions parked after being idle.", st.UDPParks)
	w.Counter("wick_udp_wakes_total", "Parked Gen 3 sessions woken by a datagram or a send.", st.UDPWakes)
}

func writeSSE(w *metrics.Writer, st api.StreamStats) {
	w.Gauge("wick_sse_streams_open", "Event streams (SSE) open now.", float64(st.Open))
	w.Counter("wick_sse_streams_opened_total", "Event streams started.", st.Opened)
	w.Counter("wick_sse_streams_rejected_total", "Event stream opens refused with 429 by the per-IP limits.", st.Rejected)
	w.Counter("wick_sse_events_dropped_total", "Events lost to full stream buffers (slow clients).", st.Dropped)
	w.Counter("wick_sse_replays_total", "Event streams resumed with Last-Event-ID.", st.Replayed)
	w.Counter("wick_sse_replay_gaps_total", "Resumed event streams told that events may be missing.", st.Gaps)
	w.Counter("wick_sse_streams_revoked_total", "Event streams closed because their access ended (token revoked or expired, holder off the team).", st.Revoked)
}

func writeWebhook(w *metrics.Writer, t webhookTotals) {
	w.Gauge("wick_webhook_queue_durable", "1 when the webhook queue is JetStream, 0 in memory.", boolGauge(t.Durable))
	w.Counter("wick_webhook_events_total", "Events read by the webhook matcher.", t.Events)
	w.Counter("wick_webhook_jobs_queued_total", "Webhook jobs queued by the matcher.", t.Queued)
	w.Counter("wick_webhook_malformed_total", "Undecodable events and webhook jobs.", t.Malformed)
	w.Gauge("wick_webhook_jobs_pending", "Webhook jobs in the queues now, retries waiting included.", float64(t.Pending))
	w.Gauge("wick_webhook_in_flight", "Webhook deliveries being processed now.", float64(t.InFlight))
	const att = "Webhook delivery attempts by result: ok (2xx), failed (non-2xx, timeout, network), skipped (target host asleep)."
	w.Counter("wick_webhook_attempts_total", att, t.Delivered, result("ok"))
	w.Counter("wick_webhook_attempts_total", att, t.Failed, result("failed"))
	w.Counter("wick_webhook_attempts_total", att, t.Skipped, result("skipped"))
	w.Counter("wick_webhook_retries_total", "Webhook retry jobs queued.", t.Retried)
	w.Counter("wick_webhook_jobs_dropped_total", "Webhook jobs given up: retries or age exhausted, full queue, disabled hook.", t.Dropped)
	w.Gauge("wick_webhook_hosts_sleeping", "Webhook target hosts asleep after repeated failures.", float64(t.Sleeping))
	const dl = "Webhook delivery-log entries by result: written to the store, or dropped."
	w.Counter("wick_webhook_log_entries_total", dl, t.LogWritten, result("written"))
	w.Counter("wick_webhook_log_entries_total", dl, t.LogDropped, result("dropped"))
}
