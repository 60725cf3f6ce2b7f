// Package testproc runs the child processes of Wick's multi-process tests
// (a `wick serve` killed and restarted, a cluster of wick and nats-server
// processes): it builds the binaries, starts processes with their output
// collected, stops them when the test ends, finds free ports, waits for
// listeners and sends API requests. Only tests import it; it imports
// nothing of Wick's.
package testproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Log collects output for failure messages and polling (a child
// process's, a server's log); it is safe for concurrent writes, and the
// tests of other packages use it as their locked buffer.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Tail returns the last n bytes written.
func (l *Log) Tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// Proc is a child process a test started.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  *Log
	done chan struct{}
}

// Start runs bin with args, its output going to log (a new Log when nil),
// and stops it when the test ends: SIGTERM, then SIGKILL after 15 s. When
// the test failed the tail of the output is logged.
func Start(t testing.TB, name string, log *Log, bin string, args ...string) *Proc {
	t.Helper()
	if log == nil {
		log = &Log{}
	}
	p := &Proc{Name: name, Log: log, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = log, log
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.Cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output (tail) ---\n%s", name, log.Tail(4000))
		}
	})
	return p
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.Name, err)
	}
	<-p.done
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary is a program to build: its file name and its package (an import
// path, or a ./ path in the module).
type Binary struct {
	Name, Pkg string
}

// Build compiles the binaries into dir, concurrently, and returns their
// paths in order.
func Build(t testing.TB, dir string, bs ...Binary) []string {
	t.Helper()
	bins := make([]string, len(bs))
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		bins[i] = filepath.Join(dir, b.Name)
		pkg := b.Pkg
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", bins[i], pkg)
			cmd.Dir = RepoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return bins
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago (port 0 cannot be handed to another process).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// WaitTCP waits up to 30 s until addr accepts connections; p's output goes
// into the failure message.
func WaitTCP(t testing.TB, addr string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %v\n%s", p.Name, addr, err, p.Log.Tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Request sends an API request with client to base+path, with a bearer
// token when set and a JSON body (js) or a form, and returns the status
// and body.
func Request(ctx context.Context, client *http.Client, method, base, path, token string, form url.Values, js string) (int, []byte, error) {
	var body io.Reader
	ctype := ""
	switch {
	case js != "":
		body, ctype = strings.NewReader(js), "application/json"
	case form != nil:
		body, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
