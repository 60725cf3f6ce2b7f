package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
)

// loadSecretKey reads the 32-byte hex key that seals secrets at rest,
// creating it (mode 0600) on first start.
func loadSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("server: generate secret key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadSecretKey(path) // another process won the race
		}
		if err != nil {
			return nil, fmt.Errorf("server: create secret key: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("server: write secret key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("server: write secret key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server: read secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("server: secret key %s must hold 64 hex characters", path)
	}
	return key, nil
}

// redactDSN hides a password in a database or NATS URL for logging.
func redactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
