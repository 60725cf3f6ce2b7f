package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

func TestServerKeysAndBlob(t *testing.T) {
	cfg := testConfig(t)
	k1, err := LoadServerKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadServerKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.RSA.Equal(k2.RSA) || !k1.EC.Equal(k2.EC) {
		t.Fatal("keys changed between loads")
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"server_key.pem", 0o600}, {"server_key.pub.pem", 0o644}, {"server_key.pub.der", 0o644},
		{"server_ec_key.pem", 0o600}, {"server_ec_key.pub.der", 0o644}} {
		fi, err := os.Stat(filepath.Join(cfg.Data, f.name))
		if err != nil || fi.Mode().Perm() != f.mode {
			t.Errorf("%s: %v, mode %v; want %v", f.name, err, fi, f.mode)
		}
	}
	pubDER, _ := os.ReadFile(filepath.Join(cfg.Data, "server_key.pub.der"))
	if len(pubDER) != protocol.ServerPublicKeyDER {
		t.Errorf("server_key.pub.der has %d bytes; want %d", len(pubDER), protocol.ServerPublicKeyDER)
	}

	tests := []struct {
		transport string
		host      string
		port      uint16
		pubFile   string
		size      int
	}{
		{"tcp", "192.168.1.10", 5683, "server_key.pub.der", 512},
		{"tcp", "cloud.example.com", 0, "server_key.pub.der", 512},
		{"udp", "cloud.example.com", 5684, "server_ec_key.pub.der", 320},
	}
	for _, tt := range tests {
		blob, err := ServerKeyBlob(cfg, tt.transport, tt.host, tt.port)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.transport, tt.host, err)
		}
		if len(blob) != tt.size {
			t.Errorf("%s blob: %d bytes; want %d", tt.transport, len(blob), tt.size)
		}
		tr := protocol.TransportTCP
		if tt.transport == "udp" {
			tr = protocol.TransportUDP
		}
		got, err := protocol.DecodeServerKeyBlob(tr, blob)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(cfg.Data, tt.pubFile))
		if !bytes.Equal(got.KeyDER, want) || got.Host != tt.host || got.Port != tt.port {
			t.Errorf("%s blob decodes to host %q port %d key match %v", tt.transport, got.Host, got.Port, bytes.Equal(got.KeyDER, want))
		}
	}
	if _, err := ServerKeyBlob(cfg, "sctp", "h", 1); err == nil {
		t.Error("unknown transport accepted")
	}
}
