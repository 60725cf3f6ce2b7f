package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

const owner2 = "fedcba9876543210fedcba98"

func TestEventsFromDevice(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(30)
	w.provision(id, testKey(t, "device_a"), owner1)
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	nextEvent(t, events, "spark/status")

	d.publish(protocol.Event{Name: "temp/kitchen", Data: []byte("21.5"), Private: true, TTL: 120}, protocol.NonConfirmable)
	e := nextEvent(t, events, "temp/kitchen")
	if e.Data != "21.5" || e.TTL != 120 || e.Public || e.UserID != owner1 || e.DeviceID != id.String() {
		t.Errorf("private event = %+v", e)
	}
	// Public ('e'), default TTL, confirmable: ACKed.
	msgID := d.publish(protocol.Event{Name: "door", Data: []byte("open"), TTL: protocol.DefaultEventTTL}, protocol.Confirmable)
	if ack := d.expect("publish ACK", ackOf(msgID)); ack.m.Code != protocol.CodeEmpty {
		t.Errorf("publish answered %s", ack.m.Code)
	}
	e = nextEvent(t, events, "door")
	if e.Data != "open" || e.TTL != 60 || !e.Public {
		t.Errorf("public event = %+v", e)
	}
	// Empty data.
	d.publish(protocol.Event{Name: "ping", Private: true, TTL: protocol.DefaultEventTTL}, protocol.NonConfirmable)
	if e := nextEvent(t, events, "ping"); e.Data != "" {
		t.Errorf("empty event = %+v", e)
	}
	if st := w.g.Stats(); st.EventsIn != 3 {
		t.Errorf("events in = %d", st.EventsIn)
	}
}

