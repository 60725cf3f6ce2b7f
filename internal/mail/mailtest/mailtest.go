// Package mailtest is a tiny SMTP server on 127.0.0.1 for tests: it
// accepts every message (optionally after STARTTLS and AUTH PLAIN) and
// keeps what it received.
package mailtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Received is one message as the server got it.
type Received struct {
	From, To string
	// Auth is the AUTH PLAIN identity "user:password", if any.
	Auth string
	// TLS reports that the session had switched to TLS.
	TLS bool
	// Header holds the message's headers; Body its decoded text.
	Header textproto.MIMEHeader
	Body   string
}

// Options tune New.
type Options struct {
	// StartTLS advertises STARTTLS with a self-signed certificate for
	// 127.0.0.1 (see Server.ClientTLS).
	StartTLS bool
}

// Server is a running test SMTP server.
type Server struct {
	ln   net.Listener
	cert tls.Certificate
	pool *x509.CertPool
	opts Options

	mu   sync.Mutex
	msgs []Received
	wake chan struct{}
}

// New starts a server; it stops when the test ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{ln: ln, opts: opts, wake: make(chan struct{}, 1)}
	if opts.StartTLS {
		s.cert, s.pool = selfSigned(tb)
	}
	tb.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ClientTLS returns a TLS configuration that trusts the server.
func (s *Server) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
}

// Messages returns the messages received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Wait returns once n messages have arrived, failing the test after
// timeout.
func (s *Server) Wait(tb testing.TB, n int, timeout time.Duration) []Received {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.wake:
		case <-deadline:
			tb.Fatalf("mailtest: %d messages after %v, want %d", len(s.Messages()), timeout, n)
		}
	}
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

// session speaks just enough SMTP for net/smtp.
func (s *Server) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	var (
		msg   Received
		inTLS bool
	)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			if err := tp.PrintfLine("%s", l); err != nil {
				return false
			}
		}
		return true
	}
	if !reply("220 127.0.0.1 mailtest ESMTP") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250-127.0.0.1", "250-8BITMIME", "250 AUTH PLAIN"}
			if s.opts.StartTLS && !inTLS {
				ext = []string{"250-127.0.0.1", "250-8BITMIME", "250-STARTTLS", "250 AUTH PLAIN"}
			}
			reply(ext...)
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			c, inTLS = tc, true
			tp = textproto.NewConn(c)
		case "AUTH":
			mech, b64, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(b64)
			parts := strings.Split(string(raw), "\x00")
			if !strings.EqualFold(mech, "PLAIN") || err != nil || len(parts) != 3 {
				reply("535 bad credentials")
				continue
			}
			msg.Auth = parts[1] + ":" + parts[2]
			reply("235 accepted")
		case "MAIL":
			msg.From = addrArg(arg)
			reply("250 ok")
		case "RCPT":
			msg.To = addrArg(arg)
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
			r := bufio.NewReader(tp.DotReader())
			h, err := textproto.NewReader(r).ReadMIMEHeader()
			if err != nil {
				return
			}
			var body io.Reader = r
			if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
				body = quotedprintable.NewReader(r)
			}
			b, err := io.ReadAll(body)
			if err != nil {
				return
			}
			msg.Header, msg.Body, msg.TLS = h, string(b), inTLS
			s.mu.Lock()
			s.msgs = append(s.msgs, msg)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
			msg = Received{Auth: msg.Auth}
			reply("250 queued")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// addrArg extracts the address of "FROM:<a@b>" or "TO:<a@b>".
func addrArg(arg string) string {
	_, v, _ := strings.Cut(arg, ":")
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	return strings.Trim(v, "<>")
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
