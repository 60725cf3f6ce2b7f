package netlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Key returns the address group a connection from addr is counted in: the
// IPv4 address, or the /64 network of an IPv6 address, as text. An
// address that is not IP (net.Pipe, Unix sockets) is its own group.
func Key(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		p, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return addr.String()
		}
		ap = p
	}
	return KeyOf(ap.Addr())
}

// KeyOf is Key for an IP address: IPv4 (also IPv4-mapped IPv6) addresses
// stand for themselves, IPv6 addresses for their /64.
func KeyOf(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() || !ip.IsValid() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// Limits are the caps of one listener. Zero or negative means no cap.
type Limits struct {
	// Max is the most connections open at once on the listener.
	Max int
	// PerIP is the most connections open at once from one address
	// group (Key).
	PerIP int
	// Exempt, when set, names addresses PerIP does not apply to (trusted
	// reverse proxies, which carry many clients); Max still does.
	Exempt func(netip.Addr) bool
}

// Listener is a net.Listener that closes, right after accepting them,
// connections beyond its Limits, and returns only the others from Accept.
// A connection counts until it is closed.
type Listener struct {
	net.Listener
	lim Limits

	mu    sync.Mutex
	total int            // guarded by mu
	byKey map[string]int // guarded by mu

	refused      atomic.Uint64
	acceptErrors atomic.Uint64

	log     *slog.Logger // nil: refusals are only counted
	name    string
	logMu   sync.Mutex
	logNext time.Time // guarded by logMu: no refusal line before then
	logged  [2]uint64 // guarded by logMu: refused, acceptErrors at the last line
}

// LogEvery is the least time between two lines a Listener logs about
// refused connections or descriptor exhaustion.
const LogEvery = 10 * time.Second

// Wrap returns ln with lim applied.
func Wrap(ln net.Listener, lim Limits) *Listener {
	return &Listener{Listener: ln, lim: lim, byKey: make(map[string]int)}
}

// SetLogger makes l log, at most once per LogEvery, a warning when it
// refuses connections at its caps or cannot accept for want of
// descriptors, naming the listener name and the counts since the last
// line. Call it before the first Accept.
func (l *Listener) SetLogger(log *slog.Logger, name string) {
	l.log, l.name = log, name
}

// warn logs the refusals and accept errors since the last line, unless a
// line went out less than LogEvery ago.
func (l *Listener) warn(now time.Time, err error) {
	if l.log == nil {
		return
	}
	l.logMu.Lock()
	if now.Before(l.logNext) {
		l.logMu.Unlock()
		return
	}
	l.logNext = now.Add(LogEvery)
	refused, errs := l.refused.Load(), l.acceptErrors.Load()
	dr, de := refused-l.logged[0], errs-l.logged[1]
	l.logged = [2]uint64{refused, errs}
	l.logMu.Unlock()
	if err != nil {
		l.log.Warn("netlimit: out of descriptors, not accepting connections",
			"listener", l.name, "err", err, "accept_errors", de, "open", l.Open())
		return
	}
	l.log.Warn("netlimit: connection cap reached, refusing new connections",
		"listener", l.name, "open", l.Open(), "max", l.lim.Max, "per_ip", l.lim.PerIP, "refused", dr)
}

// Accept returns the next connection within the limits. Connections over
// a limit are closed at once and counted in Refused; Accept then waits for
// the next one. Temporary accept errors (too many open files) are retried
// after a short pause, as net/http does, so a full descriptor table never
// ends the listener.
func (l *Listener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, err
			}
			if isTemporary(err) {
				if isOutOfDescriptors(err) {
					l.acceptErrors.Add(1)
					l.warn(time.Now(), err)
				}
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return nil, err
		}
		pause = 0
		key := Key(c.RemoteAddr())
		if l.exempt(c.RemoteAddr()) {
			key = exemptKey
		}
		if !l.admit(key) {
			l.refused.Add(1)
			c.Close()
			l.warn(time.Now(), nil)
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

// admit counts a connection from key if the limits allow it.
func (l *Listener) admit(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Max > 0 && l.total >= l.lim.Max {
		return false
	}
	if l.lim.PerIP > 0 && key != exemptKey && l.byKey[key] >= l.lim.PerIP {
		return false
	}
	l.total++
	l.byKey[key]++
	return true
}

func (l *Listener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.byKey[key] - 1; n > 0 {
		l.byKey[key] = n
	} else {
		delete(l.byKey, key)
	}
}

// exemptKey counts the connections of exempt addresses, which share no cap.
const exemptKey = "exempt"

func (l *Listener) exempt(a net.Addr) bool {
	if l.lim.Exempt == nil {
		return false
	}
	t, ok := a.(*net.TCPAddr)
	return ok && l.lim.Exempt(t.AddrPort().Addr().Unmap())
}

// Open returns the number of connections open (accepted and not closed).
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Refused returns the number of connections closed at accept for being
// over a limit.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// AcceptErrors returns the number of accepts that failed because the
// process or the system was out of descriptors (EMFILE, ENFILE).
func (l *Listener) AcceptErrors() uint64 { return l.acceptErrors.Load() }

// Limits returns the listener's caps.
func (l *Listener) Limits() Limits { return l.lim }

// conn is an admitted connection; Close gives its place back once.
type conn struct {
	net.Conn
	l    *Listener
	key  string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// NetConn returns the accepted connection (as crypto/tls.Conn.NetConn
// does), so that socket options can still be set on it.
func (c *conn) NetConn() net.Conn { return c.Conn }
