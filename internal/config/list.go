package config

import "strings"

// List is a flag.Value that appends comma-separated or repeated values to
// the slice it points to, skipping empty ones: `--bind a,b --bind c`.
type List struct{ P *[]string }

// String returns the values joined by commas.
func (l List) String() string {
	if l.P == nil {
		return ""
	}
	return strings.Join(*l.P, ",")
}

// Set appends the comma-separated values of s.
func (l List) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.P = append(*l.P, v)
		}
	}
	return nil
}
