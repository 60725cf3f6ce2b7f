package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Webhooks of a world after addWebhooks: one sandbox hook of owner, one
// hook of product "widget".
const (
	ownerHookID   = "0b0000000000000000000001"
	productHookID = "0b0000000000000000000002"
)

// addWebhooks stores ownerHookID and productHookID, each with one
// delivery-log entry.
func (w *world) addWebhooks(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, h := range []*store.Webhook{
		{ID: ownerHookID, UserID: w.owner.ID},
		{ID: productHookID, UserID: w.owner.ID, ProductID: w.product.ID},
	} {
		h.IntegrationType, h.Event = store.IntegrationWebhook, "authz"
		h.Settings = store.WebhookSettings{URL: "https://example.com/in", RequestType: "POST", RejectUnauthorized: true}
		if err := w.Store.CreateWebhook(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := w.Store.AddWebhookDeliveries(ctx, []*store.WebhookDelivery{{WebhookID: h.ID, EventID: 1,
			EventName: "authz", Attempt: 1, At: apitest.Epoch, Method: "POST", URL: "https://example.com/in", Status: 200}}, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeRunner is a WebhookRunner that records what the API tells it.
type fakeRunner struct {
	mu      sync.Mutex
	changed []string // guarded by mu
	tested  []string // guarded by mu
	result  store.WebhookDelivery
	err     error
}

func (f *fakeRunner) TestWebhook(_ context.Context, h *store.Webhook) (store.WebhookDelivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tested = append(f.tested, h.ID)
	d := f.result
	d.WebhookID = h.ID
	return d, f.err
}

func (f *fakeRunner) WebhooksChanged(_ context.Context, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, id)
}

// takeChanged returns and clears the IDs reported changed.
func (f *fakeRunner) takeChanged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.changed
	f.changed = nil
	return out
}

// newHookWorld builds a world with a fakeRunner and cfg.
func newHookWorld(t *testing.T, cfg api.Config) (*world, *fakeRunner) {
	t.Helper()
	r := &fakeRunner{}
	return newWorldOpts(t, apitest.Options{InMemory: true, Config: cfg, Webhooks: r}), r
}

// rawJSON is a request with a raw JSON body, as the clients send it.
func rawJSON(method, path, token, body string) apitest.Req {
	return apitest.Req{Method: method, Path: path, Token: token, Body: body, ContentType: "application/json"}
}

// get is a GET with token.
func get(path, token string) apitest.Req {
	return apitest.Req{Method: "GET", Path: path, Token: token}
}

// storedHook returns the hook the store holds.
func storedHook(tb testing.TB, w *world, id string) *store.Webhook {
	tb.Helper()
	h, err := w.Store.WebhookByID(context.Background(), id)
	if err != nil {
		tb.Fatalf("WebhookByID(%s): %v", id, err)
	}
	return h
}

// openedHook returns the hook the store holds with its sealed
// credentials opened, after checking that the stored settings hold no
// auth or headers in plaintext.
func openedHook(tb testing.TB, w *world, id string) *store.Webhook {
	tb.Helper()
	h := storedHook(tb, w, id)
	if h.Settings.Auth != nil || h.Settings.Headers != nil {
		tb.Errorf("hook %s stored auth %+v and headers %v in plaintext", id, h.Settings.Auth, h.Settings.Headers)
	}
	err := h.Settings.OpenCredentials(func(sealed []byte) ([]byte, error) {
		return w.Auth.OpenSecret(sealed, auth.PurposeWebhookCredentials+id)
	})
	if err != nil {
		tb.Fatalf("open credentials of %s: %v", id, err)
	}
	return h
}

// TestWebhookClientRequests sends each official client's exact request
// shapes and checks the answer and what is stored.
func TestWebhookClientRequests(t *testing.T) {
	w, runner := newHookWorld(t, api.Config{})
	w.addDevices(t)
	if r := w.Do(apitest.Req{Method: "PUT", Path: "/v1/devices/" + ownerDeviceID, Token: w.ownerToken,
		JSON: map[string]any{"name": "lamp"}}); r.Status != 200 {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	runner.takeChanged()
	body := "{{PARTICLE_EVENT_VALUE}}"
	for _, tc := range []struct {
		name string
		req  apitest.Req
		want string // response, exact
		hook store.Webhook
	}{
		{
			// particle-cli createWebhookWithObj (`particle webhook create
			// temp https://... <device>`): requestType undefined, deviceid.
			name: "cli create",
			req:  rawJSON("POST", "/v1/webhooks", w.ownerToken, `{"event":"temp","url":"https://example.com/in","deviceid":"`+ownerDeviceID+`"}`),
			want: `{"ok":true,"id":"<hex24>","url":"https://example.com/in","event":"temp","name":null,"requestType":"POST",
				"deviceID":"` + ownerDeviceID + `","created_at":"<iso>","hookUrl":"<string>"}`,
			hook: store.Webhook{Event: "temp", DeviceID: ownerDeviceID,
				Settings: store.WebhookSettings{URL: "https://example.com/in", RequestType: "POST", RejectUnauthorized: true}},
		},
		{
			// particle-cli `webhook create hook.json` merges the file.
			name: "cli create from a file",
			req: rawJSON("POST", "/v1/webhooks", w.ownerToken, `{"event":"temp","url":"https://example.com/in","requestType":"PUT",
				"eventName":"temp","mydevices":true,"json":{"v":"{{PARTICLE_EVENT_VALUE}}","n":"{{{n}}}"},"headers":{"X-Key":"k"},
				"responseTopic":"{{PARTICLE_DEVICE_ID}}/r","noDefaults":true}`),
			want: `{"ok":true,"id":"<hex24>","url":"https://example.com/in","event":"temp","name":null,"requestType":"PUT",
				"deviceID":null,"created_at":"<iso>","hookUrl":"<string>"}`,
			hook: store.Webhook{Event: "temp", Settings: store.WebhookSettings{URL: "https://example.com/in", RequestType: "PUT",
				JSON: json.RawMessage(`{"n":"{{{n}}}","v":"{{PARTICLE_EVENT_VALUE}}"}`), Headers: map[string]string{"X-Key": "k"},
				ResponseTopic: "{{PARTICLE_DEVICE_ID}}/r", NoDefaults: true, RejectUnauthorized: true}},
		},
		{
			// particle-api-js createWebhook: deviceId, requestType always,
			// rejectUnauthorized and the hook's options.
			name: "js createWebhook",
			req: rawJSON("POST", "/v1/webhooks", w.ownerToken, `{"event":"temp","url":"https://example.com/{{PARTICLE_DEVICE_ID}}",
				"deviceId":"lamp-not-found-is-an-id-below","rejectUnauthorized":false,"requestType":"GET",
				"auth":{"user":"me","pass":"1234"},"query":{"a":"{{b}}","n":5},"responseTemplate":{"t":"{{temp}}"},
				"errorResponseTopic":"err"}`),
			want: `{"ok":false,"error":"deviceID must be a device ID or the name of one of your devices"}`,
		},
		{
			name: "js createWebhook by device name",
			req: rawJSON("POST", "/v1/webhooks", w.ownerToken, `{"event":"temp","url":"https://example.com/{{PARTICLE_DEVICE_ID}}",
				"deviceId":"lamp","rejectUnauthorized":false,"requestType":"GET",
				"auth":{"user":"me","pass":"1234"},"query":{"a":"{{b}}","n":5},"responseTemplate":{"t":"{{temp}}"},
				"errorResponseTopic":"err"}`),
			want: `{"ok":true,"id":"<hex24>","url":"https://example.com/{{PARTICLE_DEVICE_ID}}","event":"temp","name":null,
				"requestType":"GET","deviceID":"` + ownerDeviceID + `","created_at":"<iso>","hookUrl":"<string>"}`,
			hook: store.Webhook{Event: "temp", DeviceID: ownerDeviceID, Settings: store.WebhookSettings{
				URL: "https://example.com/{{PARTICLE_DEVICE_ID}}", RequestType: "GET",
				Query: map[string]string{"a": "{{b}}", "n": "5"}, Auth: &store.BasicAuth{Username: "me", Password: "1234"},
				ResponseTemplate: `{"t":"{{temp}}"}`, ErrorResponseTopic: "err"}},
		},
		{
			// particle-api-js createWebhook for a product, with a bearer
			// auth and a custom body.
			name: "js createWebhook product",
			req: rawJSON("POST", "/v1/products/widget/webhooks", w.ownerToken, `{"event":"p/","url":"https://example.com/p",
				"deviceId":"`+strings.ToUpper(customerDeviceID)+`","requestType":"POST","auth":{"bearer":"tok"},"body":"{{PARTICLE_EVENT_VALUE}}"}`),
			want: `{"ok":true,"id":"<hex24>","url":"https://example.com/p","event":"p/","name":null,"requestType":"POST",
				"deviceID":"` + customerDeviceID + `","created_at":"<iso>","hookUrl":"<string>"}`,
			hook: store.Webhook{Event: "p/", DeviceID: customerDeviceID, ProductID: w.product.ID, Settings: store.WebhookSettings{
				URL: "https://example.com/p", RequestType: "POST", Body: &body,
				Headers: map[string]string{"Authorization": "Bearer tok"}, RejectUnauthorized: true}},
		},
		{
			// particle-api-js createIntegration: {event, deviceid, ...settings}.
			name: "js createIntegration",
			req: rawJSON("POST", "/v1/integrations", w.ownerToken, `{"integration_type":"Webhook","event":"temp","url":"https://example.com/i",
				"deviceid":"`+ownerDeviceID+`","requestType":"POST","form":{"t":"{{PARTICLE_EVENT_VALUE}}"},"name":"Temps"}`),
			want: `{"ok":true,"id":"<hex24>","integration_type":"Webhook","event":"temp","url":"https://example.com/i","name":"Temps",
				"deviceID":"` + ownerDeviceID + `","requestType":"POST","created_at":"<iso>","updated_at":"<iso>","disabled":false,
				"noDefaults":false,"rejectUnauthorized":true,"unchunked":false,"dataUrlResponseEvent":false,"signed":false,
				"form":{"t":"{{PARTICLE_EVENT_VALUE}}"},"hookUrl":"<string>","integrationUrl":"<string>"}`,
			hook: store.Webhook{Event: "temp", Name: "Temps", DeviceID: ownerDeviceID, Settings: store.WebhookSettings{
				URL: "https://example.com/i", RequestType: "POST", Form: map[string]string{"t": "{{PARTICLE_EVENT_VALUE}}"},
				RejectUnauthorized: true}},
		},
		{
			// curl -d with bracket notation; json as a string template.
			name: "form encoded",
			req: apitest.Req{Method: "POST", Path: "/v1/webhooks", Token: w.ownerToken, Form: url.Values{
				"eventName": {"f"}, "url": {"https://example.com/f"}, "deviceID": {ownerDeviceID},
				"json": {`{"v":{{PARTICLE_EVENT_VALUE}}}`}, "headers[X-A]": {"1"}, "unchunked": {"true"}, "disabled": {"1"},
			}},
			want: `{"ok":true,"id":"<hex24>","url":"https://example.com/f","event":"f","name":null,"requestType":"POST",
				"deviceID":"` + ownerDeviceID + `","created_at":"<iso>","hookUrl":"<string>"}`,
			hook: store.Webhook{Event: "f", DeviceID: ownerDeviceID, Disabled: true, Settings: store.WebhookSettings{
				URL: "https://example.com/f", RequestType: "POST", JSON: json.RawMessage(`"{\"v\":{{PARTICLE_EVENT_VALUE}}}"`),
				Headers: map[string]string{"X-A": "1"}, Unchunked: true, RejectUnauthorized: true}},
		},
		{
			// Another integration type is stored opaquely.
			name: "opaque integration type",
			req: rawJSON("POST", "/v1/products/widget/integrations", w.ownerToken, `{"integration_type":"GoogleCloudPubSub","event":"g",
				"topic":"projects/x/topics/y","data":{"a":1}}`),
			want: `{"ok":true,"id":"<hex24>","integration_type":"GoogleCloudPubSub","event":"g","name":null,"deviceID":null,
				"created_at":"<iso>","updated_at":"<iso>","disabled":false,"product_id":<number>,"signed":false,
				"topic":"projects/x/topics/y","data":{"a":1},"hookUrl":"<string>","integrationUrl":"<string>"}`,
			hook: store.Webhook{Event: "g", IntegrationType: "GoogleCloudPubSub", ProductID: w.product.ID,
				Settings: store.WebhookSettings{Extra: map[string]json.RawMessage{
					"topic": json.RawMessage(`"projects/x/topics/y"`), "data": json.RawMessage(`{"a":1}`)}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantBody := strings.Replace(tc.want, `"product_id":<number>`, fmt.Sprintf(`"product_id":%d`, w.product.ID), 1)
			r := w.Do(tc.req)
			apitest.MatchJSON(t, r.Body, wantBody)
			if tc.hook.Event == "" {
				if r.Status != 400 {
					t.Errorf("status %d; want 400", r.Status)
				}
				return
			}
			if r.Status != 201 {
				t.Fatalf("status %d; want 201: %s", r.Status, r.Body)
			}
			id := r.String(t, "id")
			if got := runner.takeChanged(); !slices.Equal(got, []string{id}) {
				t.Errorf("engine told %v; want [%s]", got, id)
			}
			prefix := "http://example.com/v1/webhooks/"
			if strings.Contains(tc.req.Path, "integrations") {
				prefix = strings.Replace(prefix, "webhooks", "integrations", 1)
			}
			if strings.Contains(tc.req.Path, "products") {
				prefix = strings.Replace(prefix, "/v1/", "/v1/products/widget/", 1)
			}
			if got := r.String(t, "hookUrl"); got != prefix+id {
				t.Errorf("hookUrl = %q; want %q", got, prefix+id)
			}
			got := openedHook(t, w, id)
			want := tc.hook
			want.ID, want.UserID, want.CreatedAt, want.UpdatedAt = id, w.owner.ID, got.CreatedAt, got.UpdatedAt
			want.Version = 1 // a new row's
			if want.IntegrationType == "" {
				want.IntegrationType = store.IntegrationWebhook
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(&want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("stored\n got  %s\n want %s", gotJSON, wantJSON)
			}
		})
	}
}

// TestWebhookValidation checks every refusal of a create request.
func TestWebhookValidation(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{})
	long := strings.Repeat("a", 2049)
	headers := map[string]string{}
	for i := range 51 {
		headers[fmt.Sprintf("X-%d", i)] = "v"
	}
	headersJSON, _ := json.Marshal(headers)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no event", `{"url":"https://example.com/"}`, "event is required"},
		{"empty event", `{"event":"","url":"https://example.com/"}`, "event is required"},
		{"long event", `{"event":"` + strings.Repeat("e", 65) + `","url":"https://example.com/"}`, "event must be at most 64 bytes"},
		{"object event", `{"event":{"a":1},"url":"https://example.com/"}`, "event must be a string"},
		{"no url", `{"event":"e"}`, "url is required"},
		{"long url", `{"event":"e","url":"https://example.com/` + long + `"}`, "url must be at most 2048 bytes"},
		{"ftp url", `{"event":"e","url":"ftp://example.com/"}`, `url is not allowed: scheme "ftp" is not http or https`},
		{"user info", `{"event":"e","url":"https://u:p@example.com/"}`, "url is not allowed: URL has user info; use the webhook's auth field"},
		{"loopback", `{"event":"e","url":"http://127.0.0.1:9000/"}`, "url is not allowed: address 127.0.0.1 is loopback; the server allows loopback and private addresses only when started with --webhook-allow-private"},
		{"metadata", `{"event":"e","url":"http://169.254.169.254/latest"}`, "url is not allowed: address 169.254.169.254 is a cloud metadata service"},
		{"bad method", `{"event":"e","url":"https://example.com/","requestType":"PATCH"}`, "requestType must be GET, POST, PUT or DELETE"},
		{"json and form", `{"event":"e","url":"https://example.com/","json":{},"form":{"a":"b"}}`, "Only one of form, json and body may be set"},
		{"json and body", `{"event":"e","url":"https://example.com/","json":"{}","body":"x"}`, "Only one of form, json and body may be set"},
		{"json array", `{"event":"e","url":"https://example.com/","json":[1]}`, "json must be an object or a string"},
		{"form nested", `{"event":"e","url":"https://example.com/","form":{"a":{"b":1}}}`, "form must be an object of strings"},
		{"headers string", `{"event":"e","url":"https://example.com/","headers":"X-A: 1"}`, "headers must be an object of strings"},
		{"header newline", `{"event":"e","url":"https://example.com/","headers":{"X-A":"1\r\nX-B: 2"}}`,
			"headers must be names and values without line breaks (and names without spaces or colons)"},
		{"many headers", `{"event":"e","url":"https://example.com/","headers":` + string(headersJSON) + `}`, "At most 50 headers are allowed"},
		{"huge template", `{"event":"e","url":"https://example.com/","body":"` + strings.Repeat("b", 16<<10+1) + `"}`,
			"Webhook templates must be at most 16384 bytes together"},
		{"auth string", `{"event":"e","url":"https://example.com/","auth":"me:pw"}`, `auth must be an object {"username","password"}`},
		{"bool", `{"event":"e","url":"https://example.com/","noDefaults":"maybe"}`, "noDefaults must be true or false"},
		{"short secret", `{"event":"e","url":"https://example.com/","signingSecret":"short"}`, "signingSecret must be 16 to 256 bytes"},
		{"unknown device", `{"event":"e","url":"https://example.com/","deviceID":"nosuchdevice"}`,
			"deviceID must be a device ID or the name of one of your devices"},
		{"long name", `{"event":"e","url":"https://example.com/","name":"` + strings.Repeat("n", 256) + `"}`, "name must be at most 255 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/webhooks", "/v1/integrations", "/v1/products/widget/webhooks"} {
				r := w.Do(rawJSON("POST", path, w.ownerToken, tc.body))
				if r.Status != 400 {
					t.Errorf("%s: status %d; want 400: %s", path, r.Status, r.Body)
				}
				apitest.MatchJSON(t, r.Body, `{"ok":false,"error":`+jsonString(tc.want)+`}`)
			}
		})
	}
	// A bad integration_type, on the integrations routes only.
	r := w.Do(rawJSON("POST", "/v1/integrations", w.ownerToken, `{"integration_type":"../x","event":"e"}`))
	apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"integration_type must be a name of letters and digits"}`)
	// Nothing was stored.
	for _, path := range []string{"/v1/integrations", "/v1/products/widget/integrations"} {
		apitest.MatchJSON(t, w.Do(get(path, w.ownerToken)).Body, `[]`)
	}
}

// TestWebhookURLPolicy checks the outbound policy at creation.
func TestWebhookURLPolicy(t *testing.T) {
	for _, tc := range []struct {
		url          string
		strict, open int // status without and with WebhookAllowPrivate
	}{
		{"https://example.com/in", 201, 201},
		{"http://127.0.0.1:9000/in", 400, 201},
		{"http://10.1.2.3/in", 400, 201},
		{"http://localhost/in", 400, 201},
		{"http://169.254.169.254/", 400, 400},
		{"http://metadata.google.internal/", 400, 400},
		{"https://{{host}}/in", 201, 201}, // checked at delivery
		{"https://example.com/{{PARTICLE_DEVICE_ID}}?x={{y}}", 201, 201},
	} {
		for _, allow := range []bool{false, true} {
			w, _ := newHookWorld(t, api.Config{WebhookAllowPrivate: allow})
			want := tc.strict
			if allow {
				want = tc.open
			}
			r := w.Do(apitest.Req{Method: "POST", Path: "/v1/webhooks", Token: w.ownerToken,
				JSON: map[string]any{"event": "e", "url": tc.url}})
			if r.Status != want {
				t.Errorf("%s (allow private %v): status %d; want %d: %s", tc.url, allow, r.Status, want, r.Body)
			}
		}
	}
}

// TestWebhookLifecycle lists, reads and deletes hooks through both APIs,
// and checks isolation between users and products.
func TestWebhookLifecycle(t *testing.T) {
	w, runner := newHookWorld(t, api.Config{})
	create := func(path, token, body string) string {
		t.Helper()
		r := w.Do(rawJSON("POST", path, token, body))
		if r.Status != 201 {
			t.Fatalf("POST %s: status %d: %s", path, r.Status, r.Body)
		}
		return r.String(t, "id")
	}
	h1 := create("/v1/webhooks", w.ownerToken, `{"event":"a","url":"https://example.com/1"}`)
	h2 := create("/v1/integrations", w.ownerToken, `{"event":"b","url":"https://example.com/2","requestType":"GET"}`)
	opaque := create("/v1/integrations", w.ownerToken, `{"integration_type":"AzureIotHub","event":"c","hub":"h"}`)
	p1 := create("/v1/products/widget/webhooks", w.ownerToken, `{"event":"p","url":"https://example.com/p"}`)
	o1 := create("/v1/webhooks", w.otherToken, `{"event":"o","url":"https://example.com/o"}`)
	runner.takeChanged()

	w.Run(t, []apitest.Scenario{
		{Name: "legacy list: own webhooks only, oldest first", Req: get("/v1/webhooks", w.ownerToken), Status: 200,
			Want: `[{"id":"` + h1 + `","integration_type":"Webhook","event":"a","url":"https://example.com/1","name":null,"deviceID":null,
				"requestType":"POST","created_at":"<iso>","updated_at":"<iso>","disabled":false,"noDefaults":false,
				"rejectUnauthorized":true,"unchunked":false,"dataUrlResponseEvent":false,"signed":false},
				{"id":"` + h2 + `","integration_type":"Webhook","event":"b","url":"https://example.com/2","name":null,"deviceID":null,
				"requestType":"GET","created_at":"<iso>","updated_at":"<iso>","disabled":false,"noDefaults":false,
				"rejectUnauthorized":true,"unchunked":false,"dataUrlResponseEvent":false,"signed":false}]`},
		{Name: "integrations list has every type", Req: get("/v1/integrations", w.ownerToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) { checkIDs(tb, r, h1, h2, opaque) }},
		{Name: "product list", Req: get("/v1/products/widget/webhooks", w.ownerToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) { checkIDs(tb, r, p1) }},
		{Name: "other user's list", Req: get("/v1/webhooks", w.otherToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) { checkIDs(tb, r, o1) }},
		{Name: "get", Req: get("/v1/webhooks/"+h1, w.ownerToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if r.String(tb, "id") != h1 || r.String(tb, "url") != "https://example.com/1" {
					tb.Errorf("body %s", r.Body)
				}
			}},
		{Name: "legacy get hides other types", Req: get("/v1/webhooks/"+opaque, w.ownerToken), Status: 404,
			Want: `{"ok":false,"error":"Webhook not found"}`},
		{Name: "other user's hook", Req: get("/v1/webhooks/"+o1, w.ownerToken), Status: 404,
			Want: `{"ok":false,"error":"Webhook not found"}`},
		{Name: "product hook on the sandbox route", Req: get("/v1/integrations/"+p1, w.ownerToken), Status: 404,
			Want: `{"ok":false,"error":"Integration not found"}`},
		{Name: "sandbox hook on the product route", Req: get("/v1/products/widget/webhooks/"+h1, w.ownerToken), Status: 404},
		{Name: "malformed id", Req: get("/v1/webhooks/not-an-id", w.ownerToken), Status: 404,
			Want: `{"ok":false,"error":"Webhook not found"}`},
		{Name: "get integration", Req: get("/v1/integrations/"+h2, w.ownerToken), Status: 200,
			Want: `{"integration":{"id":"` + h2 + `","integration_type":"Webhook","event":"b","url":"https://example.com/2","name":null,
				"deviceID":null,"requestType":"GET","created_at":"<iso>","updated_at":"<iso>","disabled":false,"noDefaults":false,
				"rejectUnauthorized":true,"unchunked":false,"dataUrlResponseEvent":false,"signed":false,"logs":[]}}`},
		{Name: "other user cannot delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/webhooks/" + h1, Token: w.otherToken},
			Status: 404, Want: `{"ok":false,"error":"Webhook not found"}`},
		{Name: "legacy delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/webhooks/" + h1, Token: w.ownerToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "legacy delete again", Req: apitest.Req{Method: "DELETE", Path: "/v1/webhooks/" + h1, Token: w.ownerToken},
			Status: 404, Want: `{"ok":false,"error":"Webhook not found"}`},
		{Name: "integration delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/integrations/" + opaque, Token: w.ownerToken},
			Status: 204},
		{Name: "product delete", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/webhooks/" + p1, Token: w.ownerToken},
			Status: 200, Want: `{"ok":true}`},
		{Name: "after deletes", Req: get("/v1/integrations", w.ownerToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) { checkIDs(tb, r, h2) }},
	})
	if got, want := runner.takeChanged(), []string{h1, opaque, p1}; !slices.Equal(got, want) {
		t.Errorf("engine told %v; want %v", got, want)
	}
}

// checkIDs fails tb unless r is a JSON array of hooks with exactly ids,
// in order.
func checkIDs(tb testing.TB, r *apitest.Resp, ids ...string) {
	tb.Helper()
	var list []map[string]any
	if err := json.Unmarshal(r.Body, &list); err != nil {
		tb.Fatalf("body is not an array: %s", r.Body)
	}
	got := make([]string, len(list))
	for i, h := range list {
		got[i], _ = h["id"].(string)
	}
	if !slices.Equal(got, ids) {
		tb.Errorf("ids = %v; want %v", got, ids)
	}
}

// TestIntegrationReplace checks PUT: it replaces the configuration, keeps
// event, type and signing secret when absent, and never shows the secret.
func TestIntegrationReplace(t *testing.T) {
	w, runner := newHookWorld(t, api.Config{})
	const secret = "0123456789abcdef-secret"
	r := w.Do(rawJSON("POST", "/v1/integrations", w.ownerToken, `{"event":"temp","url":"https://example.com/a",
		"requestType":"PUT","json":{"a":"b"},"headers":{"X-A":"1"},"signingSecret":"`+secret+`"}`))
	if r.Status != 201 || strings.Contains(string(r.Body), secret) {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.String(t, "id")
	if signed, _ := r.Map(t)["signed"].(bool); !signed {
		t.Errorf("create answer lacks signed:true: %s", r.Body)
	}
	opens := func(tb testing.TB) bool {
		tb.Helper()
		h := storedHook(tb, w, id)
		if len(h.Settings.SigningSecret) == 0 {
			return false
		}
		if strings.Contains(string(h.Settings.SigningSecret), secret) {
			tb.Error("the store holds the signing secret in clear")
		}
		plain, err := w.Auth.OpenSecret(h.Settings.SigningSecret, auth.PurposeWebhookSigning+id)
		if err != nil || string(plain) != secret {
			tb.Errorf("OpenSecret = %q, %v; want the secret", plain, err)
		}
		return true
	}
	if !opens(t) {
		t.Fatal("no signing secret stored")
	}
	runner.takeChanged()
	put := func(body string) apitest.Req { return rawJSON("PUT", "/v1/integrations/"+id, w.ownerToken, body) }
	w.Run(t, []apitest.Scenario{
		{Name: "replace without event (editIntegration)", Req: put(`{"url":"https://example.com/b","form":{"f":"1"}}`), Status: 200,
			Want: `{"integration":{"id":"` + id + `","integration_type":"Webhook","event":"temp","url":"https://example.com/b",
				"name":null,"deviceID":null,"requestType":"POST","created_at":"<iso>","updated_at":"<iso>","disabled":false,
				"noDefaults":false,"rejectUnauthorized":true,"unchunked":false,"dataUrlResponseEvent":false,"signed":true,
				"form":{"f":"1"}}}`,
			Check: func(tb testing.TB, _ *apitest.Resp) {
				if !opens(tb) {
					tb.Error("replace without signingSecret dropped it")
				}
			}},
		{Name: "replace validates", Req: put(`{"url":"ftp://x/"}`), Status: 400},
		{Name: "replace needs a url", Req: put(`{"event":"x"}`), Status: 400, Want: `{"ok":false,"error":"url is required"}`},
		{Name: "clear the secret", Req: put(`{"event":"new","url":"https://example.com/c","signingSecret":""}`), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if opens(tb) || r.Map(tb)["integration"].(map[string]any)["signed"] != false {
					tb.Errorf("secret still set: %s", r.Body)
				}
				if h := storedHook(tb, w, id); h.Event != "new" || h.Settings.Form != nil {
					tb.Errorf("stored %+v", h)
				}
			}},
		{Name: "unknown", Req: rawJSON("PUT", "/v1/integrations/0b00000000000000000000ff", w.ownerToken, `{"event":"x","url":"https://example.com/"}`),
			Status: 404, Want: `{"ok":false,"error":"Integration not found"}`},
	})
	if got := runner.takeChanged(); !slices.Equal(got, []string{id, id}) {
		t.Errorf("engine told %v; want two changes of %s", got, id)
	}

	// An opaque integration stays of its type.
	r = w.Do(rawJSON("POST", "/v1/integrations", w.ownerToken, `{"integration_type":"AzureIotHub","event":"z","hub":"a"}`))
	oid := r.String(t, "id")
	r = w.Do(rawJSON("PUT", "/v1/integrations/"+oid, w.ownerToken, `{"hub":"b"}`))
	if r.Status != 200 {
		t.Fatalf("PUT opaque: %d %s", r.Status, r.Body)
	}
	if h := storedHook(t, w, oid); h.IntegrationType != "AzureIotHub" || h.Event != "z" || string(h.Settings.Extra["hub"]) != `"b"` {
		t.Errorf("opaque after PUT: %+v", h)
	}
}

// TestWebhookDeliveryLog reads the delivery log written through the
// store.
func TestWebhookDeliveryLog(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{})
	w.addWebhooks(t) // one entry each
	ctx := context.Background()
	var batch []*store.WebhookDelivery
	for i := range 150 {
		d := &store.WebhookDelivery{WebhookID: ownerHookID, EventID: uint64(100 + i), EventName: "authz/x",
			DeviceID: ownerDeviceID, Attempt: 1 + i%3, At: apitest.Epoch.Add(time.Duration(i) * time.Second),
			Method: "POST", URL: "https://example.com/in", Status: 200, Latency: 1500 * time.Microsecond}
		if i == 149 {
			d.Status, d.Error, d.Response = 0, "timeout after 20s", ""
		}
		batch = append(batch, d)
	}
	if err := w.Store.AddWebhookDeliveries(ctx, batch, 0); err != nil {
		t.Fatal(err)
	}
	newest := fmt.Sprintf(`{"id":%d,"time":"2025-03-01T12:02:29.000Z","event":"authz/x","event_id":249,"device_id":"%s",
		"attempt":3,"method":"POST","url":"https://example.com/in","status":0,"latency_ms":1.5,"error":"timeout after 20s"}`,
		batch[149].ID, ownerDeviceID)
	count := func(want int) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, r *apitest.Resp) {
			tb.Helper()
			var body struct {
				Deliveries []map[string]any `json:"deliveries"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Deliveries) != want {
				tb.Fatalf("%d deliveries (%v); want %d", len(body.Deliveries), err, want)
			}
			if first, _ := body.Deliveries[0]["event_id"].(float64); first != 249 {
				tb.Errorf("first entry is event %v; want the newest, 249", first)
			}
		}
	}
	w.Run(t, []apitest.Scenario{
		{Name: "default limit", Req: get("/v1/webhooks/"+ownerHookID+"/deliveries", w.ownerToken), Status: 200, Check: count(100)},
		{Name: "limit", Req: get("/v1/integrations/"+ownerHookID+"/deliveries?limit=1", w.ownerToken), Status: 200,
			Want: `{"ok":true,"deliveries":[` + newest + `]}`},
		{Name: "limit capped", Req: get("/v1/webhooks/"+ownerHookID+"/deliveries?limit=5000", w.ownerToken), Status: 200, Check: count(151)},
		{Name: "bad limit", Req: get("/v1/webhooks/"+ownerHookID+"/deliveries?limit=0", w.ownerToken), Status: 400,
			Want: `{"ok":false,"error":"limit must be a positive whole number"}`},
		{Name: "other user", Req: get("/v1/webhooks/"+ownerHookID+"/deliveries", w.otherToken), Status: 404},
		{Name: "product hook", Req: get("/v1/products/widget/integrations/"+productHookID+"/deliveries", w.productToken), Status: 200,
			Want: `{"ok":true,"deliveries":[{"id":"<number>","time":"2025-03-01T12:00:00.000Z","event":"authz","event_id":1,"device_id":null,
				"attempt":1,"method":"POST","url":"https://example.com/in","status":200,"latency_ms":0,"error":null}]}`},
		{Name: "integration logs are the newest 10", Req: get("/v1/integrations/"+ownerHookID, w.ownerToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) {
				logs, _ := r.Map(tb)["integration"].(map[string]any)["logs"].([]any)
				if len(logs) != 10 {
					tb.Fatalf("%d logs; want 10", len(logs))
				}
				b, _ := json.Marshal(logs[0])
				apitest.MatchJSON(tb, b, newest)
			}},
	})
}

