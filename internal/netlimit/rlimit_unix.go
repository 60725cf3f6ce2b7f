//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package netlimit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// RaiseNoFile raises the limit on open descriptors (RLIMIT_NOFILE) as far
// as the process may and returns the soft limit in effect afterwards: the
// soft limit to the hard limit and, where the process is allowed to
// (Linux, CAP_SYS_RESOURCE), both to the kernel's ceiling fs.nr_open. When
// the soft limit cannot be raised (macOS refuses more than OPEN_MAX), it
// stays as it was and is returned with the error.
func RaiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("netlimit: get RLIMIT_NOFILE: %w", err)
	}
	// A privileged process may lift the hard limit too; a refusal leaves
	// it where it is.
	if ceil := nrOpen(); ceil > uint64(lim.Max) {
		want := syscall.Rlimit{Cur: ceil, Max: ceil}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			return ceil, nil
		}
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

// nrOpen returns Linux's fs.nr_open, the most descriptors a process can be
// allowed, or 0 where there is none to read.
func nrOpen() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
