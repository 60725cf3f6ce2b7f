package bus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

func benchBus(b *testing.B, js bool) *bus.Bus {
	b.Helper()
	cfg := bus.Config{SubjectPrefix: uniquePrefix()}
	if js {
		cfg.JetStreamDir = b.TempDir()
	}
	bb, err := bus.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bb.Close() })
	return bb
}

// BenchmarkPublish measures Publish with 0, 1 and 100 subscribers reading
// promptly (an SSE fan-out: every subscriber follows the same user). The
// time includes delivery to every subscriber.
func BenchmarkPublish(b *testing.B) {
	for _, js := range []bool{false, true} {
		name := "ring"
		if js {
			name = "jetstream"
		}
		for _, n := range []int{0, 1, 100} {
			b.Run(fmt.Sprintf("%s/subs=%d", name, n), func(b *testing.B) {
				bb := benchBus(b, js)
				var got atomic.Int64
				var wg sync.WaitGroup
				subs := make([]*bus.Subscription, n)
				for i := range subs {
					s, err := bb.Subscribe(bus.Filter{UserID: u1, NamePrefix: "sensor"}, 1024)
					if err != nil {
						b.Fatal(err)
					}
					subs[i] = s
					wg.Go(func() {
						for range s.Events() {
							got.Add(1)
						}
					})
				}
				e := bus.Event{Name: "sensorValueEvent", Data: "2048", DeviceID: devA, UserID: u1, ProductID: 7}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if err := bb.Publish(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
				want := int64(b.N * n)
				deadline := time.Now().Add(30 * time.Second)
				for got.Load()+int64(bb.Stats().Dropped) < want && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "deliveries/s")
				b.ReportMetric(float64(bb.Stats().Dropped), "dropped")
				for _, s := range subs {
					s.Close()
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkPublishParallel measures concurrent publishers (devices) with
// one subscriber.
func BenchmarkPublishParallel(b *testing.B) {
	for _, js := range []bool{false, true} {
		name := "ring"
		if js {
			name = "jetstream"
		}
		b.Run(name, func(b *testing.B) {
			bb := benchBus(b, js)
			s, err := bb.Subscribe(bus.Filter{}, 4096)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for range s.Events() {
				}
			}()
			defer s.Close()
			e := bus.Event{Name: "sensorValueEvent", Data: "2048", DeviceID: devA, UserID: u1}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bb.Publish(context.Background(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCall measures a device call round trip: handled in the calling
// process (local) and through NATS from another process (remote).
func BenchmarkCall(b *testing.B) {
	gw := benchBus(b, false)
	api, err := bus.OpenPeer(context.Background(), gw, "api")
	if err != nil {
		b.Fatal(err)
	}
	defer api.Close()
	gw.HandleDevice(devA, func(_ context.Context, c bus.Call) (bus.Reply, error) {
		return bus.Reply{Status: 200, ReturnValue: int64(len(c.Arg))}, nil
	})
	call := bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "on"}
	for _, tc := range []struct {
		name string
		b    *bus.Bus
	}{{"local", gw}, {"remote", api}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := tc.b.Call(context.Background(), devA, call)
				if err != nil || r.ReturnValue != 2 {
					b.Fatalf("Call = %+v, %v", r, err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tc.b.Call(context.Background(), devA, call); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
