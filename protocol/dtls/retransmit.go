package dtls

import "time"

// retransmitter is a handshake's flight timer (RFC 6347 §4.2.4): armed
// after every flight but the last, doubling from an initial timeout up to
// a cap, failing with ErrHandshakeTimeout after a number of resends. Time
// is passed in; it starts no goroutine.
type retransmitter struct {
	deadline         time.Time // zero: not armed
	initial, timeout time.Duration
	max              time.Duration
	resent, tries    int
}

// newRetransmitter returns a timer with the given settings, zero or
// negative ones replaced by the Default constants.
func newRetransmitter(initial, max time.Duration, tries int) retransmitter {
	if initial <= 0 {
		initial = DefaultInitialTimeout
	}
	if max <= 0 {
		max = DefaultMaxTimeout
	}
	if tries <= 0 {
		tries = DefaultMaxRetransmits
	}
	return retransmitter{initial: initial, timeout: initial, max: max, tries: tries}
}

// arm starts the timer for a flight sent at now, or stops it when the
// flight is the last one (nothing answers it).
func (r *retransmitter) arm(now time.Time, last bool) {
	if last {
		r.stop()
		return
	}
	r.deadline = now.Add(r.timeout)
}

// stop disarms the timer.
func (r *retransmitter) stop() { r.deadline = time.Time{} }

// restart begins a new flight's count of resends from the initial timeout.
func (r *retransmitter) restart() { r.resent, r.timeout = 0, r.initial }

// next returns the deadline; ok is false when the timer is not armed.
func (r *retransmitter) next() (deadline time.Time, ok bool) {
	return r.deadline, !r.deadline.IsZero()
}

// expire reports whether the flight is due to be resent at now, counting
// the resend and doubling the timeout; once the resends are used up it
// returns ErrHandshakeTimeout.
func (r *retransmitter) expire(now time.Time) (due bool, err error) {
	if r.deadline.IsZero() || now.Before(r.deadline) {
		return false, nil
	}
	if r.resent >= r.tries {
		return false, ErrHandshakeTimeout
	}
	r.resent++
	r.timeout = min(2*r.timeout, r.max)
	return true, nil
}
