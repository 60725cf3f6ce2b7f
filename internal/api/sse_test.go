package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
)

// Devices of other accounts, beside the world's (see addDevices): one of
// the other user's, and one of the other customer's in otherProduct.
// They are never stored: the tests publish their events on the bus as the
// gateway would.
const (
	otherDeviceID     = "0b0000000000000000000001"
	otherCustDeviceID = "0b0000000000000000000002"
)

// streamer is the part of the API handler that reports on streams.
type streamer interface {
	StreamStats() api.StreamStats
	CloseStreams()
}

// sseServer serves w's API over HTTP. Open streams are cut when the test
// ends.
func sseServer(t testing.TB, w *world) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(w.Handler)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// sseFrame is one block of an event stream, up to its blank line.
type sseFrame struct {
	raw     string // the bytes of the block, blank line included
	comment string // the first comment line's text, for a comment-only block
	id      uint64
	event   string
	data    string
}

// isComment reports whether the block carries no event.
func (f sseFrame) isComment() bool { return f.event == "" }

// sseClient is an open event stream read by a goroutine into frames.
type sseClient struct {
	resp   *http.Response
	frames chan sseFrame
	done   chan struct{} // closed when the reader stops
	cancel context.CancelFunc
}

// openStream requests path with the token (and extra headers) over a
// client of its own, and starts reading frames when the
// answer is 200. The stream is closed when the test ends.
func openStream(t testing.TB, srv *httptest.Server, path, token string, hdr http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	c := &sseClient{resp: resp, frames: make(chan sseFrame, 4096), done: make(chan struct{}),
		cancel: func() { cancel(); tr.CloseIdleConnections() }}
	t.Cleanup(c.close)
	if resp.StatusCode != http.StatusOK {
		close(c.done)
		return c
	}
	go c.read(bufio.NewReader(resp.Body))
	return c
}

// close cancels the request and waits for the reader.
func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

func (c *sseClient) read(r *bufio.Reader) {
	defer close(c.done)
	defer close(c.frames)
	var f sseFrame
	var raw strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		raw.WriteString(line)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			f.raw = raw.String()
			c.frames <- f
			f = sseFrame{}
			raw.Reset()
		case strings.HasPrefix(line, ":"):
			if f.comment == "" {
				f.comment = strings.TrimPrefix(line, ":")
			}
		case strings.HasPrefix(line, "id: "):
			f.id, _ = strconv.ParseUint(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		}
	}
}

// next returns the next frame, failing the test after timeout or at the
// end of the stream.
func (c *sseClient) next(t testing.TB, timeout time.Duration) sseFrame {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatalf("stream ended")
		}
		return f
	case <-time.After(timeout):
		t.Fatalf("no frame within %v", timeout)
	}
	return sseFrame{}
}

// nextEvent skips comments and returns the next event.
func (c *sseClient) nextEvent(t testing.TB, timeout time.Duration) sseFrame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if f := c.next(t, time.Until(deadline)); !f.isComment() {
			return f
		}
	}
}

// expectOK reads the ":ok" comment every stream starts with.
func (c *sseClient) expectOK(t testing.TB) {
	t.Helper()
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", c.resp.StatusCode)
	}
	if f := c.next(t, 5*time.Second); f.raw != ":ok\n\n" {
		t.Fatalf("first frame %q, want \":ok\\n\\n\"", f.raw)
	}
}

// publish puts e on the bus as a device would.
func publish(t testing.TB, b *bus.Bus, e bus.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatalf("publish %s: %v", e.Name, err)
	}
}

