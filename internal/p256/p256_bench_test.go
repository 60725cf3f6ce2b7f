package p256

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// The handshake benchmark runs the server side of full Gen 3 handshakes
// with each implementation this build has ("go", and "openssl" with
// -tags openssl), the device's side (protocol/dtls's ClientHandshake)
// excluded from the measure, and sets the result beside `openssl speed`
// run in the same process before and after:
//
//	go test -run '^$' -bench Handshake -benchtime 5x ./internal/p256/
//	go test -tags openssl -run '^$' -bench Handshake -benchtime 5x ./internal/p256/
//
// WICK_OPENSSL_SPEED_SECONDS sets `openssl speed -seconds` (default 1);
// without an openssl command only the rate is reported.
// docs/dtls.md#speed explains the limit's formula.

// opensslKeygens makes and frees n OpenSSL P-256 keys in one call; nil in
// the default build.
var opensslKeygens func(n int) bool

// BenchmarkServerHandshake alternates, for each implementation, `openssl
// speed` and the server's side of full handshakes: one op is one round of
// an openssl run and as much wall time of handshakes (in batches, see
// batch). The load of a shared machine changes from second to second, so
// each round's ratio sets the handshakes beside the openssl run just
// before them, and the medians over the rounds are reported:
// server-handshakes/cpu-s (handshakes per second of process CPU time in
// the server's work), openssl-limit/s (the handshakes `openssl speed`'s
// operation rates allow one CPU) and ratio-% (the round's first over its
// second). Run a few rounds: -benchtime 5x.
func BenchmarkServerHandshake(b *testing.B) {
	devKey := mustKey(b)
	const batchSize = 50
	// Seen on a Firecracker VM: 86-101 % with the profiler, 65-67 % without.
	f := flag.Lookup("test.cpuprofile")
	profiling := f != nil && f.Value.String() != ""
	for _, impl := range implementations(b, devKey) {
		b.Run(impl.name, func(b *testing.B) {
			if profiling {
				b.Log("warning: with -cpuprofile the process CPU clock may undercount the server's work; the ratio is not comparable (docs/dtls.md#speed)")
			}
			var rates, limits, ratios []float64
			b.ReportAllocs()
			for b.Loop() {
				sp := opensslLimit(b)
				var cpu int64
				n := 0
				for t0 := time.Now(); time.Since(t0) < sp.took || n == 0; n += batchSize {
					cpu += batch(b, impl.cfg, devKey, batchSize)
				}
				rate := float64(n) / (float64(cpu) / 1e9)
				rates = append(rates, rate)
				if sp.limit > 0 {
					limits = append(limits, sp.limit)
					ratios = append(ratios, 100*rate/sp.limit)
					b.Logf("round: %.0f handshakes/cpu-s (%d) beside %s = %.1f %%", rate, n, sp, 100*rate/sp.limit)
				}
			}
			b.ReportMetric(median(rates), "server-handshakes/cpu-s")
			if len(ratios) > 0 {
				b.ReportMetric(median(limits), "openssl-limit/s")
				b.ReportMetric(median(ratios), "ratio-%")
			}
		})
	}
}

// median returns the middle value of v (the mean of the two middle ones).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
}

// speed is one `openssl speed ecdsap256 ecdhp256` result.
type speed struct {
	sign, verify, ecdh, keygen float64 // operations per CPU-second
	limit                      float64 // full server handshakes per CPU-second
	took                       time.Duration
}

func (s speed) String() string {
	kg := "keygen not priced"
	if opensslKeygens != nil {
		kg = strconv.FormatFloat(s.keygen, 'f', 0, 64) + " keygen/s (in process)"
	}
	return strconv.FormatFloat(s.sign, 'f', 0, 64) + " sign/s, " + strconv.FormatFloat(s.verify, 'f', 0, 64) +
		" verify/s, " + strconv.FormatFloat(s.ecdh, 'f', 0, 64) + " ecdh/s, " + kg + " → " +
		strconv.FormatFloat(s.limit, 'f', 0, 64) + " handshakes/s"
}

var (
	ecdsaLine = regexp.MustCompile(`ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([0-9.]+)\s+([0-9.]+)`)
	ecdhLine  = regexp.MustCompile(`ecdh \(nistp256\)\s+\S+s\s+([0-9.]+)`)
)

