package dtls

import "errors"

// AlertDescription is the description byte of a TLS alert (RFC 5246 §7.2).
type AlertDescription uint8

// The fatal alerts the server handshake sends.
const (
	// AlertUnexpectedMessage answers a message out of order.
	AlertUnexpectedMessage AlertDescription = 10
	// AlertHandshakeFailure answers a ClientHello or message Wick cannot accept.
	AlertHandshakeFailure AlertDescription = 40
	// AlertBadCertificate answers a Certificate that is not a usable raw public key.
	AlertBadCertificate AlertDescription = 42
	// AlertAccessDenied answers a device key the server does not know.
	AlertAccessDenied AlertDescription = 49
	// AlertDecryptError answers a bad CertificateVerify or Finished.
	AlertDecryptError AlertDescription = 51
)

// alertLevelFatal is the level byte of a fatal alert.
const alertLevelFatal = 2

// AlertFor returns the alert that reports a server handshake error to the
// device (docs/dtls.md, Server handshake).
func AlertFor(err error) AlertDescription {
	switch {
	case errors.Is(err, ErrUnknownDeviceKey):
		return AlertAccessDenied
	case errors.Is(err, ErrBadCertificateVerify), errors.Is(err, ErrBadFinished):
		return AlertDecryptError
	case errors.Is(err, ErrUnexpectedMessage):
		return AlertUnexpectedMessage
	case errors.Is(err, errBadDeviceCertificate):
		return AlertBadCertificate
	}
	return AlertHandshakeFailure
}

// Alert returns the datagram to send after the handshake failed: one fatal
// alert in a plaintext epoch-0 record, since the device reads epoch 0 until
// the server's ChangeCipherSpec, which a failed handshake never sends. It
// returns nil while the handshake has not failed, and after a timeout (the
// device is not listening).
func (hs *ServerHandshake) Alert() []byte {
	if hs.err == nil || errors.Is(hs.err, ErrHandshakeTimeout) {
		return nil
	}
	b, err := AppendHeader(nil, &Header{Type: TypeAlert, Version: Version, Seq: hs.seq0, Length: 2})
	if err != nil {
		return nil
	}
	hs.seq0++
	return append(b, alertLevelFatal, byte(AlertFor(hs.err)))
}
