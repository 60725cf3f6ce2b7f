package netlimit

import (
	"errors"
	"syscall"
)

// isTemporary reports whether an accept error passes with time: the
// process or system is out of descriptors or buffers, or the peer gave up
// before the accept.
func isTemporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isOutOfDescriptors reports whether err says the process (EMFILE) or the
// system (ENFILE) has no descriptor left.
func isOutOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