// opensslLimit runs `openssl speed ecdsap256 ecdhp256` and turns its rates
// into the full server handshakes one CPU could do with them: one sign,
// one verify, one ECDH derivation and one key generation each. `openssl
// speed`'s "ecdh" is a derivation only (a multiplication of the peer's
// point); the key generation, a multiplication of the fixed base point
// with a precomputed table, costs about half a signature and is timed in
// this process with OpenSSL's own loop in the openssl build. The default
// build cannot call OpenSSL and prices it at nothing, so its limit is a
// little high and its ratio a little low. The zero value means no openssl.
func opensslLimit(b *testing.B) speed {
	secs := os.Getenv("WICK_OPENSSL_SPEED_SECONDS")
	if secs == "" {
		secs = "1"
	}
	start := time.Now()
	out, err := exec.Command("openssl", "speed", "-seconds", secs, "ecdsap256", "ecdhp256").CombinedOutput()
	if err != nil {
		b.Logf("openssl speed: %v", err)
		return speed{}
	}
	e, d := ecdsaLine.FindSubmatch(out), ecdhLine.FindSubmatch(out)
	if e == nil || d == nil {
		b.Logf("openssl speed: unexpected output:\n%s", out)
		return speed{}
	}
	s := speed{took: time.Since(start)}
	s.sign, _ = strconv.ParseFloat(string(e[1]), 64)
	s.verify, _ = strconv.ParseFloat(string(e[2]), 64)
	s.ecdh, _ = strconv.ParseFloat(string(d[1]), 64)
	per := 1/s.sign + 1/s.verify + 1/s.ecdh // seconds per handshake
	if opensslKeygens != nil {
		const n = 5000
		c0 := cpuNow()
		if !opensslKeygens(n) {
			b.Fatal("openssl key generation failed")
		}
		s.keygen = n / (float64(cpuNow()-c0) / 1e9)
		per += 1 / s.keygen
	}
	if s.sign > 0 && s.verify > 0 && s.ecdh > 0 {
		s.limit = 1 / per
	}
	return s
}

// BenchmarkOperations times each public-key operation of a server
// handshake alone, per implementation, in operations per CPU-second.
func BenchmarkOperations(b *testing.B) {
	devKey := mustKey(b)
	spki, err := x509.MarshalPKIXPublicKey(&devKey.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, devKey, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	peer := mustKey(b)
	point := elliptic.Marshal(elliptic.P256(), peer.X, peer.Y) //nolint:staticcheck // the wire's encoding
	for _, impl := range implementations(b, devKey) {
		cfg := impl.cfg
		crypt := cfg.Crypto
		if crypt == nil {
			crypt = goOnly{}
		}
		signer, signRand := cfg.Signer, io.Reader(rand.Reader)
		if signer == nil {
			signer, signRand = cfg.Key, nil // the server signs with Key deterministically
		}
		ops := []struct {
			name string
			f    func() error
		}{
			{"sign", func() error { _, err := signer.Sign(signRand, digest[:], crypto.SHA256); return err }},
			{"verify", func() error {
				if !crypt.Verify(spki, &devKey.PublicKey, digest[:], sig) {
					return errors.New("refused")
				}
				return nil
			}},
			{"keygen", func() error { _, err := crypt.GenerateECDHE(); return err }},
			{"keygen+ecdh", func() error {
				e, err := crypt.GenerateECDHE()
				if err == nil {
					_, err = e.SharedSecret(point)
				}
				return err
			}},
		}
		if impl.name != NameGo {
			ops = ops[:1] // crypt's VerifyECDH is timed within whole handshakes
		}
		for _, op := range ops {
			b.Run(impl.name+"/"+op.name, func(b *testing.B) {
				b.ReportAllocs()
				c0 := cpuNow()
				for b.Loop() {
					if err := op.f(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/(float64(cpuNow()-c0)/1e9), "ops/cpu-s")
			})
		}
	}
}

// goOnly is Go's crypto as a dtls.ServerCrypto, for BenchmarkOperations.
type goOnly struct{}

func (goOnly) GenerateECDHE() (dtls.ECDHEKey, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return goKey{k}, nil
}

func (goOnly) Verify(_ []byte, pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(pub, digest, sig)
}

type goKey struct{ k *ecdh.PrivateKey }

func (g goKey) PublicKey() []byte { return g.k.PublicKey().Bytes() }

func (g goKey) SharedSecret(peer []byte) ([]byte, error) { return dtls.ECDHSharedSecret(g.k, peer) }
