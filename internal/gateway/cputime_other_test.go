//go:build !unix

package gateway

// cpuTime is not measured on this platform.
func cpuTime() float64 { return 0 }
