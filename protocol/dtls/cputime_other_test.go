//go:build !linux

package dtls

import "time"

// cpuNow falls back to wall time where the process CPU clock is not read.
func cpuNow() int64 { return time.Now().UnixNano() }