func TestEventsToDevice(t *testing.T) {
	w := newWorld(t, testConfig())
	idA, idB, idC := deviceID(31), deviceID(32), deviceID(33)
	w.provision(idA, testKey(t, "device_a"), owner1)
	w.provision(idB, testKey(t, "device_b"), owner1)
	w.provision(idC, testKey(t, "device_b"), owner2)
	a := w.online(idA, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	a.subscribe(protocol.Subscription{Prefix: "spark", MyDevices: true})
	a.subscribe(protocol.Subscription{Prefix: "temp"})
	a.subscribe(protocol.Subscription{Prefix: "door", DeviceID: idB.String()})
	b := w.online(idB, testKey(t, "device_b"), protocol.HelloDeviceDescribe)
	c := w.online(idC, testKey(t, "device_b"), protocol.HelloDeviceDescribe)

	// A device of the same owner publishes: delivered as POST E/<name>,
	// NON, no token, with only the name and Max-Age options
	// (docs/particle-protocol.md#events ✔).
	b.publish(protocol.Event{Name: "temp/kitchen", Data: []byte("21"), Private: true, TTL: 300}, protocol.NonConfirmable)
	got := a.expect("event", eventNamed("temp/kitchen"))
	name := []byte("temp/kitchen")
	want := append(append([]byte{0x50, 0x02}, be16(got.m.ID)...), 0xB1, 'E', 0x0C)
	want = append(append(want, name...), 0x33, 0x00, 0x01, 0x2C, 0xFF, '2', '1')
	if !bytes.Equal(got.raw, want) {
		t.Errorf("event to device = % x, want % x", got.raw, want)
	}
	// Public event, default TTL: 'e' and no Max-Age.
	b.publish(protocol.Event{Name: "temp", Data: []byte("x"), TTL: protocol.DefaultEventTTL}, protocol.NonConfirmable)
	got = a.expect("public event", eventNamed("temp"))
	want = append(append([]byte{0x50, 0x02}, be16(got.m.ID)...), 0xB1, 'e', 0x04, 't', 'e', 'm', 'p', 0xFF, 'x')
	if !bytes.Equal(got.raw, want) {
		t.Errorf("public event to device = % x, want % x", got.raw, want)
	}
	// The device receives its own events too, and API events of its owner.
	a.publish(protocol.Event{Name: "temp/self", Private: true, TTL: 60}, protocol.NonConfirmable)
	a.expect("own event", eventNamed("temp/self"))
	if err := w.b.Publish(context.Background(), bus.Event{Name: "temp/api", Data: "1", DeviceID: bus.DeviceAPI, UserID: owner1}); err != nil {
		t.Fatal(err)
	}
	a.expect("API event", eventNamed("temp/api"))
	// Device scope: door events of B only.
	b.publish(protocol.Event{Name: "door", Private: true, TTL: 60}, protocol.NonConfirmable)
	a.expect("scoped event", eventNamed("door"))
	a.publish(protocol.Event{Name: "door/self", Private: true, TTL: 60}, protocol.NonConfirmable)

	// Not delivered: another owner's events (public or not), events that
	// match no prefix, and system events of other devices (B's spark/status).
	c.publish(protocol.Event{Name: "temp/foreign", TTL: 60}, protocol.NonConfirmable)
	b.publish(protocol.Event{Name: "humidity", Private: true, TTL: 60}, protocol.NonConfirmable)
	b.conn.Close()
	a.expectNone("undeliverable event", 300*time.Millisecond, func(m devMsg) bool { return m.kind() == protocol.KindEvent })
	if n := len(c.logged(protocol.KindEvent)); n != 0 {
		t.Errorf("device without subscriptions got %d events", n)
	}
	if st := w.g.Stats(); st.EventsOut != 5 {
		t.Errorf("events out = %d, want 5", st.EventsOut)
	}
}

func TestSendEventDirect(t *testing.T) {
	w := newWorld(t, testConfig())
	id := deviceID(34)
	w.provision(id, testKey(t, "device_a"), owner1)
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	ctx := context.Background()
	if err := w.g.SendEvent(ctx, id.String(), "spark/device/reset", []byte("dfu")); err != nil {
		t.Fatal(err)
	}
	if m := d.expect("reset event", eventNamed("spark/device/reset")); string(m.m.Payload) != "dfu" {
		t.Errorf("payload %q", m.m.Payload)
	}
	r, err := w.b.Call(ctx, id.String(), bus.Call{Kind: bus.KindEvent, Name: "particle/device/updates/forced", Data: []byte("true")})
	if err != nil || r.Status != 200 {
		t.Fatalf("bus event call = %+v, %v", r, err)
	}
	d.expect("forced event", eventNamed("particle/device/updates/forced"))
}

func TestClaimCode(t *testing.T) {
	w := newWorld(t, testConfig())
	ctx := context.Background()
	id := deviceID(35)
	w.provision(id, testKey(t, "device_a"), "")
	sum := sha256.Sum256([]byte("CLAIMCODE123"))
	if err := w.st.CreateClaimCode(ctx, &store.ClaimCode{Hash: hex.EncodeToString(sum[:]), UserID: owner1,
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	all := w.subscribe(bus.Filter{})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)

	// An unknown code claims nothing and is not answered.
	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("WRONG"), Private: true, TTL: 60}, protocol.NonConfirmable)
	d.expectNone("claim answer", 200*time.Millisecond, func(m devMsg) bool { return m.kind() == protocol.KindEvent })

	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("CLAIMCODE123"), Private: true, TTL: 60}, protocol.NonConfirmable)
	done := d.expect("claim done", eventNamed(ClaimDoneEventName))
	if !protocol.IsClaimClearEvent(string(done.m.Options[1].Value)) {
		t.Errorf("claim answer %q does not clear the code", done.m.Options[1].Value)
	}
	if dev := w.device(id); dev.OwnerID != owner1 || dev.Name == "" {
		t.Errorf("owner = %q, name = %q; want %q and a generated name", dev.OwnerID, dev.Name, owner1)
	}
	st := w.g.Stats()
	if st.ClaimsOK != 1 || st.ClaimsFailed != 1 {
		t.Errorf("claims ok %d failed %d", st.ClaimsOK, st.ClaimsFailed)
	}
	// The code is single-use, and nothing about it reached the bus.
	if _, err := w.st.TakeClaimCode(ctx, hex.EncodeToString(sum[:]), time.Now()); err == nil {
		t.Error("claim code still stored")
	}
	d.publish(protocol.Event{Name: "after", Private: true, TTL: 60}, protocol.NonConfirmable)
	before, after := eventsUntil(t, all, "after")
	for _, e := range before {
		if e.Name == protocol.ClaimCodeEventName || bytes.Contains([]byte(e.Data), []byte("CLAIMCODE")) {
			t.Errorf("claim code published: %+v", e)
		}
	}
	// Later events of the device carry its new owner.
	if after.UserID != owner1 {
		t.Errorf("event after claim has owner %q", after.UserID)
	}
}

