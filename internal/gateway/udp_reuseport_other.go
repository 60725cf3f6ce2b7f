//go:build !linux

package gateway

import "syscall"

// reusePortSupported: elsewhere ListenUDP opens one socket.
const reusePortSupported = false

func setReusePort(_, _ string, _ syscall.RawConn) error { return nil }
