package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// TestUDPResumeKeepsStoredDescribes: a Gen 3 device that resumes its saved
// session with a ping (no Hello: its firmware did not change) is asked for
// no describe when the store holds its application describe, and its
// functions work at once; with no application describe stored it is asked
// for both parts, as after a handshake. Both on the same gateway and on a
// restarted one.
func TestUDPResumeKeepsStoredDescribes(t *testing.T) {
	isDescribe := func(m devMsg) bool { return m.kind() == protocol.KindDescribeRequest }
	for _, tc := range []struct {
		name    string
		app     string // the application describe the device answers
		restart bool
		asked   int // describe requests after the resumption
	}{
		{"stored app, same gateway", `{"f":["led"],"v":{}}`, false, 0},
		{"stored app, after restart", `{"f":["led"],"v":{}}`, true, 0},
		{"no app stored, same gateway", `{"f":[],"v":{}}`, false, 2},
		{"no app stored, after restart", `{"f":[],"v":{}}`, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := udpTestConfig()
			cfg.UDPIdleTimeout = 400 * time.Millisecond
			w := newUDPWorld(t, cfg)
			id, key := deviceID(1), testUDPKey(t, "device_a")
			w.provisionECC(id, key, "user1")
			d := w.onlineUDPWith(id, key, func(d *udpDevice) {
				d.functions["led"] = func(string) int32 { return 7 }
				d.appJSON = tc.app
			})
			waitFor(t, "both describes asked after the handshake", func() bool { return d.count(isDescribe) == 2 })
			waitFor(t, "application describe stored", func() bool {
				dev := w.device(id)
				return tc.app == `{"f":[],"v":{}}` || len(dev.Functions) == 1
			})
			if tc.restart {
				w.restart()
			} else {
				waitFor(t, "offline after silence", func() bool { return !w.g.Online(id.String()) && !w.device(id).Online })
			}
			moveSocket(t, d)
			d.mark253 = true
			pid := d.nextID()
			d.send(protocol.NewPing(pid))
			d.expect("ping ACK on the resumed session", ackOf(pid))
			waitFor(t, "online again", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
			if w.g.Stats().UDPResumptions != 1 {
				t.Fatalf("stats %+v: want 1 resumption", w.g.Stats())
			}
			if tc.asked > 0 {
				waitFor(t, "describes asked after the resumption", func() bool { return d.count(isDescribe) == 2+tc.asked })
				return
			}
			ret, err := w.g.CallFunction(context.Background(), id.String(), "led", "")
			if err != nil || ret != 7 {
				t.Fatalf("call after resumption = %d, %v", ret, err)
			}
			// A request would have gone out when the session went
			// online, before the call; give a late one time to show.
			time.Sleep(300 * time.Millisecond)
			if n := d.count(isDescribe) - 2; n != 0 {
				t.Fatalf("%d describe requests after the resumption, want none", n)
			}
		})
	}
}
