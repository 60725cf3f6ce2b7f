package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// TestWebhookCredentialsAtRest: a hook's auth password and header values
// never reach the store in plaintext; the API still shows them to the
// hook's owner (as Particle and its clients expect) in answers marked
// Cache-Control: no-store. Hooks stored in plaintext by an earlier version
// are still shown.
func TestWebhookCredentialsAtRest(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{})
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/webhooks", Token: w.ownerToken, JSON: map[string]any{
		"event": "s", "url": "https://example.com/s",
		"auth":    map[string]any{"username": "me", "password": "pw-s3cret"},
		"headers": map[string]any{"X-Api-Key": "hdr-s3cret"},
	}})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.String(t, "id")
	raw, err := json.Marshal(storedHook(t, w, id))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pw-s3cret", "hdr-s3cret", "X-Api-Key"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the store holds %q in plaintext: %s", secret, raw)
		}
	}

	legacy := &store.Webhook{ID: "0b00000000000000000000ff", UserID: w.owner.ID, IntegrationType: store.IntegrationWebhook,
		Event: "old", Settings: store.WebhookSettings{URL: "https://example.com/old", RequestType: "POST",
			Auth: &store.BasicAuth{Username: "old", Password: "old-pw"}, Headers: map[string]string{"X-Old": "1"}}}
	if err := w.Store.CreateWebhook(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}

	wantCreds := map[string]string{
		id:        `{"auth":{"password":"pw-s3cret","username":"me"},"headers":{"X-Api-Key":"hdr-s3cret"}}`,
		legacy.ID: `{"auth":{"password":"old-pw","username":"old"},"headers":{"X-Old":"1"}}`,
	}
	check := func(t *testing.T, hook map[string]any) {
		t.Helper()
		want, ok := wantCreds[hook["id"].(string)]
		if !ok {
			return
		}
		got, _ := json.Marshal(map[string]any{"auth": hook["auth"], "headers": hook["headers"]})
		if string(got) != want {
			t.Errorf("hook %s shows %s; want %s", hook["id"], got, want)
		}
	}
	for _, tc := range []struct {
		path string
		list func(t *testing.T, body []byte) []map[string]any
	}{
		{"/v1/webhooks", listOf},
		{"/v1/integrations", listOf},
		{"/v1/webhooks/" + id, oneOf("")},
		{"/v1/integrations/" + id, oneOf("integration")},
		{"/v1/webhooks/" + legacy.ID, oneOf("")},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := w.Do(get(tc.path, w.ownerToken))
			if r.Status != 200 {
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", cc)
			}
			hooks := tc.list(t, r.Body)
			if len(hooks) == 0 {
				t.Fatal("no hooks")
			}
			for _, h := range hooks {
				check(t, h)
			}
		})
	}
}

func listOf(t *testing.T, body []byte) []map[string]any {
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func oneOf(key string) func(t *testing.T, body []byte) []map[string]any {
	return func(t *testing.T, body []byte) []map[string]any {
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		if key != "" {
			out, _ = out[key].(map[string]any)
		}
		return []map[string]any{out}
	}
}

// TestProductLimit: a user owns at most MaxProductsPerUser products; the
// next create answers 400 with a clear message, and team membership of
// other users' products does not count.
func TestProductLimit(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{MaxProductsPerUser: 2})
	create := func(token, name string) *apitest.Resp {
		return w.Do(apitest.Req{Method: "POST", Path: "/v1/user/products", Token: token,
			JSON: map[string]any{"product": map[string]any{"name": name, "platform_id": 6}}})
	}
	// owner already owns "widget".
	if r := create(w.ownerToken, "second"); r.Status != 200 {
		t.Fatalf("second product: %d %s", r.Status, r.Body)
	}
	r := create(w.ownerToken, "third")
	if r.Status != 400 {
		t.Fatalf("third product: %d %s", r.Status, r.Body)
	}
	apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"Too many products: the limit is 2 per user"}`)
	// other owns "gadget" only.
	if r := create(w.otherToken, "mine"); r.Status != 200 {
		t.Errorf("other's second product: %d %s", r.Status, r.Body)
	}
}

// TestSealWebhookCredentials: the start-up pass seals the plaintext auth
// and headers of hooks saved by an earlier version, once; the API shows
// them as before.
func TestSealWebhookCredentials(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{})
	ctx := context.Background()
	legacy := &store.Webhook{ID: "0b00000000000000000000fe", UserID: w.owner.ID, IntegrationType: store.IntegrationWebhook,
		Event: "old", Settings: store.WebhookSettings{URL: "https://example.com/old", RequestType: "POST",
			Auth: &store.BasicAuth{Username: "old", Password: "old-pw"}, Headers: map[string]string{"X-Old": "1"}}}
	plain := &store.Webhook{ID: "0b00000000000000000000fd", UserID: w.owner.ID, IntegrationType: store.IntegrationWebhook,
		Event: "none", Settings: store.WebhookSettings{URL: "https://example.com/none", RequestType: "POST"}}
	for _, h := range []*store.Webhook{legacy, plain} {
		if err := w.Store.CreateWebhook(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []int{1, 0} {
		n, err := api.SealWebhookCredentials(ctx, w.Store, w.Auth)
		if err != nil || n != want {
			t.Fatalf("run %d: sealed %d, %v; want %d", i+1, n, err, want)
		}
	}
	got := openedHook(t, w, legacy.ID)
	if got.Settings.Auth == nil || got.Settings.Auth.Password != "old-pw" || got.Settings.Headers["X-Old"] != "1" {
		t.Errorf("after sealing: %+v %v", got.Settings.Auth, got.Settings.Headers)
	}
	if h := storedHook(t, w, plain.ID); len(h.Settings.SealedCredentials) != 0 {
		t.Error("a hook without credentials got sealed ones")
	}
	r := w.Do(get("/v1/webhooks/"+legacy.ID, w.ownerToken))
	if r.Status != 200 || !strings.Contains(string(r.Body), `"password":"old-pw"`) {
		t.Errorf("GET: %d %s", r.Status, r.Body)
	}
}
