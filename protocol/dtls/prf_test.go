package dtls

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// TestPRFGolden checks PRF byte for byte against OpenSSL's TLS1-PRF
// (testdata/prf_sha256.txt, made by testdata/gen/gen.sh).
func TestPRFGolden(t *testing.T) {
	for _, v := range readVectors(t, "prf_sha256.txt") {
		t.Run(v[0], func(t *testing.T) {
			want := unhex(t, v[4])
			got := make([]byte, len(want))
			PRF(got, unhex(t, v[1]), strings.ReplaceAll(v[2], "_", " "), unhex(t, v[3]))
			if !bytes.Equal(got, want) {
				t.Fatalf("PRF = %x, want %x", got, want)
			}
		})
	}
}

// TestDerivationGolden runs MasterSecret, KeyBlock and VerifyData on the
// inputs gen.sh used and compares with OpenSSL's outputs.
func TestDerivationGolden(t *testing.T) {
	vs := map[string][]string{}
	for _, v := range readVectors(t, "prf_sha256.txt") {
		vs[v[0]] = v
	}
	seed := unhex(t, vs["master"][3])
	cr, sr := seed[:RandomLen], seed[RandomLen:]
	ms, err := MasterSecret(unhex(t, vs["master"][1]), cr, sr)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, vs["master"][4]); !bytes.Equal(ms, want) {
		t.Fatalf("MasterSecret = %x, want %x", ms, want)
	}
	k, err := KeyBlock(ms, cr, sr)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	got = append(append(append(append(got, k.ClientKey[:]...), k.ServerKey[:]...), k.ClientIV[:]...), k.ServerIV[:]...)
	if want := unhex(t, vs["keyblock"][4]); !bytes.Equal(got, want) {
		t.Fatalf("KeyBlock = %x, want %x", got, want)
	}
	th := sha256.Sum256([]byte("handshake transcript"))
	for _, c := range []struct{ name, label string }{{"client-finished", ClientFinished}, {"server-finished", ServerFinished}} {
		vd := VerifyData(ms, c.label, th[:])
		if want := unhex(t, vs[c.name][4]); !bytes.Equal(vd[:], want) {
			t.Errorf("VerifyData(%s) = %x, want %x", c.label, vd, want)
		}
	}
}

// TestDerivationBadInput checks the length checks of MasterSecret and KeyBlock.
func TestDerivationBadInput(t *testing.T) {
	r := make([]byte, RandomLen)
	tests := []struct {
		name string
		fn   func() error
	}{
		{"master short client random", func() error { _, err := MasterSecret(r, r[:31], r); return err }},
		{"master short server random", func() error { _, err := MasterSecret(r, r, r[:1]); return err }},
		{"keyblock short master", func() error { _, err := KeyBlock(r, r, r); return err }},
		{"keyblock short random", func() error { _, err := KeyBlock(make([]byte, 48), r, nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || !strings.HasPrefix(err.Error(), "dtls: ") {
				t.Fatalf("err = %v, want a dtls: error", err)
			}
		})
	}
}

// TestPRFSmallMatchesHMAC checks the allocation-free PRF against the one on
// crypto/hmac for every secret length up to a block and beyond it, label
// and seed lengths at and around the limit, and output lengths that end
// inside and on a block.
func TestPRFSmallMatchesHMAC(t *testing.T) {
	buf := make([]byte, 200)
	for i := range buf {
		buf[i] = byte(i*7 + 3)
	}
	for _, secretLen := range []int{0, 1, 32, 48, 63, 64, 65, 100} {
		for _, seedLen := range []int{0, 12, 32, 64, prfMaxLabelSeed - 15, prfMaxLabelSeed - 14} {
			for _, outLen := range []int{1, 12, 32, 40, 48, 64, 65, 100} {
				secret, seed := buf[:secretLen], buf[50:50+seedLen]
				want := make([]byte, outLen)
				prfHMAC(want, secret, "client finished", seed)
				got := make([]byte, outLen)
				PRF(got, secret, "client finished", seed)
				if !bytes.Equal(got, want) {
					t.Fatalf("secret %d seed %d out %d: PRF = %x, want %x", secretLen, seedLen, outLen, got, want)
				}
			}
		}
	}
	out := make([]byte, KeyBlockLen)
	if n := testing.AllocsPerRun(10, func() { PRF(out, buf[:48], "key expansion", buf[:64]) }); n != 0 {
		t.Errorf("PRF allocates %v times", n)
	}
}
