package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCluster measures the three-node cluster of TestCluster on this
// machine (every process shares its cores, so the figures are a floor, not
// a sizing): function calls through the node holding the device and
// through another node, event fan-out from one node to streams on all
// three, and call throughput with the devices and the callers on 1, 2 and
// 3 nodes. Run it with
//
//	WICK_TEST_POSTGRES_URL=... go test -run '^$' -bench Cluster -benchtime 2s ./internal/cluster
func BenchmarkCluster(b *testing.B) {
	c := setup(b, "--rate", "100000000", "--sse-open-rate", "100000")
	token := c.login(b, c.nodes[0].api, user, password)
	devs := startDevices(b, c, token, deviceCount, true) // device i stays on node i%3
	waitOnline(b, c, token, devs, []int{0, 1, 2}, 60*time.Second)

	call := func(node int, sd *simDevice) error {
		status, body, err := c.do(context.Background(), "POST", c.nodes[node].api, "/v1/devices/"+sd.id+"/echo", token, url.Values{"arg": {"1"}}, "")
		var fr struct {
			ReturnValue int `json:"return_value"`
		}
		json.Unmarshal(body, &fr)
		if err != nil || status != 200 || fr.ReturnValue != 2 {
			return fmt.Errorf("call through node%d: %d %s %v", node+1, status, body, err)
		}
		return nil
	}
	b.Run("call/same-node", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sd := devs[i%len(devs)]
			if err := call(sd.prefer, sd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("call/cross-node", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sd := devs[i%len(devs)]
			if err := call((sd.prefer+1+i%2)%nodeCount, sd); err != nil {
				b.Fatal(err)
			}
		}
	})

	// Fan-out: events published at node1 reach streams on every node.
	b.Run("fanout/3-nodes-x-4-streams", func(b *testing.B) {
		b.ReportAllocs()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const perNode = 4
		var lat sync.Map // data → publish time
		var delivered atomic.Int64
		var mu sync.Mutex
		var delays []time.Duration
		var wg sync.WaitGroup
		for n := range nodeCount {
			for range perNode {
				ch := c.openStream(ctx, b, c.nodes[n].api, "/v1/devices/events/k2fan", token, 0)
				wg.Go(func() {
					for ev := range ch {
						if v, ok := lat.Load(ev.Data); ok {
							d := time.Since(v.(time.Time))
							delivered.Add(1)
							mu.Lock()
							delays = append(delays, d)
							mu.Unlock()
						}
					}
				})
			}
		}
		time.Sleep(500 * time.Millisecond)
		for i := 0; b.Loop(); i++ {
			data := strconv.Itoa(i)
			lat.Store(data, time.Now())
			status, body, err := c.do(ctx, "POST", c.nodes[0].api, "/v1/devices/events", token, url.Values{"name": {"k2fan/x"}, "data": {data}}, "")
			if err != nil || status/100 != 2 {
				b.Fatalf("publish: %d %s %v", status, body, err)
			}
		}
		want := int64(b.N * nodeCount * perNode)
		deadline := time.Now().Add(10 * time.Second)
		for delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		mu.Lock()
		slices.Sort(delays)
		if len(delays) > 0 {
			b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "ms-p50-delivery")
			b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "ms-p99-delivery")
		}
		mu.Unlock()
		b.ReportMetric(float64(delivered.Load())/float64(want), "delivered-fraction")
	})

	// Throughput with the devices and the callers on the first k nodes.
	for k := 1; k <= nodeCount; k++ {
		var sub []*simDevice
		for _, sd := range devs {
			if sd.prefer < k {
				sub = append(sub, sd)
			}
		}
		b.Run(fmt.Sprintf("calls/nodes=%d/devices=%d", k, len(sub)), func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			start := time.Now()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if err := call(i%k, sub[i%len(sub)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