// TestIntegrationTest covers POST .../test with an engine.
func TestIntegrationTest(t *testing.T) {
	w, runner := newHookWorld(t, api.Config{})
	w.addWebhooks(t)
	path := "/v1/integrations/" + ownerHookID + "/test"
	post := apitest.Req{Method: "POST", Path: path, Token: w.ownerToken}
	for _, tc := range []struct {
		name   string
		result store.WebhookDelivery
		err    error
		want   string
	}{
		{"pass", store.WebhookDelivery{Status: 200, Response: `{"ok":1}`}, nil, `{"pass":true,"data":"{\"ok\":1}"}`},
		{"pass without body", store.WebhookDelivery{Status: 204}, nil, `{"pass":true,"data":null}`},
		{"status", store.WebhookDelivery{Status: 404, Response: "nope"}, nil, `{"pass":false,"data":"nope","error":"error status 404"}`},
		{"network", store.WebhookDelivery{Error: "connection refused"}, nil, `{"pass":false,"data":null,"error":"connection refused"}`},
		{"engine refuses", store.WebhookDelivery{}, errors.New("webhook: hook is disabled"), `{"pass":false,"data":null,"error":"webhook: hook is disabled"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runner.mu.Lock()
			runner.result, runner.err, runner.tested = tc.result, tc.err, nil
			runner.mu.Unlock()
			r := w.Do(post)
			if r.Status != 200 {
				t.Errorf("status %d", r.Status)
			}
			apitest.MatchJSON(t, r.Body, tc.want)
			runner.mu.Lock()
			defer runner.mu.Unlock()
			if !slices.Equal(runner.tested, []string{ownerHookID}) {
				t.Errorf("tested %v; want [%s]", runner.tested, ownerHookID)
			}
		})
	}
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/integrations/0b00000000000000000000ff/test", Token: w.ownerToken})
	apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"Integration not found"}`)

	// Without an engine: 503.
	bare := newWorldOpts(t, apitest.Options{InMemory: true})
	bare.addWebhooks(t)
	r = bare.Do(apitest.Req{Method: "POST", Path: path, Token: bare.ownerToken})
	if r.Status != 503 {
		t.Errorf("without an engine: status %d", r.Status)
	}
	apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"Webhook delivery is not running"}`)
}

// TestWebhookLimit checks the per-owner cap.
func TestWebhookLimit(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{MaxWebhooks: 2})
	for i, want := range []int{201, 201, 400} {
		for _, path := range []string{"/v1/webhooks", "/v1/products/widget/integrations"} {
			r := w.Do(apitest.Req{Method: "POST", Path: path, Token: w.ownerToken,
				JSON: map[string]any{"event": fmt.Sprint("e", i), "url": "https://example.com/"}})
			if r.Status != want {
				t.Errorf("%s #%d: status %d; want %d", path, i+1, r.Status, want)
			}
			if want == 400 {
				apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"Too many webhooks: the limit is 2 per owner"}`)
			}
		}
	}
	// Another user has a limit of their own.
	r := w.Do(apitest.Req{Method: "POST", Path: "/v1/webhooks", Token: w.otherToken,
		JSON: map[string]any{"event": "e", "url": "https://example.com/"}})
	if r.Status != 201 {
		t.Errorf("other user: status %d", r.Status)
	}
}

