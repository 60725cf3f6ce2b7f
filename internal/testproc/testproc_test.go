package testproc

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestStartKill: a started process's output is collected, Kill ends it
// and waits; the cleanup of an ended process does nothing.
func TestStartKill(t *testing.T) {
	p := Start(t, "sh", nil, "/bin/sh", "-c", "echo ready; exec sleep 60")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("no output collected: %q", p.Log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Kill(t)
	if p.Cmd.ProcessState == nil || p.Cmd.ProcessState.Success() {
		t.Errorf("process state after Kill = %v", p.Cmd.ProcessState)
	}
	if got := p.Log.Tail(3); got != "dy\n" {
		t.Errorf("Tail(3) = %q", got)
	}
}

// TestRequest: the body, its type and the bearer token reach the server,
// and its status and body come back.
func TestRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("Authorization")+" "+string(b))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		form url.Values
		js   string
		tok  string
		want string
	}{
		{url.Values{"a": {"1"}}, "", "t", "POST /p application/x-www-form-urlencoded Bearer t a=1"},
		{nil, `{"x":1}`, "", `POST /p application/json  {"x":1}`},
		{nil, "", "", "POST /p   "},
	} {
		status, body, err := Request(t.Context(), srv.Client(), "POST", srv.URL, "/p", tc.tok, tc.form, tc.js)
		if err != nil || status != http.StatusTeapot || string(body) != tc.want {
			t.Errorf("Request = %d %q %v; want 418 %q", status, body, err, tc.want)
		}
	}
}

// TestPorts: FreePorts gives distinct ports, and WaitTCP returns once one
// is listened on.
func TestPorts(t *testing.T) {
	ports := FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v", ports)
		}
		seen[p] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	WaitTCP(t, ln.Addr().String(), &Proc{Name: "none", Log: &Log{}})
}
