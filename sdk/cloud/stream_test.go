package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeStreams serves scripted answers to successive stream opens and
// records the Last-Event-ID of each.
type fakeStreams struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	lastIDs []string
}

func (f *fakeStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.lastIDs)
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	var answer func(http.ResponseWriter)
	if n < len(f.answers) {
		answer = f.answers[n]
	}
	f.mu.Unlock()
	if answer == nil {
		<-r.Context().Done() // hold the last connection open
		return
	}
	answer(w)
}

func (f *fakeStreams) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

// events answers a stream with the given SSE text, then ends it.
func events(text string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, text)
	}
}

// status answers an error.
func status(code int, body string, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func TestStreamScripted(t *testing.T) {
	tests := []struct {
		name    string
		answers []func(http.ResponseWriter)
		want    []string // event data, in order
		wantIDs []string // Last-Event-ID of each open
		wantErr func(error) bool
	}{
		{
			name: "resumes after a dropped connection and a 503",
			answers: []func(http.ResponseWriter){
				events(":ok\n\nid: 1\nevent: a\ndata: one\n\n"),
				status(503, `{"error":"server_busy"}`),
				events(":ok\n\nid: 2\nevent: a\ndata: two\n\n"),
			},
			want:    []string{"one", "two"},
			wantIDs: []string{"", "1", "1", "2"},
		},
		{
			name: "ends on 401 while reconnecting",
			answers: []func(http.ResponseWriter){
				events("id: 7\ndata: x\n\n"),
				status(401, `{"error":"invalid_token","error_description":"The access token provided is invalid."}`),
			},
			want:    []string{"x"},
			wantIDs: []string{"", "7"},
			wantErr: IsUnauthorized,
		},
		{
			name: "an ID without data moves the resume point",
			answers: []func(http.ResponseWriter){
				events("id: 41\n\n: comment\n\n"),
				events("id: 42\ndata: y\n\n"),
			},
			want:    []string{"y"},
			wantIDs: []string{"", "41", "42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeStreams{answers: tt.answers}
			srv := httptest.NewServer(f)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := New(srv.URL, "t").Subscribe(ctx, StreamOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, want := range tt.want {
				ev, err := s.Next(ctx)
				if err != nil || ev.Data != want {
					t.Fatalf("Next = %+v, %v; want data %q", ev, err, want)
				}
			}
			if tt.wantErr != nil {
				if _, err := s.Next(ctx); !tt.wantErr(err) || !tt.wantErr(s.Err()) {
					t.Fatalf("Next after the last event: %v; want the stream's error", err)
				}
			} else {
				// Wait for the held connection: every scripted open done.
				for len(f.ids()) < len(tt.wantIDs) && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
			}
			if got := f.ids(); fmt.Sprint(got) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("Last-Event-IDs = %q; want %q", got, tt.wantIDs)
			}
		})
	}
}

func TestStreamRefusedAtOnce(t *testing.T) {
	srv := httptest.NewServer(&fakeStreams{answers: []func(http.ResponseWriter){
		status(429, `{"error":"rate_limited","error_description":"Too many requests"}`, "Retry-After", "7"),
	}})
	defer srv.Close()
	_, err := New(srv.URL, "t").Subscribe(context.Background(), StreamOptions{})
	var e *Error
	if !errors.As(err, &e) || !IsRateLimited(err) || e.RetryAfter != 7*time.Second || e.Code != "rate_limited" {
		t.Fatalf("Subscribe = %v (%+v); want 429 with Retry-After 7s", err, e)
	}
	if _, err := New(srv.URL, "t").Subscribe(context.Background(), StreamOptions{Public: true}); err == nil {
		t.Errorf("public stream without prefix accepted")
	}
}

func TestStreamCloseWhileBlocked(t *testing.T) {
	srv := httptest.NewServer(&fakeStreams{answers: []func(http.ResponseWriter){
		events(":ok\n\n" + "data: a\n\ndata: b\n\n"),
	}})
	defer srv.Close()
	s, err := New(srv.URL, "t").Subscribe(context.Background(), StreamOptions{MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ev, err := s.Next(ctx); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while the stream waits to reconnect")
	}
	if !errors.Is(s.Err(), ErrStreamClosed) {
		t.Errorf("Err = %v; want ErrStreamClosed", s.Err())
	}
}

func TestStreamPath(t *testing.T) {
	tests := []struct {
		o    StreamOptions
		want string
	}{
		{StreamOptions{}, "/v1/devices/events"},
		{StreamOptions{Prefix: "a/b c"}, "/v1/devices/events/a/b%20c"},
		{StreamOptions{DeviceID: "d1", Prefix: "t"}, "/v1/devices/d1/events/t"},
		{StreamOptions{Product: "lamp"}, "/v1/products/lamp/events"},
		{StreamOptions{Product: "lamp", DeviceID: "d1"}, "/v1/products/lamp/devices/d1/events"},
		{StreamOptions{Public: true, Prefix: "x"}, "/v1/events/x"},
	}
	for _, tt := range tests {
		if got := tt.o.streamPath(); got != tt.want {
			t.Errorf("streamPath(%+v) = %q; want %q", tt.o, got, tt.want)
		}
	}
}

func TestErrorShapesDecoded(t *testing.T) {
	tests := []struct {
		body string
		want Error
		msg  string
	}{
		{`{"ok":false,"error":"Not Found"}`, Error{StatusCode: 404, Code: "Not Found"}, "cloud: 404 Not Found"},
		{`{"error":"invalid_grant","error_description":"Invalid refresh token"}`,
			Error{StatusCode: 404, Code: "invalid_grant", Description: "Invalid refresh token"}, "cloud: 404 invalid_grant: Invalid refresh token"},
		{`{"ok":false,"errors":["a","b"]}`, Error{StatusCode: 404, Errors: []string{"a", "b"}}, "cloud: 404 a; b"},
		{`{"ok":false,"error":"Permission Denied","info":"hint"}`, Error{StatusCode: 404, Code: "Permission Denied", Info: "hint"}, "cloud: 404 Permission Denied (hint)"},
		{`<html>`, Error{StatusCode: 404}, "cloud: 404 Not Found"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			fmt.Fprint(w, tt.body)
		}))
		_, err := New(srv.URL, "").GetUser(context.Background())
		srv.Close()
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if e.Code != tt.want.Code || e.Description != tt.want.Description || e.Info != tt.want.Info ||
			fmt.Sprint(e.Errors) != fmt.Sprint(tt.want.Errors) || string(e.Body) != tt.body || e.Error() != tt.msg {
			t.Errorf("%s: got %+v %q; want %+v %q", tt.body, e, e.Error(), tt.want, tt.msg)
		}
		if !IsNotFound(fmt.Errorf("wrapped: %w", err)) {
			t.Errorf("IsNotFound does not see through wrapping")
		}
	}
}

