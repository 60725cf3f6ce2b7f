package dtls

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// VersionDTLS10 is the wire value of DTLS 1.0, which RFC 6347 §4.2.1 allows in
// a HelloVerifyRequest.
const VersionDTLS10 uint16 = 0xfeff

// Cipher suite, group and algorithm code points of the one Gen 3 profile.
const (
	SuiteECDHEECDSAAES128CCM8 uint16 = 0xc0ae // TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
	SuiteRenegotiationSCSV    uint16 = 0x00ff // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
	GroupSecp256r1            uint16 = 0x0017 // secp256r1 (P-256)
	SigECDSASecp256r1SHA256   uint16 = 0x0403 // ecdsa_secp256r1_sha256
	PointFormatUncompressed   uint8  = 0      // ec_point_formats: uncompressed
	CurveTypeNamedCurve       uint8  = 3      // ECCurveType named_curve
	CertTypeX509              uint8  = 0      // RFC 7250 certificate type X.509
	CertTypeRawPublicKey      uint8  = 2      // RFC 7250 certificate type RawPublicKey
	ClientCertTypeECDSASign   uint8  = 64     // ClientCertificateType ecdsa_sign
)

// Extension type code points Wick reads or writes.
const (
	ExtSupportedGroups       uint16 = 10
	ExtECPointFormats        uint16 = 11
	ExtSignatureAlgorithms   uint16 = 13
	ExtClientCertificateType uint16 = 19
	ExtServerCertificateType uint16 = 20
	ExtExtendedMasterSecret  uint16 = 23
	ExtConnectionIDDraft     uint16 = 254 // draft-ietf-tls-dtls-connection-id-05, used by Device OS
	ExtRenegotiationInfo     uint16 = 0xff01
)

// errTrailing reports bytes left over after a message body.
var errTrailing = errors.New("dtls: trailing bytes after handshake body")

// Extension is one hello extension as it appears on the wire.
type Extension struct {
	Type uint16
	Data []byte
}

// ClientHello is a DTLS 1.2 ClientHello body (RFC 6347 §4.2.1).
type ClientHello struct {
	Version            uint16
	Random             [RandomLen]byte
	SessionID          []byte
	Cookie             []byte
	CipherSuites       []uint16
	CompressionMethods []byte
	Extensions         []Extension // nil: no extensions block; empty: an empty block
}

// Marshal returns the wire form of the body.
func (m *ClientHello) Marshal() []byte { return m.appendTo(nil, m.Cookie) }

// appendTo appends the wire form of the body with cookie in place of
// m.Cookie to b.
func (m *ClientHello) appendTo(b, cookie []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, m.Version)
	b = append(b, m.Random[:]...)
	b = appendVec8(b, m.SessionID)
	b = appendVec8(b, cookie)
	b = appendUint16s(b, m.CipherSuites)
	b = appendVec8(b, m.CompressionMethods)
	if m.Extensions == nil {
		return b
	}
	return appendExtensions(b, m.Extensions)
}

// Unmarshal parses a ClientHello body strictly: every length must fit, no
// byte may be left over, and no extension type may repeat.
func (m *ClientHello) Unmarshal(b []byte) error {
	r := reader{b: b}
	var out ClientHello
	out.Version = r.u16()
	copy(out.Random[:], r.bytes(RandomLen))
	out.SessionID = r.vec8()
	out.Cookie = r.vec8()
	out.CipherSuites = r.uint16s()
	out.CompressionMethods = r.vec8()
	if r.err != nil {
		return fmt.Errorf("%w in client hello", r.err)
	}
	if len(out.SessionID) > 32 || len(out.CipherSuites) == 0 || len(out.CompressionMethods) == 0 {
		return errors.New("dtls: client hello: bad session id, cookie, suite or compression list")
	}
	exts, err := parseExtensions(&r)
	if err != nil {
		return fmt.Errorf("%w in client hello", err)
	}
	out.Extensions = exts
	*m = out
	return nil
}

// HelloVerifyRequest is the server's cookie challenge (RFC 6347 §4.2.1).
type HelloVerifyRequest struct {
	Version uint16
	Cookie  []byte
}

// Marshal returns the wire form of the body.
func (m *HelloVerifyRequest) Marshal() []byte {
	return appendVec8(binary.BigEndian.AppendUint16(nil, m.Version), m.Cookie)
}

