package dtls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"

	"github.com/pion/dtls/v4/pkg/crypto/ccm"
)

// referenceCCM is an independent AES-CCM-8 (pion's, which Wick used for
// record protection before ccm8), the reference ccm8 is checked against.
func referenceCCM(t testing.TB, key []byte) (ours, ref cipher.AEAD) {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	ref, err = ccm.NewCCM(b, TagLen, ccmNonceLen)
	if err != nil {
		t.Fatal(err)
	}
	return &ccm8{b: b}, ref
}

// TestCCM8MatchesReference: for additional data and messages of every
// length around the block size, ccm8 seals exactly what the reference
// seals, each opens the other's records, and a record with any bit of
// its ciphertext, tag, additional data or nonce changed does not open.
func TestCCM8MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	lens := []int{0, 1, 4, 5, 13, 14, 15, 16, 17, 22, 31, 32, 33, 100, 1024}
	for _, aadLen := range lens {
		for _, msgLen := range lens {
			key, nonce, aad, msg := fill(16), fill(ccmNonceLen), fill(aadLen), fill(msgLen)
			ours, ref := referenceCCM(t, key)
			got := ours.Seal([]byte("prefix"), nonce, msg, aad)
			want := ref.Seal([]byte("prefix"), nonce, msg, aad)
			if !bytes.Equal(got, want) {
				t.Fatalf("aad %d, message %d: sealed\n% x\nwant\n% x", aadLen, msgLen, got, want)
			}
			sealed := got[len("prefix"):]
			for name, open := range map[string]cipher.AEAD{"ccm8": ours, "reference": ref} {
				p, err := open.Open(nil, nonce, sealed, aad)
				if err != nil || !bytes.Equal(p, msg) {
					t.Fatalf("aad %d, message %d: %s opens it to % x, %v", aadLen, msgLen, name, p, err)
				}
			}
			bit := rng.IntN(8 * len(sealed))
			sealed[bit/8] ^= 1 << (bit % 8)
			if p, err := ours.Open(nil, nonce, sealed, aad); err == nil {
				t.Fatalf("aad %d, message %d: opened with bit %d of the record flipped: % x", aadLen, msgLen, bit, p)
			}
			sealed[bit/8] ^= 1 << (bit % 8)
			if aadLen > 0 {
				aad[0] ^= 1
				if _, err := ours.Open(nil, nonce, sealed, aad); err == nil {
					t.Fatalf("aad %d, message %d: opened with other additional data", aadLen, msgLen)
				}
				aad[0] ^= 1
			}
			nonce[11] ^= 0x80
			if _, err := ours.Open(nil, nonce, sealed, aad); err == nil {
				t.Fatalf("aad %d, message %d: opened with another nonce", aadLen, msgLen)
			}
		}
	}
}

// TestCCM8InPlace: sealing into the plaintext's own storage and opening
// into the ciphertext's give the same bytes as separate buffers, and a
// failed Open leaves no plaintext behind in dst's storage.
func TestCCM8InPlace(t *testing.T) {
	key, nonce, aad := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, ccmNonceLen), []byte("header")
	ours, _ := referenceCCM(t, key)
	msg := []byte("a message longer than one AES block, in place")
	want := ours.Seal(nil, nonce, msg, aad)
	buf := make([]byte, len(msg), len(msg)+TagLen)
	copy(buf, msg)
	got := ours.Seal(buf[:0], nonce, buf, aad)
	if !bytes.Equal(got, want) {
		t.Fatalf("sealed in place\n% x\nwant\n% x", got, want)
	}
	p, err := ours.Open(got[:0], nonce, got, aad)
	if err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("opened in place to %q, %v", p, err)
	}
	bad := ours.Seal(nil, nonce, msg, aad)
	bad[len(bad)-1] ^= 1
	dst := make([]byte, 0, len(bad))
	if _, err := ours.Open(dst, nonce, bad, aad); err == nil {
		t.Fatal("a bad tag opened")
	}
	if !bytes.Equal(dst[:cap(dst)], make([]byte, cap(dst))) {
		t.Fatalf("a failed Open left % x in dst", dst[:cap(dst)])
	}
}

// TestCCM8NoAllocations: a record's Seal and Open allocate nothing once
// dst has room.
func TestCCM8NoAllocations(t *testing.T) {
	ours, _ := referenceCCM(t, make([]byte, 16))
	nonce, aad, msg := make([]byte, ccmNonceLen), make([]byte, 22), make([]byte, 100)
	sealed := make([]byte, 0, 200)
	opened := make([]byte, 0, 200)
	allocs := testing.AllocsPerRun(100, func() {
		s := ours.Seal(sealed[:0], nonce, msg, aad)
		if _, err := ours.Open(opened[:0], nonce, s, aad); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Seal and Open, want 0", allocs)
	}
}

// FuzzCCM8 checks ccm8 against the reference on any key, nonce,
// additional data and message, and that a sealed record opens.
func FuzzCCM8(f *testing.F) {
	f.Add(make([]byte, 16), make([]byte, ccmNonceLen), []byte("aad"), []byte("message"))
	f.Add(make([]byte, 16), make([]byte, ccmNonceLen), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, key, nonce, aad, msg []byte) {
		if len(key) != 16 || len(nonce) != ccmNonceLen || len(aad) > 4096 || len(msg) > 4096 {
			return
		}
		ours, ref := referenceCCM(t, key)
		got, want := ours.Seal(nil, nonce, msg, aad), ref.Seal(nil, nonce, msg, aad)
		if !bytes.Equal(got, want) {
			t.Fatalf("sealed % x, want % x", got, want)
		}
		if p, err := ours.Open(nil, nonce, got, aad); err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("opened to % x, %v", p, err)
		}
		// Arbitrary bytes as a record: both agree on whether it opens.
		p1, err1 := ours.Open(nil, nonce, msg, aad)
		p2, err2 := ref.Open(nil, nonce, msg, aad)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(p1, p2) {
			t.Fatalf("opening % x: % x, %v; reference % x, %v", msg, p1, err1, p2, err2)
		}
	})
}
