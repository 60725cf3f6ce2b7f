package dtls

import (
	"fmt"
	"time"
)

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

// flightMessage is one record of a flight, kept so the flight can be
// resent with fresh record sequence numbers.
type flightMessage struct {
	typ     ContentType
	epoch   uint16
	payload []byte
}

// flights is what both sides of a handshake keep to send and resend their
// flights: the flight sent last, the epoch-0 record counter, the timer and
// the error that ended the handshake. ServerHandshake and ClientHandshake
// embed it.
type flights struct {
	flight []flightMessage
	seq0   uint64 // next epoch-0 record sequence number
	timer  retransmitter
	err    error // set once the handshake has failed
}

// sendFlight encodes the current flight as one datagram with fresh record
// sequence numbers: epoch-0 records in plaintext, epoch-1 records sealed by
// sess (which owns the epoch-1 counter, so a resent Finished never reuses a
// nonce that application data has used). It arms the timer unless last
// (nothing answers the final flight).
func (f *flights) sendFlight(now time.Time, sess *Session, last bool) ([][]byte, error) {
	n := 0
	for _, m := range f.flight {
		n += CIDHeaderLen + len(m.payload) + 1 + PaddingGranularity + Overhead
	}
	dgram := make([]byte, 0, n)
	for _, m := range f.flight {
		var err error
		if m.epoch == 0 {
			start := len(dgram)
			dgram, err = AppendHeader(dgram, &Header{Type: m.typ, Version: Version, Seq: f.seq0, Length: uint16(len(m.payload))})
			if err == nil {
				dgram = append(dgram, m.payload...)
			} else {
				dgram = dgram[:start]
			}
			f.seq0++
		} else {
			dgram, err = sess.SealType(dgram, m.typ, m.payload)
		}
		if err != nil {
			return nil, fmt.Errorf("dtls: flight: %w", err)
		}
	}
	f.timer.arm(now, last)
	return [][]byte{dgram}, nil
}

// handleTimeout resends the current flight when its timer has expired at
// now, doubling the timeout up to the cap (RFC 6347 §4.2.4). Once the
// resends are used up it ends the handshake through fail with
// ErrHandshakeTimeout.
func (f *flights) handleTimeout(now time.Time, sess *Session, last bool, fail func(error) error) ([][]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if due, err := f.timer.expire(now); err != nil {
		return nil, fail(err)
	} else if !due {
		return nil, nil
	}
	return f.sendFlight(now, sess, last)
}

// stop records err as final, disarms the timer and drops the flight.
func (f *flights) stop(err error) {
	f.err = err
	f.timer.stop()
	f.flight = nil
}
