package gateway

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/protocol"
)

// Two nodes of a cluster over one store and a Gen 3 device that moves from
// one to the other on its saved session (docs/device-protocol.md, "Saved
// sessions in a cluster"): the node the device left must never seal a
// record under a sequence number (a CCM nonce) the other uses.

// udpNode starts another node on the world's store: its own loopback
// port, and its own bus, so that it hears nothing of the world's gateway
// (as a node of a cluster whose presence news is late): only the store
// keeps the two apart.
func (w *udpWorld) udpNode(cfg Config, node string) (*Gateway, netip.AddrPort) {
	w.t.Helper()
	cfg.Node = node
	g, err := New(cfg, Deps{Store: w.st, Bus: bustest.New(w.t, bus.Config{}), ServerKey: testServerKey(w.t),
		UDPKey: testUDPKey(w.t, "server")}, testLogger())
	if err != nil {
		w.t.Fatalf("gateway.New: %v", err)
	}
	pcs, err := ListenUDP("127.0.0.1:0", 1)
	if err != nil {
		w.t.Fatalf("ListenUDP: %v", err)
	}
	go g.ServeUDP(pcs[0])
	waitFor(w.t, "node udp socket served", func() bool {
		g.udp.mu.Lock()
		defer g.udp.mu.Unlock()
		return len(g.udp.sockets) == 1
	})
	w.t.Cleanup(func() { g.Close() })
	return g, netip.MustParseAddrPort(pcs[0].LocalAddr().String())
}

// moveDevice points d at server and pings it on the saved session until
// the ping is answered there.
func moveDevice(t *testing.T, d *udpDevice, server netip.AddrPort, what string) {
	t.Helper()
	d.wmu.Lock()
	d.server, d.mark253 = server, true
	d.wmu.Unlock()
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect(what, ackOf(pid))
}

// pingDevice has the server session s ping the device n times, each
// answered before the next.
func pingDevice(t *testing.T, s *session, d *udpDevice, n int) {
	t.Helper()
	for range n {
		before := d.count(func(m devMsg) bool { return m.kind() == protocol.KindPing })
		if err := s.sendNew(func(id uint16) protocol.Message { return protocol.NewPing(id) }); err != nil {
			t.Fatalf("server ping: %v", err)
		}
		waitFor(t, "server ping at the device", func() bool {
			return d.count(func(m devMsg) bool { return m.kind() == protocol.KindPing }) > before
		})
	}
}

