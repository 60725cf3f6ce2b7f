package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// jsonStringCases are shared by the table test, the fuzzer's seeds and
// the benchmark.
var jsonStringCases = []struct{ in, want string }{
	{"", `""`},
	{"25.34", `"25.34"`},
	{`a"b\c`, `"a\"b\\c"`},
	{"line\nbreak\r\ttab", `"line\nbreak\r\ttab"`},
	{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
	{"<tag> & é ✓ 😀", `"<tag> & é ✓ 😀"`},
	{"bad\xffutf8\xc3", `"bad\ufffdutf8\ufffd"`},
	{"sep\u2028par\u2029", `"sep\u2028par\u2029"`},
}

func TestAppendJSONString(t *testing.T) {
	for _, tc := range jsonStringCases {
		if got := string(appendJSONString(nil, tc.in)); got != tc.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzAppendJSONString checks that the encoding is one line of valid JSON
// that decodes to what encoding/json makes of the same input.
func FuzzAppendJSONString(f *testing.F) {
	for _, tc := range jsonStringCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte("x"), s)[1:]
		if strings.ContainsAny(string(b), "\r\n") {
			t.Fatalf("encoding of %q spans lines: %s", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("encoding of %q is not JSON: %s: %v", s, b, err)
		}
		std, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q decodes as %q, encoding/json gives %q", s, got, want)
		}
	})
}

// sseEvent is a typical device event.
var sseEvent = bus.Event{ID: 1741787000123456, Name: "temperature/basement", Data: `{"t":25.34,"unit":"C"}`, TTL: 60,
	PublishedAt: time.Date(2025, 3, 1, 14, 0, 0, 907e6, time.UTC), DeviceID: "0123456789abcdef01234567",
	UserID: "u1", ProductID: 10001, ProductVersion: 3}

func TestAppendSSEEvent(t *testing.T) {
	for _, tc := range []struct {
		e       bus.Event
		product bool
		want    string
	}{
		{sseEvent, false, "id: 1741787000123456\nevent: temperature/basement\n" +
			`data: {"data":"{\"t\":25.34,\"unit\":\"C\"}","ttl":60,"published_at":"2025-03-01T14:00:00.907Z","coreid":"0123456789abcdef01234567"}` + "\n\n"},
		{sseEvent, true, "id: 1741787000123456\nevent: temperature/basement\n" +
			`data: {"data":"{\"t\":25.34,\"unit\":\"C\"}","ttl":60,"published_at":"2025-03-01T14:00:00.907Z","coreid":"0123456789abcdef01234567",` +
			`"userid":"u1","version":3,"public":false,"productID":10001}` + "\n\n"},
		{bus.Event{ID: 7, Name: "evil\r\nevent: x", PublishedAt: time.Unix(0, 0).In(time.FixedZone("X", 3600)), DeviceID: "api"}, false,
			"id: 7\nevent: evil  event: x\n" + `data: {"data":null,"ttl":0,"published_at":"1970-01-01T00:00:00.000Z","coreid":"api"}` + "\n\n"},
	} {
		if got := string(appendSSEEvent(nil, &tc.e, tc.product)); got != tc.want {
			t.Errorf("got\n%q\nwant\n%q", got, tc.want)
		}
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = appendSSEEvent(buf[:0], &sseEvent, true) }); n != 0 {
		t.Errorf("appendSSEEvent allocates %v times, want 0", n)
	}
}

func BenchmarkAppendSSEEvent(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		buf = appendSSEEvent(buf[:0], &sseEvent, false)
	}
}

func TestTokenBuckets(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newTokenBuckets(2, time.Second, 3)
	steps := []struct {
		key   string
		at    time.Duration
		ok    bool
		retry time.Duration
	}{
		{"a", 0, true, 0},
		{"a", 0, true, 0},
		{"a", 0, false, time.Second},
		{"a", 500 * time.Millisecond, false, 500 * time.Millisecond},
		{"a", time.Second, true, 0},
		{"b", time.Second, true, 0},
		{"a", 5 * time.Second, true, 0}, // refilled to the burst, not beyond
		{"a", 5 * time.Second, true, 0},
		{"a", 5 * time.Second, false, time.Second},
	}
	for i, s := range steps {
		ok, retry := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || retry != s.retry {
			t.Errorf("step %d (%s at %v): %v %v, want %v %v", i, s.key, s.at, ok, retry, s.ok, s.retry)
		}
	}
	// Memory stays bounded: maxKeys 3 is rounded up to one key in each
	// of the limiter's 64 shards; the least recently used key gives way.
	for i := range 1000 {
		l.allow(fmt.Sprint("k", i), t0.Add(time.Minute))
	}
	if n := l.size(); n > 64 {
		t.Errorf("%d keys tracked, want at most 64", n)
	}
	if ok, _ := (*tokenBuckets)(nil).allow("x", t0); !ok || newTokenBuckets(-1, time.Second, 1) != nil {
		t.Error("a disabled limiter must allow everything")
	}
}

func TestReservedEventName(t *testing.T) {
	for name, want := range map[string]bool{
		"spark": true, "SPARK/x": true, "sparkle": true, "Particle": true, "particle/x": true,
		"spar": false, "partic": false, "my/spark": false, "": false, "xparticle": false,
	} {
		if got := reservedEventName(name); got != want {
			t.Errorf("reservedEventName(%q) = %v, want %v", name, got, want)
		}
	}
}
