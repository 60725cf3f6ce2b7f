package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

func TestUDPFlags(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		ok     bool
		server string
		key    string
	}{
		{"tcp default", nil, true, "127.0.0.1:5683", "d/server_key.pub.pem"},
		{"udp default server and key", []string{"--udp"}, true, "127.0.0.1:5684", "d/server_ec_key.pub.pem"},
		{"udp keeps an explicit server", []string{"--udp", "--server", "10.0.0.1:9999"}, true, "10.0.0.1:9999", "d/server_ec_key.pub.pem"},
		{"udp everything", []string{"--udp", "--resume", "--move-every", "1m", "--reconnect-every", "2m",
			"--udp-drop", "0.1", "--udp-duplicate", "0.2", "--udp-reorder", "1"}, true, "127.0.0.1:5684", "d/server_ec_key.pub.pem"},
		{"resume needs udp", []string{"--resume"}, false, "", ""},
		{"faults need udp", []string{"--udp-drop", "0.1"}, false, "", ""},
		{"probability above 1", []string{"--udp", "--udp-drop", "1.5"}, false, "", ""},
		{"negative move", []string{"--udp", "--move-every", "-1s"}, false, "", ""},
		{"reconnect works over tcp", []string{"--reconnect-every", "1m"}, true, "127.0.0.1:5683", "d/server_key.pub.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			fs := flag.NewFlagSet("sim", flag.ContinueOnError)
			cfg.Register(fs)
			if err := fs.Parse(append([]string{"--data", "d"}, c.args...)); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate: %v, want ok %v", err, c.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("%v is not ErrConfig", err)
				}
				return
			}
			if cfg.Server != c.server || cfg.ServerKey != filepath.FromSlash(c.key) {
				t.Errorf("server %s key %s, want %s %s", cfg.Server, cfg.ServerKey, c.server, c.key)
			}
		})
	}
}

func TestLoadUDPServerKey(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pemKey, _ := protocol.MarshalPublicKeyPEM(&k.PublicKey)
	der, _ := protocol.MarshalPublicKeyDER(&k.PublicKey)
	blob, err := protocol.EncodeServerKeyBlob(protocol.TransportUDP, der, "127.0.0.1", 5684)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := protocol.GenerateDeviceKey(nil)
	rsaPEM, _ := protocol.MarshalPublicKeyPEM(&rsaKey.PublicKey)
	for _, f := range []struct {
		name string
		data []byte
		ok   bool
	}{{"pem", pemKey, true}, {"der", der, true}, {"blob", blob, true}, {"rsa", rsaPEM, false}, {"junk", []byte("junk"), false}} {
		path := filepath.Join(dir, f.name)
		os.WriteFile(path, f.data, 0o600)
		got, err := LoadUDPServerKey(path)
		if (err == nil) != f.ok {
			t.Fatalf("%s: %v, want ok %v", f.name, err, f.ok)
		}
		if err == nil && !got.Equal(&k.PublicKey) {
			t.Errorf("%s: another key", f.name)
		}
	}
	if _, err := LoadUDPServerKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestUDPDeviceKeysPersist(t *testing.T) {
	dir := t.TempDir()
	s := &sim{cfg: Config{KeysDir: dir, UDP: UDPConfig{Enabled: true}}}
	der, generated, err := s.deviceKeyFor("510000000000000000000001")
	if err != nil || !generated {
		t.Fatalf("first: generated %v, %v", generated, err)
	}
	again, generated, err := s.deviceKeyFor("510000000000000000000001")
	if err != nil || generated || string(again) != string(der) {
		t.Fatalf("second: generated %v, %v, same %v", generated, err, string(again) == string(der))
	}
	pemKey, alg, err := publicKeyPEM(der)
	if err != nil || alg != "ecc" || len(pemKey) == 0 {
		t.Fatalf("publicKeyPEM: %s, %v", alg, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "510000000000000000000001.p256.pem")); err != nil {
		t.Fatal(err)
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	every(ctx, 10*time.Millisecond, func() { n.Add(1) })
	every(ctx, 0, func() { t.Error("d = 0 called fn") })
	time.Sleep(200 * time.Millisecond)
	cancel()
	got := n.Load()
	time.Sleep(50 * time.Millisecond)
	if got < 5 || n.Load() > got+1 {
		t.Errorf("%d calls in 200 ms, %d after cancel", got, n.Load()-got)
	}
}
