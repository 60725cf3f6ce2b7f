package server

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/metrics"
	"github.com/wick-cloud/wick/internal/netlimit"
)

// listenerLimits are the connection caps of the three listeners
// (docs/security.md, Connection limits).
type listenerLimits struct {
	nofile                uint64 // the descriptor limit they were derived from
	device, http, metrics netlimit.Limits
}

// minHTTPConns is the least derived cap of the API listener.
const minHTTPConns = 32

// connLimits returns the caps of cfg under the descriptor limit nofile: a
// zero MaxDeviceConns is three quarters of netlimit.Budget(nofile), a zero
// MaxHTTPConns what the devices and the metrics listener leave of it.
func connLimits(cfg config.Serve, nofile uint64) listenerLimits {
	budget := netlimit.Budget(nofile)
	l := listenerLimits{
		nofile:  nofile,
		device:  netlimit.Limits{Max: cfg.MaxDeviceConns, PerIP: cfg.DeviceConnsPerIP},
		http:    netlimit.Limits{Max: cfg.MaxHTTPConns, PerIP: cfg.HTTPConnsPerIP},
		metrics: netlimit.Limits{Max: cfg.MaxMetricsConns, PerIP: cfg.MetricsConnsPerIP},
	}
	// A reverse proxy carries many clients over its own address: the API's
	// per-address cap does not apply to trusted proxies.
	proxies, _ := cfg.TrustedProxyPrefixes() // Resolve checked them
	if len(proxies) == 0 && cfg.TrustProxy {
		proxies = api.DefaultTrustedProxies
	}
	if len(proxies) > 0 {
		l.http.Exempt = func(a netip.Addr) bool {
			for _, p := range proxies {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}
	}
	if l.device.Max == 0 {
		l.device.Max = budget * 3 / 4
	}
	if l.http.Max == 0 {
		l.http.Max = max(budget-budget*3/4-cfg.MaxMetricsConns, minHTTPConns)
	}
	return l
}

// bodyDeadline bounds the reading of each request body to d from the start
// of the handler (the headers are bounded by the server's
// ReadHeaderTimeout): a client that uploads slowly, or stops, is cut off
// and its connection closed. Requests without a body (event streams among
// them) get no deadline, and the deadline is lifted once the body has been
// read to its end, so a long answer is never cut off.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body reaches its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// limit wraps ln in its caps and keeps it for the metrics.
func (s *Server) limit(name string, ln net.Listener, l netlimit.Limits) net.Listener {
	w := netlimit.Wrap(ln, l)
	w.SetLogger(s.log, name) // a rate-limited warning when the cap or the descriptors run out
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limited == nil {
		s.limited = make(map[string]*netlimit.Listener)
	}
	s.limited[name] = w
	return w
}

// writeListeners reports the connections of each capped listener.
func (s *Server) writeListeners(w *metrics.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range []string{"http", "device", "metrics"} {
		l := s.limited[name]
		if l == nil {
			continue
		}
		lb := metrics.Label{Name: "listener", Value: name}
		w.Gauge("wick_listener_connections", "Connections open on a listener (API, device TCP, metrics).", float64(l.Open()), lb)
		w.Counter("wick_listener_connections_refused_total", "Connections closed at accept by a listener's total or per-address cap.", l.Refused(), lb)
		w.Counter("wick_listener_accept_errors_total", "Accepts that failed because the process or system was out of descriptors.", l.AcceptErrors(), lb)
	}
}
