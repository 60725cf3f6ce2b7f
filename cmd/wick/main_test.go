package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no args", wantCode: 2, wantErr: "Usage:"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantOut: "wick serve"},
		{name: "version", args: []string{"version"}, wantCode: 0, wantOut: "wick "},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, wantErr: "unknown command"},
		{name: "serve bad flag", args: []string{"serve", "--nope"}, wantCode: 2},
		{name: "serve help", args: []string{"serve", "-h"}, wantCode: 0, wantErr: "-http"},
		{name: "user create needs stdin flag", args: []string{"user", "create", "a@b.c", "--data", dir}, wantCode: 2, wantErr: "--password-stdin is required"},
		{name: "user create refuses a new data directory", args: []string{"user", "create", "dev@example.com", "--password-stdin", "--data", dir + "/typo"},
			stdin: "a-long-password\n", wantCode: 1, wantErr: "data directory " + dir + "/typo does not exist"},
		{name: "user create refuses a directory without database", args: []string{"user", "create", "dev@example.com", "--password-stdin", "--data", dir},
			stdin: "a-long-password\n", wantCode: 1, wantErr: "database " + dir + "/wick.db does not exist. Pass the --data DIR"},
		{name: "user create --init", args: []string{"user", "create", "dev@example.com", "--password-stdin", "--data", dir, "--init"},
			stdin: "a-long-password\n", wantCode: 0, wantOut: "created user dev@example.com",
			wantErr: "wick: using data directory " + dir + ", database sqlite:" + dir + "/wick.db"},
		{name: "user create in existing data", args: []string{"user", "create", "other@example.com", "--password-stdin", "--data", dir},
			stdin: "a-long-password\n", wantCode: 0, wantOut: "created user other@example.com", wantErr: "using data directory " + dir},
		{name: "user create duplicate", args: []string{"user", "create", "--data", dir, "dev@example.com", "--password-stdin"},
			stdin: "a-long-password\n", wantCode: 1, wantErr: "already exists"},
		{name: "user create short password", args: []string{"user", "create", "x@example.com", "--password-stdin", "--data", dir},
			stdin: "short\n", wantCode: 1, wantErr: "at least 8"},
		{name: "user create bad email", args: []string{"user", "create", "nope", "--password-stdin", "--data", dir},
			stdin: "a-long-password\n", wantCode: 1, wantErr: "not an e-mail"},
		{name: "keys usage", args: []string{"keys"}, wantCode: 2, wantErr: "wick keys server"},
		{name: "keys server refuses a new data directory", args: []string{"keys", "server", "--host", "10.1.2.3", "--out", dir + "/blob.der", "--data", dir + "/nope"},
			wantCode: 1, wantErr: "--init"},
		{name: "keys server needs host", args: []string{"keys", "server", "--out", dir + "/blob", "--data", dir}, wantCode: 2},
		{name: "keys server", args: []string{"keys", "server", "--host", "10.1.2.3", "--port", "5683", "--out", dir + "/blob.der", "--data", dir},
			wantCode: 0, wantOut: "512 bytes"},
		{name: "keys server udp", args: []string{"keys", "server", "--host", "cloud.example.com", "--protocol", "udp", "--out", dir + "/blob-udp.der", "--data", dir},
			wantCode: 0, wantOut: "320 bytes"},
		{name: "keys server --udp", args: []string{"keys", "server", "--host", "cloud.example.com", "--udp", "--out", dir + "/blob-udp2.der", "--data", dir},
			wantCode: 0, wantOut: "320 bytes, udp"},
		{name: "keys server bad protocol", args: []string{"keys", "server", "--host", "h", "--protocol", "sctp", "--out", dir + "/x", "--data", dir},
			wantCode: 1, wantErr: "unknown transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}
