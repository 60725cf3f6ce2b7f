package dtls

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"
)

// ErrBadServerKeyExchange means the ServerKeyExchange signature does not
// verify with the server public key the device trusts; the client stops
// before sending anything derived from it.
var ErrBadServerKeyExchange = errors.New("dtls: bad ServerKeyExchange signature")

// ErrPeerAlert means the server ended the handshake with a fatal alert; the
// error names the alert's description (AlertAccessDenied for an unknown
// device key).
var ErrPeerAlert = errors.New("dtls: fatal alert from the server")

// deviceOSSignatureAlgorithms is the signature_algorithms list Device OS
// sends, in its order (docs/dtls.md, Handshake messages).
var deviceOSSignatureAlgorithms = []uint16{0x0403, 0x0401, 0x0303, 0x0301}

// ClientConfig is what a device needs to run the Gen 3 handshake
// (docs/dtls.md, Client handshake).
type ClientConfig struct {
	// Key is the device's P-256 private key; its public half goes out as a
	// raw public key Certificate and it signs CertificateVerify.
	Key *ecdsa.PrivateKey
	// ServerKey is the server's P-256 public key; the ServerKeyExchange
	// signature must verify with it.
	ServerKey *ecdsa.PublicKey
	// ConnectionID is the CIDLen-byte connection ID the device asks the
	// server to put on its records; empty offers the extension without one,
	// as Device OS does.
	ConnectionID []byte
	// Rand supplies the client random; nil means crypto/rand.
	Rand io.Reader
	// InitialTimeout, MaxTimeout and MaxRetransmits tune retransmission;
	// zero values mean the Default constants.
	InitialTimeout, MaxTimeout time.Duration
	// MaxRetransmits is how often a flight is resent before giving up.
	MaxRetransmits int
}

func (c *ClientConfig) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return cryptorand.Reader
}

// client handshake states.
const (
	clientStart      = iota // nothing sent yet
	clientWaitHello         // ClientHello sent, waiting for HelloVerifyRequest or ServerHello
	clientWaitFlight        // ServerHello seen, waiting for the rest of the server flight
	clientWaitFinish        // client flight sent, waiting for the server's Finished
	clientDone
	clientFailed
)

// clientMaxMessageLen bounds one reassembled server handshake message.
const clientMaxMessageLen = 2048

// ClientHandshake is the device's side of one Gen 3 handshake. Like
// ServerHandshake it owns no socket, goroutine or clock: Start and
// HandleDatagram return datagrams to send, and HandleTimeout resends the
// current flight when NextTimeout has passed. It is not safe for concurrent use.
type ClientHandshake struct {
	cfg   *ClientConfig
	state int
	flights
	ch         ClientHello
	chSeq      uint16 // message_seq of the ClientHello sent last
	msgSeq     uint16 // next message_seq of ours
	transcript hash.Hash
	reasm      *Reassembler
	server     []HandshakeMessage // ServerHello, ServerKeyExchange, CertificateRequest, ServerHelloDone
	serverCID  []byte             // on our records
	master     []byte
	session    *Session
	finSeq     uint64 // epoch-1 sequence number of the server Finished
}

// NewClientHandshake checks cfg and prepares a handshake; call Start to
// get the first ClientHello.
func NewClientHandshake(cfg *ClientConfig) (*ClientHandshake, error) {
	if cfg.Key == nil || cfg.ServerKey == nil {
		return nil, errors.New("dtls: client config needs Key and ServerKey")
	}
	if n := len(cfg.ConnectionID); n != 0 && n != CIDLen {
		return nil, fmt.Errorf("dtls: client connection ID of %d bytes, want 0 or %d", n, CIDLen)
	}
	h := HelloExtensions{
		SignatureAlgorithms: deviceOSSignatureAlgorithms, SupportedGroups: []uint16{GroupSecp256r1},
		PointFormats: []byte{PointFormatUncompressed}, HasConnectionID: true,
		ConnectionID:           append([]byte{}, cfg.ConnectionID...),
		ClientCertificateTypes: []byte{CertTypeRawPublicKey}, ServerCertificateTypes: []byte{CertTypeRawPublicKey},
	}
	exts, err := h.Extensions(false)
	if err != nil {
		return nil, err
	}
	hs := &ClientHandshake{cfg: cfg, transcript: sha256.New()}
	hs.timer = newRetransmitter(cfg.InitialTimeout, cfg.MaxTimeout, cfg.MaxRetransmits)
	hs.ch = ClientHello{Version: Version, CipherSuites: []uint16{SuiteECDHEECDSAAES128CCM8, SuiteRenegotiationSCSV},
		CompressionMethods: []byte{0}, Extensions: exts}
	if _, err := io.ReadFull(cfg.rand(), hs.ch.Random[:]); err != nil {
		return nil, fmt.Errorf("dtls: client random: %w", err)
	}
	return hs, nil
}

