package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	pemlib "encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/server/servertest"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// TestDeviceCommand runs `wick device provision` with every key form and
// the mistakes, then checks the store.
func TestDeviceCommand(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join("..", "..", "protocol", "testdata")
	key := func(name string) string { return filepath.Join(keys, name) }
	pem, err := os.ReadFile(key("device_key.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), maxKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	// Gen 3 keys: a fresh P-256 key as SEC 1 DER and as PKCS#8 PEM (what
	// `particle keys save` and some tools write), and a P-384 key.
	ec1, ec2 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	sec1, err := x509.MarshalECPrivateKey(ec1)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ec2)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := x509.MarshalECPrivateKey(newECKey(t, elliptic.P384()))
	if err != nil {
		t.Fatal(err)
	}
	sec1File, pkcs8File, p384File := filepath.Join(dir, "ec1.der"), filepath.Join(dir, "ec2.pem"), filepath.Join(dir, "p384.der")
	for file, b := range map[string][]byte{
		sec1File: sec1, pkcs8File: pemlib.EncodeToMemory(&pemlib.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), p384File: p384,
	} {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		usage   bool   // want errUsage
		wantErr string // want an error containing it
		wantOut string
	}{
		{name: "no subcommand", usage: true},
		{name: "unknown subcommand", args: []string{"remove"}, usage: true},
		{name: "help", args: []string{"-h"}, wantOut: "wick device provision ID --key FILE"},
		{name: "needs a key", args: []string{"provision", "ab0000000000000000000001", "--data", dir}, usage: true},
		{name: "needs an ID", args: []string{"provision", "--key", key("device_key.pub.pem"), "--data", dir}, usage: true},
		{name: "bad flag", args: []string{"provision", "--nope"}, usage: true},
		{name: "refuses a new data directory", args: []string{"provision", "AB0000000000000000000001", "--key", key("device_key.pub.pem"), "--data", dir},
			wantErr: "does not exist. Pass the --data DIR"},
		{name: "SPKI PEM, upper-case ID", args: []string{"provision", "AB0000000000000000000001", "--key", key("device_key.pub.pem"), "--data", dir, "--init"},
			wantOut: "provisioned device ab0000000000000000000001 (rsa key)"},
		{name: "SPKI DER", args: []string{"provision", "--data", dir, "--key", key("device_key.pub.der"), "ab0000000000000000000002"},
			wantOut: "provisioned device ab0000000000000000000002 (rsa key)"},
		{name: "PKCS#1 DER", args: []string{"provision", "ab0000000000000000000003", "--key", key("device_key.rsapub.der"), "--data", dir},
			wantOut: "provisioned device ab0000000000000000000003 (rsa key)"},
		{name: "EC DER", args: []string{"provision", "ab0000000000000000000004", "--key", key("device_ec_key.pub.der"), "--data", dir},
			wantOut: "provisioned device ab0000000000000000000004 (ecc key)"},
		{name: "EC private key PEM after EC PARAMETERS, as openssl ecparam -genkey writes it",
			args:    []string{"provision", "ab0000000000000000000004", "--key", key("device_ec_key.pem"), "--data", dir},
			wantOut: "provisioned device ab0000000000000000000004 (ecc key, public half of the private key file)"},
		{name: "EC private key SEC 1 DER", args: []string{"provision", "ab000000000000000000000a", "--key", sec1File, "--data", dir},
			wantOut: "provisioned device ab000000000000000000000a (ecc key, public half of the private key file)"},
		{name: "EC private key PKCS#8 PEM", args: []string{"provision", "ab000000000000000000000b", "--key", pkcs8File, "--data", dir},
			wantOut: "provisioned device ab000000000000000000000b (ecc key, public half of the private key file)"},
		{name: "EC key of another device", args: []string{"provision", "ab000000000000000000000c", "--key", key("device_ec_key.pub.pem"), "--data", dir},
			wantErr: "device ab0000000000000000000004 already has this key"},
		{name: "P-384 private key", args: []string{"provision", "ab000000000000000000000c", "--key", p384File, "--data", dir},
			wantErr: "curve P-384: want P-256"},
		{name: "stdin", args: []string{"provision", "ab0000000000000000000005", "--key", "-", "--data", dir}, stdin: string(pem),
			wantOut: "provisioned device ab0000000000000000000005 (rsa key)"},
		{name: "bad ID", args: []string{"provision", "nope", "--key", key("device_key.pub.pem"), "--data", dir},
			wantErr: "not a device ID"},
		{name: "private key PEM", args: []string{"provision", "ab0000000000000000000006", "--key", key("device_key.pem"), "--data", dir},
			wantOut: "provisioned device ab0000000000000000000006 (rsa key, public half of the private key file)"},
		{name: "private key DER", args: []string{"provision", "ab0000000000000000000007", "--key", key("device_key.der"), "--data", dir},
			wantOut: "provisioned device ab0000000000000000000007 (rsa key, public half of the private key file)"},
		{name: "broken private key", args: []string{"provision", "ab0000000000000000000008", "--key", "-", "--data", dir},
			stdin: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", wantErr: "unreadable private key"},
		{name: "missing file", args: []string{"provision", "ab0000000000000000000006", "--key", filepath.Join(dir, "none.pem"), "--data", dir},
			wantErr: "read key"},
		{name: "huge file", args: []string{"provision", "ab0000000000000000000006", "--key", big, "--data", dir},
			wantErr: "larger than"},
		{name: "unknown product", args: []string{"provision", "ab0000000000000000000006", "--key", key("device_key.pub.pem"),
			"--product", "42", "--data", dir}, wantErr: "product 42 does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := deviceCommand(tt.args, strings.NewReader(tt.stdin), &out, &errb)
			switch {
			case tt.usage:
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v; want errUsage", err)
				}
				if tt.name != "bad flag" && !strings.Contains(errb.String(), "Usage: wick device provision") {
					t.Errorf("stderr %q lacks the usage", errb.String())
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v; stderr %s", err, errb.String())
				}
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
		})
	}

	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spki, err := os.ReadFile(key("device_key.pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ab0000000000000000000001", "ab0000000000000000000002", "ab0000000000000000000003", "ab0000000000000000000005",
		"ab0000000000000000000006", "ab0000000000000000000007"} {
		d, err := db.DeviceByID(context.Background(), id)
		if err != nil {
			t.Fatalf("device %s: %v", id, err)
		}
		if d.KeyAlgorithm != "rsa" || !bytes.Equal(d.PublicKey, spki) {
			t.Errorf("device %s holds %s %x; want the canonical SPKI of device_key", id, d.KeyAlgorithm, d.PublicKey)
		}
	}
	ecSPKI, err := os.ReadFile(key("device_ec_key.pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	ecWant := map[string][]byte{"ab0000000000000000000004": ecSPKI}
	for id, k := range map[string]*ecdsa.PrivateKey{"ab000000000000000000000a": ec1, "ab000000000000000000000b": ec2} {
		if ecWant[id], err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range ecWant {
		d, err := db.DeviceByID(context.Background(), id)
		if err != nil {
			t.Fatalf("device %s: %v", id, err)
		}
		if d.KeyAlgorithm != "ecc" || !bytes.Equal(d.PublicKey, want) {
			t.Errorf("device %s holds %s %x; want ecc %x", id, d.KeyAlgorithm, d.PublicKey, want)
		}
		// Found through the key index, as the DTLS handshake finds it.
		if d, err := db.DeviceByPublicKey(context.Background(), want); err != nil || d.ID != id {
			t.Errorf("DeviceByPublicKey(key of %s) = %v, %v", id, d, err)
		}
	}
	if n, err := db.CountDevices(context.Background()); err != nil || n != 9 {
		t.Errorf("CountDevices = %d, %v; want 9", n, err)
	}
}

// newECKey generates a key on curve c.
func newECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzPublicHalf: any key file either passes through unchanged (the API's
// parser judges it), fails with an error, or yields a public key that
// parses; it never panics.
func FuzzPublicHalf(f *testing.F) {
	for _, name := range []string{"device_key.pem", "device_key.der", "device_key.pub.pem", "device_key.pub.der",
		"device_ec_key.pem", "device_ec_key.pub.der"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "protocol", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, key []byte) {
		pub, derived, err := publicHalf(key)
		switch {
		case err != nil:
			if derived || pub != nil {
				t.Fatalf("error %v with output", err)
			}
		case !derived:
			if !bytes.Equal(pub, key) {
				t.Fatal("a key that is not private was changed")
			}
		default:
			if _, err := protocol.ParsePublicKey(pub); err != nil {
				t.Fatalf("derived public key does not parse: %v", err)
			}
		}
	})
}

// TestDeviceProvisionRemote runs `wick device provision --api` against a
// real server: the key goes through sdk/cloud as `particle keys send`
// sends it, RSA and P-256 alike, and a bad token is refused.
func TestDeviceProvisionRemote(t *testing.T) {
	w := servertest.Start(t)
	owner := w.Login(t)
	tok := owner.Token
	dir := t.TempDir()
	ecFile := filepath.Join(dir, "ec.der")
	sec1, err := x509.MarshalECPrivateKey(newECKey(t, elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ecFile, sec1, 0o600); err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join("..", "..", "protocol", "testdata", "device_key.pub.pem")
	for _, tt := range []struct {
		id, key, token, want string
		wantErr              bool
	}{
		{"c30000000000000000000001", rsaFile, tok, "(rsa key)", false},
		{"C30000000000000000000002", ecFile, tok, "(ecc key, public half of the private key file)", false},
		{"c30000000000000000000003", rsaFile, "not-a-token", "", true},
	} {
		var out, errOut bytes.Buffer
		err := deviceCommand([]string{"provision", tt.id, "--key", tt.key, "--api", w.API, "--token", tt.token}, nil, &out, &errOut)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Errorf("%s: err = %v, want a 401", tt.id, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v (%s)", tt.id, err, errOut.String())
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: output %q, want %q", tt.id, out.String(), tt.want)
		}
		d, err := owner.GetDevice(t.Context(), strings.ToLower(tt.id))
		if err != nil || d.Owner == nil || *d.Owner != servertest.Owner {
			t.Errorf("%s: device = %+v, %v; want it provisioned and owned by the token's user", tt.id, d, err)
		}
	}
}
