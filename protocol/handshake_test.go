package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// testKeys are the RSA keys in testdata/, made by gen.sh with openssl.
type testKeys struct {
	server, server2, device, device2 *rsa.PrivateKey
}

func loadTestKeys(t testing.TB) testKeys {
	t.Helper()
	load := func(name string) *rsa.PrivateKey {
		k, err := ParseRSAPrivateKey(readTestdata(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return k
	}
	return testKeys{
		server:  load("server_key.pem"),
		server2: load("server2_key.pem"),
		device:  load("device_key.pem"),
		device2: load("device2_key.pem"),
	}
}

func TestOpenDeviceHelloGolden(t *testing.T) {
	k := loadTestKeys(t)
	g := loadGolden(t, "handshake.golden")
	nonce := g.hex1(t, "nonce")
	wantID := DeviceID(g.hex1(t, "device_id"))
	spki := readTestdata(t, "device_key.pub.der")

	tests := []struct {
		name     string
		block    []byte
		key      *rsa.PrivateKey
		wantSPKI []byte
		err      error
	}{
		{"full", g.hex1(t, "device_hello"), k.server, spki, nil},
		{"old_core_52_bytes", g.hex1(t, "device_hello_52"), k.server, nil, nil},
		{"bad_nonce", g.hex1(t, "device_hello_bad_nonce"), k.server, nil, ErrNonceMismatch},
		{"short", g.hex1(t, "device_hello_short"), k.server, nil, ErrHandshakeShort},
		{"encrypted_to_other_server", g.hex1(t, "device_hello_wrong_server_key"), k.server, nil, ErrHandshakeDecrypt},
		{"garbage", bytes.Repeat([]byte{0x5a}, 256), k.server, nil, ErrHandshakeDecrypt},
		{"wrong_size", make([]byte, 255), k.server, nil, ErrHandshakeSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := OpenDeviceHello(tc.key, nonce, tc.block)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ID != wantID || !bytes.Equal(h.PublicKeyDER, tc.wantSPKI) {
				t.Fatalf("got id %s key %x, want %s %x", h.ID, h.PublicKeyDER, wantID, tc.wantSPKI)
			}
		})
	}
}

func TestOpenSessionKeysGolden(t *testing.T) {
	k := loadTestKeys(t)
	g := loadGolden(t, "handshake.golden")
	want := SessionKeys{}
	copy(want.Key[:], g.hex1(t, "session_key"))
	copy(want.IV[:], g.hex1(t, "session_iv"))
	copy(want.Salt[:], g.hex1(t, "session_salt"))

	tests := []struct {
		name   string
		msg    []byte
		device *rsa.PrivateKey
		server *rsa.PublicKey
		err    error
	}{
		{"ok", g.hex1(t, "session_reply"), k.device, &k.server.PublicKey, nil},
		{"signed_by_other_server", g.hex1(t, "session_reply_wrong_server"), k.device, &k.server.PublicKey, ErrHandshakeSignature},
		{"pinned_other_server", g.hex1(t, "session_reply"), k.device, &k.server2.PublicKey, ErrHandshakeSignature},
		{"encrypted_to_other_device", g.hex1(t, "session_reply_wrong_device"), k.device, &k.server.PublicKey, ErrHandshakeDecrypt},
		{"garbage", bytes.Repeat([]byte{1}, 384), k.device, &k.server.PublicKey, ErrHandshakeDecrypt},
		{"truncated", g.hex1(t, "session_reply")[:383], k.device, &k.server.PublicKey, ErrHandshakeSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenSessionKeys(tc.device, tc.server, tc.msg)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("OpenSessionKeys = %+v, %v; want %+v", got, err, want)
			}
			if DeviceMessageIDSeed(got.Salt) != 0x9c3a {
				t.Fatalf("message id seed %#04x, want LE16(3a 9c) = 0x9c3a", DeviceMessageIDSeed(got.Salt))
			}
		})
	}
}

func TestSessionSignatureMatchesOpenSSL(t *testing.T) {
	// PKCS#1 v1.5 signing is deterministic: our raw-HMAC signature must equal
	// the one openssl pkeyutl -sign produced over the same HMAC.
	k := loadTestKeys(t)
	g := loadGolden(t, "handshake.golden")
	cred, ct := g.hex1(t, "cred"), g.hex1(t, "session_ct")
	if got := sessionHMAC(cred, ct); !bytes.Equal(got, g.hex1(t, "session_hmac")) {
		t.Fatalf("HMAC = %x, want %x", got, g.hex1(t, "session_hmac"))
	}
	sig, err := signSessionKeys(k.server, cred, ct)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, g.hex1(t, "session_sig")) {
		t.Fatalf("signature differs from openssl's\n got  %x\n want %x", sig, g.hex1(t, "session_sig"))
	}
}

