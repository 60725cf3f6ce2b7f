package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/store"
)

// modes runs a test with the durable JetStream queue and with the
// in-memory fallback.
var modes = []struct {
	name string
	ring bool
}{{"jetstream", false}, {"memory", true}}

func TestDeliverSuccess(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), harnessOpts{ring: m.ring})
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write([]byte("thanks"))
			})
			hook := h.addHook("temp", rc.URL+"/in", nil)
			evs := h.hookEvents()
			h.publish("other", "x") // no hook
			h.publish("temperature", "21.5")

			got := bustest.Collect(t, evs, 2, 10*time.Second)
			if got[0].Name != "hook-sent/temperature" || got[0].Data != "undefined" || got[0].DeviceID != bus.DeviceInternal {
				t.Errorf("first hook event = %q %q %q; want hook-sent/temperature", got[0].Name, got[0].Data, got[0].DeviceID)
			}
			if got[1].Name != "hook-response/temperature/0" || got[1].Data != "thanks" {
				t.Errorf("second hook event = %q %q; want hook-response/temperature/0 \"thanks\"", got[1].Name, got[1].Data)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			q, _ := url.ParseQuery(r.body)
			if r.method != "POST" || r.path != "/in" || q.Get("event") != "temperature" || q.Get("data") != "21.5" || q.Get("coreid") != "dev1" {
				t.Errorf("request = %s %s %q", r.method, r.path, r.body)
			}
			if ua := r.header.Get("User-Agent"); ua != UserAgent {
				t.Errorf("User-Agent = %q", ua)
			}
			waitFor(t, 5*time.Second, "delivery log", func() bool { return len(h.deliveries(hook.ID)) == 1 })
			d := h.deliveries(hook.ID)[0]
			if d.Status != 200 || d.Attempt != 1 || d.Error != "" || d.Response != "thanks" || d.EventName != "temperature" ||
				d.Method != "POST" || d.URL != rc.URL+"/in" || d.Latency <= 0 || d.EventID == 0 || d.DeviceID != "dev1" {
				t.Errorf("delivery log entry = %+v", d)
			}
			st := h.eng.Stats(context.Background())
			if st.Durable == m.ring {
				t.Errorf("Durable = %v in %s mode", st.Durable, m.name)
			}
			if hs := st.Hooks[hook.ID]; hs.Delivered != 1 || hs.Failed != 0 || hs.Dropped != 0 {
				t.Errorf("hook stats = %+v", hs)
			}
			if st.Events < 2 || st.Queued != 1 {
				t.Errorf("engine stats: events %d queued %d; want ≥2 and 1", st.Events, st.Queued)
			}
		})
	}
}

