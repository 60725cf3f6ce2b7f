package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/mail"
	"github.com/wick-cloud/wick/internal/mail/mailtest"
)

// TestNewMailer checks the --smtp-* wiring: no relay, no mailer; the
// password comes from --smtp-password-file when given; messages reach
// the relay authenticated.
func TestNewMailer(t *testing.T) {
	cfg := config.Default()
	if m, err := newMailer(cfg); m != nil || err != nil {
		t.Fatalf("without --smtp-addr: %v, %v", m, err)
	}
	relay := mailtest.New(t, mailtest.Options{})
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.SMTPAddr, cfg.SMTPFrom, cfg.SMTPTLS = relay.Addr(), "wick@example.com", "none"
	cfg.SMTPUsername, cfg.SMTPPassword, cfg.SMTPPasswordFile = "wick", "from-the-flag", pwFile
	m, err := newMailer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := relay.Wait(t, 1, 5*time.Second)[0]; got.Auth != "wick:s3cret" || got.To != "a@example.com" {
		t.Errorf("received %+v", got)
	}
	cfg.SMTPPasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := newMailer(cfg); err == nil {
		t.Error("missing password file accepted")
	}
}