// eventsUntil returns the events before the first one named name, and that one.
func eventsUntil(t *testing.T, s *bus.Subscription, name string) ([]bus.Event, bus.Event) {
	t.Helper()
	var out []bus.Event
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	for {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("no event %q: %v", name, err)
		}
		if e.Name == name {
			return out, e
		}
		out = append(out, e)
	}
}

func TestClaimCodeForCustomerProduct(t *testing.T) {
	w := newWorld(t, testConfig())
	ctx := context.Background()
	prod := &store.Product{Slug: "fleet", Name: "Fleet", PlatformID: 6, OwnerID: owner1}
	if err := w.st.CreateProduct(ctx, prod, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	cust := &store.Customer{ProductID: prod.ID, Email: "c@example.com"}
	if err := w.st.CreateCustomer(ctx, cust); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("CUSTCODE"))
	if err := w.st.CreateClaimCode(ctx, &store.ClaimCode{Hash: hex.EncodeToString(sum[:]), CustomerID: cust.ID,
		ProductID: prod.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	id := deviceID(36)
	w.provision(id, testKey(t, "device_a"), "")
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("CUSTCODE"), Private: true, TTL: 60}, protocol.NonConfirmable)
	d.expect("claim done", eventNamed(ClaimDoneEventName))
	dev := w.device(id)
	if dev.CustomerID != cust.ID || dev.OwnerID != "" || dev.ProductID != prod.ID {
		t.Errorf("device after claim: customer %q owner %q product %d", dev.CustomerID, dev.OwnerID, dev.ProductID)
	}
}

// TestClaimCodeForProductTeam: a code made with a product token names
// neither user nor customer; the device joins the product unowned and is
// still told to clear its code.
func TestClaimCodeForProductTeam(t *testing.T) {
	w := newWorld(t, testConfig())
	ctx := context.Background()
	prod := &store.Product{Slug: "fleet2", Name: "Fleet 2", PlatformID: 6, OwnerID: owner1}
	if err := w.st.CreateProduct(ctx, prod, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("TEAMCODE"))
	if err := w.st.CreateClaimCode(ctx, &store.ClaimCode{Hash: hex.EncodeToString(sum[:]), ProductID: prod.ID,
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	id := deviceID(37)
	w.provision(id, testKey(t, "device_a"), "")
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("TEAMCODE"), Private: true, TTL: 60}, protocol.NonConfirmable)
	d.expect("claim done", eventNamed(ClaimDoneEventName))
	dev := w.device(id)
	if dev.CustomerID != "" || dev.OwnerID != "" || dev.ProductID != prod.ID {
		t.Errorf("device after claim: customer %q owner %q product %d", dev.CustomerID, dev.OwnerID, dev.ProductID)
	}
	if got := w.g.Stats(); got.ClaimsOK == 0 {
		t.Errorf("claim not counted: %+v", got)
	}
}

