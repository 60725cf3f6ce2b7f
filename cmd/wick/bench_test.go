package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestBenchCommand(t *testing.T) {
	keys := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr error  // errors.Is target; nil means success
		stderr  string // substring of stderr
		check   func(t *testing.T, stdout string)
	}{
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp, stderr: "events|calls|list"},
		{name: "no scenario", args: nil, wantErr: errUsage, stderr: "Usage: wick bench"},
		{name: "two scenarios", args: []string{"calls", "list"}, wantErr: errUsage},
		{name: "unknown scenario", args: []string{"fast"}, wantErr: errUsage, stderr: `unknown scenario "fast"`},
		{name: "bad flag", args: []string{"calls", "--frobnicate"}, wantErr: errUsage},
		{name: "url without token", args: []string{"calls", "--url", "http://127.0.0.1:1"}, wantErr: errUsage, stderr: "--token"},
		{name: "calls as JSON", args: []string{"calls", "--devices", "3", "--concurrency", "2", "--duration", "300ms",
			"--warmup", "0", "--keys-dir", keys, "--json"},
			stderr: "sim: connected 3/3", check: func(t *testing.T, stdout string) {
				var r struct {
					Scenario string  `json:"scenario"`
					Devices  int     `json:"devices"`
					Ops      int64   `json:"ops"`
					Errors   int64   `json:"errors"`
					Rate     float64 `json:"rate"`
					Latency  struct {
						P99 float64 `json:"p99"`
					} `json:"latency_ms"`
				}
				if err := json.Unmarshal([]byte(stdout), &r); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
				}
				if r.Scenario != "calls" || r.Devices != 3 || r.Ops <= 0 || r.Errors != 0 || r.Rate <= 0 || r.Latency.P99 <= 0 {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "list as text", args: []string{"list", "--devices", "2", "--concurrency", "1", "--duration", "300ms",
			"--warmup", "0", "--keys-dir", keys, "--progress", "0"},
			check: func(t *testing.T, stdout string) {
				for _, want := range []string{"wick bench list: 2 devices, 1 concurrent clients", "lists/s", "errors       0", "memory"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("stdout lacks %q:\n%s", want, stdout)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := benchCommand(tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v; want %v\nstderr: %s", err, tt.wantErr, stderr.String())
				}
			case err != nil:
				t.Fatalf("error %v\nstderr: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
			if tt.check != nil {
				tt.check(t, stdout.String())
			}
		})
	}
}