// TestDeliverErrors covers 4xx and 5xx answers: a hook-error per attempt
// with the status and the body, retries up to the budget, then a drop.
func TestDeliverErrors(t *testing.T) {
	for _, status := range []int{404, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			cfg := testConfig()
			cfg.Retries = 2
			h := newHarness(t, cfg, harnessOpts{})
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.WriteHeader(status)
				w.Write([]byte("nope"))
			})
			hook := h.addHook("t", rc.URL, nil)
			evs := h.hookEvents()
			h.publish("t1", "d")
			waitFor(t, 10*time.Second, "the drop", func() bool { return h.hookStats(hook.ID).Dropped == 1 })
			if n := rc.count(); n != 3 {
				t.Errorf("receiver got %d requests; want 3 (1 + 2 retries)", n)
			}
			hs := h.hookStats(hook.ID)
			if hs.Failed != 3 || hs.Retried != 2 || hs.Delivered != 0 {
				t.Errorf("stats = %+v", hs)
			}
			want := fmt.Sprintf("error status %d from 127.0.0.1\nnope", status)
			var errs, sent int
			for _, ev := range bustest.Collect(t, evs, 6, 5*time.Second) {
				switch {
				case ev.Name == "hook-error/t1/0":
					errs++
					if ev.Data != want {
						t.Errorf("hook-error data = %q; want %q", ev.Data, want)
					}
				case ev.Name == "hook-sent/t1":
					sent++
				default:
					t.Errorf("unexpected event %q", ev.Name)
				}
			}
			if errs != 3 || sent != 3 {
				t.Errorf("%d hook-error and %d hook-sent; want 3 each", errs, sent)
			}
			waitFor(t, 5*time.Second, "3 log entries", func() bool { return len(h.deliveries(hook.ID)) == 3 })
			log := h.deliveries(hook.ID)
			for i, d := range log {
				if d.Attempt != i+1 || d.Status != status || d.Response != "nope" || !strings.HasPrefix(d.Error, fmt.Sprintf("status %d", status)) {
					t.Errorf("log[%d] = %+v", i, d)
				}
			}
			if !strings.Contains(log[2].Error, "giving up after 3 attempts") {
				t.Errorf("last entry error = %q; want giving up", log[2].Error)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	cfg.Retries = -1
	h := newHarness(t, cfg, harnessOpts{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	hook := h.addHook("slow", rc.URL, nil)
	evs := h.hookEvents()
	h.publish("slow", "x")
	got := bustest.Collect(t, evs, 2, 5*time.Second)
	if got[0].Name != "hook-sent/slow" || got[1].Name != "hook-error/slow/0" || got[1].Data != "error timeout after 200ms from 127.0.0.1" {
		t.Errorf("hook events = %q %q / %q", got[0].Name, got[1].Name, got[1].Data)
	}
	waitFor(t, 5*time.Second, "log", func() bool { return len(h.deliveries(hook.ID)) == 1 })
	d := h.deliveries(hook.ID)[0]
	if d.Status != 0 || !strings.Contains(d.Error, "timeout after 200ms") || !strings.Contains(d.Error, "giving up after 1 attempts") ||
		d.Latency < 200*time.Millisecond || d.Latency > 2*time.Second {
		t.Errorf("log entry = %+v", d)
	}
	if hs := h.hookStats(hook.ID); hs.Failed != 1 || hs.Dropped != 1 {
		t.Errorf("stats = %+v", hs)
	}
}

func TestNetworkError(t *testing.T) {
	cfg := testConfig()
	cfg.Retries = -1
	h := newHarness(t, cfg, harnessOpts{})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	hook := h.addHook("n", dead.URL, nil)
	evs := h.hookEvents()
	h.publish("n", "x")
	got := bustest.Collect(t, evs, 1, 5*time.Second)
	if got[0].Name != "hook-error/n/0" || !strings.HasPrefix(got[0].Data, "error connecting to 127.0.0.1: ") ||
		!strings.Contains(got[0].Data, "refused") {
		t.Errorf("hook event = %q %q; want a hook-error (and no hook-sent: nothing was sent)", got[0].Name, got[0].Data)
	}
	waitFor(t, 5*time.Second, "the drop", func() bool { return h.hookStats(hook.ID).Dropped == 1 })
}

// TestRetryBackoff: two 503s then a 200; the retries come after the
// backoff (base 100 ms: at least 50 ms, then at least 100 ms).
func TestRetryBackoff(t *testing.T) {
	cfg := testConfig()
	cfg.BackoffBase = 100 * time.Millisecond
	cfg.BackoffMax = time.Second
	h := newHarness(t, cfg, harnessOpts{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("finally"))
	})
	hook := h.addHook("r", rc.URL, nil)
	h.publish("r", "x")
	waitFor(t, 10*time.Second, "delivery", func() bool { return h.hookStats(hook.ID).Delivered == 1 })
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests; want 3", len(reqs))
	}
	if d := reqs[1].at.Sub(reqs[0].at); d < 50*time.Millisecond {
		t.Errorf("first retry after %v; want ≥ 50ms", d)
	}
	if d := reqs[2].at.Sub(reqs[1].at); d < 100*time.Millisecond {
		t.Errorf("second retry after %v; want ≥ 100ms", d)
	}
	for i := 1; i < 3; i++ {
		if reqs[i].body != reqs[0].body {
			t.Errorf("retry %d body %q differs from %q", i, reqs[i].body, reqs[0].body)
		}
	}
	hs := h.hookStats(hook.ID)
	if hs.Failed != 2 || hs.Retried != 2 || hs.Dropped != 0 {
		t.Errorf("stats = %+v", hs)
	}
	waitFor(t, 5*time.Second, "log", func() bool { return len(h.deliveries(hook.ID)) == 3 })
	if l := h.deliveries(hook.ID); l[2].Attempt != 3 || l[2].Status != 200 || l[0].Status != 503 {
		t.Errorf("log = %+v", l)
	}
}