// Unmarshal parses a HelloVerifyRequest body strictly.
func (m *HelloVerifyRequest) Unmarshal(b []byte) error {
	r := reader{b: b}
	out := HelloVerifyRequest{Version: r.u16(), Cookie: r.vec8()}
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in hello verify request", err)
	}
	*m = out
	return nil
}

// ServerHello is a DTLS 1.2 ServerHello body.
type ServerHello struct {
	Version           uint16
	Random            [RandomLen]byte
	SessionID         []byte
	CipherSuite       uint16
	CompressionMethod uint8
	Extensions        []Extension // nil: no extensions block; empty: an empty block
}

// Marshal returns the wire form of the body.
func (m *ServerHello) Marshal() []byte { return m.appendTo(nil) }

// appendTo appends the wire form of the body to b.
func (m *ServerHello) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, m.Version)
	b = append(b, m.Random[:]...)
	b = appendVec8(b, m.SessionID)
	b = binary.BigEndian.AppendUint16(b, m.CipherSuite)
	b = append(b, m.CompressionMethod)
	if m.Extensions == nil {
		return b
	}
	return appendExtensions(b, m.Extensions)
}

// Unmarshal parses a ServerHello body strictly.
func (m *ServerHello) Unmarshal(b []byte) error {
	r := reader{b: b}
	var out ServerHello
	out.Version = r.u16()
	copy(out.Random[:], r.bytes(RandomLen))
	out.SessionID = r.vec8()
	out.CipherSuite = r.u16()
	out.CompressionMethod = r.u8()
	if r.err != nil {
		return fmt.Errorf("%w in server hello", r.err)
	}
	if len(out.SessionID) > 32 {
		return errors.New("dtls: server hello: session id too long")
	}
	exts, err := parseExtensions(&r)
	if err != nil {
		return fmt.Errorf("%w in server hello", err)
	}
	out.Extensions = exts
	*m = out
	return nil
}

// ServerKeyExchange carries the server's ECDHE parameters and its signature
// over them (RFC 8422 §5.4; docs/dtls.md, Handshake messages).
type ServerKeyExchange struct {
	NamedCurve         uint16 // curve_type is always named_curve
	PublicKey          []byte // the ephemeral point, uncompressed for P-256
	SignatureAlgorithm uint16
	Signature          []byte // ASN.1 DER ECDSA signature
}

// Params returns the ServerECDHParams bytes: curve_type, named curve, point.
func (m *ServerKeyExchange) Params() []byte {
	return m.appendParams(make([]byte, 0, 4+len(m.PublicKey)))
}

// appendParams appends the ServerECDHParams bytes to b.
func (m *ServerKeyExchange) appendParams(b []byte) []byte {
	b = append(b, CurveTypeNamedCurve)
	b = binary.BigEndian.AppendUint16(b, m.NamedCurve)
	return appendVec8(b, m.PublicKey)
}

// Marshal returns the wire form of the body.
func (m *ServerKeyExchange) Marshal() []byte {
	return m.appendTo(make([]byte, 0, 8+len(m.PublicKey)+len(m.Signature)))
}

// appendTo appends the wire form of the body to b.
func (m *ServerKeyExchange) appendTo(b []byte) []byte {
	b = m.appendParams(b)
	b = binary.BigEndian.AppendUint16(b, m.SignatureAlgorithm)
	return appendVec16(b, m.Signature)
}

// Unmarshal parses a ServerKeyExchange body strictly; only named curves are
// accepted.
func (m *ServerKeyExchange) Unmarshal(b []byte) error {
	r := reader{b: b}
	if ct := r.u8(); r.err == nil && ct != CurveTypeNamedCurve {
		return fmt.Errorf("dtls: server key exchange: curve type %d is not named_curve", ct)
	}
	out := ServerKeyExchange{NamedCurve: r.u16(), PublicKey: r.vec8(), SignatureAlgorithm: r.u16(), Signature: r.vec16()}
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in server key exchange", err)
	}
	if len(out.PublicKey) == 0 || len(out.Signature) == 0 {
		return errors.New("dtls: server key exchange: empty point or signature")
	}
	*m = out
	return nil
}

