package config

import (
	"flag"
	"io"
	"testing"
)

// TestSMTPFlags checks that the e-mail flags parse and that Resolve
// refuses a relay without a sender and an unknown TLS mode.
func TestSMTPFlags(t *testing.T) {
	parse := func(args ...string) (Serve, error) {
		c := Default()
		c.Data = t.TempDir()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.Register(fs)
		if _, err := Parse(fs, args, func(string) string { return "" }); err != nil {
			return c, err
		}
		return c, c.Resolve()
	}
	c, err := parse("--smtp-addr", "mail.example.com:587", "--smtp-from", "wick@example.com", "--smtp-tls", "tls",
		"--invite-lifetime", "48h", "--stream-auth-check", "1s", "--stream-auth-recheck", "10s")
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPAddr != "mail.example.com:587" || c.SMTPTLS != "tls" || c.InviteLifetime.Hours() != 48 ||
		c.StreamAuthCheck.Seconds() != 1 || c.StreamAuthRecheck.Seconds() != 10 {
		t.Errorf("parsed %+v", c)
	}
	if _, err := parse("--smtp-addr", "mail.example.com:587"); err == nil {
		t.Error("--smtp-addr without --smtp-from accepted")
	}
	if _, err := parse("--smtp-tls", "ssl"); err == nil {
		t.Error("--smtp-tls ssl accepted")
	}
}
