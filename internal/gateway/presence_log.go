package gateway

// Logging devices as they come and go, at scale (docs/operations.md,
// "Logs of devices coming and going"). Each device online, offline or
// moved is one info line; during a reconnect storm that is tens of
// thousands of lines, and every one of them takes the log handler's lock,
// which the sessions then queue on. So at most presenceLogBurst such
// lines a second are logged at info; the rest go to debug only, and every
// presenceLogEvery a summary line at info counts the period's devices
// online, offline and moved when any of them was not logged at info.

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Bounds of the per-device info lines.
const (
	// presenceLogBurst is how many per-device lines a second are logged
	// at info.
	presenceLogBurst = 20
	// presenceLogEvery is the period of the summary line.
	presenceLogEvery = 10 * time.Second
)

// presenceKind is what a per-device line reports.
type presenceKind int

const (
	presenceOnline presenceKind = iota
	presenceOffline
	presenceMoved // a new address, or a session restarted by its device
	presenceKinds
)

// presenceLog rate-limits the per-device lines. Safe for concurrent use;
// it takes no lock.
type presenceLog struct {
	log    *slog.Logger
	sec    atomic.Int64 // the Unix second lines counts
	lines  atomic.Int64 // info lines logged in sec
	counts [presenceKinds]atomic.Int64
	quiet  [presenceKinds]atomic.Int64 // of counts, those at debug only
}

// note logs one per-device line: at info while the second's burst lasts,
// else at debug.
func (p *presenceLog) note(k presenceKind, msg string, args ...any) {
	p.counts[k].Add(1)
	if p.allow(time.Now()) {
		p.log.Info(msg, args...)
		return
	}
	p.quiet[k].Add(1)
	p.log.Debug(msg, args...)
}

// allow counts an info line in now's second and reports whether it is
// within the burst. Lines racing over a second's change may be counted in
// either second.
func (p *presenceLog) allow(now time.Time) bool {
	sec := now.Unix()
	if old := p.sec.Load(); old != sec && p.sec.CompareAndSwap(old, sec) {
		p.lines.Store(0)
	}
	return p.lines.Add(1) <= presenceLogBurst
}

// summary logs the counts since the last summary, if any line of them
// was not logged at info, and starts the next period.
func (p *presenceLog) summary(period time.Duration) {
	var n, q [presenceKinds]int64
	quiet := int64(0)
	for k := range presenceKinds {
		n[k] = p.counts[k].Swap(0)
		q[k] = p.quiet[k].Swap(0)
		quiet += q[k]
	}
	if quiet == 0 {
		return
	}
	p.log.Info("gateway: devices online and offline", "period", period.String(),
		"online", n[presenceOnline], "offline", n[presenceOffline], "moved", n[presenceMoved],
		"debug_only", quiet)
}

// presenceLogLoop logs the summary every presenceLogEvery until Shutdown,
// and once more then.
func (g *Gateway) presenceLogLoop() {
	defer g.bg.Done()
	t := time.NewTicker(presenceLogEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case now := <-t.C:
			g.plog.summary(now.Sub(last).Round(time.Second))
			last = now
		case <-g.ctx.Done():
			g.plog.summary(time.Since(last).Round(time.Second))
			return
		}
	}
}
