package cloud

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseAll returns every event of in and the error that ended it.
func parseAll(in string) ([]sseEvent, []string, error) {
	var comments []string
	p := newSSEParser(strings.NewReader(in), func(c string) { comments = append(comments, c) })
	var out []sseEvent
	for {
		ev, err := p.next()
		if err != nil {
			return out, comments, err
		}
		out = append(out, ev)
	}
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []sseEvent
		comments []string
		err      error
	}{
		{"wick event", ":ok\n\nid: 7\nevent: temp\ndata: {\"data\":\"21\"}\n\n",
			[]sseEvent{{id: "7", name: "temp", data: `{"data":"21"}`, hasID: true, hasData: true}}, []string{"ok"}, io.EOF},
		{"CRLF and CR", "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r",
			[]sseEvent{{name: "a", data: "1", hasData: true}, {name: "b", data: "2", hasData: true}}, nil, io.EOF},
		{"multi-line data", "data: x\ndata:y\ndata\n\n",
			[]sseEvent{{data: "x\ny\n", hasData: true}}, nil, io.EOF},
		{"id alone", "id: 9\n\n", []sseEvent{{id: "9", hasID: true}}, nil, io.EOF},
		{"id with NUL ignored", "id: a\x00b\ndata: d\n\n", []sseEvent{{data: "d", hasData: true}}, nil, io.EOF},
		{"unknown field and blank lines", "\n\nfoo: bar\ndata: d\n\n", []sseEvent{{data: "d", hasData: true}}, nil, io.EOF},
		{"unfinished event dropped", "data: d\n", nil, nil, io.EOF},
		{"unfinished line", "data: d", nil, nil, io.ErrUnexpectedEOF},
		{"comment with space", ": 3 events dropped\n\n", nil, []string{"3 events dropped"}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, comments, err := parseAll(tt.in)
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v; want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events = %v; want %v", got, tt.want)
			}
			if !reflect.DeepEqual(comments, tt.comments) {
				t.Errorf("comments = %q; want %q", comments, tt.comments)
			}
		})
	}
}

func TestSSERetryAndLongLine(t *testing.T) {
	p := newSSEParser(strings.NewReader("retry: 1500\ndata: x\n\n"), nil)
	if _, err := p.next(); err != nil {
		t.Fatal(err)
	}
	if p.retry != 1500*time.Millisecond {
		t.Errorf("retry = %v; want 1.5s", p.retry)
	}
	p = newSSEParser(strings.NewReader("data: "+strings.Repeat("x", maxSSELine+1)+"\n\n"), nil)
	if _, err := p.next(); !errors.Is(err, errLineTooLong) {
		t.Errorf("long line: err = %v; want errLineTooLong", err)
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   sseEvent
		want Event
	}{
		{"wick", sseEvent{name: "t", data: `{"data":"21","ttl":60,"published_at":"2026-01-02T03:04:05.000Z","coreid":"abc"}`},
			Event{ID: "5", Name: "t", Data: "21", TTL: 60, CoreID: "abc",
				PublishedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"null data", sseEvent{name: "t", data: `{"data":null,"ttl":60,"coreid":"particle-api","productID":3}`},
			Event{ID: "5", Name: "t", TTL: 60, CoreID: "particle-api", ProductID: 3}},
		{"not JSON", sseEvent{name: "t", data: "plain"}, Event{ID: "5", Name: "t", Data: "plain"}},
	}
	for _, tt := range tests {
		got := decodeEvent("5", tt.ev)
		got.Raw = nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v; want %+v", tt.name, got, tt.want)
		}
	}
}

// FuzzSSEParser checks that no input panics or hangs the parser and that
// every event it returns is well formed.
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{":ok\n\nid: 1\nevent: a\ndata: {}\n\n", "data: x\r\rid\n\n", "retry: 10\n", "id: \x00\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := newSSEParser(strings.NewReader(in), func(string) {})
		for i := 0; i <= len(in); i++ {
			ev, err := p.next()
			if err != nil {
				return
			}
			if strings.ContainsAny(ev.id, "\r\n\x00") || strings.ContainsAny(ev.name, "\r\n") {
				t.Fatalf("malformed event %v", ev)
			}
			_ = decodeEvent(ev.id, ev)
		}
		t.Fatalf("more events than input bytes")
	})
}