// opaqueKey hides the concrete type of a ServerKey, as a non-crypto/rsa
// implementation would.
type opaqueKey struct{ ServerKey }

// ecDecrypter is a ServerKey whose public key is not RSA.
type ecDecrypter struct{ *ecdsa.PrivateKey }

func (ecDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("not RSA")
}

func TestServerKeyInterface(t *testing.T) {
	// Through the interface alone, the server steps give the golden bytes.
	k := loadTestKeys(t)
	g := loadGolden(t, "handshake.golden")
	key := opaqueKey{k.server}
	h, err := OpenDeviceHello(key, g.hex1(t, "nonce"), g.hex1(t, "device_hello"))
	if err != nil || h.ID != DeviceID(g.hex1(t, "device_id")) {
		t.Fatalf("OpenDeviceHello = %+v, %v", h, err)
	}
	if _, err := OpenDeviceHello(key, g.hex1(t, "nonce"), g.hex1(t, "device_hello_wrong_server_key")); !errors.Is(err, ErrHandshakeDecrypt) {
		t.Fatalf("wrong server key: %v, want ErrHandshakeDecrypt", err)
	}
	sig, err := signSessionKeys(key, g.hex1(t, "cred"), g.hex1(t, "session_ct"))
	if err != nil || !bytes.Equal(sig, g.hex1(t, "session_sig")) {
		t.Fatalf("signature %x, %v; want openssl's %x", sig, err, g.hex1(t, "session_sig"))
	}

	// Keys the handshake cannot use are refused, not dereferenced.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  ServerKey
	}{{"nil", nil}, {"nil_rsa", (*rsa.PrivateKey)(nil)}, {"ecdsa", ecDecrypter{ec}}} {
		if _, err := OpenDeviceHello(tc.key, g.hex1(t, "nonce"), g.hex1(t, "device_hello")); err == nil {
			t.Errorf("%s: OpenDeviceHello accepted the key", tc.name)
		}
		cfg := ServerHandshakeConfig{PrivateKey: tc.key, DeviceKey: fileKeyLookup(&k.device.PublicKey)}
		if _, err := ServerHandshake(&bytes.Buffer{}, cfg); err == nil {
			t.Errorf("%s: ServerHandshake accepted the key", tc.name)
		}
	}
}

// opensslDecrypt decrypts ct with the PEM private key in testdata using openssl.
func opensslDecrypt(t *testing.T, keyFile string, ct []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	ctFile := filepath.Join(t.TempDir(), "ct.bin")
	if err := os.WriteFile(ctFile, ct, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkeyutl", "-decrypt", "-inkey", filepath.Join("testdata", keyFile),
		"-pkeyopt", "rsa_padding_mode:pkcs1", "-in", ctFile).Output()
	if err != nil {
		t.Fatalf("openssl pkeyutl -decrypt: %v", err)
	}
	return out
}

