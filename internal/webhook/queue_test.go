package webhook

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/netguard"
)

// TestMemQueue: fresh jobs in order, at most limit outstanding, retries
// when due, later hands a job back, depth and purge.
func TestMemQueue(t *testing.T) {
	q := newMemQueue(2, 3, time.Now)
	ctx := context.Background()
	var jobs []job
	for _, d := range []string{"a", "b", "c", "d"} {
		jobs = append(jobs, job{HookID: "h", Event: eventNamed(d)})
	}
	errs := q.enqueue(ctx, jobs)
	if errs[0] != nil || errs[2] != nil || errs[3] != errQueueFull {
		t.Fatalf("enqueue errors = %v; want the 4th refused (queue of 3)", errs)
	}
	var mu sync.Mutex
	var got []*delivery
	stop, _, _ := q.consume(ctx, "h", func(d *delivery) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	})
	defer stop()
	taken := func() []*delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]*delivery(nil), got...)
	}
	waitFor(t, time.Second, "2 deliveries", func() bool { return len(taken()) == 2 })
	time.Sleep(20 * time.Millisecond)
	if n := len(taken()); n != 2 {
		t.Fatalf("%d outstanding; want the limit 2", n)
	}
	if d, _ := q.depth(ctx); d["h"] != 3 {
		t.Errorf("depth %v; want 3", d)
	}
	g := taken()
	if g[0].job.Event.Name != "a" || g[1].job.Event.Name != "b" {
		t.Errorf("order %q %q", g[0].job.Event.Name, g[1].job.Event.Name)
	}
	// A retry due in 50 ms, and b handed back for 100 ms.
	r := g[0].job
	r.Due = time.Now().Add(50 * time.Millisecond)
	q.requeue(ctx, &r)
	g[0].ack()
	g[1].later(100 * time.Millisecond)
	waitFor(t, time.Second, "c", func() bool { return len(taken()) == 3 })
	if taken()[2].job.Event.Name != "c" {
		t.Errorf("third is %q; want c (fresh before retries)", taken()[2].job.Event.Name)
	}
	taken()[2].ack()
	start := time.Now()
	waitFor(t, time.Second, "the retry", func() bool { return len(taken()) == 4 })
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("retry came after %v; want ~50ms", el)
	}
	if d := taken()[3]; d.job.Event.Name != "a" {
		t.Errorf("fourth is %q; want the retry of a", d.job.Event.Name)
	}
	waitFor(t, time.Second, "b again", func() bool { return len(taken()) == 5 })
	if d := taken()[4]; d.job.Event.Name != "b" {
		t.Errorf("fifth is %q; want b handed back", d.job.Event.Name)
	}
	q.purge(ctx, "h")
	if d, _ := q.depth(ctx); len(d) != 0 {
		t.Errorf("depth after purge %v", d)
	}
}

func eventNamed(name string) bus.Event { return bus.Event{Name: name} }

// TestQueueTailBlocks guards keepTail: with long-lived jobs in an older
// block of the stream (a hanging hook's backlog) a healthy hook's
// deliveries, each of which empties the stream's last block, must not make
// the server start (and keep) a block file per delivery.
func TestQueueTailBlocks(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Workers = 16
	cfg.Timeout = 60 * time.Second
	h := newHarness(t, cfg, harnessOpts{jsDir: dir})
	release := make(chan struct{})
	defer close(release)
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newReceiver(t, nil)
	slow := h.addHook("slow", strings.Replace(hang.URL, "127.0.0.1", "localhost", 1), nil)
	live := h.addHook("live", fast.URL, nil)
	publishParallel(t, h.bus, h.user, "slow", 100, 4, func(int) string { return "x" })
	waitFor(t, 10*time.Second, "the backlog", func() bool { return h.hookStats(slow.ID).Queued == 100 })
	// Fill the first block (4 MiB) so that the last block holds only
	// the live hook's jobs.
	big := strings.Repeat("x", 2000)
	publishParallel(t, h.bus, h.user, "live", 2500, 4, func(int) string { return big })
	waitFor(t, 60*time.Second, "the filler", func() bool { return h.hookStats(live.ID).Delivered == 2500 })
	blocks := func() int {
		files, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", hooksStreamName(h.eng.prefix), "msgs", "*.blk"))
		return len(files)
	}
	before := blocks()
	const n = 300
	for i := range n {
		h.publish("live", fmt.Sprint(i))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "the live deliveries", func() bool { return h.hookStats(live.ID).Delivered == 2500+n })
	if after := blocks(); before == 0 || after-before > 30 {
		t.Errorf("%d block files before %d spaced deliveries, %d after; want a handful more, not one per delivery", before, n, after)
	}
}

