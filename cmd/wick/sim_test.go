package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

func TestSimCommand(t *testing.T) {
	key, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devicetest.NewServer(key)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.TrustOnFirstUse = true
	dir := t.TempDir()
	pub, _ := protocol.MarshalPublicKeyPEM(srv.PublicKey)
	os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pub, 0o644)

	tests := []struct {
		name    string
		args    []string
		wantErr error  // errors.Is target; nil means success
		errText string // substring of a non-usage error
		stdout  string
		stderr  string
	}{
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp, stderr: "--server"},
		{name: "no server key", args: nil, wantErr: errUsage, stderr: "--server-key"},
		{name: "bad flag", args: []string{"--frobnicate"}, wantErr: errUsage},
		{name: "positional", args: []string{"--data", dir, "now"}, wantErr: errUsage, stderr: "unexpected argument"},
		{name: "two devices", args: []string{"--server", srv.Addr, "--data", dir, "--count", "2",
			"--duration", "500ms", "--keys-dir", filepath.Join(dir, "keys")},
			stdout: "connected     2", stderr: "sim: connected 2/2"},
		{name: "nothing listens", args: []string{"--server", "127.0.0.1:1", "--data", dir, "--count", "1",
			"--keys-dir", filepath.Join(dir, "keys")},
			errText: "sim: no device came online: 1 device(s): nothing listens at 127.0.0.1:1: is wick serve running",
			stdout:  "never online  1: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := simCommand(tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v; want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %v; want %q", err, tt.errText)
				}
			case err != nil:
				t.Fatalf("error %v\nstderr: %s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestSimExitCode: a run in which no device can come online ends on its
// own (no --duration) with exit status 1 and the reason on stderr.
func TestSimExitCode(t *testing.T) {
	dir := t.TempDir()
	key, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := protocol.MarshalPublicKeyPEM(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "server_key.pub.pem"), pub, 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--server", "127.0.0.1:1", "--data", dir, "--count", "2", "--keys-dir", filepath.Join(dir, "keys")},
		strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "wick: sim: no device came online: 2 device(s): nothing listens at 127.0.0.1:1") {
		t.Errorf("exit %d; want 1 with the reason\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}
