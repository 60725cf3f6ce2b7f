package dtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"slices"
	"time"
)

// Errors the server handshake returns (docs/dtls.md, Server handshake).
var (
	// ErrUnknownDeviceKey means the device's public key is not one the
	// server knows; the handshake stops before any key is derived.
	ErrUnknownDeviceKey = errors.New("dtls: unknown device key")
	// ErrBadCertificateVerify means the device's CertificateVerify signature
	// does not verify with its public key.
	ErrBadCertificateVerify = errors.New("dtls: bad CertificateVerify")
	// ErrBadFinished means the device's Finished verify_data is wrong.
	ErrBadFinished = errors.New("dtls: bad Finished")
	// ErrBadCookie means a datagram that should start a handshake is not a
	// usable ClientHello.
	ErrBadCookie = errors.New("dtls: bad cookie")
	// ErrHandshakeTimeout means the device stopped answering: the server
	// flight went out MaxRetransmits+1 times without a reply.
	ErrHandshakeTimeout = errors.New("dtls: handshake timed out")
	// ErrUnexpectedMessage means a handshake message arrived out of order.
	ErrUnexpectedMessage = errors.New("dtls: unexpected handshake message")
)

// Retransmission timer defaults (RFC 6347 §4.2.4.1).
const (
	// DefaultInitialTimeout is the first retransmission timeout.
	DefaultInitialTimeout = time.Second
	// DefaultMaxTimeout caps the doubling retransmission timeout.
	DefaultMaxTimeout = 60 * time.Second
	// DefaultMaxRetransmits is how often a flight is resent before the
	// handshake gives up.
	DefaultMaxRetransmits = 6
)

// serverMaxMessageLen bounds one reassembled client handshake message: a raw
// public key Certificate is under 100 bytes, an X.509 one (tests) under 1 KiB.
const serverMaxMessageLen = 2048

// serverMaxEarly bounds the epoch-1 records held while the keys are not yet known.
const serverMaxEarly = 4

// serverMaxEarlyLen bounds each held record; a Finished record is under 100 bytes.
const serverMaxEarlyLen = 512

// ServerConfig is what a server needs to run Gen 3 handshakes. It is read,
// never written, by handshakes, so one config serves any number of them.
type ServerConfig struct {
	// Key is the server's P-256 private key; it signs ServerKeyExchange,
	// deterministically (RFC 6979, see SignServerKeyExchange).
	Key *ecdsa.PrivateKey
	// Signer, when set, signs instead of Key (an HSM, or a counter in tests).
	// It receives a SHA-256 digest and returns an ASN.1 ECDSA signature.
	Signer crypto.Signer
	// DeviceKey reports whether a device public key is known. Unknown keys
	// end the handshake with ErrUnknownDeviceKey. Nil refuses every key.
	DeviceKey func(pub *ecdsa.PublicKey) (known bool)
	// Cookies issues and checks HelloVerifyRequest cookies.
	Cookies *Cookies
	// Crypto makes the ephemeral ECDHE key and checks the device's
	// CertificateVerify; nil means Go's crypto (docs/dtls.md, Speed).
	Crypto ServerCrypto
	// Keys, when set, keeps parsed device keys across handshakes.
	Keys *KeyCache
	// Rand supplies the server random and connection IDs; nil means
	// crypto/rand. Since Go 1.26 ECDH key generation draws its own secure
	// randomness and ignores it; Key's signatures need none.
	Rand io.Reader
	// NewCID returns the CIDLen-byte connection ID the device must put on
	// its records; nil means CIDLen bytes from Rand.
	NewCID func() ([]byte, error)
	// InitialTimeout, MaxTimeout and MaxRetransmits tune retransmission;
	// zero means the Default values.
	InitialTimeout time.Duration
	MaxTimeout     time.Duration
	MaxRetransmits int
	// AllowX509 is for interoperability tests with stacks that have no raw
	// public keys (OpenSSL 3.0): the ClientHello need not offer raw public
	// keys or a connection ID, the server sends Certificate as its X.509
	// chain, and the client's X.509 leaf key is used as its device key.
	// Production configs leave it false.
	AllowX509   bool
	Certificate []byte // DER X.509 certificate sent when AllowX509 is set
}