// CertificateRequest asks the client for its certificate (RFC 5246 §7.4.4).
type CertificateRequest struct {
	CertificateTypes       []byte
	SignatureAlgorithms    []uint16
	CertificateAuthorities [][]byte // distinguished names; Wick sends none
}

// Marshal returns the wire form of the body.
func (m *CertificateRequest) Marshal() []byte { return m.appendTo(nil) }

// appendTo appends the wire form of the body to b.
func (m *CertificateRequest) appendTo(b []byte) []byte {
	b = appendVec8(b, m.CertificateTypes)
	b = appendUint16s(b, m.SignatureAlgorithms)
	start := len(b)
	b = append(b, 0, 0)
	for _, dn := range m.CertificateAuthorities {
		b = appendVec16(b, dn)
	}
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start-2))
	return b
}

// Unmarshal parses a CertificateRequest body strictly.
func (m *CertificateRequest) Unmarshal(b []byte) error {
	r := reader{b: b}
	out := CertificateRequest{CertificateTypes: r.vec8(), SignatureAlgorithms: r.uint16s()}
	cas := reader{b: r.vec16()}
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in certificate request", err)
	}
	for len(cas.b) > 0 && cas.err == nil {
		dn := cas.vec16()
		if cas.err == nil && len(dn) == 0 {
			return errors.New("dtls: certificate request: empty distinguished name")
		}
		out.CertificateAuthorities = append(out.CertificateAuthorities, dn)
	}
	if cas.err != nil {
		return fmt.Errorf("%w in certificate request authorities", cas.err)
	}
	if len(out.CertificateTypes) == 0 || len(out.SignatureAlgorithms) == 0 {
		return errors.New("dtls: certificate request: empty type or algorithm list")
	}
	*m = out
	return nil
}

// ParseServerHelloDone checks that a ServerHelloDone body is empty.
func ParseServerHelloDone(b []byte) error {
	if len(b) != 0 {
		return errors.New("dtls: server hello done: body must be empty")
	}
	return nil
}

// RawPublicKeyCertificate is a Certificate message in RFC 7250 raw public key
// form: one SubjectPublicKeyInfo, as Gen 3 devices send it.
type RawPublicKeyCertificate struct {
	SPKI []byte // DER SubjectPublicKeyInfo
}

// Marshal returns the wire form of the body.
func (m *RawPublicKeyCertificate) Marshal() []byte {
	return appendVec24(nil, m.SPKI)
}

// Unmarshal parses a raw-public-key Certificate body strictly. It does not
// parse the key; see ParseDevicePublicKey.
func (m *RawPublicKeyCertificate) Unmarshal(b []byte) error {
	r := reader{b: b}
	spki := r.vec24()
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in raw public key certificate", err)
	}
	if len(spki) == 0 {
		return errors.New("dtls: raw public key certificate: empty key")
	}
	m.SPKI = spki
	return nil
}

// CertificateChain is a Certificate message in X.509 form (RFC 5246 §7.4.2).
// Wick never sends one; it decodes them in tests against other stacks.
type CertificateChain struct {
	Certificates [][]byte // DER certificates, leaf first
}

// Marshal returns the wire form of the body.
func (m *CertificateChain) Marshal() []byte {
	var list []byte
	for _, c := range m.Certificates {
		list = appendVec24(list, c)
	}
	return appendVec24(nil, list)
}

// Unmarshal parses an X.509 Certificate body strictly.
func (m *CertificateChain) Unmarshal(b []byte) error {
	r := reader{b: b}
	list := reader{b: r.vec24()}
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in certificate", err)
	}
	var out [][]byte
	for len(list.b) > 0 && list.err == nil {
		c := list.vec24()
		if list.err == nil && len(c) == 0 {
			return errors.New("dtls: certificate: empty certificate")
		}
		out = append(out, c)
	}
	if list.err != nil {
		return fmt.Errorf("%w in certificate", list.err)
	}
	m.Certificates = out
	return nil
}

// ClientKeyExchange carries the client's ECDH public point (RFC 8422 §5.7).
type ClientKeyExchange struct {
	PublicKey []byte
}

// Marshal returns the wire form of the body.
func (m *ClientKeyExchange) Marshal() []byte { return appendVec8(nil, m.PublicKey) }

