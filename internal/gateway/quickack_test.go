package gateway

import (
	"net"
	"runtime"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// wrapped hides a connection's type, exposing it with NetConn as
// crypto/tls does.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// opaque hides a connection's type without a way back to it.
type opaque struct{ net.Conn }

func TestQuickACK(t *testing.T) {
	_, tcp := tcpPair(t)
	pipe, _ := net.Pipe()
	defer pipe.Close()
	onLinux := runtime.GOOS == "linux"
	for _, tc := range []struct {
		name string
		conn net.Conn
		want bool
	}{
		{"TCP", tcp, onLinux},
		{"wrapped TCP", wrapped{tcp}, onLinux},
		{"TCP wrapped twice", wrapped{wrapped{tcp}}, onLinux},
		{"opaque wrapper", opaque{tcp}, false},
		{"net.Pipe", pipe, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQuickACK(tc.conn)
			if q.enabled() != tc.want {
				t.Fatalf("enabled = %v, want %v", q.enabled(), tc.want)
			}
			// Re-armed after every frame: it must not allocate.
			if n := testing.AllocsPerRun(100, q.arm); n != 0 {
				t.Errorf("arm allocates %.1f times", n)
			}
		})
	}
	// A closed socket is not an error worth a crash.
	q := newQuickACK(tcp)
	tcp.Close()
	q.arm()
}

// BenchmarkQuickACKArm is the cost the read loop pays per frame (one
// setsockopt on Linux).
func BenchmarkQuickACKArm(b *testing.B) {
	_, tcp := tcpPair(b)
	q := newQuickACK(tcp)
	b.ReportAllocs()
	for b.Loop() {
		q.arm()
	}
}