func (c *ServerConfig) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return cryptorand.Reader
}

// HandleClientHello is the stateless first step of a handshake. datagram
// must start with a ClientHello from addr. Without a valid cookie it returns
// one HelloVerifyRequest datagram and no handshake, and nothing is allocated
// that outlives the call and no signature is made. With a valid cookie it
// returns a new ServerHandshake and its first flight (ServerHello,
// ServerKeyExchange, CertificateRequest, ServerHelloDone).
func (c *ServerConfig) HandleClientHello(now time.Time, addr netip.AddrPort, datagram []byte) (out [][]byte, hs *ServerHandshake, err error) {
	rec, _, err := ParseRecord(datagram)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadCookie, err)
	}
	if rec.Header.Type != TypeHandshake || rec.Header.Epoch != 0 {
		return nil, nil, fmt.Errorf("%w: not an epoch-0 handshake record", ErrBadCookie)
	}
	h, frag, _, err := ParseHandshakeFragment(rec.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadCookie, err)
	}
	if h.Type != HandshakeClientHello || h.FragmentOffset != 0 || h.FragmentLength != h.Length {
		return nil, nil, fmt.Errorf("%w: not a whole ClientHello", ErrBadCookie)
	}
	var ch ClientHello
	if err := ch.Unmarshal(frag); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadCookie, err)
	}
	if c.Cookies == nil {
		return nil, nil, errors.New("dtls: server config has no Cookies")
	}
	if !c.Cookies.Verify(addr, &ch) {
		// One buffer: record header, handshake header, version, cookie.
		const bodyLen = HandshakeHeaderLen + 2 + 1 + CookieLen
		// RFC 6347 §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
		dgram, err := AppendHeader(make([]byte, 0, HeaderLen+bodyLen), &Header{Type: TypeHandshake, Version: Version, Seq: rec.Header.Seq, Length: bodyLen})
		if err != nil {
			return nil, nil, fmt.Errorf("dtls: hello verify request: %w", err)
		}
		dgram, start := beginHandshake(dgram, HandshakeHelloVerifyRequest, h.MessageSeq)
		dgram = append(dgram, byte(VersionDTLS10>>8), byte(VersionDTLS10&0xff), CookieLen)
		dgram = c.Cookies.mac(dgram, addr, &ch)
		endHandshake(dgram, start)
		return [][]byte{dgram}, nil, nil
	}
	hs, err = c.newHandshake(now, addr, rec.Header.Seq, HandshakeMessage{Type: h.Type, Seq: h.MessageSeq, Body: frag}, &ch)
	if err != nil {
		return nil, nil, err
	}
	out, err = hs.sendFlight(now)
	if err != nil {
		return nil, nil, err
	}
	return out, hs, nil
}

// handshakeState is where a ServerHandshake stands.
type handshakeState uint8

const (
	stateCertificate handshakeState = iota // waiting for the device's Certificate
	stateClientKeyExchange
	stateCertificateVerify
	stateFinished
	stateDone
	stateFailed
)

// wants returns the client message the state waits for (0 when none).
func (s handshakeState) wants() HandshakeType {
	switch s {
	case stateCertificate:
		return HandshakeCertificate
	case stateClientKeyExchange:
		return HandshakeClientKeyExchange
	case stateCertificateVerify:
		return HandshakeCertificateVerify
	case stateFinished:
		return HandshakeFinished
	}
	return 0
}

