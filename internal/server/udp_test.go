package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// TestServeDeviceUDP: the Gen 3 gateway listens next to the TCP one (port 0
// in tests, since --device-tcp has port 0) and answers a ClientHello with a
// HelloVerifyRequest; --device-udp "" turns it off.
func TestServeDeviceUDP(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := testConfig(t)
		if !on {
			cfg.DeviceUDP = ""
		}
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		select {
		case <-srv.Ready():
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		}
		addr := srv.DeviceUDPAddr()
		if !on {
			if addr != nil {
				t.Errorf("UDP disabled, but DeviceUDPAddr = %v", addr)
			}
		} else {
			ua, ok := addr.(*net.UDPAddr)
			if !ok || ua.Port == 0 {
				t.Fatalf("DeviceUDPAddr = %v", addr)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			hs, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: key, ServerKey: &key.PublicKey})
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialUDP("udp", nil, ua)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(hs.Start(time.Now())[0])
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, err := c.Read(buf)
			c.Close()
			if err != nil || n <= dtls.HeaderLen || dtls.HandshakeType(buf[dtls.HeaderLen]) != dtls.HandshakeHelloVerifyRequest {
				t.Fatalf("answer % x, %v: want a HelloVerifyRequest", buf[:n], err)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}
