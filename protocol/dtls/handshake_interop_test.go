package dtls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"hash"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a child process's output for polling.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func selfSigned(t *testing.T, key *ecdsa.PrivateKey, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// interopServer is the smallest DTLS server this package's messages allow:
// enough to finish one handshake with OpenSSL's s_client in a test.
type interopServer struct {
	t          *testing.T
	conn       *net.UDPConn
	peer       *net.UDPAddr
	recordSeq  uint64
	transcript hash.Hash
	reasm      *Reassembler
	clientCiph *Cipher
	later      [][]byte // epoch-1 records that arrived before the keys
}

// send writes plaintext epoch-0 records of type typ, one per body, in one datagram.
func (s *interopServer) send(typ ContentType, bodies ...[]byte) {
	s.t.Helper()
	var dgram []byte
	for _, body := range bodies {
		var err error
		dgram, err = AppendHeader(dgram, &Header{Type: typ, Version: Version, Seq: s.recordSeq, Length: uint16(len(body))})
		if err != nil {
			s.t.Fatal(err)
		}
		dgram = append(dgram, body...)
		s.recordSeq++
	}
	if _, err := s.conn.WriteToUDP(dgram, s.peer); err != nil {
		s.t.Fatal(err)
	}
}

// next returns the next complete handshake message from the client, reading
// datagrams as needed; epoch-1 records wait until clientCiph exists.
func (s *interopServer) next() HandshakeMessage {
	s.t.Helper()
	for {
		if s.clientCiph != nil {
			for _, raw := range s.later {
				s.addRecord(raw)
			}
			s.later = nil
		}
		if m, ok := s.reasm.Next(); ok {
			return m
		}
		buf := make([]byte, 2048)
		n, peer, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			s.t.Fatalf("reading from s_client: %v", err)
		}
		s.peer = peer
		for rest := buf[:n]; len(rest) > 0; {
			rec, after, err := ParseRecord(rest)
			if err != nil {
				s.t.Fatal(err)
			}
			rest = after
			if rec.Header.Epoch == 1 && s.clientCiph == nil {
				s.later = append(s.later, rec.Raw)
				continue
			}
			s.addRecord(rec.Raw)
		}
	}
}

// addRecord feeds the handshake fragments of one record to the reassembler.
func (s *interopServer) addRecord(raw []byte) {
	s.t.Helper()
	rec, _, err := ParseRecord(raw)
	if err != nil {
		s.t.Fatal(err)
	}
	body := rec.Body
	if rec.Header.Epoch == 1 {
		var typ ContentType
		if body, typ, err = s.clientCiph.Open(nil, &rec); err != nil || typ != TypeHandshake {
			s.t.Fatalf("opening the client's epoch-1 record: type %v: %v", typ, err)
		}
	} else if rec.Header.Type != TypeHandshake {
		return // ChangeCipherSpec
	}
	for len(body) > 0 {
		h, frag, more, err := ParseHandshakeFragment(body)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := s.reasm.Add(h, frag); err != nil {
			s.t.Fatal(err)
		}
		body = more
	}
}

// expect returns the next client message, checks its type and adds it to
// the transcript.
func (s *interopServer) expect(typ HandshakeType) HandshakeMessage {
	s.t.Helper()
	m := s.next()
	if m.Type != typ {
		s.t.Fatalf("got handshake type %d, want %d", m.Type, typ)
	}
	return m
}

