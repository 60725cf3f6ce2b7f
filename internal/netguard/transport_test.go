package netguard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestControl(t *testing.T) {
	for _, tc := range []struct {
		network, address, verdict string
	}{
		{"tcp", "93.184.215.14:443", ok},
		{"tcp4", "8.8.8.8:80", ok},
		{"tcp6", "[2606:4700:4700::1111]:443", ok},
		{"tcp", "127.0.0.1:8080", private},
		{"tcp6", "[::1]:80", private},
		{"tcp", "[::ffff:127.0.0.1]:80", private},
		{"tcp", "10.0.0.1:80", private},
		{"tcp", "169.254.169.254:80", never},
		{"tcp6", "[fe80::1%eth0]:80", never},
		{"tcp", "0.0.0.0:80", never},
		{"tcp", "example.com:80", never}, // Control sees resolved addresses only
		{"tcp", "8.8.8.8", never},
		{"tcp", "", never},
		{"udp", "8.8.8.8:53", never},
		{"unix", "/run/docker.sock", never},
	} {
		strict := Policy{}.Control(tc.network, tc.address, nil)
		loose := Policy{AllowPrivate: true}.Control(tc.network, tc.address, nil)
		switch tc.verdict {
		case ok:
			if strict != nil || loose != nil {
				t.Errorf("%s %s: strict %v, AllowPrivate %v; want both allowed", tc.network, tc.address, strict, loose)
			}
		case private:
			if strict == nil || loose != nil {
				t.Errorf("%s %s: strict %v, AllowPrivate %v; want refused, allowed", tc.network, tc.address, strict, loose)
			}
		case never:
			if strict == nil || loose == nil {
				t.Errorf("%s %s: strict %v, AllowPrivate %v; want both refused", tc.network, tc.address, strict, loose)
			}
		}
		if strict != nil && !errors.Is(strict, ErrForbidden) {
			t.Errorf("%s %s: %v does not wrap ErrForbidden", tc.network, tc.address, strict)
		}
	}
}

// countingServer starts a loopback test server that counts the
// connections it accepts and the requests it serves.
func countingServer(t *testing.T, h http.Handler) (srv *httptest.Server, conns, reqs *atomic.Int64) {
	t.Helper()
	conns, reqs = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns, reqs
}

// client is the client a delivery engine builds from a policy.
func client(p Policy, insecureSkipVerify bool) *http.Client {
	tr := p.Transport(insecureSkipVerify)
	return &http.Client{Transport: tr, CheckRedirect: p.CheckRedirect, Timeout: 10 * time.Second}
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b), err
}

func hello(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }

// TestTransportLoopback dials a real loopback server: the strict policy
// refuses before connecting, AllowPrivate reaches it. The "localhost"
// case is refused only after DNS resolution, by Control: nothing
// before the dialer checks the name.
func TestTransportLoopback(t *testing.T) {
	srv, conns, reqs := countingServer(t, http.HandlerFunc(hello))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	byName := "http://localhost:" + port + "/"
	for _, u := range []string{srv.URL, byName} {
		strict, loose := client(Policy{}, false), client(Policy{AllowPrivate: true}, false)
		_, err := get(strict, u)
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "is loopback") {
			t.Errorf("strict GET %s: %v; want netguard: address ... is loopback", u, err)
		}
		if n := conns.Load(); n != 0 {
			t.Errorf("strict GET %s: server accepted %d connections; want 0", u, n)
		}
		body, err := get(loose, u)
		if err != nil || body != "200 hello" {
			t.Errorf("AllowPrivate GET %s: %q, %v; want 200 hello", u, body, err)
		}
		loose.CloseIdleConnections()
		conns.Store(0)
	}
	if n := reqs.Load(); n != 2 {
		t.Errorf("server saw %d requests; want 2 (the AllowPrivate ones)", n)
	}
}

// TestTransportTLS checks HTTP/2 negotiation and insecureSkipVerify
// against a TLS server with a self-signed certificate.
func TestTransportTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	p := Policy{AllowPrivate: true}

	body, err := get(client(p, true), srv.URL)
	if err != nil || body != "200 HTTP/2.0" {
		t.Errorf("insecureSkipVerify: %q, %v; want 200 HTTP/2.0", body, err)
	}
	_, err = get(client(p, false), srv.URL)
	if err == nil || errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("verified TLS to a self-signed server: %v; want a certificate error", err)
	}
	if _, err = get(client(Policy{}, true), srv.URL); !errors.Is(err, ErrForbidden) {
		t.Errorf("strict TLS to loopback: %v; want ErrForbidden", err)
	}
}

