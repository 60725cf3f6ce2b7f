package bus

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var eventCases = []Event{
	{},
	{Name: "temperature", Data: "25.34", TTL: 60, PublishedAt: time.Date(2015, 7, 18, 0, 12, 18, 174000000, time.UTC),
		DeviceID: "0123456789abcdef01234567", Public: true, UserID: "u", CustomerID: "c", ProductID: 1234, ProductVersion: 7},
	{ID: 1<<64 - 1, Name: "a.b/c", Data: "\x00\xff", TTL: -1, ProductID: -5, ProductVersion: -1, DeviceID: DeviceAPI},
	{Name: strings.Repeat("n", 64), Data: strings.Repeat("d", 1024), DeviceID: DeviceInternal, TTL: 16777215},
}

func TestEventEncoding(t *testing.T) {
	for i, e := range eventCases {
		if e.PublishedAt.IsZero() {
			e.PublishedAt = time.Unix(0, 0).UTC()
		}
		b := appendEvent(nil, &e, e.ID)
		if len(b) > encodedSize(&e) {
			t.Errorf("case %d: encoded %d bytes, bound %d", i, len(b), encodedSize(&e))
		}
		got, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("case %d: DecodeEvent: %v", i, err)
		}
		if got != e {
			t.Errorf("case %d:\n got %+v\nwant %+v", i, got, e)
		}
		// Every truncation fails cleanly; trailing bytes are ignored.
		for n := range len(b) {
			if _, err := DecodeEvent(b[:n]); err == nil {
				t.Errorf("case %d: DecodeEvent of %d of %d bytes succeeded", i, n, len(b))
			}
		}
		if got, err := DecodeEvent(append(b, 1, 2, 3)); err != nil || got != e {
			t.Errorf("case %d: trailing bytes: %+v, %v", i, got, err)
		}
	}
	if _, err := DecodeEvent([]byte{2, 0}); err == nil {
		t.Error("unknown version decoded")
	}
	overflow := append([]byte{1}, bytes.Repeat([]byte{0xff}, 10)...)
	if _, err := DecodeEvent(append(overflow, 1)); err == nil {
		t.Error("11-byte varint decoded")
	}
}

func TestEventEncodingAllocs(t *testing.T) {
	e := eventCases[1]
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = appendEvent(buf[:0], &e, 9) }); n != 0 {
		t.Errorf("appendEvent allocates %v times; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeEvent(buf) }); n > 1 {
		t.Errorf("DecodeEvent allocates %v times; want at most 1", n)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range eventCases {
		b := appendEvent(nil, &e, e.ID)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err != nil {
			return
		}
		again, err := DecodeEvent(appendEvent(nil, &e, e.ID))
		if err != nil || again != e {
			t.Fatalf("re-encoding %+v gave %+v, %v", e, again, err)
		}
	})
}

func BenchmarkEventEncode(b *testing.B) {
	e := eventCases[1]
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], &e, 42)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEventDecode(b *testing.B) {
	e := eventCases[1]
	buf := appendEvent(nil, &e, 42)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := DecodeEvent(buf); err != nil {
			b.Fatal(err)
		}
	}
}
