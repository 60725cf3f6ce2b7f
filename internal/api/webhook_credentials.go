package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// sealHookCredentials seals a hook's basic-auth credentials and headers
// before it is stored (docs/webhooks.md, Secrets at rest): the database
// alone never yields a receiver's password or API key.
func (s *server) sealHookCredentials(h *store.Webhook) error {
	err := h.Settings.SealCredentials(func(plain []byte) ([]byte, error) {
		return s.auth.SealSecret(plain, auth.PurposeWebhookCredentials+h.ID)
	})
	if err != nil {
		return fmt.Errorf("api: seal webhook credentials: %w", err)
	}
	return nil
}

// hookView renders a stored hook as the list and get routes show it
// (hookJSON), with its sealed credentials opened: Particle's API and its
// clients show a hook's auth and headers, and editing a hook sends them
// back. Answers that carry them are marked Cache-Control: no-store.
func (s *server) hookView(h *store.Webhook) (map[string]any, error) {
	c := *h
	err := c.Settings.OpenCredentials(func(sealed []byte) ([]byte, error) {
		return s.auth.OpenSecret(sealed, auth.PurposeWebhookCredentials+h.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("api: open webhook credentials of %s: %w", h.ID, err)
	}
	return hookJSON(&c), nil
}

// noStore marks an answer that may carry a hook's credentials as not to
// be kept by browsers or proxies.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// SealWebhookCredentials seals the auth and headers of every hook that an
// earlier version stored in plaintext (docs/webhooks.md, Secrets at rest)
// and returns how many hooks it rewrote. The server runs it at start; it
// is idempotent, and hooks it cannot rewrite stay readable in plaintext.
func SealWebhookCredentials(ctx context.Context, st store.Webhooks, au *auth.Service) (int, error) {
	all, err := st.AllWebhooks(ctx)
	if err != nil {
		return 0, fmt.Errorf("api: seal webhook credentials: %w", err)
	}
	n := 0
	for i := range all {
		h := &all[i]
		s := &h.Settings
		if len(s.SealedCredentials) > 0 || s.Auth == nil && len(s.Headers) == 0 {
			continue
		}
		err := s.SealCredentials(func(plain []byte) ([]byte, error) {
			return au.SealSecret(plain, auth.PurposeWebhookCredentials+h.ID)
		})
		if err == nil {
			err = st.UpdateWebhook(ctx, h)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrStale) {
			continue // deleted or rewritten meanwhile (another server sealing it)
		}
		if err != nil {
			return n, fmt.Errorf("api: seal webhook credentials of %s: %w", h.ID, err)
		}
		n++
	}
	return n, nil
}
