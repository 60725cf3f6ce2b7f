package dtls

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"testing"
)

// testDevice is the device's side of a Gen 3 handshake, for tests only: a
// raw public key, the draft connection ID, and each step as datagrams in and
// out so that tests can drop, repeat and reorder them.
//
// The real device side is ClientHandshake (client.go), which the server is
// also tested against (client_test.go). This driver stays for the server
// tests that need a device misbehaving on purpose: a corrupt
// CertificateVerify or Finished, a foreign Certificate body, and one record
// per message so that records can be reordered one by one.
type testDevice struct {
	t          testing.TB
	key        *ecdsa.PrivateKey
	serverPub  *ecdsa.PublicKey
	cid        []byte // the CID the device asks the server to use (may be empty)
	ch         ClientHello
	seq        uint64
	transcript hash.Hash
	serverCID  []byte
	master     []byte
	read       *Cipher
	write      *Cipher
	writeSeq   uint64
	corruptCV  bool
	corruptFin bool
	finMsg     []byte
	certBody   []byte           // replaces the raw public key Certificate body when set
	eph        *ecdh.PrivateKey // the ephemeral key to use; nil makes a new one
	badPoint   bool             // send a ClientKeyExchange point off the curve
	skipSKE    bool             // do not check the ServerKeyExchange signature
}

func newTestDevice(t testing.TB, key *ecdsa.PrivateKey, serverPub *ecdsa.PublicKey, cid []byte) *testDevice {
	d := &testDevice{t: t, key: key, serverPub: serverPub, cid: cid, transcript: sha256.New()}
	h := HelloExtensions{
		SupportedGroups: []uint16{GroupSecp256r1}, PointFormats: []byte{PointFormatUncompressed},
		SignatureAlgorithms: []uint16{SigECDSASecp256r1SHA256}, HasConnectionID: true, ConnectionID: cid,
		ClientCertificateTypes: []byte{CertTypeRawPublicKey}, ServerCertificateTypes: []byte{CertTypeRawPublicKey},
	}
	exts, err := h.Extensions(false)
	if err != nil {
		t.Fatal(err)
	}
	d.ch = ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8},
		CompressionMethods: []byte{0}, Extensions: exts}
	if _, err := rand.Read(d.ch.Random[:]); err != nil {
		t.Fatal(err)
	}
	return d
}

// record wraps payload in one plaintext epoch-0 record.
func (d *testDevice) record(typ ContentType, payload []byte) []byte {
	b, err := AppendHeader(nil, &Header{Type: typ, Version: Version, Seq: d.seq, Length: uint16(len(payload))})
	if err != nil {
		d.t.Fatal(err)
	}
	d.seq++
	return append(b, payload...)
}

// hello returns the ClientHello datagram (message_seq 0 without a cookie, 1 with one).
func (d *testDevice) hello(cookie []byte) []byte {
	d.ch.Cookie = cookie
	seq := uint16(0)
	if cookie != nil {
		seq = 1
	}
	return d.record(TypeHandshake, AppendHandshake(nil, HandshakeClientHello, seq, d.ch.Marshal()))
}

// cookie reads the HelloVerifyRequest.
func (d *testDevice) cookie(dgram []byte) []byte {
	msgs := d.messages(dgram)
	if len(msgs) != 1 || msgs[0].Type != HandshakeHelloVerifyRequest {
		d.t.Fatalf("want one HelloVerifyRequest, got %v", msgs)
	}
	var hvr HelloVerifyRequest
	if err := hvr.Unmarshal(msgs[0].Body); err != nil {
		d.t.Fatal(err)
	}
	return hvr.Cookie
}

