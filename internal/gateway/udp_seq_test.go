package gateway

import (
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

// TestUDPResumeNeverReusesSequence ends and resumes a Gen 3 session many
// times in a row, each resumed session's describe fetch still under way
// when it ends, as the device pings on its saved session: a record sealed
// by the ending session after its last save must not share a sequence
// number (and so a CCM nonce) with the session resumed from that save.
// Before the end-of-session save reserved numbers ahead, the device saw a
// replayed sequence number within a few hundred rounds and its ping went
// unanswered.
func TestUDPResumeNeverReusesSequence(t *testing.T) {
	w := newUDPWorld(t, udpTestConfig())
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "")
	d := w.onlineUDP(id, key)
	d.wmu.Lock() // sendPlain reads it, and the device answers describes on its own
	d.mark253 = true
	d.wmu.Unlock()
	const rounds = 300
	for i := range rounds {
		s := w.g.lookup(id.String())
		if s == nil {
			t.Fatalf("round %d: not online", i)
		}
		s.close(reasonIdle)
		<-s.done
		pid := d.nextID()
		d.send(protocol.NewPing(pid))
		d.expect("ping ACK", ackOf(pid))
		if n := d.replays.Load(); n > 0 {
			t.Fatalf("round %d: the device saw %d server records reuse a sequence number (and CCM nonce) of an accepted record", i, n)
		}
	}
	// Records the ended session sealed after the resumed one had
	// answered are refused as too old: late, not a reused nonce.
	t.Logf("late records of ended sessions refused as too old: %d", d.stale.Load())
}
