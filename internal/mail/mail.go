// Package mail sends Wick's e-mail (team invitations, password resets)
// through an SMTP relay, with the standard library's net/smtp.
//
// A Sender is configured by the --smtp-* flags of `wick serve`
// (docs/operations.md, E-mail). It opens one connection per message:
// Wick sends few messages, and a relay that goes away between them
// costs nothing. Messages are plain text in UTF-8.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// TLS modes of Config.TLS.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses to
	// send when the relay does not offer it (port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "tls"
	// TLSNone sends in clear: only for a relay on the same host or a
	// trusted network.
	TLSNone = "none"
)

// DefaultTimeout bounds one message's whole SMTP conversation.
const DefaultTimeout = 30 * time.Second

// Config configures a Sender.
type Config struct {
	// Addr is the relay's host:port.
	Addr string
	// From is the sender address of every message.
	From string
	// Username and Password authenticate with AUTH PLAIN when Username is
	// set. net/smtp sends them only over TLS or to a loopback relay.
	Username, Password string
	// TLS is TLSStartTLS (default), TLSImplicit or TLSNone.
	TLS string
	// Timeout bounds one message (default DefaultTimeout).
	Timeout time.Duration
	// HelloName is the name given in EHLO (default "localhost").
	HelloName string
	// TLSConfig, when set, replaces the default TLS settings (tests, or a
	// relay with a private certificate authority). Its ServerName
	// defaults to Addr's host.
	TLSConfig *tls.Config
}

// Message is one plain-text e-mail to one recipient.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender sends messages through one SMTP relay. It is safe for
// concurrent use.
type Sender struct {
	cfg  Config
	host string
}

// New checks cfg and returns its Sender.
func New(cfg Config) (*Sender, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mail: relay address %q must be host:port", cfg.Addr)
	}
	if _, err := checkAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: sender: %w", err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("mail: TLS mode %q: want %s, %s or %s", cfg.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	return &Sender{cfg: cfg, host: host}, nil
}

// errHeader reports a header value that would break the message's framing.
var errHeader = errors.New("mail: line break in a header value")

// checkAddress accepts a bare e-mail address and returns it.
func checkAddress(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errHeader
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("mail: %q is not a bare e-mail address", s)
	}
	return a.Address, nil
}

// Send delivers m to the relay. It returns when the relay has accepted
// the message, or with an error (the context's, the relay's, or a
// refusal of a malformed message).
func (s *Sender) Send(ctx context.Context, m Message) error {
	to, err := checkAddress(m.To)
	if err != nil {
		return err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errHeader
	}
	body, err := s.compose(to, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// net/smtp has no context: the deadline bounds every exchange, and a
	// cancellation closes the connection.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := s.converse(conn, to, body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mail: send to %s: %w", to, ctx.Err())
		}
		return fmt.Errorf("mail: send to %s: %w", to, err)
	}
	return nil
}

// dial connects to the relay, in TLS from the start with TLSImplicit.
func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: connect to %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.TLS != TLSImplicit {
		return conn, nil
	}
	tc := tls.Client(conn, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("mail: TLS with %s: %w", s.cfg.Addr, err)
	}
	return tc, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		c = s.cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.host
	}
	return c
}

// converse runs one SMTP session over conn.
func (s *Sender) converse(conn net.Conn, to string, body []byte) error {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return err
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the relay does not offer STARTTLS (set the TLS mode to none to send in clear)")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return err
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.cfg.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose renders the message: headers, then the body in
// quoted-printable UTF-8 with CRLF line ends.
func (s *Sender) compose(to string, m Message) ([]byte, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	domain := s.cfg.From[strings.LastIndexByte(s.cfg.From, '@')+1:]
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", s.cfg.From)
	header("To", to)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