// messages decodes the plaintext handshake messages of an epoch-0 datagram.
func (d *testDevice) messages(dgram []byte) []HandshakeMessage {
	var out []HandshakeMessage
	for rest := dgram; len(rest) > 0; {
		rec, after, err := ParseRecord(rest)
		if err != nil {
			d.t.Fatal(err)
		}
		rest = after
		if rec.Header.Type != TypeHandshake || rec.Header.Epoch != 0 {
			continue
		}
		for body := rec.Body; len(body) > 0; {
			h, frag, more, err := ParseHandshakeFragment(body)
			if err != nil {
				d.t.Fatal(err)
			}
			out = append(out, HandshakeMessage{Type: h.Type, Seq: h.MessageSeq, Body: frag})
			body = more
		}
	}
	return out
}

// clientFlight reads the server flight and returns the device's answer as
// separate records: Certificate, ClientKeyExchange, CertificateVerify,
// ChangeCipherSpec, Finished (epoch 1).
func (d *testDevice) clientFlight(dgram []byte) [][]byte {
	d.transcript.Write(HandshakeMessage{Type: HandshakeClientHello, Seq: 1, Body: d.ch.Marshal()}.Raw())
	msgs := d.messages(dgram)
	want := []HandshakeType{HandshakeServerHello, HandshakeServerKeyExchange, HandshakeCertificateRequest, HandshakeServerHelloDone}
	if len(msgs) != len(want) {
		d.t.Fatalf("server flight has %d messages, want %d", len(msgs), len(want))
	}
	var sh ServerHello
	var ske ServerKeyExchange
	for i, m := range msgs {
		if m.Type != want[i] || m.Seq != uint16(1+i) {
			d.t.Fatalf("server message %d: type %d seq %d", i, m.Type, m.Seq)
		}
		d.transcript.Write(m.Raw())
	}
	if err := sh.Unmarshal(msgs[0].Body); err != nil {
		d.t.Fatal(err)
	}
	ext, err := ParseHelloExtensions(sh.Extensions, true)
	if err != nil || !ext.HasConnectionID || len(ext.ConnectionID) != CIDLen {
		d.t.Fatalf("server hello extensions %+v: %v", ext, err)
	}
	d.serverCID = ext.ConnectionID
	if err := ske.Unmarshal(msgs[1].Body); err != nil {
		d.t.Fatal(err)
	}
	if !d.skipSKE {
		if err := VerifyServerKeyExchange(d.serverPub, &d.ch.Random, &sh.Random, &ske); err != nil {
			d.t.Fatal(err)
		}
	}
	eph := d.eph
	if eph == nil {
		if eph, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			d.t.Fatal(err)
		}
	}
	pre, err := ECDHSharedSecret(eph, ske.PublicKey)
	if err != nil {
		d.t.Fatal(err)
	}
	if d.master, err = MasterSecret(pre, d.ch.Random[:], sh.Random[:]); err != nil {
		d.t.Fatal(err)
	}
	keys, err := KeyBlock(d.master, d.ch.Random[:], sh.Random[:])
	if err != nil {
		d.t.Fatal(err)
	}
	if d.write, err = NewCipher(keys.ClientKey[:], keys.ClientIV[:]); err != nil {
		d.t.Fatal(err)
	}
	if d.read, err = NewCipher(keys.ServerKey[:], keys.ServerIV[:]); err != nil {
		d.t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&d.key.PublicKey)
	if err != nil {
		d.t.Fatal(err)
	}
	certBody := (&RawPublicKeyCertificate{SPKI: spki}).Marshal()
	if d.certBody != nil {
		certBody = d.certBody
	}
	cert := AppendHandshake(nil, HandshakeCertificate, 2, certBody)
	point := eph.PublicKey().Bytes()
	if d.badPoint {
		point[64] ^= 1
	}
	cke := AppendHandshake(nil, HandshakeClientKeyExchange, 3, (&ClientKeyExchange{PublicKey: point}).Marshal())
	d.transcript.Write(cert)
	d.transcript.Write(cke)
	digest := d.transcript.Sum(nil)
	if d.corruptCV {
		digest[0] ^= 1
	}
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, digest)
	if err != nil {
		d.t.Fatal(err)
	}
	cv := AppendHandshake(nil, HandshakeCertificateVerify, 4, (&CertificateVerify{SignatureAlgorithm: SigECDSASecp256r1SHA256, Signature: sig}).Marshal())
	d.transcript.Write(cv)
	fin := Finished{VerifyData: VerifyData(d.master, ClientFinished, d.transcript.Sum(nil))}
	if d.corruptFin {
		fin.VerifyData[0] ^= 1
	}
	finMsg := AppendHandshake(nil, HandshakeFinished, 5, fin.Marshal())
	d.transcript.Write(finMsg)
	d.finMsg = finMsg
	out := [][]byte{d.record(TypeHandshake, cert), d.record(TypeHandshake, cke), d.record(TypeHandshake, cv), d.record(TypeChangeCipherSpec, []byte{1})}
	return append(out, d.seal(TypeHandshake, finMsg))
}

