package p256

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

var addr = netip.MustParseAddrPort("198.51.100.7:40000")

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// implementation is one way to configure a server.
type implementation struct {
	name string
	cfg  *dtls.ServerConfig
}

// implementations returns a server config with Go's crypto and, when this
// build has another, one set up by Configure; every config knows devKey.
func implementations(t testing.TB, devKey *ecdsa.PrivateKey) []implementation {
	t.Helper()
	mk := func() *dtls.ServerConfig {
		cookies, err := dtls.NewCookies(make([]byte, dtls.CookieSecretLen))
		if err != nil {
			t.Fatal(err)
		}
		return &dtls.ServerConfig{Key: mustKey(t), Cookies: cookies, Keys: &dtls.KeyCache{},
			DeviceKey: func(pub *ecdsa.PublicKey) bool { return pub.Equal(&devKey.PublicKey) }}
	}
	out := []implementation{{NameGo, mk()}}
	if Implementation != NameGo {
		cfg := mk()
		if err := Configure(cfg); err != nil {
			t.Fatal(err)
		}
		out = append(out, implementation{Implementation, cfg})
	}
	return out
}

// handshake runs one full handshake between cfg and a device with devKey;
// serverCPU is the process CPU time spent in the server's calls.
func handshake(t testing.TB, cfg *dtls.ServerConfig, devKey *ecdsa.PrivateKey, now time.Time) (s *dtls.Session, serverCPU int64, err error) {
	cl, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: devKey, ServerKey: &cfg.Key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	in := cl.Start(now)
	var hs *dtls.ServerHandshake
	for range 2 {
		c0 := cpuNow()
		out, h, err := cfg.HandleClientHello(now, addr, in[0])
		serverCPU += cpuNow() - c0
		if err != nil {
			return nil, serverCPU, err
		}
		hs = h
		if in, _, err = cl.HandleDatagram(now, out[0]); err != nil {
			return nil, serverCPU, err
		}
	}
	c0 := cpuNow()
	out, done, err := hs.HandleDatagram(now, addr, in[0])
	serverCPU += cpuNow() - c0
	if err != nil || !done {
		return nil, serverCPU, errors.Join(err, errors.New("server not done"))
	}
	if _, done, err = cl.HandleDatagram(now, out[0]); err != nil || !done {
		return nil, serverCPU, errors.Join(err, errors.New("device not done"))
	}
	return hs.Session(), serverCPU, nil
}

// batch runs n full handshakes between cfg and devices with devKey in
// three phases: the server answers every ClientHello (cookie, then first
// flight); the devices make their flights; the server takes them all. Only
// the server's phases are timed, and the devices' garbage is collected
// before the third, so serverCPU is the process CPU time (every thread,
// the collector's share of the server's garbage included) of the server's
// work alone.
func batch(t testing.TB, cfg *dtls.ServerConfig, devKey *ecdsa.PrivateKey, n int) (serverCPU int64) {
	now := time.Now()
	cls := make([]*dtls.ClientHandshake, n)
	in := make([][]byte, n)
	for i := range cls {
		cl, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: devKey, ServerKey: &cfg.Key.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		cls[i], in[i] = cl, cl.Start(now)[0]
	}
	hss := make([]*dtls.ServerHandshake, n)
	for round := range 2 {
		out := make([][]byte, n)
		runtime.GC()
		c0 := cpuNow()
		for i := range n {
			o, hs, err := cfg.HandleClientHello(now, addr, in[i])
			if err != nil || (round == 1) != (hs != nil) {
				t.Fatal(err, hs != nil)
			}
			out[i], hss[i] = o[0], hs
		}
		serverCPU += cpuNow() - c0
		for i, cl := range cls {
			d, _, err := cl.HandleDatagram(now, out[i])
			if err != nil {
				t.Fatal(err)
			}
			in[i] = d[0]
		}
	}
	final := make([][]byte, n)
	runtime.GC()
	c0 := cpuNow()
	for i, hs := range hss {
		o, done, err := hs.HandleDatagram(now, addr, in[i])
		if err != nil || !done {
			t.Fatal(err, done)
		}
		final[i] = o[0]
	}
	serverCPU += cpuNow() - c0
	for i, cl := range cls {
		if _, done, err := cl.HandleDatagram(now, final[i]); err != nil || !done {
			t.Fatal(err, done)
		}
	}
	return serverCPU
}

func TestHandshake(t *testing.T) {
	devKey := mustKey(t)
	for _, impl := range implementations(t, devKey) {
		t.Run(impl.name, func(t *testing.T) {
			for range 3 {
				s, _, err := handshake(t, impl.cfg, devKey, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if !s.DeviceKey.Equal(&devKey.PublicKey) {
					t.Fatal("session names another device key")
				}
			}
			if cpu := batch(t, impl.cfg, devKey, 5); cpu <= 0 {
				t.Fatalf("batch: server CPU %d", cpu)
			}
		})
	}
}

func TestSigner(t *testing.T) {
	devKey := mustKey(t)
	for _, impl := range implementations(t, devKey) {
		if impl.cfg.Signer == nil {
			continue // Go's crypto: protocol/dtls tests it
		}
		digest := sha256.Sum256([]byte("server key exchange"))
		seen := map[string]bool{}
		for range 3 {
			sig, err := impl.cfg.Signer.Sign(nil, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(&impl.cfg.Key.PublicKey, digest[:], sig) {
				t.Fatalf("%s: signature does not verify", impl.name)
			}
			if seen[string(sig)] {
				t.Fatalf("%s: the same signature twice (a repeated nonce)", impl.name)
			}
			seen[string(sig)] = true
		}
		if !impl.cfg.Signer.Public().(*ecdsa.PublicKey).Equal(&impl.cfg.Key.PublicKey) {
			t.Errorf("%s: Public is not the server key", impl.name)
		}
		for _, bad := range []struct {
			name   string
			digest []byte
			opts   crypto.SignerOpts
		}{
			{"short digest", digest[:20], crypto.SHA256},
			{"other hash", digest[:], crypto.SHA384},
			{"no options", digest[:], nil},
		} {
			if _, err := impl.cfg.Signer.Sign(nil, bad.digest, bad.opts); err == nil {
				t.Errorf("%s %s: signed", impl.name, bad.name)
			}
		}
	}
}

func TestConfigureNoKey(t *testing.T) {
	if err := Configure(&dtls.ServerConfig{}); err == nil {
		t.Fatal("Configure accepted a config without a key")
	}
}
