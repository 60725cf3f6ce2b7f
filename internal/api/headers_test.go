package api_test

import (
	"net/url"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

// TestAnswerHeaders checks that every JSON answer, success or error,
// forbids caching and MIME sniffing (docs/security.md, Answers), and that
// event streams keep their no-cache.
func TestAnswerHeaders(t *testing.T) {
	w := newWorld(t, api.Config{GlobalRate: 1000})
	cases := []struct {
		name  string
		req   apitest.Req
		cache string
	}{
		{"success", apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken}, "no-store"},
		{"token", apitest.Req{Method: "POST", Path: "/oauth/token", BasicUser: "particle", BasicPass: "particle",
			Form: url.Values{"grant_type": {"password"}, "username": {ownerName}, "password": {ownerPass}}}, "no-store"},
		{"unauthenticated", apitest.Req{Method: "GET", Path: "/v1/user"}, "no-store"},
		{"unknown route", apitest.Req{Method: "GET", Path: "/v1/nothing-here"}, "no-store"},
		{"bad input", apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w.ownerToken,
			JSON: map[string]any{"username": "not an address"}}, "no-store"},
		{"list", apitest.Req{Method: "GET", Path: "/v1/products/widget/team", Token: w.ownerToken}, "no-store"},
		{"event stream", apitest.Req{Method: "GET", Path: "/v1/devices/events", Token: w.ownerToken}, "no-cache"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := w.Do(c.req)
			if got := r.Header.Get("Cache-Control"); got != c.cache {
				t.Errorf("status %d: Cache-Control %q, want %q", r.Status, got, c.cache)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("status %d: X-Content-Type-Options %q, want nosniff", r.Status, got)
			}
		})
	}
}
