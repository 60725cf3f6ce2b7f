package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store"
)

// MinPasswordLength is the shortest password Wick accepts for a user.
const MinPasswordLength = 8

// ErrUserExists reports that `wick user create` named an existing account.
var ErrUserExists = errors.New("server: a user with that e-mail already exists")

// CreateUser creates a developer account directly in the configured store;
// it works while a server runs on the same data.
func CreateUser(ctx context.Context, cfg config.Serve, log *slog.Logger, email, password string) (*store.User, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email, "@") {
		return nil, fmt.Errorf("server: %q is not an e-mail address", email)
	}
	if len(password) < MinPasswordLength {
		return nil, fmt.Errorf("server: the password must have at least %d characters", MinPasswordLength)
	}
	st, au, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	hash, err := au.HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Username: strings.ToLower(email), PasswordHash: hash, Verified: true}
	if err := st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, ErrUserExists
		}
		return nil, fmt.Errorf("server: create user: %w", err)
	}
	return u, nil
}
