// Package envflag is the command-line handling the Go examples share: flags
// whose defaults come from environment variables, so that a secret such as
// a token or a client secret can stay out of the process list.
package envflag

import (
	"flag"
	"io"
)

// Set is a flag set whose string flags default to an environment variable.
type Set struct {
	*flag.FlagSet
	getenv func(string) string
}

// New returns a set for the command name that reads the environment through
// getenv (os.Getenv, or a map in tests) and reports errors only by return
// value.
func New(name string, getenv func(string) string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Set{FlagSet: fs, getenv: getenv}
}

// String defines the string flag -name stored in p. Its default is the
// environment variable env when set and not empty, else fallback; usage
// gets "(env ENV)" appended.
func (s *Set) String(p *string, name, env, fallback, usage string) {
	def := fallback
	if v := s.getenv(env); v != "" {
		def = v
	}
	s.StringVar(p, name, def, usage+" (env "+env+")")
}
