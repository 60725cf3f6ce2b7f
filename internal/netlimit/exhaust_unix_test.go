//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package netlimit

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/testproc"
)

// lowNoFileEnv makes the test binary run lowNoFileServer instead of the
// tests: a listener process whose descriptor limit is lowNoFile.
const (
	lowNoFileEnv = "NETLIMIT_TEST_LOW_NOFILE_SERVER"
	lowNoFile    = 200
)

func TestMain(m *testing.M) {
	if os.Getenv(lowNoFileEnv) == "1" {
		lowNoFileServer()
		return
	}
	os.Exit(m.Run())
}

// lowNoFileServer lowers its own RLIMIT_NOFILE to lowNoFile, raises it
// again with RaiseNoFile (which can only reach the new hard limit), caps a
// "device" listener at three quarters of Budget like the server does, and
// serves an "api" listener that answers "ok" to every connection. It
// prints both addresses on stdout and logs to stderr until killed.
func lowNoFileServer() {
	lim := syscall.Rlimit{Cur: lowNoFile, Max: lowNoFile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		panic(err)
	}
	nofile, err := RaiseNoFile()
	if err != nil || nofile < lowNoFile {
		panic("RaiseNoFile lowered the limit")
	}
	if nofile > lowNoFile {
		// A privileged process lifted the hard limit: lower it again.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			panic(err)
		}
		nofile = lowNoFile
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	dev, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	devLn := Wrap(dev, Limits{Max: Budget(nofile) * 3 / 4})
	devLn.SetLogger(log, "device")
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString(dev.Addr().String() + " " + api.Addr().String() + "\n")
	go func() {
		var held []net.Conn // device connections stay open, as sessions do
		for {
			c, err := devLn.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	for {
		c, err := api.Accept()
		if err != nil {
			log.Error("api accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// The answer needs a descriptor beyond the connection, as an API
		// request that opens a database file does.
		f, err := os.Open(os.DevNull)
		if err != nil {
			c.Write([]byte("starved\n"))
		} else {
			f.Close()
			c.Write([]byte("ok\n"))
		}
		c.Close()
	}
}

// TestLowDescriptorLimit runs lowNoFileServer in a subprocess and opens
// more device connections than its whole descriptor limit: the listener
// keeps only its cap, closes the rest at once and says so in one log line,
// and the API listener still answers.
func TestLowDescriptorLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^$")
	cmd.Env = append(os.Environ(), lowNoFileEnv+"=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("subprocess: %v; stderr:\n%s", err, stderr.String())
	}
	addrs := strings.Fields(line)
	if len(addrs) != 2 {
		t.Fatalf("subprocess printed %q", line)
	}
	wantOpen := Budget(lowNoFile) * 3 / 4
	const dials = lowNoFile + 50 // more than the subprocess could hold at all
	conns := make([]net.Conn, 0, dials)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range dials {
		c, err := net.Dial("tcp", addrs[0])
		if err != nil {
			t.Fatalf("dial device listener: %v", err)
		}
		conns = append(conns, c)
	}
	// A refused connection reads EOF (or a reset) at once; a held one
	// times out.
	var mu sync.Mutex
	held := 0
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := c.Read(make([]byte, 1))
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				held++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if held != wantOpen {
		t.Errorf("device connections held = %d, want the cap %d", held, wantOpen)
	}
	c, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatalf("dial api listener: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ok\n" {
		t.Errorf("api answered %q, %v; want ok", got, err)
	}
	logs := stderr.String()
	if n := strings.Count(logs, "connection cap reached"); n != 1 {
		t.Errorf("%d cap lines logged, want 1 (rate-limited); stderr:\n%s", n, logs)
	}
	if !strings.Contains(logs, "listener=device") || strings.Contains(logs, "api accept") {
		t.Errorf("log lacks the listener's name or shows API accept errors; stderr:\n%s", logs)
	}
}

// syncBuffer is a buffer safe for a subprocess's writer and the test.
type syncBuffer = testproc.Log