// ServerHandshake is one server-side handshake after the cookie exchange.
// It owns no socket, goroutine or clock: datagrams and the current time go
// in, datagrams to send come out (docs/dtls.md, Server handshake). Its
// memory is bounded by the reassembler's limits and a few held records. It
// is not safe for concurrent use.
type ServerHandshake struct {
	cfg   *ServerConfig
	addr  netip.AddrPort
	state handshakeState
	flights
	clientHello  uint16 // message_seq of the ClientHello
	clientRandom [RandomLen]byte
	serverRandom [RandomLen]byte
	eph          ECDHEKey
	transcript   hash.Hash
	sum          [sha256.Size]byte // a transcript hash; a local would escape into Sum
	reasm        *Reassembler      // &reasmBuf until the device's flight is in
	reasmBuf     Reassembler
	early        [][]byte         // epoch-1 records that came before the keys
	serverCID    []byte           // on the device's records
	clientCID    []byte           // on ours; nil when the device asked for none
	cids         [2 * CIDLen]byte // holds serverCID and clientCID
	flightBuf    [2]flightMessage // holds flight
	finished     [HandshakeHeaderLen + VerifyDataLen]byte
	hdr          [HandshakeHeaderLen]byte
	spki         [128]byte // holds devSPKI when it fits
	peer         []byte    // the device's ECDH point, until VerifyingECDH derives
	peerBuf      [65]byte  // holds peer
	x509         bool

	devKey  *ecdsa.PublicKey
	devSPKI []byte // the device key's SubjectPublicKeyInfo
	master  []byte // in mem
	mem     *sessionMem
	keys    Keys
	read    *Cipher
	write   *Cipher
	replay  ReplayWindow
	session *Session
	msgSeq  uint16 // message_seq of the server's Finished
}

