package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// TestEventAckedAfterPublish: a confirmable event is acknowledged only
// once the bus accepted it; one the bus refuses is answered 5.03 (which
// Device OS reports as a failed publish), never with an empty ACK, and is
// counted in EventsUnacked. The session stays up.
func TestEventAckedAfterPublish(t *testing.T) {
	w := newWorld(t, testConfig())
	release := make(chan struct{})
	w.g.testHookPublish = func(e bus.Event) error {
		switch e.Name {
		case "slow/x":
			<-release
		case "fail/x", "spark/device/last_reset":
			return errors.New("bus down")
		}
		return nil
	}
	id := deviceID(70)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	sub := w.subscribe(bus.Filter{DeviceID: id.String()})

	// Not acknowledged while the bus has not accepted it.
	mid := d.publish(protocol.Event{Name: "slow/x", Data: []byte("1"), Private: true}, protocol.Confirmable)
	d.expectNone("ACK before the bus accepted the event", 200*time.Millisecond, ackOf(mid))
	close(release)
	if a := d.expect("ACK", ackOf(mid)); a.m.Code != protocol.CodeEmpty {
		t.Errorf("ACK code %s, want an empty ACK", a.m.Code)
	}
	nextEvent(t, sub, "slow/x")

	for _, name := range []string{"fail/x", "spark/device/last_reset"} {
		mid := d.publish(protocol.Event{Name: name, Data: []byte("2"), Private: true}, protocol.Confirmable)
		if a := d.expect("answer", ackOf(mid)); a.m.Code != protocol.CodeServiceUnavailable {
			t.Errorf("%s refused by the bus: ACK code %s, want 5.03", name, a.m.Code)
		}
	}
	// A non-confirmable one cannot be answered: it is counted.
	d.publish(protocol.Event{Name: "fail/x", Data: []byte("3"), Private: true}, protocol.NonConfirmable)
	waitFor(t, "EventsUnacked", func() bool { return w.g.Stats().EventsUnacked == 3 })
	if !w.g.Online(id.String()) {
		t.Error("the device went offline")
	}
}
