//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package netlimit

import (
	"fmt"
	"syscall"
)

// RaiseNoFile raises the soft limit on open descriptors (RLIMIT_NOFILE)
// to the hard limit and returns the soft limit in effect afterwards. When
// the hard limit cannot be set (macOS refuses more than OPEN_MAX), the
// limit stays as it was and is returned with the error.
func RaiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("netlimit: get RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), nil
	}
	want := lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(lim.Cur), fmt.Errorf("netlimit: raise RLIMIT_NOFILE from %d to %d: %w", lim.Cur, lim.Max, err)
	}
	return uint64(want.Cur), nil
}