// newHandshake checks the ClientHello and prepares the server's first flight.
func (c *ServerConfig) newHandshake(now time.Time, addr netip.AddrPort, recSeq uint64, m HandshakeMessage, ch *ClientHello) (*ServerHandshake, error) {
	if c.Key == nil && c.Signer == nil {
		return nil, errNoKey
	}
	hs := &ServerHandshake{cfg: c, addr: addr, clientHello: m.Seq, clientRandom: ch.Random,
		transcript: sha256.New(), x509: c.AllowX509}
	hs.seq0 = recSeq
	hs.reasmBuf = Reassembler{next: m.Seq + 1, MaxMessageLen: serverMaxMessageLen, MaxFragments: 16, MaxAhead: 4}
	hs.reasm = &hs.reasmBuf
	var exts []Extension // the X.509 test profile's; Gen 3's are appended directly
	gen3, err := CheckGen3ClientHello(ch)
	switch {
	case err == nil:
		hs.x509 = false
		if n := len(gen3.ConnectionID); n != 0 && n != CIDLen {
			return nil, fmt.Errorf("dtls: client connection ID of %d bytes, want 0 or %d", n, CIDLen)
		} else if n == CIDLen {
			hs.clientCID = append(hs.cids[CIDLen:CIDLen], gen3.ConnectionID...)
		}
		if c.NewCID != nil {
			hs.serverCID, err = c.NewCID()
			if err == nil && len(hs.serverCID) != CIDLen {
				err = ErrBadCID
			}
		} else {
			hs.serverCID = hs.cids[:CIDLen:CIDLen]
			_, err = io.ReadFull(c.rand(), hs.serverCID)
		}
		if err != nil {
			return nil, fmt.Errorf("dtls: connection ID: %w", err)
		}
	case c.AllowX509 && slices.Contains(ch.CipherSuites, SuiteECDHEECDSAAES128CCM8):
		x := HelloExtensions{HasRenegotiationInfo: true, RenegotiationInfo: []byte{}, PointFormats: []byte{PointFormatUncompressed}}
		if exts, err = x.Extensions(true); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	hs.writeTranscript(m)
	if _, err := io.ReadFull(c.rand(), hs.serverRandom[:]); err != nil {
		return nil, fmt.Errorf("dtls: server random: %w", err)
	}
	if hs.eph, err = c.crypto().GenerateECDHE(); err != nil {
		return nil, fmt.Errorf("dtls: ephemeral key: %w", err)
	}
	ske := ServerKeyExchange{NamedCurve: GroupSecp256r1, PublicKey: hs.eph.PublicKey()}
	if err := c.sign(&hs.clientRandom, &hs.serverRandom, &ske); err != nil {
		return nil, err
	}
	// The flight's messages are written into one buffer: ServerHello,
	// [Certificate,] ServerKeyExchange, CertificateRequest, ServerHelloDone.
	body := make([]byte, 0, serverFlightCap+len(c.Certificate)+len(ske.PublicKey)+len(ske.Signature))
	seq := m.Seq
	body, start := beginHandshake(body, HandshakeServerHello, seq)
	sh := ServerHello{Version: Version, Random: hs.serverRandom, CipherSuite: SuiteECDHEECDSAAES128CCM8, Extensions: exts}
	body = sh.appendTo(body)
	if exts == nil {
		body = appendGen3ServerHelloExtensions(body, hs.serverCID)
	}
	hs.transcript.Write(endHandshake(body, start))
	seq++
	if hs.x509 {
		chain := CertificateChain{Certificates: [][]byte{c.Certificate}}
		body, start = beginHandshake(body, HandshakeCertificate, seq)
		body = append(body, chain.Marshal()...)
		hs.transcript.Write(endHandshake(body, start))
		seq++
	}
	body, start = beginHandshake(body, HandshakeServerKeyExchange, seq)
	body = ske.appendTo(body)
	hs.transcript.Write(endHandshake(body, start))
	seq++
	body, start = beginHandshake(body, HandshakeCertificateRequest, seq)
	body = serverCertificateRequest.appendTo(body)
	hs.transcript.Write(endHandshake(body, start))
	seq++
	body, start = beginHandshake(body, HandshakeServerHelloDone, seq)
	hs.transcript.Write(endHandshake(body, start))
	seq++
	hs.flightBuf[0] = flightMessage{typ: TypeHandshake, payload: body}
	hs.flight = hs.flightBuf[:1]
	hs.msgSeq = seq
	hs.timer = newRetransmitter(c.InitialTimeout, c.MaxTimeout, c.MaxRetransmits)
	return hs, nil
}

// changeCipherSpec is the body of every ChangeCipherSpec record; only read.
var changeCipherSpec = [1]byte{1}

// serverFlightCap is the server's first flight without the point, the
// signature and a test certificate: ServerHello with its extensions,
// the message headers and the CertificateRequest, with room to spare.
const serverFlightCap = 192

// serverCertificateRequest is the one CertificateRequest the server sends:
// an ECDSA key, signed with ecdsa_secp256r1_sha256.
var serverCertificateRequest = CertificateRequest{CertificateTypes: []byte{ClientCertTypeECDSASign}, SignatureAlgorithms: []uint16{SigECDSASecp256r1SHA256}}

// sign signs ske with Signer or, deterministically, with Key (see
// SignServerKeyExchange).
func (c *ServerConfig) sign(cr, sr *[RandomLen]byte, ske *ServerKeyExchange) error {
	if c.Signer == nil {
		return SignServerKeyExchange(nil, c.Key, cr, sr, ske)
	}
	if pub, ok := c.Signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return errors.New("dtls: server signer is not ECDSA P-256")
	}
	digest := serverKeyExchangeSum(cr, sr, ske)
	sig, err := c.Signer.Sign(c.rand(), digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("dtls: sign server key exchange: %w", err)
	}
	ske.SignatureAlgorithm, ske.Signature = SigECDSASecp256r1SHA256, sig
	return nil
}

// sendFlight sends the current flight; the final one arms no timer.
func (hs *ServerHandshake) sendFlight(now time.Time) ([][]byte, error) {
	return hs.flights.sendFlight(now, hs.session, hs.state == stateDone)
}

// NextTimeout returns when HandleTimeout should next be called; ok is false
// when no timer is armed (the handshake is over or failed).
func (hs *ServerHandshake) NextTimeout() (deadline time.Time, ok bool) {
	return hs.timer.next()
}

// HandleTimeout resends the last flight when its timer has expired at now,
// doubling the timeout up to the cap (RFC 6347 §4.2.4). After MaxRetransmits
// resends it fails with ErrHandshakeTimeout.
func (hs *ServerHandshake) HandleTimeout(now time.Time) ([][]byte, error) {
	return hs.handleTimeout(now, hs.session, hs.state == stateDone, hs.fail)
}

