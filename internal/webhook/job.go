package webhook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// A job is one event to deliver to one hook, as it waits in the queue.
// Retries are new jobs carrying the counts so far, so that the retry
// budget survives restarts.
type job struct {
	HookID string
	// Attempt counts the requests already sent for this event (0 for a
	// fresh job).
	Attempt int
	// Skips counts the attempts skipped while the target host slept.
	Skips int
	// Enqueued is when the matcher queued the first job of this event;
	// Config.MaxAge counts from it.
	Enqueued time.Time
	// Due is the earliest time the job may run; zero means at once.
	Due   time.Time
	Event bus.Event
}

// jobVersion is the first byte of every encoded job.
const jobVersion = 1

// Job payload, version 1. Integers are Go varints, strings a uvarint length
// and the bytes; times are Unix nanoseconds (0 for the zero time):
//
//	byte    version (1)
//	string  hook_id
//	uvarint attempt
//	uvarint skips
//	varint  enqueued
//	varint  due
//	uvarint event_id
//	uvarint event_flags (bit 0: public)
//	varint  published_at
//	varint  ttl
//	varint  product_id
//	varint  product_version
//	string  name, data, device_id, user_id, customer_id
//
// Bytes after the last field are ignored, so later versions may append.
const jobFlagPublic = 1

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// appendJob appends the encoding of j to b.
func appendJob(b []byte, j *job) []byte {
	e := &j.Event
	var flags uint64
	if e.Public {
		flags |= jobFlagPublic
	}
	b = append(b, jobVersion)
	b = appendString(b, j.HookID)
	b = binary.AppendUvarint(b, uint64(max(j.Attempt, 0)))
	b = binary.AppendUvarint(b, uint64(max(j.Skips, 0)))
	b = binary.AppendVarint(b, unixNano(j.Enqueued))
	b = binary.AppendVarint(b, unixNano(j.Due))
	b = binary.AppendUvarint(b, e.ID)
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendVarint(b, unixNano(e.PublishedAt))
	b = binary.AppendVarint(b, int64(e.TTL))
	b = binary.AppendVarint(b, e.ProductID)
	b = binary.AppendVarint(b, int64(e.ProductVersion))
	for _, s := range [...]string{e.Name, e.Data, e.DeviceID, e.UserID, e.CustomerID} {
		b = appendString(b, s)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShortJob = errors.New("webhook: truncated job")

// maxCount bounds attempt and skip counts read from a job.
const maxCount = 1 << 20

// decodeJob decodes a job payload written by appendJob.
func decodeJob(data []byte) (job, error) {
	var j job
	if len(data) == 0 {
		return j, errShortJob
	}
	if data[0] != jobVersion {
		return j, fmt.Errorf("webhook: unknown job version %d", data[0])
	}
	d := jobDecoder{s: string(data), i: 1} // one allocation; the fields share it
	j.HookID = d.str()
	attempt := d.uvarint()
	skips := d.uvarint()
	enq := d.varint()
	due := d.varint()
	e := &j.Event
	e.ID = d.uvarint()
	flags := d.uvarint()
	pub := d.varint()
	ttl := d.varint()
	e.ProductID = d.varint()
	ver := d.varint()
	e.Name = d.str()
	e.Data = d.str()
	e.DeviceID = d.str()
	e.UserID = d.str()
	e.CustomerID = d.str()
	if d.err != nil {
		return job{}, d.err
	}
	if attempt > maxCount || skips > maxCount || ttl < -1<<31 || ttl > 1<<31-1 || ver < -1<<31 || ver > 1<<31-1 {
		return job{}, errors.New("webhook: job integer out of range")
	}
	if j.HookID == "" {
		return job{}, errors.New("webhook: job without hook")
	}
	j.Attempt, j.Skips = int(attempt), int(skips)
	j.Enqueued, j.Due = fromUnixNano(enq), fromUnixNano(due)
	e.Public = flags&jobFlagPublic != 0
	e.PublishedAt = fromUnixNano(pub)
	e.TTL, e.ProductVersion = int(ttl), int(ver)
	return j, nil
}

// jobDecoder reads varints and strings from s, remembering the first error.
type jobDecoder struct {
	s   string
	i   int
	err error
}

func (d *jobDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for n := 0; n < binary.MaxVarintLen64; n++ {
		if d.i >= len(d.s) {
			d.err = errShortJob
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
	d.err = errors.New("webhook: job varint overflows 64 bits")
	return 0
}

func (d *jobDecoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *jobDecoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.err = errShortJob
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}
