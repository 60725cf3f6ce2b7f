package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/bus"
)

// fanoutClient reads one benchmark stream: it counts events and records
// each one's publish-to-delivery latency (the data is the publish time in
// Unix nanoseconds).
type fanoutClient struct {
	received atomic.Int64
	lat      []time.Duration // written by the reader goroutine only
	drops    atomic.Int64    // events announced as dropped
}

var dataKey = []byte(`data: {"data":"`)

func (c *fanoutClient) read(r *bufio.Reader) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case bytes.HasPrefix(line, dataKey):
			rest := line[len(dataKey):]
			if end := bytes.IndexByte(rest, '"'); end > 0 {
				if ns, err := strconv.ParseInt(string(rest[:end]), 10, 64); err == nil {
					c.lat = append(c.lat, time.Duration(time.Now().UnixNano()-ns))
				}
			}
			c.received.Add(1)
		case bytes.HasPrefix(line, []byte(": ")) && bytes.Contains(line, []byte("dropped")):
			var n int64
			fmt.Sscanf(string(line), ": %d events dropped", &n)
			c.drops.Add(n)
		}
	}
}

// BenchmarkSSEFanout publishes events from 1,000 simulated devices of one
// user (on the bus, as the gateway does) to 100 SSE streams of that user
// over HTTP on loopback, each read by its own client. One op is one
// published event, delivered 100 times. Reported: delivered events/s,
// p50 and p99 publish-to-delivery latency, and events dropped.
//
//   - max: the publisher keeps at most 512 events ahead of the slowest
//     stream (below the 1,024-event stream buffers), so it measures the
//     throughput streams sustain without loss.
//   - rate=500: 500 events/s (1,000 devices at one event every 2 s), i.e.
//     50,000 deliveries/s, the target load; latency at that load.
func BenchmarkSSEFanout(b *testing.B) {
	for _, mode := range []struct {
		name string
		rate int // events/s; 0: as fast as the streams keep up
	}{{"streams=100/max", 0}, {"streams=100/rate=500", 500}} {
		b.Run(mode.name, func(b *testing.B) { benchFanout(b, 100, mode.rate) })
	}
}

func benchFanout(b *testing.B, streams, rate int) {
	w := newBusWorld(b, api.Config{GlobalRate: -1, SSEOpenRate: -1, SSEMaxConnsPerIP: -1, SSEBuffer: 1024})
	srv := sseServer(b, w)
	devices := make([]string, 1000)
	for i := range devices {
		devices[i] = fmt.Sprintf("%024x", 0xbe000000+i)
	}
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	clients := make([]*fanoutClient, streams)
	for i := range clients {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/devices/events/bench", nil)
		req.Header.Set("Authorization", "Bearer "+w.ownerToken)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("stream %d: %v %v", i, err, resp)
		}
		c := &fanoutClient{lat: make([]time.Duration, 0, b.N)}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			c.read(bufio.NewReaderSize(resp.Body, 64<<10))
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
	}()
	minReceived := func() int64 {
		m := clients[0].received.Load()
		for _, c := range clients[1:] {
			m = min(m, c.received.Load())
		}
		return m
	}
	const window = 512
	pctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		} else if i%64 == 0 {
			for int64(i)-minReceived() > window {
				time.Sleep(50 * time.Microsecond)
			}
		}
		ev := bus.Event{Name: "bench/temp", Data: strconv.FormatInt(time.Now().UnixNano(), 10),
			DeviceID: devices[i%len(devices)], UserID: w.owner.ID}
		if err := w.Bus.Publish(pctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	var drops int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		drops = 0
		done := true
		for _, c := range clients {
			d := c.drops.Load()
			drops += d
			if c.received.Load()+d < int64(b.N) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()

	var lat []time.Duration
	var delivered int64
	for _, c := range clients {
		lat = append(lat, c.lat...)
		delivered += c.received.Load()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(drops), "dropped")
}
