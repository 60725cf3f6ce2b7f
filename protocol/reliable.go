package protocol

import (
	"errors"
	"math/rand/v2"
	"time"
)

// CoAP over UDP reliability (RFC 7252 §4, docs/particle-protocol.md#confirmable-messages-and-retransmission)
// with Particle's timers. Both pieces are pure: the caller passes the time
// in, owns the socket and the timers, and seals each message into its own
// DTLS record. Cached and pending messages are plain CoAP bytes, never
// sealed records: a record resent as is would carry a sequence number the
// peer's replay window has already seen, so every resend is sealed afresh.
//
//	incoming CON  → Dedup.Receive: new → handle, then Dedup.Reply(id, ack)
//	                               duplicate → send the cached replies again
//	outgoing CON  → Outbox.Send; ACK or RST in → Outbox.Ack(id)
//	timer         → Outbox.NextTimeout / HandleTimeout: resend or give up

// Particle's reliability parameters (RFC 7252 §4.8 with an ACK timeout of
// 4 s, which Device OS uses over UDP).
const (
	// AckTimeout is the initial wait for an ACK before the first resend.
	AckTimeout = 4 * time.Second
	// AckRandomFactor scales the initial timeout by a random factor in
	// [1, AckRandomFactor) so that devices do not resend in lockstep.
	AckRandomFactor = 1.5
	// MaxRetransmit is how often a CON is resent before the sender gives up.
	MaxRetransmit = 3
	// MaxTransmitSpan is the longest time from the first transmission of a
	// CON to its last retransmission: 4 s × (2³ − 1) × 1.5 = 42 s.
	MaxTransmitSpan = 42 * time.Second
	// MaxTransmitWait is the longest time from the first transmission of a
	// CON until the sender gives up: 4 s × (2⁴ − 1) × 1.5 = 90 s.
	MaxTransmitWait = 90 * time.Second
	// ExchangeLifetime is how long a message ID stays in use after a CON
	// carrying it was first seen (RFC 7252's 247 s: the transmit span plus
	// two maximum latencies of 100 s plus processing time), and so how
	// long Dedup remembers it.
	ExchangeLifetime = 247 * time.Second
	// DefaultDedupEntries bounds a Dedup whose MaxEntries is zero.
	DefaultDedupEntries = 256
	// DefaultMaxPending bounds an Outbox whose MaxPending is zero: tokens
	// are one byte, so far fewer than 256 requests may be outstanding.
	DefaultMaxPending = 200
)

// Errors returned by Outbox.Send.
var (
	// ErrOutboxFull means MaxPending CONs are already waiting for an ACK.
	ErrOutboxFull = errors.New("protocol: too many unacknowledged confirmable messages")
	// ErrPendingID means a CON with the same message ID is still waiting
	// for its ACK; the ID cannot be reused until it is acknowledged or
	// given up.
	ErrPendingID = errors.New("protocol: message id already pending")
)

// Dedup remembers the message IDs of incoming confirmable messages for
// Lifetime, together with the replies sent for them, so that a
// retransmitted CON is answered from the cache instead of being handled
// twice (RFC 7252 §4.5). One Dedup serves one peer (one session). Its
// memory is bounded by MaxEntries: when full, the oldest ID is forgotten
// early. The zero value is ready to use with the defaults. It is not safe
// for concurrent use.
type Dedup struct {
	// Lifetime is how long an ID is remembered; zero means ExchangeLifetime.
	Lifetime time.Duration
	// MaxEntries bounds the IDs remembered; zero means DefaultDedupEntries.
	MaxEntries int

	ring    []dedupEntry // circular, oldest at head; grows up to MaxEntries
	ids     []uint16     // ring[i].id, kept apart so that a lookup scans 2 bytes per entry
	head, n int
	scratch [][]byte // Receive's result, reused
}

// dedupEntry is one remembered message ID (its ID is in Dedup.ids).
// replies holds every reply back to back, each preceded by its 2-byte
// big-endian length; the buffer is reused when the slot is.
type dedupEntry struct {
	at      time.Time
	replies []byte
}

func (d *Dedup) lifetime() time.Duration {
	if d.Lifetime > 0 {
		return d.Lifetime
	}
	return ExchangeLifetime
}

func (d *Dedup) maxEntries() int {
	if d.MaxEntries > 0 {
		return d.MaxEntries
	}
	return DefaultDedupEntries
}

// Len returns how many message IDs are remembered (expired ones included
// until the next Receive or Expire).
func (d *Dedup) Len() int { return d.n }

// slot returns the ring index of the i-th oldest entry.
func (d *Dedup) slot(i int) int { return (d.head + i) % len(d.ring) }

// Expire forgets the IDs seen at least Lifetime before now.
func (d *Dedup) Expire(now time.Time) {
	life := d.lifetime()
	for d.n > 0 {
		e := &d.ring[d.head]
		if now.Sub(e.at) < life {
			return
		}
		d.head = (d.head + 1) % len(d.ring)
		d.n--
	}
}

