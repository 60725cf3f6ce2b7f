package dtls

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
)

// capturedMessage is one handshake message from testdata/openssl-handshake.txt.
type capturedMessage struct {
	fromClient bool
	raw        []byte // 12-byte header and body, as OpenSSL printed it
}

// loadCapture reads the handshake messages OpenSSL's s_client printed with
// -msg during the run of testdata/capture.sh ("<<<" = from the server).
func loadCapture(t testing.TB) []capturedMessage {
	t.Helper()
	f, err := os.Open("testdata/openssl-handshake.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []capturedMessage
	var cur *capturedMessage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ">>> ") || strings.HasPrefix(line, "<<< "):
			cur = nil
			if strings.Contains(line, "content_type=22)") {
				out = append(out, capturedMessage{fromClient: line[0] == '>'})
				cur = &out[len(out)-1]
			}
		case cur != nil && strings.HasPrefix(line, "    "):
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
			if err != nil {
				t.Fatalf("hex line %q: %v", line, err)
			}
			cur.raw = append(cur.raw, b...)
		default:
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parseCaptured splits every captured message into header and body and
// checks that none is fragmented.
func parseCaptured(t *testing.T, msgs []capturedMessage) []HandshakeMessage {
	t.Helper()
	var out []HandshakeMessage
	for i, m := range msgs {
		h, body, rest, err := ParseHandshakeFragment(m.raw)
		if err != nil || len(rest) != 0 || h.FragmentOffset != 0 || h.FragmentLength != h.Length {
			t.Fatalf("message %d: %+v rest %d: %v", i, h, len(rest), err)
		}
		out = append(out, HandshakeMessage{Type: h.Type, Seq: h.MessageSeq, Body: body})
	}
	return out
}

func certFromPEM(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// marshaler is every message codec in this package.
type marshaler interface {
	Marshal() []byte
	Unmarshal([]byte) error
}

// TestOpenSSLHandshake decodes a real DTLS 1.2 ECDHE-ECDSA-AES128-CCM8
// handshake between OpenSSL's s_client and s_server (testdata/capture.sh):
// every message parses, re-encodes to the same bytes, carries the expected
// fields, and both signatures verify with the certificates' keys.
func TestOpenSSLHandshake(t *testing.T) {
	msgs := parseCaptured(t, loadCapture(t))
	wantTypes := []HandshakeType{HandshakeClientHello, HandshakeHelloVerifyRequest, HandshakeClientHello,
		HandshakeServerHello, HandshakeCertificate, HandshakeServerKeyExchange, HandshakeCertificateRequest,
		HandshakeServerHelloDone, HandshakeCertificate, HandshakeClientKeyExchange, HandshakeCertificateVerify}
	if len(msgs) < len(wantTypes) {
		t.Fatalf("%d messages captured, want at least %d", len(msgs), len(wantTypes))
	}
	for i, want := range wantTypes {
		if msgs[i].Type != want {
			t.Fatalf("message %d is type %d, want %d", i, msgs[i].Type, want)
		}
	}

	var (
		hello1, hello2 ClientHello
		hvr            HelloVerifyRequest
		sh             ServerHello
		serverChain    CertificateChain
		ske            ServerKeyExchange
		cr             CertificateRequest
		clientChain    CertificateChain
		cke            ClientKeyExchange
		cv             CertificateVerify
	)
	decoded := []marshaler{&hello1, &hvr, &hello2, &sh, &serverChain, &ske, &cr, nil, &clientChain, &cke, &cv}
	for i, m := range decoded {
		if m == nil {
			if err := ParseServerHelloDone(msgs[i].Body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := m.Unmarshal(msgs[i].Body); err != nil {
			t.Fatalf("message %d (type %d): %v", i, msgs[i].Type, err)
		}
		if got := m.Marshal(); !bytes.Equal(got, msgs[i].Body) {
			t.Fatalf("message %d (type %d) re-encodes to\n% x\nwant\n% x", i, msgs[i].Type, got, msgs[i].Body)
		}
	}

	// The cookie exchange.
	if len(hello1.Cookie) != 0 || len(hvr.Cookie) == 0 || !bytes.Equal(hello2.Cookie, hvr.Cookie) {
		t.Fatalf("cookies: first %x, verify request %x, second %x", hello1.Cookie, hvr.Cookie, hello2.Cookie)
	}
	if hello2.Random != hello1.Random || hvr.Version != VersionDTLS10 {
		t.Fatal("second ClientHello changed its random, or HelloVerifyRequest is not DTLS 1.0")
	}
	if hello2.Version != Version || !slices.Equal(hello2.CipherSuites, []uint16{SuiteECDHEECDSAAES128CCM8, SuiteRenegotiationSCSV}) {
		t.Fatalf("client hello version %#x suites %x", hello2.Version, hello2.CipherSuites)
	}
	cext, err := ParseHelloExtensions(hello2.Extensions, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cext.SupportedGroups, GroupSecp256r1) || !slices.Contains(cext.SignatureAlgorithms, SigECDSASecp256r1SHA256) ||
		!bytes.Contains(cext.PointFormats, []byte{PointFormatUncompressed}) || !cext.ExtendedMasterSecret {
		t.Fatalf("client hello extensions %+v", cext)
	}

	// The server's flight.
	if sh.Version != Version || sh.CipherSuite != SuiteECDHEECDSAAES128CCM8 || sh.CompressionMethod != 0 {
		t.Fatalf("server hello %+v", sh)
	}
	sext, err := ParseHelloExtensions(sh.Extensions, true)
	if err != nil {
		t.Fatal(err)
	}
	if !sext.HasRenegotiationInfo || len(sext.RenegotiationInfo) != 0 || !sext.ExtendedMasterSecret {
		t.Fatalf("server hello extensions %+v", sext)
	}
	serverCert := certFromPEM(t, "testdata/openssl-server.pem")
	if len(serverChain.Certificates) != 1 || !bytes.Equal(serverChain.Certificates[0], serverCert.Raw) {
		t.Fatal("server Certificate does not carry testdata/openssl-server.pem")
	}
	if ske.NamedCurve != GroupSecp256r1 || len(ske.PublicKey) != 65 || ske.PublicKey[0] != 4 {
		t.Fatalf("server key exchange curve %#x point %x", ske.NamedCurve, ske.PublicKey)
	}
	if err := VerifyServerKeyExchange(serverCert.PublicKey.(*ecdsa.PublicKey), &hello2.Random, &sh.Random, &ske); err != nil {
		t.Fatalf("OpenSSL's ServerKeyExchange signature: %v", err)
	}
	bad := ske
	bad.PublicKey = slices.Clone(ske.PublicKey)
	bad.PublicKey[10] ^= 1
	if err := VerifyServerKeyExchange(serverCert.PublicKey.(*ecdsa.PublicKey), &hello2.Random, &sh.Random, &bad); err == nil {
		t.Fatal("a changed ServerKeyExchange point still verifies")
	}
	if !bytes.Contains(cr.CertificateTypes, []byte{ClientCertTypeECDSASign}) || !slices.Contains(cr.SignatureAlgorithms, SigECDSASecp256r1SHA256) {
		t.Fatalf("certificate request %+v", cr)
	}

	// The client's flight: the key in its certificate, as a raw public key,
	// verifies its CertificateVerify over the transcript from the second
	// ClientHello (RFC 6347 §4.2.6 leaves the first and the
	// HelloVerifyRequest out) through ClientKeyExchange.
	clientCert := certFromPEM(t, "testdata/openssl-client.pem")
	if len(clientChain.Certificates) != 1 || !bytes.Equal(clientChain.Certificates[0], clientCert.Raw) {
		t.Fatal("client Certificate does not carry testdata/openssl-client.pem")
	}
	rpk := RawPublicKeyCertificate{SPKI: clientCert.RawSubjectPublicKeyInfo}
	var rpk2 RawPublicKeyCertificate
	if err := rpk2.Unmarshal(rpk.Marshal()); err != nil {
		t.Fatal(err)
	}
	devKey, err := ParseDevicePublicKey(rpk2.SPKI)
	if err != nil {
		t.Fatal(err)
	}
	if len(cke.PublicKey) != 65 || cke.PublicKey[0] != 4 {
		t.Fatalf("client key exchange point %x", cke.PublicKey)
	}
	transcript := sha256.New()
	for _, m := range msgs[2:10] {
		transcript.Write(m.Raw())
	}
	sum := transcript.Sum(nil)
	if err := VerifyCertificateVerify(devKey, sum, &cv); err != nil {
		t.Fatalf("OpenSSL's CertificateVerify: %v", err)
	}
	sum[0] ^= 1
	if err := VerifyCertificateVerify(devKey, sum, &cv); err == nil {
		t.Fatal("CertificateVerify verifies over a changed transcript")
	}

	// Both Finished messages (OpenSSL prints them decrypted) match
	// VerifyData over the same transcript, keyed with the master secret
	// OpenSSL logged: the transcript is built the way Wick will build it.
	master := keylogMaster(t, hello2.Random)
	var clientFin, serverFin Finished
	var finished []int
	for i := 10; i < len(msgs); i++ {
		if msgs[i].Type == HandshakeFinished {
			finished = append(finished, i)
		}
	}
	if len(finished) != 2 {
		t.Fatalf("%d Finished messages captured, want 2", len(finished))
	}
	for k, fin := range []*Finished{&clientFin, &serverFin} {
		i := finished[k]
		if err := fin.Unmarshal(msgs[i].Body); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, m := range msgs[2:i] {
			h.Write(m.Raw())
		}
		label := []string{ClientFinished, ServerFinished}[k]
		if got := VerifyData(master, label, h.Sum(nil)); got != fin.VerifyData {
			t.Fatalf("%s: verify_data %x, OpenSSL sent %x", label, got, fin.VerifyData)
		}
	}
}

// keylogMaster returns the master secret testdata/openssl-keylog.txt holds
// for the given client random.
func keylogMaster(t *testing.T, clientRandom [RandomLen]byte) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/openssl-keylog.txt")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "CLIENT_RANDOM" && f[1] == hex.EncodeToString(clientRandom[:]) {
			m, err := hex.DecodeString(f[2])
			if err != nil || len(m) != MasterSecretLen {
				t.Fatalf("bad master secret %q: %v", f[2], err)
			}
			return m
		}
	}
	t.Fatal("no master secret logged for the ClientHello's random")
	return nil
}

// TestDeviceOSClientHelloTail builds the ClientHello extensions Device OS
// 3.3.1 sends (docs/dtls.md, Handshake messages) and checks the recorded
// tail bytes: empty draft connection ID, then raw public keys both ways.
func TestDeviceOSClientHelloTail(t *testing.T) {
	h := HelloExtensions{
		SignatureAlgorithms:    []uint16{0x0403, 0x0401, 0x0303, 0x0301},
		SupportedGroups:        []uint16{GroupSecp256r1},
		PointFormats:           []byte{PointFormatUncompressed},
		HasConnectionID:        true,
		ConnectionID:           []byte{},
		ClientCertificateTypes: []byte{CertTypeRawPublicKey},
		ServerCertificateTypes: []byte{CertTypeRawPublicKey},
	}
	exts, err := h.Extensions(false)
	if err != nil {
		t.Fatal(err)
	}
	ch := ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8, SuiteRenegotiationSCSV},
		CompressionMethods: []byte{0}, Extensions: exts}
	body := ch.Marshal()
	tail, _ := hex.DecodeString("00fe000100" + "001300020102" + "001400020102")
	if !bytes.HasSuffix(body, tail) {
		t.Fatalf("body ends % x, want % x", body[len(body)-len(tail):], tail)
	}
	var back ClientHello
	if err := back.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	got, err := ParseHelloExtensions(back.Extensions, false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasConnectionID || len(got.ConnectionID) != 0 || !bytes.Equal(got.ClientCertificateTypes, []byte{2}) ||
		!bytes.Equal(got.ServerCertificateTypes, []byte{2}) || got.ExtendedMasterSecret {
		t.Fatalf("decoded %+v", got)
	}
}