func TestHandshakeBlobsOpenWithOpenSSL(t *testing.T) {
	// RSA encryption is randomised, so the golden test can only run one way;
	// here openssl opens what our encoders produce.
	k := loadTestKeys(t)
	g := loadGolden(t, "handshake.golden")
	nonce, id := g.hex1(t, "nonce"), DeviceID(g.hex1(t, "device_id"))
	spki := readTestdata(t, "device_key.pub.der")

	block, err := SealDeviceHello(&k.server.PublicKey, nonce, id, spki)
	if err != nil {
		t.Fatal(err)
	}
	if len(block) != DeviceHelloSize {
		t.Fatalf("device hello of %d bytes, want %d", len(block), DeviceHelloSize)
	}
	if got := opensslDecrypt(t, "server_key.pem", block); !bytes.Equal(got, g.hex1(t, "device_hello_plain")) {
		t.Fatalf("openssl decrypted %x, want %x", got, g.hex1(t, "device_hello_plain"))
	}

	keys, msg, err := SealSessionKeys(nil, k.server, &k.device.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != 128+256 {
		t.Fatalf("session message of %d bytes, want 384", len(msg))
	}
	if got := opensslDecrypt(t, "device_key.pem", msg[:128]); !bytes.Equal(got, keys.Cred()) {
		t.Fatalf("openssl decrypted cred %x, want %x", got, keys.Cred())
	}
	// Recover the signed value with the public key: it must be the raw HMAC.
	sigFile := filepath.Join(t.TempDir(), "sig.bin")
	if err := os.WriteFile(sigFile, msg[128:], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkeyutl", "-verifyrecover", "-pubin", "-inkey", filepath.Join("testdata", "server_key.pub.pem"),
		"-pkeyopt", "rsa_padding_mode:pkcs1", "-in", sigFile).Output()
	if err != nil {
		t.Fatalf("openssl -verifyrecover: %v", err)
	}
	if want := sessionHMAC(keys.Cred(), msg[:128]); !bytes.Equal(out, want) {
		t.Fatalf("signature recovers %s, want raw HMAC %x", hex.EncodeToString(out), want)
	}
}

// handshakeRun is the outcome of both sides of a handshake over net.Pipe.
type handshakeRun struct {
	res        HandshakeResult
	serverErr  error
	deviceKeys SessionKeys
	deviceErr  error
	sc, dc     net.Conn
}

// runHandshake runs both sides over net.Pipe.
func runHandshake(t *testing.T, server ServerHandshakeConfig, device DeviceHandshakeConfig) handshakeRun {
	t.Helper()
	sc, dc := net.Pipe()
	t.Cleanup(func() { sc.Close(); dc.Close() })
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	_ = dc.SetDeadline(time.Now().Add(10 * time.Second))
	type result struct {
		res HandshakeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := ServerHandshake(sc, server)
		if err != nil {
			sc.Close() // what a gateway does; unblocks the device
		}
		done <- result{res, err}
	}()
	keys, derr := DeviceHandshake(dc, device)
	if derr != nil {
		dc.Close()
	}
	r := <-done
	return handshakeRun{res: r.res, serverErr: r.err, deviceKeys: keys, deviceErr: derr, sc: sc, dc: dc}
}

func fileKeyLookup(onFile *rsa.PublicKey) func(DeviceID, []byte) (*rsa.PublicKey, error) {
	return func(_ DeviceID, offered []byte) (*rsa.PublicKey, error) {
		if err := CheckOfferedKey(onFile, offered); err != nil {
			return nil, err
		}
		return onFile, nil
	}
}

func TestHandshakeOverPipe(t *testing.T) {
	k := loadTestKeys(t)
	id := DeviceID{0xe0, 0x0f, 0xce, 0x68, 1, 2, 3, 4, 5, 6, 7, 8}
	run := runHandshake(t,
		ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: fileKeyLookup(&k.device.PublicKey)},
		DeviceHandshakeConfig{ID: id, PrivateKey: k.device, ServerKey: &k.server.PublicKey})
	res, serr, dkeys, derr, sc, dc := run.res, run.serverErr, run.deviceKeys, run.deviceErr, run.sc, run.dc
	if serr != nil || derr != nil {
		t.Fatalf("server: %v, device: %v", serr, derr)
	}
	if res.DeviceID != id || res.Keys != dkeys || !res.DeviceKey.Equal(&k.device.PublicKey) {
		t.Fatalf("server result %+v, device keys %+v", res, dkeys)
	}
	spki, _ := MarshalPublicKeyDER(&k.device.PublicKey)
	if !bytes.Equal(res.OfferedKeyDER, spki) || len(spki) != DevicePublicKeyDER {
		t.Fatalf("offered key %x (%d bytes)", res.OfferedKeyDER, len(res.OfferedKeyDER))
	}

	// The device's first frame is its Hello, with the salt-derived id
	// (docs/particle-protocol.md#message-ids-and-tokens).
	ids := dkeys.DeviceMessageIDs()
	go func() {
		hello := NewHello(NonConfirmable, ids.Next(), helloObserved)
		_ = NewFrameWriter(dc, dkeys, 0).WriteMessage(&hello)
	}()
	var m Message
	if err := NewFrameReader(sc, res.Keys, 0).ReadMessage(&m); err != nil {
		t.Fatal(err)
	}
	h, err := ParseHelloMessage(&m)
	if err != nil || h.SystemVersion != 3302 {
		t.Fatalf("hello %+v, %v", h, err)
	}
	if want := DeviceMessageIDSeed(res.Keys.Salt) + 1; m.ID != want {
		t.Fatalf("hello id %#04x, want %#04x", m.ID, want)
	}
}

