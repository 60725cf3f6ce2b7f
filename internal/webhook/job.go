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

// due is when the job may be sent.
func (j job) due() time.Time { return j.Due }

// jobVersion is the first byte of every encoded job.
const jobVersion = 1

// Job payload, version 1. Integers are Go varints, byte strings a uvarint
// length and the bytes; times are Unix nanoseconds (0 for the zero time):
//
//	byte    version (1)
//	string  hook_id
//	uvarint attempt
//	uvarint skips
//	varint  enqueued
//	varint  due
//	string  event, in the bus's own encoding (bus.AppendEvent, docs/bus.md)
//
// Bytes after the last field are ignored, so later versions may append.

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
	b = append(b, jobVersion)
	b = binary.AppendUvarint(b, uint64(len(j.HookID)))
	b = append(b, j.HookID...)
	b = binary.AppendUvarint(b, uint64(max(j.Attempt, 0)))
	b = binary.AppendUvarint(b, uint64(max(j.Skips, 0)))
	b = binary.AppendVarint(b, unixNano(j.Enqueued))
	b = binary.AppendVarint(b, unixNano(j.Due))
	// The event's length is not known before it is encoded: reserve the
	// longest uvarint, encode, then move the event behind the real length.
	at := len(b)
	b = append(b, make([]byte, binary.MaxVarintLen64)...)
	b = bus.AppendEvent(b, &j.Event)
	n := len(b) - at - binary.MaxVarintLen64
	w := binary.PutUvarint(b[at:], uint64(n))
	copy(b[at+w:], b[at+binary.MaxVarintLen64:])
	return b[:at+w+n]
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
	r := jobReader{b: data[1:]}
	hook := r.bytes()
	attempt := r.uvarint()
	skips := r.uvarint()
	enq := r.varint()
	due := r.varint()
	ev := r.bytes()
	if r.err != nil {
		return job{}, r.err
	}
	if attempt > maxCount || skips > maxCount {
		return job{}, errors.New("webhook: job integer out of range")
	}
	if len(hook) == 0 {
		return job{}, errors.New("webhook: job without hook")
	}
	e, err := bus.DecodeEvent(ev)
	if err != nil {
		return job{}, fmt.Errorf("webhook: job event: %w", err)
	}
	j.HookID, j.Event = string(hook), e
	j.Attempt, j.Skips = int(attempt), int(skips)
	j.Enqueued, j.Due = fromUnixNano(enq), fromUnixNano(due)
	return j, nil
}

// jobReader reads a job's header fields with encoding/binary,
// remembering the first error.
type jobReader struct {
	b   []byte
	err error
}

func (r *jobReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortJob
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *jobReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortJob
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *jobReader) bytes() []byte {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errShortJob
	}
	if r.err != nil {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
