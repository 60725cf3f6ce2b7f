package config

import (
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantPos  []string
		wantHTTP string
		wantSign bool
		wantWin  time.Duration
		wantErr  bool
	}{
		{name: "defaults", wantHTTP: "127.0.0.1:8080", wantWin: 5 * time.Minute},
		{name: "flag", args: []string{"--http", ":9000"}, wantHTTP: ":9000", wantWin: 5 * time.Minute},
		{name: "env", env: map[string]string{"WICK_HTTP": ":7000", "WICK_SIGNUP": "true", "WICK_TOKEN_WINDOW": "1m"},
			wantHTTP: ":7000", wantSign: true, wantWin: time.Minute},
		{name: "flag beats env", args: []string{"-http=:1"}, env: map[string]string{"WICK_HTTP": ":2"}, wantHTTP: ":1", wantWin: 5 * time.Minute},
		{name: "interleaved positionals", args: []string{"a@b.c", "--signup", "x", "--http", ":3", "y"},
			wantPos: []string{"a@b.c", "x", "y"}, wantHTTP: ":3", wantSign: true, wantWin: 5 * time.Minute},
		{name: "double dash", args: []string{"--", "--http"}, wantPos: []string{"--http"}, wantHTTP: "127.0.0.1:8080", wantWin: 5 * time.Minute},
		{name: "bad env value", env: map[string]string{"WICK_SIGNUP": "maybe"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Register(fs)
			pos, err := Parse(fs, tt.args, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !reflect.DeepEqual(pos, tt.wantPos) && !(len(pos) == 0 && len(tt.wantPos) == 0) {
				t.Errorf("positional = %q; want %q", pos, tt.wantPos)
			}
			if c.HTTP != tt.wantHTTP || c.Signup != tt.wantSign || c.TokenWindow != tt.wantWin {
				t.Errorf("got http=%q signup=%v window=%v; want %q %v %v", c.HTTP, c.Signup, c.TokenWindow, tt.wantHTTP, tt.wantSign, tt.wantWin)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	c := Default()
	c.Data = "/tmp/w"
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if c.DB != "sqlite:/tmp/w/wick.db" || c.SecretKeyFile != "/tmp/w/secret.key" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Errorf("derived defaults: db=%q key=%q url=%q", c.DB, c.SecretKeyFile, c.PublicURL)
	}
	bad := Default()
	bad.TokenRate = 0
	if err := bad.Resolve(); err == nil {
		t.Error("token-rate 0 accepted")
	}
	if got := EnvName("device-tcp"); got != "WICK_DEVICE_TCP" {
		t.Errorf("EnvName = %q", got)
	}
}