// TestSlowReceiverDoesNotDelayOthers: a hook whose receiver hangs keeps
// its own requests in flight; another hook on the same events is not
// delayed.
func TestSlowReceiverDoesNotDelayOthers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Workers = 2
			cfg.Timeout = 20 * time.Second
			h := newHarness(t, cfg, harnessOpts{ring: m.ring})
			release := make(chan struct{})
			slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			defer close(release)
			fast := newReceiver(t, nil)
			// Different host names: the throttle is per host.
			slowURL := strings.Replace(slow.URL, "127.0.0.1", "localhost", 1)
			sh := h.addHook("data", slowURL, nil)
			fh := h.addHook("data", fast.URL, nil)
			const n = 50
			start := time.Now()
			for i := range n {
				h.publish("data", fmt.Sprint(i))
			}
			waitFor(t, 10*time.Second, "the fast hook's deliveries", func() bool { return fast.count() == n })
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("fast hook took %v", el)
			}
			if got := slow.count(); got != 2 {
				t.Errorf("slow receiver got %d requests; want 2 (Workers)", got)
			}
			ss := h.hookStats(sh.ID)
			if ss.InFlight != 2 || ss.Queued != n {
				t.Errorf("slow hook stats = %+v; want 2 in flight, %d queued", ss, n)
			}
			waitFor(t, 5*time.Second, "the fast hook's counters", func() bool { return h.hookStats(fh.ID).Delivered == n })
		})
	}
}

func TestRedirect(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
			return
		}
		w.Write([]byte("landed"))
	})
	hook := h.addHook("go", rc.URL+"/start", nil)
	evs := h.hookEvents()
	h.publish("go", "x")
	got := bustest.Collect(t, evs, 2, 5*time.Second)
	if got[1].Name != "hook-response/go/0" || got[1].Data != "landed" {
		t.Errorf("response event %q %q", got[1].Name, got[1].Data)
	}
	reqs := rc.requests()
	if len(reqs) != 2 || reqs[1].path != "/final" || reqs[1].method != "POST" || reqs[1].body != reqs[0].body {
		t.Errorf("requests = %+v", reqs)
	}
	waitFor(t, 5*time.Second, "log", func() bool { return len(h.deliveries(hook.ID)) == 1 })
	if d := h.deliveries(hook.ID)[0]; d.Status != 200 || d.URL != rc.URL+"/start" {
		t.Errorf("log = %+v", d)
	}
}

// TestHugeResponse: a 150 kB body is cut to MaxResponseBytes and published
// in 512-byte chunks that reassemble to it.
func TestHugeResponse(t *testing.T) {
	body := make([]byte, 150_000)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	h := newHarness(t, testConfig(), harnessOpts{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.Write(body) })
	h.addHook("big", rc.URL, nil)
	evs := h.hookEvents()
	h.publish("big", "x")
	chunks := (MaxResponseBytes + ChunkSize - 1) / ChunkSize
	got := bustest.Collect(t, evs, 1+chunks, 10*time.Second)
	var sb strings.Builder
	for i, ev := range got[1:] {
		if want := fmt.Sprintf("hook-response/big/%d", i); ev.Name != want {
			t.Fatalf("event %d is %q; want %q", i, ev.Name, want)
		}
		if i < chunks-1 && len(ev.Data) != ChunkSize {
			t.Errorf("chunk %d has %d bytes", i, len(ev.Data))
		}
		sb.WriteString(ev.Data)
	}
	if sb.String() != string(body[:MaxResponseBytes]) {
		t.Errorf("reassembled %d bytes differ from the first %d of the body", sb.Len(), MaxResponseBytes)
	}
	bustest.ExpectNone(t, evs, 200*time.Millisecond)
}

