package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// FuzzParseHookInput feeds arbitrary JSON and form bodies to the webhook
// request parser. It must never panic, and whatever it accepts must obey
// the invariants the engine relies on: a known method, at most one body
// kind, bounded templates and headers, JSON that round-trips through the
// store's encoding.
func FuzzParseHookInput(f *testing.F) {
	for _, seed := range []string{
		`{"event":"temp","url":"https://example.com/in","deviceid":"0123456789abcdef01234567"}`,
		`{"event":"t","url":"https://x/{{a}}","json":{"a":"{{b}}","n":[1,{"c":null}]},"headers":{"X":"1"},"auth":{"user":"u","pass":"p"}}`,
		`{"eventName":"t","url":"u","json":"{\"v\":{{n}}}","responseTemplate":{"a":[1]},"requestType":"get"}`,
		`{"integration_type":"GoogleCloudPubSub","event":"g","topic":"x","data":{"a":1}}`,
		`{"event":"e","form":{"a":1,"b":true},"query":{"q":"{{x}}"},"body":null,"noDefaults":"yes"}`,
		`{"event":"e","auth":{"bearer":"t"},"headers":{"authorization":"x"},"signingSecret":"0123456789abcdefgh"}`,
		`event=e&url=https%3A%2F%2Fexample.com&json[a]=b&headers[X-A]=1&rejectUnauthorized=false`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, body string, integration bool) {
		ct := "application/x-www-form-urlencoded"
		if strings.HasPrefix(strings.TrimSpace(body), "{") {
			ct = "application/json"
		}
		p, _, err := decodeParams(ct, []byte(body), "")
		if err != nil {
			return
		}
		in, err := parseHookInput(p, integration, store.IntegrationWebhook)
		if err != nil {
			if _, isAPIError := err.(*Error); !isAPIError {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		h := in.hook
		if !integration && h.IntegrationType != store.IntegrationWebhook {
			t.Fatalf("legacy request made type %q", h.IntegrationType)
		}
		if len(h.Event) > maxHookEvent || len(h.Name) > maxHookName {
			t.Fatalf("event %d / name %d bytes accepted", len(h.Event), len(h.Name))
		}
		s := h.Settings
		if h.IntegrationType == store.IntegrationWebhook {
			switch s.RequestType {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
			default:
				t.Fatalf("requestType %q accepted", s.RequestType)
			}
			bodies := 0
			for _, set := range []bool{s.JSON != nil, s.Form != nil, s.Body != nil} {
				if set {
					bodies++
				}
			}
			if bodies > 1 || len(s.Headers) > maxHookHeaders || templateBytes(&s) > maxHookTemplates {
				t.Fatalf("settings over the limits accepted: %+v", s)
			}
			if s.JSON != nil && !json.Valid(s.JSON) {
				t.Fatalf("invalid json stored: %q", s.JSON)
			}
		}
		// The store keeps settings as JSON; they must come back equal.
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("settings do not encode: %v", err)
		}
		var back store.WebhookSettings
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("settings do not decode: %v", err)
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Fatalf("settings do not round-trip:\n%s\n%s", b, b2)
		}
		// hookJSON renders whatever was accepted.
		h.CreatedAt, h.UpdatedAt = time.Unix(0, 0), time.Unix(0, 0)
		if _, err := json.Marshal(hookJSON(&h)); err != nil {
			t.Fatalf("hookJSON does not encode: %v", err)
		}
	})
}

// TestHookIDsIncrease checks that IDs made by one server sort in the
// order they were made and have the stored form.
func TestHookIDsIncrease(t *testing.T) {
	g := newHookIDs()
	prev := g.next()
	for range 10000 {
		id := g.next()
		if !isHookID(id) {
			t.Fatalf("ID %q is not 24 lower-case hex characters", id)
		}
		// The 3-byte counter may wrap once from its random start.
		if id <= prev && id[18:] != "000000" {
			t.Fatalf("ID %s after %s", id, prev)
		}
		prev = id
	}
}
