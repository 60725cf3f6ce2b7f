package rsakey

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

// The keys are protocol's test keys, made with openssl (protocol/testdata/gen.sh).
func testKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "protocol", "testdata", name+"_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := protocol.ParseRSAPrivateKey(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// loaded returns the server test key as Load gives it in this build.
func loaded(t testing.TB) (*rsa.PrivateKey, protocol.ServerKey) {
	t.Helper()
	priv := testKey(t, "server")
	k, err := Load(priv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return priv, k
}

// implementations are the keys to compare or measure: crypto/rsa, and the
// build's own when it is another.
func implementations(t testing.TB) []struct {
	name string
	key  protocol.ServerKey
} {
	priv, k := loaded(t)
	impls := []struct {
		name string
		key  protocol.ServerKey
	}{{NameGo, priv}}
	if Name(k) != NameGo {
		impls = append(impls, struct {
			name string
			key  protocol.ServerKey
		}{Name(k), k})
	}
	return impls
}

func hmac20(i byte) []byte {
	h := sha1.Sum([]byte{i})
	return h[:]
}

func TestLoad(t *testing.T) {
	good := testKey(t, "server")
	badD := *testKey(t, "server")
	badD.D = new(big.Int).Add(badD.D, big.NewInt(2))
	badPrime := *testKey(t, "server")
	badPrime.Primes = []*big.Int{badPrime.Primes[0], big.NewInt(7)}
	tests := []struct {
		name string
		priv *rsa.PrivateKey
		ok   bool
	}{
		{"server_2048", good, true},
		{"device_1024", testKey(t, "device"), true},
		{"nil", nil, false},
		{"wrong_exponent", &badD, false},
		{"wrong_prime", &badPrime, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Load(tc.priv)
			if !tc.ok {
				if err == nil {
					t.Fatalf("Load = %s key, want an error", Name(k))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := Name(k); got != Implementation {
				t.Errorf("Name = %q, want %q", got, Implementation)
			}
			if !tc.priv.PublicKey.Equal(k.Public()) {
				t.Error("Public differs from the key loaded")
			}
		})
	}
	if Implementation != NameGo && Implementation != NameOpenSSL {
		t.Errorf("Implementation = %q", Implementation)
	}
}

func TestName(t *testing.T) {
	priv, k := loaded(t)
	tests := []struct {
		key  protocol.ServerKey
		want string
	}{
		{priv, NameGo},
		{k, Implementation},
		{struct{ protocol.ServerKey }{priv}, "other"},
	}
	for _, tc := range tests {
		if got := Name(tc.key); got != tc.want {
			t.Errorf("Name(%T) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestSignMatchesCryptoRSA: the loaded key's raw PKCS#1 v1.5 signature is
// byte-identical to crypto/rsa's (the scheme is deterministic).
func TestSignMatchesCryptoRSA(t *testing.T) {
	priv, k := loaded(t)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"hmac_a", hmac20(1), true},
		{"hmac_b", hmac20(2), true},
		{"zeros_20", make([]byte, 20), true},
		{"ones_20", bytes.Repeat([]byte{0xff}, 20), true},
		{"empty", nil, true},
		{"one_byte", []byte{0x80}, true},
		{"max_245", bytes.Repeat([]byte{0xa5}, 256-11), true},
		{"too_long_246", bytes.Repeat([]byte{0xa5}, 256-10), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), tc.in)
			got, err := k.Sign(nil, tc.in, crypto.Hash(0))
			if (werr == nil) != tc.ok || (err == nil) != tc.ok {
				t.Fatalf("errors: crypto/rsa %v, %s %v; want ok=%v", werr, Name(k), err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("signature differs from crypto/rsa's\n got %x\nwant %x", got, want)
			}
			if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.Hash(0), tc.in, got); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestDecryptRoundTrip(t *testing.T) {
	priv, k := loaded(t)
	hello := make([]byte, protocol.NonceSize+protocol.DeviceIDSize+162)
	rand.Read(hello)
	tests := []struct {
		name  string
		plain []byte
	}{
		{"empty", nil},
		{"one_byte", []byte{0}},
		{"old_core_52", hello[:52]},
		{"device_hello_214", hello},
		{"max_245", bytes.Repeat([]byte{0x5a}, 256-11)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
			ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, tc.plain)
			if err != nil {
				t.Fatal(err)
			}
			for _, opts := range []crypto.DecrypterOpts{nil, &rsa.PKCS1v15DecryptOptions{}} {
				got, err := k.Decrypt(nil, ct, opts)
				if err != nil {
					t.Fatalf("Decrypt(opts %v): %v", opts, err)
				}
				if !bytes.Equal(got, tc.plain) {
					t.Fatalf("Decrypt = %x, want %x", got, tc.plain)
				}
			}
		})
	}
}

// TestDecryptBadCiphertext: every bad block fails with rsa.ErrDecryption in
// both implementations, and the handshake refuses it as ErrHandshakeDecrypt.
func TestDecryptBadCiphertext(t *testing.T) {
	priv := testKey(t, "server")
	other := testKey(t, "server2")
	nonce := bytes.Repeat([]byte{7}, protocol.NonceSize)
	// crypto/rsa reads a block shorter than the modulus as a number, so the
	// short_255 case (good without its first byte) is only a different
	// number when that byte is not zero: a random padding makes it zero about
	// once in 190 seals, which failed CI once. Seal until it is not.
	var good []byte
	for good == nil || good[0] == 0 {
		var err error
		if good, err = protocol.SealDeviceHello(&priv.PublicKey, nonce, protocol.DeviceID{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	flipped := bytes.Clone(good)
	flipped[100] ^= 1
	toOther, err := protocol.SealDeviceHello(&other.PublicKey, nonce, protocol.DeviceID{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The block that decrypts to 00 01 ff..: type 1 (signature) padding.
	type1, err := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), make([]byte, 52))
	if err != nil {
		t.Fatal(err)
	}
	type1Block := new(big.Int).Exp(new(big.Int).SetBytes(type1), big.NewInt(int64(priv.E)), priv.N).FillBytes(make([]byte, 256))
	tests := []struct {
		name     string
		block    []byte
		helloErr error // from protocol.OpenDeviceHello
	}{
		{"zeros", make([]byte, 256), protocol.ErrHandshakeDecrypt},
		{"one", append(make([]byte, 255), 1), protocol.ErrHandshakeDecrypt},
		{"repeated_5a", bytes.Repeat([]byte{0x5a}, 256), protocol.ErrHandshakeDecrypt},
		{"above_modulus", bytes.Repeat([]byte{0xff}, 256), protocol.ErrHandshakeDecrypt},
		{"modulus", priv.N.FillBytes(make([]byte, 256)), protocol.ErrHandshakeDecrypt},
		{"flipped_bit", flipped, protocol.ErrHandshakeDecrypt},
		{"encrypted_to_other_key", toOther, protocol.ErrHandshakeDecrypt},
		{"type1_padding", type1Block, protocol.ErrHandshakeDecrypt},
		{"short_255", good[1:], protocol.ErrHandshakeSize},
		{"long_257", append([]byte{0}, good...), protocol.ErrHandshakeSize},
		{"empty", []byte{}, protocol.ErrHandshakeSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, impl := range implementations(t) {
				if _, err := impl.key.Decrypt(nil, tc.block, nil); !errors.Is(err, rsa.ErrDecryption) {
					t.Errorf("%s: Decrypt error %v, want rsa.ErrDecryption", impl.name, err)
				}
				if _, err := protocol.OpenDeviceHello(impl.key, nonce, tc.block); !errors.Is(err, tc.helloErr) {
					t.Errorf("%s: OpenDeviceHello error %v, want %v", impl.name, err, tc.helloErr)
				}
			}
		})
	}
	// The good block itself opens with both.
	for _, impl := range implementations(t) {
		h, err := protocol.OpenDeviceHello(impl.key, nonce, good)
		if err != nil || h.ID != (protocol.DeviceID{1}) {
			t.Errorf("%s: good block: %+v, %v", impl.name, h, err)
		}
	}
}

// TestServerHandshake runs the whole handshake against the device side of
// protocol with the loaded key.
func TestServerHandshake(t *testing.T) {
	priv, k := loaded(t)
	device := testKey(t, "device")
	id := protocol.DeviceID{0xe0, 0x0f, 0xce, 0x68, 1, 2, 3, 4, 5, 6, 7, 8}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	type result struct {
		keys protocol.SessionKeys
		err  error
	}
	done := make(chan result, 1)
	go func() {
		keys, err := protocol.DeviceHandshake(client, protocol.DeviceHandshakeConfig{ID: id, PrivateKey: device, ServerKey: &priv.PublicKey})
		done <- result{keys, err}
	}()
	res, err := protocol.ServerHandshake(server, protocol.ServerHandshakeConfig{
		PrivateKey: k,
		DeviceKey: func(got protocol.DeviceID, offered []byte) (*rsa.PublicKey, error) {
			if got != id {
				t.Errorf("device ID %s, want %s", got, id)
			}
			return &device.PublicKey, protocol.CheckOfferedKey(&device.PublicKey, offered)
		},
	})
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	dev := <-done
	if dev.err != nil {
		t.Fatalf("device: %v", dev.err)
	}
	if dev.keys != res.Keys || res.DeviceID != id {
		t.Fatalf("device keys %+v, server %+v (id %s)", dev.keys, res.Keys, res.DeviceID)
	}
}

// TestConcurrent shares one key between goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	priv, k := loaded(t)
	const workers, rounds = 6, 8
	want := make([][]byte, rounds)
	cts := make([][]byte, rounds)
	for i := range rounds {
		var err error
		if want[i], err = rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), hmac20(byte(i))); err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
		if cts[i], err = rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, hmac20(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				i := (w + r) % rounds
				sig, err := k.Sign(nil, hmac20(byte(i)), crypto.Hash(0))
				if err != nil || !bytes.Equal(sig, want[i]) {
					t.Errorf("worker %d: Sign %d: %v (equal %v)", w, i, err, bytes.Equal(sig, want[i]))
					return
				}
				plain, err := k.Decrypt(nil, cts[i], nil)
				if err != nil || !bytes.Equal(plain, hmac20(byte(i))) {
					t.Errorf("worker %d: Decrypt %d: %x, %v", w, i, plain, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzDecrypt compares the loaded key's decryption of any block with
// crypto/rsa's: the same plaintext, or both rsa.ErrDecryption.
func FuzzDecrypt(f *testing.F) {
	priv, k := loaded(f)
	for _, n := range []int{0, 20, 214, 245} {
		//lint:ignore SA1019 the handshake's PKCS#1 v1.5 encryption (docs/particle-protocol.md#tcp-handshake).
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, bytes.Repeat([]byte{byte(n)}, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Add(make([]byte, 256))
	f.Add(bytes.Repeat([]byte{0xff}, 256))
	f.Fuzz(func(t *testing.T, block []byte) {
		want, werr := priv.Decrypt(nil, block, nil)
		got, err := k.Decrypt(nil, block, nil)
		if (werr == nil) != (err == nil) || !bytes.Equal(got, want) {
			t.Fatalf("crypto/rsa: %x, %v; %s: %x, %v", want, werr, Name(k), got, err)
		}
		if err != nil && !errors.Is(err, rsa.ErrDecryption) {
			t.Fatalf("error %v, want rsa.ErrDecryption", err)
		}
	})
}