// seal protects one epoch-1 record with the server's CID.
func (d *testDevice) seal(typ ContentType, content []byte) []byte {
	b, err := d.write.Seal(nil, typ, 1, d.writeSeq, d.serverCID, content)
	if err != nil {
		d.t.Fatal(err)
	}
	d.writeSeq++
	return b
}

// open authenticates and decrypts the epoch-1 records of a server datagram.
func (d *testDevice) open(dgram []byte) (handshake, app [][]byte, err error) {
	for rest := dgram; len(rest) > 0; {
		rec, after, err := ParseRecord(rest)
		if err != nil {
			return nil, nil, err
		}
		rest = after
		if rec.Header.Epoch == 0 {
			continue
		}
		if len(d.cid) != 0 && (rec.Header.Type != TypeCID || !bytes.Equal(rec.Header.CID, d.cid)) {
			return nil, nil, fmt.Errorf("server record without the device's CID: %v", rec.Header)
		}
		content, typ, err := d.read.Open(nil, &rec)
		if err != nil {
			return nil, nil, err
		}
		switch typ {
		case TypeHandshake:
			handshake = append(handshake, content)
		case TypeApplicationData:
			app = append(app, content)
		}
	}
	return handshake, app, nil
}

// finish checks the server's final flight.
func (d *testDevice) finish(dgram []byte) error {
	hs, _, err := d.open(dgram)
	if err != nil {
		return err
	}
	if len(hs) != 1 {
		return fmt.Errorf("final flight has %d protected handshake records", len(hs))
	}
	h, frag, _, err := ParseHandshakeFragment(hs[0])
	if err != nil || h.Type != HandshakeFinished {
		return fmt.Errorf("final flight: type %d: %v", h.Type, err)
	}
	var fin Finished
	if err := fin.Unmarshal(frag); err != nil {
		return err
	}
	if want := VerifyData(d.master, ServerFinished, d.transcript.Sum(nil)); want != fin.VerifyData {
		return errors.New("server verify_data does not match")
	}
	return nil
}

// testServer is a config with a fresh server key, a fixed cookie secret and
// a known-device set.
type testServer struct {
	cfg   *ServerConfig
	known map[string]bool
	signs int
}

func newTestServer(t testing.TB, devices ...*ecdsa.PrivateKey) *testServer {
	cookies, err := NewCookies(bytes.Repeat([]byte{9}, CookieSecretLen))
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{known: map[string]bool{}}
	for _, k := range devices {
		spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		s.known[string(spki)] = true
	}
	key := mustP256(t)
	s.cfg = &ServerConfig{
		Key: key, Signer: countingSigner{key, &s.signs}, Cookies: cookies,
		DeviceKey: func(pub *ecdsa.PublicKey) bool {
			spki, err := x509.MarshalPKIXPublicKey(pub)
			return err == nil && s.known[string(spki)]
		},
	}
	return s
}

// countingSigner counts the signatures the server makes.
type countingSigner struct {
	*ecdsa.PrivateKey
	n *int
}

func (c countingSigner) Sign(r io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	*c.n++
	return c.PrivateKey.Sign(r, digest, o)
}

var testAddr = netip.MustParseAddrPort("192.0.2.7:5684")