// Start returns the first ClientHello (no cookie) and arms the timer.
func (hs *ClientHandshake) Start(now time.Time) [][]byte {
	if hs.state != clientStart {
		return nil
	}
	hs.state = clientWaitHello
	hs.sendHello(nil)
	out, _ := hs.sendFlight(now)
	return out
}

// sendHello makes the ClientHello carrying cookie the current flight.
func (hs *ClientHandshake) sendHello(cookie []byte) {
	hs.ch.Cookie = slices.Clone(cookie)
	hs.chSeq = hs.msgSeq
	hs.msgSeq++
	hs.flight = []flightMessage{{typ: TypeHandshake, payload: AppendHandshake(nil, HandshakeClientHello, hs.chSeq, hs.ch.Marshal())}}
	// The server numbers its flight from the ClientHello's message_seq
	// (RFC 6347 §4.2.2), so fragments may be held in any order from now on.
	hs.reasm = &Reassembler{next: hs.chSeq, MaxMessageLen: clientMaxMessageLen, MaxFragments: 16, MaxAhead: 4}
}

// sendFlight sends the current flight; once done no timer is armed.
func (hs *ClientHandshake) sendFlight(now time.Time) ([][]byte, error) {
	return hs.flights.sendFlight(now, hs.session, hs.state == clientDone)
}

// NextTimeout returns when HandleTimeout should next be called; ok is false
// when no timer is armed.
func (hs *ClientHandshake) NextTimeout() (deadline time.Time, ok bool) {
	return hs.timer.next()
}

// HandleTimeout resends the current flight once its timer has expired,
// doubling the timeout up to the cap; after MaxRetransmits resends it fails
// with ErrHandshakeTimeout.
func (hs *ClientHandshake) HandleTimeout(now time.Time) ([][]byte, error) {
	return hs.handleTimeout(now, hs.session, hs.state == clientDone, hs.fail)
}

// fail records err as final and disarms the timer.
func (hs *ClientHandshake) fail(err error) error {
	hs.state = clientFailed
	hs.stop(err)
	hs.reasm, hs.server = nil, nil
	return err
}

// Session returns the established session once the handshake is done, seen
// from the device: Read opens the server's records and Write seals the
// device's. Session's fields are named for the server side, so in a client
// session ServerCID holds the CID on the records the device reads (its own
// ConnectionID, nil when empty) and ClientCID the CID it writes (the one the
// server assigned); DeviceKey is the device's own public key.
func (hs *ClientHandshake) Session() *Session {
	if hs.state != clientDone {
		return nil
	}
	return hs.session
}

// HandleDatagram feeds one datagram from the server. It returns datagrams
// to send, done once the server's Finished has been checked, and an error
// that ends the handshake. Records that do not parse or fail authentication
// are dropped; a repeat of the server's previous flight makes the client
// resend its own.
func (hs *ClientHandshake) HandleDatagram(now time.Time, datagram []byte) (out [][]byte, done bool, err error) {
	if hs.err != nil {
		return nil, false, hs.err
	}
	if hs.state == clientStart {
		return nil, false, nil
	}
	prev := hs.state
	resend, newFlight := false, false
	for rest := datagram; len(rest) > 0; {
		rec, after, perr := ParseRecord(rest)
		if perr != nil {
			break
		}
		rest = after
		r, nf, err := hs.handleRecord(rec)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		resend, newFlight = resend || r, newFlight || nf
	}
	if hs.state == clientWaitHello || hs.state == clientWaitFlight {
		if err := hs.advance(); err != nil {
			return nil, false, hs.fail(err)
		}
	}
	done = hs.state == clientDone
	switch {
	case done && prev != clientDone:
		hs.flight = nil
		hs.timer.stop()
		return nil, true, nil
	case newFlight || (hs.state != prev && hs.state == clientWaitFinish):
		hs.timer.restart()
		out, err := hs.sendFlight(now)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		return out, done, nil
	case resend && !done:
		out, err := hs.sendFlight(now)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		return out, done, nil
	}
	return nil, done, nil
}

