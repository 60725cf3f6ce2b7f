package dtls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkRoundTrip asserts marshal(unmarshal(b)) == b and that decoding the
// re-encoding gives the same value again.
func checkRoundTrip(t testing.TB, fresh func() marshaler, b []byte) {
	t.Helper()
	m := fresh()
	if err := m.Unmarshal(b); err != nil {
		return
	}
	out := m.Marshal()
	if !bytes.Equal(out, b) {
		t.Fatalf("%T re-encodes\n% x\nas\n% x", m, b, out)
	}
	m2 := fresh()
	if err := m2.Unmarshal(out); err != nil {
		t.Fatalf("%T: re-encoding does not decode: %v", m, err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("%T: %+v decodes back as %+v", m, m, m2)
	}
}

// codecs lists a constructor for every message codec, with a valid body.
var codecs = []struct {
	name  string
	fresh func() marshaler
	valid string // hex of a valid body
	// bare is the length at which a cut body is valid too (a hello without
	// its extensions block), or 0.
	bare int
}{
	{"ClientHello", func() marshaler { return &ClientHello{} }, "fefd" + hex32 + "00" + "00" + "0004c0ae00ff" + "0100" + "000b" + "00fe000100" + "000b00020100", 44},
	{"HelloVerifyRequest", func() marshaler { return &HelloVerifyRequest{} }, "feff" + "03010203", 0},
	{"ServerHello", func() marshaler { return &ServerHello{} }, "fefd" + hex32 + "00" + "c0ae" + "00" + "0005" + "ff01000100", 38},
	{"ServerKeyExchange", func() marshaler { return &ServerKeyExchange{} }, "03" + "0017" + "020401" + "0403" + "0003300100", 0},
	{"CertificateRequest", func() marshaler { return &CertificateRequest{} }, "0140" + "00020403" + "0000", 0},
	{"RawPublicKeyCertificate", func() marshaler { return &RawPublicKeyCertificate{} }, "000002" + "3000", 0},
	{"CertificateChain", func() marshaler { return &CertificateChain{} }, "000005" + "000002" + "3000", 0},
	{"ClientKeyExchange", func() marshaler { return &ClientKeyExchange{} }, "020401", 0},
	{"CertificateVerify", func() marshaler { return &CertificateVerify{} }, "0403" + "0002" + "3000", 0},
	{"Finished", func() marshaler { return &Finished{} }, "0102030405060708090a0b0c", 0},
}

const hex32 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestCodecsValidBodies(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := hexBytes(t, c.valid)
			if err := c.fresh().Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, c.fresh, b)
		})
	}
}

// TestCodecsStrict: every valid body, cut short by any amount or with a
// byte appended, is refused.
func TestCodecsStrict(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := hexBytes(t, c.valid)
			for n := range len(b) {
				if n == c.bare && n > 0 {
					continue
				}
				if err := c.fresh().Unmarshal(b[:n]); err == nil {
					t.Fatalf("accepted the first %d of %d bytes", n, len(b))
				}
			}
			if err := c.fresh().Unmarshal(append(b, 0)); err == nil {
				t.Fatal("accepted a trailing byte")
			}
		})
	}
}

