package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// versionLine is what `wick version` prints, on three lines: the version (set with
// -ldflags "-X main.version=..." or, without it, the module version Go
// stamped into the binary), the commit and whether the tree had
// uncommitted changes (vcs.revision, vcs.modified), and the Go release.
// info may be nil (a binary built without module support).
func versionLine(ldflagsVersion string, info *debug.BuildInfo) string {
	v := ldflagsVersion
	var commit, when, goVersion string
	modified := false
	if info != nil {
		if v == "" || v == "dev" {
			if m := info.Main.Version; m != "" && m != "(devel)" {
				v = m
			}
		}
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "vcs.time":
				when = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "wick %s\n", v)
	switch {
	case commit == "":
		b.WriteString("commit  unknown (built outside a Git checkout)\n")
	default:
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "with uncommitted changes")
		}
		fmt.Fprintf(&b, "commit  %s", commit)
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
		b.WriteString("\n")
	}
	if goVersion != "" {
		fmt.Fprintf(&b, "go      %s\n", goVersion)
	}
	return b.String()
}

// buildInfo returns the binary's build information, or nil.
func buildInfo() *debug.BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return info
}