func TestHandshakeFailures(t *testing.T) {
	k := loadTestKeys(t)
	id := DeviceID{1}
	unknown := errors.New("unknown device")
	tests := []struct {
		name       string
		server     ServerHandshakeConfig
		device     DeviceHandshakeConfig
		serverErr  error
		deviceFail bool
	}{
		{
			name:      "device_key_differs_from_file",
			server:    ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: fileKeyLookup(&k.device.PublicKey)},
			device:    DeviceHandshakeConfig{ID: id, PrivateKey: k.device2, ServerKey: &k.server.PublicKey},
			serverErr: ErrDeviceKeyMismatch, deviceFail: true,
		},
		{
			name: "unknown_device",
			server: ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: func(DeviceID, []byte) (*rsa.PublicKey, error) {
				return nil, unknown
			}},
			device:    DeviceHandshakeConfig{ID: id, PrivateKey: k.device, ServerKey: &k.server.PublicKey},
			serverErr: unknown, deviceFail: true,
		},
		{
			name:      "device_pins_other_server",
			server:    ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: fileKeyLookup(&k.device.PublicKey)},
			device:    DeviceHandshakeConfig{ID: id, PrivateKey: k.device, ServerKey: &k.server2.PublicKey},
			serverErr: ErrHandshakeDecrypt, deviceFail: true,
		},
		{
			// Trust on first use without a key check: the server encrypts to the
			// key on file, which the device cannot open.
			name: "server_uses_wrong_device_key",
			server: ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: func(DeviceID, []byte) (*rsa.PublicKey, error) {
				return &k.device2.PublicKey, nil
			}},
			device:     DeviceHandshakeConfig{ID: id, PrivateKey: k.device, ServerKey: &k.server.PublicKey},
			deviceFail: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := runHandshake(t, tc.server, tc.device)
			serr, derr := run.serverErr, run.deviceErr
			if tc.serverErr != nil && !errors.Is(serr, tc.serverErr) {
				t.Fatalf("server error = %v, want %v", serr, tc.serverErr)
			}
			if tc.deviceFail && derr == nil {
				t.Fatal("device handshake succeeded, want failure")
			}
		})
	}
}

func TestServerHandshakeBadPeers(t *testing.T) {
	k := loadTestKeys(t)
	cfg := ServerHandshakeConfig{PrivateKey: k.server, DeviceKey: fileKeyLookup(&k.device.PublicKey)}
	tests := []struct {
		name  string
		peer  func(c net.Conn)
		err   error
		delay time.Duration
	}{
		{"garbage_instead_of_hello", func(c net.Conn) {
			_, _ = io.ReadFull(c, make([]byte, NonceSize))
			_, _ = c.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 16))
		}, ErrHandshakeDecrypt, 0},
		{"short_then_close", func(c net.Conn) {
			_, _ = io.ReadFull(c, make([]byte, NonceSize))
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}, io.ErrUnexpectedEOF, 0},
		{"never_answers", func(c net.Conn) {
			_, _ = io.ReadFull(c, make([]byte, NonceSize))
		}, os.ErrDeadlineExceeded, 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, dc := net.Pipe()
			defer sc.Close()
			defer dc.Close()
			deadline := 5 * time.Second
			if tc.delay > 0 {
				deadline = tc.delay
			}
			_ = sc.SetDeadline(time.Now().Add(deadline))
			go tc.peer(dc)
			if _, err := ServerHandshake(sc, cfg); !errors.Is(err, tc.err) {
				t.Fatalf("ServerHandshake error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestSessionKeysFromCred(t *testing.T) {
	if _, err := SessionKeysFromCred(make([]byte, 39)); !errors.Is(err, ErrHandshakeSize) {
		t.Fatalf("39-byte cred: %v", err)
	}
	cred := make([]byte, CredSize)
	for i := range cred {
		cred[i] = byte(i)
	}
	k, err := SessionKeysFromCred(cred)
	if err != nil || k.Key[0] != 0 || k.IV[0] != 16 || k.Salt[0] != 32 || !bytes.Equal(k.Cred(), cred) {
		t.Fatalf("SessionKeysFromCred = %+v, %v", k, err)
	}
	// LE16(salt[0:2]) = 0x2120; the device's first id is one more.
	if ids := k.DeviceMessageIDs(); ids.Next() != 0x2121 {
		t.Fatal("first device message id is not LE16(salt)+1")
	}
}
