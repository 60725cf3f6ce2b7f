package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Well-known Event.DeviceID values for events that no device published.
const (
	// DeviceAPI is the coreid of events published through the REST API.
	DeviceAPI = "api"
	// DeviceInternal is the coreid of events the cloud itself publishes
	// (hook-sent, hook-response, hook-error).
	DeviceInternal = "particle-internal"
)

// DefaultTTL is the TTL Publish stores when Event.TTL is zero (Particle's
// default, informational only).
const DefaultTTL = 60

// An Event is one published event as the API, SSE streams, devices and
// webhooks see it. Events handed out by the bus are values; the bus keeps no
// reference a receiver could change.
type Event struct {
	// ID is assigned by the bus when the event is accepted and is strictly
	// increasing in acceptance order: the JetStream stream sequence, or a
	// per-process counter without JetStream (see docs/bus.md). Publish
	// ignores the caller's value.
	ID uint64
	// Name is the event name (1-64 characters; may contain '/' and '.').
	Name string
	// Data is the event payload; it may hold arbitrary bytes.
	Data string
	// TTL is the informational time-to-live in seconds.
	TTL int
	// PublishedAt is when the event was published; Publish sets it to the
	// current time when zero.
	PublishedAt time.Time
	// DeviceID is the publisher's coreid: a device ID, DeviceAPI or
	// DeviceInternal.
	DeviceID string
	// Public marks a public event; private events reach only their owner,
	// customer and product team.
	Public bool
	// UserID is the owner user's ID ("" for unclaimed product devices).
	UserID string
	// CustomerID is the owning customer's ID, if any.
	CustomerID string
	// ProductID is the device's product (0 for none).
	ProductID int64
	// ProductVersion is the product firmware version the device reported.
	ProductVersion int
}

// encodingVersion is the first byte of every encoded event.
const encodingVersion = 1

// Payload layout, version 1 (all integers are Go varints, strings are a
// uvarint length followed by the bytes):
//
//	byte    version (1)
//	uvarint flags (bit 0: public)
//	uvarint id (0 when the JetStream stream assigns it)
//	varint  published_at, Unix nanoseconds
//	varint  ttl
//	varint  product_id
//	varint  product_version
//	string  name
//	string  data
//	string  device_id
//	string  user_id
//	string  customer_id
//
// Bytes after the last field are ignored so that later versions can append
// fields without breaking older readers.
const flagPublic = 1

// AppendEvent appends the encoding of e, with its ID, to b: the payload
// DecodeEvent reads. Other packages embed events in their own records
// with it (the webhook queue's jobs).
func AppendEvent(b []byte, e *Event) []byte { return appendEvent(b, e, e.ID) }

// appendEvent appends the encoding of e (with the given id) to b.
func appendEvent(b []byte, e *Event, id uint64) []byte {
	var flags uint64
	if e.Public {
		flags |= flagPublic
	}
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, id)
	b = binary.AppendVarint(b, e.PublishedAt.UnixNano())
	b = binary.AppendVarint(b, int64(e.TTL))
	b = binary.AppendVarint(b, e.ProductID)
	b = binary.AppendVarint(b, int64(e.ProductVersion))
	for _, s := range [...]string{e.Name, e.Data, e.DeviceID, e.UserID, e.CustomerID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// encodedSize is an upper bound of appendEvent's output length.
func encodedSize(e *Event) int {
	return 1 + 6*binary.MaxVarintLen64 + 5*binary.MaxVarintLen32 +
		len(e.Name) + len(e.Data) + len(e.DeviceID) + len(e.UserID) + len(e.CustomerID)
}

var errShortEvent = errors.New("bus: truncated event")

// DecodeEvent decodes an event payload as stored in the JetStream stream or
// carried on a P.live subject. The ID is the one embedded in the payload
// (0 for events whose ID is the stream sequence; see Bus.EventFromMsg).
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if len(data) == 0 {
		return e, errShortEvent
	}
	if data[0] != encodingVersion {
		return e, fmt.Errorf("bus: unknown event encoding version %d", data[0])
	}
	d := decoder{s: string(data), i: 1} // one allocation; fields share it
	flags := d.uvarint()
	e.ID = d.uvarint()
	ns := d.varint()
	ttl := d.varint()
	e.ProductID = d.varint()
	ver := d.varint()
	e.Name = d.str()
	e.Data = d.str()
	e.DeviceID = d.str()
	e.UserID = d.str()
	e.CustomerID = d.str()
	if d.err != nil {
		return Event{}, d.err
	}
	if ttl < minInt || ttl > maxInt || ver < minInt || ver > maxInt {
		return Event{}, errors.New("bus: event integer out of range")
	}
	e.Public = flags&flagPublic != 0
	e.PublishedAt = time.Unix(0, ns).UTC()
	e.TTL = int(ttl)
	e.ProductVersion = int(ver)
	return e, nil
}

const (
	maxInt = int64(^uint(0) >> 1)
	minInt = -maxInt - 1
)

// decoder reads varints and strings from s, remembering the first error.
type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for n := 0; n < binary.MaxVarintLen64; n++ {
		if d.i >= len(d.s) {
			d.err = errShortEvent
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			if n == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.err = errors.New("bus: event varint overflows 64 bits")
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.err = errShortEvent
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}
