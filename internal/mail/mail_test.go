package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/mail"
	"github.com/wick-cloud/wick/internal/mail/mailtest"
)

// TestSend delivers messages to the in-test SMTP server in each TLS mode
// that it speaks, with and without AUTH PLAIN.
func TestSend(t *testing.T) {
	cases := []struct {
		name     string
		startTLS bool
		cfg      mail.Config
		wantTLS  bool
		wantAuth string
	}{
		{name: "clear", cfg: mail.Config{TLS: mail.TLSNone}},
		{name: "clear with auth to loopback", cfg: mail.Config{TLS: mail.TLSNone, Username: "wick", Password: "pw"}, wantAuth: "wick:pw"},
		{name: "starttls", startTLS: true, cfg: mail.Config{TLS: mail.TLSStartTLS, Username: "wick", Password: "pw"},
			wantTLS: true, wantAuth: "wick:pw"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := mailtest.New(t, mailtest.Options{StartTLS: c.startTLS})
			cfg := c.cfg
			cfg.Addr, cfg.From = srv.Addr(), "wick@example.com"
			if c.startTLS {
				cfg.TLSConfig = srv.ClientTLS()
			}
			s, err := mail.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			body := "Hello Zoë,\nline two is long " + strings.Repeat("x", 100) + "\n.\nend"
			if err := s.Send(context.Background(), mail.Message{To: "zoe@example.org", Subject: "Héllo", Body: body}); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, 1, 5*time.Second)[0]
			if got.From != "wick@example.com" || got.To != "zoe@example.org" {
				t.Errorf("envelope %q → %q", got.From, got.To)
			}
			if got.TLS != c.wantTLS || got.Auth != c.wantAuth {
				t.Errorf("TLS %v auth %q, want %v %q", got.TLS, got.Auth, c.wantTLS, c.wantAuth)
			}
			// The server's dot reader turns CRLF back into LF and ends the
			// text with a line break.
			if want := body + "\n"; got.Body != want {
				t.Errorf("body %q, want %q", got.Body, want)
			}
			if got.Header.Get("Subject") != "=?utf-8?q?H=C3=A9llo?=" || got.Header.Get("To") != "zoe@example.org" {
				t.Errorf("headers %v", got.Header)
			}
		})
	}
}

// TestSendRefusals covers what Send and New refuse: header injection,
// STARTTLS required but not offered, a relay that is not there, bad
// configuration.
func TestSendRefusals(t *testing.T) {
	srv := mailtest.New(t, mailtest.Options{})
	s, err := mail.New(mail.Config{Addr: srv.Addr(), From: "wick@example.com", TLS: mail.TLSStartTLS})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, m := range map[string]mail.Message{
		"recipient injection": {To: "a@example.com\r\nBcc: b@example.com", Subject: "x"},
		"subject injection":   {To: "a@example.com", Subject: "x\r\nBcc: b@example.com"},
		"display name":        {To: "A <a@example.com>", Subject: "x"},
	} {
		if err := s.Send(ctx, m); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	err = s.Send(ctx, mail.Message{To: "a@example.com", Subject: "x", Body: "y"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("STARTTLS not offered: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages delivered in clear", n)
	}

	dead, err := mail.New(mail.Config{Addr: "127.0.0.1:1", From: "wick@example.com", TLS: mail.TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Send(ctx, mail.Message{To: "a@example.com", Subject: "x"}); err == nil {
		t.Error("sent to a closed port")
	}

	for name, cfg := range map[string]mail.Config{
		"no port":   {Addr: "localhost", From: "wick@example.com"},
		"bad from":  {Addr: "localhost:25", From: "wick"},
		"bad mode":  {Addr: "localhost:25", From: "wick@example.com", TLS: "ssl"},
		"from name": {Addr: "localhost:25", From: "Wick <wick@example.com>"},
	} {
		if _, err := mail.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