func TestTransportSettings(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://192.0.2.1:3128")
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
	tr := Policy{}.Transport(true)
	if tr.Proxy != nil {
		t.Error("Transport uses a proxy; want none (a proxy would bypass the dial check)")
	}
	if tr.DialContext == nil || !tr.ForceAttemptHTTP2 {
		t.Errorf("DialContext set %v, ForceAttemptHTTP2 %v; want both", tr.DialContext != nil, tr.ForceAttemptHTTP2)
	}
	if !tr.TLSClientConfig.InsecureSkipVerify || (Policy{}).Transport(false).TLSClientConfig.InsecureSkipVerify {
		t.Error("InsecureSkipVerify does not follow the argument")
	}
	if tr.TLSHandshakeTimeout != 10*time.Second || tr.ResponseHeaderTimeout != 20*time.Second {
		t.Errorf("timeouts: TLS %v, response header %v; want 10s, 20s", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	if tr.MaxIdleConnsPerHost != 4 || tr.MaxResponseHeaderBytes == 0 {
		t.Errorf("MaxIdleConnsPerHost %d, MaxResponseHeaderBytes %d", tr.MaxIdleConnsPerHost, tr.MaxResponseHeaderBytes)
	}
}

func TestCheckRedirect(t *testing.T) {
	via := func(n int) []*http.Request { return make([]*http.Request, n) }
	for _, tc := range []struct {
		to      string
		hops    int
		verdict string
		want    string
	}{
		{"https://example.com/next", 1, ok, ""},
		{"https://example.com/next", MaxRedirects, ok, ""},
		{"https://example.com/next", MaxRedirects + 1, never, "stopped after 5 redirects"},
		{"http://10.0.0.1/admin", 1, private, `redirect to "http://10.0.0.1/admin": address 10.0.0.1 is private`},
		{"http://127.0.0.1:2375/containers/json", 1, private, "loopback"},
		{"http://localhost/", 1, private, "loopback"},
		{"http://[::ffff:10.0.0.1]/", 1, private, "private"},
		{"http://169.254.169.254/latest/meta-data/", 1, never, "cloud metadata"},
		{"http://metadata.google.internal/", 1, never, "cloud metadata"},
		{"http://2130706433/", 1, never, "non-canonical IPv4"},
		{"ftp://example.com/", 1, bad, "not http or https"},
		{"https://user:secret@example.com/", 1, bad, `redirect to "https://user:xxxxx@example.com/"`},
	} {
		u, err := url.Parse(tc.to)
		if err != nil {
			t.Fatal(err)
		}
		req := &http.Request{URL: u}
		strict := Policy{}.CheckRedirect(req, via(tc.hops))
		loose := Policy{AllowPrivate: true}.CheckRedirect(req, via(tc.hops))
		switch tc.verdict {
		case ok:
			if strict != nil || loose != nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want both allowed", tc.to, strict, loose)
			}
		case private:
			if strict == nil || loose != nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want refused, allowed", tc.to, strict, loose)
			}
		case never, bad:
			if strict == nil || loose == nil {
				t.Errorf("%s: strict %v, AllowPrivate %v; want both refused", tc.to, strict, loose)
			}
		}
		if strict != nil && (!strings.Contains(strict.Error(), tc.want) || !errors.Is(strict, map[bool]error{true: ErrInvalidURL, false: ErrForbidden}[tc.verdict == bad])) {
			t.Errorf("%s: error %q; want it to contain %q", tc.to, strict, tc.want)
		}
	}
}

// TestRedirectEndToEnd follows redirects between loopback servers
// (AllowPrivate, so the test servers are reachable): the chain limit
// holds, and a redirect to the metadata address is refused before any
// connection is made to it.
func TestRedirectEndToEnd(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/", http.StatusTemporaryRedirect)
	})
	srv, _, reqs := countingServer(t, mux)
	c := client(Policy{AllowPrivate: true}, false)

	body, err := get(c, fmt.Sprintf("%s/hop/%d", srv.URL, MaxRedirects))
	if err != nil || body != "200 arrived" {
		t.Errorf("%d redirects: %q, %v; want 200 arrived", MaxRedirects, body, err)
	}
	reqs.Store(0)
	_, err = get(c, fmt.Sprintf("%s/hop/%d", srv.URL, MaxRedirects+1))
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Errorf("%d redirects: %v; want stopped after 5 redirects", MaxRedirects+1, err)
	}
	if n := reqs.Load(); n != MaxRedirects+1 {
		t.Errorf("server saw %d requests in the refused chain; want %d", n, MaxRedirects+1)
	}
	_, err = get(c, srv.URL+"/metadata")
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "cloud metadata") {
		t.Errorf("redirect to metadata: %v; want cloud metadata refused", err)
	}
}
