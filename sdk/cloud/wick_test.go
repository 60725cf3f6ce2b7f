package cloud_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server/servertest"
)

// The tests of this file run the SDK against a real Wick server started in
// the test process; only HTTP (and, for the simulated device, Particle's
// device protocol) connects them.

const (
	ownerEmail    = servertest.Owner
	ownerPassword = servertest.OwnerPassword
)

// wick is one running server.
type wick struct {
	api        string // base URL
	deviceAddr string // gateway HOST:PORT
	srv        *servertest.Wick
}

// startWick starts a server with the account ownerEmail and stops it at
// cleanup. The per-token publish limit is off so that tests may publish
// quickly, webhooks may reach loopback targets, and anyone may sign up.
func startWick(t *testing.T) *wick {
	t.Helper()
	w := servertest.Start(t, func(cfg *config.Serve) {
		cfg.PublishBurst = 0
		cfg.WebhookAllowPrivate = true // the tests' webhook targets are on 127.0.0.1
		cfg.Signup = true
	})
	return &wick{api: w.API, deviceAddr: w.DeviceAddr, srv: w}
}

// startDevice runs one simulated device (functions led; variables temp,
// count, label, on) whose key token provisions (into product, when not
// "") and which is claimed to token's owner. It stops at cleanup and
// returns the device ID.
func (w *wick) startDevice(t *testing.T, token, product string) string {
	t.Helper()
	return w.srv.StartDevice(t, servertest.Device{Token: token, Product: product})
}

// proxy forwards TCP connections to a backend; it can drop every open
// connection and refuse new ones, to cut an event stream in the middle.
type proxy struct {
	ln      net.Listener
	backend string

	mu     sync.Mutex
	paused bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// startProxy listens on 127.0.0.1 and forwards to backend (HOST:PORT)
// until cleanup.
func startProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut(false)
		p.wg.Wait()
	})
	return p
}

// url is the proxy's base URL.
func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		if !paused {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward copies between c and a new backend connection.
func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(b, c); b.Close() }()
	go func() { defer wg.Done(); io.Copy(c, b); c.Close() }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

// cut closes every open connection; with pause, new connections are
// closed at once until resume.
func (p *proxy) cut(pause bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = pause
	for c := range p.conns {
		c.Close()
	}
}

// resume accepts connections again.
func (p *proxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// withinSlack scales within's bounds: d is ample on a quiet machine, but
// under -race on a loaded CI machine a flow runs many times slower
// (TestProductDevices' 10 s login timed out at load 30), and a passing test
// never waits the bound out.
const withinSlack = 4

// within returns a context that ends after withinSlack times d, canceled
// at cleanup.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), withinSlack*d)
	t.Cleanup(cancel)
	return ctx
}
