package dtls

import (
	"errors"
	"fmt"
	"slices"
)

// HelloExtensions is the decoded view of the hello extensions Wick reads and
// writes (docs/dtls.md, Handshake messages). Unknown extensions are ignored
// when parsing. A nil list means the extension was absent.
type HelloExtensions struct {
	SupportedGroups     []uint16 // supported_groups (ClientHello only)
	PointFormats        []byte   // ec_point_formats
	SignatureAlgorithms []uint16 // signature_algorithms (ClientHello only)
	// ClientCertificateTypes and ServerCertificateTypes are RFC 7250 lists
	// in a ClientHello and hold exactly one entry in a ServerHello.
	ClientCertificateTypes []byte
	ServerCertificateTypes []byte
	HasConnectionID        bool   // the draft connection_id extension (254) is present
	ConnectionID           []byte // its cid; empty means "no CID for me"
	ExtendedMasterSecret   bool   // extended_master_secret is present
	HasRenegotiationInfo   bool   // renegotiation_info is present
	RenegotiationInfo      []byte // its renegotiated_connection (empty on a first handshake)
}

// ParseHelloExtensions decodes the known extensions of a ClientHello
// (fromServer false) or ServerHello (fromServer true) strictly: a known
// extension whose data does not parse exactly is an error.
func ParseHelloExtensions(exts []Extension, fromServer bool) (HelloExtensions, error) {
	var h HelloExtensions
	for _, e := range exts {
		r := reader{b: e.Data}
		switch e.Type {
		case ExtSupportedGroups:
			h.SupportedGroups = nonNil16(r.uint16s())
		case ExtECPointFormats:
			h.PointFormats = nonNil(r.vec8())
		case ExtSignatureAlgorithms:
			h.SignatureAlgorithms = nonNil16(r.uint16s())
		case ExtClientCertificateType, ExtServerCertificateType:
			var types []byte
			if fromServer {
				types = nonNil(r.bytes(1))
			} else {
				types = nonNil(r.vec8())
			}
			if e.Type == ExtClientCertificateType {
				h.ClientCertificateTypes = types
			} else {
				h.ServerCertificateTypes = types
			}
		case ExtConnectionIDDraft:
			h.HasConnectionID, h.ConnectionID = true, nonNil(r.vec8())
		case ExtExtendedMasterSecret:
			h.ExtendedMasterSecret = true
		case ExtRenegotiationInfo:
			h.HasRenegotiationInfo, h.RenegotiationInfo = true, nonNil(r.vec8())
		default:
			continue
		}
		if err := r.done(); err != nil {
			return HelloExtensions{}, fmt.Errorf("dtls: extension %d: %w", e.Type, err)
		}
	}
	if !fromServer && ((h.ClientCertificateTypes != nil && len(h.ClientCertificateTypes) == 0) ||
		(h.ServerCertificateTypes != nil && len(h.ServerCertificateTypes) == 0)) {
		return HelloExtensions{}, errors.New("dtls: empty certificate type list")
	}
	return h, nil
}

// Extensions encodes the present fields in a fixed order. For a ServerHello
// (fromServer true) each certificate type list must hold exactly one entry.
func (h *HelloExtensions) Extensions(fromServer bool) ([]Extension, error) {
	exts := []Extension{}
	if h.HasRenegotiationInfo {
		exts = append(exts, Extension{ExtRenegotiationInfo, appendVec8(nil, h.RenegotiationInfo)})
	}
	if h.SupportedGroups != nil {
		exts = append(exts, Extension{ExtSupportedGroups, appendUint16s(nil, h.SupportedGroups)})
	}
	if h.PointFormats != nil {
		exts = append(exts, Extension{ExtECPointFormats, appendVec8(nil, h.PointFormats)})
	}
	if h.SignatureAlgorithms != nil {
		exts = append(exts, Extension{ExtSignatureAlgorithms, appendUint16s(nil, h.SignatureAlgorithms)})
	}
	if h.ExtendedMasterSecret {
		exts = append(exts, Extension{ExtExtendedMasterSecret, []byte{}})
	}
	if h.HasConnectionID {
		exts = append(exts, Extension{ExtConnectionIDDraft, appendVec8(nil, h.ConnectionID)})
	}
	for _, ct := range []struct {
		typ   uint16
		types []byte
	}{{ExtClientCertificateType, h.ClientCertificateTypes}, {ExtServerCertificateType, h.ServerCertificateTypes}} {
		switch {
		case ct.types == nil:
		case fromServer && len(ct.types) != 1:
			return nil, fmt.Errorf("dtls: server hello extension %d needs exactly one certificate type", ct.typ)
		case fromServer:
			exts = append(exts, Extension{ct.typ, slices.Clone(ct.types)})
		default:
			exts = append(exts, Extension{ct.typ, appendVec8(nil, ct.types)})
		}
	}
	return exts, nil
}

