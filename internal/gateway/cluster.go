package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// Cluster liveness (docs/cluster-test.md): every gateway announces itself
// on the bus every NodeHeartbeat; a gateway that has heard a node and then
// hears nothing from it for NodeDeadAfter marks that node's devices offline
// in the store (store.ResetNode, which only one survivor's update wins) and
// announces them offline. A node that restarts under the same name does
// the same for itself at start (New).
const (
	// DefaultNodeHeartbeat is how often a gateway announces that it lives.
	DefaultNodeHeartbeat = 2 * time.Second
	// DefaultNodeDeadAfter is how long a node may stay silent before the
	// other nodes mark its devices offline.
	DefaultNodeDeadAfter = 10 * time.Second
	// nodeNoticeTopic is the bus notice topic of the heartbeats.
	nodeNoticeTopic = "gateway-node"
	// presenceBuffer is the presence subscription's buffer.
	presenceBuffer = 1024
)

// nodeBeat is the payload of a heartbeat notice.
type nodeBeat struct {
	Node string `json:"node"`
}

// liveness is the gateway's view of the other nodes.
type liveness struct {
	heartbeat, deadAfter time.Duration

	mu   sync.Mutex
	seen map[string]time.Time // node → when its last heartbeat arrived
}

// startCluster starts the heartbeat, the watch over other nodes and the
// watch over presence (a device that moved to another node is let go
// here). It runs until the gateway shuts down; errors only disable it,
// with a warning, since a single node needs none of it.
func (g *Gateway) startCluster() {
	lv := &g.live
	lv.heartbeat, lv.deadAfter = g.cfg.NodeHeartbeat, g.cfg.NodeDeadAfter
	if lv.heartbeat <= 0 {
		lv.heartbeat = DefaultNodeHeartbeat
	}
	if lv.deadAfter <= 0 {
		lv.deadAfter = DefaultNodeDeadAfter
	}
	lv.seen = make(map[string]time.Time)
	stop, err := g.bus.SubscribeNotices(nodeNoticeTopic, func(data []byte) {
		var b nodeBeat
		if json.Unmarshal(data, &b) != nil || b.Node == "" || b.Node == g.cfg.Node {
			return
		}
		lv.mu.Lock()
		lv.seen[b.Node] = time.Now()
		lv.mu.Unlock()
	})
	if err != nil {
		g.log.Warn("gateway: node heartbeats disabled", "err", err)
		return
	}
	pres, err := g.bus.SubscribePresence("", presenceBuffer)
	if err != nil {
		stop()
		g.log.Warn("gateway: presence watch disabled", "err", err)
		return
	}
	g.bg.Add(2)
	go func() {
		defer g.bg.Done()
		defer stop()
		g.nodeLoop()
	}()
	go func() {
		defer g.bg.Done()
		defer pres.Close()
		g.presenceLoop(pres)
	}()
}

// nodeLoop sends heartbeats and resets the nodes that went silent.
func (g *Gateway) nodeLoop() {
	beat, _ := json.Marshal(nodeBeat{Node: g.cfg.Node})
	t := time.NewTicker(g.live.heartbeat)
	defer t.Stop()
	for {
		if err := g.bus.PublishNotice(nodeNoticeTopic, beat); err != nil && !errors.Is(err, bus.ErrClosed) {
			g.log.Debug("gateway: heartbeat", "err", err)
		}
		select {
		case <-t.C:
		case <-g.ctx.Done():
			return
		}
		for _, node := range g.live.dead(time.Now()) {
			g.resetDeadNode(node)
		}
	}
}

// dead returns the nodes silent for deadAfter at now and forgets them (a
// node that comes back is heard again).
func (lv *liveness) dead(now time.Time) []string {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	var out []string
	for node, at := range lv.seen {
		if now.Sub(at) >= lv.deadAfter {
			out = append(out, node)
			delete(lv.seen, node)
		}
	}
	return out
}

// resetDeadNode marks offline the devices a silent node still holds in the
// store and announces them offline: its first chunk at once, the rest in
// the background resetChunk per transaction, each with its own deadline
// (a node of 100,000 devices is 50 of them). Several survivors may run it
// at once: the store's update returns each device to one of them only.
func (g *Gateway) resetDeadNode(node string) {
	at := time.Now()
	ctx, cancel := context.WithTimeout(g.ctx, resetChunkTimeout)
	first, err := g.store.ResetNodeBatch(ctx, node, at, resetChunk)
	cancel()
	if err != nil {
		g.log.Warn("gateway: reset the devices of a silent node", "node", node, "err", err)
		return
	}
	g.log.Warn("gateway: node silent; marking its devices offline", "node", node,
		"silent_for", g.live.deadAfter, "first_chunk", len(first))
	if len(first) > 0 {
		g.bg.Add(1)
		go g.resetRest(node, "a silent node", at, first)
	}
}

// presenceLoop lets go of a local session whose device came online on
// another node after the session started (a half-open connection the
// device gave up on: the other node holds the device now).
func (g *Gateway) presenceLoop(pres *bus.PresenceSubscription) {
	for {
		select {
		case p, ok := <-pres.Presences():
			if !ok {
				return
			}
			if !p.Online || p.Node == g.cfg.Node {
				continue
			}
			s := g.lookup(p.DeviceID)
			if s == nil || !s.start.Before(p.At) {
				continue
			}
			g.log.Info("gateway: device online on another node; closing this session", "device", s.id,
				"session", s.sid, "node", p.Node)
			s.close(reasonElsewhere)
		case <-g.ctx.Done():
			return
		}
	}
}

// reasonElsewhere closes a session whose device is online on another node.
const reasonElsewhere = "online on another node"
