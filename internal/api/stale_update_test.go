package api_test

import (
	"context"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// racingStore plays another server of a cluster: when armed, right after
// the API reads the client or hook named by race, it changes that row's
// name (an unchecked update, as the other server's own write).
type racingStore struct {
	store.Store
	mu   sync.Mutex
	race string // guarded by mu; the ID whose next read races, "" for none
}

// take reports whether id's read races now, disarming it.
func (s *racingStore) take(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.race == "" || s.race != id {
		return false
	}
	s.race = ""
	return true
}

// other is the name the other server writes.
const other = "Changed on another node"

func (s *racingStore) ClientByID(ctx context.Context, id string) (*store.Client, error) {
	c, err := s.Store.ClientByID(ctx, id)
	if err == nil && s.take(id) {
		cp := *c
		cp.Name, cp.Version = other, 0
		if err := s.Store.UpdateClient(ctx, &cp); err != nil {
			return nil, err
		}
	}
	return c, err
}

func (s *racingStore) WebhookByID(ctx context.Context, id string) (*store.Webhook, error) {
	h, err := s.Store.WebhookByID(ctx, id)
	if err == nil && s.take(id) {
		cp := *h
		cp.Name, cp.Version = other, 0
		if err := s.Store.UpdateWebhook(ctx, &cp); err != nil {
			return nil, err
		}
	}
	return h, err
}

// arm makes the next read of id race with another server's write.
func (s *racingStore) arm(id string) {
	s.mu.Lock()
	s.race = id
	s.mu.Unlock()
}

// TestStaleUpdates: an OAuth client or integration update made from a read
// that another server's write overtook is refused with 409 and does not
// undo that write; done again on a fresh read, it succeeds.
func TestStaleUpdates(t *testing.T) {
	var rs *racingStore
	w := newWorldOpts(t, apitest.Options{InMemory: true, Config: api.Config{}, WrapStore: func(s store.Store) store.Store {
		rs = &racingStore{Store: s}
		return rs
	}})
	hook := &store.Webhook{UserID: w.owner.ID, IntegrationType: store.IntegrationWebhook, Event: "temp",
		Settings: store.WebhookSettings{URL: "https://example.com/in", RequestType: "POST"}}
	if err := w.Store.CreateWebhook(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id string
		req      apitest.Req
		stored   func() string
	}{
		{"client", w.userClient, apitest.Req{Method: "PUT", Path: "/v1/clients/" + w.userClient, Token: w.ownerToken,
			JSON: map[string]any{"name": "Mine"}}, func() string {
			c, err := w.Store.ClientByID(context.Background(), w.userClient)
			if err != nil {
				t.Fatal(err)
			}
			return c.Name
		}},
		{"integration", hook.ID, apitest.Req{Method: "PUT", Path: "/v1/integrations/" + hook.ID, Token: w.ownerToken,
			JSON: map[string]any{"name": "Mine", "url": "https://example.com/in", "requestType": "POST"}}, func() string {
			h, err := w.Store.WebhookByID(context.Background(), hook.ID)
			if err != nil {
				t.Fatal(err)
			}
			return h.Name
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs.arm(tc.id)
			if r := w.Do(tc.req); r.Status != 409 {
				t.Fatalf("update overtaken by another server: %d %s; want 409", r.Status, r.Body)
			}
			if got := tc.stored(); got != other {
				t.Errorf("stored name %q; the stale update undid the other server's %q", got, other)
			}
			if r := w.Do(tc.req); r.Status != 200 {
				t.Fatalf("update again: %d %s", r.Status, r.Body)
			}
			if got := tc.stored(); got != "Mine" {
				t.Errorf("stored name %q after the retry; want Mine", got)
			}
		})
	}
}
