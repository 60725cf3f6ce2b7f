//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

import "os"

// tryLock is a no-op where flock(2) is missing: the data directory is not
// protected against a second server there (docs/operations.md, The data
// directory).
func tryLock(*os.File) (held bool, err error) { return true, nil }