// TestOpenSSLClientInterop completes a live handshake on 127.0.0.1 between
// OpenSSL's s_client and a server built from this package's messages, the
// record layer and the key schedule: cookie exchange, ServerKeyExchange
// signature, CertificateRequest, the client's CertificateVerify and both
// Finished messages, then one application record the client must print.
// OpenSSL 3.0 has no raw public keys, so the server sends an X.509
// Certificate here and no connection ID; everything else is Wick's flight.
func TestOpenSSLClientInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts openssl")
	}
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl command")
	}
	serverKey, clientKey := mustP256(t), mustP256(t)
	serverCert := selfSigned(t, serverKey, "wick-interop-server")
	clientCert := selfSigned(t, clientKey, "wick-interop-client")
	dir := t.TempDir()
	clientKeyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCert}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: clientKeyDER}), 0o600); err != nil {
		t.Fatal(err)
	}

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "s_client", "-dtls1_2", "-connect", conn.LocalAddr().String(),
		"-cipher", "ECDHE-ECDSA-AES128-CCM8", "-groups", "P-256", "-cert", certPath, "-key", keyPath, "-quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("s_client output:\n%s", out.String())
		}
	}()

	s := &interopServer{t: t, conn: conn, transcript: sha256.New(), reasm: NewReassembler(0)}

	// Cookie round: the first ClientHello stays out of the transcript.
	cookies, err := NewCookies(bytes.Repeat([]byte{7}, CookieSecretLen))
	if err != nil {
		t.Fatal(err)
	}
	var ch ClientHello
	if err := ch.Unmarshal(s.expect(HandshakeClientHello).Body); err != nil {
		t.Fatal(err)
	}
	peer := s.peer.AddrPort()
	hvr := HelloVerifyRequest{Version: VersionDTLS10, Cookie: cookies.Make(peer, &ch)}
	s.send(TypeHandshake, AppendHandshake(nil, HandshakeHelloVerifyRequest, 0, hvr.Marshal()))
	m := s.expect(HandshakeClientHello)
	if err := ch.Unmarshal(m.Body); err != nil {
		t.Fatal(err)
	}
	if !cookies.Verify(peer, &ch) {
		t.Fatal("s_client's second ClientHello does not carry a valid cookie")
	}
	s.transcript.Write(m.Raw())

	// The server's flight.
	var sr [RandomLen]byte
	if _, err := rand.Read(sr[:]); err != nil {
		t.Fatal(err)
	}
	ext := HelloExtensions{HasRenegotiationInfo: true, RenegotiationInfo: []byte{}, PointFormats: []byte{PointFormatUncompressed}}
	exts, err := ext.Extensions(true)
	if err != nil {
		t.Fatal(err)
	}
	sh := ServerHello{Version: Version, Random: sr, CipherSuite: SuiteECDHEECDSAAES128CCM8, Extensions: exts}
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ske := ServerKeyExchange{NamedCurve: GroupSecp256r1, PublicKey: eph.PublicKey().Bytes()}
	if err := SignServerKeyExchange(rand.Reader, serverKey, &ch.Random, &sr, &ske); err != nil {
		t.Fatal(err)
	}
	cr := CertificateRequest{CertificateTypes: []byte{ClientCertTypeECDSASign}, SignatureAlgorithms: []uint16{SigECDSASecp256r1SHA256}}
	chain := CertificateChain{Certificates: [][]byte{serverCert}}
	flight := [][]byte{
		AppendHandshake(nil, HandshakeServerHello, 1, sh.Marshal()),
		AppendHandshake(nil, HandshakeCertificate, 2, chain.Marshal()),
		AppendHandshake(nil, HandshakeServerKeyExchange, 3, ske.Marshal()),
		AppendHandshake(nil, HandshakeCertificateRequest, 4, cr.Marshal()),
		AppendHandshake(nil, HandshakeServerHelloDone, 5, nil),
	}
	for _, f := range flight {
		s.transcript.Write(f)
	}
	s.send(TypeHandshake, flight...)

	// The client's flight.
	m = s.expect(HandshakeCertificate)
	var got CertificateChain
	if err := got.Unmarshal(m.Body); err != nil || len(got.Certificates) == 0 {
		t.Fatalf("client certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(got.Certificates[0])
	if err != nil {
		t.Fatal(err)
	}
	devKey, err := ParseDevicePublicKey(leaf.RawSubjectPublicKeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	s.transcript.Write(m.Raw())
	m = s.expect(HandshakeClientKeyExchange)
	var cke ClientKeyExchange
	if err := cke.Unmarshal(m.Body); err != nil {
		t.Fatal(err)
	}
	s.transcript.Write(m.Raw())
	pre, err := ECDHSharedSecret(eph, cke.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	master, err := MasterSecret(pre, ch.Random[:], sr[:])
	if err != nil {
		t.Fatal(err)
	}
	keys, err := KeyBlock(master, ch.Random[:], sr[:])
	if err != nil {
		t.Fatal(err)
	}
	if s.clientCiph, err = NewCipher(keys.ClientKey[:], keys.ClientIV[:]); err != nil {
		t.Fatal(err)
	}
	serverCiph, err := NewCipher(keys.ServerKey[:], keys.ServerIV[:])
	if err != nil {
		t.Fatal(err)
	}
	m = s.expect(HandshakeCertificateVerify)
	var cv CertificateVerify
	if err := cv.Unmarshal(m.Body); err != nil {
		t.Fatal(err)
	}
	if err := VerifyCertificateVerify(devKey, s.transcript.Sum(nil), &cv); err != nil {
		t.Fatalf("s_client's CertificateVerify: %v", err)
	}
	s.transcript.Write(m.Raw())
	m = s.expect(HandshakeFinished)
	var fin Finished
	if err := fin.Unmarshal(m.Body); err != nil {
		t.Fatal(err)
	}
	if want := VerifyData(master, ClientFinished, s.transcript.Sum(nil)); want != fin.VerifyData {
		t.Fatalf("client verify_data %x, want %x", fin.VerifyData, want)
	}
	s.transcript.Write(m.Raw())

	// ChangeCipherSpec, our Finished and one application record.
	s.send(TypeChangeCipherSpec, []byte{1})
	mine := Finished{VerifyData: VerifyData(master, ServerFinished, s.transcript.Sum(nil))}
	dgram, err := serverCiph.Seal(nil, TypeHandshake, 1, 0, nil, AppendHandshake(nil, HandshakeFinished, 6, mine.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	const greeting = "hello from a Wick handshake"
	if dgram, err = serverCiph.Seal(dgram, TypeApplicationData, 1, 1, nil, []byte(greeting+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDP(dgram, s.peer); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), greeting); {
		if time.Now().After(deadline) {
			t.Fatal("s_client never printed the application data")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