// storedBy reports whether the saved session of c's connection ID is the
// state c last saved.
func storedBy(t *testing.T, w *udpWorld, c *udpConn) bool {
	t.Helper()
	st, err := w.st.DTLSSession(context.Background(), c.cid[:])
	if err != nil {
		t.Fatalf("saved session: %v", err)
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	return bytes.Equal(st.State, c.stored)
}

// clusterMove puts a device online on the world's gateway (node A), then
// moves it to a second node B on its saved session, while A's session
// still runs: the device's datagrams go to B (a balancer that rehashes),
// and either the device's own record there restores the session or, with
// reach set, a call through B does (udp_reach.go: B restores the saved
// session and pings the device on it). It returns the device, A's session
// and B's gateway and session.
func clusterMove(t *testing.T, reach bool) (w *udpWorld, d *udpDevice, sA *session, gB *Gateway, sB *session) {
	cfg := udpTestConfig()
	cfg.UDPIdleTimeout = time.Minute // A's session ends only when the test ends it
	w = newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d = w.onlineUDPWith(id, key, func(d *udpDevice) { d.appJSON = `{"f":["led"],"v":{}}` })
	sA = w.g.lookup(id.String())
	waitFor(t, "describe on node A", func() bool { return len(w.device(id).Functions) == 1 })
	gB, addrB := w.udpNode(cfg, "node-b")
	if reach {
		d.wmu.Lock()
		d.server = addrB
		d.wmu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := gB.Ping(ctx, id.String())
		cancel()
		if err != nil {
			t.Fatalf("ping through node B, which reaches the device on its saved session: %v", err)
		}
	} else {
		moveDevice(t, d, addrB, "ping ACK from node B")
	}
	waitFor(t, "node B holds the device", func() bool { return gB.lookup(id.String()) != nil })
	sB = gB.lookup(id.String())
	select {
	case <-sA.done:
		t.Fatal("node A's session ended when the device moved: the test needs it running")
	default:
	}
	return w, d, sA, gB, sB
}

// TestUDPClusterMoveStopsOldNode: the device resumes its saved session on
// node B (or B reaches it there) while node A's session of it still runs. A seals on within the
// numbers its last save reserved (below where B starts), and its next
// reservation save finds the stored session B's: it fails, and A ends
// without sealing that record, saving or deleting anything. Before saves
// were conditional A's save replaced B's and A sealed the numbers B had
// used: the device saw a reused nonce.
func TestUDPClusterMoveStopsOldNode(t *testing.T) {
	for _, reach := range []bool{false, true} {
		name := "device resumes on B"
		if reach {
			name = "B reaches the device"
		}
		t.Run(name, func(t *testing.T) { testClusterMoveStopsOldNode(t, reach) })
	}
}

func testClusterMoveStopsOldNode(t *testing.T, reach bool) {
	w, d, sA, _, sB := clusterMove(t, reach)
	cA, cB := sA.tr.(*udpConn), sB.tr.(*udpConn)
	pingDevice(t, sB, d, 3)

	// A's next record needs a new reservation.
	cA.smu.Lock()
	sess, err := cA.sessLocked()
	if err != nil {
		cA.smu.Unlock()
		t.Fatal(err)
	}
	cA.seqLimit = sess.WriteSeq
	cA.smu.Unlock()
	if err := sA.sendNew(func(id uint16) protocol.Message { return protocol.NewPing(id) }); err == nil {
		t.Fatal("node A sealed a record past its reservation after node B restored the session")
	}
	waitFor(t, "node A's session ends", func() bool {
		select {
		case <-sA.done:
			return true
		default:
			return false
		}
	})
	sA.mu.Lock()
	reason := sA.reason
	sA.mu.Unlock()
	if reason != reasonClaimed {
		t.Errorf("node A's session ended: %q; want %q", reason, reasonClaimed)
	}

	// B goes on, and its saved row is its own.
	pingDevice(t, sB, d, 3)
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK from node B after A stopped", ackOf(pid))
	if !storedBy(t, w, cB) {
		t.Error("the stored session is not the one node B saved")
	}
	if n := d.replays.Load(); n > 0 {
		t.Fatalf("the device saw %d server records reuse a sequence number (and CCM nonce) of an accepted one", n)
	}
}

// TestUDPClusterEndSaveConflict: node A's session ends (a batched
// end-of-session save, as at a shutdown) after node B restored the saved
// session: A's save loses in its batch and leaves B's row. The device then
// moves back to A, which restores B's row: every number B used lies below
// it. Before, A's end save replaced B's row with a reservation below the
// numbers B had used since, and the device, back on A, saw them reused.
func TestUDPClusterEndSaveConflict(t *testing.T) {
	w, d, sA, gB, sB := clusterMove(t, false)
	cB := sB.tr.(*udpConn)
	// B seals more records than A did after its last save.
	pingDevice(t, sB, d, 12)
	saves := w.g.Stats().UDPSaves
	sA.close(reasonIdle)
	<-sA.done
	if got := w.g.Stats().UDPSaves; got != saves {
		t.Errorf("node A's end save counted as saved (%d saves, was %d)", got, saves)
	}
	if !storedBy(t, w, cB) {
		t.Error("node A's end-of-session save replaced node B's")
	}

	// Back to A, which restores what B saved; B's next save loses.
	moveDevice(t, d, w.addr, "ping ACK from node A again")
	id := d.id.String()
	waitFor(t, "node A holds the device again", func() bool { return w.g.lookup(id) != nil })
	pingDevice(t, w.g.lookup(id), d, 3)
	if n := d.replays.Load(); n > 0 {
		t.Fatalf("the device saw %d server records reuse a sequence number (and CCM nonce) of an accepted one", n)
	}
	sB.close(reasonIdle)
	<-sB.done
	if gB.Stats().UDPSaves == 0 {
		t.Error("node B saved nothing")
	}
	t.Logf("late records refused as too old: %d", d.stale.Load())
}
