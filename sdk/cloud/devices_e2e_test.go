package cloud_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// waitOnline polls until the device is online with its functions.
func waitOnline(t *testing.T, c *cloud.Client, id string) *cloud.Device {
	t.Helper()
	ctx := within(t, 30*time.Second)
	for {
		d, err := c.GetDevice(ctx, id)
		if err == nil && d.Online && len(d.Functions) > 0 {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("device %s not online: %+v, %v", id, d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestDevices(t *testing.T) {
	w := startWick(t)
	owner, tok := login(t, w)
	id := w.startDevice(t, tok.AccessToken, "")
	d := waitOnline(t, owner, id)
	ctx := within(t, 30*time.Second)
	if d.ID != id || d.Owner == nil || *d.Owner != ownerEmail || d.PlatformID != 6 {
		t.Fatalf("GetDevice = %+v", d)
	}
	list, err := owner.ListDevices(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("ListDevices = %+v, %v", list, err)
	}

	up, err := owner.Rename(ctx, id, "sdk-lamp")
	if err != nil || up.Name != "sdk-lamp" || up.UpdatedAt == "" {
		t.Fatalf("Rename = %+v, %v", up, err)
	}
	if up, err = owner.SetNotes(ctx, id, "on the desk"); err != nil || up.Notes == nil || *up.Notes != "on the desk" {
		t.Fatalf("SetNotes = %+v, %v", up, err)
	}
	byName, err := owner.GetDevice(ctx, "sdk-lamp")
	if err != nil || byName.ID != id || byName.Notes == nil || *byName.Notes != "on the desk" {
		t.Fatalf("GetDevice(name) = %+v, %v", byName, err)
	}
	if online, err := owner.Ping(ctx, id); err != nil || !online {
		t.Fatalf("Ping = %v, %v", online, err)
	}
	if up, err := owner.Signal(ctx, id, true); err != nil || !up.Signaling || !up.Connected {
		t.Fatalf("Signal(on) = %+v, %v", up, err)
	}
	if _, err := owner.Signal(ctx, id, false); err != nil {
		t.Fatalf("Signal(off): %v", err)
	}

	calls := []struct {
		arg  string
		want int32
	}{{"on", 1}, {"off", 0}, {"toggle", -1}}
	for _, c := range calls {
		r, err := owner.CallFunction(ctx, "sdk-lamp", "led", c.arg)
		if err != nil || r.ReturnValue != c.want || r.ID != id || !r.Connected {
			t.Errorf("CallFunction(led, %q) = %+v, %v; want %d", c.arg, r, err, c.want)
		}
	}
	if _, err := owner.CallFunction(ctx, id, "nosuchfn", ""); err == nil {
		t.Errorf("CallFunction(nosuchfn) succeeded")
	}

	count, err := owner.GetVariable(ctx, id, "count")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := count.Int(); err != nil || n != int64(len(calls)) {
		t.Errorf("count = %d, %v; want %d", n, err, len(calls))
	}
	if _, err := count.String(); err == nil {
		t.Errorf("count.String() succeeded on %s", count.Result)
	}
	label, err := owner.GetVariable(ctx, id, "label")
	if s, serr := label.String(); err != nil || serr != nil || s == "" {
		t.Errorf("label = %q, %v, %v", s, err, serr)
	}
	temp, err := owner.GetVariable(ctx, id, "temp")
	if f, ferr := temp.Float(); err != nil || ferr != nil || f == 0 {
		t.Errorf("temp = %v, %v, %v", f, err, ferr)
	}
	on, err := owner.GetVariable(ctx, id, "on")
	if b, berr := on.Bool(); err != nil || berr != nil || b {
		t.Errorf("on = %v, %v, %v; want false after toggle (led stays off)", b, err, berr)
	}
	if on.CoreInfo.DeviceID != id || !on.CoreInfo.Connected {
		t.Errorf("coreInfo = %+v", on.CoreInfo)
	}

	code, err := owner.CreateClaimCode(ctx, "")
	if err != nil || code.ClaimCode == "" || len(code.DeviceIDs) != 1 || code.DeviceIDs[0] != id {
		t.Fatalf("CreateClaimCode = %+v, %v", code, err)
	}

	if err := owner.UnclaimDevice(ctx, id); err != nil {
		t.Fatal(err)
	}
	if list, err := owner.ListDevices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListDevices after unclaim = %+v, %v", list, err)
	}
	cr, err := owner.ClaimDevice(ctx, id)
	if err != nil || !cr.OK || cr.ID != id {
		t.Fatalf("ClaimDevice = %+v, %v", cr, err)
	}
	if list, err := owner.ListDevices(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ListDevices after claim = %+v, %v", list, err)
	}
}

func TestProductDevices(t *testing.T) {
	w := startWick(t)
	owner, tok := login(t, w)
	ctx := within(t, 40*time.Second)
	prod, err := owner.CreateProduct(ctx, cloud.NewProduct{Name: "SDK Fleet", PlatformID: 6})
	if err != nil {
		t.Fatal(err)
	}
	page, err := owner.ListProductDevices(ctx, prod.Slug, cloud.Page{})
	if err != nil || len(page.Devices) != 0 || page.Meta.Total != 0 {
		t.Fatalf("ListProductDevices(empty) = %+v, %v", page, err)
	}
	code, err := owner.CreateClaimCode(ctx, prod.Slug)
	if err != nil || code.ClaimCode == "" {
		t.Fatalf("CreateClaimCode(product) = %+v, %v", code, err)
	}

	// A product token acts on the product's devices and reads its stream.
	cl, err := owner.CreateClient(ctx, prod.Slug, cloud.NewClient{Name: "fleet backend"})
	if err != nil {
		t.Fatal(err)
	}
	ptok, err := owner.ClientCredentials(ctx, "", &cloud.TokenOptions{ClientID: cl.ID, ClientSecret: cl.Secret})
	if err != nil {
		t.Fatal(err)
	}
	fleet := owner.WithToken(ptok.AccessToken)
	stream, err := fleet.Subscribe(ctx, cloud.StreamOptions{Product: prod.Slug, Prefix: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	id := w.startDevice(t, tok.AccessToken, prod.Slug)
	waitOnline(t, owner, id)
	page, err = fleet.ListProductDevices(ctx, prod.Slug, cloud.Page{})
	if err != nil || len(page.Devices) != 1 || page.Devices[0].ID != id || page.Meta.Total != 1 {
		t.Fatalf("ListProductDevices = %+v, %v", page, err)
	}
	d, err := fleet.GetProductDevice(ctx, prod.Slug, id)
	if err != nil || d.ProductID != prod.ID || d.FirmwareProductID != prod.ID || !d.Online {
		t.Fatalf("GetProductDevice = %+v, %v", d, err)
	}
	if online, err := fleet.PingProductDevice(ctx, prod.Slug, id); err != nil || !online {
		t.Fatalf("PingProductDevice = %v, %v", online, err)
	}
	if r, err := fleet.CallProductFunction(ctx, prod.Slug, id, "led", "on"); err != nil || r.ReturnValue != 1 {
		t.Fatalf("CallProductFunction = %+v, %v", r, err)
	}
	v, err := fleet.GetProductVariable(ctx, prod.Slug, id, "on")
	if b, berr := v.Bool(); err != nil || berr != nil || !b {
		t.Fatalf("GetProductVariable(on) = %v, %v, %v", b, err, berr)
	}
	if err := fleet.Publish(ctx, "fleet/update", "v2", &cloud.PublishOptions{Product: prod.Slug}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, stream, 10*time.Second)
	if ev.Name != "fleet/update" || ev.Data != "v2" || ev.ProductID != prod.ID {
		t.Fatalf("product event = %+v", ev)
	}
}

// nextEvent returns the next event of s, failing the test after d.
func nextEvent(t *testing.T, s *cloud.Stream, d time.Duration) cloud.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ev, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v (reconnects %d, stream error %v)", err, s.Reconnects(), s.Err())
	}
	return ev
}

func TestPublishSubscribe(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	s, err := owner.Subscribe(ctx, cloud.StreamOptions{Prefix: "sdk"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := owner.Publish(ctx, "other", "ignored", nil); err != nil {
		t.Fatal(err)
	}
	if err := owner.Publish(ctx, "sdk/temp", "21.5", &cloud.PublishOptions{TTL: 30}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, s, 10*time.Second)
	if ev.Name != "sdk/temp" || ev.Data != "21.5" || ev.TTL != 30 || ev.CoreID != "api" || ev.ID == "" ||
		ev.PublishedAt.IsZero() || s.LastEventID() != ev.ID {
		t.Fatalf("event = %+v", ev)
	}

	// A stream the caller may not open is Subscribe's error.
	if _, err := owner.Subscribe(ctx, cloud.StreamOptions{Product: "no-such-product"}); !cloud.IsNotFound(err) {
		t.Errorf("Subscribe(unknown product): %v; want 404", err)
	}
	if _, err := owner.WithToken("0123456789abcdef").Subscribe(ctx, cloud.StreamOptions{}); !cloud.IsUnauthorized(err) {
		t.Errorf("Subscribe(bad token): %v; want 401", err)
	}

	s.Close()
	if _, err := s.Next(ctx); !errors.Is(err, cloud.ErrStreamClosed) {
		t.Errorf("Next after Close: %v; want ErrStreamClosed", err)
	}
}

// TestStreamReconnects cuts the stream's connection, publishes while the
// stream cannot reconnect, and checks that the stream resumes with
// Last-Event-ID: the missed event arrives once, then live events follow.
func TestStreamReconnects(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	p := startProxy(t, w.api[len("http://"):])
	viaProxy := cloud.New(p.url(), owner.Token)
	s, err := viaProxy.Subscribe(ctx, cloud.StreamOptions{Prefix: "sdk-re",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if err := owner.Publish(ctx, "sdk-re/1", "one", nil); err != nil {
		t.Fatal(err)
	}
	first := nextEvent(t, s, 10*time.Second)
	if first.Data != "one" {
		t.Fatalf("first event = %+v", first)
	}

	p.cut(true) // drop the stream and refuse reconnections
	if err := owner.Publish(ctx, "sdk-re/2", "two", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several refused reconnections
	p.resume()
	if err := owner.Publish(ctx, "sdk-re/3", "three", nil); err != nil {
		t.Fatal(err)
	}

	var got []string
	last := first.ID
	for range 2 {
		ev := nextEvent(t, s, 10*time.Second)
		if len(ev.ID) < len(last) || (len(ev.ID) == len(last) && ev.ID <= last) {
			t.Errorf("event %q has ID %s after %s", ev.Name, ev.ID, last)
		}
		last = ev.ID
		got = append(got, ev.Data)
	}
	if got[0] != "two" || got[1] != "three" {
		t.Errorf("after the cut got %q; want [two three]", got)
	}
	// Nothing else: no duplicate of a replayed event.
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if ev, err := s.Next(quiet); err == nil {
		t.Errorf("unexpected extra event %+v", ev)
	}
	if s.Reconnects() < 1 {
		t.Errorf("Reconnects = %d; want at least 1", s.Reconnects())
	}
}

func TestWebhooks(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	created, err := owner.CreateWebhook(ctx, "", cloud.NewWebhook{Event: "sdk-hook", URL: "https://example.com/hook",
		Name: "sdk", JSON: map[string]any{"v": "{{{PARTICLE_EVENT_VALUE}}}"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.Event != "sdk-hook" || created.URL != "https://example.com/hook" || created.HookURL == "" {
		t.Fatalf("CreateWebhook = %+v", created)
	}
	list, err := owner.ListWebhooks(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != created.ID || list[0].IntegrationType != "Webhook" {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	got, err := owner.GetWebhook(ctx, "", created.ID)
	if err != nil || got.Name == nil || *got.Name != "sdk" || got.RequestType != "POST" || len(got.Raw) == 0 {
		t.Fatalf("GetWebhook = %+v, %v", got, err)
	}
	dl, err := owner.Deliveries(ctx, "", created.ID)
	if err != nil || len(dl) != 0 {
		t.Fatalf("Deliveries = %+v, %v; want none yet", dl, err)
	}
	if err := owner.DeleteWebhook(ctx, "", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.GetWebhook(ctx, "", created.ID); !cloud.IsNotFound(err) {
		t.Errorf("GetWebhook after delete: %v; want 404", err)
	}
	if _, err := owner.CreateWebhook(ctx, "", cloud.NewWebhook{Event: "x"}); !cloud.IsBadRequest(err) {
		t.Errorf("CreateWebhook without url: %v; want 400", err)
	}
}

func TestIntegrations(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	hits := make(chan string, 10)
	target := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- string(body)
		fmt.Fprint(rw, "thanks")
	}))
	defer target.Close()

	in := cloud.NewIntegration{NewWebhook: cloud.NewWebhook{Event: "sdk-int", URL: target.URL + "/hook",
		JSON: map[string]any{"value": "{{{PARTICLE_EVENT_VALUE}}}"}}}
	created, err := owner.CreateIntegration(ctx, "", in)
	if err != nil || created.ID == "" || created.IntegrationType != "Webhook" || created.URL != target.URL+"/hook" {
		t.Fatalf("CreateIntegration = %+v, %v", created, err)
	}
	list, err := owner.ListIntegrations(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != created.ID {
		t.Fatalf("ListIntegrations = %+v, %v", list, err)
	}
	res, err := owner.TestIntegration(ctx, "", created.ID)
	if err != nil || !res.Pass || res.Data == nil || *res.Data != "thanks" {
		t.Fatalf("TestIntegration = %+v, %v", res, err)
	}
	<-hits

	// A matching event is delivered and logged.
	if err := owner.Publish(ctx, "sdk-int/x", "42", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-hits:
		if !strings.Contains(body, `"value":"42"`) {
			t.Errorf("delivered body %s; want the rendered template", body)
		}
	case <-ctx.Done():
		t.Fatal("the event was not delivered")
	}
	var dl []cloud.Delivery
	for len(dl) == 0 && ctx.Err() == nil {
		if dl, err = owner.IntegrationDeliveries(ctx, "", created.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(dl) == 0 || dl[0].Status != 200 || dl[0].Method != "POST" {
		t.Fatalf("IntegrationDeliveries = %+v", dl)
	}
	if hook, err := owner.Deliveries(ctx, "", created.ID); err != nil || len(hook) != len(dl) {
		t.Errorf("Deliveries (legacy route) = %d entries, %v; want %d", len(hook), err, len(dl))
	}
	got, err := owner.GetIntegration(ctx, "", created.ID)
	if err != nil || got.ID != created.ID || len(got.Logs) == 0 {
		t.Fatalf("GetIntegration = %+v, %v", got, err)
	}

	in.Name, in.Event = "renamed", ""
	up, err := owner.UpdateIntegration(ctx, "", created.ID, in)
	if err != nil || up.Name == nil || *up.Name != "renamed" || up.Event != "sdk-int" {
		t.Fatalf("UpdateIntegration = %+v, %v", up, err)
	}
	if err := owner.DeleteIntegration(ctx, "", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.GetIntegration(ctx, "", created.ID); !cloud.IsNotFound(err) {
		t.Errorf("GetIntegration after delete: %v; want 404", err)
	}
}