// Unmarshal parses a ClientKeyExchange body strictly.
func (m *ClientKeyExchange) Unmarshal(b []byte) error {
	r := reader{b: b}
	p := r.vec8()
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in client key exchange", err)
	}
	if len(p) == 0 {
		return errors.New("dtls: client key exchange: empty point")
	}
	m.PublicKey = p
	return nil
}

// CertificateVerify is the client's signature over the handshake transcript
// (RFC 5246 §7.4.8).
type CertificateVerify struct {
	SignatureAlgorithm uint16
	Signature          []byte // ASN.1 DER ECDSA signature
}

// Marshal returns the wire form of the body.
func (m *CertificateVerify) Marshal() []byte {
	return appendVec16(binary.BigEndian.AppendUint16(nil, m.SignatureAlgorithm), m.Signature)
}

// Unmarshal parses a CertificateVerify body strictly.
func (m *CertificateVerify) Unmarshal(b []byte) error {
	r := reader{b: b}
	out := CertificateVerify{SignatureAlgorithm: r.u16(), Signature: r.vec16()}
	if err := r.done(); err != nil {
		return fmt.Errorf("%w in certificate verify", err)
	}
	if len(out.Signature) == 0 {
		return errors.New("dtls: certificate verify: empty signature")
	}
	*m = out
	return nil
}

// Finished carries verify_data (RFC 5246 §7.4.9).
type Finished struct {
	VerifyData [VerifyDataLen]byte
}

// Marshal returns the wire form of the body.
func (m *Finished) Marshal() []byte { return append([]byte(nil), m.VerifyData[:]...) }

// Unmarshal parses a Finished body; it must be exactly 12 bytes.
func (m *Finished) Unmarshal(b []byte) error {
	if len(b) != VerifyDataLen {
		return fmt.Errorf("dtls: finished: %d bytes, want %d", len(b), VerifyDataLen)
	}
	copy(m.VerifyData[:], b)
	return nil
}

// parseExtensions reads the optional extensions block that ends a hello.
// Absent (no bytes left) yields nil; a present block must fill the rest of
// the body exactly and may not repeat an extension type.
func parseExtensions(r *reader) ([]Extension, error) {
	if len(r.b) == 0 {
		return nil, nil
	}
	block := reader{b: r.vec16()}
	if err := r.done(); err != nil {
		return nil, err
	}
	// Count first so that the list is allocated once.
	n := 0
	for c := (reader{b: block.b}); len(c.b) > 0 && c.err == nil; n++ {
		c.u16()
		c.vec16()
	}
	exts := make([]Extension, 0, n)
	for len(block.b) > 0 {
		e := Extension{Type: block.u16(), Data: block.vec16()}
		if block.err != nil {
			return nil, block.err
		}
		for _, x := range exts {
			if x.Type == e.Type {
				return nil, fmt.Errorf("dtls: extension %d repeated", e.Type)
			}
		}
		exts = append(exts, e)
	}
	return exts, nil
}

func appendExtensions(b []byte, exts []Extension) []byte {
	start := len(b)
	b = append(b, 0, 0)
	for _, e := range exts {
		b = binary.BigEndian.AppendUint16(b, e.Type)
		b = appendVec16(b, e.Data)
	}
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start-2))
	return b
}

func appendVec8(b, v []byte) []byte { return append(append(b, byte(len(v))), v...) }
func appendVec16(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}
func appendVec24(b, v []byte) []byte { return append(appendUint24(b, uint32(len(v))), v...) }

func appendUint16s(b []byte, v []uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(2*len(v)))
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// reader is a sticky-error cursor over a handshake body: after the first
// short read every further read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = ErrHandshakeShort
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) vec8() []byte  { return r.bytes(int(r.u8())) }
func (r *reader) vec16() []byte { return r.bytes(int(r.u16())) }

func (r *reader) vec24() []byte {
	v := r.bytes(3)
	if v == nil {
		return nil
	}
	return r.bytes(int(uint24(v)))
}

// uint16s reads a 2-byte-length list of 16-bit values; the length must be even.
func (r *reader) uint16s() []uint16 {
	v := r.vec16()
	if r.err != nil {
		return nil
	}
	if len(v)%2 != 0 {
		r.err = errors.New("dtls: odd length for a list of 16-bit values")
		return nil
	}
	out := make([]uint16, len(v)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(v[2*i:])
	}
	return out
}

// done reports a read error or leftover bytes.
func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return errTrailing
	}
	return nil
}
