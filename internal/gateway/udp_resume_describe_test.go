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
			w, id, d := ledDeviceOnline(t, tc.app)
			waitFor(t, "both describes asked after the handshake", func() bool { return d.count(isDescribe) == 2 })
			waitFor(t, "application describe stored", func() bool {
				dev := w.device(id)
				return tc.app == `{"f":[],"v":{}}` || len(dev.Functions) == 1
			})
			resumeWithPing(t, w, id, d, tc.restart)
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

// ledDeviceOnline starts a gateway whose Gen 3 sessions end after 400 ms
// of silence and brings one device online on it with a function "led"
// (returns 7) and app as its application describe.
func ledDeviceOnline(t *testing.T, app string) (*udpWorld, protocol.DeviceID, *udpDevice) {
	t.Helper()
	cfg := udpTestConfig()
	cfg.UDPIdleTimeout = 400 * time.Millisecond
	w := newUDPWorld(t, cfg)
	id, key := deviceID(1), testUDPKey(t, "device_a")
	w.provisionECC(id, key, "user1")
	d := w.onlineUDPWith(id, key, func(d *udpDevice) {
		d.functions["led"] = func(string) int32 { return 7 }
		d.appJSON = app
	})
	return w, id, d
}

// resumeWithPing ends d's session (a restart of the gateway, or silence
// until the session ends), then resumes it from a new socket with a ping
// on the saved session, as Device OS does, and waits until the device is
// online again.
func resumeWithPing(t *testing.T, w *udpWorld, id protocol.DeviceID, d *udpDevice, restart bool) {
	t.Helper()
	if restart {
		w.restart()
	} else {
		waitFor(t, "offline after silence", func() bool { return !w.g.Online(id.String()) && !w.device(id).Online })
	}
	if w.device(id).Online {
		t.Fatal("device still online in the store")
	}
	moveSocket(t, d)
	d.mark253 = true
	pid := d.nextID()
	d.send(protocol.NewPing(pid))
	d.expect("ping ACK on the resumed session", ackOf(pid))
	waitFor(t, "online again", func() bool { return w.g.Online(id.String()) && w.device(id).Online })
}
