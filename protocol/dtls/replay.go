package dtls

// ReplayWindow is the anti-replay sliding window of RFC 6347, section
// 4.1.2.6, over the 64 most recent sequence numbers of one epoch. Check a
// record's sequence number before opening it and Mark it only after it
// authenticated, so forged records cannot move the window. The zero value is
// an empty window. A ReplayWindow is not safe for concurrent use.
type ReplayWindow struct {
	latest uint64 // highest sequence number marked
	bits   uint64 // bit i set: latest-i was marked
	used   bool   // any sequence number marked
}

// replayWindowSize is the number of sequence numbers the window remembers.
const replayWindowSize = 64

// Check reports whether seq is new: above the window, or inside it and not
// yet marked. Sequence numbers older than the window are rejected.
func (w *ReplayWindow) Check(seq uint64) bool {
	if !w.used || seq > w.latest {
		return true
	}
	d := w.latest - seq
	if d >= replayWindowSize {
		return false
	}
	return w.bits&(1<<d) == 0
}

// Mark records seq as received, sliding the window forward when seq is the
// newest so far.
func (w *ReplayWindow) Mark(seq uint64) {
	switch {
	case !w.used:
		w.used, w.latest, w.bits = true, seq, 1
	case seq > w.latest:
		d := seq - w.latest
		if d >= replayWindowSize {
			w.bits = 1
		} else {
			w.bits = w.bits<<d | 1
		}
		w.latest = seq
	default:
		if d := w.latest - seq; d < replayWindowSize {
			w.bits |= 1 << d
		}
	}
}

// Reset empties the window, as at the start of a new epoch.
func (w *ReplayWindow) Reset() { *w = ReplayWindow{} }

// State returns the window for saving with a session: the highest sequence
// number marked and the bitmap of the 64 numbers up to it, bit i standing
// for latest-i (docs/dtls.md, Replay window). An empty window has bitmap 0.
func (w *ReplayWindow) State() (latest, bitmap uint64) {
	if !w.used {
		return 0, 0
	}
	return w.latest, w.bits
}

// RestoreReplayWindow rebuilds a window saved with State. A bitmap of 0 is an
// empty window; bit 0 is always taken as set, since latest was marked.
func RestoreReplayWindow(latest, bitmap uint64) ReplayWindow {
	if bitmap == 0 {
		return ReplayWindow{}
	}
	return ReplayWindow{latest: latest, bits: bitmap | 1, used: true}
}
