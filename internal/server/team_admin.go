package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store"
)

// Administration of team invitations and passwords for operators without
// e-mail delivery (docs/operations.md, Without e-mail). These commands
// work on the store directly, while a server runs on the same data.

// ErrNoInvite reports that `wick team accept` named no pending invitation.
var ErrNoInvite = errors.New("server: no pending invitation of that address to that product")

// ErrNoUser reports that `wick user password` named no account.
var ErrNoUser = errors.New("server: no user with that e-mail")

// Invites lists pending (unexpired) team invitations: of one product
// (by ID or slug) when product is set, else those addressed to username.
func Invites(ctx context.Context, cfg config.Serve, log *slog.Logger, product, username string) ([]store.Invite, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	st, _, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var list []store.Invite
	if product != "" {
		p, err := findProduct(ctx, st, product)
		if err != nil {
			return nil, err
		}
		list, err = st.InvitesByProduct(ctx, p.ID)
		if err != nil {
			return nil, err
		}
	} else {
		list, err = st.InvitesByUsername(ctx, strings.ToLower(strings.TrimSpace(username)))
		if err != nil {
			return nil, err
		}
	}
	now := time.Now()
	out := list[:0]
	for _, inv := range list {
		if now.Before(inv.ExpiresAt) {
			out = append(out, inv)
		}
	}
	return out, nil
}

// AcceptInvite makes username a member of product (ID or slug) with the
// role of its pending invitation, on the operator's word that the
// address belongs to the person who asked: the operator has checked it
// outside Wick.
func AcceptInvite(ctx context.Context, cfg config.Serve, log *slog.Logger, product, username string) (*store.TeamMember, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	st, _, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	p, err := findProduct(ctx, st, product)
	if err != nil {
		return nil, err
	}
	username = strings.ToLower(strings.TrimSpace(username))
	m, err := st.AcceptInvite(ctx, p.ID, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNoInvite
	case errors.Is(err, store.ErrConflict):
		return nil, fmt.Errorf("server: %s is already on the team of %s", username, p.Slug)
	case err != nil:
		return nil, fmt.Errorf("server: accept invitation: %w", err)
	}
	return m, nil
}

// SetPassword replaces a user's password and revokes every token of the
// account, for an operator who resets passwords without e-mail.
func SetPassword(ctx context.Context, cfg config.Serve, log *slog.Logger, email, password string) error {
	if err := cfg.Resolve(); err != nil {
		return err
	}
	if len(password) < MinPasswordLength {
		return fmt.Errorf("server: the password must have at least %d characters", MinPasswordLength)
	}
	st, au, err := openCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByUsername(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoUser
	}
	if err != nil {
		return fmt.Errorf("server: set password: %w", err)
	}
	if u.PasswordHash, err = au.HashPassword(password); err != nil {
		return err
	}
	u.UpdatedAt = time.Now()
	if err := st.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("server: set password: %w", err)
	}
	// Open event streams of the account end at their next store check.
	return au.RevokeUser(ctx, u.ID)
}

// findProduct resolves a product ID or slug.
func findProduct(ctx context.Context, st store.Store, idOrSlug string) (*store.Product, error) {
	var (
		p   *store.Product
		err error
	)
	if id, perr := strconv.ParseInt(idOrSlug, 10, 64); perr == nil {
		p, err = st.ProductByID(ctx, id)
	} else {
		p, err = st.ProductBySlug(ctx, idOrSlug)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("server: no product %q", idOrSlug)
	}
	if err != nil {
		return nil, fmt.Errorf("server: product %q: %w", idOrSlug, err)
	}
	return p, nil
}