// TestThrottle: errors outnumbering successes put the host to sleep;
// attempts are then skipped (one "Sleeping" hook-error), retried after the
// skip delays and dropped; sending resumes after Resume without errors.
func TestThrottle(t *testing.T) {
	cfg := testConfig()
	cfg.Retries = -1
	cfg.Workers = 1
	cfg.Throttle = ThrottleConfig{MinErrors: 3, Resume: 300 * time.Millisecond,
		SkipDelays: []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}, NoticeEvery: time.Minute}
	h := newHarness(t, cfg, harnessOpts{})
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if failing.Load() {
			w.WriteHeader(500)
		}
	})
	hook := h.addHook("th", rc.URL, nil)
	evs := h.hookEvents()
	const n = 10
	for i := range n {
		h.publish("th", fmt.Sprint(i))
	}
	waitFor(t, 10*time.Second, "every job dropped", func() bool { return h.hookStats(hook.ID).Dropped == n })
	hs := h.hookStats(hook.ID)
	if sent := rc.count(); sent >= n || sent < 3 || hs.Skipped < n-uint64(sent) {
		t.Errorf("receiver got %d requests, %d skips; want 3..%d requests and the rest skipped", sent, hs.Skipped, n-1)
	}
	sleeping := 0
	for {
		ev, err := evs.Next(ctxTimeout(t, 300*time.Millisecond))
		if err != nil {
			break
		}
		if ev.Data == SleepingMessage {
			sleeping++
		}
	}
	if sleeping != 1 {
		t.Errorf("%d Sleeping notices; want 1 (rate-limited)", sleeping)
	}
	var skipped, dropped bool
	for _, d := range h.deliveries(hook.ID) {
		skipped = skipped || strings.HasPrefix(d.Error, "skipped: 127.0.0.1 is sleeping")
		dropped = dropped || strings.HasPrefix(d.Error, "dropped: 127.0.0.1 is sleeping")
	}
	if !skipped || !dropped {
		t.Errorf("log lacks the skip (%v) or the drop (%v) entry", skipped, dropped)
	}

	// The receiver recovers; after Resume without errors sending resumes.
	failing.Store(false)
	time.Sleep(cfg.Throttle.Resume + 50*time.Millisecond)
	for i := range 3 {
		h.publish("th", fmt.Sprint("ok", i))
	}
	waitFor(t, 5*time.Second, "deliveries after waking", func() bool { return h.hookStats(hook.ID).Delivered == 3 })
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDurableAcrossRestart: jobs queued (and in flight) when the engine
// stops, and events published while no engine runs, are delivered by the
// next engine on the same JetStream directory.
func TestDurableAcrossRestart(t *testing.T) {
	dir, prefix, st := t.TempDir(), "t"+randomHex(4), newMemStore()
	cfg := testConfig()
	cfg.Workers = 2
	cfg.Timeout = 3 * time.Second
	var up atomic.Bool
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if !up.Load() {
			<-r.Context().Done() // hang until the engine gives up
		}
	})
	h1 := newHarness(t, cfg, harnessOpts{jsDir: dir, prefix: prefix, st: st})
	hook := h1.addHook("d", rc.URL, nil)
	const n = 20
	for i := range n {
		h1.publish("d", fmt.Sprint("a", i))
	}
	waitFor(t, 5*time.Second, "jobs queued", func() bool { return h1.eng.Stats(context.Background()).Queued == n })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	h1.eng.Stop(ctx) // cancels the 2 requests in flight: not acknowledged
	cancel()
	for i := range 5 {
		h1.publish("d", fmt.Sprint("b", i)) // no engine runs
	}
	h1.close()
	stuck := rc.count()

	up.Store(true)
	h2 := newHarness(t, cfg, harnessOpts{jsDir: dir, prefix: prefix, st: st})
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprint("a", i)] = true
	}
	for i := range 5 {
		want[fmt.Sprint("b", i)] = true
	}
	// The two jobs in flight at the stop were never deleted from the
	// stream: the next engine reads them again at once.
	waitFor(t, 10*time.Second, "every event delivered after the restart", func() bool {
		seen := map[string]bool{}
		for _, r := range rc.requests()[stuck:] {
			q, _ := url.ParseQuery(r.body)
			seen[q.Get("data")] = true
		}
		for d := range want {
			if !seen[d] {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "the second engine's counters", func() bool { return h2.hookStats(hook.ID).Delivered >= n+5 })
}

// TestDeleteHookPurgesQueue: deleting a hook drops its queued jobs.
func TestDeleteHookPurgesQueue(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Workers = 1
			h := newHarness(t, cfg, harnessOpts{ring: m.ring})
			release := make(chan struct{})
			defer close(release)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			hook := h.addHook("p", rc.URL, nil)
			for i := range 10 {
				h.publish("p", fmt.Sprint(i))
			}
			waitFor(t, 5*time.Second, "10 queued, 1 sent", func() bool { return h.hookStats(hook.ID).Queued == 10 && rc.count() == 1 })
			h.st.DeleteWebhook(context.Background(), hook.ID)
			h.eng.WebhooksChanged(context.Background(), hook.ID)
			waitFor(t, 5*time.Second, "queue purged", func() bool { return h.hookStats(hook.ID).Queued <= 1 })
			h.publish("p", "after")
			time.Sleep(200 * time.Millisecond)
			if n := rc.count(); n != 1 {
				t.Errorf("receiver got %d requests; want only the one in flight before the delete", n)
			}
		})
	}
}

