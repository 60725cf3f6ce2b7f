//go:build !linux

package p256

import "time"

// cpuNow falls back to wall time where the process CPU clock is not read.
func cpuNow() int64 { return time.Now().UnixNano() }
