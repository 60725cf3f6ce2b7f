package sim

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

func TestClassify(t *testing.T) {
	dial := func(err error) error {
		return fmt.Errorf("device: dial 127.0.0.1:1: %w", &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	handshake := func(step string, err error) error {
		return fmt.Errorf("device: handshake: protocol: handshake: %s: %w", step, err)
	}
	tests := []struct {
		err  error
		want FailureKind
	}{
		{dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), FailRefused},
		{dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), FailUnreachable},
		{dial(&net.DNSError{Err: "no such host", Name: "nope.invalid"}), FailUnreachable},
		{handshake("read nonce", io.EOF), FailNotGateway},
		{handshake("read nonce", os.ErrDeadlineExceeded), FailNotGateway},
		{handshake("read session key", io.EOF), FailClosedAfterHello},
		{handshake("read session key", io.ErrUnexpectedEOF), FailClosedAfterHello},
		{handshake("read session key", os.NewSyscallError("read", syscall.ECONNRESET)), FailClosedAfterHello},
		{handshake("write device hello", os.NewSyscallError("write", syscall.EPIPE)), FailClosedAfterHello},
		{fmt.Errorf("device: handshake: %w", protocol.ErrHandshakeSignature), FailServerKey},
		{fmt.Errorf("device: handshake: %w", protocol.ErrHandshakeDecrypt), FailServerKey},
		{device.ErrHelloTimeout, FailNotGateway},
		{handshake("read session key", os.ErrDeadlineExceeded), FailOther},
		{errors.New("something else"), FailOther},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %s; want %s", tt.err, got, tt.want)
		}
	}
}

// TestRunExplainsFailures runs the simulator against each wrong setup a
// new user meets; the run stops after the ramp-up with ErrNoDeviceOnline
// and a sentence saying what is wrong.
func TestRunExplainsFailures(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	// A listener that is no device gateway: it accepts, says nothing, and
	// hangs up.
	notGateway, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer notGateway.Close()
	go func() {
		for {
			c, err := notGateway.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(20*time.Millisecond, func() { c.Close() })
		}
	}()

	otherKey := filepath.Join(t.TempDir(), "other.pub.pem")
	pemKey, _ := protocol.MarshalPublicKeyPEM(&otherServerKey(t).PublicKey)
	os.WriteFile(otherKey, pemKey, 0o644)

	tests := []struct {
		name  string
		setup func(h *harness)
		kind  FailureKind
		why   string
	}{
		{"nothing listening", func(h *harness) { h.cfg.Server = closedAddr }, FailRefused,
			"nothing listens at " + closedAddr + ": is wick serve running"},
		{"not a device port", func(h *harness) { h.cfg.Server = notGateway.Addr().String() }, FailNotGateway,
			"did not start a device handshake: is --server the device port"},
		{"keys not provisioned", func(h *harness) { h.cfg.API, h.cfg.Token = "", "" }, FailClosedAfterHello,
			"it has no key on file for the device (provision the keys: add --api URL --token TOKEN, or run wick device provision)"},
		{"provisioned, wrong server key", func(h *harness) { h.cfg.ServerKey = otherKey }, FailClosedAfterHello,
			"although its key was provisioned through --api: --server-key (or --data) is probably not this server's key"},
		{"provisioning refused", func(h *harness) { h.cfg.Count = 1; h.api.refuse, _ = DeviceID("51", 1) }, "",
			"the API at http://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2)
			tt.setup(h)
			h.cfg.Duration = time.Minute
			start := time.Now()
			sum, err := Run(context.Background(), h.cfg, nil, nil)
			if !errors.Is(err, ErrNoDeviceOnline) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("Run = %v; want ErrNoDeviceOnline with %q", err, tt.why)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("Run took %v: it should stop after the ramp-up", time.Since(start))
			}
			if tt.kind == "" { // no device started: nothing to classify
				if len(sum.Failures) != 0 || sum.Failed != h.cfg.Count || !strings.Contains(err.Error(), "refused every device key") {
					t.Errorf("failures %+v, failed %d, error %v", sum.Failures, sum.Failed, err)
				}
				return
			}
			if len(sum.Failures) != 1 || sum.Failures[0].Kind != tt.kind || sum.Failures[0].Devices != 2 || sum.Failed != 2 {
				t.Errorf("failures %+v, failed %d; want both devices as %s", sum.Failures, sum.Failed, tt.kind)
			}
			var out strings.Builder
			sum.Write(&out)
			if !strings.Contains(out.String(), "never online  2: "+string(tt.kind)) {
				t.Errorf("summary lacks the failure line:\n%s", out.String())
			}
		})
	}
}

// otherServerKey is an RSA-2048 key that no test server holds.
func otherServerKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