// handleRecord feeds one record. resend reports a repeat of the server's
// previous flight; newFlight a HelloVerifyRequest that needs a new ClientHello.
func (hs *ClientHandshake) handleRecord(rec Record) (resend, newFlight bool, err error) {
	if rec.Header.Epoch == 1 {
		return false, false, hs.handleProtected(rec)
	}
	if rec.Header.Epoch == 0 && rec.Header.Type == TypeAlert && hs.state != clientDone {
		return false, false, clientAlert(rec.Body) // after done, the session decides
	}
	if rec.Header.Epoch != 0 || rec.Header.Type != TypeHandshake {
		return false, false, nil
	}
	for body := rec.Body; len(body) > 0; {
		h, frag, more, perr := ParseHandshakeFragment(body)
		if perr != nil {
			return resend, newFlight, nil
		}
		body = more
		switch {
		case h.Type == HandshakeHelloVerifyRequest:
			if hs.state != clientWaitHello || len(hs.server) != 0 || h.FragmentOffset != 0 || h.FragmentLength != h.Length {
				continue
			}
			var hvr HelloVerifyRequest
			if hvr.Unmarshal(frag) != nil || len(hvr.Cookie) == 0 {
				continue
			}
			if hs.ch.Cookie != nil {
				resend = true // a repeated HelloVerifyRequest: our second hello was lost
				continue
			}
			hs.sendHello(hvr.Cookie)
			newFlight = true
		case hs.state == clientWaitFinish || hs.state == clientDone:
			if h.Type == HandshakeServerHelloDone || h.Type == HandshakeServerHello {
				resend = hs.state == clientWaitFinish
			}
		case hs.state == clientWaitHello || hs.state == clientWaitFlight:
			_ = hs.reasm.Add(h, frag) // refused fragments are dropped
		}
	}
	return resend, newFlight, nil
}

// advance collects the server flight and, once ServerHelloDone is in,
// builds the client flight.
func (hs *ClientHandshake) advance() error {
	want := []HandshakeType{HandshakeServerHello, HandshakeServerKeyExchange, HandshakeCertificateRequest, HandshakeServerHelloDone}
	for len(hs.server) < len(want) {
		m, ok := hs.reasm.Next()
		if !ok {
			return nil
		}
		if m.Type != want[len(hs.server)] {
			return fmt.Errorf("%w: type %d, want %d", ErrUnexpectedMessage, m.Type, want[len(hs.server)])
		}
		hs.server = append(hs.server, m)
		hs.state = clientWaitFlight
	}
	return hs.clientFlight()
}

// clientFlight checks the server flight and prepares Certificate,
// ClientKeyExchange, CertificateVerify, ChangeCipherSpec and Finished.
func (hs *ClientHandshake) clientFlight() error {
	hs.transcript.Write(HandshakeMessage{Type: HandshakeClientHello, Seq: hs.chSeq, Body: hs.ch.Marshal()}.Raw())
	for _, m := range hs.server {
		hs.transcript.Write(m.Raw())
	}
	var sh ServerHello
	if err := sh.Unmarshal(hs.server[0].Body); err != nil {
		return err
	}
	if sh.Version != Version || sh.CipherSuite != SuiteECDHEECDSAAES128CCM8 {
		return fmt.Errorf("dtls: server hello: version %#04x suite %#04x", sh.Version, sh.CipherSuite)
	}
	ext, err := ParseHelloExtensions(sh.Extensions, true)
	if err != nil {
		return err
	}
	if ext.HasConnectionID && len(ext.ConnectionID) != 0 {
		if len(ext.ConnectionID) != CIDLen {
			return fmt.Errorf("dtls: server connection ID of %d bytes", len(ext.ConnectionID))
		}
		hs.serverCID = slices.Clone(ext.ConnectionID)
	}
	var ske ServerKeyExchange
	if err := ske.Unmarshal(hs.server[1].Body); err != nil {
		return err
	}
	if ske.NamedCurve != GroupSecp256r1 {
		return fmt.Errorf("dtls: server key exchange: group %#04x", ske.NamedCurve)
	}
	if err := VerifyServerKeyExchange(hs.cfg.ServerKey, &hs.ch.Random, &sh.Random, &ske); err != nil {
		return ErrBadServerKeyExchange
	}
	var cr CertificateRequest
	if err := cr.Unmarshal(hs.server[2].Body); err != nil {
		return err
	}
	if err := ParseServerHelloDone(hs.server[3].Body); err != nil {
		return err
	}
	eph, err := ecdh.P256().GenerateKey(hs.cfg.rand())
	if err != nil {
		return fmt.Errorf("dtls: ephemeral key: %w", err)
	}
	pre, err := ECDHSharedSecret(eph, ske.PublicKey)
	if err != nil {
		return err
	}
	if hs.master, err = MasterSecret(pre, hs.ch.Random[:], sh.Random[:]); err != nil {
		return err
	}
	keys, err := KeyBlock(hs.master, hs.ch.Random[:], sh.Random[:])
	if err != nil {
		return err
	}
	s := &Session{ServerCID: nil, ClientCID: hs.serverCID, DeviceKey: &hs.cfg.Key.PublicKey,
		MasterSecret: hs.master, ReadEpoch: 1, WriteEpoch: 1}
	if len(hs.cfg.ConnectionID) == CIDLen {
		s.ServerCID = slices.Clone(hs.cfg.ConnectionID)
	}
	if s.Write, err = NewCipher(keys.ClientKey[:], keys.ClientIV[:]); err != nil {
		return err
	}
	if s.Read, err = NewCipher(keys.ServerKey[:], keys.ServerIV[:]); err != nil {
		return err
	}
	hs.session = s
	spki, err := x509.MarshalPKIXPublicKey(&hs.cfg.Key.PublicKey)
	if err != nil {
		return fmt.Errorf("dtls: device public key: %w", err)
	}
	add := func(t HandshakeType, body []byte) []byte {
		msg := AppendHandshake(nil, t, hs.msgSeq, body)
		hs.msgSeq++
		hs.transcript.Write(msg)
		return msg
	}
	cert := add(HandshakeCertificate, (&RawPublicKeyCertificate{SPKI: spki}).Marshal())
	cke := add(HandshakeClientKeyExchange, (&ClientKeyExchange{PublicKey: eph.PublicKey().Bytes()}).Marshal())
	sig, err := ecdsa.SignASN1(hs.cfg.rand(), hs.cfg.Key, hs.transcript.Sum(nil))
	if err != nil {
		return fmt.Errorf("dtls: certificate verify: %w", err)
	}
	cv := add(HandshakeCertificateVerify, (&CertificateVerify{SignatureAlgorithm: SigECDSASecp256r1SHA256, Signature: sig}).Marshal())
	fin := add(HandshakeFinished, (&Finished{VerifyData: VerifyData(hs.master, ClientFinished, hs.transcript.Sum(nil))}).Marshal())
	hs.flight = []flightMessage{
		{typ: TypeHandshake, payload: cert}, {typ: TypeHandshake, payload: cke}, {typ: TypeHandshake, payload: cv},
		{typ: TypeChangeCipherSpec, payload: []byte{1}}, {typ: TypeHandshake, epoch: 1, payload: fin},
	}
	hs.state, hs.reasm, hs.server = clientWaitFinish, nil, nil
	return nil
}