func TestClaimCodeRefusedForOwnedDevice(t *testing.T) {
	w := newWorld(t, testConfig())
	ctx := context.Background()
	id := deviceID(37)
	w.provision(id, testKey(t, "device_a"), owner2)
	sum := sha256.Sum256([]byte("STEAL"))
	w.st.CreateClaimCode(ctx, &store.ClaimCode{Hash: hex.EncodeToString(sum[:]), UserID: owner1, ExpiresAt: time.Now().Add(time.Hour)})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("STEAL"), Private: true, TTL: 60}, protocol.NonConfirmable)
	waitFor(t, "claim refused", func() bool { return w.g.Stats().ClaimsFailed == 1 })
	if dev := w.device(id); dev.OwnerID != owner2 {
		t.Errorf("owner = %q", dev.OwnerID)
	}
	// The refusal did not use the code up: the device it was meant for,
	// unowned, still gets claimed with it, and named.
	if _, err := w.st.ClaimCodeByHash(ctx, hex.EncodeToString(sum[:]), time.Now()); err != nil {
		t.Fatalf("claim code after a refused claim: %v", err)
	}
	free := deviceID(38)
	w.provision(free, testKey(t, "device_b"), "")
	d2 := w.online(free, testKey(t, "device_b"), protocol.HelloDeviceDescribe)
	d2.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("STEAL"), Private: true, TTL: 60}, protocol.NonConfirmable)
	d2.expect("claim done", eventNamed(ClaimDoneEventName))
	if dev := w.device(free); dev.OwnerID != owner1 || dev.Name == "" {
		t.Errorf("device claimed after the refusal: owner %q name %q; want %q and a name", dev.OwnerID, dev.Name, owner1)
	}
	if _, err := w.st.ClaimCodeByHash(ctx, hex.EncodeToString(sum[:]), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("claim code after claiming a device: %v; want it used up", err)
	}
	// Used up, it claims no further device.
	d.publish(protocol.Event{Name: protocol.ClaimCodeEventName, Data: []byte("STEAL"), Private: true, TTL: 60}, protocol.NonConfirmable)
	waitFor(t, "second claim refused", func() bool { return w.g.Stats().ClaimsFailed == 2 })
}

func TestSystemEvents(t *testing.T) {
	w := newWorld(t, testConfig())
	ctx := context.Background()
	id := deviceID(38)
	w.provision(id, testKey(t, "device_a"), owner1)
	dev := w.device(id)
	dev.Name = "toaster"
	if err := w.st.UpdateDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	events := w.subscribe(bus.Filter{DeviceID: id.String()})
	d := w.online(id, testKey(t, "device_a"), protocol.HelloDeviceDescribe)
	nextEvent(t, events, "spark/status")

	ev := func(name, data string) { // as the firmware sends them
		d.publish(protocol.Event{Name: name, Data: []byte(data), Private: true, TTL: 60}, protocol.NonConfirmable)
	}
	ev("spark/device/name", "")
	if m := d.expect("name", eventNamed("spark/device/name")); string(m.m.Payload) != "toaster" {
		t.Errorf("name reply %q", m.m.Payload)
	}
	ev("particle/device/name", "") // the form of Device OS's current documentation
	if m := d.expect("name", eventNamed("particle/device/name")); string(m.m.Payload) != "toaster" {
		t.Errorf("particle/ name reply %q", m.m.Payload)
	}
	ev("spark/device/random", "")
	if m := d.expect("random", eventNamed("spark/device/random")); len(m.m.Payload) != 40 {
		t.Errorf("random reply %q", m.m.Payload)
	}
	ev("spark/device/ip", "")
	if m := d.expect("ip", eventNamed("spark/device/ip")); string(m.m.Payload) != "pipe" {
		t.Errorf("ip reply %q", m.m.Payload)
	}
	ev("spark/device/ident/0", "x") // swallowed
	ev("particle/device/updates/enabled", "false")
	ev("spark/device/last_reset", "pin_reset")
	if e := nextEvent(t, events, "particle/device/updates/enabled"); e.Data != "false" || e.UserID != owner1 {
		t.Errorf("updates event = %+v", e)
	}
	if e := nextEvent(t, events, "spark/device/last_reset"); e.Data != "pin_reset" {
		t.Errorf("last_reset event = %+v", e)
	}
	waitFor(t, "updates flag", func() bool { return !w.device(id).FirmwareUpdatesEnabled })
	// None of the requests nor the swallowed event reached the bus.
	d.publish(protocol.Event{Name: "end", Private: true, TTL: 60}, protocol.NonConfirmable)
	before, _ := eventsUntil(t, events, "end")
	for _, e := range before {
		t.Errorf("unexpected event %q", e.Name)
	}
}