// TestQueueFull: beyond MaxQueuePerHook new jobs are dropped and logged.
func TestQueueFull(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Workers = 1
			cfg.MaxQueuePerHook = 5
			h := newHarness(t, cfg, harnessOpts{ring: m.ring})
			release := make(chan struct{})
			defer close(release)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			hook := h.addHook("f", rc.URL, nil)
			for i := range 20 {
				h.publish("f", fmt.Sprint(i))
			}
			waitFor(t, 5*time.Second, "drops", func() bool {
				hs := h.hookStats(hook.ID)
				return hs.Dropped > 0 && hs.Dropped+uint64(hs.Queued) >= 20
			})
			if hs := h.hookStats(hook.ID); hs.Queued > 6 {
				t.Errorf("queued %d; want at most 5 (+1 taken by the worker)", hs.Queued)
			}
			waitFor(t, 5*time.Second, "log entry", func() bool {
				l := h.deliveries(hook.ID)
				return len(l) > 0 && l[0].Error == "dropped: the hook's queue is full"
			})
		})
	}
}

func TestTestWebhook(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{noStart: true})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.Write([]byte("pong")) })
	hook := h.addHook("ping", rc.URL, func(w *store.Webhook) { w.DeviceID = "dev9" })
	d, err := h.eng.TestWebhook(context.Background(), hook)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || d.Status != 200 || d.Response != "pong" || d.Attempt != 1 || d.Error != "" || d.EventName != "ping" {
		t.Errorf("delivery = %+v", d)
	}
	q, _ := url.ParseQuery(rc.requests()[0].body)
	if q.Get("data") != TestEventData || q.Get("coreid") != "dev9" || q.Get("event") != "ping" {
		t.Errorf("test request body %q", rc.requests()[0].body)
	}
	if l := h.deliveries(hook.ID); len(l) != 1 || l[0].ID != d.ID {
		t.Errorf("log = %+v", l)
	}

	bad := h.addHook("ping", "ftp://example.com/", nil)
	d, err = h.eng.TestWebhook(context.Background(), bad)
	if err != nil || d.Status != 0 || d.Error == "" {
		t.Errorf("test of an ftp hook = %+v, %v; want an error entry", d, err)
	}
}

// TestSignedDelivery: a hook with a signing secret sends a signature made
// with the opened key.
func TestSignedDelivery(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	rc := newReceiver(t, nil)
	hook := h.addHook("s", rc.URL, func(w *store.Webhook) { w.Settings.SigningSecret = []byte("sealed") })
	h.publish("s", "x")
	waitFor(t, 5*time.Second, "delivery", func() bool { return h.hookStats(hook.ID).Delivered == 1 })
	r := rc.requests()[0]
	req := httptest.NewRequest(r.method, r.path, nil)
	req.Header = r.header
	if err := VerifySignature([]byte("opened:sealed"), req, []byte(r.body), time.Minute); err != nil {
		t.Errorf("signature: %v (headers %v)", err, r.header)
	}
}