// fail records err as final and disarms the timer.
func (hs *ServerHandshake) fail(err error) error {
	hs.state = stateFailed
	hs.stop(err)
	hs.early = nil
	hs.dropReassembler()
	return err
}

// dropReassembler lets the reassembler's held fragments go.
func (hs *ServerHandshake) dropReassembler() {
	hs.reasm, hs.reasmBuf = nil, Reassembler{}
}

// Session returns the established session once the handshake is done.
func (hs *ServerHandshake) Session() *Session { return hs.session }

// HandleDatagram feeds one datagram from the device. It returns datagrams to
// send (a retransmitted or the final flight), done once the device's
// Finished has been checked (Session then returns the result), and an error
// that ends the handshake. Records that do not parse, come from another
// address or fail authentication are dropped without an error, as DTLS
// does for noise. A repeat of the device's previous flight makes the server
// resend its last flight, also after done.
func (hs *ServerHandshake) HandleDatagram(now time.Time, addr netip.AddrPort, datagram []byte) (out [][]byte, done bool, err error) {
	if hs.err != nil {
		return nil, false, hs.err
	}
	if addr != hs.addr {
		return nil, hs.state == stateDone, nil
	}
	resend := false
	for rest := datagram; len(rest) > 0; {
		rec, after, perr := ParseRecord(rest)
		if perr != nil {
			break
		}
		rest = after
		r, err := hs.handleRecord(rec)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		resend = resend || r
	}
	if err := hs.advance(); err != nil {
		return nil, false, hs.fail(err)
	}
	if hs.state == stateDone && hs.session == nil {
		hs.session = hs.newSession()
		out, err := hs.sendFlight(now)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		return out, true, nil
	}
	if resend {
		out, err := hs.sendFlight(now)
		if err != nil {
			return nil, false, hs.fail(err)
		}
		return out, hs.state == stateDone, nil
	}
	return nil, hs.state == stateDone, nil
}

// handleRecord feeds one record; resend reports a repeat of the device's
// previous flight.
func (hs *ServerHandshake) handleRecord(rec Record) (resend bool, err error) {
	switch rec.Header.Epoch {
	case 0:
		if rec.Header.Type == TypeChangeCipherSpec {
			return false, nil // the switch is implied by epoch-1 records
		}
		if rec.Header.Type != TypeHandshake {
			return false, nil
		}
		return hs.addFragments(rec.Body, false)
	case 1:
		if hs.read == nil {
			if len(hs.early) < serverMaxEarly && len(rec.Raw) <= serverMaxEarlyLen {
				hs.early = append(hs.early, slices.Clone(rec.Raw))
			}
			return false, nil
		}
		if hs.serverCID != nil && (!rec.Header.Type.HasCID() || !hmac.Equal(rec.Header.CID, hs.serverCID)) {
			return false, nil
		}
		if !hs.replay.Check(rec.Header.Seq) {
			return false, nil
		}
		content, typ, oerr := hs.read.Open(nil, &rec)
		if oerr != nil {
			return false, nil // forged or corrupted: drop
		}
		hs.replay.Mark(rec.Header.Seq)
		if typ != TypeHandshake {
			return false, nil
		}
		if hs.state == stateDone {
			return true, nil // the device repeats its Finished: resend ours
		}
		return hs.addFragments(content, true)
	}
	return false, nil
}

