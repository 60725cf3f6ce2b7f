package server

import (
	"fmt"
	"os"
	"strings"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/mail"
)

// newMailer builds the API's e-mail sender from the --smtp-* flags, or
// returns nil when --smtp-addr is empty (docs/operations.md, E-mail).
func newMailer(cfg config.Serve) (api.Mailer, error) {
	if cfg.SMTPAddr == "" {
		return nil, nil
	}
	password := cfg.SMTPPassword
	if cfg.SMTPPasswordFile != "" {
		b, err := os.ReadFile(cfg.SMTPPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("server: --smtp-password-file: %w", err)
		}
		password, _, _ = strings.Cut(string(b), "\n")
		password = strings.TrimRight(password, "\r")
	}
	s, err := mail.New(mail.Config{
		Addr:     cfg.SMTPAddr,
		From:     cfg.SMTPFrom,
		Username: cfg.SMTPUsername,
		Password: password,
		TLS:      cfg.SMTPTLS,
	})
	if err != nil {
		return nil, fmt.Errorf("server: e-mail: %w", err)
	}
	return s, nil
}
