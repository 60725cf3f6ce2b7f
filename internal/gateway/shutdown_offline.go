package gateway

// A node's restart at scale: the offlines of a graceful shutdown and the
// reset of a previous run's devices at start, both written in chunks.
//
// Shutdown ends every session at once. One by one, each session's offline
// (a store write it waited for, then a spark/status publish and a presence
// notice it waited for too) cost a node holding 100,000 Gen 3 sessions
// over a minute, outlasting the shutdown timeout: the process was killed,
// every device's keep-alive ping timed out meanwhile and the fleet came
// back through full handshakes. Now a session ended by the shutdown only
// notes its device (shutdownOfflines); once the sessions are over, Shutdown
// writes the offlines offlineChunk per store statement
// (store.Devices.SetDevicesOffline) and announces each chunk's devices
// (spark/status offline and the presence notice) from announceWorkers
// workers while the next chunks are written, within announceBudget: the
// store is the truth, the announcements are best effort, and those left
// over are counted in the log.
//
// A Gen 3 device whose session was saved for resumption therefore shows
// offline from the shutdown until it resumes on the new process (its next
// keep-alive ping, or a call), then online: the same as after a crash,
// where the new process's reset marks the devices offline.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

const (
	// offlineChunk is how many devices one offline statement of a
	// shutdown marks, and resetChunk how many one reset transaction at
	// start does.
	offlineChunk = 2000
	resetChunk   = 2000
	// announceWorkers publish a shutdown's offlines concurrently (each
	// publish waits for the bus to store the event).
	announceWorkers = 256
	// announceBudget bounds the announcements of a shutdown (within its
	// context's own deadline).
	announceBudget = 5 * time.Second
	// resetChunkTimeout bounds one reset transaction; the whole reset has
	// no limit: it goes on, chunk after chunk, while the gateway serves.
	resetChunkTimeout = 30 * time.Second
	// progressEvery is how often a long reset or shutdown logs progress.
	progressEvery = 5 * time.Second
)

// downDevice is a device whose session the shutdown ended.
type downDevice struct {
	id, sid, ip string
	at          time.Time // its last frame
	own         owner
	prodVer     int
}

// shutdownOfflines collects the devices of sessions ended by Shutdown.
type shutdownOfflines struct {
	mu   sync.Mutex
	list []downDevice
}

func (d *shutdownOfflines) add(dd downDevice) {
	d.mu.Lock()
	d.list = append(d.list, dd)
	d.mu.Unlock()
}

func (d *shutdownOfflines) take() []downDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.list
	d.list = nil
	return l
}

// finishShutdownOffline writes the offlines of the sessions Shutdown
// ended, a chunk per statement, and announces those that applied while
// the next chunks are written. The presence writer must have written its
// queue first: an online still queued would otherwise follow the offline.
func (g *Gateway) finishShutdownOffline(ctx context.Context) {
	down := g.downs.take()
	if len(down) == 0 {
		return
	}
	start := time.Now()
	ann := g.startAnnouncer(ctx, len(down))
	var (
		failed  int
		lastErr error
		logged  = start
	)
	for off := 0; off < len(down); off += offlineChunk {
		chunk := down[off:min(off+offlineChunk, len(down))]
		if ctx.Err() != nil {
			failed += len(chunk)
			continue
		}
		offs := make([]store.DeviceOffline, len(chunk))
		for i, d := range chunk {
			offs[i] = store.DeviceOffline{ID: d.id, SessionID: d.sid, At: d.at}
		}
		cctx, cancel := context.WithTimeout(ctx, storeTimeout)
		ok, err := g.store.SetDevicesOffline(cctx, offs)
		cancel()
		if err != nil {
			failed += len(chunk)
			lastErr = err
			continue
		}
		for i, a := range ok {
			if a {
				ann.queue <- &chunk[i]
			}
		}
		if time.Since(logged) >= progressEvery {
			logged = time.Now()
			g.log.Info("gateway: shutdown: marking devices offline", "done", off+len(chunk), "of", len(down))
		}
	}
	written := time.Since(start)
	if failed > 0 {
		// The next start of this node marks them offline (ResetNode).
		g.log.Error("gateway: shutdown: devices not marked offline; the next start of this node will",
			"devices", failed, "err", lastErr)
	}
	published, skipped := ann.finish()
	g.log.Info("gateway: shutdown: devices marked offline", "devices", len(down)-failed,
		"took", written.Round(time.Millisecond), "announced", published, "not_announced", skipped,
		"all_took", time.Since(start).Round(time.Millisecond))
}