func TestNextAfterCloseWithBufferedEvents(t *testing.T) {
	srv := httptest.NewServer(&fakeStreams{answers: []func(http.ResponseWriter){
		events("data: a\n\ndata: b\n\ndata: c\n\n"),
	}})
	defer srv.Close()
	s, err := New(srv.URL, "t").Subscribe(context.Background(), StreamOptions{MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // a second Close is harmless
	for range 3 {
		if ev, err := s.Next(ctx); !errors.Is(err, ErrStreamClosed) {
			t.Fatalf("Next after Close = %+v, %v; want ErrStreamClosed", ev, err)
		}
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, time.Millisecond, 30 * time.Second} {
		for range 100 {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v; want within [%v, %v]", d, j, d/2, d)
			}
		}
	}
}

// TestStreamRetryAfterIsAFloor checks that a 503's Retry-After is waited
// in full, not shortened by the jitter.
func TestStreamRetryAfterIsAFloor(t *testing.T) {
	f := &fakeStreams{answers: []func(http.ResponseWriter){
		events("data: a\n\n"),
		status(503, `{"error":"server_busy"}`, "Retry-After", "1"),
		events("data: b\n\n"),
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(srv.URL, "t").Subscribe(ctx, StreamOptions{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ev, err := s.Next(ctx)
	if err != nil || ev.Data != "b" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("reconnected %v after a 503 with Retry-After: 1; want at least 1s", waited)
	}
}