// addFragments feeds the handshake fragments of one record body. Fragments
// that do not parse or that the reassembler refuses are dropped; a Finished
// outside epoch 1, or another message inside it, is an error.
func (hs *ServerHandshake) addFragments(body []byte, encrypted bool) (resend bool, err error) {
	for len(body) > 0 {
		h, frag, more, err := ParseHandshakeFragment(body)
		if err != nil {
			return resend, nil // noise: plaintext records are unauthenticated, so drop, don't fail
		}
		body = more
		if h.Type == HandshakeClientHello && h.MessageSeq == hs.clientHello {
			resend = resend || hs.state == stateCertificate
			continue
		}
		if hs.state == stateDone {
			continue
		}
		if (h.Type == HandshakeFinished) != encrypted {
			return resend, fmt.Errorf("%w: type %d protected=%v", ErrUnexpectedMessage, h.Type, encrypted)
		}
		if h.FragmentOffset == 0 && h.FragmentLength == h.Length && h.Length <= serverMaxMessageLen &&
			h.MessageSeq == hs.reasm.next && !hs.reasm.holds(h.MessageSeq) {
			// The whole message that is due next, the usual case: handle it
			// at once instead of copying it through the reassembler. Its
			// body aliases the datagram, which handleMessage does not keep.
			hs.reasm.next++
			if err := hs.handleMessage(HandshakeMessage{Type: h.Type, Seq: h.MessageSeq, Body: frag}); err != nil {
				return resend, err
			}
			continue
		}
		if err := hs.reasm.Add(h, frag); err != nil {
			continue // contradicts what is held, or over a limit: drop the fragment
		}
	}
	return resend, nil
}

// advance processes every complete message in order, and the epoch-1
// records held back once the keys to open them are known.
func (hs *ServerHandshake) advance() error {
	for hs.state < stateDone {
		if hs.read != nil && hs.early != nil {
			early := hs.early
			hs.early = nil
			for _, raw := range early {
				rec, _, err := ParseRecord(raw)
				if err != nil {
					continue
				}
				if _, err := hs.handleRecord(rec); err != nil {
					return err
				}
			}
			continue
		}
		m, ok := hs.reasm.Next()
		if !ok {
			return nil
		}
		if err := hs.handleMessage(m); err != nil {
			return err
		}
	}
	return nil
}

// handleMessage processes one client handshake message.
func (hs *ServerHandshake) handleMessage(m HandshakeMessage) error {
	if want := hs.state.wants(); m.Type != want {
		return fmt.Errorf("%w: type %d, want %d", ErrUnexpectedMessage, m.Type, want)
	}
	switch hs.state {
	case stateCertificate:
		pub, spki, err := hs.parseCertificate(m.Body)
		if err != nil {
			return err
		}
		if hs.cfg.DeviceKey == nil || !hs.cfg.DeviceKey(pub) {
			return ErrUnknownDeviceKey
		}
		// The body may alias the caller's datagram: keep a copy.
		hs.devKey, hs.devSPKI = pub, append(hs.spki[:0], spki...)
	case stateClientKeyExchange:
		var cke ClientKeyExchange
		if err := cke.Unmarshal(m.Body); err != nil {
			return err
		}
		if _, ok := hs.cfg.crypto().(VerifyingECDH); ok {
			// Derived with the CertificateVerify's check; the body may
			// alias the caller's datagram, so the point is copied.
			hs.peer = append(hs.peerBuf[:0], cke.PublicKey...)
			break
		}
		pre, err := hs.eph.SharedSecret(cke.PublicKey)
		if err != nil {
			return err
		}
		if err := hs.deriveKeys(pre); err != nil {
			return err
		}
	case stateCertificateVerify:
		var cv CertificateVerify
		if err := cv.Unmarshal(m.Body); err != nil {
			return err
		}
		digest := hs.transcript.Sum(hs.sum[:0])
		if v, ok := hs.cfg.crypto().(VerifyingECDH); ok && hs.read == nil {
			if cv.SignatureAlgorithm != SigECDSASecp256r1SHA256 {
				return fmt.Errorf("%w: dtls: certificate verify: signature algorithm %#04x not supported", ErrBadCertificateVerify, cv.SignatureAlgorithm)
			}
			verified, pre, err := v.VerifyECDH(hs.devSPKI, hs.devKey, digest, cv.Signature, hs.eph, hs.peer)
			if !verified {
				return fmt.Errorf("%w: %w", ErrBadCertificateVerify, ErrBadSignature)
			}
			if err != nil {
				return err
			}
			if err := hs.deriveKeys(pre); err != nil {
				return err
			}
			break
		}
		if err := hs.cfg.verifyCertificateVerify(hs.devSPKI, hs.devKey, digest, &cv); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCertificateVerify, err)
		}
	case stateFinished:
		var fin Finished
		if err := fin.Unmarshal(m.Body); err != nil {
			return fmt.Errorf("%w: %w", ErrBadFinished, err)
		}
		want := VerifyData(hs.master, ClientFinished, hs.transcript.Sum(hs.sum[:0]))
		if !hmac.Equal(want[:], fin.VerifyData[:]) {
			return ErrBadFinished
		}
		hs.writeTranscript(m)
		mine := VerifyData(hs.master, ServerFinished, hs.transcript.Sum(hs.sum[:0]))
		hs.flightBuf = [2]flightMessage{
			{typ: TypeChangeCipherSpec, payload: changeCipherSpec[:]},
			{typ: TypeHandshake, epoch: 1, payload: AppendHandshake(hs.finished[:0], HandshakeFinished, hs.msgSeq, mine[:])},
		}
		hs.flight = hs.flightBuf[:]
		hs.state, hs.early = stateDone, nil
		hs.dropReassembler()
		return nil
	}
	hs.writeTranscript(m)
	hs.state++
	return nil
}