// announcer publishes spark/status offline and the presence notice of the
// devices queued to it from announceWorkers workers, until announceBudget
// (from its start) or ctx runs out.
type announcer struct {
	queue     chan *downDevice
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	published atomic.Int64
	skipped   atomic.Int64
}

// startAnnouncer starts the workers of an announcer for up to n devices.
func (g *Gateway) startAnnouncer(ctx context.Context, n int) *announcer {
	actx, cancel := context.WithTimeout(ctx, announceBudget)
	a := &announcer{queue: make(chan *downDevice, n), cancel: cancel}
	for range min(announceWorkers, n) {
		a.wg.Go(func() {
			for d := range a.queue {
				if actx.Err() != nil {
					a.skipped.Add(1) // out of time: the rest are counted
					continue
				}
				if g.publishStatusCtx(actx, d.own, d.prodVer, d.id, statusOffline) != nil {
					a.skipped.Add(1)
					continue
				}
				a.published.Add(1)
				g.publishPresenceCtx(actx, d.id, false, d.sid, d.ip)
			}
		})
	}
	return a
}

// finish waits for the queued devices to be announced (or counted as
// skipped once the budget is spent) and returns the counts.
func (a *announcer) finish() (published, skipped int) {
	close(a.queue)
	a.wg.Wait()
	a.cancel()
	return int(a.published.Load()), int(a.skipped.Load())
}

// resetPrevious goes on with the reset of the devices a previous run of
// this node left online (sessions whose handshake was before at), whose
// first chunk New wrote (first: a store that fails it fails New). The rest
// is written resetChunk per transaction in the background while the
// gateway already serves (a node restarted after a crash with a large
// fleet): the condition on the handshake time leaves the devices that
// come back to this process alone. The devices are then announced offline.
func (g *Gateway) resetPrevious(at time.Time, first []string) {
	if len(first) == 0 {
		return
	}
	g.bg.Add(1)
	go g.resetRest(g.cfg.Node, "a previous run", at, first)
}

// resetRest goes on with the chunks of node's reset (of whom names it in
// the log: a previous run of this node, a silent node) until one finds no
// device (one more statement on the devices_node index, whatever the
// store's chunk: a short chunk need not be the last) or the gateway shuts
// down, retrying a chunk that fails.
func (g *Gateway) resetRest(node, of string, at time.Time, first []string) {
	defer g.bg.Done()
	start, logged := time.Now(), time.Now()
	ids := first
	done := len(first)
	backoff := time.Duration(0)
	for g.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(g.ctx, resetChunkTimeout)
		chunk, err := g.store.ResetNodeBatch(ctx, node, at, resetChunk)
		cancel()
		if err != nil {
			if g.ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			g.log.Warn("gateway: reset of the devices of "+of+"; retrying", "node", node, "done", done, "retry_in", backoff, "err", err)
			select {
			case <-time.After(backoff):
			case <-g.ctx.Done():
			}
			continue
		}
		backoff = 0
		ids = append(ids, chunk...)
		done += len(chunk)
		if len(chunk) == 0 {
			g.log.Info("gateway: devices of "+of+" marked offline", "node", node, "count", done,
				"took", time.Since(start).Round(time.Millisecond))
			g.bg.Add(1)
			go g.announceReset(ids)
			return
		}
		if time.Since(logged) >= progressEvery {
			logged = time.Now()
			g.log.Info("gateway: marking devices of "+of+" offline", "node", node, "done", done)
		}
	}
	g.log.Warn("gateway: shut down before every device of "+of+" was marked offline", "node", node, "done", done)
}
