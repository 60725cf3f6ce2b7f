package gateway

// The start sweep (docs/device-protocol.md#39-the-dtls-transport, "After a
// restart"). A call reaches a Gen 3 device that no process holds, but an
// event cannot: the event router knows only the subscriptions of held
// sessions, so after a restart a device that stays up would miss every
// event until its next datagram (its keep-alive: 25 s on Wi-Fi, 23 min on
// cellular). So at start the gateway reaches, at Config.UDPReachRate per
// second and Config.UDPReachInFlight at once, every device whose saved session was
// written within savedSessionWindow and that the store lists offline:
// each costs a restore (session read, device read, one claiming save) and
// one CoAP ping; a device that answers comes online with its stored
// subscriptions, one that does not is remembered as a miss like any
// unanswered reach and keeps the time of its old save, so the next
// restart does not try it again once that is older than the window.
//
// Several nodes starting at once list the same devices: the restore's
// claim (ClaimDTLSSession) lets one of them continue a saved state, and a
// device another node brought online in the meantime is skipped when the
// next page is read or found online by the presence watch.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// Bounds of the start sweep.
const (
	// savedSessionWindow is how recently a device's session must have
	// been saved for the sweep to try it: the longest default Gen 3
	// silence (cellular, 46 min 45 s) rounded up, as the API uses.
	savedSessionWindow = 47 * time.Minute
	// reachPage is how many saved sessions one store read lists.
	reachPage = 256
	// reachProgress is how often the sweep logs its progress.
	reachProgress = 30 * time.Second
)

// reachCounts are the start sweep's figures.
type reachCounts struct {
	listed, reached, missed, skipped atomic.Int64
	inFlight, maxInFlight            atomic.Int64
	done                             atomic.Bool // the sweep is over
}

// reachRecent is the start sweep: it runs once, from the first ServeUDP,
// until every listed device is tried or the gateway shuts down.
func (u *udpServer) reachRecent() {
	g := u.g
	defer g.bg.Done()
	ds, ok := u.saved.(store.DeviceDTLSSessions)
	rate := min(g.cfg.UDPReachRate, 1_000_000)
	if !ok || rate <= 0 {
		return
	}
	n := &u.reachN
	defer n.done.Store(true)
	start := time.Now()
	since := start.Add(-savedSessionWindow)
	jobs := make(chan store.DTLSSession)
	var wg sync.WaitGroup
	for range g.cfg.UDPReachInFlight {
		wg.Go(func() {
			for st := range jobs {
				u.reachOne(&st, n)
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	progress := start
	var after *store.DTLSSession
	stopped := false
pages:
	for {
		ctx, cancel := context.WithTimeout(g.ctx, storeTimeout)
		page, err := ds.RecentDTLSSessions(ctx, since, after, reachPage)
		cancel()
		if err != nil {
			if g.ctx.Err() == nil {
				g.log.Warn("gateway: start sweep: list saved dtls sessions", "err", err)
			}
			stopped = true
			break
		}
		if len(page) == 0 {
			break
		}
		for _, st := range page {
			select {
			case <-tick.C:
			case <-g.ctx.Done():
				stopped = true
				break pages
			}
			n.listed.Add(1)
			select {
			case jobs <- st:
			case <-g.ctx.Done():
				stopped = true
				break pages
			}
		}
		after = &page[len(page)-1]
		if time.Since(progress) >= reachProgress {
			progress = time.Now()
			g.log.Info("gateway: start sweep: reaching gen 3 devices on saved sessions", "listed", n.listed.Load(),
				"online", n.reached.Load(), "missed", n.missed.Load(), "skipped", n.skipped.Load())
		}
	}
	close(jobs)
	wg.Wait()
	if n.listed.Load() == 0 && !stopped {
		return
	}
	g.log.Info("gateway: start sweep done", "listed", n.listed.Load(), "online", n.reached.Load(),
		"missed", n.missed.Load(), "skipped", n.skipped.Load(), "took", time.Since(start).Round(time.Millisecond),
		"stopped", stopped)
}

// reachOne reaches the device of the saved session st for the sweep: a
// device this process holds already, or that missed within reachMissTTL,
// is skipped.
func (u *udpServer) reachOne(st *store.DTLSSession, n *reachCounts) {
	g := u.g
	id := normalizeID(st.DeviceID)
	if g.lookup(id) != nil || u.reachMissed(id, time.Now()) {
		n.skipped.Add(1)
		return
	}
	in := n.inFlight.Add(1)
	defer n.inFlight.Add(-1)
	for m := n.maxInFlight.Load(); in > m && !n.maxInFlight.CompareAndSwap(m, in); m = n.maxInFlight.Load() {
	}
	for {
		s := g.reachAt(g.ctx, id, st)
		switch {
		case s != nil:
			n.reached.Add(1)
			return
		case g.ctx.Err() != nil:
			return
		case u.reachMissed(id, time.Now()):
			n.missed.Add(1)
			return
		}
		// No socket or no free lookup: try again shortly.
		select {
		case <-time.After(50 * time.Millisecond):
		case <-g.ctx.Done():
			return
		}
	}
}

// reasonClaimed closes a restored session whose saved state another
// process claimed first.
const reasonClaimed = "restored by another process"