// find returns the entry for id, newest first, or nil. The ring is
// scanned as its two contiguous runs, without a modulo per entry.
func (d *Dedup) find(id uint16) *dedupEntry {
	end := d.head + d.n
	if wrap := end - len(d.ids); wrap > 0 {
		for i := wrap - 1; i >= 0; i-- {
			if d.ids[i] == id {
				return &d.ring[i]
			}
		}
		end = len(d.ids)
	}
	for i := end - 1; i >= d.head; i-- {
		if d.ids[i] == id {
			return &d.ring[i]
		}
	}
	return nil
}

// Receive is called for every incoming confirmable message. If id was seen
// within Lifetime, dup is true and replies holds the replies recorded for it
// with Reply (none if the first copy is still being handled): send them
// again and do not handle the message. Otherwise the ID is remembered from
// now on and the message should be handled. replies aliases internal
// buffers and is valid until the next call on d.
func (d *Dedup) Receive(now time.Time, id uint16) (dup bool, replies [][]byte) {
	d.Expire(now)
	if e := d.find(id); e != nil {
		d.scratch = d.scratch[:0]
		for b := e.replies; len(b) >= 2; {
			l := int(b[0])<<8 | int(b[1])
			d.scratch = append(d.scratch, b[2:2+l:2+l])
			b = b[2+l:]
		}
		return true, d.scratch
	}
	d.push(now, id)
	return false, nil
}

// push remembers id as the newest entry, evicting the oldest when full.
func (d *Dedup) push(now time.Time, id uint16) {
	if d.n == len(d.ring) {
		if limit := d.maxEntries(); len(d.ring) < limit {
			d.grow(min(limit, max(8, 2*len(d.ring))))
		} else {
			// Full: forget the oldest early.
			d.head = (d.head + 1) % len(d.ring)
			d.n--
		}
	}
	i := d.slot(d.n)
	e := &d.ring[i]
	d.ids[i], e.at, e.replies = id, now, e.replies[:0]
	d.n++
}

// grow moves the entries to a ring of size c, oldest first.
func (d *Dedup) grow(c int) {
	ring, ids := make([]dedupEntry, c), make([]uint16, c)
	for i := range d.n {
		ring[i], ids[i] = d.ring[d.slot(i)], d.ids[d.slot(i)]
	}
	d.ring, d.ids, d.head = ring, ids, 0
}

// Reply records msg (the encoded CoAP ACK or RST, or a piggy-backed
// response) as a reply to the CON with id, to be sent again if that CON is
// repeated. msg is copied. It reports false, and keeps nothing, if id is
// not remembered (never received, expired or evicted) or msg is longer than
// 65535 bytes.
func (d *Dedup) Reply(id uint16, msg []byte) bool {
	e := d.find(id)
	if e == nil || len(msg) > 0xFFFF {
		return false
	}
	e.replies = append(e.replies, byte(len(msg)>>8), byte(len(msg)))
	e.replies = append(e.replies, msg...)
	return true
}

// Compact shrinks the ring to the IDs remembered, for a session gone idle
// that still remembers some (an empty one is released as by Shrink); the
// next Receive grows it again. Call Expire first.
func (d *Dedup) Compact() {
	if d.n == 0 {
		d.Shrink()
		return
	}
	ring, ids := make([]dedupEntry, d.n), make([]uint16, d.n)
	for i := range d.n {
		ring[i], ids[i] = d.ring[d.slot(i)], d.ids[d.slot(i)]
	}
	d.ring, d.ids, d.head, d.scratch = ring, ids, 0, nil
}

// Shrink releases the memory of an empty Dedup, for a session gone idle;
// call Expire first. It keeps the settings.
func (d *Dedup) Shrink() {
	if d.n == 0 {
		d.ring, d.ids, d.head, d.scratch = nil, nil, 0, nil
	}
}

// Outbox holds outgoing confirmable messages until they are acknowledged and
// schedules their retransmission: the first timeout is AckTimeout times a
// random factor in [1, AckRandomFactor), then it doubles; after
// MaxRetransmit resends and one more timeout the message is given up
// (RFC 7252 §4.2). The zero value is ready to use with Particle's
// parameters. It is not safe for concurrent use.
type Outbox struct {
	// AckTimeout is the base initial timeout; zero means AckTimeout.
	AckTimeout time.Duration
	// RandomFactor is the upper bound of the random factor; values below 1
	// mean AckRandomFactor. Exactly 1 turns the randomness off.
	RandomFactor float64
	// MaxRetransmit is the number of resends; zero means MaxRetransmit,
	// negative means none.
	MaxRetransmit int
	// MaxPending bounds the messages awaiting an ACK; zero means
	// DefaultMaxPending.
	MaxPending int
	// Rand returns a number in [0, 1); nil means math/rand/v2.Float64.
	Rand func() float64

	pend   []pending // unordered; slots past len keep their buffers for reuse
	resend [][]byte  // HandleTimeout's results, reused
	gaveUp []uint16
}