// Gen3ServerHelloExtensions returns the extensions Wick's ServerHello
// carries for a Gen 3 device: empty renegotiation_info, uncompressed points,
// raw public keys both ways and the 8-byte draft connection ID the device
// must put on its records (docs/dtls.md, Handshake messages).
func Gen3ServerHelloExtensions(cid []byte) ([]Extension, error) {
	if len(cid) != CIDLen {
		return nil, ErrBadCID
	}
	h := HelloExtensions{
		HasRenegotiationInfo:   true,
		RenegotiationInfo:      []byte{},
		PointFormats:           []byte{PointFormatUncompressed},
		HasConnectionID:        true,
		ConnectionID:           cid,
		ClientCertificateTypes: []byte{CertTypeRawPublicKey},
		ServerCertificateTypes: []byte{CertTypeRawPublicKey},
	}
	return h.Extensions(true)
}

// appendGen3ServerHelloExtensions appends the extensions block of
// Gen3ServerHelloExtensions(cid) to b without building the list; cid must
// be CIDLen bytes.
func appendGen3ServerHelloExtensions(b, cid []byte) []byte {
	start := len(b)
	b = append(b, 0, 0)
	b = append(b, byte(ExtRenegotiationInfo>>8), byte(ExtRenegotiationInfo&0xff), 0, 1, 0)
	b = append(b, 0, byte(ExtECPointFormats), 0, 2, 1, PointFormatUncompressed)
	b = append(b, 0, byte(ExtConnectionIDDraft), 0, byte(1+len(cid)), byte(len(cid)))
	b = append(b, cid...)
	b = append(b, 0, byte(ExtClientCertificateType), 0, 1, CertTypeRawPublicKey)
	b = append(b, 0, byte(ExtServerCertificateType), 0, 1, CertTypeRawPublicKey)
	n := len(b) - start - 2
	b[start], b[start+1] = byte(n>>8), byte(n)
	return b
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nonNil16(v []uint16) []uint16 {
	if v == nil {
		return []uint16{}
	}
	return v
}

// CheckGen3ClientHello decodes ch's extensions and checks that ch offers
// what Wick's one profile needs (docs/dtls.md, Handshake messages): DTLS 1.2,
// the suite 0xC0AE, null compression, P-256 with uncompressed points where
// those lists are sent, ecdsa_secp256r1_sha256, raw public keys for both
// sides and the draft connection ID extension. The error names the first
// thing missing; the gateway answers it with a handshake_failure alert.
func CheckGen3ClientHello(ch *ClientHello) (HelloExtensions, error) {
	h, err := ParseHelloExtensions(ch.Extensions, false)
	if err != nil {
		return HelloExtensions{}, err
	}
	var missing string
	switch {
	case ch.Version > Version: // DTLS versions count down: fefd is 1.2, fefc 1.3
		missing = "DTLS 1.2"
	case !slices.Contains(ch.CipherSuites, SuiteECDHEECDSAAES128CCM8):
		missing = "cipher suite TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"
	case !slices.Contains(ch.CompressionMethods, 0):
		missing = "null compression"
	case h.SupportedGroups != nil && !slices.Contains(h.SupportedGroups, GroupSecp256r1):
		missing = "group secp256r1"
	case h.PointFormats != nil && !slices.Contains(h.PointFormats, PointFormatUncompressed):
		missing = "uncompressed points"
	case !slices.Contains(h.SignatureAlgorithms, SigECDSASecp256r1SHA256):
		missing = "signature algorithm ecdsa_secp256r1_sha256"
	case !slices.Contains(h.ClientCertificateTypes, CertTypeRawPublicKey):
		missing = "raw public key client certificate type"
	case !slices.Contains(h.ServerCertificateTypes, CertTypeRawPublicKey):
		missing = "raw public key server certificate type"
	case !h.HasConnectionID:
		missing = "connection ID extension 254"
	default:
		return h, nil
	}
	return HelloExtensions{}, fmt.Errorf("dtls: client hello does not offer %s", missing)
}
