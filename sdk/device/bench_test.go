package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

// benchDevice connects one device to a test server for a benchmark.
func benchDevice(b *testing.B) (*device.Device, *devicetest.Conn) {
	b.Helper()
	sk, dks := testKeys(b)
	srv, err := devicetest.NewServer(sk)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	srv.AddDevice(testID, &dks[0].PublicKey)
	d, err := device.New(device.Config{ID: testID, PrivateKey: dks[0], ServerAddr: srv.Addr, ServerKey: srv.PublicKey})
	if err != nil {
		b.Fatal(err)
	}
	d.Function("led", func(_ context.Context, arg string) int32 { return int32(len(arg)) })
	d.Variable("temp", func() float64 { return 21.5 })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go d.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	c, err := srv.WaitConn(wctx, testID)
	if err != nil {
		b.Fatal(err)
	}
	for d.State() != device.Online {
		time.Sleep(time.Millisecond)
	}
	return d, c
}

// BenchmarkFunctionCall is one cloud function call round trip over
// loopback: request, ACK, handler on the application queue, result.
func BenchmarkFunctionCall(b *testing.B) {
	_, c := benchDevice(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ret, err := c.Call(ctx, "led", "on"); err != nil || ret != 2 {
			b.Fatal(ret, err)
		}
	}
}

// BenchmarkVariable is one variable read round trip over loopback.
func BenchmarkVariable(b *testing.B) {
	_, c := benchDevice(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "temp", protocol.VariableDouble); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublish is the device side of a NON event: encode, seal, write.
func BenchmarkPublish(b *testing.B) {
	d, _ := benchDevice(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Publish(ctx, "sensorValueEvent", "2048", device.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