// pending is one CON awaiting its ACK.
type pending struct {
	id       uint16
	msg      []byte
	deadline time.Time
	timeout  time.Duration
	resent   int
}

func (o *Outbox) maxRetransmit() int {
	switch {
	case o.MaxRetransmit < 0:
		return 0
	case o.MaxRetransmit == 0:
		return MaxRetransmit
	}
	return o.MaxRetransmit
}

func (o *Outbox) initialTimeout() time.Duration {
	base := o.AckTimeout
	if base <= 0 {
		base = AckTimeout
	}
	f := o.RandomFactor
	if f < 1 {
		f = AckRandomFactor
	}
	if f == 1 {
		return base
	}
	r := rand.Float64
	if o.Rand != nil {
		r = o.Rand
	}
	return base + time.Duration(float64(base)*(f-1)*r())
}

// Len returns the number of messages awaiting an ACK.
func (o *Outbox) Len() int { return len(o.pend) }

// index returns the position of id in pend, or -1.
func (o *Outbox) index(id uint16) int {
	for i := range o.pend {
		if o.pend[i].id == id {
			return i
		}
	}
	return -1
}

// Send records msg, a CON with message ID id that the caller sends at now,
// and arms its timer. msg is copied.
func (o *Outbox) Send(now time.Time, id uint16, msg []byte) error {
	if o.index(id) >= 0 {
		return ErrPendingID
	}
	maxPending := o.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	if len(o.pend) >= maxPending {
		return ErrOutboxFull
	}
	if len(o.pend) < cap(o.pend) {
		o.pend = o.pend[:len(o.pend)+1]
	} else {
		o.pend = append(o.pend, pending{})
	}
	p := &o.pend[len(o.pend)-1]
	t := o.initialTimeout()
	p.id, p.msg, p.timeout, p.deadline, p.resent = id, append(p.msg[:0], msg...), t, now.Add(t), 0
	return nil
}

// Ack removes the CON with id because an ACK or RST with that ID arrived;
// it reports whether one was pending (an unexpected ACK is ignored by the
// caller, an unexpected RST too).
func (o *Outbox) Ack(id uint16) bool {
	i := o.index(id)
	if i < 0 {
		return false
	}
	o.remove(i)
	return true
}

// remove deletes pend[i], keeping its buffer past the end for reuse.
func (o *Outbox) remove(i int) {
	last := len(o.pend) - 1
	o.pend[i], o.pend[last] = o.pend[last], o.pend[i]
	o.pend = o.pend[:last]
}

// NextTimeout returns the earliest deadline among the pending messages; ok
// is false when nothing is pending.
func (o *Outbox) NextTimeout() (deadline time.Time, ok bool) {
	for i := range o.pend {
		if d := o.pend[i].deadline; !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	return deadline, ok
}

// HandleTimeout processes every deadline that has passed at now. resend
// holds the messages to send again (seal each afresh); gaveUp the message
// IDs whose last timeout ran out unanswered, which are forgotten: over UDP
// that is how a vanished peer shows. Both alias internal buffers and are
// valid until the next call on o.
func (o *Outbox) HandleTimeout(now time.Time) (resend [][]byte, gaveUp []uint16) {
	o.resend, o.gaveUp = o.resend[:0], o.gaveUp[:0]
	tries := o.maxRetransmit()
	for i := 0; i < len(o.pend); {
		p := &o.pend[i]
		if now.Before(p.deadline) {
			i++
			continue
		}
		if p.resent >= tries {
			o.gaveUp = append(o.gaveUp, p.id)
			o.remove(i)
			continue
		}
		p.resent++
		p.timeout *= 2
		p.deadline = now.Add(p.timeout)
		o.resend = append(o.resend, p.msg)
		i++
	}
	return o.resend, o.gaveUp
}

// Pending returns every message awaiting its ACK, for sending them again
// at once when the peer moved to a new address (a copy at the old one may
// never have arrived); their retransmission schedule is left alone. The
// result aliases internal buffers and is valid until the next call on o.
func (o *Outbox) Pending() [][]byte {
	o.resend = o.resend[:0]
	for i := range o.pend {
		o.resend = append(o.resend, o.pend[i].msg)
	}
	return o.resend
}

// Clear forgets every pending message, for a session that ended.
func (o *Outbox) Clear() { o.pend = o.pend[:0] }

// Shrink releases the memory of an empty Outbox, for a session gone idle.
func (o *Outbox) Shrink() {
	if len(o.pend) == 0 {
		o.pend, o.resend, o.gaveUp = nil, nil, nil
	}
}
