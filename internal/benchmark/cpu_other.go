//go:build !unix

package benchmark

import "time"

// processCPU returns zero: this platform's CPU time is not read.
func processCPU() time.Duration { return 0 }