// deriveKeys makes the master secret, the key block and both Ciphers from
// the ECDH pre-master secret, and drops the ephemeral key.
func (hs *ServerHandshake) deriveKeys(pre []byte) (err error) {
	hs.eph = nil
	// The master secret goes straight into the session's memory.
	hs.mem = new(sessionMem)
	hs.master = hs.mem.master[:]
	masterSecret(hs.master, pre, &hs.clientRandom, &hs.serverRandom)
	if hs.keys, err = KeyBlock(hs.master, hs.clientRandom[:], hs.serverRandom[:]); err != nil {
		return err
	}
	if hs.read, err = NewCipher(hs.keys.ClientKey[:], hs.keys.ClientIV[:]); err != nil {
		return err
	}
	hs.write, err = NewCipher(hs.keys.ServerKey[:], hs.keys.ServerIV[:])
	return err
}

// parseCertificate reads the device's public key and its
// SubjectPublicKeyInfo from its Certificate.
func (hs *ServerHandshake) parseCertificate(body []byte) (*ecdsa.PublicKey, []byte, error) {
	var rpk RawPublicKeyCertificate
	rpkErr := rpk.Unmarshal(body)
	if rpkErr == nil {
		pub, err := hs.cfg.Keys.Parse(rpk.SPKI)
		if err == nil {
			return pub, rpk.SPKI, nil
		}
		if !hs.x509 {
			return nil, nil, fmt.Errorf("%w: %w", errBadDeviceCertificate, err)
		}
	}
	if !hs.x509 {
		return nil, nil, fmt.Errorf("%w: %w", errBadDeviceCertificate, rpkErr)
	}
	var chain CertificateChain
	if err := chain.Unmarshal(body); err != nil || len(chain.Certificates) == 0 {
		return nil, nil, fmt.Errorf("dtls: client certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(chain.Certificates[0])
	if err != nil {
		return nil, nil, fmt.Errorf("dtls: client certificate: %w", err)
	}
	pub, err := ParseDevicePublicKey(leaf.RawSubjectPublicKeyInfo)
	return pub, leaf.RawSubjectPublicKeyInfo, err
}

// writeTranscript adds m to the transcript in unfragmented form
// (HandshakeMessage.Raw) without copying its body. The header is written
// from a buffer of the handshake's: one on the stack would escape into
// the hash.Hash call and be allocated each time.
func (hs *ServerHandshake) writeTranscript(m HandshakeMessage) {
	n := uint32(len(m.Body))
	hs.transcript.Write(AppendHandshakeHeader(hs.hdr[:0], HandshakeHeader{Type: m.Type, Length: n, MessageSeq: m.Seq, FragmentLength: n}))
	hs.transcript.Write(m.Body)
}

// errBadDeviceCertificate marks a Certificate that holds no usable raw public key.
var errBadDeviceCertificate = errors.New("dtls: bad device Certificate")
