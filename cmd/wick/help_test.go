package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// argNames are the argument names the flag package derives from a flag's
// type. Any other word after a flag's name in the help comes from a
// back-quoted word in its usage text, which the flag package takes as the
// argument's name (`wick sim -h` once showed "-server-key wick keys
// server").
var argNames = map[string]bool{"string": true, "int": true, "int64": true, "uint": true, "uint64": true,
	"float": true, "duration": true, "value": true}

// TestHelpRendering renders the help of every subcommand and checks each
// flag's line: a known argument name, a usage text, no stray back quote.
func TestHelpRendering(t *testing.T) {
	commands := [][]string{
		{"serve", "-h"},
		{"user", "create", "-h"},
		{"user", "password", "-h"},
		{"team", "invites", "-h"},
		{"team", "accept", "-h"},
		{"keys", "server", "-h"},
		{"device", "provision", "-h"},
		{"sim", "-h"},
		{"bench", "-h"},
	}
	for _, args := range commands {
		t.Run(strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
			}
			help := out.String() + errb.String()
			if !strings.Contains(help, "Usage: wick "+args[0]) {
				t.Errorf("help lacks a usage line:\n%s", help)
			}
			if strings.Contains(help, "`") {
				t.Errorf("help holds a back quote:\n%s", help)
			}
			lines := strings.Split(help, "\n")
			flags := 0
			for i, line := range lines {
				if !strings.HasPrefix(line, "  -") {
					continue
				}
				flags++
				f := strings.Fields(line)
				if len(f) > 2 || (len(f) == 2 && !argNames[f[1]]) {
					t.Errorf("flag line %q: the argument name is not a type; a back-quoted word in the usage?", line)
				}
				if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    \t") || len(strings.TrimSpace(lines[i+1])) < 10 {
					t.Errorf("flag %s has no usage text", f[0])
				}
			}
			if flags < 3 {
				t.Errorf("only %d flags rendered:\n%s", flags, help)
			}
		})
	}
	t.Run("help COMMAND", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run([]string{"help", "sim"}, strings.NewReader(""), &out, &errb); code != 0 ||
			!strings.Contains(errb.String(), "  -server-key string\n") {
			t.Errorf("wick help sim: exit %d\n%s", code, errb.String())
		}
	})
}

func TestVersionLine(t *testing.T) {
	info := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/wick-cloud/wick", Version: version}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "68b8884abcdef0123456789abcdef0123456789a"}
	when := debug.BuildSetting{Key: "vcs.time", Value: "2026-12-06T06:50:00Z"}
	tests := []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo
		want    string
	}{
		{"release via ldflags", "v1.2.0", info("(devel)", rev, when),
			"wick v1.2.0\ncommit  68b8884abcdef0123456789abcdef0123456789a (2026-12-06T06:50:00Z)\ngo      go1.26.8\n"},
		{"module version, modified tree", "dev", info("v0.0.0-20261206065000-68b8884abcde+dirty", rev, when, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			"wick v0.0.0-20261206065000-68b8884abcde+dirty\ncommit  68b8884abcdef0123456789abcdef0123456789a (2026-12-06T06:50:00Z, with uncommitted changes)\ngo      go1.26.8\n"},
		{"no VCS information", "dev", info("(devel)"), "wick dev\ncommit  unknown (built outside a Git checkout)\ngo      go1.26.8\n"},
		{"no build information", "", nil, "wick dev\ncommit  unknown (built outside a Git checkout)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.ldflags, tt.info); got != tt.want {
				t.Errorf("versionLine = %q\nwant          %q", got, tt.want)
			}
		})
	}
	var out bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "wick ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("wick version: exit %d, %q", code, out.String())
	}
}
