package p256

import (
	"syscall"
	"unsafe"
)

// cpuNow returns the CPU time this process has used, in nanoseconds, every
// thread counted (CLOCK_PROCESS_CPUTIME_ID): the measure `openssl speed`
// divides by, unaffected by other processes on a shared machine.
func cpuNow() int64 {
	var ts syscall.Timespec
	const clockProcessCPUTimeID = 2
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}
