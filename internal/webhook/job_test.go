package webhook

import (
	"reflect"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// jobCases are shared by the round-trip test, the fuzz seeds and the
// benchmark.
var jobCases = []job{
	{HookID: "a", Event: bus.Event{PublishedAt: time.Unix(0, 0).UTC()}},
	{HookID: "0123456789abcdef01234567", Attempt: 3, Skips: 2,
		Enqueued: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Due: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
		Event: bus.Event{ID: 1 << 40, Name: "env/temp", Data: "{\"t\":21.5}\x00\xff", TTL: 60, Public: true,
			PublishedAt: time.Date(2026, 1, 2, 3, 4, 5, 7, time.UTC), DeviceID: "3f002b000000000000000000",
			UserID: "u1", CustomerID: "c1", ProductID: 10000, ProductVersion: -3}},
	{HookID: "h", Event: bus.Event{Name: "x", TTL: -1, ProductID: -5, PublishedAt: time.Unix(1, 2).UTC()}},
}

func TestJobRoundTrip(t *testing.T) {
	for _, j := range jobCases {
		got, err := decodeJob(appendJob(nil, &j))
		if err != nil {
			t.Fatalf("%+v: %v", j, err)
		}
		if !reflect.DeepEqual(got, j) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, j)
		}
	}
}

func TestDecodeJobErrors(t *testing.T) {
	good := appendJob(nil, &jobCases[1])
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"no hook", appendJob(nil, &job{})},
		{"overlong varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"string past end", []byte{1, 0x7f, 'a'}},
		{"event past end", good[:len(good)-3]},
		{"bad event", append(appendJob(nil, &jobCases[0])[:len(appendJob(nil, &jobCases[0]))-1], 0xff)},
	} {
		if _, err := decodeJob(c.data); err == nil {
			t.Errorf("%s: decoded without error", c.name)
		}
	}
	// Later versions may append fields.
	if _, err := decodeJob(append(good, 9, 9, 9)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
}

func FuzzDecodeJob(f *testing.F) {
	for _, j := range jobCases {
		f.Add(appendJob(nil, &j))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := decodeJob(data)
		if err != nil {
			return
		}
		again, err := decodeJob(appendJob(nil, &j))
		if err != nil || !reflect.DeepEqual(again, j) {
			t.Fatalf("re-encoding %+v: %+v, %v", j, again, err)
		}
	})
}

func BenchmarkJobEncode(b *testing.B) {
	j := jobCases[1]
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendJob(buf[:0], &j)
	}
}

func BenchmarkJobDecode(b *testing.B) {
	data := appendJob(nil, &jobCases[1])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJob(data); err != nil {
			b.Fatal(err)
		}
	}
}