func TestCodecsRefuse(t *testing.T) {
	tests := []struct {
		name string
		m    marshaler
		in   string
	}{
		{"client hello repeated extension", &ClientHello{}, "fefd" + hex32 + "0000" + "0002c0ae" + "0100" + "000a" + "000b00020100" + "000b0000"},
		{"client hello odd suite list", &ClientHello{}, "fefd" + hex32 + "0000" + "0003c0ae00" + "0100"},
		{"client hello no suites", &ClientHello{}, "fefd" + hex32 + "0000" + "0000" + "0100"},
		{"client hello no compression", &ClientHello{}, "fefd" + hex32 + "0000" + "0002c0ae" + "00"},
		{"client hello long session id", &ClientHello{}, "fefd" + hex32 + "21" + hex32 + "00" + "00" + "0002c0ae" + "0100"},
		{"client hello extension past block", &ClientHello{}, "fefd" + hex32 + "0000" + "0002c0ae" + "0100" + "0004" + "000b0005"},
		{"server hello long session id", &ServerHello{}, "fefd" + hex32 + "21" + hex32 + "00" + "c0ae00"},
		{"server key exchange explicit curve", &ServerKeyExchange{}, "01" + "0017" + "020401" + "0403" + "0003300100"},
		{"server key exchange empty point", &ServerKeyExchange{}, "03" + "0017" + "00" + "0403" + "0003300100"},
		{"server key exchange empty signature", &ServerKeyExchange{}, "03" + "0017" + "020401" + "0403" + "0000"},
		{"certificate request empty DN", &CertificateRequest{}, "0140" + "00020403" + "00020000"},
		{"certificate request DN past list", &CertificateRequest{}, "0140" + "00020403" + "0003000530"},
		{"certificate request no types", &CertificateRequest{}, "00" + "00020403" + "0000"},
		{"certificate request no algorithms", &CertificateRequest{}, "0140" + "0000" + "0000"},
		{"raw public key empty", &RawPublicKeyCertificate{}, "000000"},
		{"certificate chain empty certificate", &CertificateChain{}, "000003" + "000000"},
		{"client key exchange empty", &ClientKeyExchange{}, "00"},
		{"certificate verify empty", &CertificateVerify{}, "04030000"},
		{"finished short", &Finished{}, "0102"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Unmarshal(hexBytes(t, tt.in)); err == nil {
				t.Fatalf("accepted: %+v", tt.m)
			}
		})
	}
	var ch ClientHello
	err := ch.Unmarshal(hexBytes(t, "fefd"+hex32+"0000"+"0002c0ae"+"0100"+"000a"+"000b00020100"+"000b0000"))
	if err == nil || !strings.Contains(err.Error(), "extension 11 repeated in client hello") {
		t.Fatalf("repeated extension: %v", err)
	}
	if err := ch.Unmarshal(hexBytes(t, "fefd"+hex32+"0000"+"0002c0ae")); !errors.Is(err, ErrHandshakeShort) {
		t.Fatalf("truncated hello: %v, want ErrHandshakeShort", err)
	}
	if err := ParseServerHelloDone([]byte{0}); err == nil {
		t.Fatal("non-empty ServerHelloDone accepted")
	}
	if err := ParseServerHelloDone(nil); err != nil {
		t.Fatal(err)
	}
}

func TestHelloExtensionsRefuse(t *testing.T) {
	tests := []struct {
		name       string
		ext        Extension
		fromServer bool
	}{
		{"groups odd", Extension{ExtSupportedGroups, hexBytes(t, "000300170a")}, false},
		{"point formats trailing", Extension{ExtECPointFormats, hexBytes(t, "010000")}, false},
		{"sigalgs short", Extension{ExtSignatureAlgorithms, hexBytes(t, "000404")}, false},
		{"client cert types empty list", Extension{ExtClientCertificateType, hexBytes(t, "00")}, false},
		{"server cert types two in server hello", Extension{ExtServerCertificateType, hexBytes(t, "0202")}, true},
		{"server cert types none in server hello", Extension{ExtServerCertificateType, nil}, true},
		{"cid past data", Extension{ExtConnectionIDDraft, hexBytes(t, "08c1d0")}, true},
		{"ems with data", Extension{ExtExtendedMasterSecret, hexBytes(t, "00")}, false},
		{"renegotiation info trailing", Extension{ExtRenegotiationInfo, hexBytes(t, "0000")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := ParseHelloExtensions([]Extension{tt.ext}, tt.fromServer); err == nil {
				t.Fatalf("accepted: %+v", h)
			}
		})
	}
	// Unknown extensions are skipped.
	h, err := ParseHelloExtensions([]Extension{{Type: 0x0023, Data: []byte{1, 2}}}, false)
	if err != nil || !reflect.DeepEqual(h, HelloExtensions{}) {
		t.Fatalf("unknown extension: %+v %v", h, err)
	}
	// A ServerHello may not carry a certificate type list.
	bad := HelloExtensions{ClientCertificateTypes: []byte{2, 0}}
	if _, err := bad.Extensions(true); err == nil {
		t.Fatal("two certificate types encoded into a ServerHello")
	}
}