// handleProtected checks the server's Finished in an epoch-1 record.
func (hs *ClientHandshake) handleProtected(rec Record) error {
	if hs.state != clientWaitFinish {
		return nil
	}
	s := hs.session
	if (s.ServerCID != nil) != rec.Header.Type.HasCID() || (s.ServerCID != nil && !hmac.Equal(rec.Header.CID, s.ServerCID)) {
		return nil
	}
	if !s.Replay.Check(rec.Header.Seq) {
		return nil
	}
	content, typ, err := s.Read.Open(nil, &rec)
	if err != nil {
		return nil // forged or corrupted: drop
	}
	s.Replay.Mark(rec.Header.Seq)
	if typ == TypeAlert {
		return clientAlert(content)
	}
	if typ != TypeHandshake {
		return nil
	}
	h, frag, _, err := ParseHandshakeFragment(content)
	if err != nil || h.Type != HandshakeFinished || h.FragmentOffset != 0 || h.FragmentLength != h.Length {
		return fmt.Errorf("%w: protected type %d", ErrUnexpectedMessage, h.Type)
	}
	var fin Finished
	if err := fin.Unmarshal(frag); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFinished, err)
	}
	want := VerifyData(hs.master, ServerFinished, hs.transcript.Sum(nil))
	if !hmac.Equal(want[:], fin.VerifyData[:]) {
		return ErrBadFinished
	}
	hs.state = clientDone
	return nil
}

// clientAlert turns a fatal alert into ErrPeerAlert. Warnings and bodies
// that are not one alert are ignored. A plaintext alert is unauthenticated,
// but so is everything before the server's Finished: one that could forge
// it could as well drop the server's datagrams.
func clientAlert(body []byte) error {
	if len(body) != 2 || body[0] != alertLevelFatal {
		return nil
	}
	return fmt.Errorf("%w: description %d", ErrPeerAlert, body[1])
}

// Alert returns the datagram to send after the handshake failed: one fatal
// alert in a plaintext epoch-0 record, as the device's TLS library sends. It
// returns nil while the handshake has not failed, after a timeout and after
// the server's own fatal alert.
func (hs *ClientHandshake) Alert() []byte {
	if hs.err == nil || errors.Is(hs.err, ErrHandshakeTimeout) || errors.Is(hs.err, ErrPeerAlert) {
		return nil
	}
	desc := AlertFor(hs.err)
	if errors.Is(hs.err, ErrBadServerKeyExchange) {
		desc = AlertDecryptError
	}
	b, err := AppendHeader(nil, &Header{Type: TypeAlert, Version: Version, Seq: hs.seq0, Length: 2})
	if err != nil {
		return nil
	}
	hs.seq0++
	return append(b, alertLevelFatal, byte(desc))
}