// TestUnopenableSecret: a hook whose secret cannot be opened is never sent
// unsigned.
func TestUnopenableSecret(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	h.eng.open = func(string, []byte) ([]byte, error) { return nil, fmt.Errorf("bad key") }
	rc := newReceiver(t, nil)
	hook := h.addHook("u", rc.URL, func(w *store.Webhook) { w.Settings.SigningSecret = []byte("x") })
	h.publish("u", "x")
	waitFor(t, 5*time.Second, "drop", func() bool { return h.hookStats(hook.ID).Dropped == 1 })
	if rc.count() != 0 {
		t.Error("an unsigned request was sent")
	}
}

// TestHooksChangedBroadcast: a change in one engine reaches another
// engine on the same bus.
func TestHooksChangedBroadcast(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	other, err := New(testConfig(), Deps{Store: h.st, Bus: h.bus, Outbound: netguard.Policy{AllowPrivate: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer other.Stop(context.Background())
	hook := h.addHook("b", "http://127.0.0.1:9/", nil)
	waitFor(t, 5*time.Second, "the other engine to load the hook", func() bool { return other.idx.get(hook.ID) != nil })
	h.st.DeleteWebhook(context.Background(), hook.ID)
	h.eng.WebhooksChanged(context.Background(), hook.ID)
	waitFor(t, 5*time.Second, "the other engine to drop the hook", func() bool { return other.idx.get(hook.ID) == nil })
}

// TestDisabledHook: disabled hooks never fire.
func TestDisabledHook(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	rc := newReceiver(t, nil)
	h.addHook("x", rc.URL, func(w *store.Webhook) { w.Disabled = true })
	live := h.addHook("x", rc.URL+"/live", nil)
	h.publish("x", "1")
	waitFor(t, 5*time.Second, "the live hook", func() bool { return h.hookStats(live.ID).Delivered == 1 })
	time.Sleep(100 * time.Millisecond)
	if reqs := rc.requests(); len(reqs) != 1 || reqs[0].path != "/live" {
		t.Errorf("requests = %+v", reqs)
	}
}

// TestPolicyRefusesPrivate: without AllowPrivate a loopback receiver is
// never contacted; the attempt fails at once, is not retried and does not
// count against the host's throttle.
func TestPolicyRefusesPrivate(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{strict: true})
	rc := newReceiver(t, nil)
	hook := h.addHook("p", rc.URL, nil)
	evs := h.hookEvents()
	h.publish("p", "x")
	got := bustest.Collect(t, evs, 1, 5*time.Second)
	if got[0].Name != "hook-error/p/0" || !strings.Contains(got[0].Data, "netguard") {
		t.Errorf("hook event %q %q; want a netguard hook-error", got[0].Name, got[0].Data)
	}
	waitFor(t, 5*time.Second, "the drop", func() bool { return h.hookStats(hook.ID).Dropped == 1 })
	if hs := h.hookStats(hook.ID); hs.Retried != 0 || rc.count() != 0 {
		t.Errorf("stats %+v, %d requests; want no retry, no request", hs, rc.count())
	}
}

// TestSealedCredentials: a hook's sealed auth and headers are opened for
// the request; a hook whose credentials cannot be opened is never sent
// (without them).
func TestSealedCredentials(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	rc := newReceiver(t, nil)
	seal := func(w *store.Webhook, prefix string) {
		w.Settings.Auth = &store.BasicAuth{Username: "user", Password: "pass"}
		w.Settings.Headers = map[string]string{"X-Api-Key": "k3y"}
		if err := w.Settings.SealCredentials(func(p []byte) ([]byte, error) { return append([]byte(prefix), p...), nil }); err != nil {
			t.Fatal(err)
		}
	}
	good := h.addHook("sealed", rc.URL+"/good", func(w *store.Webhook) { seal(w, "sealed:") })
	bad := h.addHook("sealed", rc.URL+"/bad", func(w *store.Webhook) { seal(w, "other:") })
	h.publish("sealed", "x")
	waitFor(t, 5*time.Second, "the delivery and the drop", func() bool {
		return h.hookStats(good.ID).Delivered == 1 && h.hookStats(bad.ID).Dropped == 1
	})
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].path != "/good" {
		t.Fatalf("requests: %+v", reqs)
	}
	if u, p, ok := (&http.Request{Header: reqs[0].header}).BasicAuth(); !ok || u != "user" || p != "pass" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if got := reqs[0].header.Get("X-Api-Key"); got != "k3y" {
		t.Errorf("X-Api-Key = %q", got)
	}
}
