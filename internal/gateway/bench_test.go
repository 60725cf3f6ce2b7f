package gateway

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// BenchmarkHandshake measures the server side of the handshake
// (docs/particle-protocol.md#tcp-handshake) per op: nonce, reading the device's
// RSA block, decrypting it (RSA-2048 private), the store key lookup, encrypting
// and signing the session key (RSA-2048 private) and writing it. The device
// side runs in another goroutine over net.Pipe.
func BenchmarkHandshake(b *testing.B) {
	w := newWorld(b, testConfig())
	id := deviceID(1)
	key := testKey(b, "device_a")
	w.provision(id, key, owner1)
	serverPub := &testKey(b, "server").PublicKey
	b.ReportAllocs()
	for b.Loop() {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := protocol.DeviceHandshake(client, protocol.DeviceHandshakeConfig{ID: id, PrivateKey: key, ServerKey: serverPub})
			done <- err
		}()
		s := newSession(w.g, server)
		if err := s.handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		client.Close()
		server.Close()
	}
}

// BenchmarkHandshakeParallel measures handshake throughput with several
// devices connecting at once (Config.MaxHandshakes slots, default one per
// core); ns/op is the inverse of handshakes per second.
func BenchmarkHandshakeParallel(b *testing.B) {
	w := newWorld(b, testConfig())
	id := deviceID(1)
	key := testKey(b, "device_a")
	w.provision(id, key, owner1)
	serverPub := &testKey(b, "server").PublicKey
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			client, server := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := protocol.DeviceHandshake(client, protocol.DeviceHandshakeConfig{ID: id, PrivateKey: key, ServerKey: serverPub})
				done <- err
			}()
			s := newSession(w.g, server)
			if err := s.handshake(); err != nil {
				b.Error(err)
				return
			}
			if err := <-done; err != nil {
				b.Error(err)
				return
			}
			client.Close()
			server.Close()
		}
	})
}

// BenchmarkHandshakeServerParallel is BenchmarkHandshakeParallel with a
// light device that seals its hello (one RSA-2048 public-key encryption)
// and reads the 384-byte answer without decrypting or verifying it, so that
// nearly all the CPU goes to the server side. handshakes/s is the rate one
// gateway process sustains when its devices run elsewhere; set it beside
// `openssl speed -multi 2 rsa2048` (two private-key operations per
// handshake). handshakes/cpu-s divides by the process's CPU time instead
// of wall time, as `openssl speed` does. Run with -tags openssl for the
// OpenSSL key (package rsakey).
func BenchmarkHandshakeServerParallel(b *testing.B) {
	w := newWorld(b, testConfig())
	id := deviceID(1)
	key := testKey(b, "device_a")
	w.provision(id, key, owner1)
	spki, err := protocol.MarshalPublicKeyDER(&key.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	serverPub := &testKey(b, "server").PublicKey
	lightDevice := func(c net.Conn) error {
		var nonce [protocol.NonceSize]byte
		if _, err := io.ReadFull(c, nonce[:]); err != nil {
			return err
		}
		block, err := protocol.SealDeviceHello(serverPub, nonce[:], id, spki)
		if err != nil {
			return err
		}
		if _, err := c.Write(block); err != nil {
			return err
		}
		_, err = io.ReadFull(c, make([]byte, key.Size()+serverPub.Size()))
		return err
	}
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			client, server := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- lightDevice(client) }()
			s := newSession(w.g, server)
			if err := s.handshake(); err != nil {
				b.Error(err)
				return
			}
			if err := <-done; err != nil {
				b.Error(err)
				return
			}
			client.Close()
			server.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu, "handshakes/cpu-s")
	}
}

// BenchmarkFunctionCall measures a function call's round trip through an
// established session over net.Pipe: POST f/led?on, empty ACK, separate
// 2.04, with the device answering in its own goroutine.
func BenchmarkFunctionCall(b *testing.B) {
	for _, via := range []string{"direct", "bus"} {
		b.Run(via, func(b *testing.B) {
			w := newWorld(b, testConfig())
			id := deviceID(2)
			w.provision(id, testKey(b, "device_a"), owner1)
			d := w.dial(id, testKey(b, "device_a"))
			d.noLog = true
			d.appJSON = `{"f":["led"],"v":{}}`
			d.functions["led"] = func(string) int32 { return 1 }
			d.hello(helloPayload(0))
			waitFor(b, "describe", func() bool { return len(w.device(id).Functions) == 1 })
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				switch via {
				case "direct":
					if v, err := w.g.CallFunction(ctx, id.String(), "led", "on"); err != nil || v != 1 {
						b.Fatal(v, err)
					}
				case "bus":
					if r, err := w.b.Call(ctx, id.String(), bus.Call{Kind: bus.KindFunction, Name: "led", Arg: "on"}); err != nil || r.ReturnValue != 1 {
						b.Fatal(r, err)
					}
				}
			}
		})
	}
}

// BenchmarkEventToBus measures a device's publish through the read loop to
// the bus (rate limit disabled).
func BenchmarkEventToBus(b *testing.B) {
	cfg := testConfig()
	cfg.EventRate = -1
	w := newWorld(b, cfg)
	id := deviceID(3)
	w.provision(id, testKey(b, "device_a"), owner1)
	sub := w.subscribe(bus.Filter{DeviceID: id.String(), NamePrefix: "bench"})
	d := w.online(id, testKey(b, "device_a"), protocol.HelloDeviceDescribe)
	d.noLog = true
	ev := protocol.Event{Name: "bench/temp", Data: []byte("21.5"), Private: true, TTL: 60}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d.publish(ev, protocol.NonConfirmable)
		if _, err := sub.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
