package webhook

import (
	"testing"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

func TestTriggers(t *testing.T) {
	const dev, other = "0123456789abcdef01234567", "fedcba987654321001234567"
	sandbox := store.Webhook{UserID: "u1", Event: "temp", IntegrationType: store.IntegrationWebhook}
	product := store.Webhook{UserID: "creator", ProductID: 7, Event: "temp"}
	with := func(h store.Webhook, f func(*store.Webhook)) *store.Webhook { f(&h); return &h }
	ev := func(name, device, user, customer string, product int64) bus.Event {
		return bus.Event{Name: name, DeviceID: device, UserID: user, CustomerID: customer, ProductID: product}
	}
	tests := []struct {
		name string
		h    *store.Webhook
		e    bus.Event
		want bool
	}{
		{"sandbox exact name", &sandbox, ev("temp", dev, "u1", "", 0), true},
		{"sandbox prefix", &sandbox, ev("temperature/outside", dev, "u1", "", 0), true},
		{"prefix is case-sensitive", &sandbox, ev("Temperature", dev, "u1", "", 0), false},
		{"name is a prefix of the hook event", &sandbox, ev("tem", dev, "u1", "", 0), false},
		{"not at the start", &sandbox, ev("high_temp", dev, "u1", "", 0), false},
		{"sandbox other user's device", &sandbox, ev("temp", dev, "u2", "", 0), false},
		{"sandbox unclaimed device", &sandbox, ev("temp", dev, "", "", 0), false},
		{"sandbox owner's API publish", &sandbox, ev("temp", bus.DeviceAPI, "u1", "", 0), true},
		{"sandbox owner's product device", &sandbox, ev("temp", dev, "u1", "", 7), true},
		{"sandbox customer device", &sandbox, ev("temp", dev, "", "c1", 7), false},
		{"sandbox device filter match", with(sandbox, func(h *store.Webhook) { h.DeviceID = dev }), ev("temp", dev, "u1", "", 0), true},
		{"device filter any case", with(sandbox, func(h *store.Webhook) { h.DeviceID = "0123456789ABCDEF01234567" }), ev("temp", dev, "u1", "", 0), true},
		{"sandbox device filter other", with(sandbox, func(h *store.Webhook) { h.DeviceID = other }), ev("temp", dev, "u1", "", 0), false},
		{"disabled", with(sandbox, func(h *store.Webhook) { h.Disabled = true }), ev("temp", dev, "u1", "", 0), false},
		{"empty hook event never fires", with(sandbox, func(h *store.Webhook) { h.Event = "" }), ev("temp", dev, "u1", "", 0), false},
		{"other integration type", with(sandbox, func(h *store.Webhook) { h.IntegrationType = "AzureIotHub" }), ev("temp", dev, "u1", "", 0), false},
		{"unset integration type", with(sandbox, func(h *store.Webhook) { h.IntegrationType = "" }), ev("temp", dev, "u1", "", 0), true},
		{"product unclaimed device", &product, ev("temp", dev, "", "", 7), true},
		{"product customer device", &product, ev("temp", dev, "", "c1", 7), true},
		{"product claimed device", &product, ev("temp", dev, "u9", "", 7), true},
		{"product API publish", &product, ev("temp", bus.DeviceAPI, "", "", 7), true},
		{"other product", &product, ev("temp", dev, "", "", 8), false},
		{"product hook creator's own device", &product, ev("temp", dev, "creator", "", 0), false},
		{"product device filter", with(product, func(h *store.Webhook) { h.DeviceID = other }), ev("temp", dev, "", "", 7), false},
		{"hook-sent never", with(sandbox, func(h *store.Webhook) { h.Event = "hook" }), ev("hook-sent/temp", dev, "u1", "", 0), false},
		{"hook-response never", with(sandbox, func(h *store.Webhook) { h.Event = "hook-response" }), ev("hook-response/temp/0", dev, "u1", "", 0), false},
		{"hook-error never", with(sandbox, func(h *store.Webhook) { h.Event = "h" }), ev("hook-error/temp/0", dev, "u1", "", 0), false},
		{"internal publisher never", &sandbox, ev("temp/0", bus.DeviceInternal, "u1", "", 0), false},
		{"internal product topic never", with(product, func(h *store.Webhook) { h.Event = dev }), ev(dev+"/hook-response/temp/0", bus.DeviceInternal, "", "", 7), false},
		{"hook- without slash fires", with(sandbox, func(h *store.Webhook) { h.Event = "hook-" }), ev("hook-sentinel", dev, "u1", "", 0), true},
		{"nil hook", nil, ev("temp", dev, "u1", "", 0), false},
	}
	for _, tc := range tests {
		if got := Triggers(tc.h, tc.e); got != tc.want {
			t.Errorf("%s: Triggers = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsHookEvent(t *testing.T) {
	// Every event this package publishes back is a hook event.
	h := &store.Webhook{UserID: "u1", Event: "t", Settings: store.WebhookSettings{ResponseTopic: "custom", ErrorResponseTopic: "oops"}}
	e := bus.Event{Name: "t", DeviceID: "0123456789abcdef01234567", UserID: "u1"}
	evs := append([]bus.Event{SentEvent(h, e)}, ErrorEvents(h, e, "error status 500 from x", nil)...)
	r, err := ResponseEvents(h, e, "text/plain", []byte("ok"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range append(evs, r...) {
		if !IsHookEvent(x) {
			t.Errorf("published-back event %q is not a hook event", x.Name)
		}
	}
	if IsHookEvent(e) {
		t.Errorf("device event is a hook event")
	}
}
