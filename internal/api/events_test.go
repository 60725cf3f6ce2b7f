package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
)

// authzPrefix is the event-name prefix of the stream rows of the
// authorization matrix.
const authzPrefix = "authz-prefix"

// newBusWorld builds a world whose API publishes to a fresh embedded bus.
func newBusWorld(t testing.TB, cfg api.Config) *world {
	t.Helper()
	b := bustest.New(t, bus.Config{})
	w := newWorldOpts(t, apitest.Options{Config: cfg, Bus: b, InMemory: true})
	w.addDevices(t)
	return w
}

// TestPublish covers POST /v1/devices/events and POST
// /v1/products/:p/events (docs/particle-api.md#publishing-events): validation,
// and the event each accepted request puts on the bus.
func TestPublish(t *testing.T) {
	w := newBusWorld(t, api.Config{PublishBurst: -1})
	all := bustest.Subscribe(t, w.Bus, bus.Filter{}, 256)
	at := w.Clock.Now()

	// published checks that exactly one event reached the bus, and that
	// it is want (ID aside).
	published := func(want bus.Event) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			got := bustest.Collect(tb, all, 1, 2*time.Second)[0]
			if got.ID == 0 {
				tb.Errorf("event without ID")
			}
			got.ID = 0
			if want.TTL == 0 {
				want.TTL = 60
			}
			if !got.PublishedAt.Equal(at) {
				tb.Errorf("published_at %v, want %v", got.PublishedAt, at)
			}
			got.PublishedAt = time.Time{}
			want.DeviceID = "api"
			if got != want {
				tb.Errorf("published %+v\nwant      %+v", got, want)
			}
		}
	}
	ok := `{"ok":true}`
	name64 := strings.Repeat("n", 64)
	data1024 := strings.Repeat("d", 1024)
	w.Run(t, []apitest.Scenario{
		{Name: "JSON, private by default", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "temp/basement", "data": "25.34"}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "temp/basement", Data: "25.34", UserID: w.owner.ID})},
		{Name: "form as CLI-legacy sends it", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			Form: url.Values{"name": {"led"}, "data": {"on"}, "private": {"true"}, "ttl": {"120"}}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "led", Data: "on", TTL: 120, UserID: w.owner.ID})},
		{Name: "public", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "hello", "private": false}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "hello", Public: true, UserID: w.owner.ID})},
		{Name: "private as a string", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "hello", "private": "false"}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "hello", Public: true, UserID: w.owner.ID})},
		{Name: "data as a JSON object", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			Body: `{"name":"cfg","data":{"on":true,"level":3}}`, ContentType: "application/json"},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "cfg", Data: `{"level":3,"on":true}`, UserID: w.owner.ID})},
		{Name: "limits are inclusive", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": name64, "data": data1024}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: name64, Data: data1024, UserID: w.owner.ID})},
		{Name: "customer", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.customerToken,
			JSON: map[string]any{"name": "cmd/led", "data": "1"}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "cmd/led", Data: "1",
				CustomerID: w.customer.ID, ProductID: w.product.ID})},
		{Name: "product route, product token", Req: apitest.Req{Method: "POST", Path: "/v1/products/" + w.product.Slug + "/events",
			Token: w.productToken, JSON: map[string]any{"name": "fleet/update", "data": "now"}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "fleet/update", Data: "now", ProductID: w.product.ID})},
		{Name: "product route, team member by ID", Req: apitest.Req{Method: "POST", Path: "/v1/products/" + itoa(w.product.ID) + "/events",
			Token: w.ownerToken, Form: url.Values{"name": {"fleet/update"}}},
			Status: 200, Want: ok, Check: published(bus.Event{Name: "fleet/update", ProductID: w.product.ID})},

		{Name: "no name", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"data": "x"}},
			Status: 400, Want: `{"ok":false,"error":"Event name is required"}`},
		{Name: "name too long", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": name64 + "n"}},
			Status: 400, Want: `{"ok":false,"error":"Event name must be 1 to 64 printable ASCII characters"}`},
		{Name: "name with a newline", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "a\nb"}},
			Status: 400, Want: `{"ok":false,"error":"Event name must be 1 to 64 printable ASCII characters"}`},
		{Name: "name not ASCII", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "température"}},
			Status: 400, Want: `{"ok":false,"error":"Event name must be 1 to 64 printable ASCII characters"}`},
		{Name: "data too long", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "x", "data": data1024 + "d"}},
			Status: 400, Want: `{"ok":false,"error":"Event data must be at most 1024 bytes"}`},
		{Name: "private not a boolean", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "x", "private": "maybe"}},
			Status: 400, Want: `{"ok":false,"error":"private must be true or false"}`},
		{Name: "ttl not a number", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "x", "ttl": "soon"}},
			Status: 400, Want: `{"ok":false,"error":"ttl must be a whole number of seconds"}`},
		{Name: "ttl negative", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "x", "ttl": -5}},
			Status: 400, Want: `{"ok":false,"error":"ttl must be a whole number of seconds"}`},
		{Name: "product route, customer refused", Req: apitest.Req{Method: "POST", Path: "/v1/products/" + w.product.Slug + "/events",
			Token: w.customerToken, JSON: map[string]any{"name": "x"}},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied"}`},
	})
	for _, name := range []string{"spark/status", "Spark", "SPARKY", "particle", "Particle/device/x", "pArTiClE-x"} {
		r := w.Do(apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken, JSON: map[string]any{"name": name}})
		if r.Status != 400 || r.String(t, "error") != `Event names starting with "spark" or "particle" are reserved for the cloud` {
			t.Errorf("name %q: status %d body %s, want the reserved-name 400", name, r.Status, r.Body)
		}
	}
	for _, name := range []string{"spar", "part", "my-spark", "a/particle"} {
		if r := w.Do(apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken, JSON: map[string]any{"name": name}}); r.Status != 200 {
			t.Errorf("name %q: status %d body %s, want 200", name, r.Status, r.Body)
		}
		bustest.Collect(t, all, 1, 2*time.Second)
	}
	// No refused request published anything.
	select {
	case e := <-all.Events():
		t.Errorf("unexpected event on the bus: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestPublishRateLimit checks the per-token token bucket: a burst of
// PublishBurst, then one per PublishInterval, counted per token.
func TestPublishRateLimit(t *testing.T) {
	w := newBusWorld(t, api.Config{PublishBurst: 3, PublishInterval: time.Second})
	pub := func(token string) *apitest.Resp {
		return w.Do(apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: token, JSON: map[string]any{"name": "tick"}})
	}
	for i := 0; i < 3; i++ {
		if r := pub(w.ownerToken); r.Status != 200 {
			t.Fatalf("publish %d: status %d", i, r.Status)
		}
	}
	r := pub(w.ownerToken)
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the burst: status %d Retry-After %q, want 429 and 1", r.Status, r.Header.Get("Retry-After"))
	}
	apitest.MatchJSON(t, r.Body, `{"error":"rate_limited","error_description":"Too many requests"}`)
	if r := pub(w.otherToken); r.Status != 200 {
		t.Errorf("another token: status %d, want 200", r.Status)
	}
	w.Clock.Advance(time.Second)
	if r := pub(w.ownerToken); r.Status != 200 {
		t.Errorf("a second later: status %d, want 200", r.Status)
	}
	if r := pub(w.ownerToken); r.Status != 429 {
		t.Errorf("then again: status %d, want 429", r.Status)
	}
}

// TestPublishWithoutBus checks that a server without a bus still
// validates and answers.
func TestPublishWithoutBus(t *testing.T) {
	w := newWorld(t, api.Config{})
	w.Run(t, []apitest.Scenario{
		{Name: "ok", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "x"}}, Status: 200, Want: `{"ok":true}`},
		{Name: "reserved", Req: apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
			JSON: map[string]any{"name": "spark/x"}}, Status: 400},
	})
}
