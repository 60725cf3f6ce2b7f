package dtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenSSLClientThroughServerHandshake runs OpenSSL's s_client against
// ServerConfig and ServerHandshake over a UDP socket on 127.0.0.1: the
// socket loop below only moves datagrams and timeouts, the state machine
// does the rest. OpenSSL 3.0 has no raw public keys or connection IDs, so
// the config sets AllowX509 (docs/dtls.md, Server handshake).
func TestOpenSSLClientThroughServerHandshake(t *testing.T) {
	if testing.Short() {
		t.Skip("starts openssl")
	}
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl command")
	}
	serverKey, clientKey := mustP256(t), mustP256(t)
	clientCert := selfSigned(t, clientKey, "wick-interop-client")
	dir := t.TempDir()
	clientKeyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCert}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: clientKeyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cookies, err := NewCookies(bytes.Repeat([]byte{3}, CookieSecretLen))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ServerConfig{Key: serverKey, Cookies: cookies, AllowX509: true,
		Certificate: selfSigned(t, serverKey, "wick-interop-server"),
		DeviceKey:   func(pub *ecdsa.PublicKey) bool { return pub.Equal(&clientKey.PublicKey) }}

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(bin, "s_client", "-dtls1_2", "-connect", conn.LocalAddr().String(),
		"-cipher", "ECDHE-ECDSA-AES128-CCM8", "-groups", "P-256", "-cert", certPath, "-key", keyPath, "-quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("s_client output:\n%s", out.String())
		}
	}()

	var hs *ServerHandshake
	var peer *net.UDPAddr
	send := func(dgrams [][]byte) {
		for _, d := range dgrams {
			if _, err := conn.WriteToUDP(d, peer); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 2048)
	for giveUp := time.Now().Add(20 * time.Second); ; {
		if time.Now().After(giveUp) {
			t.Fatal("handshake did not finish")
		}
		deadline := time.Now().Add(time.Second)
		if hs != nil {
			if at, ok := hs.NextTimeout(); ok {
				deadline = at
			}
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, from, err := conn.ReadFromUDP(buf)
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if hs != nil {
				o, err := hs.HandleTimeout(now)
				if err != nil {
					t.Fatal(err)
				}
				send(o)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		peer = from
		if hs == nil {
			o, h, err := cfg.HandleClientHello(now, from.AddrPort(), buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			hs = h
			send(o)
			continue
		}
		o, done, err := hs.HandleDatagram(now, from.AddrPort(), buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		send(o)
		if done {
			break
		}
	}
	const greeting = "hello through ServerHandshake"
	dgram, err := hs.Session().Seal(nil, []byte(greeting+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	send([][]byte{dgram})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), greeting); {
		if time.Now().After(deadline) {
			t.Fatal("s_client never printed the application data")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
