package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestDebugListenAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{":6060", "127.0.0.1:6060"},
		{":0", "127.0.0.1:0"},
		{"127.0.0.1:6060", "127.0.0.1:6060"},
		{"[::1]:6060", "[::1]:6060"},
		{"10.0.0.5:6060", "10.0.0.5:6060"},
	} {
		if got := debugListenAddr(c.in); got != c.want {
			t.Errorf("debugListenAddr(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStartDebug(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if d, err := startDebug("", log); d != nil || err != nil {
		t.Fatalf("startDebug(\"\") = %v, %v; want nil, nil", d, err)
	}
	d, err := startDebug(":0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ap, err := netip.ParseAddrPort(d.addr.String())
	if err != nil || !ap.Addr().IsLoopback() {
		t.Fatalf("debug listener on %v (%v), want loopback", d.addr, err)
	}
	resp, err := http.Get("http://" + d.addr.String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("goroutine profile: status %d, body %.80q", resp.StatusCode, body)
	}
	d.close()
	if _, err := http.Get("http://" + d.addr.String() + "/debug/pprof/"); err == nil {
		t.Fatal("debug listener still answers after close")
	}
}