// TestStreamFiltering opens every stream route under several credentials,
// publishes device and API events of every kind of owner, and checks
// that each stream delivers exactly what its caller may see: its own
// events (private or public), public events only by prefix on /v1/events,
// a product's events only to its team and product token.
func TestStreamFiltering(t *testing.T) {
	w := newBusWorld(t, api.Config{PublishBurst: -1})
	if r := w.Do(apitest.Req{Method: "PUT", Path: "/v1/devices/" + ownerDeviceID, Token: w.ownerToken,
		JSON: map[string]any{"name": "lamp"}}); r.Status != 200 {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	srv := sseServer(t, w)
	p := w.product.Slug

	// Owners, as the gateway stamps them on device events.
	ownerEv := bus.Event{DeviceID: ownerDeviceID, UserID: w.owner.ID}
	otherEv := bus.Event{DeviceID: otherDeviceID, UserID: w.other.ID}
	custEv := bus.Event{DeviceID: customerDeviceID, CustomerID: w.customer.ID, ProductID: w.product.ID, ProductVersion: 7}
	otherCustEv := bus.Event{DeviceID: otherCustDeviceID, CustomerID: w.otherCustomer.ID, ProductID: w.otherProduct.ID}

	streams := []struct {
		name, path, token string
		fence             bus.Event // an event the stream must see; its name is prefixed with the stream's prefix
		prefix            string
		want              []string
	}{
		{"owner mine", "/v1/devices/events", w.ownerToken, ownerEv, "",
			[]string{"temp/basement", "temperature", "temp/api"}},
		{"owner mine by prefix", "/v1/devices/events/temp", w.ownerToken, ownerEv, "temp",
			[]string{"temp/basement", "temperature", "temp/api"}},
		{"owner prefix with %2F", "/v1/devices/events/temp%2Fb", w.ownerToken, ownerEv, "temp/b",
			[]string{"temp/basement"}},
		{"owner prefix with a raw slash", "/v1/devices/events/temp/b", w.ownerToken, ownerEv, "temp/b",
			[]string{"temp/basement"}},
		{"owner all by prefix", "/v1/events/temp", w.ownerToken, ownerEv, "temp",
			[]string{"temp/basement", "temperature", "temp/kitchen", "temp/cust", "temp/api"}},
		{"other user all by prefix", "/v1/events/temp", w.otherToken, otherEv, "temp",
			[]string{"temperature", "temp/kitchen", "temp/secret", "temp/cust"}},
		{"other user mine", "/v1/devices/events", w.otherToken, otherEv, "",
			[]string{"temp/kitchen", "temp/secret"}},
		{"customer mine", "/v1/devices/events", w.customerToken, custEv, "",
			[]string{"humidity", "temp/cust", "cmd/led"}},
		{"other customer mine", "/v1/devices/events", w.otherCustToken, otherCustEv, "",
			[]string{"temp/oc"}},
		{"customer all by prefix", "/v1/events/temp", w.customerToken, custEv, "temp",
			[]string{"temperature", "temp/kitchen", "temp/cust"}},
		{"owner device by name", "/v1/devices/lamp/events", w.ownerToken, ownerEv, "",
			[]string{"temp/basement", "temperature"}},
		{"owner device by ID and prefix", "/v1/devices/" + ownerDeviceID + "/events/temp%2F", w.ownerToken, ownerEv, "temp/",
			[]string{"temp/basement"}},
		{"customer device", "/v1/devices/" + customerDeviceID + "/events/hum", w.customerToken, custEv, "hum",
			[]string{"humidity"}},
		{"product token, product", "/v1/products/" + p + "/events", w.productToken, custEv, "",
			[]string{"humidity", "temp/cust", "cmd/led", "product/cmd"}},
		{"team member, product by prefix", "/v1/products/" + itoa(w.product.ID) + "/events/temp", w.ownerToken, custEv, "temp",
			[]string{"temp/cust"}},
		{"product token, product device", "/v1/products/" + p + "/devices/" + customerDeviceID + "/events", w.productToken, custEv, "",
			[]string{"humidity", "temp/cust"}},
		{"product token, all by prefix", "/v1/events/temp", w.productToken, custEv, "temp",
			[]string{"temperature", "temp/kitchen", "temp/cust"}},
	}
	clients := make([]*sseClient, len(streams))
	for i, st := range streams {
		clients[i] = openStream(t, srv, st.path, st.token, nil)
		clients[i].expectOK(t)
	}

	with := func(e bus.Event, name string, public bool) bus.Event {
		e.Name, e.Public, e.Data = name, public, "v-"+name
		return e
	}
	publish(t, w.Bus, with(ownerEv, "temp/basement", false))
	publish(t, w.Bus, with(ownerEv, "temperature", true))
	publish(t, w.Bus, with(custEv, "humidity", false))
	publish(t, w.Bus, with(otherEv, "temp/kitchen", true))
	publish(t, w.Bus, with(otherEv, "temp/secret", false))
	publish(t, w.Bus, with(custEv, "temp/cust", true))
	for _, r := range []apitest.Req{
		{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken, JSON: map[string]any{"name": "temp/api", "data": "v-temp/api"}},
		{Method: "POST", Path: "/v1/devices/events", Token: w.customerToken, JSON: map[string]any{"name": "cmd/led", "data": "v-cmd/led"}},
		{Method: "POST", Path: "/v1/products/" + p + "/events", Token: w.productToken, JSON: map[string]any{"name": "product/cmd", "data": "v-product/cmd"}},
	} {
		if resp := w.Do(r); resp.Status != 200 {
			t.Fatalf("publish %v: %d %s", r.JSON, resp.Status, resp.Body)
		}
	}
	publish(t, w.Bus, with(otherCustEv, "temp/oc", false))
	// Fences: each stream reads until its own; any event it must not see
	// was published before every fence, so it would show up before.
	for i, st := range streams {
		publish(t, w.Bus, with(st.fence, st.prefix+"~fence"+strconv.Itoa(i), false))
	}

	for i, st := range streams {
		t.Run(st.name, func(t *testing.T) {
			var got []string
			fence := st.prefix + "~fence" + strconv.Itoa(i)
			for {
				f := clients[i].nextEvent(t, 5*time.Second)
				if f.event == fence {
					break
				}
				if strings.Contains(f.event, "~fence") {
					continue
				}
				if !strings.Contains(f.data, `"data":"v-`+f.event+`"`) {
					t.Errorf("event %s: data %s", f.event, f.data)
				}
				got = append(got, f.event)
			}
			if strings.Join(got, " ") != strings.Join(st.want, " ") {
				t.Errorf("GET %s got events %q, want %q", st.path, got, st.want)
			}
		})
	}
}

// TestStreamWireFormat checks the exact bytes of a stream
// (docs/particle-api.md#event-streams): status and headers, ":ok" first, then
// each event as id, event and data lines with the data JSON on one line,
// product streams with their extra fields.
func TestStreamWireFormat(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	srv := sseServer(t, w)
	at := w.Clock.Now()
	iso := at.UTC().Format("2006-01-02T15:04:05.000Z")

	c := openStream(t, srv, "/v1/devices/events?nonce=0.123", w.ownerToken, nil)
	if c.resp.Proto != "HTTP/1.1" || c.resp.StatusCode != 200 {
		t.Fatalf("status line %s %d", c.resp.Proto, c.resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"Connection":        "keep-alive",
		"X-Accel-Buffering": "no",
	} {
		if got := c.resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if c.resp.ContentLength != -1 || len(c.resp.TransferEncoding) != 1 || c.resp.TransferEncoding[0] != "chunked" {
		t.Errorf("ContentLength %d TransferEncoding %v, want a chunked body", c.resp.ContentLength, c.resp.TransferEncoding)
	}
	// ":ok" arrives before anything is published: it was flushed.
	c.expectOK(t)

	if r := w.Do(apitest.Req{Method: "POST", Path: "/v1/devices/events", Token: w.ownerToken,
		JSON: map[string]any{"name": "golden/name", "data": "25.34 \"quoted\" <tag> & é\n"}}); r.Status != 200 {
		t.Fatalf("publish: %d", r.Status)
	}
	f := c.next(t, 5*time.Second)
	want := "id: " + strconv.FormatUint(f.id, 10) + "\nevent: golden/name\n" +
		`data: {"data":"25.34 \"quoted\" <tag> & é\n","ttl":60,"published_at":"` + iso + `","coreid":"api"}` + "\n\n"
	if f.id == 0 || f.raw != want {
		t.Errorf("event bytes\n%q\nwant\n%q", f.raw, want)
	}
	publish(t, w.Bus, bus.Event{Name: "nodata", DeviceID: ownerDeviceID, UserID: w.owner.ID, TTL: 5, PublishedAt: at})
	g := c.next(t, 5*time.Second)
	want = "id: " + strconv.FormatUint(g.id, 10) + "\nevent: nodata\n" +
		`data: {"data":null,"ttl":5,"published_at":"` + iso + `","coreid":"` + ownerDeviceID + `"}` + "\n\n"
	if g.id <= f.id || g.raw != want {
		t.Errorf("event bytes\n%q\nwant\n%q", g.raw, want)
	}

	pc := openStream(t, srv, "/v1/products/"+w.product.Slug+"/events", w.productToken, nil)
	pc.expectOK(t)
	publish(t, w.Bus, bus.Event{Name: "p", Data: "1", DeviceID: customerDeviceID, CustomerID: w.customer.ID,
		ProductID: w.product.ID, ProductVersion: 7, Public: true, PublishedAt: at})
	publish(t, w.Bus, bus.Event{Name: "q", DeviceID: customerDeviceID, UserID: w.owner.ID,
		ProductID: w.product.ID, PublishedAt: at})
	pid := strconv.FormatInt(w.product.ID, 10)
	for _, wantData := range []string{
		`{"data":"1","ttl":60,"published_at":"` + iso + `","coreid":"` + customerDeviceID + `","userid":null,"version":7,"public":true,"productID":` + pid + `}`,
		`{"data":null,"ttl":60,"published_at":"` + iso + `","coreid":"` + customerDeviceID + `","userid":"` + w.owner.ID + `","version":0,"public":false,"productID":` + pid + `}`,
	} {
		if f := pc.next(t, 5*time.Second); f.data != wantData {
			t.Errorf("product data\n%s\nwant\n%s", f.data, wantData)
		}
	}
}

// TestStreamErrors checks the JSON answers given before a stream starts.
func TestStreamErrors(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	w.Run(t, []apitest.Scenario{
		{Name: "bare /v1/events", Req: apitest.Req{Method: "GET", Path: "/v1/events", Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"event prefix filter is required"}`},
		{Name: "bare /v1/events/", Req: apitest.Req{Method: "GET", Path: "/v1/events/", Token: w.ownerToken},
			Status: 400, Want: `{"ok":false,"error":"event prefix filter is required"}`},
		{Name: "no token", Req: apitest.Req{Method: "GET", Path: "/v1/devices/events"},
			Status: 400, Want: `{"error":"invalid_request","error_description":"The access token was not found"}`},
		{Name: "bad token", Req: apitest.Req{Method: "GET", Path: "/v1/events/x", Token: strings.Repeat("0", 40)},
			Status: 401, Want: `{"error":"invalid_token","error_description":"The access token provided is invalid."}`},
		{Name: "another user's device", Req: apitest.Req{Method: "GET", Path: "/v1/devices/" + ownerDeviceID + "/events", Token: w.otherToken},
			Status: 403, Want: `{"ok":false,"error":"Permission Denied","info":"I didn't recognize that device name or ID, try opening http://example.com/v1/devices"}`},
		{Name: "unknown device name", Req: apitest.Req{Method: "GET", Path: "/v1/devices/nosuch/events/x", Token: w.ownerToken},
			Status: 403},
		{Name: "device outside the product", Req: apitest.Req{Method: "GET", Path: "/v1/products/" + w.product.Slug + "/devices/" + ownerDeviceID + "/events",
			Token: w.productToken}, Status: 404, Want: `{"ok":false,"error":"device not found"}`},
		{Name: "token in the query", Req: apitest.Req{Method: "GET", Path: "/v1/devices/events/x?access_token=" + w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				if string(r.Body) != ":ok\n\n" {
					tb.Errorf("body %q, want :ok", r.Body)
				}
			}},
	})
}

// TestStreamKeepAlive checks that a silent stream gets a ":" comment
// after SSEKeepAlive, and again after each further silence.
func TestStreamKeepAlive(t *testing.T) {
	w := newBusWorld(t, api.Config{SSEKeepAlive: 40 * time.Millisecond})
	srv := sseServer(t, w)
	c := openStream(t, srv, "/v1/devices/events", w.ownerToken, nil)
	c.expectOK(t)
	start := time.Now()
	for i := 0; i < 3; i++ {
		if f := c.next(t, 2*time.Second); f.raw != ":\n\n" {
			t.Fatalf("frame %q, want the keep-alive \":\\n\\n\"", f.raw)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("3 keep-alives in %v, want them about 40ms apart", d)
	}
	publish(t, w.Bus, bus.Event{Name: "e", DeviceID: ownerDeviceID, UserID: w.owner.ID})
	if f := c.nextEvent(t, 2*time.Second); f.event != "e" {
		t.Fatalf("event %q", f.event)
	}
	if f := c.next(t, 2*time.Second); f.raw != ":\n\n" {
		t.Fatalf("frame %q after the event, want a keep-alive", f.raw)
	}
}

// TestStreamResume reconnects with Last-Event-ID (header and query
// parameters) while events are being published, and checks that the two
// connections together deliver every event once, in order.
func TestStreamResume(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	srv := sseServer(t, w)
	const total = 300
	for _, how := range []string{"header", "lastEventId", "last_event_id"} {
		t.Run(how, func(t *testing.T) {
			name := "resume-" + how
			c := openStream(t, srv, "/v1/devices/events/"+name, w.ownerToken, nil)
			c.expectOK(t)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < total; i++ {
					if err := w.Bus.Publish(context.Background(), bus.Event{Name: name, Data: strconv.Itoa(i),
						DeviceID: ownerDeviceID, UserID: w.owner.ID}); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			var got []string
			var last uint64
			for len(got) < 40 {
				f := c.nextEvent(t, 5*time.Second)
				got, last = append(got, f.data), f.id
			}
			c.close() // drop the stream mid-flight
			path, hdr := "/v1/devices/events/"+name, http.Header{}
			if how == "header" {
				hdr.Set("Last-Event-ID", strconv.FormatUint(last, 10))
			} else {
				path += "?nonce=1&" + how + "=" + strconv.FormatUint(last, 10)
			}
			c2 := openStream(t, srv, path, w.ownerToken, hdr)
			c2.expectOK(t)
			for len(got) < total {
				f := c2.nextEvent(t, 5*time.Second)
				if f.id <= last {
					t.Fatalf("event id %d after %d", f.id, last)
				}
				got, last = append(got, f.data), f.id
			}
			wg.Wait()
			for i, d := range got {
				if want := `{"data":"` + strconv.Itoa(i) + `",`; !strings.HasPrefix(d, want) {
					t.Fatalf("event %d: data %s, want it to start %s", i, d, want)
				}
			}
			select {
			case f := <-c2.frames:
				if !f.isComment() {
					t.Errorf("extra event %+v", f)
				}
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
	if st := w.Handler.(streamer).StreamStats(); st.Replayed != 3 || st.Gaps != 0 {
		t.Errorf("stats %+v, want 3 replays and no gap", st)
	}
}

// TestStreamResumeGap checks the comment a resumed stream gets when the
// events it missed may be incomplete: replay capped by SSEReplayMax, and
// (with JetStream) a Last-Event-ID older than the bus's window.
func TestStreamResumeGap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		jetStream bool // else the in-process ring
		window    int  // the bus's ReplayMaxEvents
		cfg       api.Config
	}{
		{"replay capped", false, 0, api.Config{SSEReplayMax: 3}},
		{"older than the window", true, 3, api.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := bus.Config{ReplayMaxEvents: tc.window}
			if tc.jetStream {
				bc.JetStreamDir = t.TempDir()
			}
			b := bustest.New(t, bc)
			w := newWorldOpts(t, apitest.Options{Config: tc.cfg, Bus: b, InMemory: true})
			srv := sseServer(t, w)
			ids := make([]uint64, 0, 8)
			sub := bustest.Subscribe(t, b, bus.Filter{UserID: w.owner.ID}, 16)
			for i := 0; i < 8; i++ {
				publish(t, b, bus.Event{Name: "gap", Data: strconv.Itoa(i), DeviceID: ownerDeviceID, UserID: w.owner.ID})
			}
			for _, e := range bustest.Collect(t, sub, 8, 5*time.Second) {
				ids = append(ids, e.ID)
			}
			c := openStream(t, srv, "/v1/devices/events", w.ownerToken,
				http.Header{"Last-Event-Id": {strconv.FormatUint(ids[0], 10)}})
			c.expectOK(t)
			f := c.next(t, 5*time.Second)
			wantComment := " events after id " + strconv.FormatUint(ids[0], 10) + " may be missing: they are older than the replay window"
			if f.comment != wantComment || !f.isComment() {
				t.Fatalf("frame %q, want the gap comment", f.raw)
			}
			for i := 5; i < 8; i++ {
				if f := c.nextEvent(t, 5*time.Second); f.id != ids[i] {
					t.Errorf("replayed id %d, want %d (event %d)", f.id, ids[i], i)
				}
			}
			if st := w.Handler.(streamer).StreamStats(); st.Gaps != 1 {
				t.Errorf("stats %+v, want one gap", st)
			}
		})
	}
}

// TestStreamLimits checks the per-IP limits of
// docs/particle-api.md#rate-limits: opens per window and simultaneous streams,
// answered 429 before streaming, and counted per client IP.
func TestStreamLimits(t *testing.T) {
	w := newBusWorld(t, api.Config{SSEOpenRate: 4, SSEMaxConnsPerIP: 2, TrustProxy: true})
	srv := sseServer(t, w)
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	a1 := openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.1"))
	a1.expectOK(t)
	a2 := openStream(t, srv, "/v1/events/x", w.customerToken, from("198.51.100.1"))
	a2.expectOK(t)
	tooMany := func(c *sseClient, retry string) {
		t.Helper()
		if c.resp.StatusCode != 429 || c.resp.Header.Get("Retry-After") != retry ||
			!strings.HasPrefix(c.resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, Retry-After %q, Content-Type %q: want a 429 with Retry-After %s",
				c.resp.StatusCode, c.resp.Header.Get("Retry-After"), c.resp.Header.Get("Content-Type"), retry)
		}
		body, _ := io.ReadAll(c.resp.Body)
		apitest.MatchJSON(t, body, `{"error":"rate_limited","error_description":"Too many requests"}`)
	}
	tooMany(openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.1")), "10")
	b1 := openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.2"))
	b1.expectOK(t)
	a1.close()
	waitFor(t, func() bool { return w.Handler.(streamer).StreamStats().Open == 2 })
	a3 := openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.1"))
	a3.expectOK(t) // the 4th open of this IP in the window
	a3.close()
	waitFor(t, func() bool { return w.Handler.(streamer).StreamStats().Open == 2 })
	tooMany(openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.1")), "300")
	w.Clock.Advance(5 * time.Minute)
	openStream(t, srv, "/v1/devices/events", w.ownerToken, from("198.51.100.1")).expectOK(t)
	if st := w.Handler.(streamer).StreamStats(); st.Rejected != 2 || st.Opened != 5 {
		t.Errorf("stats %+v, want 2 rejected and 5 opened", st)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamDisconnectFreesEverything opens streams, drops the clients,
// and checks that the streams' handlers, bus subscriptions and goroutines
// are all gone.
func TestStreamDisconnectFreesEverything(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	srv := sseServer(t, w)
	h := w.Handler.(streamer)
	warm := openStream(t, srv, "/v1/devices/events", w.ownerToken, nil)
	warm.expectOK(t)
	warm.close()
	waitFor(t, func() bool { return h.StreamStats().Open == 0 && w.Bus.Stats().Subscriptions == 0 })
	time.Sleep(20 * time.Millisecond)
	base := runtime.NumGoroutine()

	const n = 20
	clients := make([]*sseClient, n)
	for i := range clients {
		path := "/v1/devices/events"
		if i%2 == 1 {
			path = "/v1/events/x"
		}
		clients[i] = openStream(t, srv, path, w.ownerToken, nil)
		clients[i].expectOK(t)
	}
	if st, bs := h.StreamStats(), w.Bus.Stats(); st.Open != n || bs.Subscriptions != n {
		t.Fatalf("open %d, subscriptions %d, want %d", st.Open, bs.Subscriptions, n)
	}
	publish(t, w.Bus, bus.Event{Name: "x1", DeviceID: ownerDeviceID, UserID: w.owner.ID})
	for _, c := range clients {
		c.nextEvent(t, 5*time.Second)
		c.close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, bs, g := h.StreamStats(), w.Bus.Stats(), runtime.NumGoroutine()
		if st.Open == 0 && bs.Subscriptions == 0 && bs.Groups == 0 && g <= base {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after disconnect: %d open, %d subscriptions, %d groups, %d goroutines (baseline %d)\n%s",
				st.Open, bs.Subscriptions, bs.Groups, g, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamShutdown checks that CloseStreams ends open streams and
// refuses new ones, and that a closing bus ends its streams too.
func TestStreamShutdown(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	srv := sseServer(t, w)
	h := w.Handler.(streamer)
	c := openStream(t, srv, "/v1/devices/events", w.ownerToken, nil)
	c.expectOK(t)
	h.CloseStreams()
	h.CloseStreams() // idempotent
	select {
	case _, ok := <-c.frames:
		if ok {
			t.Fatal("frame after CloseStreams")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after CloseStreams")
	}
	if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/devices/events", Token: w.ownerToken}); r.Status != 503 {
		t.Errorf("open after CloseStreams: %d %s, want 503", r.Status, r.Body)
	}

	b := bustest.New(t, bus.Config{})
	w2 := newWorldOpts(t, apitest.Options{Bus: b, InMemory: true})
	c2 := openStream(t, sseServer(t, w2), "/v1/devices/events", w2.ownerToken, nil)
	c2.expectOK(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after the bus closed")
	}
}

// smallBufListener shrinks the send buffer of every accepted connection,
// so that a client that stops reading blocks the server quickly.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowStreamDoesNotBlockOthers has one client stop reading while
// another reads every event: the fast one gets everything, in time; the
// slow one loses events (counted), and is told so when it reads again.
func TestSlowStreamDoesNotBlockOthers(t *testing.T) {
	w := newBusWorld(t, api.Config{SSEBuffer: 16})
	srv := httptest.NewUnstartedServer(w.Handler)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})

	// The slow client: a raw connection with a small receive buffer that
	// sends its request and reads nothing for now.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	fmt.Fprintf(conn, "GET /v1/devices/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", w.ownerToken)
	h := w.Handler.(streamer)
	waitFor(t, func() bool { return h.StreamStats().Open == 1 })

	fast := openStream(t, srv, "/v1/devices/events", w.ownerToken, nil)
	fast.expectOK(t)
	const total, batch = 1000, 8
	data := strings.Repeat("x", 2000)
	start := time.Now()
	for i := 0; i < total; i += batch {
		for j := i; j < i+batch; j++ {
			publish(t, w.Bus, bus.Event{Name: "n" + strconv.Itoa(j), Data: data, DeviceID: ownerDeviceID, UserID: w.owner.ID})
		}
		for j := i; j < i+batch; j++ {
			f := fast.next(t, 5*time.Second)
			if f.event != "n"+strconv.Itoa(j) {
				t.Fatalf("fast client got %q (comment %q), want n%d", f.event, f.comment, j)
			}
		}
	}
	t.Logf("fast client: %d events of %d bytes in %v", total, len(data), time.Since(start))
	if w.Bus.Stats().Dropped == 0 {
		t.Fatal("the slow client lost nothing: its buffers never filled")
	}

	// The slow client reads again: the events it kept, then the comment.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	slow := &sseClient{resp: resp, frames: make(chan sseFrame, 4096), done: make(chan struct{}), cancel: func() {}}
	t.Cleanup(slow.close)
	go slow.read(bufio.NewReader(resp.Body))
	slow.expectOK(t)
	// The slow stream delivers what it kept (socket buffers and its bus
	// buffer), announcing drops whenever it notices them (before the
	// events it then reads from its buffer), and goes on.
	kept := total - int(w.Bus.Stats().Dropped)
	announced := 0
	dropComment := func(f sseFrame) bool {
		var n int
		if _, err := fmt.Sscanf(f.raw, ": %d events dropped: this stream is reading too slowly\n\n", &n); err != nil ||
			f.raw != ": "+strconv.Itoa(n)+" events dropped: this stream is reading too slowly\n\n" {
			return false
		}
		announced += n
		return true
	}
	for i, last := 0, -1; i < kept; {
		f := slow.next(t, 5*time.Second)
		switch {
		case dropComment(f):
		case f.isComment():
			t.Fatalf("comment %q after %d of %d kept events", f.raw, i, kept)
		default:
			n, err := strconv.Atoi(strings.TrimPrefix(f.event, "n"))
			if err != nil || n <= last {
				t.Fatalf("event %q after n%d", f.event, last)
			}
			i, last = i+1, n
		}
	}
	publish(t, w.Bus, bus.Event{Name: "after", DeviceID: ownerDeviceID, UserID: w.owner.ID})
	f := slow.next(t, 5*time.Second)
	if dropComment(f) {
		f = slow.next(t, 5*time.Second)
	}
	if f.event != "after" || announced != total-kept {
		t.Errorf("frame %q after %d announced drops, want the \"after\" event after %d", f.raw, announced, total-kept)
	}
	t.Logf("slow client: %d events kept, %d dropped", kept, total-kept)
	if st := h.StreamStats(); st.Dropped != uint64(total-kept) {
		t.Errorf("stats dropped %d, want %d", st.Dropped, total-kept)
	}
}

// TestStreamWriteTimeout checks that a client that accepts no data for
// SSEWriteTimeout is disconnected, freeing its stream.
func TestStreamWriteTimeout(t *testing.T) {
	w := newBusWorld(t, api.Config{SSEWriteTimeout: 100 * time.Millisecond, SSEBuffer: 8})
	srv := httptest.NewUnstartedServer(w.Handler)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/devices/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", w.ownerToken)
	h := w.Handler.(streamer)
	waitFor(t, func() bool { return h.StreamStats().Open == 1 })
	data := strings.Repeat("y", 4000)
	deadline := time.Now().Add(10 * time.Second)
	for h.StreamStats().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stuck stream is still open")
		}
		publish(t, w.Bus, bus.Event{Name: "fill", Data: data, DeviceID: ownerDeviceID, UserID: w.owner.ID})
		time.Sleep(2 * time.Millisecond)
	}
}

// TestStreamPrefixRouting checks how prefixes reach the filter: raw
// slashes, %2F, other escapes, and a literal "events" device name.
func TestStreamPrefixRouting(t *testing.T) {
	w := newBusWorld(t, api.Config{})
	srv := sseServer(t, w)
	for _, tc := range []struct{ path, prefix string }{
		{"/v1/events/a/b/c", "a/b/c"},
		{"/v1/events/a%2Fb%2Fc", "a/b/c"},
		{"/v1/events/" + url.PathEscape("sp ace?#"), "sp ace?#"},
		{"/v1/devices/events/a%2F", "a/"},
	} {
		c := openStream(t, srv, tc.path, w.ownerToken, nil)
		c.expectOK(t)
		publish(t, w.Bus, bus.Event{Name: tc.prefix[:len(tc.prefix)-1], DeviceID: ownerDeviceID, UserID: w.owner.ID})
		publish(t, w.Bus, bus.Event{Name: tc.prefix + "-tail", DeviceID: ownerDeviceID, UserID: w.owner.ID})
		if f := c.nextEvent(t, 5*time.Second); f.event != tc.prefix+"-tail" {
			t.Errorf("%s: event %q, want %q", tc.path, f.event, tc.prefix+"-tail")
		}
		c.close()
	}
}
