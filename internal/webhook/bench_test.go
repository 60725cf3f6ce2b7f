package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// publishParallel publishes n events of user from p goroutines.
func publishParallel(b testing.TB, bb *bus.Bus, user, name string, n, p int, data func(i int) string) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range p {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := bb.Publish(context.Background(), bus.Event{Name: name, Data: data(i), DeviceID: "dev1", UserID: user}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliver measures end-to-end deliveries per second to a fast
// local receiver: events published on the bus (JetStream), matched,
// queued, sent, answered with a short body, and the hook-sent and
// hook-response events published back. Use -benchtime=20000x.
func BenchmarkDeliver(b *testing.B) {
	for _, hooks := range []int{1, 4} {
		b.Run(fmt.Sprintf("hooks=%d", hooks), func(b *testing.B) {
			h := newHarness(b, Config{}, harnessOpts{})
			var got atomic.Int64
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				got.Add(1)
				w.Write([]byte("ok"))
			}))
			defer rc.Close()
			for i := range hooks {
				h.addHook("bench", fmt.Sprintf("%s/%d", rc.URL, i), nil)
			}
			want := int64(b.N * hooks)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			publishParallel(b, h.bus, h.user, "bench", b.N, 8, func(int) string { return "21.5" })
			for got.Load() < want {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
			// The machine is shared: the CPU time per delivery (of the whole
			// process: bus, embedded NATS, engine, receiver) says what two
			// dedicated cores would do.
			perDelivery := cpu / time.Duration(want)
			b.ReportMetric(float64(perDelivery.Microseconds()), "cpu-µs/delivery")
			b.ReportMetric(2*float64(time.Second)/float64(perDelivery), "deliveries/s@2cores")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDeadReceiver queues 100,000 events (and, for comparison,
// 10,000) for a hook whose receiver is down (connection refused) and then
// measures, while that queue is worked off (throttled), the heap growth
// and the delivery lag of a healthy hook receiving b.N events at 1,000
// events/s. Use -benchtime=5000x.
func BenchmarkDeadReceiver(b *testing.B) {
	for _, queued := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("queued=%d", queued), func(b *testing.B) { benchDeadReceiver(b, queued) })
	}
}

func benchDeadReceiver(b *testing.B, queued int) {
	h := newHarness(b, Config{}, harnessOpts{})
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	// Another host name than the healthy receiver: throttling is per host.
	deadURL := strings.Replace(down.URL, "127.0.0.1", "localhost", 1)

	var mu sync.Mutex
	var lags []time.Duration
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q, _ := url.ParseQuery(string(body))
		if ns, err := strconv.ParseInt(q.Get("data"), 10, 64); err == nil {
			mu.Lock()
			lags = append(lags, time.Since(time.Unix(0, ns)))
			mu.Unlock()
		}
	}))
	defer healthy.Close()
	dead := h.addHook("dead", deadURL, nil)
	live := h.addHook("live", healthy.URL, nil)

	var ms runtime.MemStats
	heapInuse := func() uint64 {
		// Twice: the embedded NATS server keeps 1-8 MiB block buffers in
		// sync.Pools, which a single GC only moves to the victim cache.
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heapInuse()

	start := time.Now()
	publishParallel(b, h.bus, h.user, "dead", queued, 8, func(int) string { return "x" })
	for h.eng.Stats(context.Background()).Queued < uint64(queued) {
		time.Sleep(10 * time.Millisecond)
	}
	queueTime := time.Since(start)
	depth := h.hookStats(dead.ID).Queued

	b.ReportAllocs()
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	for range b.N {
		<-tick.C
		h.bus.Publish(context.Background(), bus.Event{Name: "live", Data: strconv.FormatInt(time.Now().UnixNano(), 10),
			DeviceID: "dev1", UserID: h.user})
	}
	tick.Stop()
	for h.hookStats(live.ID).Delivered < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	heap := int64(heapInuse()) - int64(base)
	ds := h.hookStats(dead.ID)

	mu.Lock()
	slices.Sort(lags)
	p := func(q float64) float64 { return float64(lags[int(q*float64(len(lags)-1))]) / 1e6 }
	b.ReportMetric(p(0.5), "lag-p50-ms")
	b.ReportMetric(p(0.99), "lag-p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1])/1e6, "lag-max-ms")
	mu.Unlock()
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(depth), "dead-queued")
	b.ReportMetric(queueTime.Seconds(), "queue-s")
	b.ReportMetric(0, "ns/op")
	b.Logf("dead hook after the run: %+v", ds)
}
