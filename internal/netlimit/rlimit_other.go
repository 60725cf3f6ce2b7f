//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package netlimit

// RaiseNoFile reports a generous limit where the system has no
// RLIMIT_NOFILE (Windows): the caps then only guard against one client
// holding everything.
func RaiseNoFile() (uint64, error) { return 1 << 16, nil }