// TestGen3ServerHelloExtensions checks the bytes Wick's ServerHello carries
// (docs/dtls.md, Handshake messages).
func TestGen3ServerHelloExtensions(t *testing.T) {
	cid := []byte{0xc1, 0xd0, 0, 1, 2, 3, 4, 5}
	exts, err := Gen3ServerHelloExtensions(cid)
	if err != nil {
		t.Fatal(err)
	}
	sh := ServerHello{Version: Version, CipherSuite: SuiteECDHEECDSAAES128CCM8, Extensions: exts}
	body := sh.Marshal()
	for _, want := range []string{"ff01000100", "000b00020100", "00fe000908c1d0000102030405", "0013000102", "0014000102"} {
		w, _ := hex.DecodeString(want)
		if !bytes.Contains(body, w) {
			t.Errorf("server hello lacks %s", want)
		}
	}
	var back ServerHello
	if err := back.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	got, err := ParseHelloExtensions(back.Extensions, true)
	if err != nil || !bytes.Equal(got.ConnectionID, cid) || !bytes.Equal(got.ClientCertificateTypes, []byte{2}) {
		t.Fatalf("decoded %+v %v", got, err)
	}
	if _, err := Gen3ServerHelloExtensions(cid[:4]); err == nil {
		t.Fatal("4-byte connection ID accepted")
	}
}