// TestQueueTailIdle: the ballast moves only after jobs were published. An
// idle queue writes nothing to the stream (it used to replace the ballast
// five times a second, a fifth of an idle server's CPU), and a delivery
// is followed by a ballast again.
func TestQueueTailIdle(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	ctx := context.Background()
	st, err := h.bus.JetStream().Stream(ctx, hooksStreamName(h.eng.prefix))
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	waitFor(t, 5*time.Second, "the first ballast", func() bool { return lastSeq() > 0 })
	idle := lastSeq()
	time.Sleep(time.Second) // five ticks of keepTail
	if got := lastSeq(); got != idle {
		t.Fatalf("idle queue: last sequence %d -> %d, want no writes", idle, got)
	}
	rcv := newReceiver(t, nil)
	hook := h.addHook("live", rcv.URL, nil)
	h.publish("live", "x")
	waitFor(t, 10*time.Second, "the delivery", func() bool { return h.hookStats(hook.ID).Delivered == 1 })
	waitFor(t, 5*time.Second, "a ballast behind the job", func() bool {
		m, err := st.GetLastMsgForSubject(ctx, h.eng.currentQueue().(*jsQueue).tailSubject())
		return err == nil && m.Sequence == lastSeq() && m.Sequence > idle+1
	})
}

// TestTwoEnginesShareHooks: two processes on one bus deliver every event
// once; the hook's lease decides which one sends, and when that engine
// stops the other takes the hook over.
func TestTwoEnginesShareHooks(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, cfg, harnessOpts{})
	other, err := New(cfg, Deps{Store: h.st, Bus: h.bus, Outbound: netguard.Policy{AllowPrivate: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			other.Stop(context.Background())
		}
	}()
	rc := newReceiver(t, nil)
	hook := h.addHook("two", rc.URL, nil)
	waitFor(t, 5*time.Second, "the other engine to load the hook", func() bool { return other.idx.get(hook.ID) != nil })
	const n = 200
	publishParallel(t, h.bus, h.user, "two", n, 4, func(i int) string { return fmt.Sprint(i) })
	waitFor(t, 20*time.Second, "every event delivered", func() bool { return rc.count() >= n })
	seen := map[string]int{}
	for _, r := range rc.requests() {
		seen[r.body]++
	}
	for body, c := range seen {
		if c > 1 {
			t.Errorf("%q delivered %d times", body, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events delivered; want %d", len(seen), n)
	}
	stopped = true
	other.Stop(context.Background())
	publishParallel(t, h.bus, h.user, "two", n, 4, func(i int) string { return fmt.Sprint("b", i) })
	waitFor(t, 20*time.Second, "every event delivered after one engine stopped", func() bool { return rc.count() >= 2*n })
}

// TestLegacyConsumersRemoved: the per-hook consumers of the earlier
// design are deleted when the engine starts.
func TestLegacyConsumersRemoved(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{noStart: true})
	js := h.bus.JetStream()
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: hooksStreamName(h.eng.prefix),
		Subjects: []string{h.eng.prefix + ".hook.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hook-abc", "hook-abc-retry"} {
		if _, err := st.CreateConsumer(context.Background(), jetstream.ConsumerConfig{Durable: name,
			FilterSubject: h.eng.prefix + ".hook." + name, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left on the queue stream", info.State.Consumers)
	}
}