// TestWickServerFlight builds the server flight Wick sends to a Gen 3 device
// and decodes it again as the device would (docs/dtls.md, Handshake
// messages).
func TestWickServerFlight(t *testing.T) {
	key := mustP256(t)
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var cr, sr [RandomLen]byte
	_, _ = rand.Read(cr[:])
	_, _ = rand.Read(sr[:])
	exts, err := Gen3ServerHelloExtensions([]byte("wickCID8"))
	if err != nil {
		t.Fatal(err)
	}
	sh := ServerHello{Version: Version, Random: sr, CipherSuite: SuiteECDHEECDSAAES128CCM8, Extensions: exts}
	ske := ServerKeyExchange{NamedCurve: GroupSecp256r1, PublicKey: eph.PublicKey().Bytes()}
	if err := SignServerKeyExchange(rand.Reader, key, &cr, &sr, &ske); err != nil {
		t.Fatal(err)
	}
	req := CertificateRequest{CertificateTypes: []byte{ClientCertTypeECDSASign}, SignatureAlgorithms: []uint16{SigECDSASecp256r1SHA256}}
	var flight []byte
	flight = AppendHandshake(flight, HandshakeServerHello, 1, sh.Marshal())
	flight = AppendHandshake(flight, HandshakeServerKeyExchange, 2, ske.Marshal())
	flight = AppendHandshake(flight, HandshakeCertificateRequest, 3, req.Marshal())
	flight = AppendHandshake(flight, HandshakeServerHelloDone, 4, nil)
	if got := hexBytes(t, "0d0000080003000000000008"+"0140"+"00020403"+"0000"); !bytes.Contains(flight, got) {
		t.Fatalf("CertificateRequest bytes missing from % x", flight)
	}

	r := NewReassembler(1)
	for rest := flight; len(rest) > 0; {
		h, frag, next, err := ParseHandshakeFragment(rest)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(h, frag); err != nil {
			t.Fatal(err)
		}
		rest = next
	}
	var types []HandshakeType
	for m, ok := r.Next(); ok; m, ok = r.Next() {
		types = append(types, m.Type)
		if m.Type == HandshakeServerKeyExchange {
			var back ServerKeyExchange
			if err := back.Unmarshal(m.Body); err != nil {
				t.Fatal(err)
			}
			if err := VerifyServerKeyExchange(&key.PublicKey, &cr, &sr, &back); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []HandshakeType{HandshakeServerHello, HandshakeServerKeyExchange, HandshakeCertificateRequest, HandshakeServerHelloDone}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("flight types %v, want %v (no Certificate)", types, want)
	}
}

// deviceHello returns a ClientHello shaped like Device OS 3.3.1's.
func deviceHello(t *testing.T) ClientHello {
	t.Helper()
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
	return ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8, SuiteRenegotiationSCSV},
		CompressionMethods: []byte{0}, Extensions: exts}
}

func TestCheckGen3ClientHello(t *testing.T) {
	drop := func(typ uint16) func(*ClientHello) {
		return func(ch *ClientHello) {
			var kept []Extension
			for _, e := range ch.Extensions {
				if e.Type != typ {
					kept = append(kept, e)
				}
			}
			ch.Extensions = kept
		}
	}
	set := func(typ uint16, data string) func(*ClientHello) {
		return func(ch *ClientHello) {
			for i, e := range ch.Extensions {
				if e.Type == typ {
					ch.Extensions[i].Data = hexBytes(t, data)
				}
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(*ClientHello)
		ok     bool
	}{
		{"device", func(*ClientHello) {}, true},
		{"no groups list", drop(ExtSupportedGroups), true},
		{"no point formats list", drop(ExtECPointFormats), true},
		{"DTLS 1.0", func(ch *ClientHello) { ch.Version = VersionDTLS10 }, false},
		{"other suite", func(ch *ClientHello) { ch.CipherSuites = []uint16{0xc02b} }, false},
		{"deflate only", func(ch *ClientHello) { ch.CompressionMethods = []byte{1} }, false},
		{"X25519 only", set(ExtSupportedGroups, "0002001d"), false},
		{"compressed points only", set(ExtECPointFormats, "0101"), false},
		{"no signature algorithms", drop(ExtSignatureAlgorithms), false},
		{"RSA signatures only", set(ExtSignatureAlgorithms, "00020401"), false},
		{"X.509 client certificate", set(ExtClientCertificateType, "0100"), false},
		{"no server certificate type", drop(ExtServerCertificateType), false},
		{"no connection ID", drop(ExtConnectionIDDraft), false},
		{"malformed extension", set(ExtConnectionIDDraft, "05"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := deviceHello(t)
			tt.mutate(&ch)
			h, err := CheckGen3ClientHello(&ch)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if tt.ok && !h.HasConnectionID {
				t.Fatalf("view %+v", h)
			}
		})
	}
	// OpenSSL offers X.509 certificates only, so it is refused.
	for _, m := range loadCapture(t) {
		h, body, _, _ := ParseHandshakeFragment(m.raw)
		if h.Type != HandshakeClientHello {
			continue
		}
		var ch ClientHello
		if err := ch.Unmarshal(body); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckGen3ClientHello(&ch); err == nil {
			t.Fatal("OpenSSL's ClientHello accepted")
		}
	}
}

// TestAppendGen3ServerHelloExtensions checks that the server's direct
// encoding of its extensions block is the encoding of
// Gen3ServerHelloExtensions.
func TestAppendGen3ServerHelloExtensions(t *testing.T) {
	cid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	exts, err := Gen3ServerHelloExtensions(cid)
	if err != nil {
		t.Fatal(err)
	}
	want := appendExtensions([]byte{0xaa}, exts)
	if got := appendGen3ServerHelloExtensions([]byte{0xaa}, cid); !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
}
