package netlimit

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/doccheck"
)

func TestKey(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5683}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 1}, "2001:db8:1:3::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.8"), Port: 1}, "192.0.2.8"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "/tmp/s"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := Key(tt.addr); got != tt.want {
			t.Errorf("Key(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		nofile uint64
		want   int
	}{{1024, 768}, {4096, 3584}, {65536, 57344}, {300, 64}, {0, 64}, {1 << 20, 917504}}
	for _, tt := range tests {
		if got := Budget(tt.nofile); got != tt.want {
			t.Errorf("Budget(%d) = %d, want %d", tt.nofile, got, tt.want)
		}
	}
}

// dialFrom connects to ln from the loopback address src (any 127/8
// address is loopback on Linux).
func dialFrom(t *testing.T, src, dst string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", dst)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedSoon reports whether the server closed c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestListenerCaps: beyond PerIP connections from one address the extra
// ones are closed at once while another address still connects; beyond
// Max, every address is refused; closing a connection frees its place.
func TestListenerCaps(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Limits{Max: 5, PerIP: 3})
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	addr := raw.Addr().String()
	var mine []net.Conn // server sides of 127.0.0.1's connections
	for range 3 {
		dialFrom(t, "127.0.0.1", addr)
		mine = append(mine, <-accepted)
	}
	extra := dialFrom(t, "127.0.0.1", addr)
	if !closedSoon(extra, 2*time.Second) {
		t.Error("a 4th connection from 127.0.0.1 stayed open")
	}
	other := dialFrom(t, "127.0.0.2", addr)
	select {
	case c := <-accepted:
		if got := Key(c.RemoteAddr()); got != "127.0.0.2" {
			t.Errorf("accepted a connection from %s, want 127.0.0.2", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("127.0.0.2 was not accepted")
	}
	if closedSoon(other, 100*time.Millisecond) {
		t.Error("the connection from 127.0.0.2 was closed")
	}
	dialFrom(t, "127.0.0.3", addr)
	<-accepted // 5 open: the global cap
	if c := dialFrom(t, "127.0.0.4", addr); !closedSoon(c, 2*time.Second) {
		t.Error("a connection beyond Max stayed open")
	}
	if ln.Open() != 5 || ln.Refused() != 2 {
		t.Errorf("Open %d, Refused %d; want 5, 2", ln.Open(), ln.Refused())
	}
	// Closing one of 127.0.0.1's connections frees its place.
	mine[0].Close()
	dialFrom(t, "127.0.0.1", addr)
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("127.0.0.1 was not accepted after one of its connections closed")
	}
}

// TestExempt: exempt addresses (trusted proxies) have no per-address cap,
// only the total one.
func TestExempt(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := netip.MustParseAddr("127.0.0.1")
	ln := Wrap(raw, Limits{Max: 4, PerIP: 1, Exempt: func(a netip.Addr) bool { return a == proxy }})
	defer ln.Close()
	go func() {
		for {
			if _, err := ln.Accept(); err != nil {
				return
			}
		}
	}()
	for range 3 {
		if c := dialFrom(t, "127.0.0.1", raw.Addr().String()); closedSoon(c, 100*time.Millisecond) {
			t.Fatal("a connection from the exempt address was closed")
		}
	}
	dialFrom(t, "127.0.0.2", raw.Addr().String())
	if c := dialFrom(t, "127.0.0.2", raw.Addr().String()); !closedSoon(c, 2*time.Second) {
		t.Error("a 2nd connection from 127.0.0.2 stayed open")
	}
	if c := dialFrom(t, "127.0.0.1", raw.Addr().String()); !closedSoon(c, 2*time.Second) {
		t.Error("the total cap does not hold for the exempt address")
	}
}

func TestReleaseOnce(t *testing.T) {
	l := Wrap(nil, Limits{Max: 1, PerIP: 1})
	if !l.admit("a") || l.admit("a") || l.admit("b") {
		t.Fatal("admit does not hold the caps")
	}
	c := &conn{Conn: nopConn{}, l: l, key: "a"}
	c.Close()
	c.Close()
	if l.Open() != 0 || len(l.byKey) != 0 {
		t.Errorf("after two closes: %d open, %v", l.Open(), l.byKey)
	}
	if !l.admit("b") {
		t.Error("the place was not freed")
	}
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

func FuzzKeyOf(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:10.0.0.1", "2001:db8::1", "fe80::1%eth0", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		k := KeyOf(ip)
		if ip.Unmap().Is4() {
			if k != ip.Unmap().String() {
				t.Fatalf("KeyOf(%s) = %q", s, k)
			}
			return
		}
		p, err := netip.ParsePrefix(k)
		if err != nil || p.Bits() != 64 || !p.Contains(ip.WithZone("")) {
			t.Fatalf("KeyOf(%s) = %q, want its /64", s, k)
		}
	})
}

func TestStandardLibraryOnly(t *testing.T) {
	doccheck.StandardLibraryOnly(t, doccheck.Sources(t))
}

func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}

func TestRaiseNoFile(t *testing.T) {
	got, err := RaiseNoFile()
	if err != nil {
		t.Skipf("descriptor limit cannot be raised here: %v", err)
	}
	again, err := RaiseNoFile()
	if err != nil || again != got || got == 0 {
		t.Errorf("RaiseNoFile = %d, then %d, %v; want the same non-zero limit", got, again, err)
	}
}