// TestWebhookTeamAccess checks team members and API users on product
// hooks.
func TestWebhookTeamAccess(t *testing.T) {
	w, _ := newHookWorld(t, api.Config{})
	w.addWebhooks(t)
	member := w.CreateUser(memberName, "member-password")
	memberToken := w.UserToken(member)
	bot := w.CreateUser("hooks+0002@"+api.APIUserDomain, "unused-password")
	if err := w.Store.AddTeamMember(context.Background(), &store.TeamMember{ProductID: w.product.ID, Username: bot.Username,
		Role: store.RoleDeveloper, Programmatic: true}); err != nil {
		t.Fatal(err)
	}
	botToken := w.Issue(auth.Issue{Kind: store.KindUser, UserID: bot.ID, ClientID: "api-user",
		Scope: "integrations:list integrations:create"})
	w.Run(t, []apitest.Scenario{
		{Name: "member lists", Req: get("/v1/products/widget/webhooks", memberToken), Status: 200,
			Check: func(tb testing.TB, r *apitest.Resp) { checkIDs(tb, r, productHookID) }},
		{Name: "member deletes", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/webhooks/" + productHookID, Token: memberToken},
			Status: 200},
		{Name: "api user creates", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/integrations", Token: botToken,
			JSON: map[string]any{"event": "bot", "url": "https://example.com/"}}, Status: 201},
		{Name: "api user lists", Req: get("/v1/products/widget/integrations", botToken), Status: 200},
		{Name: "api user lacks remove", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/integrations/" + productHookID, Token: botToken},
			Status: 400},
		{Name: "api user on another product", Req: get("/v1/products/gadget/integrations", botToken), Status: 403},
		{Name: "customer", Req: get("/v1/products/widget/webhooks", w.customerToken), Status: 403},
	})
}

// TestDeleteUserRemovesWebhooks checks that deleting an account removes
// its sandbox hooks, keeps product hooks, and tells the engine.
func TestDeleteUserRemovesWebhooks(t *testing.T) {
	w, runner := newHookWorld(t, api.Config{})
	w.addWebhooks(t)
	r := w.Do(apitest.Req{Method: "DELETE", Path: "/v1/user", Token: w.ownerToken, JSON: map[string]any{"password": ownerPass}})
	if r.Status != 200 {
		t.Fatalf("DELETE /v1/user: %d %s", r.Status, r.Body)
	}
	if _, err := w.Store.WebhookByID(context.Background(), ownerHookID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sandbox hook after account deletion: %v", err)
	}
	storedHook(t, w, productHookID)
	if got := runner.takeChanged(); !slices.Equal(got, []string{ownerHookID}) {
		t.Errorf("engine told %v; want [%s]", got, ownerHookID)
	}
}
